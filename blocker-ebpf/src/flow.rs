//! Per-flow state for TCP flows we must follow across segments: a ClientHello still being
//! read, or a flow already blocked.
//!
//! Every TCP segment with payload reads its bucket's bit in FLOW_BITS (8 KiB, one bit per
//! bucket of flow hashes) to learn whether its flow might have state; only where the bit is
//! set does it read the bucket's count in FLOW_FILTER and then pay the LRU hash lookup (or
//! first, where the count says so, the read of a reader parked in WAITS). Counts go up when
//! state is created and down when it is removed; the bit follows the count (`bucket_add`).

use aya_ebpf::{helpers::generated::bpf_jiffies64, programs::XdpContext};

use crate::{
    cursor::read,
    maps::{FLOWS, FLOW_BITS, FLOW_FILTER, HEADS, NAME_WAITS, WAITS},
    names::BUF,
    parse::Packet,
};

pub use blocker_common::flow::{FILTER_BUCKETS, FlowKey, NAME_WAIT_SLOTS, PARKED_ONE};
use blocker_common::flow::bit_of;
use blocker_common::flow::{FLOW_STATE_SIZE, HEAD_SIZE, STORED_MASK};

pub const KIND_PENDING: u32 = 1;
pub const KIND_BLOCKED: u32 = 2;

/// Which reader a pending flow runs.
pub const PROTO_TLS: u32 = 0;
pub const PROTO_HTTP: u32 = 1;

/// Bytes of name the ClientHello reader can hold: a full 253-byte name plus the room a chunked
/// copy needs past its masked offset.
pub const NAME_ROOM: usize = BUF + 128;

// Aligned to 8 (as FlowKey is) so that copies of it and of the name inside it are whole-word
// loads and stores: at byte alignment LLVM turns them into calls of a byte-by-byte memcpy or
// memset, several hundred instructions for a name.
/// The streaming ClientHello reader's position (tls.rs) plus, once decided, the verdict.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct FlowState {
    pub kind: u32,
    /// PROTO_TLS or PROTO_HTTP.
    pub proto: u32,
    /// Sequence number of the next stream byte we expect.
    pub next_seq: u32,
    /// tls.rs: the field being read, bytes still to accumulate into `acc`, bytes to skip.
    pub step: u32,
    pub need: u32,
    pub acc: u32,
    pub skip: u32,
    /// Record layer: header bytes read of the current record (0..=5) and payload left.
    pub rec_hdr: u32,
    pub rec_len: u32,
    pub rec_remaining: u32,
    pub ext_remaining: u32,
    pub ext_type: u32,
    pub name_len: u32,
    pub name_got: u32,
    /// For blocked flows: the entry that blocked it.
    pub entry_id: u32,
    /// tls.rs, while a segment is being read: packet offsets of the next byte and of the end,
    /// and the result. They live here, in map memory, not in the loop's stack context: the
    /// verifier then sees the same state at every iteration and checks the callback once.
    pub cur_off: u32,
    pub cur_end: u32,
    pub result: u32,
    /// Segments dropped as ahead of a gap (tcp_names.rs): bounded, so a gap the client will
    /// never fill (the server already holds those bytes) cannot stall the connection.
    pub ahead_drops: u32,
    /// Keeps `name` 8-aligned (word copies).
    pub reserved: u32,
    pub name: [u8; NAME_ROOM],
}

/// The flow's key, built as five 8-byte words (bpfel: the byte layout of `FlowKey`), so no
/// zeroing memset and no byte-wise copies.
#[inline(always)]
pub fn key_of(ctx: &XdpContext, pkt: &Packet, sport: u16, dport: u16) -> Option<FlowKey> {
    let (s0, s1, d0, d1) = if pkt.v6 != 0 {
        let [s0, s1] = read::<[u64; 2]>(ctx, pkt.l3() + 8)?;
        let [d0, d1] = pkt.dst6_words();
        (s0, s1, d0, d1)
    } else {
        let s = read::<u32>(ctx, pkt.l3() + 12)?;
        (s as u64, 0, u32::from_ne_bytes(pkt.dst4.to_be_bytes()) as u64, 0)
    };
    let tail = sport as u64 | (dport as u64) << 16 | (pkt.v6 as u64) << 32;
    // SAFETY: FlowKey is 40 bytes of plain integers, laid out as these five words on bpfel.
    Some(unsafe { core::mem::transmute::<[u64; 5], FlowKey>([s0, s1, d0, d1, tail]) })
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);
// The name is copied in 8-byte words (tcp_names.rs).
const _: () = assert!(core::mem::offset_of!(FlowState, name) % 8 == 0);

