//! What one slot of the list maps holds, as the controller wrote it: every key of its
//! generation with its value, sorted by key, per map. Both slots share one element per key in
//! the kernel (blocker-common name.rs, prefix.rs); with the two slots' records the controller
//! knows every element's value (`shared.rs`), so an install writes only the elements whose
//! value changes, and never has to walk the maps' keys to find them.
//!
//! Memory: 24 bytes per name, 16 per IPv4 prefix and 28 per IPv6 prefix, for each slot.

use std::thread;

use blocker_common::{
    name::{HashKey, NameSlots, NameValue},
    prefix::{PREFIX_COVERING, PREFIX_SHADOW, PrefixSlots, PrefixValue},
};

use crate::datapath::{install::PrefixPlan, names::name_hash};
use crate::lists::{ListSet, Prefix};

/// An IPv4 prefix as a trie key; the address has no bits past the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(in crate::datapath) struct V4 {
    addr: [u8; 4],
    len: u8,
}

/// An IPv6 prefix as a trie key; the address has no bits past the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(in crate::datapath) struct V6 {
    addr: [u8; 16],
    len: u8,
}

impl V4 {
    pub(in crate::datapath) fn new(addr: u32, len: u8) -> V4 {
        let len = len.min(32);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
        V4 { addr: (addr & mask).to_be_bytes(), len }
    }
}

impl V6 {
    pub(in crate::datapath) fn new(addr: u128, len: u8) -> V6 {
        let len = len.min(128);
        let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
        V6 { addr: (addr & mask).to_be_bytes(), len }
    }
}

/// A key of one of the list maps, as the kernel takes it. Sorted, a key comes before every key
/// it covers, and the keys it covers follow it without a gap (prefixes: by address, then
/// length).
pub(in crate::datapath) trait MapKey: Ord + Copy {
    const SIZE: usize;
    fn put(&self, out: &mut Vec<u8>);
    /// The key as the kernel wrote it (`SIZE` bytes).
    fn read(b: &[u8]) -> Self;
    /// Whether a longest-prefix lookup that finds `other` would otherwise have found `self`:
    /// `self` is a shorter prefix containing it. Names cover nothing.
    fn covers(&self, other: &Self) -> bool;
}

/// `Key<V4KeyData>`: prefix length, then the address.
impl MapKey for V4 {
    const SIZE: usize = 4 + 4;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len as u32).to_ne_bytes());
        out.extend_from_slice(&self.addr);
    }
    fn read(b: &[u8]) -> Self {
        V4::new(u32::from_be_bytes(b[4..8].try_into().expect("4 bytes")), u32::from_ne_bytes(b[..4].try_into().expect("4 bytes")) as u8)
    }
    fn covers(&self, other: &Self) -> bool {
        self.len <= other.len && V4::new(u32::from_be_bytes(other.addr), self.len).addr == self.addr
    }
}

/// `Key<V6KeyData>`: prefix length, then the address.
impl MapKey for V6 {
    const SIZE: usize = 4 + 16;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len as u32).to_ne_bytes());
        out.extend_from_slice(&self.addr);
    }
    fn read(b: &[u8]) -> Self {
        V6::new(u128::from_be_bytes(b[4..20].try_into().expect("16 bytes")), u32::from_ne_bytes(b[..4].try_into().expect("4 bytes")) as u8)
    }
    fn covers(&self, other: &Self) -> bool {
        self.len <= other.len && V6::new(u128::from_be_bytes(other.addr), self.len).addr == self.addr
    }
}

/// A name hash: `NameKey { hash }`.
impl MapKey for u64 {
    const SIZE: usize = 8;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_ne_bytes());
    }
    fn read(b: &[u8]) -> Self {
        u64::from_ne_bytes(b[..8].try_into().expect("8 bytes"))
    }
    fn covers(&self, _: &Self) -> bool {
        false
    }
}

