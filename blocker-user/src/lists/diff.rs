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

/// Entries of `set` (their indexes) grouped by the name of the list they came from, in list
/// order.
fn by_list(set: &ListSet) -> Vec<(&str, Vec<u32>)> {
    let mut groups: Vec<(&str, Vec<u32>)> = set.lists().iter().map(|l| (l.name.as_str(), Vec::new())).collect();
    for (i, e) in set.entries().iter().enumerate() {
        groups[e.list as usize].1.push(i as u32);
    }
    // Two lists of the same name (not possible from a configuration) are compared as one.
    let mut merged: Vec<(&str, Vec<u32>)> = Vec::new();
    for (name, entries) in groups {
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.extend(entries),
            None => merged.push((name, entries)),
        }
    }
    merged
}

/// The change from `old` to `new`.
///
/// A set built after another keeps the ids of the entries both have (`ListSet::inherit_ids`),
/// so most entries of `new` find their match in `old` by id, at the cost of an array lookup;
/// only the rest are compared by hash. That pairing is exact where no effect is twice in one
/// list (list names unique, no list holding a prefix twice: so it is for lists from a
/// configuration); otherwise every entry is compared by hash.
pub fn diff_sets(old: &ListSet, new: &ListSet) -> SetDiff {
    let old_lists = by_list(old);
    let new_lists = by_list(new);
    let by_ids = old_lists.len() == old.lists().len() && new_lists.len() == new.lists().len() && !old.repeats_in_a_list() && !new.repeats_in_a_list();
    let old_by_name: HashMap<&str, &Vec<u32>> = old_lists.iter().map(|(n, v)| (*n, v)).collect();
    let mut matched_old = if by_ids { vec![false; old.len()] } else { Vec::new() };
    let mut out = SetDiff::default();
    let empty = Vec::new();
    for (name, after) in &new_lists {
        let before = old_by_name.get(name).copied().unwrap_or(&empty);
        let old_list = old.lists().iter().position(|l| l.name == *name);
        out.lists.push(match old_list {
            Some(ol) if by_ids => diff_by_ids(name, (old, before, ol as u16), (new, after), &mut matched_old),
            _ => diff_entries(name, &refs(old, before), &refs(new, after)),
        });
    }
    // Lists that are gone lose all their entries.
    for (name, before) in &old_lists {
        if !new_lists.iter().any(|(n, _)| n == name) {
            out.lists.push(diff_entries(name, &refs(old, before), &[]));
        }
    }
    out
}

fn refs<'a>(set: &'a ListSet, indexes: &[u32]) -> Vec<&'a Entry> {
    indexes.iter().map(|&i| &set.entries()[i as usize]).collect()
}

fn diff_entries(list: &str, before: &[&Entry], after: &[&Entry]) -> ListDiff {
    let mut d = ListDiff { list: list.to_string(), before: before.len(), after: after.len(), ..Default::default() };
    // The common case, a list that did not change: the same effects in the same order.
    if before.len() == after.len() && before.iter().zip(after).all(|(a, b)| a.same_effect(b)) {
        return d;
    }
    // A list new or gone: everything is added or removed.
    let (added, removed) = match (before.is_empty(), after.is_empty()) {
        (true, _) => ((0..after.len()).collect(), Vec::new()),
        (_, true) => (Vec::new(), (0..before.len()).collect()),
        _ => unmatched(before, after),
    };
    d.added = added.len();
    d.removed = removed.len();
    d.added_sample = added.iter().take(SAMPLES).map(|&i| describe(after[i])).collect();
    d.removed_sample = removed.iter().take(SAMPLES).map(|&i| describe(before[i])).collect();
    d
}

