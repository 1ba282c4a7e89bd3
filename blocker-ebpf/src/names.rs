//! Matching a name against the listed names, on label boundaries.
//!
//! A name is first brought into a per-CPU scratch buffer as lowercase labels with their
//! offsets (from dotted text: SNI, Host; or from DNS wire format), then hashed label by label
//! from the right with the shared chain (blocker-common name.rs). Every label-aligned suffix
//! costs one hash step and one bit of the slot's name filter (blocker-common name_filter.rs);
//! only where that bit is set, a NAMES lookup. The full name matches entries whose mode includes
//! MATCH_SELF, a proper suffix those with MATCH_BELOW. An allow entry anywhere wins; else an
//! enforced block entry anywhere (the most specific one names the verdict); else the most
//! specific entry of a list in shadow mode, which is counted but never enforced.

use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};
use blocker_common::{
    name::{Chain, LabelBytes, MATCH_BELOW, MATCH_SELF, MAX_LABELS, MAX_LABEL_LEN, MAX_NAME_LEN, NameKey, NameValue},
    name_filter,
};

use crate::{
    looping::{BREAK, CONTINUE, Callback, repeat},
    maps::{HASH_KEYS, NAME_FILTER, NAMES, NAME_SCRATCH},
};

/// Size of the byte buffers names are assembled in: a power of two, so masking an offset
/// with `BUF - 1` keeps any access (up to 256 bytes long) provably inside `BUF + 256`.
pub const BUF: usize = 256;
pub const BUF_ALLOC: usize = 2 * BUF + 8;

#[repr(C, align(8))]
pub struct NameScratch {
    pub bytes: [u8; BUF_ALLOC],
    pub starts: [u8; 128],
    pub lens: [u8; 128],
    pub nlabels: u32,
    pub len: u32,
    // Loop state of split_dotted and match_labels. It lives here, in map memory, rather than
    // in the loops' stack contexts, so the verifier sees one state per callback and checks it
    // once instead of once per iteration.
    label_start: u32,
    ok: u32,
    /// The hash of the labels matched so far (blocker-common name.rs).
    chain: Chain,
    slot: u32,
    remaining: u32,
    blocked: u32,
    allowed: u32,
    shadowed: u32,
    /// The target of `live_half`'s fence: a per-CPU counter nothing reads.
    fence: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    NotListed,
    Allowed(u32),
    Blocked(u32),
    /// Only entries of lists in shadow mode match: the most specific one. Passes, counted.
    Shadow(u32),
    /// Not a valid name (empty, too long, a character no listed name has).
    Invalid,
}

/// Lowercases `len` bytes already in `scratch.bytes` and splits them into labels at dots. One
/// trailing dot is ignored.
struct ScratchCtx {
    s: *mut NameScratch,
}

/// Bytes of a dotted name one split callback handles: one 8-byte word.
const SPLIT_STRIDE: usize = 8;

const LANES_LOW: u64 = 0x0101_0101_0101_0101;
const LANES_HIGH: u64 = 0x8080_8080_8080_8080;

/// Lanes (bytes) of `x`, all below 0x80, that are >= `c` (< 0x80): their high bit. No lane
/// borrows from the next, as each is at least 0x80 before the subtraction.
#[inline(always)]
fn lanes_ge(x: u64, c: u8) -> u64 {
    ((x | LANES_HIGH) - c as u64 * LANES_LOW) & LANES_HIGH
}

/// Lanes of `x`, all below 0x80, equal to `c`: their high bit (no carries: each lane + 0x7f
/// stays below 0x100).
#[inline(always)]
fn lanes_eq(x: u64, c: u8) -> u64 {
    !((x ^ c as u64 * LANES_LOW) + 0x7f * LANES_LOW) & LANES_HIGH
}

