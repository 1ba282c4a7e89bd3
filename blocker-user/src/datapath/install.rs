//! Installing a list set as a new generation.
//!
//! The new set is written into the slot packets are not using, then one write of
//! `Config::slot` switches every following packet to it: a packet sees the old set or the new
//! one, never a mix. The previous generation stays in the other slot until the next install
//! overwrites it.
//!
//! The two slots share one map element per key, with a value half per slot (`shared.rs`). The
//! slot written holds the generation before the previous one, and the controller knows what
//! both slots hold key by key (`slot.rs`): the install deletes the elements neither generation
//! lists any more and writes those whose value changes, in batches of thousands of keys per
//! system call (`batch.rs`). Ids are kept across generations (`ListSet::inherit_ids`), so an
//! update that changes 1% of the entries writes about that share of the maps. Where what the
//! slots hold is not known (maps adopted from an earlier daemon, an install that failed half
//! way), the maps are read back first.
//!
//! Block prefixes of lists in shadow mode go into the same tries and coarse bitmaps as enforced
//! ones, flagged `PREFIX_SHADOW`, except those an enforced block prefix covers (equal or
//! inside): the trie returns the longest match only, which would then be the shadow value and
//! let through what the enforced entry blocks. Left out, the enforced entry decides there, as
//! it should (enforced beats shadow).

use std::{
    collections::HashSet,
    os::fd::{AsFd, AsRawFd},
    time::{Duration, Instant},
};

use aya::maps::Map;
use blocker_common::{coarse, config::FLAG_V6_ALL_EXACT, name::NameValue, name_filter, prefix::PrefixValue};

