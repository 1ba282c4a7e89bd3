//! Installing a list set as a new generation.
//!
//! The new set is written into the slot packets are not using, then one write of
//! `Config::slot` switches every following packet to it: a packet sees the old set or the new
//! one, never a mix. The previous generation stays in the other slot until the next install
//! overwrites it.
//!
//! The slot written holds the generation before the previous one, and the controller knows
//! what that is key by key (`slot.rs`): the install deletes the keys the new generation no
//! longer has and writes those it adds or gives another value, in batches of thousands of keys
//! per system call (`batch.rs`). Ids are kept across generations (`ListSet::inherit_ids`), so
//! an update that changes 1% of the entries writes about that share of the maps. Where the
//! slot's contents are not known (maps adopted from an earlier daemon, an install that failed
//! half way), the slot is cleared of every key first and filled whole.
//!
//! Block prefixes of lists in shadow mode go into the same tries and coarse bitmaps as enforced
//! ones, flagged `PREFIX_SHADOW`, except those an enforced block prefix covers (equal or
//! inside): the trie returns the longest match only, which would then be the shadow value and
//! let through what the enforced entry blocks. Left out, the enforced entry decides there, as
//! it should (enforced beats shadow).

use std::{
    collections::HashSet,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    time::{Duration, Instant},
};

use aya::maps::Map;
use blocker_common::{coarse, config::FLAG_V6_ALL_EXACT, name::NameValue, name_filter, prefix::PrefixValue};

