//! Router mode's route cache for XDP forwarding (`FLAG_ROUTE_CACHE`): the answers of the
//! kernel's FIB lookup (`bpf_fib_lookup`), kept per CPU and reused for frames that would ask it
//! the very same question. The lookup is most of what forwarding a frame in XDP costs (an
//! IPv6 one more than an IPv4 one), and a router asks it again for every frame of a flow.
//!
//! An answer is reused only while all of these hold:
//! - the question is the same, word for word: the input part of `struct bpf_fib_lookup` the
//!   program filled (family, protocol, ingress port, TOS or flow label, source, destination),
//!   only the length left out; a frame longer than the answer's MTU asks the FIB again;
//! - nothing that can change an answer happened since: the controller follows the kernel's
//!   routing netlink groups (links, addresses, routes, rules, next hops, neighbours) and moves
//!   `ROUTE_GEN` on with every change, which makes every answer taken before it stale;
//! - it is younger than [`MAX_AGE_NS`]: the bound that holds when no controller follows the
//!   kernel (between a daemon's exit and the next one's start, pins keeping the program).

use crate::assert_size;

/// Slots per CPU; a power of two (the slot is the top bits of a hash). A frame whose slot
/// holds another question asks the FIB and takes the slot over. 16384 × 80 bytes: 1.25 MiB per
/// CPU, room for a few thousand busy host pairs per CPU with few collisions.
pub const SLOTS: u32 = 16384;
pub const SLOT_BITS: u32 = 14;
const _: () = assert!(1 << SLOT_BITS == SLOTS);

/// How long an answer is reused at most, nanoseconds (`bpf_ktime_get_coarse_ns`).
pub const MAX_AGE_NS: u64 = 1_000_000_000;

/// The words of `struct bpf_fib_lookup` that are the question: its first 48 bytes.
pub const KEY_WORDS: usize = 6;
/// Word 0 without `tot_len` (bytes 6 and 7, the high half of a little-endian word): the
/// length is checked against the answer's MTU instead.
pub const KEY_WORD0_MASK: u64 = 0x0000_ffff_ffff_ffff;

/// One slot: a question and the FIB's answer to it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteCacheEntry {
    pub key: [u64; KEY_WORDS],
    /// When the FIB answered (`bpf_ktime_get_coarse_ns`).
    pub filled_ns: u64,
    /// The egress port's interface index; 0: the slot holds no answer.
    pub egress: u32,
    /// `ROUTE_GEN` as it was before the FIB was asked.
    pub generation: u32,
    /// The route's MTU (the FIB's `mtu_result`).
    pub mtu: u16,
    /// The next hop's MAC, then the egress port's: at the offsets (mod 4) they have in
    /// `struct bpf_fib_lookup`, so both copy into the frame as aligned 16- and 32-bit words.
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
    pub _pad: u16,
}
assert_size!(RouteCacheEntry, 80);
const _: () = assert!(
    core::mem::offset_of!(RouteCacheEntry, dmac) % 4 == 2
        && core::mem::offset_of!(RouteCacheEntry, smac) % 4 == 0
);

/// The slot of a question: its words folded and mixed (Fibonacci hashing), top bits.
#[inline(always)]
pub fn slot(key: &[u64; KEY_WORDS]) -> u32 {
    let x = key[0] ^ key[1] ^ key[2] ^ key[3] ^ key[4] ^ key[5];
    let x = (x ^ (x >> 32)) as u32;
    x.wrapping_mul(0x9e37_79b1) >> (32 - SLOT_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_addresses_that_differ_in_one_byte() {
        // 256 IPv4 destinations in one /24, one source: the common case of a busy prefix.
        let mut used = [false; SLOTS as usize];
        for last in 0..=255u64 {
            let key = [2, 7 << 32, 0x0201_00c0, 0, 0x0071_00cb | last << 24, 0];
            used[slot(&key) as usize] = true;
        }
        assert!(
            used.iter().filter(|u| **u).count() >= 250,
            "few collisions among neighbours"
        );
        assert!(slot(&[u64::MAX; KEY_WORDS]) < SLOTS);
    }
}
