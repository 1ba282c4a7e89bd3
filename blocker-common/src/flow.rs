//! The TCP flow table's layout, shared by the program (blocker-ebpf flow.rs), which keeps it,
//! and the controller's upkeep (blocker-user datapath/flows.rs), which forgets idle flows and
//! repairs the per-bucket counts the LRU's evictions leave behind.

use crate::assert_size;

/// Buckets of FLOW_FILTER (and slots of HEADS and WAITS), by `FlowKey::bucket`.
pub const FILTER_BUCKETS: u32 = 1 << 16;

/// FLOW_BITS: one bit per bucket, set while its FLOW_FILTER count is not 0, in 64-bit words
/// (8 KiB in all). A segment reads its bucket's bit first and the count only where the bit is
/// set: the counts' 512 KiB (the kernel keeps each u32 of an array in 8 bytes) stay out of the
/// CPU's caches on a busy link, and a data segment's first read of its bucket was the dearest
/// part of its path.
pub const BIT_WORDS: u32 = FILTER_BUCKETS / 64;

/// The FLOW_BITS word and mask of bucket `b`.
#[inline(always)]
pub const fn bit_of(b: u32) -> (u32, u64) {
    (b / 64, 1u64 << (b % 64))
}

/// A bucket's count in FLOW_FILTER: FLOWS entries and awaited heads in the low 16 bits,
/// parked readers from bit 16, so a segment looks only where its bucket holds something.
pub const PARKED_ONE: u32 = 1 << 16;
pub const STORED_MASK: u32 = PARKED_ONE - 1;

/// NAME_WAITS slots (the program's `NameWait`): the server name's first bytes of a reader
/// parked inside it, in slot `bucket % NAME_WAIT_SLOTS`.
pub const NAME_WAIT_SLOTS: u32 = 1 << 12;

/// FLOWS values (the program's `FlowState`, a reader's position or a blocked flow's verdict):
/// the controller handles them as bytes of this size and never interprets them.
pub const FLOW_STATE_SIZE: usize = 464;

/// HEADS slots (the program's `Head`): a 4-byte tag first, 0 when the slot is free.
pub const HEAD_SIZE: usize = 16;

/// A TCP flow as FLOWS keys it, client to server. Aligned to 8 so that the program copies it
/// as whole words.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub v6: u32,
}

assert_size!(FlowKey, 40);

impl FlowKey {
    /// The flow's FLOW_FILTER bucket. The program and the controller must agree on it bit for
    /// bit: the controller's repair of the counts depends on it.
    ///
    /// Every word is multiplied into the hash before the next is added, so differences in two
    /// words cannot cancel: with the words XORed together, two IPv6 sources whose first and last
    /// words differ by the same bits (2001:db8:… and 2001:dbf:… ending …5b1d and …5b1a) shared a
    /// bucket, and with the same `tag` one flow's segments were judged by the other's state (the
    /// differential test found it).
    #[inline(always)]
    pub fn bucket(&self) -> u32 {
        let w = |b: &[u8; 16], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut h = (self.sport as u32) << 16 | self.dport as u32;
        h = (h.wrapping_mul(0x9E37_79B1) ^ w(&self.src, 0)).wrapping_mul(0x85EB_CA6B) ^ w(&self.src, 12);
        h = (h.wrapping_mul(0xC2B2_AE35) ^ w(&self.dst, 0)).wrapping_mul(0x9E37_79B1) ^ w(&self.dst, 12);
        h = h.wrapping_mul(0xC2B2_AE35);
        (h >> 16) & (FILTER_BUCKETS - 1)
    }
}