// The controller handles FLOWS values and HEADS slots by these sizes (its upkeep).
const _: () = assert!(core::mem::size_of::<FlowState>() == FLOW_STATE_SIZE);
const _: () = assert!(core::mem::size_of::<Head>() == HEAD_SIZE && core::mem::offset_of!(Head, tag) == 0);

#[inline(always)]
fn bucket(k: &FlowKey) -> u32 {
    k.bucket()
}

/// The flow's state, if it has any, and whether any flow in its bucket has state (a FLOWS
/// entry or a head awaited): only then is `head_check` worth its lookup.
#[inline(always)]
pub fn lookup(k: &FlowKey) -> (Option<*mut FlowState>, bool) {
    let n = count(k);
    (if n & STORED_MASK != 0 { FLOWS.get_ptr_mut(k) } else { None }, n != 0)
}

/// The flow's bucket count (see PARKED_ONE); 0 without reading it where the bucket's bit is
/// clear.
#[inline(always)]
pub fn count(k: &FlowKey) -> u32 {
    let b = bucket(k);
    let (w, m) = bit_of(b);
    match FLOW_BITS.get(w) {
        Some(bits) if *bits & m == 0 => 0,
        // Set, or (never: the word index is always in range) unreadable: the count decides.
        _ => FLOW_FILTER.get(b).copied().unwrap_or(0),
    }
}

/// Whether the flow's bucket may hold state: its bit (`count` reads the count only where it
/// is set). An unreadable word (never: the index is always in range) counts as busy.
#[inline(always)]
pub fn bucket_busy(k: &FlowKey) -> bool {
    let (w, m) = bit_of(bucket(k));
    match FLOW_BITS.get(w) {
        Some(bits) => *bits & m != 0,
        None => true,
    }
}

/// Adds `delta` to bucket `b`'s count and keeps its bit: whoever changes a count reads it
/// back, sets the bit if it is not 0, and clears it if it is, reading the count once more after
/// the clear and setting the bit back if it is no longer 0. (The build's BPF target has no
/// atomic add that returns the value before.) Whatever the interleaving of two CPUs' changes
/// to one bucket, the last thing done to its bit then follows the count's last change, so a
/// bit is clear over a count that is not 0 only in the instant between such a clear and its
/// undoing: a segment of that bucket passing then goes without its flow's state (fail open,
/// as after an LRU eviction). A bit left set over a count of 0 costs a count read; the
/// controller's upkeep clears it. (The reads after the atomic operations rely on x86-64's
/// locked instructions ordering them, as elsewhere in this program.)
#[inline(always)]
fn bucket_add(b: u32, delta: i32) {
    let Some(p) = FLOW_FILTER.get_ptr_mut(b) else { return };
    let (w, m) = bit_of(b);
    let Some(bits) = FLOW_BITS.get_ptr_mut(w) else { return };
    // SAFETY: valid, aligned map value pointers for this program run.
    unsafe {
        crate::atomic::add_u32(p, delta as u32);
        if core::ptr::read_volatile(p) != 0 {
            if core::ptr::read_volatile(bits) & m == 0 {
                crate::atomic::set_bits(bits, m);
            }
        } else {
            crate::atomic::clear_bits(bits, m);
            if core::ptr::read_volatile(p) != 0 {
                crate::atomic::set_bits(bits, m);
            }
        }
    }
}

/// Whether the count says a parked reader may be the flow's.
#[inline(always)]
pub fn may_be_parked(n: u32) -> bool {
    n >= PARKED_ONE
}

/// The flow's FLOWS entry (ask `count` first: most segments' buckets hold nothing).
#[inline(always)]
pub fn get(k: &FlowKey) -> Option<*mut FlowState> {
    FLOWS.get_ptr_mut(k)
}

/// A flow whose SYN was seen and whose first data byte was not yet (tcp_names.rs): one slot
/// per filter bucket, counted in the bucket like a FLOWS entry while in use. A slot whose wait
/// is over is freed by the next packet of its bucket that looks at it, so a flow that never
/// sends data holds its bucket busy for at most HEAD_WAIT_NS.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Head {
    /// A second hash of the flow key, never 0 for a slot in use; 0: the slot is free.
    pub tag: u32,
    /// Sequence number of the flow's first data byte (the SYN's + 1).
    pub next_seq: u32,
    /// bpf_ktime_get_ns() when the wait ends.
    pub until: u64,
}

/// How long after its SYN a flow's first data byte is awaited, data ahead of it dropped.
pub const HEAD_WAIT_NS: u64 = 5_000_000_000;

