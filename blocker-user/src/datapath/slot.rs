//! What one slot of the list maps holds, as the controller wrote it: every key with its value,
//! sorted by key, per map. With it an install writes only the difference between what the slot
//! holds and the new generation (keys gone are deleted, new or changed ones written) instead of
//! clearing the slot and filling it again; and it never has to walk the maps' keys to find
//! what to clear.
//!
//! Memory: 32 bytes per name, 16 per IPv4 prefix and 28 per IPv6 prefix, for each slot.

use std::thread;

use blocker_common::{
    name::{HashKey, NameValue},
    prefix::{PREFIX_SHADOW, PrefixValue, SLOT_BITS},
};

use crate::datapath::{install::PrefixPlan, names::name_hash};
use crate::lists::{ListSet, Prefix};

/// An IPv4 prefix as a trie key (without the slot byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(in crate::datapath) struct V4 {
    addr: [u8; 4],
    len: u8,
}

impl V4 {
    pub(in crate::datapath) fn host(a: u32) -> V4 {
        V4 { addr: a.to_be_bytes(), len: 32 }
    }
}

impl V6 {
    pub(in crate::datapath) fn host(a: u128) -> V6 {
        V6 { addr: a.to_be_bytes(), len: 128 }
    }
}

/// An IPv6 prefix as a trie key (without the slot byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(in crate::datapath) struct V6 {
    addr: [u8; 16],
    len: u8,
}

/// A key of one of the list maps, as the kernel takes it for a given slot.
pub(in crate::datapath) trait SlotKey: Ord + Copy {
    const SIZE: usize;
    fn put(&self, slot: u8, out: &mut Vec<u8>);
}

/// `Key<V4KeyData>`: prefix length (slot bits included), then `[slot, a, b, c, d]`.
impl SlotKey for V4 {
    const SIZE: usize = 4 + 5;
    fn put(&self, slot: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&(SLOT_BITS + self.len as u32).to_ne_bytes());
        out.push(slot);
        out.extend_from_slice(&self.addr);
    }
}

/// `Key<V6KeyData>`: prefix length (slot bits included), then `[slot, 16 address bytes]`.
impl SlotKey for V6 {
    const SIZE: usize = 4 + 17;
    fn put(&self, slot: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&(SLOT_BITS + self.len as u32).to_ne_bytes());
        out.push(slot);
        out.extend_from_slice(&self.addr);
    }
}

/// A name hash: `NameKey { hash, slot, reserved: 0 }`.
impl SlotKey for u64 {
    const SIZE: usize = 16;
    fn put(&self, slot: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_ne_bytes());
        out.extend_from_slice(&(slot as u32).to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
    }
}

/// A value of one of the list maps, as the kernel takes it.
pub(in crate::datapath) trait SlotValue: Copy + PartialEq {
    const SIZE: usize;
    fn put(&self, out: &mut Vec<u8>);
}

impl SlotValue for PrefixValue {
    const SIZE: usize = 8;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.entry_id.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
    }
}

impl SlotValue for NameValue {
    const SIZE: usize = 24;
    fn put(&self, out: &mut Vec<u8>) {
        // The field order of the #[repr(C)] struct (blocker-common name.rs).
        for f in [self.block_id, self.allow_id, self.block_mode, self.allow_mode, self.shadow_id, self.shadow_mode] {
            out.extend_from_slice(&f.to_ne_bytes());
        }
    }
}

