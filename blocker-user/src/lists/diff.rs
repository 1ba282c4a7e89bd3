//! What an update changes: entries added and removed, per list and in total.
//!
//! Entries are compared by what they do (action, enforcement, target with its mode), not by
//! id or line: a list that only moved lines around has not changed. Each entry's effect is
//! hashed to a u64 (`Entry::effect_hash`); the two sides are compared as sorted hashes, and
//! entries only where their hashes are equal.

use std::collections::HashMap;

use super::{
    entry::{Entry, ListKind},
    set::ListSet,
};

/// How many entries of each kind a change shows by example.
pub const SAMPLES: usize = 10;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ListDiff {
    pub list: String,
    pub before: usize,
    pub after: usize,
    pub added: usize,
    pub removed: usize,
    /// Up to SAMPLES added entries, in list syntax with their new location.
    pub added_sample: Vec<String>,
    /// Up to SAMPLES removed entries, in list syntax with their old location.
    pub removed_sample: Vec<String>,
}

impl ListDiff {
    /// Share of the list that changes: (added + removed) / entries before. A list that had no
    /// entries changes by 0 (a first load is not a change to guard against).
    pub fn change_ratio(&self) -> f64 {
        if self.before == 0 { 0.0 } else { (self.added + self.removed) as f64 / self.before as f64 }
    }

    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0
    }

    /// One line for people: `iwf: 1000 → 1012 entries (+20 −8, 2.8%)`.
    pub fn headline(&self) -> String {
        format!(
            "{}: {} -> {} entries (+{} -{}, {:.1}% changed)",
            self.list,
            self.before,
            self.after,
            self.added,
            self.removed,
            100.0 * self.change_ratio()
        )
    }
}

/// The change from one set to another, list by list (lists matched by name).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SetDiff {
    pub lists: Vec<ListDiff>,
}

impl SetDiff {
    pub fn added(&self) -> usize {
        self.lists.iter().map(|l| l.added).sum()
    }

    pub fn removed(&self) -> usize {
        self.lists.iter().map(|l| l.removed).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.iter().all(ListDiff::is_empty)
    }

    pub fn list(&self, name: &str) -> Option<&ListDiff> {
        self.lists.iter().find(|l| l.list == name)
    }
}

fn describe(e: &Entry) -> String {
    let shadow = if e.shadow { " (shadow)" } else { "" };
    match e.kind {
        ListKind::Block => format!("{}{shadow} at {}", e.target, e.location()),
        ListKind::Allow => format!("allow {}{shadow} at {}", e.target, e.location()),
    }
}

/// Entries of `set` grouped by the name of the list they came from, in list order.
fn by_list(set: &ListSet) -> Vec<(&str, Vec<&Entry>)> {
    let mut groups: Vec<(&str, Vec<&Entry>)> = set.lists().iter().map(|l| (l.name.as_str(), Vec::new())).collect();
    for e in set.entries() {
        groups[e.list as usize].1.push(e);
    }
    // Two lists of the same name (not possible from a configuration) are compared as one.
    let mut merged: Vec<(&str, Vec<&Entry>)> = Vec::new();
    for (name, entries) in groups {
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.extend(entries),
            None => merged.push((name, entries)),
        }
    }
    merged
}

/// The change from `old` to `new`.
pub fn diff_sets(old: &ListSet, new: &ListSet) -> SetDiff {
    let old_lists = by_list(old);
    let new_lists = by_list(new);
    let old_by_name: HashMap<&str, &Vec<&Entry>> = old_lists.iter().map(|(n, v)| (*n, v)).collect();
    let mut out = SetDiff::default();
    let empty = Vec::new();
    for (name, after) in &new_lists {
        let before = old_by_name.get(name).copied().unwrap_or(&empty);
        out.lists.push(diff_entries(name, before, after));
    }
    // Lists that are gone lose all their entries.
    for (name, before) in &old_lists {
        if !new_lists.iter().any(|(n, _)| n == name) {
            out.lists.push(diff_entries(name, before, &empty));
        }
    }
    out
}

fn diff_entries(list: &str, before: &[&Entry], after: &[&Entry]) -> ListDiff {
    let mut d = ListDiff { list: list.to_string(), before: before.len(), after: after.len(), ..Default::default() };
    // The common case, a list that did not change: the same effects in the same order.
    if before.len() == after.len() && before.iter().zip(after).all(|(a, b)| a.same_effect(b)) {
        return d;
    }
    let (added, removed) = unmatched(before, after);
    d.added = added.len();
    d.removed = removed.len();
    d.added_sample = added.iter().take(SAMPLES).map(|&i| describe(after[i])).collect();
    d.removed_sample = removed.iter().take(SAMPLES).map(|&i| describe(before[i])).collect();
    d
}

