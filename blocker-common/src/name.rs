//! Name matching keys, shared by the kernel and the controller so both compute the same value.
//!
//! A listed name is stored in the kernel as one 64-bit keyed hash, never as text. A name is
//! hashed label by label from the right with one running SipHash-1-3 state (`Chain`): each
//! label is absorbed as its own blocks (its 8-byte words, the last one carrying the label's
//! length), and the key of every label-aligned suffix (`com`, `example.com`,
//! `www.example.com`) is taken from the state after its labels. So matching a name against
//! "this name and its subdomains" entries costs one absorption and one lookup per label and can
//! only ever match on label boundaries: `xexample.com` has no suffix `example.com`.
//!
//! A suffix's key is two parts of one value: its top `name_filter::BITS` bits are a short mix
//! of the state (`Chain::filter_word`, one round), the rest SipHash's finalization (three).
//! The program tests the name filter's bit (name_filter.rs) from the short mix alone and
//! finalizes only where the bit is set: almost every suffix of almost every name is not
//! listed, so a label costs two rounds (absorbing a short label, and the mix), not five. The
//! filter's bit stays the top of the key, so it is rebuilt from NAMES keys alone.
//!
//! The key `k` is secret per deployment: a dump of the kernel maps reveals neither the names
//! nor a way to precompute colliding names.

use crate::assert_size;

pub const MAX_NAME_LEN: usize = 253;
pub const MAX_LABEL_LEN: usize = 63;
/// A 253-byte name has at most 127 labels.
pub const MAX_LABELS: usize = 127;

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

/// SipHash-1-3's initial state for `key`.
#[inline(always)]
const fn init(key: &HashKey) -> [u64; 4] {
    [
        key.k0 ^ 0x736f_6d65_7073_6575,
        key.k1 ^ 0x646f_7261_6e64_6f6d,
        key.k0 ^ 0x6c79_6765_6e65_7261,
        key.k1 ^ 0x7465_6462_7974_6573,
    ]
}

/// SipHash-1-3 of `len` bytes (at most 32) under the key (k0, k1 ⊕ `tweak`): the stop page's
/// SYN cookie over a connection's addresses, keyed with its ports.
#[inline(always)]
pub fn keyed_hash<L: LabelBytes>(key: &HashKey, tweak: u64, bytes: &L, len: usize) -> u64 {
    let len = if len > 32 { 32 } else { len };
    let mut v = init(&HashKey { k0: key.k0, k1: key.k1 ^ tweak });
    let full = len / 8;
    let mut i = 0;
    while i < 4 {
        if i >= full {
            break;
        }
        compress(&mut v, bytes.word(i));
        i += 1;
    }
    let rem = len % 8;
    let tail = if rem == 0 { 0 } else { bytes.word(full) & ((1u64 << (8 * rem)) - 1) };
    compress(&mut v, tail | ((len as u64) << 56));
    finalize(v)
}