/// `diff_entries` for one list (`ol` in `old`), its entries paired by id first: an entry of
/// `after` whose id names an entry of the same effect in the same list of `old` is unchanged.
/// `matched_old` marks the entries of `old` so paired.
fn diff_by_ids(list: &str, (old, before, ol): (&ListSet, &[u32], u16), (new, after): (&ListSet, &[u32]), matched_old: &mut [bool]) -> ListDiff {
    let (oe, ne) = (old.entries(), new.entries());
    let mut rest_after: Vec<u32> = Vec::new();
    for &i in after {
        let e = &ne[i as usize];
        match old.entry_index(e.id) {
            Some(k) if oe[k].list == ol && oe[k].same_effect(e) => matched_old[k] = true,
            _ => rest_after.push(i),
        }
    }
    let rest_before: Vec<u32> = before.iter().copied().filter(|&k| !matched_old[k as usize]).collect();
    // The rest, in list order: what they add and remove is what the list does.
    let mut d = diff_entries(list, &refs(old, &rest_before), &refs(new, &rest_after));
    (d.before, d.after) = (before.len(), after.len());
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

    /// The diff as the definition says, on plain hash sets of effects per list name.
    fn reference(old: &ListSet, new: &ListSet) -> Vec<(String, usize, usize, usize, usize)> {
        use std::collections::HashSet;
        let group = |s: &ListSet, name: &str| -> Vec<(ListKind, bool, String)> {
            s.entries().iter().filter(|e| s.lists()[e.list as usize].name == name).map(|e| (e.kind, e.shadow, e.target.to_string())).collect()
        };
        let mut names: Vec<String> = new.lists().iter().map(|l| l.name.clone()).collect();
        names.extend(old.lists().iter().map(|l| l.name.clone()).filter(|n| !new.lists().iter().any(|l| &l.name == n)));
        names.dedup();
        names
            .into_iter()
            .map(|n| {
                let (b, a) = (group(old, &n), group(new, &n));
                let (bs, as_): (HashSet<_>, HashSet<_>) = (b.iter().collect(), a.iter().collect());
                let added = a.iter().filter(|e| !bs.contains(e)).count();
                let removed = b.iter().filter(|e| !as_.contains(e)).count();
                (n, b.len(), a.len(), added, removed)
            })
            .collect()
    }

    fn summary(d: &SetDiff) -> Vec<(String, usize, usize, usize, usize)> {
        d.lists.iter().map(|l| (l.list.clone(), l.before, l.after, l.added, l.removed)).collect()
    }

    #[test]
    fn pairing_by_ids_gives_the_diff_the_definition_gives() {
        let mut x = 0x9e37_79b9u32;
        let mut rnd = move |n: u32| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % n
        };
        for round in 0..20 {
            // Three lists, a shadow one among them; entries drawn from a small pool so that
            // lists share names and prefixes, and modes change.
            let mut build = |prev: Option<&ListSet>| {
                let mut s = ListSet::new();
                for (li, name) in ["a", "b", "s"].iter().enumerate() {
                    if round % 5 == 4 && li == 1 && prev.is_some() {
                        continue; // a list dropped
                    }
                    let text: String = (0..60)
                        .map(|_| match rnd(4) {
                            0 => format!("192.0.2.{}\n", rnd(40)),
                            1 => format!("2001:db8::{:x}/128\n", rnd(40)),
                            2 => format!("=n{}.example\n", rnd(40)),
                            _ => format!("n{}.example\n", rnd(40)),
                        })
                        .collect();
                    let (p, _) = parse_list(Path::new(name), &text, ListKind::Block).unwrap();
                    let info = ListInfo { name: name.to_string(), source: name.to_string(), shadow: *name == "s" };
                    s.add_list(info, Path::new(name), p).unwrap();
                }
                if let Some(p) = prev {
                    s.inherit_ids(p);
                }
                s
            };
            let old = build(None);
            let new = build(Some(&old));
            assert_eq!(summary(&diff_sets(&old, &new)), reference(&old, &new), "round {round}, ids inherited");
            let unrelated = build(None);
            assert_eq!(summary(&diff_sets(&old, &unrelated)), reference(&old, &unrelated), "round {round}, ids unrelated");
        }
    }

    #[test]
    fn a_first_load_has_no_change_ratio() {
        let d = diff_sets(&ListSet::new(), &set(&[("a", "192.0.2.1\n")]));
        assert_eq!(d.list("a").unwrap().added, 1);
        assert_eq!(d.list("a").unwrap().change_ratio(), 0.0);
    }
}
