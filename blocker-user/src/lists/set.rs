//! The set of entries the datapath installs, each with the id the kernel stores and counts by.
//!
//! Ids are kept across generations: a set built from the lists of the next generation takes,
//! for every entry the live set already has (same kind, enforcement and prefix or name), the id
//! it has there (`inherit_ids`). Entries new to the set get ids the live set does not use, so no
//! id names two different entries in the two kernel slots (the live generation and the new one
//! beside it). So an update rewrites only the kernel values of what changed, and per-entry
//! counts and lookups keep pointing at the same entries.

use std::{net::IpAddr, path::Path};

use hashbrown::HashTable;

use super::{
    entry::{At, Entry, ListKind, Target, intern_source, name_identity_hash, prefix_identity_hash},
    error::{LineError, ListError, MAX_REPORTED},
    format::load_list,
    name::NameEntry,
    parse::{ListSummary, ParsedEntry},
    prefix::Prefix,
};

/// A list as the set knows it: its name, where it comes from, and whether it is enforced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListInfo {
    pub name: String,
    /// The file path or URL, for people.
    pub source: String,
    /// Shadow mode: the list's entries are counted where they would block, never enforced.
    pub shadow: bool,
}

/// Everything the datapath should enforce: block and allow entries with their ids, in the
/// order lists were added. A set built on its own numbers its entries 1, 2, 3, ...; one that
/// inherits the ids of the set before keeps theirs (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct ListSet {
    lists: Vec<ListInfo>,
    entries: Vec<Entry>,
    /// Every entry by identity (`Entry::identity_hash`: kind, enforcement, prefix or name) →
    /// index in `entries`, with 32 bits of the hash (so that growing the table, and most probes
    /// that do not match, need not read the entry); the key itself is never copied. The kernel keeps
    /// one value per name, kind and enforcement, so the set does too: a name added again (from
    /// another list) merges its mode into the first. A prefix listed twice (by two lists) is
    /// two entries; the index names the last, whose value the kernel's trie keeps.
    index: HashTable<Slot>,
    /// id → index in `entries` + 1; 0 for an id no entry has. `by_id[0]` is always 0.
    by_id: Vec<u32>,
    /// Some list holds one prefix twice (lists parsed by `Collector` never do).
    repeats_in_a_list: bool,
    /// What was added, in order (`id_map`): each entry's identity, mode and list, and each
    /// name merged into an earlier entry.
    fingerprint: u64,
}

/// An entry of the index: where the entry is, and 32 bits of its identity hash.
#[derive(Clone, Copy, Debug)]
struct Slot {
    at: u32,
    hash: u32,
}

impl Slot {
    /// The 32 bits kept of a 64-bit identity hash.
    fn short(hash: u64) -> u32 {
        (hash >> 32) as u32 ^ hash as u32
    }

    /// The hash the table places a slot by, from the 32 bits kept (the table takes its bucket
    /// from the low bits and a tag from the top ones).
    fn table_hash(short: u32) -> u64 {
        (short as u64) << 32 | short as u64
    }

    fn rehash(&self) -> u64 {
        Slot::table_hash(self.hash)
    }
}

