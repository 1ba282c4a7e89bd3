//! Name matching keys, shared by the kernel and the controller so both compute the same value.
//!
//! A listed name is stored in the kernel as one 64-bit keyed hash, never as text. The hash of a
//! name is a chain over its labels from the right: `h(root) = ROOT`, then
//! `h(label.parent) = SipHash-1-3_(k0, k1 ⊕ h(parent))(label)`: the parent's hash keys the
//! label's, so the chain costs one SipHash of the label alone per label (earlier builds
//! hashed the parent's 8 bytes as a message word, a round more per label). Walking a name from its
//! last label to its first yields the hash of every label-aligned suffix (`com`,
//! `example.com`, `www.example.com`) at a cost of one short SipHash per label, so matching a
//! name against "this name and its subdomains" entries costs one lookup per label and can only
//! ever match on label boundaries: `xexample.com` has no suffix `example.com`.
//!
//! The key `k` is secret per deployment: a dump of the kernel maps reveals neither the names
//! nor a way to precompute colliding names.

use crate::assert_size;

pub const MAX_NAME_LEN: usize = 253;
pub const MAX_LABEL_LEN: usize = 63;
/// A 253-byte name has at most 127 labels.
pub const MAX_LABELS: usize = 127;

/// Chain value of the empty suffix (the root).
pub const ROOT: u64 = 0;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashKey {
    pub k0: u64,
    pub k1: u64,
}
assert_size!(HashKey, 16);

/// Where a label's bytes come from: the controller hashes slices, the kernel hashes a scratch
/// buffer in map memory. `word(i)` is bytes `8i..8i+8` of the label as a little-endian u64; bytes
/// past the label's end may be anything (they are masked off).
pub trait LabelBytes {
    fn word(&self, i: usize) -> u64;
}

impl LabelBytes for &[u8] {
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        let mut b = [0u8; 8];
        let start = i * 8;
        let mut j = 0;
        while j < 8 {
            if start + j < self.len() {
                b[j] = self[start + j];
            }
            j += 1;
        }
        u64::from_le_bytes(b)
    }
}

#[inline(always)]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

#[inline(always)]
fn compress(v: &mut [u64; 4], m: u64) {
    v[3] ^= m;
    sipround(v);
    v[0] ^= m;
}

/// One step of the chain: the hash of `label.parent` given the hash of `parent`, SipHash-1-3 of
/// the label under the key (k0, k1 ⊕ parent). `len` is the label length (1..=63; larger values
/// are clamped, which no valid name reaches).
#[inline(always)]
pub fn label_step<L: LabelBytes>(key: &HashKey, parent: u64, label: &L, len: usize) -> u64 {
    let len = if len > MAX_LABEL_LEN { MAX_LABEL_LEN } else { len };
    // The parent's hash goes into the key, not the message: one compression less per label
    // (a short label's hash is then 4 rounds, not 5), every step still a SipHash-1-3.
    let k1 = key.k1 ^ parent;
    let mut v = [
        key.k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        key.k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let full = len / 8;
    let mut i = 0;
    // At most 7 full words in a 63-byte label: a fixed bound the verifier can see.
    while i < 7 {
        if i >= full {
            break;
        }
        compress(&mut v, label.word(i));
        i += 1;
    }
    let rem = len % 8;
    let tail = if rem == 0 { 0 } else { label.word(full) & ((1u64 << (8 * rem)) - 1) };
    let msg_len = len as u64;
    compress(&mut v, tail | (msg_len << 56));
    v[2] ^= 0xff;
    sipround(&mut v);
    sipround(&mut v);
    sipround(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Entry modes: what a listed name matches. `example.com` means both; `=example.com` only
/// the name itself; `*.example.com` only names below it.
pub const MATCH_SELF: u32 = 1 << 0;
pub const MATCH_BELOW: u32 = 1 << 1;

/// Key of the name map: the chain hash of a normalised name. Both generation slots share the
/// key; the value carries each slot's half (`NameSlots`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NameKey {
    pub hash: u64,
}
assert_size!(NameKey, 8);

/// What one generation says of a name. One name can be blocked, allowed and listed in a shadow
/// list (by different lists, in different modes), so one value carries all three, and a lookup
/// per label answers every question. Precedence: allow > enforced block (anywhere on the label
/// chain) > shadow. All modes 0: the generation does not list the name.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameValue {
    pub block_id: u32,
    pub allow_id: u32,
    /// The entry of a list in shadow mode: counted where it would block, never enforced.
    pub shadow_id: u32,
    /// MATCH_SELF | MATCH_BELOW for the block entry (0: not blocked).
    pub block_mode: u8,
    /// MATCH_SELF | MATCH_BELOW for the allow entry (0: not allowed).
    pub allow_mode: u8,
    /// MATCH_SELF | MATCH_BELOW for the shadow entry (0: not in a shadow list).
    pub shadow_mode: u8,
    pub reserved: u8,
}
assert_size!(NameValue, 16);

impl NameValue {
    /// The generation does not list the name at all.
    #[inline(always)]
    pub const fn is_empty(&self) -> bool {
        self.block_mode == 0 && self.allow_mode == 0 && self.shadow_mode == 0
    }
}

/// The value of the name map: what each slot's generation says of the name. One element serves
/// both generations, so the two cost one element per name they share instead of two (the
/// kernel's element is 96 bytes either way); a lookup reads the half of the live slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameSlots {
    pub slot: [NameValue; 2],
}
assert_size!(NameSlots, 32);