/// What one generation says of a key: one half of a list map's value.
pub(in crate::datapath) trait Half: Copy + PartialEq + Default {
    /// Bytes of the map's value, both halves.
    const SIZE: usize;
    fn put(halves: &[Self; 2], out: &mut Vec<u8>);
    fn read(b: &[u8]) -> [Self; 2];
    /// The generation lists the key itself.
    fn is_own(&self) -> bool;
    /// This (own) value as a key it covers carries it for the generation.
    fn covering(self) -> Self;
}

impl Half for PrefixValue {
    const SIZE: usize = size_of::<PrefixSlots>();
    fn put(halves: &[Self; 2], out: &mut Vec<u8>) {
        for h in halves {
            out.extend_from_slice(&h.entry_id.to_ne_bytes());
            out.extend_from_slice(&h.flags.to_ne_bytes());
        }
    }
    fn read(b: &[u8]) -> [Self; 2] {
        let u = |i: usize| u32::from_ne_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        [PrefixValue { entry_id: u(0), flags: u(1) }, PrefixValue { entry_id: u(2), flags: u(3) }]
    }
    fn is_own(&self) -> bool {
        PrefixValue::is_own(self)
    }
    fn covering(self) -> Self {
        PrefixValue { entry_id: self.entry_id, flags: self.flags | PREFIX_COVERING }
    }
}

impl Half for NameValue {
    const SIZE: usize = size_of::<NameSlots>();
    fn put(halves: &[Self; 2], out: &mut Vec<u8>) {
        // The field order of the #[repr(C)] struct (blocker-common name.rs).
        for h in halves {
            for f in [h.block_id, h.allow_id, h.shadow_id] {
                out.extend_from_slice(&f.to_ne_bytes());
            }
            out.extend_from_slice(&[h.block_mode, h.allow_mode, h.shadow_mode, h.reserved]);
        }
    }
    fn read(b: &[u8]) -> [Self; 2] {
        let half = |b: &[u8]| {
            let u = |i: usize| u32::from_ne_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"));
            NameValue { block_id: u(0), allow_id: u(1), shadow_id: u(2), block_mode: b[12], allow_mode: b[13], shadow_mode: b[14], reserved: b[15] }
        };
        [half(&b[..16]), half(&b[16..32])]
    }
    fn is_own(&self) -> bool {
        !self.is_empty()
    }
    fn covering(self) -> Self {
        NameValue::default()
    }
}

/// The contents of one slot: each map's keys and the generation's own values, sorted by key,
/// one value per key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(in crate::datapath) struct SlotRecord {
    pub names: Vec<(u64, NameValue)>,
    pub block_v4: Vec<(V4, PrefixValue)>,
    pub block_v6: Vec<(V6, PrefixValue)>,
    pub allow_v4: Vec<(V4, PrefixValue)>,
    pub allow_v6: Vec<(V6, PrefixValue)>,
}

impl SlotRecord {
    /// What a slot holds after `set` was installed into it: the names hashed with `key`, the
    /// block prefixes of `plan` (shadow ones flagged), the allow prefixes. Where two entries
    /// write the same key, the later one's value is what the kernel keeps, and so the record.
    /// (The install makes the same, a map per thread.)
    #[cfg(test)]
    pub(in crate::datapath) fn of(set: &ListSet, key: &HashKey, plan: &PrefixPlan<'_>) -> SlotRecord {
        let (block_v4, block_v6, allow_v4, allow_v6) = prefix_values(set, plan);
        SlotRecord {
            names: name_values(set, key),
            block_v4: last_wins(block_v4),
            block_v6: last_wins(block_v6),
            allow_v4: last_wins(allow_v4),
            allow_v6: last_wins(allow_v6),
        }
    }

    /// Elements in all maps.
    #[cfg(test)]
    pub(in crate::datapath) fn len(&self) -> usize {
        self.names.len() + self.block_v4.len() + self.block_v6.len() + self.allow_v4.len() + self.allow_v6.len()
    }
}