/// The name bytes of word `w` in `lanes` (0xff for each lane that holds one), all at once:
/// None when one is a byte no listed name holds (`a-z A-Z 0-9 - _`, and `.` where `dots`);
/// else `w` with those capitals lowered, and the high bit of each dot's lane.
#[inline(always)]
fn lower_lanes(w: u64, lanes: u64, dots: bool) -> Option<(u64, u64)> {
    let high = LANES_HIGH & lanes;
    if w & high != 0 {
        // A byte of 0x80 or more.
        return None;
    }
    let x = w & lanes;
    let upper = lanes_ge(x, b'A') & !lanes_ge(x, b'Z' + 1);
    let lower = lanes_ge(x, b'a') & !lanes_ge(x, b'z' + 1);
    let digit = lanes_ge(x, b'0') & !lanes_ge(x, b'9' + 1);
    let dot_lanes = if dots { lanes_eq(x, b'.') & high } else { 0 };
    let valid = upper | lower | digit | lanes_eq(x, b'-') | lanes_eq(x, b'_') | dot_lanes;
    if valid & high != high {
        return None;
    }
    // 'A' + 0x20 = 'a': the high bit of each capital's lane, shifted to 0x20.
    Some((w + ((upper & high) >> 2), dot_lanes))
}

/// Records the label that ends at `end` (a dot, or the end of the name); false when it cannot
/// be one (empty, longer than 63 bytes, one label too many).
#[inline(always)]
fn end_label(s: &mut NameScratch, end: usize) -> bool {
    let start = s.label_start as usize;
    let llen = end.saturating_sub(start);
    if llen == 0 || llen > MAX_LABEL_LEN || s.nlabels as usize >= MAX_LABELS {
        return false;
    }
    let n = (s.nlabels as usize) & 127;
    s.starts[n] = start as u8;
    s.lens[n] = llen as u8;
    s.nlabels += 1;
    s.label_start = end as u32 + 1;
    true
}

/// Words of a dotted name split, and labels of a name matched, in straight code before a
/// `bpf_loop` takes over: a name of up to 32 bytes and 3 labels, most of the names a link
/// carries, is judged without a callback. Each callback's return is a branch the CPU
/// mispredicts where the kernel's return-stack mitigations are on (this VM's: SRSO "Safe
/// RET"), and a name paid one per word and one per label.
const SPLIT_INLINE: u32 = 4;
const MATCH_INLINE: u32 = 3;

/// Runs `word` over the first `words` 8-byte words of the scratch until it returns BREAK: the
/// first SPLIT_INLINE in straight code, the rest through `rest` (which is `word` for the words
/// after those) in `bpf_loop`.
#[inline(always)]
fn by_words(s: &mut NameScratch, words: u32, word: fn(&mut NameScratch, usize) -> i64, rest: Callback<ScratchCtx>) {
    let mut i = 0;
    while i < SPLIT_INLINE && i < words {
        if word(s, i as usize) == BREAK {
            return;
        }
        i += 1;
    }
    if words > SPLIT_INLINE {
        let mut c = ScratchCtx { s: s as *mut NameScratch };
        repeat(words - SPLIT_INLINE, rest, &mut c);
    }
}

/// `split_word` for the words after the first SPLIT_INLINE.
extern "C" fn split_step(i: u64, c: *mut ScratchCtx) -> i64 {
    // SAFETY: bpf_loop passes back the pointer repeat() was given.
    let s = unsafe { &mut *(*c).s };
    split_word(s, i as usize + SPLIT_INLINE as usize)
}

/// One 8-byte word of the dotted name, all its bytes at once: every byte must be one a listed
/// name can hold or a dot, capitals are lowered in place, and each dot (and the name's end,
/// when it lies in this word) ends a label. A single trailing dot ends the name.
#[inline(always)]
fn split_word(s: &mut NameScratch, i: usize) -> i64 {
    let base = (i * SPLIT_STRIDE) & (BUF - 1);
    let len = s.len as usize;
    let lanes = len.saturating_sub(base);
    let in_name = if lanes >= 8 { !0u64 } else { (1u64 << (8 * lanes)) - 1 };
    let p = s.bytes.as_mut_ptr().wrapping_add(base) as *mut u64;
    // SAFETY: base < BUF and the buffer holds BUF_ALLOC >= BUF + 8 bytes; base is a multiple
    // of 8 and the buffer 8-aligned (NameScratch is align(8), the bytes at offset 0).
    let w = unsafe { core::ptr::read(p) };
    let Some((lowered, dots)) = lower_lanes(w, in_name, true) else {
        s.ok = 0;
        return BREAK;
    };
    // SAFETY: as the read above.
    unsafe { core::ptr::write(p, lowered) };
    let mut d = dots;
    let mut k = 0;
    while k < SPLIT_STRIDE {
        if d == 0 {
            break;
        }
        // The lowest dot's lane: its bit, moved to bit 0 of the lane, times a constant whose
        // byte 7 - j is j puts the lane number in the top byte.
        let bit = d & d.wrapping_neg();
        let lane = ((bit >> 7).wrapping_mul(0x0001_0203_0405_0607) >> 56) as usize;
        let at = base + lane;
        if !end_label(s, at) {
            s.ok = 0;
            return BREAK;
        }
        if at + 1 == len {
            // A trailing dot ends the name.
            return BREAK;
        }
        d &= d - 1;
        k += 1;
    }
    if lanes < 8 {
        // The name ends in this word: its last label ends there.
        if !end_label(s, len) {
            s.ok = 0;
        }
        return BREAK;
    }
    CONTINUE
}

