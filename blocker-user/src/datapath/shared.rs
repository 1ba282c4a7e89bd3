//! What the list maps hold, given what each slot holds: one element per key of either slot's
//! generation, whose value has a half per slot (blocker-common name.rs, prefix.rs). A half is
//! the generation's own value for the key, or, where the generation does not list the key, what
//! it answers there: nothing for a name; for a prefix, the value of its longest own prefix
//! covering the key, flagged `PREFIX_COVERING` (entry id 0 where none covers it).
//!
//! An install changes one slot's generation. `changes` walks the keys of the other slot, the
//! slot's old generation and its new one together, in key order, and yields the elements to
//! delete (keys neither slot lists any more) and to write (new keys, and keys whose value
//! changed). The live slot's half of every element stays what it was, or, for a new key, is
//! what a lookup of the live generation already answered there: packets see the live
//! generation whole while the install goes on, whatever order the kernel applies it in.

use super::slot::{Half, MapKey};

/// The longest own prefixes of one generation covering the current key, innermost last.
struct Covering<K, H> {
    stack: Vec<(K, H)>,
}

impl<K: MapKey, H: Half> Covering<K, H> {
    fn new() -> Self {
        Covering { stack: Vec::new() }
    }

    /// The generation's half for `key` (keys come in order), given its own value there if any.
    fn half(&mut self, key: &K, own: Option<H>) -> H {
        while self.stack.last().is_some_and(|(k, _)| !k.covers(key)) {
            self.stack.pop();
        }
        match own {
            Some(h) => {
                self.stack.push((*key, h));
                h
            }
            None => self.stack.last().map_or_else(H::default, |(_, h)| h.covering()),
        }
    }
}

/// One generation's records in key order, read alongside the others.
struct Walk<'a, K, H> {
    rows: &'a [(K, H)],
    at: usize,
    covering: Covering<K, H>,
}

impl<'a, K: MapKey, H: Half> Walk<'a, K, H> {
    fn new(rows: &'a [(K, H)]) -> Self {
        Walk { rows, at: 0, covering: Covering::new() }
    }

    fn peek(&self) -> Option<K> {
        self.rows.get(self.at).map(|r| r.0)
    }

    /// Whether the generation lists `key`, and its half there. Keys come in order.
    fn at(&mut self, key: &K) -> (bool, H) {
        let own = match self.rows.get(self.at) {
            Some((k, h)) if k == key => {
                self.at += 1;
                Some(*h)
            }
            _ => None,
        };
        (own.is_some(), self.covering.half(key, own))
    }
}

/// The elements to delete and to write so that a map holding `other` (in slot `1 - slot`) and
/// `old` (in `slot`) holds `other` and `new`. Each record is sorted with one value per key.
#[allow(clippy::type_complexity)]
pub(in crate::datapath) fn changes<K: MapKey, H: Half>(slot: usize, other: &[(K, H)], old: &[(K, H)], new: &[(K, H)]) -> (Vec<K>, Vec<(K, [H; 2])>) {
    let (mut delete, mut write) = (Vec::new(), Vec::new());
    let (mut o, mut a, mut b) = (Walk::new(other), Walk::new(old), Walk::new(new));
    while let Some(key) = [o.peek(), a.peek(), b.peek()].into_iter().flatten().min() {
        let (in_other, h_other) = o.at(&key);
        let (in_old, h_old) = a.at(&key);
        let (in_new, h_new) = b.at(&key);
        let pair = |mine: H| if slot == 0 { [mine, h_other] } else { [h_other, mine] };
        let (was, will) = (in_other || in_old, in_other || in_new);
        if will {
            if !was || h_old != h_new {
                write.push((key, pair(h_new)));
            }
        } else if was {
            delete.push(key);
        }
    }
    (delete, write)
}