/// Hash of every label-aligned suffix of an already normalised name (lowercase, no trailing
/// dot), from the whole name down to the last label. Returns how many were written.
pub fn suffix_hashes(key: &HashKey, name: &[u8], out: &mut [u64; MAX_LABELS]) -> usize {
    // Collect label bounds right to left.
    let mut n = 0;
    let mut h = ROOT;
    let mut end = name.len();
    let mut tmp = [0u64; MAX_LABELS];
    while end > 0 && n < MAX_LABELS {
        let mut start = end;
        while start > 0 && name[start - 1] != b'.' {
            start -= 1;
        }
        let label = &name[start..end];
        h = label_step(key, h, &label, label.len());
        tmp[n] = h;
        n += 1;
        end = start.saturating_sub(1);
    }
    // Whole name first.
    let mut i = 0;
    while i < n {
        out[i] = tmp[n - 1 - i];
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: HashKey = HashKey { k0: 0x0706_0504_0302_0100, k1: 0x0f0e_0d0c_0b0a_0908 };

    /// Reference SipHash-1-3 over a whole message, written plainly from the paper's definition.
    fn siphash13(key: &HashKey, msg: &[u8]) -> u64 {
        let mut v = [
            key.k0 ^ 0x736f_6d65_7073_6575,
            key.k1 ^ 0x646f_7261_6e64_6f6d,
            key.k0 ^ 0x6c79_6765_6e65_7261,
            key.k1 ^ 0x7465_6462_7974_6573,
        ];
        let chunks = msg.len() / 8;
        for c in 0..chunks {
            let m = u64::from_le_bytes(msg[c * 8..c * 8 + 8].try_into().unwrap());
            compress(&mut v, m);
        }
        let mut last = [0u8; 8];
        let rest = &msg[chunks * 8..];
        last[..rest.len()].copy_from_slice(rest);
        last[7] = msg.len() as u8;
        compress(&mut v, u64::from_le_bytes(last));
        v[2] ^= 0xff;
        for _ in 0..3 {
            sipround(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }

    #[test]
    fn a_step_is_siphash_of_the_label_keyed_with_the_parent() {
        let parent = 0x1122_3344_5566_7788u64;
        let keyed = HashKey { k0: KEY.k0, k1: KEY.k1 ^ parent };
        for label in [&b"com"[..], b"example", b"exactly8", b"a-label-of-more-than-sixteen-bytes", &[b'x'; 63]] {
            assert_eq!(label_step(&KEY, parent, &label, label.len()), siphash13(&keyed, label));
        }
    }

    #[test]
    fn the_parent_changes_the_step() {
        assert_ne!(label_step(&KEY, 1, &&b"example"[..], 7), label_step(&KEY, 2, &&b"example"[..], 7));
        assert_ne!(label_step(&KEY, ROOT, &&b"example"[..], 7), label_step(&KEY, 1, &&b"example"[..], 7));
    }

    #[test]
    fn the_reference_agrees_with_an_independent_siphash13() {
        use core::hash::Hasher;
        for len in 0..40 {
            let msg: [u8; 40] = core::array::from_fn(|i| (i * 7 + 3) as u8);
            let mut h = siphasher::sip::SipHasher13::new_with_keys(KEY.k0, KEY.k1);
            h.write(&msg[..len]);
            assert_eq!(siphash13(&KEY, &msg[..len]), h.finish(), "length {len}");
        }
    }

    #[test]
    fn suffixes_are_label_aligned_and_shared_with_the_parent_name() {
        let mut a = [0u64; MAX_LABELS];
        let mut b = [0u64; MAX_LABELS];
        let na = suffix_hashes(&KEY, b"www.example.com", &mut a);
        let nb = suffix_hashes(&KEY, b"example.com", &mut b);
        assert_eq!((na, nb), (3, 2));
        assert_eq!(a[1], b[0], "www.example.com has the suffix example.com");
        let mut c = [0u64; MAX_LABELS];
        suffix_hashes(&KEY, b"xexample.com", &mut c);
        assert_ne!(c[0], b[0]);
        assert_ne!(c[1], b[0], "xexample.com does not end in the label example");
        assert_eq!(c[1], b[1], "both end in com");
    }

    #[test]
    fn the_key_changes_every_hash() {
        let mut a = [0u64; MAX_LABELS];
        let mut b = [0u64; MAX_LABELS];
        suffix_hashes(&KEY, b"example.com", &mut a);
        suffix_hashes(&HashKey { k0: 1, k1: 2 }, b"example.com", &mut b);
        assert_ne!(a[0], b[0]);
    }
}