/// What the set puts into the tries for one slot, in set order (`last_wins` sorts them): the
/// block prefixes of `plan` (shadow ones flagged), the allow prefixes; IPv4, then IPv6, each.
#[allow(clippy::type_complexity)]
pub(in crate::datapath) fn prefix_values(
    set: &ListSet,
    plan: &PrefixPlan<'_>,
) -> (Vec<(V4, PrefixValue)>, Vec<(V6, PrefixValue)>, Vec<(V4, PrefixValue)>, Vec<(V6, PrefixValue)>) {
    let (mut block_v4, mut block_v6) = (Vec::new(), Vec::new());
    for &(e, p) in &plan.install {
        let value = PrefixValue { entry_id: e.id, flags: if e.shadow { PREFIX_SHADOW } else { 0 } };
        push_prefix(p, value, &mut block_v4, &mut block_v6);
    }
    let (mut allow_v4, mut allow_v6) = (Vec::new(), Vec::new());
    for (e, p) in set.allow_prefixes() {
        push_prefix(p, PrefixValue { entry_id: e.id, flags: 0 }, &mut allow_v4, &mut allow_v6);
    }
    (block_v4, block_v6, allow_v4, allow_v6)
}

fn push_prefix(p: &Prefix, value: PrefixValue, v4: &mut Vec<(V4, PrefixValue)>, v6: &mut Vec<(V6, PrefixValue)>) {
    match *p {
        Prefix::V4 { addr, len } => v4.push((V4::new(u32::from(addr), len), value)),
        Prefix::V6 { addr, len } => v6.push((V6::new(u128::from(addr), len), value)),
    }
}

/// Sorted by key, the last value written for a key kept (a stable sort keeps the order of
/// equal keys).
pub(in crate::datapath) fn last_wins<K: Ord + Copy, V: Copy>(mut v: Vec<(K, V)>) -> Vec<(K, V)> {
    v.sort_by_key(|x| x.0);
    v.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 = later.1;
            true
        } else {
            false
        }
    });
    v
}

/// What the set puts into NAMES for one slot, sorted by hash: block entries of enforced lists
/// fill `block_id`/`block_mode`, those of lists in shadow mode `shadow_id`/`shadow_mode`, allow
/// entries `allow_id`/`allow_mode`. The block, allow and shadow entries of one name share its
/// value.
pub(in crate::datapath) fn name_values(set: &ListSet, key: &HashKey) -> Vec<(u64, NameValue)> {
    let mut parts: Vec<(&str, NameValue)> = Vec::new();
    for (e, n) in set.block_names() {
        let v = if e.shadow {
            NameValue { shadow_id: e.id, shadow_mode: n.flags as u8, ..Default::default() }
        } else {
            NameValue { block_id: e.id, block_mode: n.flags as u8, ..Default::default() }
        };
        parts.push((&n.name, v));
    }
    for (e, n) in set.allow_names() {
        parts.push((&n.name, NameValue { allow_id: e.id, allow_mode: n.flags as u8, ..Default::default() }));
    }
    let mut values = hash_names(&parts, key);
    drop(parts);
    // The parts of one name (block, allow, shadow) merge whatever their order; should two names
    // collide (a 64-bit keyed hash), the larger id wins a field both set.
    values.sort_unstable_by_key(|x| (x.0, x.1.block_id | x.1.allow_id | x.1.shadow_id));
    values.dedup_by(|later, kept| {
        if later.0 != kept.0 {
            return false;
        }
        let (a, k) = (&later.1, &mut kept.1);
        if a.block_id != 0 {
            k.block_id = a.block_id;
        }
        if a.allow_id != 0 {
            k.allow_id = a.allow_id;
        }
        if a.shadow_id != 0 {
            k.shadow_id = a.shadow_id;
        }
        k.block_mode |= a.block_mode;
        k.allow_mode |= a.allow_mode;
        k.shadow_mode |= a.shadow_mode;
        true
    });
    values
}