/// The whole contents of a map holding `records[0]` in slot 0 and `records[1]` in slot 1,
/// sorted: as an empty map becomes by installing the one into slot 0, then the other into
/// slot 1 (the second install writes every element whose slot-1 half is not empty).
pub(in crate::datapath) fn contents<K: MapKey, H: Half>(records: [&[(K, H)]; 2]) -> Vec<(K, [H; 2])> {
    let (_, first) = changes(0, &[], &[], records[0]);
    let (_, second) = changes(1, records[0], &[], records[1]);
    let mut out = Vec::with_capacity(first.len().max(second.len()));
    let (mut i, mut j) = (0, 0);
    while i < first.len() || j < second.len() {
        match (first.get(i), second.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                out.push(*b);
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                out.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                out.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                out.push(*b);
                j += 1;
            }
            (None, None) => unreachable!("the loop condition"),
        }
    }
    out
}

/// Splits what a map holds (key, both halves, sorted by key) into the slots' own records: a key
/// is in a slot's record where that slot's half is the generation's own value.
#[allow(clippy::type_complexity)]
pub(in crate::datapath) fn split<K: MapKey, H: Half>(elements: &[(K, [H; 2])]) -> [Vec<(K, H)>; 2] {
    let own = |s: usize| elements.iter().filter(|e| e.1[s].is_own()).map(|e| (e.0, e.1[s])).collect();
    [own(0), own(1)]
}