/// The contents of one slot: each map's keys and values, sorted by key, one value per key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(in crate::datapath) struct SlotRecord {
    /// The key the names were hashed with.
    pub key: HashKey,
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
            key: *key,
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
        Prefix::V4 { addr, len } => v4.push((V4 { addr: addr.octets(), len }, value)),
        Prefix::V6 { addr, len } => v6.push((V6 { addr: addr.octets(), len }, value)),
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
            NameValue { shadow_id: e.id, shadow_mode: n.flags, ..Default::default() }
        } else {
            NameValue { block_id: e.id, block_mode: n.flags, ..Default::default() }
        };
        parts.push((&n.name, v));
    }
    for (e, n) in set.allow_names() {
        parts.push((&n.name, NameValue { allow_id: e.id, allow_mode: n.flags, ..Default::default() }));
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

/// What turns `old` into `new`, both sorted with one value per key: the keys to delete (in
/// `old` only) and the keys to write with their values (in `new` only, or with a new value).
pub(in crate::datapath) fn changes<K: Ord + Copy, V: PartialEq + Copy>(old: &[(K, V)], new: &[(K, V)]) -> (Vec<K>, Vec<(K, V)>) {
    let (mut delete, mut write) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match old[i].0.cmp(&new[j].0) {
            std::cmp::Ordering::Less => {
                delete.push(old[i].0);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                write.push(new[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if old[i].1 != new[j].1 {
                    write.push(new[j]);
                }
                i += 1;
                j += 1;
            }
        }
    }
    delete.extend(old[i..].iter().map(|x| x.0));
    write.extend_from_slice(&new[j..]);
    (delete, write)
}

/// Keys as the kernel takes them for `slot`, one after the other.
pub(in crate::datapath) fn key_bytes<K: SlotKey>(keys: impl ExactSizeIterator<Item = K>, slot: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(keys.len() * K::SIZE);
    for k in keys {
        k.put(slot, &mut out);
    }
    out
}

/// Values as the kernel takes them, one after the other.
pub(in crate::datapath) fn value_bytes<V: SlotValue>(values: impl ExactSizeIterator<Item = V>) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * V::SIZE);
    for v in values {
        v.put(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use aya::maps::lpm_trie::Key;
    use blocker_common::{
        name::{MATCH_BELOW, MATCH_SELF, NameKey},
        prefix::{V6KeyData, v4_key_data, v6_key_data},
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
        let v4 = V4 { addr: [192, 0, 2, 0], len: 24 };
        let mut b = Vec::new();
        v4.put(1, &mut b);
        let k = Key::new(SLOT_BITS + 24, v4_key_data(1, [192, 0, 2, 0]));
        // SAFETY: Key is repr(C, packed): prefix length then data.
        let kb = unsafe { std::slice::from_raw_parts((&k as *const Key<_>).cast::<u8>(), std::mem::size_of_val(&k)) };
        assert_eq!(b, kb);
        let addr = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut b = Vec::new();
        V6 { addr, len: 128 }.put(0, &mut b);
        let k: Key<V6KeyData> = Key::new(SLOT_BITS + 128, v6_key_data(0, &addr));
        // SAFETY: as above.
        let kb = unsafe { std::slice::from_raw_parts((&k as *const Key<_>).cast::<u8>(), std::mem::size_of_val(&k)) };
        assert_eq!(b, kb);
        let mut b = Vec::new();
        0x1122_3344_5566_7788u64.put(1, &mut b);
        assert_eq!(b, bytes_of(&NameKey { hash: 0x1122_3344_5566_7788, slot: 1, reserved: 0 }));
        let nv = NameValue { block_id: 1, allow_id: 2, block_mode: 3, allow_mode: 4, shadow_id: 5, shadow_mode: 6 };
        let mut b = Vec::new();
        nv.put(&mut b);
        assert_eq!(b, bytes_of(&nv));
        let pv = PrefixValue { entry_id: 7, flags: PREFIX_SHADOW };
        let mut b = Vec::new();
        pv.put(&mut b);
        assert_eq!(b, bytes_of(&pv));
    }

    #[test]
    fn changes_delete_what_is_gone_and_write_what_is_new_or_different() {
        let old = [(1, 'a'), (2, 'b'), (4, 'd'), (6, 'f')];
        let new = [(2, 'b'), (3, 'c'), (4, 'x'), (7, 'g')];
        assert_eq!(changes(&old, &new), (vec![1, 6], vec![(3, 'c'), (4, 'x'), (7, 'g')]));
        assert_eq!(changes(&[], &new), (vec![], new.to_vec()));
        assert_eq!(changes(&old, &[]), (vec![1, 2, 4, 6], vec![]));
        assert_eq!(changes(&old, &old), (vec![], vec![]));
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
            NameValue { block_id: 1, block_mode: MATCH_SELF | MATCH_BELOW, shadow_id: 5, shadow_mode: MATCH_SELF, allow_id: 8, allow_mode: MATCH_SELF | MATCH_BELOW }
        );
        assert!(r.names.windows(2).all(|w| w[0].0 < w[1].0) && r.block_v4.windows(2).all(|w| w[0].0 < w[1].0));
        let shadow = r.block_v4.iter().find(|x| x.0.addr == [198, 51, 100, 0]).unwrap().1;
        assert_eq!(shadow, PrefixValue { entry_id: 7, flags: PREFIX_SHADOW });
        assert_eq!(r.allow_v4, [(V4 { addr: [192, 0, 2, 1], len: 32 }, PrefixValue { entry_id: 9, flags: 0 })]);
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