// What head_check found.
/// The flow's first data byte is not awaited (no slot, another flow's, or the wait is over).
pub const HEAD_NONE: u32 = 0;
/// The segment starts at the flow's first data byte (the slot is freed).
pub const HEAD_HERE: u32 = 1;
/// The segment lies ahead of the flow's first data byte, which has not passed yet.
pub const HEAD_AHEAD: u32 = 2;

#[inline(always)]
fn tag(k: &FlowKey) -> u32 {
    // Each word multiplied in before the next (see FlowKey::bucket: XORed together, two
    // words' differences could cancel and two flows share a bucket and a tag). Odd multipliers
    // only, so no step loses a bit.
    let w = |b: &[u8; 16], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut h = (k.dport as u32) << 16 | k.sport as u32;
    let mut i = 0;
    while i < 16 {
        h = (h ^ w(&k.src, i)).wrapping_mul(0xCC9E_2D51);
        h = (h ^ w(&k.dst, i)).wrapping_mul(0x1B87_3593);
        i += 4;
    }
    h = (h ^ k.v6).wrapping_mul(0xE654_6B65);
    h | 1
}

#[inline(always)]
fn free_head(b: u32, slot: &mut Head) {
    slot.tag = 0;
    bucket_add(b, -1);
}

/// A client's SYN: await the flow's first data byte, `next_seq`. A slot another flow holds
/// and still waits in is left alone (this flow goes without: fail open).
#[inline(always)]
pub fn head_seen(k: &FlowKey, next_seq: u32, now: u64) {
    let b = bucket(k);
    let Some(p) = HEADS.get_ptr_mut(b) else { return };
    // SAFETY: a valid map value pointer for this program run.
    let slot = unsafe { &mut *p };
    let t = tag(k);
    if slot.tag == 0 {
        filter_add(k, 1);
    } else if slot.tag != t && now < slot.until {
        return;
    }
    slot.tag = t;
    slot.next_seq = next_seq;
    slot.until = now + HEAD_WAIT_NS;
}

/// Where a data segment of a flow without state stands against its awaited first byte.
#[inline(always)]
pub fn head_check(k: &FlowKey, seq: u32, now: u64) -> u32 {
    let b = bucket(k);
    let Some(p) = HEADS.get_ptr_mut(b) else { return HEAD_NONE };
    // SAFETY: a valid map value pointer for this program run.
    let slot = unsafe { &mut *p };
    if slot.tag == 0 {
        return HEAD_NONE;
    }
    if now >= slot.until {
        free_head(b, slot);
        return HEAD_NONE;
    }
    if slot.tag != tag(k) {
        return HEAD_NONE;
    }
    let ahead = seq.wrapping_sub(slot.next_seq) as i32;
    if ahead > 0 {
        return HEAD_AHEAD;
    }
    // The first byte (or, before it, data no TCP sends: not followed either way).
    free_head(b, slot);
    if ahead == 0 { HEAD_HERE } else { HEAD_NONE }
}

#[inline(always)]
fn filter_add(k: &FlowKey, delta: i32) {
    bucket_add(bucket(k), delta);
}

/// A client's SYN opens a new connection on the flow's addresses and ports: what was kept for
/// an earlier one (a reader, "blocked") no longer applies. A client whose connection was reset
/// may reuse its port at once (a reset leaves no TIME_WAIT), and a "blocked" kept for the old
/// connection would otherwise reset the new one, whatever name it asks for.
#[inline(always)]
pub fn forget_earlier(k: &FlowKey) {
    match count(k) {
        n if n != 0 => {
            remove(k);
            if let Some(p) = WAITS.get_ptr_mut(bucket(k)) {
                // SAFETY: a valid map value pointer for this program run.
                let slot = unsafe { &mut *p };
                if slot.tag != 0 && slot.tag == tag(k) {
                    slot.tag = 0;
                    filter_add(k, -(PARKED_ONE as i32));
                }
            }
        }
        _ => {}
    }
}

/// A ClientHello reader parked between segments at an extension header (the common wait: a
/// browser's post-quantum key share fills the first segment, the server name follows in the
/// next) or inside the server name (its first bytes in NAME_WAITS), one slot per filter bucket,
/// counted in the bucket like a FLOWS entry while in use. Such a reader is a handful of numbers;
/// parking them here instead of in FLOWS saves the LRU's insert, lookup and delete of a 456-byte
/// value, each with a hash of the 40-byte key and a bucket lock, for one cache line written and
/// read. A reader in any other state, or one whose slot another flow holds, goes to FLOWS as
/// before.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Wait {
    /// `tag` of the flow key (never 0); 0: the slot is free.
    pub tag: u32,
    /// Sequence number of the next stream byte the reader expects.
    pub next_seq: u32,
    /// Bytes of the current extension's body still to pass over before the next header.
    pub skip: u32,
    /// Bytes left in the current record and in the extensions.
    pub rec_remaining: u32,
    pub ext_remaining: u32,
    /// A reader inside the server name: the name's length and the bytes of it read (kept in
    /// NAME_WAITS); both 0 for a reader at an extension header.
    pub name_len: u16,
    pub name_got: u16,
    /// bpf_jiffies64() after which another flow may take the slot.
    pub until: u64,
}