use super::{
    Datapath, DatapathError,
    coarse::Bitmap,
    batch::RawMap,
    slot::{SlotKey, SlotRecord, SlotValue, V4, V6, changes, key_bytes, last_wins, name_values, prefix_values, value_bytes},
    mmap::MappedArray,
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
    /// Map elements written (new keys, and keys whose value changed) and deleted in the slot.
    pub written: usize,
    pub deleted: usize,
    /// What the slot held was not known: it was cleared of every key and filled whole.
    pub cleared: bool,
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
        let held = self.begin_install(next).filter(|r| r.key == key || r.names.is_empty());
        let held = match held {
            Some(r) => r,
            None => {
                report.cleared = true;
                self.clear_slot(slot)?;
                SlotRecord::default()
            }
        };
        // The maps are apart in the kernel (a lock each): the three large ones are each made
        // (names hashed, keys sorted) and written on a thread of their own, so that the kernel's
        // work, which a load or a write into an empty slot is mostly made of, spreads over the
        // CPUs and overlaps the making of the others; the small ones here.
        let maps = [("NAMES", u64::SIZE, NameValue::SIZE), ("BLOCK_V4", V4::SIZE, 8), ("BLOCK_V6", V6::SIZE, 8), ("ALLOW_V4", V4::SIZE, 8), ("ALLOW_V6", V6::SIZE, 8)];
        let [names, v4, v6, allow_v4, allow_v6] = maps.map(|(name, k, v)| self.raw_map(name, k, v));
        let (names, v4, v6, allow_v4, allow_v6) = (names?, v4?, v6?, allow_v4?, allow_v6?);
        let (b4, b6, a4, a6) = prefix_values(set, &plan);
        let (record, written) = std::thread::scope(|s| {
            let on_names = s.spawn(|| {
                let r = name_values(set, &key);
                let w = write_changes(names, "NAMES", slot, &held.names, &r);
                (r, w)
            });
            let on_v4 = s.spawn(|| {
                let r = last_wins(b4);
                let w = write_changes(v4, "BLOCK_V4", slot, &held.block_v4, &r);
                (r, w)
            });
            let on_v6 = s.spawn(|| {
                let r = last_wins(b6);
                let w = write_changes(v6, "BLOCK_V6", slot, &held.block_v6, &r);
                (r, w)
            });
            let a4 = last_wins(a4);
            let wa4 = write_changes(allow_v4, "ALLOW_V4", slot, &held.allow_v4, &a4);
            let a6 = last_wins(a6);
            let wa6 = write_changes(allow_v6, "ALLOW_V6", slot, &held.allow_v6, &a6);
            let join = "making and writing a map does not panic";
            let ((names, wn), (b4, w4), (b6, w6)) = (on_names.join().expect(join), on_v4.join().expect(join), on_v6.join().expect(join));
            let record = SlotRecord { key, names, block_v4: b4, block_v6: b6, allow_v4: a4, allow_v6: a6 };
            (record, [wn, w4, w6, wa4, wa6])
        });
        for r in written {
            let (w, d) = r?;
            report.written += w;
            report.deleted += d;
        }
        drop(held);
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
        self.end_install(next, record, bitmap.v6_all_exact);
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// Empties the slot packets do not use: the generation it held (the one before the live
    /// one) stops costing kernel memory, and a rollback has to install it again. Returns the
    /// map elements deleted.
    pub fn release_previous(&mut self) -> Result<usize, DatapathError> {
        let other = (self.config.slot & 1) ^ 1;
        let slot = other as u8;
        let held = self.begin_install(other);
        let mut deleted = 0;
        match held {
            Some(r) => {
                let maps = [("NAMES", u64::SIZE, NameValue::SIZE), ("BLOCK_V4", V4::SIZE, 8), ("BLOCK_V6", V6::SIZE, 8), ("ALLOW_V4", V4::SIZE, 8), ("ALLOW_V6", V6::SIZE, 8)];
                let [names, v4, v6, allow_v4, allow_v6] = maps.map(|(name, k, v)| self.raw_map(name, k, v));
                deleted += write_changes(names?, "NAMES", slot, &r.names, &[])?.1;
                deleted += write_changes(v4?, "BLOCK_V4", slot, &r.block_v4, &[])?.1;
                deleted += write_changes(v6?, "BLOCK_V6", slot, &r.block_v6, &[])?.1;
                deleted += write_changes(allow_v4?, "ALLOW_V4", slot, &r.allow_v4, &[])?.1;
                deleted += write_changes(allow_v6?, "ALLOW_V6", slot, &r.allow_v6, &[])?.1;
            }
            None => self.clear_slot(slot)?,
        }
        self.clear_hits(other)?;
        let empty = Bitmap::default();
        self.write_bitmap("COARSE_V4", other, &empty.v4)?;
        self.write_bitmap("COARSE_V6", other, &empty.v6)?;
        self.write_bitmap("NAME_FILTER", other, &vec![0; name_filter::WORDS as usize])?;
        self.end_release(other);
        self.start_returning_freed_elements(slot);
        Ok(deleted)
    }

    /// Waits until the freed elements of the last release have been sent back to the kernel's
    /// allocator (a second or two after it; at once if they have). Every write into a slot
    /// does this first.
    pub fn finish_freeing(&mut self) {
        if let Some(t) = self.freeing.take() {
            let _ = t.join();
        }
    }

    /// Makes the kernel give back the elements a release deleted. Its map allocator
    /// (bpf_mem_alloc) frees deleted elements through RCU Tasks Trace grace periods, per CPU
    /// and in batches, and a batch that comes while a grace period is in flight waits for the
    /// next delete on that CPU: a whole generation deleted at once stays allocated, and charged,
    /// until later deletes (measured on 6.18: 100K names + 100K prefixes still held after
    /// 240 s). So once the first grace period has passed, a few dummy keys are written into the
    /// emptied slot and deleted again on every CPU, which sends the waiting batches on; they are
    /// back within a second (the same measurement: 120 -> 97 MiB). Packets never read the
    /// emptied slot. Best effort: a map that will not take the keys (full) only keeps its batch
    /// longer.
    ///
    /// This waits for grace periods, about two seconds, so it runs on a thread of its own with
    /// its own descriptors of the maps: the caller (the daemon, holding its locks) goes on, and
    /// status requests do not wait for it. The next install into a slot waits for it first
    /// (`begin_install`), so its dummy keys never meet a generation's keys.
    fn start_returning_freed_elements(&mut self, slot: u8) {
        self.finish_freeing();
        let own = |name: &'static str, key_size: usize, value_size: usize| -> Option<OwnedFd> {
            let m = self.raw_map(name, key_size, value_size).ok()?;
            // SAFETY: the map's descriptor is open for the duration of this call (the Ebpf owns
            // it); the duplicate is owned by the thread below.
            unsafe { BorrowedFd::borrow_raw(m.fd) }.try_clone_to_owned().ok()
        };
        let (Some(names_fd), Some(v4_fd), Some(v6_fd)) = (own("NAMES", u64::SIZE, NameValue::SIZE), own("BLOCK_V4", V4::SIZE, 8), own("BLOCK_V6", V6::SIZE, 8)) else {
            return;
        };
        let spawned = std::thread::Builder::new().name("blocker-freeing".into()).spawn(move || {
            const KEYS: u32 = 1024;
            let names: Vec<(u64, NameValue)> = (0..KEYS as u64).map(|i| (0xb10c_0000_0000_0000 | i, NameValue::default())).collect();
            let v4: Vec<(V4, PrefixValue)> = (0..KEYS).map(|i| (V4::host(0xf000_0000 | i), PrefixValue::default())).collect();
            let v6: Vec<(V6, PrefixValue)> = (0..KEYS as u128).map(|i| (V6::host(0xb10c_u128 << 112 | i), PrefixValue::default())).collect();
            let n = RawMap { fd: names_fd.as_raw_fd(), key_size: u64::SIZE, value_size: NameValue::SIZE };
            let a = RawMap { fd: v4_fd.as_raw_fd(), key_size: V4::SIZE, value_size: 8 };
            let b = RawMap { fd: v6_fd.as_raw_fd(), key_size: V6::SIZE, value_size: 8 };
            let nudge = || {
                let _ = write_changes(n, "NAMES", slot, &[], &names).and_then(|_| write_changes(n, "NAMES", slot, &names, &[]));
                let _ = write_changes(a, "BLOCK_V4", slot, &[], &v4).and_then(|_| write_changes(a, "BLOCK_V4", slot, &v4, &[]));
                let _ = write_changes(b, "BLOCK_V6", slot, &[], &v6).and_then(|_| write_changes(b, "BLOCK_V6", slot, &v6, &[]));
            };
            let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            for _ in 0..2 {
                std::thread::sleep(Duration::from_secs(1));
                for cpu in 0..cpus {
                    std::thread::scope(|s| {
                        s.spawn(|| {
                            // SAFETY: a zeroed cpu_set_t with one CPU set, applied to this thread only.
                            unsafe {
                                let mut set: libc::cpu_set_t = std::mem::zeroed();
                                libc::CPU_SET(cpu, &mut set);
                                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                                    return;
                                }
                            }
                            nudge();
                        });
                    });
                }
            }
            // The descriptors close here, after the last nudge.
            drop((names_fd, v4_fd, v6_fd));
        });
        self.freeing = spawned.ok();
    }

    /// A list map by descriptor, for batch operations.
    fn raw_map(&self, name: &'static str, key_size: usize, value_size: usize) -> Result<RawMap, DatapathError> {
        let data = match self.ebpf.map(name).ok_or(DatapathError::MissingMap(name))? {
            Map::HashMap(d) | Map::LpmTrie(d) => d,
            _ => return Err(DatapathError::MissingMap(name)),
        };
        Ok(RawMap { fd: data.fd().as_fd().as_raw_fd(), key_size, value_size })
    }

    /// Removes every key of `slot` from the list maps, found by reading all their keys: for a
    /// slot whose contents are not known.
    fn clear_slot(&self, slot: u8) -> Result<(), DatapathError> {
        let names = self.raw_map("NAMES", u64::SIZE, 24)?;
        // NameKey: hash (8 bytes), then the slot (u32).
        let stale = names.keys_where(|k| k[8..12] == (slot as u32).to_ne_bytes()).map_err(|source| DatapathError::Io { name: "NAMES", what: "reading keys", source })?;
        names.delete(&stale).map_err(|source| DatapathError::Io { name: "NAMES", what: "deleting keys", source })?;
        for (name, key_size) in [("BLOCK_V4", V4::SIZE), ("ALLOW_V4", V4::SIZE), ("BLOCK_V6", V6::SIZE), ("ALLOW_V6", V6::SIZE)] {
            let trie = self.raw_map(name, key_size, 8)?;
            // Key: prefix length (u32), then the slot byte.
            let stale = trie.keys_where(|k| k[4] == slot).map_err(|source| DatapathError::Io { name, what: "reading keys", source })?;
            trie.delete(&stale).map_err(|source| DatapathError::Io { name, what: "deleting keys", source })?;
        }
        Ok(())
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

/// Turns what `map` holds in `slot` from `old` into `new`: deletes first (the map holds two
/// generations within its capacity), then writes. Returns (written, deleted).
fn write_changes<K: SlotKey, V: SlotValue>(map: RawMap, name: &'static str, slot: u8, old: &[(K, V)], new: &[(K, V)]) -> Result<(usize, usize), DatapathError> {
    let (delete, write) = changes(old, new);
    if !delete.is_empty() {
        map.delete(&key_bytes(delete.iter().copied(), slot)).map_err(|source| DatapathError::Io { name, what: "deleting keys", source })?;
    }
    if !write.is_empty() {
        let keys = key_bytes(write.iter().map(|x| x.0), slot);
        let values = value_bytes(write.iter().map(|x| x.1));
        map.update(&keys, &values).map_err(|source| DatapathError::Io { name, what: "writing keys", source })?;
    }
    Ok((write.len(), delete.len()))
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
        datapath::slot::{SlotKey, SlotValue, key_bytes, value_bytes},
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

    /// What map `name` holds in `slot`, as sorted (key, value) bytes.
    fn held(dp: &Datapath, name: &'static str, key_size: usize, value_size: usize, slot: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
        let map = dp.raw_map(name, key_size, value_size).unwrap();
        let at = if name == "NAMES" { 8 } else { 4 };
        let keys = map.keys_where(|k| k[at] == slot).unwrap();
        let mut out: Vec<_> = keys.chunks_exact(key_size).map(|k| (k.to_vec(), map.get(k).unwrap().unwrap())).collect();
        out.sort();
        out
    }

    /// The same, as the record says.
    fn recorded<K: SlotKey, V: SlotValue>(r: &[(K, V)], slot: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
        let keys = key_bytes(r.iter().map(|x| x.0), slot);
        let values = value_bytes(r.iter().map(|x| x.1));
        let mut out: Vec<_> = keys.chunks_exact(K::SIZE).zip(values.chunks_exact(V::SIZE)).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        out.sort();
        out
    }

    fn assert_holds(dp: &Datapath, slot: u8, r: &SlotRecord) {
        use crate::datapath::slot::{V4, V6};
        assert_eq!(held(dp, "NAMES", 16, 24, slot), recorded(&r.names, slot), "NAMES, slot {slot}");
        assert_eq!(held(dp, "BLOCK_V4", V4::SIZE, 8, slot), recorded(&r.block_v4, slot), "BLOCK_V4, slot {slot}");
        assert_eq!(held(dp, "BLOCK_V6", V6::SIZE, 8, slot), recorded(&r.block_v6, slot), "BLOCK_V6, slot {slot}");
        assert_eq!(held(dp, "ALLOW_V4", V4::SIZE, 8, slot), recorded(&r.allow_v4, slot), "ALLOW_V4, slot {slot}");
        assert_eq!(held(dp, "ALLOW_V6", V6::SIZE, 8, slot), recorded(&r.allow_v6, slot), "ALLOW_V6, slot {slot}");
        // The name filter holds exactly the bits of the slot's names: none missing (a listed
        // name would be skipped), none left over from the generation before.
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

    #[test]
    fn an_install_leaves_each_slot_holding_exactly_its_generation() {
        let key = blocker_common::name::HashKey { k0: 7, k1: 9 };
        let Ok(mut dp) = Datapath::load(crate::datapath::Options { hash_key: Some(key), ..Default::default() }) else {
            eprintln!("skipped: cannot load the XDP object here (not root?)");
            return;
        };
        let record = |s: &ListSet| SlotRecord::of(s, &key, &block_prefix_plan(s));
        let hits = dp.raw_map("ENTRY_HITS", 4, 8).unwrap();
        let mut sets = vec![generation(0, None)];
        let r = dp.install(&sets[0]).unwrap();
        assert_eq!((r.slot, r.cleared, r.deleted, r.written), (1, false, 0, record(&sets[0]).len()));
        for g in 1..6 {
            let s = generation(g, sets.last());
            // A count of the slot about to be written, and one of the live slot.
            let (next, live) = (dp.live_slot() ^ 1, dp.live_slot());
            hits.update(&[(next << 31 | 5).to_ne_bytes(), (live << 31 | 5).to_ne_bytes()].concat(), &[1u64.to_ne_bytes(), 2u64.to_ne_bytes()].concat()).unwrap();
            let r = dp.install(&s).unwrap();
            assert!(!r.cleared);
            if g == 1 {
                assert_eq!((r.written, r.deleted), (record(&s).len(), 0), "into the empty slot");
            } else {
                // Against generation g - 2, which the slot holds.
                assert!(r.written + r.deleted < record(&s).len() / 2, "{g}: {} written, {} deleted of {}", r.written, r.deleted, record(&s).len());
            }
            assert_holds(&dp, r.slot as u8, &record(&s));
            assert_holds(&dp, (r.slot ^ 1) as u8, &record(sets.last().unwrap()));
            assert_eq!(hits.get(&(next << 31 | 5).to_ne_bytes()).unwrap(), None, "the written slot's counts are gone");
            assert!(hits.get(&(live << 31 | 5).to_ne_bytes()).unwrap().is_some(), "the other slot's are kept");
            sets.push(s);
        }
        // A slot whose contents are not known is cleared of every key and filled whole.
        let next = dp.live_slot() ^ 1;
        dp.begin_install(next);
        let s = generation(6, sets.last());
        let r = dp.install(&s).unwrap();
        assert!(r.cleared);
        assert_holds(&dp, r.slot as u8, &record(&s));
        assert_holds(&dp, (r.slot ^ 1) as u8, &record(sets.last().unwrap()));
        // And a rollback switches to the previous generation, whole.
        assert!(dp.switch_to_previous().unwrap());
        assert_eq!(dp.live_slot(), r.slot ^ 1);

        // The rollback window is over: the other slot is emptied, the live one untouched, and
        // no switch goes to the emptied slot; the next install fills it whole, without a clear.
        let live = dp.live_slot();
        let deleted = dp.release_previous().unwrap();
        assert_eq!(deleted, record(&s).len());
        // The freed elements go back on a thread of their own, with dummy keys written into
        // the emptied slot and deleted again; once it is done the slot is empty.
        dp.finish_freeing();
        assert_holds(&dp, (live ^ 1) as u8, &SlotRecord::default());
        assert_holds(&dp, live as u8, &record(sets.last().unwrap()));
        assert!(!dp.switch_to_previous().unwrap());
        assert_eq!(dp.live_slot(), live);
        let s = generation(7, sets.last());
        let r = dp.install(&s).unwrap();
        assert_eq!((r.cleared, r.deleted, r.written), (false, 0, record(&s).len()));
        assert_holds(&dp, r.slot as u8, &record(&s));

        // An install right after a release (the freed elements still on their way back) waits
        // for that first: the slot it fills holds its generation and none of the dummy keys,
        // and keeps a listed address that is one of them (240.0.0.1/32), which the return of
        // freed elements would otherwise write over and delete a second later.
        sets.push(s);
        let deleted = dp.release_previous().unwrap();
        assert_eq!(deleted, record(&sets[sets.len() - 2]).len());
        let s = generation_with(8, sets.last(), "240.0.0.1\n");
        let r = dp.install(&s).unwrap();
        assert_eq!((r.cleared, r.deleted, r.written), (false, 0, record(&s).len()));
        dp.finish_freeing();
        assert_holds(&dp, r.slot as u8, &record(&s));
        assert_holds(&dp, (r.slot ^ 1) as u8, &record(sets.last().unwrap()));
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