/// The per-CPU scratch, with `len` bytes of a dotted name loaded at its start.
#[inline(always)]
pub fn scratch() -> Option<&'static mut NameScratch> {
    // SAFETY: per-CPU map value; XDP runs with preemption off, so nothing else on this CPU
    // uses it while this program runs.
    NAME_SCRATCH.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// Splits the dotted name in the scratch (its `len` bytes) into lowercase labels.
#[inline(always)]
pub fn split_dotted(s: &mut NameScratch) -> bool {
    let len = s.len;
    if len == 0 || len as usize > MAX_NAME_LEN + 1 {
        return false;
    }
    // One byte over the longest name is only its trailing dot (a Host of 254 bytes).
    if len as usize == MAX_NAME_LEN + 1 && s.bytes[(len as usize - 1) & (BUF - 1)] != b'.' {
        return false;
    }
    s.nlabels = 0;
    s.label_start = 0;
    s.ok = 1;
    // Bytes 0..=len, SPLIT_STRIDE per word; the word holding the byte at `len` always ends
    // the split (BREAK).
    by_words(s, len / SPLIT_STRIDE as u32 + 1, split_word, split_step);
    s.ok != 0 && s.nlabels > 0 && (s.nlabels as usize) <= MAX_LABELS
}

struct ScratchLabel {
    s: *const NameScratch,
    start: usize,
}

impl LabelBytes for ScratchLabel {
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        let off = (self.start + i * 8) & (BUF - 1);
        // One 8-byte load at any alignment (the target would split an unaligned read into eight
        // byte loads; the verifier allows misaligned map-memory loads).
        // SAFETY: off < BUF and BUF + 8 <= BUF_ALLOC: 8 bytes of map memory.
        unsafe { crate::cursor::load64((*self.s).bytes.as_ptr().add(off)) }
    }
}

/// `match_label` for the labels after the first MATCH_INLINE.
extern "C" fn match_step(_i: u64, c: *mut ScratchCtx) -> i64 {
    // SAFETY: bpf_loop passes back the pointer match_labels() gave it.
    match_label(unsafe { &mut *(*c).s })
}

/// The next label from the right: the chain hash of the suffix it starts, its filter bit and,
/// where that is set, its NAMES entry.
#[inline(always)]
fn match_label(c: &mut NameScratch) -> i64 {
    if c.remaining == 0 {
        return BREAK;
    }
    c.remaining -= 1;
    let idx = (c.remaining as usize) & 127;
    let (start, len) = (c.starts[idx] as usize, c.lens[idx] as usize);
    let label = ScratchLabel { s: c as *const NameScratch, start };
    c.chain.absorb(&label, len);
    let mix = c.chain.filter_word();
    if !filter_may_hold(c.slot, mix) {
        // No NAMES key of this slot has the suffix's bit: not listed, no lookup (and no
        // finalization: the bit is the top of the key, and it comes from the short mix).
        return CONTINUE;
    }
    let hash = c.chain.key(mix);
    let want = if c.remaining == 0 { MATCH_SELF } else { MATCH_BELOW };
    if let Some(v) = live_half(hash, c.slot, &raw mut c.fence) {
        if v.allow_mode as u32 & want != 0 && c.allowed == 0 {
            c.allowed = v.allow_id;
        }
        // The most specific block entry names the verdict.
        if v.block_mode as u32 & want != 0 {
            c.blocked = v.block_id;
        }
        // Likewise the most specific shadow entry; it only counts when nothing enforced matches.
        if v.shadow_mode as u32 & want != 0 {
            c.shadowed = v.shadow_id;
        }
    }
    CONTINUE
}

