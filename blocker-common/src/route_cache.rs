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

/// The slot of a question: its words mixed in turn (multiply, rotate) and the result finished
/// as MurmurHash3's 64-bit finaliser does, top bits. Every bit of every word must reach the
/// slot: busy host pairs differ in a byte of each address, often in opposite directions, and a
/// plain fold (XOR of the words) collapses those onto a few hundred slots.
#[inline(always)]
pub fn slot(key: &[u64; KEY_WORDS]) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = 0u64;
    let mut i = 0;
    while i < KEY_WORDS {
        h = (h.rotate_left(5) ^ key[i]).wrapping_mul(K);
        i += 1;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> (64 - SLOT_BITS)) as u32
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use super::*;

    /// An IPv4 question as the program builds it: family and protocol, ingress port, source and
    /// destination (network order, in the low half of their words).
    fn v4(proto: u64, src: [u8; 4], dst: [u8; 4]) -> [u64; KEY_WORDS] {
        [2 | proto << 8, 3, u32::from_ne_bytes(src) as u64, 0, u32::from_ne_bytes(dst) as u64, 0]
    }

    #[test]
    fn busy_host_pairs_spread_over_the_slots_as_random_ones_would() {
        // 4800 pairs whose addresses differ in the last byte only, source and destination moving
        // in opposite directions (a plain XOR fold put these on 256 slots).
        let mut used = vec![false; SLOTS as usize];
        let mut keys = 0;
        for proto in [6, 17] {
            for s in 0..48u8 {
                for d in 0..50u8 {
                    used[slot(&v4(proto, [192, 0, 2, 200 - s], [198, 51, 100, 1 + d])) as usize] = true;
                    keys += 1;
                }
            }
        }
        let distinct = used.iter().filter(|u| **u).count() as f64;
        // Random slots would give SLOTS × (1 − e^(−keys/SLOTS)) distinct ones.
        let random = SLOTS as f64 * (1.0 - (-(keys as f64) / SLOTS as f64).exp());
        assert!(distinct > 0.97 * random, "{distinct} slots for {keys} questions; random: {random:.0}");
        assert!(slot(&[u64::MAX; KEY_WORDS]) < SLOTS);
    }

    #[test]
    fn a_question_and_its_mirror_take_different_slots() {
        let (a, b) = ([192, 0, 2, 10], [198, 51, 100, 20]);
        assert_ne!(slot(&v4(6, a, b)), slot(&v4(6, b, a)));
        assert_ne!(slot(&v4(6, a, b)), slot(&v4(17, a, b)));
    }
}