/// SipHash's finalization: three rounds.
#[inline(always)]
fn finalize(mut v: [u64; 4]) -> u64 {
    v[2] ^= 0xff;
    sipround(&mut v);
    sipround(&mut v);
    sipround(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The bits of a key that come from `Chain::filter_word`: the name filter's (name_filter.rs).
pub const FILTER_MASK: u64 = !0u64 << (64 - crate::name_filter::BITS);

/// The running hash of a name's labels from the right (see the module's doc).
///
/// Encoding: a label of `len` bytes (1..=63, ASCII: both sides only hash names normalised to
/// lowercase A-labels) is absorbed as its `len / 8` whole words, then one last word holding the
/// remaining `len % 8` bytes, zeros, and `0x80 | len` in its top byte. A top byte of 0x80 or
/// more ends a label and no label byte has one, so a sequence of absorbed words reads back as
/// exactly one sequence of labels: two different suffixes never feed SipHash the same blocks.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    pub v: [u64; 4],
}
assert_size!(Chain, 32);

impl Chain {
    /// Before any label (the root).
    #[inline(always)]
    pub const fn new(key: &HashKey) -> Chain {
        Chain { v: init(key) }
    }

    /// Absorbs the next label to the left. `len` is clamped to 63, which no valid name
    /// exceeds.
    #[inline(always)]
    pub fn absorb<L: LabelBytes>(&mut self, label: &L, len: usize) {
        let len = if len > MAX_LABEL_LEN { MAX_LABEL_LEN } else { len };
        let full = len / 8;
        let mut i = 0;
        // At most 7 full words in a 63-byte label: a fixed bound the verifier can see.
        while i < 7 {
            if i >= full {
                break;
            }
            compress(&mut self.v, label.word(i));
            i += 1;
        }
        let rem = len % 8;
        let tail = if rem == 0 { 0 } else { label.word(full) & ((1u64 << (8 * rem)) - 1) };
        compress(&mut self.v, tail | ((0x80 | len as u64) << 56));
    }

    /// The short mix of the state whose top bits are the suffix's name filter bit and the top
    /// of its key: one round on a copy, set apart from the finalization by its own constant.
    /// It needs no more: the filter only ever costs or saves a lookup, and the key's other bits
    /// come from the full finalization.
    #[inline(always)]
    pub fn filter_word(&self) -> u64 {
        let mut v = self.v;
        v[1] ^= 0xee;
        sipround(&mut v);
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }

    /// The NAMES key of the suffix absorbed so far, given its `filter_word`.
    #[inline(always)]
    pub fn key(&self, filter_word: u64) -> u64 {
        (filter_word & FILTER_MASK) | (finalize(self.v) & !FILTER_MASK)
    }
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

/// Calls `f` with each label of `name` from the right (at most MAX_LABELS), and the count of
/// labels so far.
fn labels_from_right(name: &[u8], mut f: impl FnMut(usize, &[u8])) -> usize {
    let mut n = 0;
    let mut end = name.len();
    while end > 0 && n < MAX_LABELS {
        let mut start = end;
        while start > 0 && name[start - 1] != b'.' {
            start -= 1;
        }
        f(n, &name[start..end]);
        n += 1;
        end = start.saturating_sub(1);
    }
    n
}

/// The NAMES key of an already normalised name (lowercase, no trailing dot): its labels
/// absorbed from the right, the key taken once, of the whole name (`suffix_hashes`' first, in
/// about half its rounds: what the controller needs per listed name). 0 for the empty name.
pub fn name_key(key: &HashKey, name: &[u8]) -> u64 {
    let mut chain = Chain::new(key);
    let n = labels_from_right(name, |_, label| chain.absorb(&label, label.len()));
    if n == 0 { 0 } else { chain.key(chain.filter_word()) }
}

/// Hash of every label-aligned suffix of an already normalised name (lowercase, no trailing
/// dot), from the whole name down to the last label. Returns how many were written.
pub fn suffix_hashes(key: &HashKey, name: &[u8], out: &mut [u64; MAX_LABELS]) -> usize {
    let mut chain = Chain::new(key);
    let mut tmp = [0u64; MAX_LABELS];
    let n = labels_from_right(name, |i, label| {
        chain.absorb(&label, label.len());
        tmp[i] = chain.key(chain.filter_word());
    });
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
    extern crate std;
    use super::*;
    use std::vec::Vec;

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
    fn the_cookie_hash_is_siphash_keyed_with_the_tweak() {
        let tweak = 0x1122_3344_5566_7788u64;
        let keyed = HashKey { k0: KEY.k0, k1: KEY.k1 ^ tweak };
        let msg: [u8; 32] = core::array::from_fn(|i| (i * 11 + 5) as u8);
        for len in [0, 3, 8, 12, 16, 32] {
            assert_eq!(keyed_hash(&KEY, tweak, &&msg[..len], len), siphash13(&keyed, &msg[..len]), "length {len}");
        }
    }

    /// A suffix's key as the module's doc defines it, written plainly: the labels' blocks from
    /// the right through SipHash-1-3's compression, then the one-round mix on top and the
    /// finalization below.
    fn reference_key(key: &HashKey, labels_right_to_left: &[&[u8]]) -> u64 {
        let mut v = [
            key.k0 ^ 0x736f_6d65_7073_6575,
            key.k1 ^ 0x646f_7261_6e64_6f6d,
            key.k0 ^ 0x6c79_6765_6e65_7261,
            key.k1 ^ 0x7465_6462_7974_6573,
        ];
        for label in labels_right_to_left {
            let mut blocks: Vec<[u8; 8]> = label.chunks(8).map(|c| core::array::from_fn(|i| c.get(i).copied().unwrap_or(0))).collect();
            if label.len() % 8 == 0 {
                blocks.push([0; 8]);
            }
            blocks.last_mut().unwrap()[7] = 0x80 | label.len() as u8;
            for b in blocks {
                compress(&mut v, u64::from_le_bytes(b));
            }
        }
        let mut m = v;
        m[1] ^= 0xee;
        sipround(&mut m);
        let mix = m[0] ^ m[1] ^ m[2] ^ m[3];
        v[2] ^= 0xff;
        for _ in 0..3 {
            sipround(&mut v);
        }
        let fin = v[0] ^ v[1] ^ v[2] ^ v[3];
        let top = 64 - crate::name_filter::BITS;
        (mix >> top << top) | (fin << crate::name_filter::BITS >> crate::name_filter::BITS)
    }

    #[test]
    fn every_suffix_key_follows_the_definition() {
        let name = b"a-label-of-more-than-sixteen-bytes.exactly8.www.example.com";
        let labels: Vec<&[u8]> = name.split(|&b| b == b'.').rev().collect();
        let mut out = [0u64; MAX_LABELS];
        let n = suffix_hashes(&KEY, name, &mut out);
        assert_eq!(n, 5);
        for k in 1..=n {
            assert_eq!(out[n - k], reference_key(&KEY, &labels[..k]), "the suffix of {k} labels");
        }
        let long = [b'x'; 63];
        let mut out = [0u64; MAX_LABELS];
        suffix_hashes(&KEY, &long, &mut out);
        assert_eq!(out[0], reference_key(&KEY, &[&long[..]]));
    }

    #[test]
    fn a_names_key_is_its_first_suffix_hash() {
        for name in [&b"com"[..], b"www.example.com", b"a-label-of-more-than-sixteen-bytes.exactly8.example", b"x"] {
            let mut out = [0u64; MAX_LABELS];
            let n = suffix_hashes(&KEY, name, &mut out);
            assert!(n > 0);
            assert_eq!(name_key(&KEY, name), out[0], "{}", std::string::String::from_utf8_lossy(name));
        }
        assert_eq!(name_key(&KEY, b""), 0);
    }

    #[test]
    fn the_filter_bit_is_the_top_of_the_key() {
        let mut c = Chain::new(&KEY);
        for label in [&b"com"[..], b"example", b"www"] {
            c.absorb(&label, label.len());
            let f = c.filter_word();
            let key = c.key(f);
            assert_eq!(crate::name_filter::bit(key), crate::name_filter::bit(f));
        }
    }

    /// Distinct filter bits among `names` against what names hashed at random would reach
    /// (the birthday count: n − n²/2m of m bits), as a share of that.
    fn filter_spread(names: impl Iterator<Item = std::string::String>) -> f64 {
        let mut bits = std::collections::HashSet::new();
        let mut n = 0f64;
        for name in names {
            let mut out = [0u64; MAX_LABELS];
            suffix_hashes(&KEY, name.as_bytes(), &mut out);
            bits.insert(crate::name_filter::bit(out[0]));
            n += 1.0;
        }
        let m = (1u64 << crate::name_filter::BITS) as f64;
        bits.len() as f64 / (n - n * n / (2.0 * m))
    }

    #[test]
    fn names_that_differ_in_one_character_spread_over_the_filter_like_random_ones() {
        // A list is full of near neighbours: numbered hosts, one label changed, one letter.
        let families: [(&str, std::boxed::Box<dyn Fn(u32) -> std::string::String>); 5] = [
            ("numbered first label", std::boxed::Box::new(|i| std::format!("host{i}.example"))),
            ("numbered middle label", std::boxed::Box::new(|i| std::format!("www.s{i}.example"))),
            ("two letters", std::boxed::Box::new(|i| std::format!("{}{}.test", (b'a' + (i % 26) as u8) as char, (b'a' + (i / 26 % 26) as u8) as char))),
            ("8-byte labels", std::boxed::Box::new(|i| std::format!("{i:08}.{:08}.example", i / 7))),
            ("long labels", std::boxed::Box::new(|i| std::format!("a-rather-long-label-number-{i:06}.example"))),
        ];
        for (what, f) in &families {
            let count = if *what == "two letters" { 26 * 26 } else { 100_000 };
            let spread = filter_spread((0..count).map(|i| f(i)));
            assert!(spread > 0.999, "{what}: {spread}");
        }
    }

    #[test]
    fn near_neighbours_never_share_a_key() {
        let mut keys = std::collections::HashSet::new();
        for len in 1..=24usize {
            for last in [b'0', b'7', b'9', b'-', b'z'] {
                // Labels whose last byte is a digit: the character a length could be mistaken
                // for, were the length not marked.
                let mut label = std::vec![b'x'; len];
                label[len - 1] = last;
                for tail in [&b""[..], b".example", b".7.example"] {
                    let mut name = label.clone();
                    name.extend_from_slice(tail);
                    let mut out = [0u64; MAX_LABELS];
                    suffix_hashes(&KEY, &name, &mut out);
                    assert!(keys.insert(out[0]), "{}", std::string::String::from_utf8_lossy(&name));
                }
            }
        }
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
