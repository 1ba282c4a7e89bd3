//! The set of entries the datapath installs, each with the id the kernel stores and counts by.

use std::{collections::HashMap, net::IpAddr, path::Path};

use super::{
    entry::{Entry, ListKind, Target},
    error::{LineError, ListError, MAX_REPORTED},
    name::NameEntry,
    parse::{ListSummary, ParsedEntry, load_list},
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

/// Everything the datapath should enforce: block and allow entries with their ids (1-based,
/// dense, in the order lists were added).
#[derive(Clone, Debug, Default)]
pub struct ListSet {
    lists: Vec<ListInfo>,
    entries: Vec<Entry>,
    /// (kind, shadow, name) → index in `entries`. The kernel keeps one value per name, kind and
    /// enforcement, so the set does too: a name added again (from another list) merges its mode
    /// into the first.
    names: HashMap<(ListKind, bool, String), usize>,
}

impl ListSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a text list file into the set as a list of its own (named by the file), every
    /// entry of `kind`. On error the set is unchanged.
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
        let mut merged = 0;
        self.entries.reserve(parsed.len());
        for ParsedEntry { target, kind, at } in parsed {
            if let Target::Name(n) = &target {
                let key = (kind, shadow, n.name.clone());
                if let Some(&i) = self.names.get(&key) {
                    if let Target::Name(first) = &mut self.entries[i].target {
                        first.flags |= n.flags;
                    }
                    merged += 1;
                    continue;
                }
                self.names.insert(key, self.entries.len());
            }
            let id = self.entries.len() as u32 + 1;
            self.entries.push(Entry { id, kind, target, source: source.to_path_buf(), at, list, shadow });
        }
        Ok(merged)
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
    /// filled from (`NameKey{hash, slot}` → `NameValue{entry.id, name.flags}`).
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

    pub fn entry(&self, id: u32) -> Option<&Entry> {
        id.checked_sub(1).and_then(|i| self.entries.get(i as usize))
    }

    /// The enforced entry of `kind` listing exactly this normalised name, whatever its mode.
    pub fn name_entry(&self, kind: ListKind, name: &str) -> Option<(&Entry, &NameEntry)> {
        self.name_entry_in(kind, false, name)
    }

    /// The entry of `kind` and enforcement (`shadow`) listing exactly this normalised name.
    pub fn name_entry_in(&self, kind: ListKind, shadow: bool, name: &str) -> Option<(&Entry, &NameEntry)> {
        let e = &self.entries[*self.names.get(&(kind, shadow, name.to_string()))?];
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