const _: () = assert!(core::mem::size_of::<Wait>() == 32);

/// The first bytes of the server name of a reader parked inside it (a name cut by the segment
/// boundary): fewer slots than WAITS (such names are rare, a few in a hundred two-segment
/// hellos), slot `bucket % NAME_WAIT_SLOTS`, held for its WAITS slot's reader. Where another
/// bucket's reader holds the slot, the reader goes to FLOWS.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct NameWait {
    /// The filter bucket and `tag` of the reader whose bytes these are; tag 0: free.
    pub bucket: u32,
    pub tag: u32,
    /// bpf_jiffies64() after which another reader may take the slot (its WAITS slot's).
    pub until: u64,
    pub name: [u8; NAME_WAIT_BYTES],
}

/// A name's bytes a NameWait holds: names are at most 253 bytes.
pub const NAME_WAIT_BYTES: usize = 256;

const _: () = assert!(core::mem::size_of::<NameWait>() == 16 + NAME_WAIT_BYTES);

/// How long a parked reader keeps its slot against other flows, in jiffies: 2.5 s at the
/// highest tick rate Linux builds with (HZ = 1000), 10 s at 250, 25 s at 100. A client sends a
/// hello's next segment in the same flight, and a lost one again after its retransmission
/// timeout (1 s at first); a reader whose slot was taken over after that passes its flow
/// unjudged (fail open), as an evicted FLOWS reader does. (Jiffies, not nanoseconds: the
/// verifier turns bpf_jiffies64 into one load, where a clock read is a helper call on the path
/// of every parked reader.)
pub const WAIT_JIFFIES: u64 = 2_500;

/// Copies the first `bytes` (<= 256) of `src` to `dst` in 8-byte words (a plain copy becomes a
/// byte-wise memcpy call).
#[inline(always)]
pub fn copy_name(dst: *mut u64, src: *const u64, bytes: usize) {
    let words = (bytes + 7) / 8;
    let mut i = 0;
    while i < 32 {
        if i >= words {
            break;
        }
        // SAFETY: the callers' buffers are 8-aligned and hold at least 256 bytes; i < 32.
        unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
        i += 1;
    }
}

/// Parks `st` (a TLS reader before an extension header, nothing of the name read, or inside
/// the server name) in its bucket's slot; false when it is in another state or the slot (or,
/// inside the name, its NAME_WAITS slot) is another flow's. (The slot's tag is read once: read
/// twice, the verifier follows every mix of the two answers, 200 000 instructions more.)
#[inline(always)]
pub fn park(k: &FlowKey, st: &FlowState) -> bool {
    let at_header = crate::tls::before_extension_header(st) && st.ext_remaining != 0;
    let in_name = crate::tls::at_name(st) && st.name_got != 0 && st.name_got < st.name_len && st.name_len <= 253;
    if st.proto != PROTO_TLS || !(at_header || in_name) || st.rec_hdr != 5 || st.rec_remaining == 0 || st.ahead_drops != 0 {
        return false;
    }
    let b = bucket(k);
    let Some(p) = WAITS.get_ptr_mut(b) else { return false };
    // SAFETY: a valid map value pointer for this program run.
    let slot = unsafe { &mut *p };
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_jiffies64() };
    let t = tag(k);
    let free = slot.tag == 0;
    if !free && slot.tag != t && now < slot.until {
        return false;
    }
    if in_name && !park_name(b, t, now, st) {
        return false;
    }
    if free {
        filter_add(k, PARKED_ONE as i32);
    }
    // A free slot, this flow's own, or one whose wait is over (its count is taken over).
    slot.tag = t;
    slot.next_seq = st.next_seq;
    slot.skip = st.skip;
    slot.rec_remaining = st.rec_remaining;
    slot.ext_remaining = st.ext_remaining;
    let (name_len, name_got) = if in_name { (st.name_len as u16, st.name_got as u16) } else { (0, 0) };
    slot.name_len = name_len;
    slot.name_got = name_got;
    slot.until = now + WAIT_JIFFIES;
    true
}