use super::{
    Datapath, DatapathError,
    coarse::Bitmap,
    batch::RawMap,
    freeing,
    mmap::MappedArray,
    shared::{changes, contents, differences, key_bytes, split, value_bytes},
    slot::{Half, MapKey, SlotRecord, V4, V6, last_wins, name_values, prefix_values},
};
use crate::lists::{Entry, ListKind, ListSet, Prefix, Target};

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InstallReport {
    /// The slot now live.
    pub slot: u32,
    /// Enforced block prefixes installed, by family.
    pub block_v4: usize,
    pub block_v6: usize,
    pub allow_v4: usize,
    pub allow_v6: usize,
    /// Enforced block names.
    pub names_block: usize,
    pub names_allow: usize,
    /// Block prefixes of lists in shadow mode installed (flagged, counted, never enforced).
    pub shadow_prefixes: usize,
    /// Shadow prefixes not installed because an enforced block prefix covers them (equal to or
    /// inside it): there the enforced entry decides.
    pub shadow_prefixes_covered: usize,
    /// Block names of lists in shadow mode.
    pub shadow_names: usize,
    pub coarse_bits_v4: u64,
    pub coarse_bits_v6: u64,
    /// Bits set in the slot's name filter (one per NAMES key, fewer where keys share a bit).
    pub name_filter_bits: u64,
    /// Some IPv6 block prefix is shorter than the coarse filter covers: every IPv6 packet is
    /// checked against the exact trie.
    pub v6_all_exact: bool,
    /// Map elements written (new keys, and keys whose value changed) and deleted.
    pub written: usize,
    pub deleted: usize,
    /// What the slots held was not known (adopted maps, an install that failed half way): the
    /// maps were read back first.
    pub read_back: bool,
    /// Elements the read-back found other than the slots' generations make them (left by an
    /// install cut short), rewritten or deleted before the install.
    pub repaired: usize,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl Datapath {
    /// Makes `set` the live generation.
    pub fn install(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError> {
        let start = Instant::now();
        let next = (self.config.slot & 1) ^ 1;
        let slot = next as u8;
        let mut report = InstallReport { slot: next, ..Default::default() };
        let key = self.hash_key;

        let plan = block_prefix_plan(set);
        report.shadow_prefixes_covered = plan.covered;
        for e in set.entries() {
            let count = match (&e.target, e.kind) {
                (Target::Name(_), ListKind::Block) if e.shadow => &mut report.shadow_names,
                (Target::Name(_), ListKind::Block) => &mut report.names_block,
                (Target::Name(_), ListKind::Allow) => &mut report.names_allow,
                (Target::Prefix(p), ListKind::Allow) if p.is_v4() => &mut report.allow_v4,
                (Target::Prefix(_), ListKind::Allow) => &mut report.allow_v6,
                (Target::Prefix(_), ListKind::Block) => continue,
            };
            *count += 1;
        }
        for (e, p) in &plan.install {
            let count = match (e.shadow, p.is_v4()) {
                (true, _) => &mut report.shadow_prefixes,
                (false, true) => &mut report.block_v4,
                (false, false) => &mut report.block_v6,
            };
            *count += 1;
        }
        // From here on the slot is neither whole nor known until the end.
        let (held, live, read_back) = self.begin_install(next)?;
        report.read_back = read_back.is_some();
        report.repaired = read_back.unwrap_or(0);
        let written = self.write_generation(set, &plan, slot, &held, &live);
        // The live slot's half of every element is as it was: so is its record.
        self.keep_record(next ^ 1, live);
        let (record, written) = written?;
        (report.written, report.deleted) = written;
        self.clear_hits(next)?;
        self.write_hash_key(next, key)?;
        // The slot's name filter: a bit for every key it now holds in NAMES, written whole
        // before the slot goes live, so no listed name's lookup is ever skipped.
        let filter = name_filter_words(&record.names);
        self.write_bitmap("NAME_FILTER", next, &filter)?;
        report.name_filter_bits = filter.iter().map(|w| w.count_ones() as u64).sum();

        let mut bitmap = Bitmap::default();
        for (_, p) in &plan.install {
            bitmap.add(p);
        }
        self.write_bitmap("COARSE_V4", next, &bitmap.v4)?;
        self.write_bitmap("COARSE_V6", next, &bitmap.v6)?;
        (report.coarse_bits_v4, report.coarse_bits_v6) = bitmap.bits_set();
        report.v6_all_exact = bitmap.v6_all_exact;

        // The switch: from the next packet on, the new generation is live.
        self.config.slot = next;
        if bitmap.v6_all_exact {
            self.config.flags |= FLAG_V6_ALL_EXACT;
        } else {
            self.config.flags &= !FLAG_V6_ALL_EXACT;
        }
        self.write_config()?;
        // A few elements of each large trie, for the return of the freed ones (freeing.rs).
        let few = freeing::ELEMENTS;
        let nudge = [
            (LIST_MAPS[1], key_bytes(record.block_v4.iter().take(few).map(|x| x.0))),
            (LIST_MAPS[2], key_bytes(record.block_v6.iter().take(few).map(|x| x.0))),
        ];
        self.end_install(next, record, bitmap.v6_all_exact);
        let nudge = nudge.into_iter().filter_map(|((name, k, v), keys)| Some((self.raw_map(name, k, v).ok()?, keys))).collect();
        self.start_returning_freed_elements(nudge);
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// Writes `set` into `slot`'s half of the list maps, which hold `held` there and `live` in
    /// the other slot. Returns the slot's new record and the elements written and deleted.
    fn write_generation(&self, set: &ListSet, plan: &PrefixPlan<'_>, slot: u8, held: &SlotRecord, live: &SlotRecord) -> Result<(SlotRecord, (usize, usize)), DatapathError> {
        let key = self.hash_key;
        let s = slot as usize;
        // The maps are apart in the kernel (a lock each): the three large ones are each made
        // (names hashed, keys sorted) and written on a thread of their own, so that the kernel's
        // work, which a load or a write into an empty slot is mostly made of, spreads over the
        // CPUs and overlaps the making of the others; the small ones here.
        let [names, v4, v6, allow_v4, allow_v6] = LIST_MAPS.map(|(name, k, v)| self.raw_map(name, k, v));
        let (names, v4, v6, allow_v4, allow_v6) = (names?, v4?, v6?, allow_v4?, allow_v6?);
        let (b4, b6, a4, a6) = prefix_values(set, plan);
        let (record, written) = std::thread::scope(|scope| {
            let on_names = scope.spawn(|| {
                let r = name_values(set, &key);
                let w = write_changes(names, "NAMES", s, &live.names, &held.names, &r);
                (r, w)
            });
            let on_v4 = scope.spawn(|| {
                let r = last_wins(b4);
                let w = write_changes(v4, "BLOCK_V4", s, &live.block_v4, &held.block_v4, &r);
                (r, w)
            });
            let on_v6 = scope.spawn(|| {
                let r = last_wins(b6);
                let w = write_changes(v6, "BLOCK_V6", s, &live.block_v6, &held.block_v6, &r);
                (r, w)
            });
            let a4 = last_wins(a4);
            let wa4 = write_changes(allow_v4, "ALLOW_V4", s, &live.allow_v4, &held.allow_v4, &a4);
            let a6 = last_wins(a6);
            let wa6 = write_changes(allow_v6, "ALLOW_V6", s, &live.allow_v6, &held.allow_v6, &a6);
            let join = "making and writing a map does not panic";
            let ((names, wn), (b4, w4), (b6, w6)) = (on_names.join().expect(join), on_v4.join().expect(join), on_v6.join().expect(join));
            let record = SlotRecord { names, block_v4: b4, block_v6: b6, allow_v4: a4, allow_v6: a6 };
            (record, [wn, w4, w6, wa4, wa6])
        });
        let (mut w, mut d) = (0, 0);
        for r in written {
            let (rw, rd) = r?;
            w += rw;
            d += rd;
        }
        Ok((record, (w, d)))
    }

    /// Ends the rollback window: the generation in the slot packets do not use is no longer
    /// one to switch back to, and a rollback installs it again. Its elements stay: both slots
    /// share one element per key, so it costs only the keys it alone lists (the entries the
    /// last update removed), and the next install turns it into the new generation by writing
    /// the difference, as it would have anyway.
    pub fn end_rollback_window(&mut self) -> Result<(), DatapathError> {
        crate::update::Installer::forget_previous(self);
        Ok(())
    }

    /// What both slots hold, read from the kernel's maps: for maps whose contents this process
    /// did not write (adopted from an earlier daemon) or no longer knows (an install that
    /// failed half way). A slot's record is the keys whose half in that slot is the
    /// generation's own value. With `repair`, every element that is not what the two records
    /// make is rewritten or deleted, so that the maps hold exactly that, as every install
    /// assumes: an install cut short leaves the own halves right but may leave a covering half
    /// stale (the prefix it depends on written, the element that inherits it not yet). Every
    /// install's write carries the live slot's half as the live generation answers it, so the
    /// repair finds those halves right and packets see no change.
    /// Returns the records and the elements repaired.
    pub(super) fn read_back(&self, repair: bool) -> Result<([SlotRecord; 2], usize), DatapathError> {
        let [names, v4, v6, allow_v4, allow_v6] = LIST_MAPS.map(|(name, k, v)| self.raw_map(name, k, v));
        let mut repaired = 0;
        let [n0, n1] = read_slots::<u64, NameValue>(names?, "NAMES", repair, &mut repaired)?;
        let [b4_0, b4_1] = read_slots::<V4, PrefixValue>(v4?, "BLOCK_V4", repair, &mut repaired)?;
        let [b6_0, b6_1] = read_slots::<V6, PrefixValue>(v6?, "BLOCK_V6", repair, &mut repaired)?;
        let [a4_0, a4_1] = read_slots::<V4, PrefixValue>(allow_v4?, "ALLOW_V4", repair, &mut repaired)?;
        let [a6_0, a6_1] = read_slots::<V6, PrefixValue>(allow_v6?, "ALLOW_V6", repair, &mut repaired)?;
        let records = [
            SlotRecord { names: n0, block_v4: b4_0, block_v6: b6_0, allow_v4: a4_0, allow_v6: a6_0 },
            SlotRecord { names: n1, block_v4: b4_1, block_v6: b6_1, allow_v4: a4_1, allow_v6: a6_1 },
        ];
        Ok((records, repaired))
    }

    /// A list map by descriptor, for batch operations.
    fn raw_map(&self, name: &'static str, key_size: usize, value_size: usize) -> Result<RawMap, DatapathError> {
        let data = match self.ebpf.map(name).ok_or(DatapathError::MissingMap(name))? {
            Map::HashMap(d) | Map::LpmTrie(d) => d,
            _ => return Err(DatapathError::MissingMap(name)),
        };
        Ok(RawMap { fd: data.fd().as_fd().as_raw_fd(), key_size, value_size })
    }

    /// Removes the per-entry counts of `slot` (`slot << 31 | id`): they counted the generation
    /// the slot held, and ids name other entries in the next one. Few entries are ever hit, so
    /// reading the keys costs little.
    fn clear_hits(&self, slot: u32) -> Result<(), DatapathError> {
        let hits = self.raw_map("ENTRY_HITS", 4, 8)?;
        let stale = hits
            .keys_where(|k| u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) >> 31 == slot)
            .map_err(|source| DatapathError::Io { name: "ENTRY_HITS", what: "reading keys", source })?;
        hits.delete(&stale).map_err(|source| DatapathError::Io { name: "ENTRY_HITS", what: "deleting keys", source })?;
        Ok(())
    }

    /// Writes one slot's half of a two-slot bitmap array (COARSE_V4/V6, NAME_FILTER): `words`
    /// is the whole half.
    fn write_bitmap(&mut self, name: &'static str, slot: u32, words: &[u64]) -> Result<(), DatapathError> {
        let map = self.ebpf.map(name).ok_or(DatapathError::MissingMap(name))?;
        let Map::Array(data) = map else {
            return Err(DatapathError::MissingMap(name));
        };
        let half = words.len();
        debug_assert!(half == coarse::WORDS as usize || half == name_filter::WORDS as usize);
        let mut mapped = MappedArray::new(data, name, 2 * half)?;
        let base = (slot as usize) * half;
        mapped.words_mut()[base..base + half].copy_from_slice(words);
        Ok(())
    }
}

/// One slot's name filter (blocker-common name_filter.rs): the bit of every NAMES key.
pub(crate) fn name_filter_words(names: &[(u64, NameValue)]) -> Vec<u64> {
    let mut words = vec![0u64; name_filter::WORDS as usize];
    for (hash, _) in names {
        let (i, mask) = name_filter::index_and_mask(0, *hash);
        words[i as usize] |= mask;
    }
    words
}

/// The list maps: name, key size, value size (both halves).
const LIST_MAPS: [(&str, usize, usize); 5] = [
    ("NAMES", u64::SIZE, NameValue::SIZE),
    ("BLOCK_V4", V4::SIZE, PrefixValue::SIZE),
    ("BLOCK_V6", V6::SIZE, PrefixValue::SIZE),
    ("ALLOW_V4", V4::SIZE, PrefixValue::SIZE),
    ("ALLOW_V6", V6::SIZE, PrefixValue::SIZE),
];

/// Turns what `map` holds from `live` (the other slot) and `old` (in `slot`) into `live` and
/// `new`: deletes first (the map holds both generations within its capacity), then writes.
/// Returns (written, deleted).
fn write_changes<K: MapKey, H: Half>(map: RawMap, name: &'static str, slot: usize, live: &[(K, H)], old: &[(K, H)], new: &[(K, H)]) -> Result<(usize, usize), DatapathError> {
    let (delete, write) = changes(slot, live, old, new);
    if !delete.is_empty() {
        map.delete(&key_bytes(delete.iter().copied())).map_err(|source| DatapathError::Io { name, what: "deleting keys", source })?;
    }
    if !write.is_empty() {
        let keys = key_bytes(write.iter().map(|x| x.0));
        let values = value_bytes(write.iter().map(|x| x.1));
        map.update(&keys, &values).map_err(|source| DatapathError::Io { name, what: "writing keys", source })?;
    }
    Ok((write.len(), delete.len()))
}

/// Every element of a list map, each key with both halves, sorted by key.
#[allow(clippy::type_complexity)]
fn read_map<K: MapKey, H: Half>(map: RawMap, name: &'static str) -> Result<Vec<(K, [H; 2])>, DatapathError> {
    let (keys, values) = map.elements_where(|_| true).map_err(|source| DatapathError::Io { name, what: "reading elements", source })?;
    let mut out: Vec<_> = keys.chunks_exact(K::SIZE).zip(values.chunks_exact(H::SIZE)).map(|(k, v)| (K::read(k), H::read(v))).collect();
    out.sort_by_key(|e| e.0);
    Ok(out)
}

/// The slots' records of one list map, read back (`Datapath::read_back`); with `repair`, the
/// map made to hold exactly what they make, the elements rewritten or deleted counted.
#[allow(clippy::type_complexity)]
fn read_slots<K: MapKey, H: Half>(map: RawMap, name: &'static str, repair: bool, repaired: &mut usize) -> Result<[Vec<(K, H)>; 2], DatapathError> {
    let elements = read_map::<K, H>(map, name)?;
    let [r0, r1] = split(&elements);
    if repair {
        let (delete, write) = differences(&elements, &contents([&r0, &r1]));
        drop(elements);
        if !delete.is_empty() {
            map.delete(&key_bytes(delete.iter().copied())).map_err(|source| DatapathError::Io { name, what: "deleting keys", source })?;
        }
        if !write.is_empty() {
            let (keys, values) = (key_bytes(write.iter().map(|x| x.0)), value_bytes(write.iter().map(|x| x.1)));
            map.update(&keys, &values).map_err(|source| DatapathError::Io { name, what: "writing keys", source })?;
        }
        *repaired += delete.len() + write.len();
    }
    Ok([r0, r1])
}

/// The block prefixes to install: every enforced one, and the shadow ones no enforced prefix
/// covers.
pub(crate) struct PrefixPlan<'a> {
    pub install: Vec<(&'a Entry, &'a Prefix)>,
    /// Shadow prefixes left out because an enforced one covers them.
    pub covered: usize,
}

pub(crate) fn block_prefix_plan(set: &ListSet) -> PrefixPlan<'_> {
    let enforced = Enforced::of(set);
    let mut plan = PrefixPlan { install: Vec::new(), covered: 0 };
    for (e, p) in set.block_prefixes() {
        if e.shadow && enforced.covers(p) {
            plan.covered += 1;
        } else {
            plan.install.push((e, p));
        }
    }
    plan
}