/// What turns `actual` into `wanted` (both sorted by key, one value per key): the keys to
/// delete and the elements to write (new, or with another value).
#[allow(clippy::type_complexity)]
pub(in crate::datapath) fn differences<K: MapKey, H: Half>(actual: &[(K, [H; 2])], wanted: &[(K, [H; 2])]) -> (Vec<K>, Vec<(K, [H; 2])>) {
    let (mut delete, mut write) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < actual.len() || j < wanted.len() {
        match (actual.get(i), wanted.get(j)) {
            (Some(a), Some(w)) if a.0 == w.0 => {
                if a.1 != w.1 {
                    write.push(*w);
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(w)) if a.0 < w.0 => {
                delete.push(a.0);
                i += 1;
            }
            (Some(a), None) => {
                delete.push(a.0);
                i += 1;
            }
            (_, Some(w)) => {
                write.push(*w);
                j += 1;
            }
            (None, None) => unreachable!("the loop condition"),
        }
    }
    (delete, write)
}

/// Keys as the kernel takes them, one after the other.
pub(in crate::datapath) fn key_bytes<K: MapKey>(keys: impl ExactSizeIterator<Item = K>) -> Vec<u8> {
    let mut out = Vec::with_capacity(keys.len() * K::SIZE);
    for k in keys {
        k.put(&mut out);
    }
    out
}

/// Values (both halves) as the kernel takes them, one after the other.
pub(in crate::datapath) fn value_bytes<H: Half>(values: impl ExactSizeIterator<Item = [H; 2]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * H::SIZE);
    for v in values {
        H::put(&v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use blocker_common::{
        name::{MATCH_SELF, NameValue},
        prefix::{PREFIX_COVERING, PREFIX_SHADOW, PrefixValue},
    };

    use super::*;
    use crate::datapath::slot::V4;

    fn p(s: &str) -> V4 {
        let (a, l) = s.split_once('/').unwrap();
        V4::new(u32::from(a.parse::<std::net::Ipv4Addr>().unwrap()), l.parse().unwrap())
    }

    fn own(id: u32) -> PrefixValue {
        PrefixValue { entry_id: id, flags: 0 }
    }

    fn cov(id: u32) -> PrefixValue {
        PrefixValue { entry_id: id, flags: PREFIX_COVERING }
    }

    const NONE: PrefixValue = PrefixValue { entry_id: 0, flags: 0 };

    /// The longest-prefix match of `addr` in a map's contents, for slot `s`: what the kernel
    /// answers.
    fn lookup(contents: &[(V4, [PrefixValue; 2])], s: usize, addr: &str) -> u32 {
        let host = p(&format!("{addr}/32"));
        contents.iter().filter(|(k, _)| k.covers(&host)).max_by_key(|(k, _)| p_len(k)).map_or(0, |(_, v)| v[s].entry_id)
    }

    /// The longest-prefix match of `addr` in one generation alone.
    fn truth(record: &[(V4, PrefixValue)], addr: &str) -> u32 {
        let host = p(&format!("{addr}/32"));
        record.iter().filter(|(k, _)| k.covers(&host)).max_by_key(|(k, _)| p_len(k)).map_or(0, |(_, v)| v.entry_id)
    }

    fn p_len(k: &V4) -> u32 {
        let mut b = Vec::new();
        k.put(&mut b);
        u32::from_ne_bytes(b[..4].try_into().unwrap())
    }

    #[test]
    fn a_key_only_one_generation_lists_carries_the_others_covering_value() {
        let a = [(p("10.0.0.0/8"), own(1)), (p("10.1.0.0/16"), own(2))];
        let b = [(p("10.1.2.0/24"), own(3)), (p("192.0.2.0/24"), PrefixValue { entry_id: 4, flags: PREFIX_SHADOW })];
        let c = contents([&a, &b]);
        assert_eq!(
            c,
            [
                (p("10.0.0.0/8"), [own(1), NONE]),
                (p("10.1.0.0/16"), [own(2), NONE]),
                (p("10.1.2.0/24"), [cov(2), own(3)]),
                (p("192.0.2.0/24"), [NONE, PrefixValue { entry_id: 4, flags: PREFIX_SHADOW }]),
            ]
        );
        // Each slot's lookups answer as its generation alone would.
        for addr in ["10.9.9.9", "10.1.9.9", "10.1.2.3", "192.0.2.7", "198.51.100.1"] {
            assert_eq!(lookup(&c, 0, addr), truth(&a, addr), "slot 0, {addr}");
            assert_eq!(lookup(&c, 1, addr), truth(&b, addr), "slot 1, {addr}");
        }
        assert_eq!(split(&c), [a.to_vec(), b.to_vec()]);
    }

    #[test]
    fn an_install_writes_only_the_elements_whose_value_changes() {
        let live = [(p("10.0.0.0/8"), own(1)), (p("203.0.113.0/24"), own(5))];
        let old = [(p("10.0.0.0/8"), own(1)), (p("10.1.0.0/16"), own(2)), (p("198.51.100.0/24"), own(6))];
        let new = [(p("10.0.0.0/8"), own(1)), (p("10.1.0.0/16"), own(7)), (p("10.1.2.0/24"), own(8))];
        let (delete, write) = changes(1, &live, &old, &new);
        // 198.51.100.0/24 was only the old generation's; 203.0.113.0/24 is the live one's and
        // stays (its slot-1 half: still no covering prefix).
        assert_eq!(delete, [p("198.51.100.0/24")]);
        assert_eq!(write, [(p("10.1.0.0/16"), [cov(1), own(7)]), (p("10.1.2.0/24"), [cov(1), own(8)])]);
        // Applied, the map holds what it would hold had it been written from nothing.
        let mut map: std::collections::BTreeMap<V4, [PrefixValue; 2]> = contents([&live, &old]).into_iter().collect();
        for k in delete {
            map.remove(&k);
        }
        map.extend(write);
        assert_eq!(map.into_iter().collect::<Vec<_>>(), contents([&live, &new]));
    }

    #[test]
    fn a_changed_covering_prefix_rewrites_the_keys_that_inherit_it() {
        // The new generation gives 10.0.0.0/8 another entry: the live generation's 10.1.0.0/16,
        // which the new one does not list, carries the new value in the new slot's half.
        let live = [(p("10.1.0.0/16"), own(2))];
        let old = [(p("10.0.0.0/8"), own(1))];
        let new = [(p("10.0.0.0/8"), own(9))];
        let (delete, write) = changes(0, &live, &old, &new);
        assert!(delete.is_empty());
        assert_eq!(write, [(p("10.0.0.0/8"), [own(9), NONE]), (p("10.1.0.0/16"), [cov(9), own(2)])]);
    }

    #[test]
    fn random_generations_answer_every_address_as_they_would_alone() {
        struct Rng(u32);
        impl Rng {
            fn next(&mut self) -> u32 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 17;
                self.0 ^= self.0 << 5;
                self.0
            }
        }
        let mut rng = Rng(0x9e37_79b9);
        // Prefixes of 8 to 32 bits inside 10.0.0.0/8, so that they nest at every depth.
        let generation = |rng: &mut Rng, n: usize, id0: u32| -> Vec<(V4, PrefixValue)> {
            let mut v: Vec<_> = (0..n).map(|i| (V4::new(0x0a00_0000 | (rng.next() & 0x00ff_ffff), 8 + (rng.next() % 25) as u8), own(id0 + i as u32))).collect();
            v.sort_by_key(|e| e.0);
            v.dedup_by_key(|e| e.0);
            v
        };
        for round in 0..20 {
            let (live, old, new) = (generation(&mut rng, 60, 1), generation(&mut rng, 60, 100), generation(&mut rng, 60, 200));
            let slot = round % 2;
            let (delete, write) = changes(slot, &live, &old, &new);
            let records = |mine: &[(V4, PrefixValue)]| if slot == 0 { contents([mine, &live]) } else { contents([&live, mine]) };
            let mut map: std::collections::BTreeMap<V4, [PrefixValue; 2]> = records(&old).into_iter().collect();
            // The changes one at a time, in an order of their own (deletes and writes mixed): at
            // every step the live slot answers as the live generation alone.
            let mut steps: Vec<(V4, Option<[PrefixValue; 2]>)> = delete.iter().map(|k| (*k, None)).chain(write.iter().map(|(k, v)| (*k, Some(*v)))).collect();
            for i in (1..steps.len()).rev() {
                steps.swap(i, rng.next() as usize % (i + 1));
            }
            for (k, v) in steps {
                match v {
                    Some(v) => map.insert(k, v),
                    None => map.remove(&k),
                };
                let now: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
                for _ in 0..20 {
                    let a = std::net::Ipv4Addr::from(0x0a00_0000 | (rng.next() & 0x00ff_ffff)).to_string();
                    assert_eq!(lookup(&now, 1 - slot, &a), truth(&live, &a), "live generation mid-install, {a}");
                }
            }
            let map: Vec<_> = map.into_iter().collect();
            assert_eq!(map, records(&new));
            for _ in 0..300 {
                let a = std::net::Ipv4Addr::from(0x0a00_0000 | (rng.next() & 0x00ff_ffff)).to_string();
                assert_eq!(lookup(&map, slot, &a), truth(&new, &a), "new generation, {a}");
                assert_eq!(lookup(&map, 1 - slot, &a), truth(&live, &a), "live generation, {a}");
            }
        }
    }

    #[test]
    fn elements_an_install_cut_short_left_stale_are_found_against_the_records() {
        // Slot 1 live with 10.1.0.0/16; an install of 10.0.0.0/8 into slot 0 wrote its first
        // element and stopped: 10.1.0.0/16 still says "nothing covers" for slot 0.
        let live = [(p("10.1.0.0/16"), own(2))];
        let new = [(p("10.0.0.0/8"), own(9))];
        let actual = [(p("10.0.0.0/8"), [own(9), NONE]), (p("10.1.0.0/16"), [NONE, own(2)]), (p("192.0.2.0/24"), [NONE, NONE])];
        let [r0, r1] = split(&actual);
        assert_eq!((r0.as_slice(), r1.as_slice()), (new.as_slice(), live.as_slice()), "the own halves are right");
        let (delete, write) = differences(&actual, &contents([&r0, &r1]));
        // The stale covering half is rewritten; an element neither slot owns goes.
        assert_eq!(delete, [p("192.0.2.0/24")]);
        assert_eq!(write, [(p("10.1.0.0/16"), [cov(9), own(2)])]);
        assert_eq!(differences(&contents([&r0, &r1]), &contents([&r0, &r1])), (vec![], vec![]));
    }

    #[test]
    fn names_share_an_element_and_an_empty_half_means_not_listed() {
        let v = |id| NameValue { block_id: id, block_mode: MATCH_SELF as u8, ..Default::default() };
        let live = [(1u64, v(1)), (2, v(2))];
        let old = [(2u64, v(2)), (3, v(3))];
        let new = [(2u64, v(2)), (4, v(4))];
        let (delete, write) = changes(0, &live, &old, &new);
        assert_eq!(delete, [3]);
        assert_eq!(write, [(4, [v(4), NameValue::default()])]);
        assert_eq!(contents([&new, &live]), [(1, [NameValue::default(), v(1)]), (2, [v(2), v(2)]), (4, [v(4), NameValue::default()])]);
    }
}