/// Positions (ascending) of the entries of `after` whose effect no entry of `before` has, and
/// of those of `before` that no entry of `after` has.
fn unmatched(before: &[&Entry], after: &[&Entry]) -> (Vec<usize>, Vec<usize>) {
    let hashed = |side: &[&Entry]| {
        let mut v: Vec<(u64, u32)> = side.iter().enumerate().map(|(i, e)| (e.effect_hash(), i as u32)).collect();
        v.sort_unstable();
        v
    };
    let (old, new) = (hashed(before), hashed(after));
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let ho = old.get(i).map(|x| x.0);
        let hn = new.get(j).map(|x| x.0);
        match (ho, hn) {
            (Some(a), Some(b)) if a == b => {
                // Equal hashes: the entries of both runs, compared exactly (a run is one entry
                // per side unless hashes collide).
                let i_end = i + old[i..].iter().take_while(|x| x.0 == a).count();
                let j_end = j + new[j..].iter().take_while(|x| x.0 == a).count();
                let (o, n) = (&old[i..i_end], &new[j..j_end]);
                for &(_, k) in n {
                    if !o.iter().any(|&(_, l)| before[l as usize].same_effect(after[k as usize])) {
                        added.push(k as usize);
                    }
                }
                for &(_, l) in o {
                    if !n.iter().any(|&(_, k)| after[k as usize].same_effect(before[l as usize])) {
                        removed.push(l as usize);
                    }
                }
                (i, j) = (i_end, j_end);
            }
            (Some(a), Some(b)) if a < b => {
                removed.push(old[i].1 as usize);
                i += 1;
            }
            (Some(_), None) => {
                removed.push(old[i].1 as usize);
                i += 1;
            }
            _ => {
                added.push(new[j].1 as usize);
                j += 1;
            }
        }
    }
    added.sort_unstable();
    removed.sort_unstable();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::lists::{ListInfo, parse_list};

    fn set(lists: &[(&str, &str)]) -> ListSet {
        let mut s = ListSet::new();
        for (name, text) in lists {
            let (p, _) = parse_list(Path::new(name), text, ListKind::Block).unwrap();
            let info = ListInfo { name: name.to_string(), source: name.to_string(), shadow: false };
            s.add_list(info, Path::new(name), p).unwrap();
        }
        s
    }

    #[test]
    fn moving_lines_is_not_a_change() {
        let d = diff_sets(&set(&[("a", "192.0.2.1\nexample.com\n")]), &set(&[("a", "# moved\nexample.com\n192.0.2.1\n")]));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d.list("a").unwrap().change_ratio(), 0.0);
    }

    #[test]
    fn added_and_removed_entries_are_counted_and_shown_with_their_place() {
        let d = diff_sets(&set(&[("a", "192.0.2.1\nexample.com\n")]), &set(&[("a", "example.com\n192.0.2.2\n192.0.2.3\n")]));
        let a = d.list("a").unwrap();
        assert_eq!((a.before, a.after, a.added, a.removed), (2, 3, 2, 1));
        assert_eq!(a.added_sample, vec!["192.0.2.2/32 at a:2", "192.0.2.3/32 at a:3"]);
        assert_eq!(a.removed_sample, vec!["192.0.2.1/32 at a:1"]);
        assert!((a.change_ratio() - 1.5).abs() < 1e-9);
        assert_eq!(a.headline(), "a: 2 -> 3 entries (+2 -1, 150.0% changed)");
    }

    #[test]
    fn a_changed_name_mode_is_one_removal_and_one_addition() {
        let d = diff_sets(&set(&[("a", "example.com\n")]), &set(&[("a", "=example.com\n")]));
        let a = d.list("a").unwrap();
        assert_eq!((a.added, a.removed), (1, 1));
    }

    #[test]
    fn lists_are_compared_by_name_and_a_dropped_list_loses_everything() {
        let d = diff_sets(&set(&[("a", "192.0.2.1\n"), ("b", "example.com\n")]), &set(&[("b", "example.com\n")]));
        assert_eq!(d.list("b").unwrap().added + d.list("b").unwrap().removed, 0);
        assert_eq!(d.list("a").unwrap().removed, 1);
        assert_eq!((d.added(), d.removed()), (0, 1));
    }

    #[test]
    fn lists_of_one_name_are_compared_as_one_even_with_entries_in_both() {
        let d = diff_sets(&set(&[("a", "192.0.2.1\n"), ("a", "192.0.2.1\n")]), &set(&[("a", "192.0.2.1\n198.51.100.1\n")]));
        let a = d.list("a").unwrap();
        assert_eq!((a.before, a.after, a.added, a.removed), (2, 2, 1, 0));
    }

    #[test]
    fn large_changes_count_every_entry_and_sample_in_list_order() {
        let old: String = (0..2000).map(|i| format!("10.{}.{}.1\n", i / 256, i % 256)).collect();
        let new: String = (1000..3000).map(|i| format!("10.{}.{}.1\n", i / 256, i % 256)).collect();
        let d = diff_sets(&set(&[("a", &old)]), &set(&[("a", &new)]));
        let a = d.list("a").unwrap();
        assert_eq!((a.added, a.removed), (1000, 1000));
        assert_eq!(a.added_sample[0], "10.7.208.1/32 at a:1001");
        assert_eq!(a.removed_sample[0], "10.0.0.1/32 at a:1");
        assert_eq!(a.removed_sample[9], "10.0.9.1/32 at a:10");
    }

    #[test]
    fn a_first_load_has_no_change_ratio() {
        let d = diff_sets(&ListSet::new(), &set(&[("a", "192.0.2.1\n")]));
        assert_eq!(d.list("a").unwrap().added, 1);
        assert_eq!(d.list("a").unwrap().change_ratio(), 0.0);
    }
}