/// The enforced block prefixes as one set of masked addresses per family and prefix length:
/// whether one covers a prefix of length L is one probe per length ≤ L that occurs in the lists
/// (a handful in practice), so a million shadow prefixes cost a few million hash probes.
#[derive(Default)]
struct Enforced {
    v4: Vec<HashSet<u32>>,
    v6: Vec<HashSet<u128>>,
    /// The lengths with at least one prefix, ascending.
    lens4: Vec<u8>,
    lens6: Vec<u8>,
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 { 0 } else { a & (u32::MAX << (32 - len as u32)) }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 { 0 } else { a & (u128::MAX << (128 - len as u32)) }
}

impl Enforced {
    fn of(set: &ListSet) -> Self {
        let mut s = Enforced { v4: vec![HashSet::new(); 33], v6: vec![HashSet::new(); 129], ..Default::default() };
        if !set.block_prefixes().any(|(e, _)| e.shadow) {
            return s;
        }
        for (e, p) in set.block_prefixes() {
            if e.shadow {
                continue;
            }
            match *p {
                Prefix::V4 { addr, len } => {
                    s.v4[len as usize].insert(mask4(u32::from(addr), len));
                }
                Prefix::V6 { addr, len } => {
                    s.v6[len as usize].insert(mask6(u128::from(addr), len));
                }
            }
        }
        s.lens4 = (0..=32u8).filter(|&l| !s.v4[l as usize].is_empty()).collect();
        s.lens6 = (0..=128u8).filter(|&l| !s.v6[l as usize].is_empty()).collect();
        s
    }