/// The keyed hash of each name (a SipHash per label, the largest part of an install's own
/// work), on every CPU for many names.
fn hash_names(parts: &[(&str, NameValue)], key: &HashKey) -> Vec<(u64, NameValue)> {
    let hash = |chunk: &[(&str, NameValue)]| chunk.iter().map(|(n, v)| (name_hash(key, n), *v)).collect::<Vec<_>>();
    let threads = thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if parts.len() < 50_000 || threads == 1 {
        return hash(parts);
    }
    let chunk = parts.len().div_ceil(threads);
    thread::scope(|s| {
        let handles: Vec<_> = parts.chunks(chunk).map(|c| s.spawn(move || hash(c))).collect();
        let mut out = Vec::with_capacity(parts.len());
        for h in handles {
            out.extend(h.join().expect("hashing names does not panic"));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use aya::maps::lpm_trie::Key;
    use blocker_common::{
        name::{MATCH_BELOW, MATCH_SELF, NameKey},
        prefix::{PREFIX_COVERING, V4KeyData, V6KeyData},
    };

    use super::*;
    use crate::{
        datapath::install::block_prefix_plan,
        lists::{ListInfo, ListKind, parse_list},
    };

    fn bytes_of<T: aya::Pod>(t: &T) -> Vec<u8> {
        // SAFETY: a Pod type is plain bytes without padding.
        unsafe { std::slice::from_raw_parts((t as *const T).cast::<u8>(), std::mem::size_of::<T>()) }.to_vec()
    }

    #[test]
    fn keys_and_values_are_laid_out_as_the_kernel_takes_them() {
        let v4 = V4::new(0xc000_0200, 24);
        let mut b = Vec::new();
        v4.put(&mut b);
        let k: Key<V4KeyData> = Key::new(24, [192, 0, 2, 0]);
        // SAFETY: Key is repr(C, packed): prefix length then data.
        let kb = unsafe { std::slice::from_raw_parts((&k as *const Key<_>).cast::<u8>(), std::mem::size_of_val(&k)) };
        assert_eq!(b, kb);
        assert_eq!(V4::read(&b), v4);
        let addr = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut b = Vec::new();
        V6::new(u128::from_be_bytes(addr), 128).put(&mut b);
        let k: Key<V6KeyData> = Key::new(128, addr);
        // SAFETY: as above.
        let kb = unsafe { std::slice::from_raw_parts((&k as *const Key<_>).cast::<u8>(), std::mem::size_of_val(&k)) };
        assert_eq!(b, kb);
        assert_eq!(V6::read(&b), V6::new(u128::from_be_bytes(addr), 128));
        let mut b = Vec::new();
        0x1122_3344_5566_7788u64.put(&mut b);
        assert_eq!(b, bytes_of(&NameKey { hash: 0x1122_3344_5566_7788 }));
        let nv = [
            NameValue { block_id: 1, allow_id: 2, shadow_id: 3, block_mode: 4, allow_mode: 5, shadow_mode: 6, reserved: 0 },
            NameValue { block_id: 7, allow_id: 8, shadow_id: 9, block_mode: 10, allow_mode: 11, shadow_mode: 12, reserved: 0 },
        ];
        let mut b = Vec::new();
        NameValue::put(&nv, &mut b);
        assert_eq!(b, bytes_of(&NameSlots { slot: nv }));
        assert_eq!(NameValue::read(&b), nv);
        let pv = [PrefixValue { entry_id: 7, flags: PREFIX_SHADOW }, PrefixValue { entry_id: 8, flags: PREFIX_COVERING }];
        let mut b = Vec::new();
        PrefixValue::put(&pv, &mut b);
        assert_eq!(b, bytes_of(&PrefixSlots { slot: pv }));
        assert_eq!(PrefixValue::read(&b), pv);
    }

    #[test]
    fn a_prefix_covers_the_longer_ones_inside_it_and_sorts_before_them() {
        let p = |a: u32, l| V4::new(a, l);
        assert!(p(0x0a00_0000, 8).covers(&p(0x0a01_0000, 16)));
        assert!(p(0x0a00_0000, 8).covers(&p(0x0a00_0000, 8)));
        assert!(!p(0x0a01_0000, 16).covers(&p(0x0a00_0000, 8)));
        assert!(!p(0x0a00_0000, 8).covers(&p(0x0b00_0000, 16)));
        assert_eq!(p(0x0a01_0203, 16), p(0x0a01_0000, 16), "bits past the length are dropped");
        let mut v = vec![p(0x0a01_0000, 16), p(0x0b00_0000, 8), p(0x0a00_0000, 8), p(0x0a01_0200, 24), p(0x0a00_0000, 9)];
        v.sort();
        assert_eq!(v, [p(0x0a00_0000, 8), p(0x0a00_0000, 9), p(0x0a01_0000, 16), p(0x0a01_0200, 24), p(0x0b00_0000, 8)]);
        assert!(!1u64.covers(&1u64), "names cover nothing");
    }

    fn set(enforced: &str, shadow: &str, allow: &str) -> ListSet {
        let mut set = ListSet::new();
        let (p, _) = parse_list(Path::new("b"), enforced, ListKind::Block).unwrap();
        set.add_parsed(Path::new("b"), p);
        let (p, _) = parse_list(Path::new("s"), shadow, ListKind::Block).unwrap();
        set.add_list(ListInfo { name: "s".into(), source: "s".into(), shadow: true }, Path::new("s"), p).unwrap();
        let (p, _) = parse_list(Path::new("a"), allow, ListKind::Allow).unwrap();
        set.add_parsed(Path::new("a"), p);
        set
    }

    #[test]
    fn a_record_holds_one_sorted_value_per_key() {
        let s = set("example.com\n203.0.113.0/24\n2001:db8::/32\n192.0.2.1\n", "=example.com\nshadow.example\n198.51.100.0/24\n", "example.com\n192.0.2.1\n");
        let key = HashKey { k0: 3, k1: 4 };
        let r = SlotRecord::of(&s, &key, &block_prefix_plan(&s));
        assert_eq!(r.len(), 2 + 3 + 1 + 1);
        let both = r.names.iter().find(|x| x.0 == name_hash(&key, "example.com")).unwrap().1;
        assert_eq!(
            both,
            NameValue {
                block_id: 1,
                block_mode: (MATCH_SELF | MATCH_BELOW) as u8,
                shadow_id: 5,
                shadow_mode: MATCH_SELF as u8,
                allow_id: 8,
                allow_mode: (MATCH_SELF | MATCH_BELOW) as u8,
                reserved: 0
            }
        );
        assert!(r.names.windows(2).all(|w| w[0].0 < w[1].0) && r.block_v4.windows(2).all(|w| w[0].0 < w[1].0));
        let shadow = r.block_v4.iter().find(|x| x.0.addr == [198, 51, 100, 0]).unwrap().1;
        assert_eq!(shadow, PrefixValue { entry_id: 7, flags: PREFIX_SHADOW });
        assert_eq!(r.allow_v4, [(V4::new(0xc000_0201, 32), PrefixValue { entry_id: 9, flags: 0 })]);
    }

    #[test]
    fn a_prefix_written_twice_keeps_the_later_value_and_many_names_hash_alike_in_parallel() {
        let mut s = ListSet::new();
        let (p, _) = parse_list(Path::new("one"), "192.0.2.0/24\n", ListKind::Block).unwrap();
        s.add_parsed(Path::new("one"), p);
        let (p, _) = parse_list(Path::new("two"), "192.0.2.0/24\n", ListKind::Block).unwrap();
        s.add_parsed(Path::new("two"), p);
        let key = HashKey { k0: 1, k1: 2 };
        assert_eq!(SlotRecord::of(&s, &key, &block_prefix_plan(&s)).block_v4[0].1.entry_id, 2);

        let many: String = (0..60_000).map(|i| format!("n{i}.example\n")).collect();
        let (p, _) = parse_list(Path::new("m"), &many, ListKind::Block).unwrap();
        let mut s = ListSet::new();
        s.add_parsed(Path::new("m"), p);
        let r = SlotRecord::of(&s, &key, &block_prefix_plan(&s));
        assert_eq!(r.names.len(), 60_000);
        for (e, n) in s.block_names().step_by(997) {
            let h = name_hash(&key, &n.name);
            let i = r.names.binary_search_by_key(&h, |x| x.0).unwrap();
            assert_eq!(r.names[i].1.block_id, e.id);
        }
    }
}