/// The fingerprint after one more event.
fn fold(fingerprint: u64, event: u64) -> u64 {
    (fingerprint ^ event).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

impl ListSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a list file into the set as a list of its own (named by the file), in the format
    /// its extension says (text, `.csv`, `.json`; see [`load_list`]); entries without an action
    /// of their own are of `kind`. On error the set is unchanged.
    pub fn add_file(&mut self, path: &Path, kind: ListKind) -> Result<ListSummary, ListError> {
        let (parsed, summary) = load_list(path, kind)?;
        self.add_parsed(path, parsed);
        Ok(summary)
    }

    /// Adds parsed entries from `source` as an enforced list named by it.
    pub fn add_parsed(&mut self, source: &Path, parsed: Vec<ParsedEntry>) -> usize {
        let name = source.display().to_string();
        let info = ListInfo { name: name.clone(), source: name, shadow: false };
        self.add_list(info, source, parsed).expect("an enforced list is always accepted")
    }

    /// Adds a list's parsed entries. A name already in the set with the same kind and
    /// enforcement keeps its id, source and line and gains the new entry's mode; returns how
    /// many were merged so. A list in shadow mode cannot allow (an allow entry changes what
    /// happens to traffic): such a list is refused and the set left unchanged.
    pub fn add_list(&mut self, info: ListInfo, source: &Path, parsed: Vec<ParsedEntry>) -> Result<usize, ListError> {
        if info.shadow {
            let allows: Vec<&ParsedEntry> = parsed.iter().filter(|p| p.kind == ListKind::Allow).collect();
            if !allows.is_empty() {
                let errors = allows
                    .iter()
                    .take(MAX_REPORTED)
                    .map(|p| LineError {
                        at: p.at.clone(),
                        text: p.target.to_string(),
                        reason: format!("list {:?} is in shadow mode, which only counts what it would block: it cannot allow", info.name),
                    })
                    .collect();
                return Err(ListError::Invalid { path: source.to_path_buf(), errors, total: allows.len() });
            }
        }
        let list = self.lists.len() as u16;
        let shadow = info.shadow;
        self.lists.push(info);
        let source = intern_source(source);
        let mut merged = 0;
        let Self { entries, index, by_id, repeats_in_a_list, fingerprint, .. } = self;
        entries.reserve_exact(parsed.len());
        index.reserve(parsed.len(), Slot::rehash);
        if by_id.is_empty() {
            by_id.push(0);
        }
        by_id.reserve(parsed.len());
        for ParsedEntry { target, kind, at } in parsed {
            let at = At::from(at);
            let here = entries.len() as u32;
            match &target {
                Target::Name(n) => {
                    let hash = name_identity_hash(kind, shadow, &n.name);
                    *fingerprint = fold(*fingerprint, hash ^ (n.flags as u64) << 40 ^ (list as u64) << 48);
                    let short = Slot::short(hash);
                    let same = |s: &Slot| {
                        let e = &entries[s.at as usize];
                        s.hash == short && e.kind == kind && e.shadow == shadow && e.target.as_name().is_some_and(|f| f.name == n.name)
                    };
                    match index.entry(Slot::table_hash(short), same, Slot::rehash) {
                        hashbrown::hash_table::Entry::Occupied(o) => {
                            let i = o.get().at;
                            if let Target::Name(first) = &mut entries[i as usize].target {
                                first.flags |= n.flags;
                            }
                            *fingerprint = fold(*fingerprint, 0x6d65_7267_6564);
                            merged += 1;
                            continue;
                        }
                        hashbrown::hash_table::Entry::Vacant(v) => {
                            v.insert(Slot { at: here, hash: short });
                        }
                    }
                }
                Target::Prefix(p) => {
                    let hash = prefix_identity_hash(kind, shadow, p);
                    *fingerprint = fold(*fingerprint, hash ^ (list as u64) << 48);
                    let short = Slot::short(hash);
                    let same = |s: &Slot| {
                        let e = &entries[s.at as usize];
                        s.hash == short && e.kind == kind && e.shadow == shadow && e.target.as_prefix() == Some(p)
                    };
                    match index.entry(Slot::table_hash(short), same, Slot::rehash) {
                        hashbrown::hash_table::Entry::Occupied(mut o) => {
                            if entries[o.get().at as usize].list == list {
                                *repeats_in_a_list = true;
                            }
                            o.get_mut().at = here;
                        }
                        hashbrown::hash_table::Entry::Vacant(v) => {
                            v.insert(Slot { at: here, hash: short });
                        }
                    }
                }
            }
            let id = by_id.len() as u32;
            by_id.push(here + 1);
            entries.push(Entry { id, list, kind, shadow, at, source, target });
        }
        Ok(merged)
    }

    /// Gives every entry that `prev` has too (same kind, enforcement and prefix or name) the id
    /// it has in `prev`, and every other entry an id `prev` does not use: first ids `prev` left
    /// free, then new ones above all of them. Call it once the set is built, with the live set
    /// as `prev`. Unchanged entries keep their kernel values, and an id never names one entry
    /// in the live generation and another in this one.
    pub fn inherit_ids(&mut self, prev: &ListSet) {
        if prev.entries.is_empty() || self.entries.is_empty() {
            return;
        }
        let high = prev.by_id.len().max(1);
        let mut claimed = vec![false; high];
        let mut ids = vec![0u32; self.entries.len()];
        // The two sets come from mostly the same lists in the same order: the entry after the
        // one found last is tried first, and the index asked only where that fails.
        let mut next_in_prev = 0;
        for (e, id) in self.entries.iter().zip(ids.iter_mut()) {
            let at = match prev.entries.get(next_in_prev) {
                Some(p) if p.same_identity(e) => Some(next_in_prev),
                _ => prev.find_identity_index(e),
            };
            if let Some(k) = at {
                next_in_prev = k + 1;
                let p = prev.entries[k].id;
                if !claimed[p as usize] {
                    claimed[p as usize] = true;
                    *id = p;
                }
            }
        }
        let mut free = (1..high as u32).filter(|&id| prev.by_id[id as usize] == 0);
        let mut next = high as u32;
        for id in ids.iter_mut().filter(|id| **id == 0) {
            *id = free.next().unwrap_or_else(|| {
                next += 1;
                next - 1
            });
        }
        self.set_ids(&ids);
    }

    /// The ids of this set in entry order, with a fingerprint of its entries: what gives a set
    /// built again from the same lists the same ids (`apply_id_map`), for a rollback to the
    /// generation the kernel still holds. 4 bytes per entry, where the set takes some 80.
    pub fn id_map(&self) -> (u64, Vec<u32>) {
        (self.fingerprint(), self.entries.iter().map(|e| e.id).collect())
    }

    /// Gives the entries the ids of an `id_map` if it was taken from a set of the same entries
    /// (in the same order, from the same lists); returns whether it did. Otherwise the set is
    /// left as it was.
    pub fn apply_id_map(&mut self, (check, ids): &(u64, Vec<u32>)) -> bool {
        if ids.len() != self.entries.len() || *check != self.fingerprint() {
            return false;
        }
        self.set_ids(ids);
        true
    }

    fn fingerprint(&self) -> u64 {
        fold(self.fingerprint, self.entries.len() as u64)
    }

    /// What the set judges by: its entries in order (identity, mode, list, enforcement) and
    /// their ids. Two sets with the same value judge every name and address alike and count
    /// against the same ids, in this process or the next (QUIC verdicts carry it across a
    /// restart, daemon/quic.rs).
    pub fn content_id(&self) -> u64 {
        self.entries.iter().fold(self.fingerprint(), |f, e| fold(f, e.id as u64))
    }

    fn set_ids(&mut self, ids: &[u32]) {
        let max = ids.iter().copied().max().unwrap_or(0) as usize;
        assert!(max < 1 << 31, "entry ids stay below 2^31 (ENTRY_HITS keys carry the slot in bit 31)");
        self.by_id = vec![0; max + 1];
        for (i, (e, &id)) in self.entries.iter_mut().zip(ids).enumerate() {
            assert!(id != 0 && self.by_id[id as usize] == 0, "ids are distinct and not 0");
            e.id = id;
            self.by_id[id as usize] = i as u32 + 1;
        }
    }

    /// The entry of this set with the identity of `e` (kind, enforcement, prefix or name).
    pub(crate) fn find_identity(&self, e: &Entry) -> Option<&Entry> {
        self.find_identity_index(e).map(|i| &self.entries[i])
    }

    fn find_identity_index(&self, e: &Entry) -> Option<usize> {
        let short = Slot::short(e.identity_hash());
        let found = self.index.find(Slot::table_hash(short), |s| s.hash == short && self.entries[s.at as usize].same_identity(e))?;
        Some(found.at as usize)
    }

    /// Where the entry with this id is in `entries()`.
    pub(crate) fn entry_index(&self, id: u32) -> Option<usize> {
        self.by_id.get(id as usize)?.checked_sub(1).map(|i| i as usize)
    }

    /// Whether some list of the set holds a prefix twice (see `diff_sets`).
    pub(crate) fn repeats_in_a_list(&self) -> bool {
        self.repeats_in_a_list
    }

    /// The largest id an entry of this set has (0 when empty).
    pub fn max_id(&self) -> u32 {
        self.by_id.len().saturating_sub(1) as u32
    }

    /// The lists in the order they were added (`Entry::list` indexes this).
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn block(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind == ListKind::Block)
    }

    pub fn allow(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind == ListKind::Allow)
    }

    /// Prefix entries of `kind`, enforced and shadow alike.
    pub fn prefixes(&self, kind: ListKind) -> impl Iterator<Item = (&Entry, &Prefix)> {
        self.entries.iter().filter(move |e| e.kind == kind).filter_map(|e| e.target.as_prefix().map(|p| (e, p)))
    }

    /// Names with the entry that lists them, enforced and shadow alike: what the name maps are
    /// filled from (`NameKey{hash}` → a slot's `NameValue{entry.id, name.flags}`).
    pub fn names(&self, kind: ListKind) -> impl Iterator<Item = (&Entry, &NameEntry)> {
        self.entries.iter().filter(move |e| e.kind == kind).filter_map(|e| e.target.as_name().map(|n| (e, n)))
    }

    pub fn block_prefixes(&self) -> impl Iterator<Item = (&Entry, &Prefix)> {
        self.prefixes(ListKind::Block)
    }

    pub fn allow_prefixes(&self) -> impl Iterator<Item = (&Entry, &Prefix)> {
        self.prefixes(ListKind::Allow)
    }

    pub fn block_names(&self) -> impl Iterator<Item = (&Entry, &NameEntry)> {
        self.names(ListKind::Block)
    }

    pub fn allow_names(&self) -> impl Iterator<Item = (&Entry, &NameEntry)> {
        self.names(ListKind::Allow)
    }

    /// The entry with this id.
    pub fn entry(&self, id: u32) -> Option<&Entry> {
        let i = *self.by_id.get(id as usize)?;
        i.checked_sub(1).map(|i| &self.entries[i as usize])
    }

    /// The enforced entry of `kind` listing exactly this normalised name, whatever its mode.
    pub fn name_entry(&self, kind: ListKind, name: &str) -> Option<(&Entry, &NameEntry)> {
        self.name_entry_in(kind, false, name)
    }

    /// The entry of `kind` and enforcement (`shadow`) listing exactly this normalised name.
    pub fn name_entry_in(&self, kind: ListKind, shadow: bool, name: &str) -> Option<(&Entry, &NameEntry)> {
        let short = Slot::short(name_identity_hash(kind, shadow, name));
        let found = self.index.find(Slot::table_hash(short), |s| {
            let e = &self.entries[s.at as usize];
            s.hash == short && e.kind == kind && e.shadow == shadow && e.target.as_name().is_some_and(|n| n.name == name)
        })?;
        let e = &self.entries[found.at as usize];
        e.target.as_name().map(|n| (e, n))
    }

    /// The most specific enforced prefix entry of `kind` covering `ip`, as the kernel's LPM
    /// lookup finds it.
    pub fn longest_match(&self, ip: IpAddr, kind: ListKind) -> Option<(&Entry, &Prefix)> {
        self.longest_match_in(ip, kind, false)
    }

    /// The most specific prefix entry of `kind` and enforcement covering `ip`.
    pub fn longest_match_in(&self, ip: IpAddr, kind: ListKind, shadow: bool) -> Option<(&Entry, &Prefix)> {
        self.prefixes(kind).filter(|(e, p)| e.shadow == shadow && p.contains(ip)).max_by_key(|(_, p)| p.len())
    }
}