    /// Is `p` equal to or inside an enforced prefix?
    fn covers(&self, p: &Prefix) -> bool {
        match *p {
            Prefix::V4 { addr, len } => {
                let a = u32::from(addr);
                self.lens4.iter().take_while(|&&l| l <= len).any(|&l| self.v4[l as usize].contains(&mask4(a, l)))
            }
            Prefix::V6 { addr, len } => {
                let a = u128::from(addr);
                self.lens6.iter().take_while(|&&l| l <= len).any(|&l| self.v6[l as usize].contains(&mask6(a, l)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, path::Path};

    use super::*;
    use crate::{
        datapath::{
            shared::{changes, key_bytes, value_bytes},
            slot::{Half, MapKey},
        },
        lists::{ListInfo, ListKind, parse_list},
    };

    fn set(enforced: &str, shadow: &str) -> ListSet {
        let mut set = ListSet::new();
        let (p, _) = parse_list(Path::new("b"), enforced, ListKind::Block).unwrap();
        set.add_parsed(Path::new("b"), p);
        let (p, _) = parse_list(Path::new("s"), shadow, ListKind::Block).unwrap();
        set.add_list(ListInfo { name: "s".into(), source: "s".into(), shadow: true }, Path::new("s"), p).unwrap();
        set
    }

    fn installed(set: &ListSet) -> (Vec<String>, usize) {
        let plan = block_prefix_plan(set);
        (plan.install.iter().map(|(e, p)| format!("{}{p}", if e.shadow { "s:" } else { "" })).collect(), plan.covered)
    }

    #[test]
    fn a_shadow_prefix_inside_or_equal_to_an_enforced_one_is_left_out() {
        let s = set(
            "203.0.113.0/24\n2001:db8:1::/48\n198.51.100.7\n",
            "203.0.113.64/26\n203.0.113.0/24\n2001:db8:1:2::/64\n198.51.100.0/24\n2001:db8::/32\n198.51.100.8\n",
        );
        let (install, covered) = installed(&s);
        assert_eq!(
            install,
            ["203.0.113.0/24", "2001:db8:1::/48", "198.51.100.7/32", "s:198.51.100.0/24", "s:2001:db8::/32", "s:198.51.100.8/32"]
        );
        assert_eq!(covered, 3);
    }

    #[test]
    fn without_shadow_lists_every_prefix_is_installed() {
        let s = set("203.0.113.0/24\n203.0.113.64/26\n2001:db8::/32\n", "");
        assert_eq!(installed(&s), (vec!["203.0.113.0/24".into(), "203.0.113.64/26".into(), "2001:db8::/32".into()], 0));
    }

    #[test]
    fn the_cover_check_agrees_with_a_plain_scan() {
        // Pseudo-random prefixes around one /16 so that covers occur at many lengths.
        let mut x = 0x1234_5678u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut enforced = String::new();
        let mut shadow = String::new();
        for i in 0..400 {
            let len = 18 + next() % 15;
            let a = mask4(0xcb00_0000 | (next() & 0x0000_ffff), len as u8);
            let line = format!("{}/{len}\n", std::net::Ipv4Addr::from(a));
            if i % 2 == 0 { enforced.push_str(&line) } else { shadow.push_str(&line) }
        }
        let s = set(&enforced, &shadow);
        let e: Vec<&Prefix> = s.block_prefixes().filter(|(e, _)| !e.shadow).map(|(_, p)| p).collect();
        let plan = block_prefix_plan(&s);
        let mut covered = 0;
        for (en, p) in s.block_prefixes().filter(|(e, _)| e.shadow) {
            let scan = e.iter().any(|q| q.len() <= p.len() && q.contains(first_addr(p)));
            covered += scan as usize;
            assert_eq!(plan.install.iter().any(|(i, _)| i.id == en.id), !scan, "{p}");
        }
        assert_eq!(plan.covered, covered);
        assert!(covered > 20 && covered < 180, "{covered}: the table tests both sides");
    }

    /// What map `name` holds, as sorted (key, value) bytes.
    fn held(dp: &Datapath, name: &'static str, key_size: usize, value_size: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let map = dp.raw_map(name, key_size, value_size).unwrap();
        let (keys, values) = map.elements_where(|_| true).unwrap();
        let mut out: Vec<_> = keys.chunks_exact(key_size).zip(values.chunks_exact(value_size)).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        out.sort();
        out
    }

    /// The same, as the slots' records say.
    fn recorded<K: MapKey, H: Half>(r0: &[(K, H)], r1: &[(K, H)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let all = contents([r0, r1]);
        let keys = key_bytes(all.iter().map(|x| x.0));
        let values = value_bytes(all.iter().map(|x| x.1));
        let mut out: Vec<_> = keys.chunks_exact(K::SIZE).zip(values.chunks_exact(H::SIZE)).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        out.sort();
        out
    }

    /// The maps hold exactly `r[0]` in slot 0 and `r[1]` in slot 1, and read back as such.
    fn assert_holds(dp: &Datapath, r: [&SlotRecord; 2]) {
        assert_eq!(held(dp, "NAMES", u64::SIZE, NameValue::SIZE), recorded(&r[0].names, &r[1].names), "NAMES");
        assert_eq!(held(dp, "BLOCK_V4", V4::SIZE, PrefixValue::SIZE), recorded(&r[0].block_v4, &r[1].block_v4), "BLOCK_V4");
        assert_eq!(held(dp, "BLOCK_V6", V6::SIZE, PrefixValue::SIZE), recorded(&r[0].block_v6, &r[1].block_v6), "BLOCK_V6");
        assert_eq!(held(dp, "ALLOW_V4", V4::SIZE, PrefixValue::SIZE), recorded(&r[0].allow_v4, &r[1].allow_v4), "ALLOW_V4");
        assert_eq!(held(dp, "ALLOW_V6", V6::SIZE, PrefixValue::SIZE), recorded(&r[0].allow_v6, &r[1].allow_v6), "ALLOW_V6");
        let (back, repaired) = dp.read_back(false).unwrap();
        assert!(back[0] == *r[0] && back[1] == *r[1], "the maps read back as the records");
        assert_eq!(repaired, 0);
    }

    /// The slot's name filter holds exactly the bits of its names: none missing (a listed name
    /// would be skipped), none left over from the generation before.
    fn assert_filter(dp: &Datapath, slot: u8, r: &SlotRecord) {
        let Some(Map::Array(data)) = dp.ebpf.map("NAME_FILTER") else { panic!("NAME_FILTER is an array") };
        let half = name_filter::WORDS as usize;
        let mut mapped = MappedArray::new(data, "NAME_FILTER", 2 * half).unwrap();
        let words = &mapped.words_mut()[slot as usize * half..(slot as usize + 1) * half];
        assert!(words == name_filter_words(&r.names).as_slice(), "NAME_FILTER, slot {slot}");
    }

    /// Generation `g` of a list set: each generation drops some entries, adds others, changes
    /// a name's mode and moves a prefix from enforced to shadow.
    fn generation(g: usize, before: Option<&ListSet>) -> ListSet {
        generation_with(g, before, "")
    }

    /// `generation` with `extra` lines in its block list.
    fn generation_with(g: usize, before: Option<&ListSet>, extra: &str) -> ListSet {
        let mut block = String::from(extra);
        for i in 0..300 {
            if i % 7 == g % 7 {
                continue;
            }
            let mode = if i == 11 && g % 2 == 1 { "=" } else { "" };
            block.push_str(&format!("{mode}n{i}.example\n198.51.{}.{}\n2001:db8:{i:x}::/48\n", i / 100, i % 100 + g % 2));
        }
        block.push_str(&format!("g{g}.example\n"));
        let shadow = if g.is_multiple_of(2) { "203.0.113.0/24\nshadow.example\n" } else { "203.0.113.64/26\n" };
        let mut s = ListSet::new();
        let (p, _) = parse_list(Path::new("b"), &block, ListKind::Block).unwrap();
        s.add_parsed(Path::new("b"), p);
        let (p, _) = parse_list(Path::new("s"), shadow, ListKind::Block).unwrap();
        s.add_list(ListInfo { name: "s".into(), source: "s".into(), shadow: true }, Path::new("s"), p).unwrap();
        let (p, _) = parse_list(Path::new("a"), &format!("n{g}.example\n198.51.0.{g}\n2001:db8:ffff::{g}\n"), ListKind::Allow).unwrap();
        s.add_parsed(Path::new("a"), p);
        if let Some(b) = before {
            s.inherit_ids(b);
        }
        s
    }

    /// The program loaded with a fixed name key, or None (the test is skipped) where this
    /// process may not load it (not root).
    fn loaded() -> Option<(Datapath, blocker_common::name::HashKey)> {
        let key = blocker_common::name::HashKey { k0: 7, k1: 9 };
        match Datapath::load(crate::datapath::Options { hash_key: Some(key), ..Default::default() }) {
            Ok(dp) => Some((dp, key)),
            Err(_) => {
                eprintln!("skipped: cannot load the XDP object here (not root?)");
                None
            }
        }
    }

    #[test]
    fn an_install_leaves_each_slot_holding_exactly_its_generation() {
        let Some((mut dp, key)) = loaded() else { return };
        let record = |s: &ListSet| SlotRecord::of(s, &key, &block_prefix_plan(s));
        let hits = dp.raw_map("ENTRY_HITS", 4, 8).unwrap();
        let mut sets = vec![generation(0, None)];
        let mut slots = [SlotRecord::default(), SlotRecord::default()];
        let r = dp.install(&sets[0]).unwrap();
        assert_eq!((r.slot, r.read_back, r.deleted, r.written), (1, false, 0, record(&sets[0]).len()));
        slots[1] = record(&sets[0]);
        assert_holds(&dp, [&slots[0], &slots[1]]);
        for g in 1..6 {
            let s = generation(g, sets.last());
            // A count of the slot about to be written, and one of the live slot.
            let (next, live) = (dp.live_slot() ^ 1, dp.live_slot());
            hits.update(&[(next << 31 | 5).to_ne_bytes(), (live << 31 | 5).to_ne_bytes()].concat(), &[1u64.to_ne_bytes(), 2u64.to_ne_bytes()].concat()).unwrap();
            let r = dp.install(&s).unwrap();
            assert!(!r.read_back);
            if g == 1 {
                // Into the empty slot: every key of the generation gets its half.
                assert_eq!(r.deleted, 0);
                assert!(r.written >= record(&s).len(), "{} written of {}", r.written, record(&s).len());
            } else {
                // Against generation g - 2, which the slot holds.
                assert!(r.written + r.deleted < record(&s).len() / 2, "{g}: {} written, {} deleted of {}", r.written, r.deleted, record(&s).len());
            }
            slots[r.slot as usize] = record(&s);
            assert_holds(&dp, [&slots[0], &slots[1]]);
            assert_filter(&dp, r.slot as u8, &slots[r.slot as usize]);
            assert_eq!(hits.get(&(next << 31 | 5).to_ne_bytes()).unwrap(), None, "the written slot's counts are gone");
            assert!(hits.get(&(live << 31 | 5).to_ne_bytes()).unwrap().is_some(), "the other slot's are kept");
            sets.push(s);
        }
        // Where what the slots hold is not known (here: an install begun and not finished),
        // the maps are read back first, and the install still writes only the difference.
        let next = dp.live_slot() ^ 1;
        dp.begin_install(next).unwrap();
        let s = generation(6, sets.last());
        let r = dp.install(&s).unwrap();
        assert!(r.read_back);
        assert!(r.written + r.deleted < record(&s).len() / 2, "{} written, {} deleted", r.written, r.deleted);
        slots[r.slot as usize] = record(&s);
        assert_holds(&dp, [&slots[0], &slots[1]]);
        // And a rollback switches to the previous generation, whole.
        assert!(dp.switch_to_previous().unwrap());
        assert_eq!(dp.live_slot(), r.slot ^ 1);

        // The rollback window is over: no switch goes to the other slot any more; its
        // generation stays in the maps, and the next install writes only the difference to it.
        let live = dp.live_slot();
        dp.end_rollback_window().unwrap();
        assert!(!dp.switch_to_previous().unwrap());
        assert_eq!(dp.live_slot(), live);
        assert_holds(&dp, [&slots[0], &slots[1]]);
        let s = generation(7, sets.last());
        let r = dp.install(&s).unwrap();
        assert!(!r.read_back);
        assert!(r.written + r.deleted < record(&s).len() / 2, "{} written, {} deleted", r.written, r.deleted);
        slots[r.slot as usize] = record(&s);
        assert_holds(&dp, [&slots[0], &slots[1]]);
        assert_filter(&dp, r.slot as u8, &slots[r.slot as usize]);
        // The rewrites that return the freed elements leave every value as it was.
        dp.finish_freeing();
        assert_holds(&dp, [&slots[0], &slots[1]]);
    }

    #[test]
    fn an_install_cut_short_is_repaired_by_the_next_one() {
        let Some((mut dp, key)) = loaded() else { return };
        let record = |s: &ListSet| SlotRecord::of(s, &key, &block_prefix_plan(s));
        let set_of = |block: &str| {
            let mut s = ListSet::new();
            let (p, _) = parse_list(Path::new("b"), block, ListKind::Block).unwrap();
            s.add_parsed(Path::new("b"), p);
            s
        };
        // Slot 1 live, with a /16.
        let live = set_of("10.1.0.0/16\nlive.example\n");
        assert_eq!(dp.install(&live).unwrap().slot, 1);
        // An install of the /8 around it into slot 0 that wrote its first element and stopped:
        // the /16's slot-0 half still says that nothing covers it.
        let new = set_of("10.0.0.0/8\nnew.example\n");
        let (_, write) = changes(0, &record(&live).block_v4, &[], &record(&new).block_v4);
        assert_eq!(write.len(), 2);
        let v4 = dp.raw_map("BLOCK_V4", V4::SIZE, PrefixValue::SIZE).unwrap();
        v4.update(&key_bytes(write[..1].iter().map(|x| x.0)), &value_bytes(write[..1].iter().map(|x| x.1))).unwrap();
        dp.begin_install(0).unwrap();
        // The next install reads the maps back, finds the own halves right and the covering
        // one stale, and repairs it; then it writes what the cut install had not (the name).
        let r = dp.install(&new).unwrap();
        assert_eq!((r.slot, r.read_back, r.repaired, r.written), (0, true, 1, 1));
        assert_holds(&dp, [&record(&new), &record(&live)]);
    }

    #[test]
    fn the_name_filter_has_the_bit_of_every_name() {
        let key = blocker_common::name::HashKey { k0: 3, k1: 4 };
        let names: Vec<(u64, NameValue)> =
            (0..10_000).map(|i| (crate::datapath::name_hash(&key, &format!("n{i}.example")), NameValue::default())).collect();
        let words = name_filter_words(&names);
        for (hash, _) in &names {
            let (i, mask) = name_filter::index_and_mask(0, *hash);
            assert!(words[i as usize] & mask != 0, "{hash:x}");
        }
        // 10 000 hashes into 2^25 bits share a bit about 1.5 times: nearly one bit per name.
        let set: u64 = words.iter().map(|w| w.count_ones() as u64).sum();
        assert!((9_990..=10_000).contains(&set), "{set} bits");
    }

    fn first_addr(p: &Prefix) -> IpAddr {
        match *p {
            Prefix::V4 { addr, .. } => IpAddr::V4(addr),
            Prefix::V6 { addr, .. } => IpAddr::V6(addr),
        }
    }
}