/// The live slot's half of the NAMES element for `hash`, copied; all modes 0 where the live
/// generation does not list the name. Both slots share the element, so an install may replace
/// it while packets read it, and the kernel's hash map may hand a replaced element's memory to
/// the next element it writes at once (bpf_mem_alloc): a copy taken from the old element could
/// be another name's. It counts only if a second lookup still finds the same element; else the
/// new one is read the same way, once more. A name replaced twice meanwhile (an install writes
/// each key once, so practically never) is taken as not listed for this packet. The copy must
/// happen before the second lookup: x86-64 keeps loads in order, and for arm64, which may not,
/// an atomic fetch-or of 0 on `fence` stands between them (the JIT emits it with acquire and
/// release semantics there; on x86-64 it is a locked instruction on a line of this CPU's own).
#[inline(always)]
fn live_half(hash: u64, slot: u32, fence: *mut u64) -> Option<NameValue> {
    let key = NameKey { hash };
    let mut at = NAMES.get_ptr(&key)?;
    let mut tries = 0;
    while tries < 2 {
        // SAFETY: a map value pointer from the lookup, valid for this program run; read once,
        // before the next lookup (a helper call, which the compiler does not move loads across).
        let v = unsafe { core::ptr::read_volatile(at) }.slot[(slot & 1) as usize];
        // SAFETY: `fence` points at this CPU's NameScratch, 8-aligned map memory.
        let n = unsafe { core::intrinsics::atomic_or::<u64, u64, { core::intrinsics::AtomicOrdering::SeqCst }>(fence, 0) };
        // Never true (nothing else writes `fence`); it keeps the fetch's result in use.
        if n != 0 {
            return None;
        }
        let again = NAMES.get_ptr(&key)?;
        if again == at {
            return Some(v);
        }
        at = again;
        tries += 1;
    }
    None
}

/// The slot's name filter (blocker-common name_filter.rs): false proves no NAMES key of the
/// slot has the top bits of `mix`, a suffix's `Chain::filter_word` (the top of its key). One
/// array word, where the NAMES lookup is a hash-table walk that misses the cache at a million
/// names.
#[inline(always)]
fn filter_may_hold(slot: u32, mix: u64) -> bool {
    let (i, mask) = name_filter::index_and_mask(slot, mix);
    match NAME_FILTER.get(i) {
        Some(w) => *w & mask != 0,
        // Indices are always < MAP_WORDS; were one not, the lookup decides, as without a filter.
        None => true,
    }
}

/// Judges the labels in the scratch against the live generation.
#[inline(always)]
pub fn match_labels(s: &mut NameScratch, slot: u32) -> NameMatch {
    let Some(key) = HASH_KEYS.get(slot & 1) else { return NameMatch::NotListed };
    let n = s.nlabels;
    if n == 0 || n as usize > MAX_LABELS {
        return NameMatch::Invalid;
    }
    s.chain = Chain::new(key);
    s.slot = slot;
    s.remaining = n;
    s.blocked = 0;
    s.allowed = 0;
    s.shadowed = 0;
    let mut i = 0;
    while i < MATCH_INLINE {
        if match_label(s) == BREAK {
            break;
        }
        i += 1;
    }
    if s.remaining != 0 {
        let mut c = ScratchCtx { s: s as *mut NameScratch };
        repeat(s.remaining, match_step, &mut c);
    }
    if s.allowed != 0 {
        NameMatch::Allowed(s.allowed)
    } else if s.blocked != 0 {
        NameMatch::Blocked(s.blocked)
    } else if s.shadowed != 0 {
        NameMatch::Shadow(s.shadowed)
    } else {
        NameMatch::NotListed
    }
}