#[cfg(test)]
mod tests {
    use blocker_common::name::{MATCH_BELOW, MATCH_SELF};

    use super::*;
    use crate::lists::parse_list;

    fn add(set: &mut ListSet, file: &str, kind: ListKind, text: &str) -> usize {
        let (p, _) = parse_list(Path::new(file), text, kind).unwrap();
        set.add_parsed(Path::new(file), p)
    }

    #[test]
    fn add_file_reads_the_format_the_extension_says() {
        let dir = std::env::temp_dir().join(format!("blocker-set-add-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            ("block.list", "www.example.com\n192.0.2.0/24\n"),
            ("block.csv", "entry,type,action,comment\nwww.example.com,,,a site\n192.0.2.0/24,cidr,,\n"),
            ("block.json", r#"["www.example.com", {"entry": "192.0.2.0/24", "type": "cidr"}]"#),
        ];
        for (file, text) in files {
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            let mut set = ListSet::new();
            let s = set.add_file(&path, ListKind::Block).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!((s.entries, s.v4, s.names), (2, 1, 1), "{file}");
            let shown: Vec<String> = set.entries().iter().map(|e| e.target.to_string()).collect();
            assert_eq!(shown, ["www.example.com", "192.0.2.0/24"], "{file}");
        }
        // A CSV entry's own action wins over the list's, as check-list and run read it.
        let path = dir.join("allow.csv");
        std::fs::write(&path, "entry,action\nsafe.example,\nbad.example,block\n").unwrap();
        let mut set = ListSet::new();
        set.add_file(&path, ListKind::Allow).unwrap();
        assert_eq!((set.allow().count(), set.block().count()), (1, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_are_dense_and_name_their_entry() {
        let mut set = ListSet::new();
        add(&mut set, "b", ListKind::Block, "192.0.2.1\nexample.com\n");
        add(&mut set, "a", ListKind::Allow, "safe.example.com\n");
        let ids: Vec<u32> = set.entries().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        for e in set.entries() {
            assert_eq!(set.entry(e.id), Some(e));
        }
        assert_eq!(set.entry(0), None);
        assert_eq!(set.entry(4), None);
    }

    #[test]
    fn accessors_split_prefixes_and_names_by_kind() {
        let mut set = ListSet::new();
        add(&mut set, "b", ListKind::Block, "192.0.2.1\nexample.com\n2001:db8::/32\n");
        add(&mut set, "a", ListKind::Allow, "192.0.2.1\n=safe.example.com\n");
        assert_eq!(set.block_prefixes().count(), 2);
        assert_eq!(set.allow_prefixes().count(), 1);
        let names: Vec<_> = set.block_names().map(|(e, n)| (e.id, n.name.as_str())).collect();
        assert_eq!(names, vec![(2, "example.com")]);
        let allow: Vec<_> = set.allow_names().map(|(e, n)| (e.at.line().unwrap(), n.flags)).collect();
        assert_eq!(allow, vec![(2, MATCH_SELF)]);
    }

    #[test]
    fn a_name_in_a_second_file_merges_into_the_first_entry() {
        let mut set = ListSet::new();
        assert_eq!(add(&mut set, "one", ListKind::Block, "=example.com\n"), 0);
        assert_eq!(add(&mut set, "two", ListKind::Block, "x.example\n*.example.com\n"), 1);
        let (e, n) = set.name_entry(ListKind::Block, "example.com").unwrap();
        assert_eq!((e.id, e.source.to_str(), e.at.line().unwrap(), n.flags), (1, Some("one"), 1, MATCH_SELF | MATCH_BELOW));
        assert_eq!(set.entries().len(), 2, "ids stay dense");
        // The same name in an allow list is a different entry.
        add(&mut set, "allow", ListKind::Allow, "example.com\n");
        assert_eq!(set.name_entry(ListKind::Allow, "example.com").unwrap().0.id, 3);
        assert_eq!(set.name_entry(ListKind::Block, "example.com").unwrap().0.id, 1);
    }

    fn ids_by_entry(set: &ListSet) -> Vec<(String, u32)> {
        set.entries().iter().map(|e| (format!("{}{}", if e.shadow { "s:" } else { "" }, e.target), e.id)).collect()
    }

    #[test]
    fn a_set_built_after_another_keeps_the_ids_of_the_entries_they_share() {
        let mut live = ListSet::new();
        add(&mut live, "b", ListKind::Block, "192.0.2.1\nexample.com\ngone.example\n198.51.100.0/24\n");
        add(&mut live, "a", ListKind::Allow, "safe.example.com\n");
        assert_eq!(live.max_id(), 5);
        let mut next = ListSet::new();
        // Reordered, one removed (gone.example, id 3), one added, a mode changed.
        add(&mut next, "b", ListKind::Block, "new.example\n=example.com\n198.51.100.0/24\n192.0.2.1\n");
        add(&mut next, "a", ListKind::Allow, "safe.example.com\n");
        next.inherit_ids(&live);
        assert_eq!(
            ids_by_entry(&next),
            [("new.example".to_string(), 6), ("=example.com".into(), 2), ("198.51.100.0/24".into(), 4), ("192.0.2.1/32".into(), 1), ("safe.example.com".into(), 5)],
            "kept ids, and a new one that the live set does not use (not 3, which it still has)"
        );
        for e in next.entries() {
            assert_eq!(next.entry(e.id), Some(e));
        }
        assert_eq!(next.entry(3), None);
        assert_eq!(next.name_entry(ListKind::Block, "example.com").unwrap().0.id, 2);

        // The generation after: 3 is free in `next`, so a new entry may take it.
        let mut third = ListSet::new();
        add(&mut third, "b", ListKind::Block, "=example.com\nthird.example\nnew.example\n");
        third.inherit_ids(&next);
        assert_eq!(ids_by_entry(&third), [("=example.com".to_string(), 2), ("third.example".into(), 3), ("new.example".into(), 6)]);
    }

    #[test]
    fn a_shadow_entry_is_not_the_enforced_entry_of_the_same_name() {
        let mut live = ListSet::new();
        add(&mut live, "b", ListKind::Block, "example.com\n");
        let mut next = ListSet::new();
        let (p, _) = parse_list(Path::new("s"), "example.com\n", ListKind::Block).unwrap();
        next.add_list(ListInfo { name: "s".into(), source: "s".into(), shadow: true }, Path::new("s"), p).unwrap();
        next.inherit_ids(&live);
        assert_eq!(ids_by_entry(&next), [("s:example.com".to_string(), 2)]);
    }

    #[test]
    fn an_id_map_gives_a_rebuilt_set_its_ids_back_only_for_the_same_entries() {
        let build = |text: &str| {
            let mut s = ListSet::new();
            add(&mut s, "b", ListKind::Block, text);
            s
        };
        let mut live = build("192.0.2.1\nexample.com\n");
        let mut other = build("example.com\n192.0.2.2\n192.0.2.1\n");
        other.inherit_ids(&live);
        live = other;
        let map = live.id_map();
        let mut again = build("example.com\n192.0.2.2\n192.0.2.1\n");
        assert_eq!(ids_by_entry(&again).iter().map(|x| x.1).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(again.apply_id_map(&map));
        assert_eq!(ids_by_entry(&again), ids_by_entry(&live));
        assert_eq!(again.entry(1).unwrap().target.to_string(), "192.0.2.1/32");
        let mut different = build("example.com\n192.0.2.2\n192.0.2.9\n");
        assert!(!different.apply_id_map(&map));
        assert_eq!(different.entries()[0].id, 1);
    }

    #[test]
    fn a_prefix_in_two_lists_is_found_by_its_last_entry() {
        let mut set = ListSet::new();
        add(&mut set, "one", ListKind::Block, "192.0.2.0/24\n");
        add(&mut set, "two", ListKind::Block, "192.0.2.0/24\n");
        let (e, _) = set.longest_match("192.0.2.1".parse().unwrap(), ListKind::Block).unwrap();
        assert_eq!(e.id, 2, "the kernel's trie keeps the value written last");
        assert_eq!(set.find_identity(&set.entries()[0].clone()).unwrap().id, 2);
    }

    #[test]
    fn longest_match_picks_the_most_specific_entry() {
        let mut set = ListSet::new();
        add(&mut set, "l", ListKind::Block, "203.0.113.0/24\n203.0.113.64/26\nexample.com\n");
        let (e, p) = set.longest_match("203.0.113.66".parse().unwrap(), ListKind::Block).unwrap();
        assert_eq!(p.len(), 26);
        assert_eq!(set.entry(e.id).unwrap(), e);
        assert!(set.longest_match("198.51.100.1".parse().unwrap(), ListKind::Block).is_none());
    }
}