/// Copies the first `bytes` (<= NAME_WAIT_BYTES) of `src` to `dst`, two 8-aligned buffers of
/// at least NAME_WAIT_BYTES, in 64-byte pieces of 8 word loads and stores in straight code: a
/// name's few cache lines, not all four, and at most four ways out of the loop for the verifier
/// to follow (a word at a time, 32).
#[inline(always)]
fn copy_lines(dst: *mut u8, src: *const u8, bytes: usize) {
    let mut at = 0;
    while at < NAME_WAIT_BYTES {
        if at >= bytes {
            break;
        }
        // SAFETY: at + 64 <= NAME_WAIT_BYTES; the callers' buffers are 8-aligned, hold at least
        // that and do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(src.add(at) as *const [u64; 8], dst.add(at) as *mut [u64; 8], 1) };
        at += 64;
    }
}

/// Keeps the name bytes `st` has read in bucket `b`'s NAME_WAITS slot for the reader tagged
/// `t`; false when another reader holds the slot.
#[inline(always)]
fn park_name(b: u32, t: u32, now: u64, st: &FlowState) -> bool {
    let Some(p) = NAME_WAITS.get_ptr_mut(b % NAME_WAIT_SLOTS) else { return false };
    // SAFETY: a valid map value pointer for this program run.
    let slot = unsafe { &mut *p };
    if slot.tag != 0 && !(slot.bucket == b && slot.tag == t) && now < slot.until {
        return false;
    }
    copy_lines(slot.name.as_mut_ptr(), st.name.as_ptr(), st.name_got as usize);
    slot.bucket = b;
    slot.tag = t;
    slot.until = now + WAIT_JIFFIES;
    true
}

/// The flow's parked reader, if its bucket's slot holds one, taken out of the slot into `st`
/// (the state the streaming reader had when parked). Another flow's reader whose wait is over
/// (a hello abandoned after its first segment) is freed on the way, as `head_check` frees an
/// expired head: otherwise its count would make every data segment of the bucket's flows pay
/// the lookups until some other reader took the slot over. A reader inside the name whose
/// bytes are gone (never, while its wait lasts) is freed and not returned: its flow passes
/// unjudged, as after an eviction from FLOWS.
#[inline(always)]
pub fn unpark(k: &FlowKey, st: &mut FlowState) -> bool {
    let b = bucket(k);
    let Some(p) = WAITS.get_ptr_mut(b) else { return false };
    // SAFETY: a valid map value pointer for this program run.
    let slot = unsafe { &mut *p };
    if slot.tag == 0 {
        return false;
    }
    let t = tag(k);
    if slot.tag != t {
        // SAFETY: a plain helper call (inlined to a load).
        if unsafe { bpf_jiffies64() } >= slot.until {
            slot.tag = 0;
            filter_add(k, -(PARKED_ONE as i32));
        }
        return false;
    }
    crate::tls::reset(st, slot.next_seq);
    let got = if slot.name_len == 0 {
        crate::tls::at_extension_header(st, slot.rec_remaining, slot.ext_remaining);
        st.skip = slot.skip;
        true
    } else {
        unpark_name(b, t, slot.name_got as u32, st) && {
            crate::tls::in_name(st, slot.rec_remaining, slot.ext_remaining, slot.name_len as u32, slot.name_got as u32);
            true
        }
    };
    slot.tag = 0;
    filter_add(k, -(PARKED_ONE as i32));
    got
}

/// The name bytes bucket `b`'s reader tagged `t` parked, copied into `st`, the slot freed.
#[inline(always)]
fn unpark_name(b: u32, t: u32, got: u32, st: &mut FlowState) -> bool {
    let Some(p) = NAME_WAITS.get_ptr_mut(b % NAME_WAIT_SLOTS) else { return false };
    // SAFETY: a valid map value pointer for this program run.
    let slot = unsafe { &mut *p };
    if slot.tag != t || slot.bucket != b {
        return false;
    }
    copy_lines(st.name.as_mut_ptr(), slot.name.as_ptr(), got as usize);
    slot.tag = 0;
    true
}

/// Stores new state for a flow (counted in the filter).
#[inline(always)]
pub fn insert(k: &FlowKey, st: &FlowState) -> bool {
    if FLOWS.insert(k, st, 0).is_ok() {
        filter_add(k, 1);
        true
    } else {
        false
    }
}

/// Forgets a flow's state.
#[inline(always)]
pub fn remove(k: &FlowKey) {
    if FLOWS.remove(k).is_ok() {
        filter_add(k, -1);
    }
}