/// Walks a DNS QNAME copied into the scratch one 8-byte word per iteration, as `split_step`
/// walks dotted text (a call per byte was the dearest part of a query's judgement: each
/// callback return costs a branch the CPU mispredicts where the kernel's return-stack
/// mitigations are on). `label_start` is where the next length byte sits: each one in this
/// word records a label, the root byte ends the name; then the word's label bytes are checked
/// and lowercased in place, all at once. `len` holds the bytes copied, past which a name has
/// run out of message. The first SPLIT_INLINE words in straight code, as `split_dotted` does.
#[inline(always)]
fn wire_word(s: &mut NameScratch, i: usize) -> i64 {
    let base = (i * SPLIT_STRIDE) & (BUF - 1);
    let avail = s.len as usize;
    // Lanes of this word inside the copied bytes; the loop never starts a word past them.
    let lanes = avail.saturating_sub(base);
    let mut end = if lanes >= 8 { 8 } else { lanes };
    let p = s.bytes.as_mut_ptr().wrapping_add(base) as *mut u64;
    // SAFETY: base < BUF, the buffer holds BUF_ALLOC >= BUF + 8 bytes, base is a multiple of 8
    // and the buffer 8-aligned (NameScratch is align(8), the bytes at offset 0).
    let w = unsafe { core::ptr::read(p) };
    let mut length_lanes = 0u64;
    let mut done = false;
    let mut k = 0;
    while k < SPLIT_STRIDE {
        let at = s.label_start as usize;
        if at >= base + end {
            break;
        }
        let lane = at.saturating_sub(base) & 7;
        let b = s.bytes[at & (BUF - 1)];
        length_lanes |= 0xffu64 << (8 * lane);
        if b == 0 {
            // The root label ends the name; `len` becomes its wire length.
            s.len = at as u32 + 1;
            end = lane;
            done = true;
            break;
        }
        // 0x40..=0xff covers compression pointers (0xc0) and the reserved label types: a
        // question is never compressed, so either means a query we do not judge.
        if b as usize > MAX_LABEL_LEN || s.nlabels as usize >= MAX_LABELS {
            s.ok = 0;
            return BREAK;
        }
        let n = crate::cursor::opaque(s.nlabels as usize) & 127;
        s.starts[n] = (at + 1) as u8;
        s.lens[n] = b;
        s.nlabels += 1;
        s.label_start = (at + 1) as u32 + b as u32;
        k += 1;
    }
    // The label bytes: lanes before the name's end (or the copy's), less the length bytes.
    let in_labels = if end >= 8 { !0u64 } else { (1u64 << (8 * end)) - 1 } & !length_lanes;
    // A dot inside a wire label is a byte no listed name holds.
    let Some((lowered, _)) = lower_lanes(w, in_labels, false) else {
        s.ok = 0;
        return BREAK;
    };
    // SAFETY: as the read above.
    unsafe { core::ptr::write(p, lowered) };
    if done {
        s.ok = WIRE_DONE;
        return BREAK;
    }
    if lanes <= 8 {
        // The copy ends in this word and the name has not: it runs past the message.
        s.ok = 0;
        return BREAK;
    }
    CONTINUE
}

/// `wire_word` for the words after the first SPLIT_INLINE.
extern "C" fn wire_step(i: u64, c: *mut ScratchCtx) -> i64 {
    // SAFETY: bpf_loop passes back the pointer load_wire_name() gave it.
    let s = unsafe { &mut *(*c).s };
    wire_word(s, i as usize + SPLIT_INLINE as usize)
}

const WIRE_DONE: u32 = 2;

/// Loads a DNS QNAME (wire format: length-prefixed labels ending in a zero byte) that starts at
/// packet offset `off`, with `avail` bytes of message after it, into the scratch as lowercase
/// labels. Afterwards `len` is the name's wire length (root byte included) and `nlabels` may be
/// 0 (the root name). False, and nothing to judge, for a compression pointer, a label longer
/// than 63 bytes, a name longer than 255 bytes or running past `avail`, or a character no
/// listed name can have. The packet itself is not changed: the client's case stays as sent.
#[inline(always)]
pub fn load_wire_name(ctx: &XdpContext, s: &mut NameScratch, off: usize, avail: u32) -> bool {
    // 255 bytes is the longest wire name (RFC 1035 §3.1): one copy, then a walk in map memory.
    let n = if avail > (BUF - 1) as u32 { (BUF - 1) as u32 } else { avail };
    let n = n & (BUF as u32 - 1);
    if n == 0 {
        return false;
    }
    // SAFETY: helper copies n (1..=255) bytes into a buffer of BUF_ALLOC bytes.
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, off as u32, s.bytes.as_mut_ptr().cast(), n) } != 0 {
        return false;
    }
    // `len` is the bytes copied until the walk finds the root byte and makes it the name's.
    s.len = n;
    s.nlabels = 0;
    s.label_start = 0;
    s.ok = 1;
    // Every walk ends in BREAK by its last word at the latest (the copy's end).
    by_words(s, n.div_ceil(SPLIT_STRIDE as u32), wire_word, wire_step);
    s.ok == WIRE_DONE
}
