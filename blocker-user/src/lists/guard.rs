//! Guards on list updates: an update that would change too much of a list at once, or block
//! something the operator has declared must never be blocked, is refused unless forced.
//!
//! This is the lesson of the incident where an automated pull blocked google.com and
//! facebook.com for hours: a list body's mistake must stop at the appliance.

use std::{collections::HashMap, fmt, path::Path};

use super::{
    diff::{ListDiff, SetDiff},
    entry::{Entry, ListKind, Target},
    error::ListError,
    name::NameEntry,
    parse::{ParseOptions, parse_text},
    prefix::Prefix,
    set::ListSet,
};

/// Names and addresses that no block entry may cover (nor, for a name with subdomains,
/// anything below it). Written in the list syntax: `google.com` protects the name and its
/// subdomains, `=google.com` only the name, `*.google.com` only the subdomains, `192.0.2.1`
/// or `192.0.2.0/24` addresses.
#[derive(Clone, Debug, Default)]
pub struct Protected {
    names: HashMap<String, (u32, String)>,
    /// Prefixes by length, network address as the key.
    prefixes: HashMap<(bool, u8), HashMap<u128, String>>,
}

/// A block entry an update adds that meets a protected name or address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    pub list: String,
    /// The block entry, in list syntax.
    pub entry: String,
    /// Where it is written.
    pub at: String,
    /// The protected entry it meets, as configured.
    pub protected: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) would block protected {}", self.entry, self.at, self.protected)
    }
}

/// Why an update of one list was refused.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "guard", rename_all = "snake_case")]
pub enum Refusal {
    /// More of the list would change than the configured share.
    ChangeRatio { diff: ListDiff, max_ratio: f64 },
    /// New block entries meet protected names or addresses.
    Protected { list: String, conflicts: Vec<Conflict>, total: usize },
}

impl Refusal {
    pub fn list(&self) -> &str {
        match self {
            Refusal::ChangeRatio { diff, .. } => &diff.list,
            Refusal::Protected { list, .. } => list,
        }
    }

    /// One line for logs: counts and places, never the entries themselves.
    pub fn summary(&self) -> String {
        match self {
            Refusal::ChangeRatio { diff, max_ratio } => format!(
                "list {}: update refused: it changes {:.1}% of the list (+{} -{} of {} entries), more than the {:.1}% allowed",
                diff.list,
                100.0 * diff.change_ratio(),
                diff.added,
                diff.removed,
                diff.before,
                100.0 * max_ratio
            ),
            Refusal::Protected { list, conflicts, total } => format!(
                "list {list}: update refused: {total} new block entr{} would block protected names or addresses (first at {})",
                if *total == 1 { "y" } else { "ies" },
                conflicts.first().map(|c| c.at.as_str()).unwrap_or("?")
            ),
        }
    }
}

/// What a person asking for the update sees: the summary and what would have changed.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary())?;
        match self {
            Refusal::ChangeRatio { diff, .. } => {
                for s in &diff.added_sample {
                    write!(f, "\n  + {s}")?;
                }
                for s in &diff.removed_sample {
                    write!(f, "\n  - {s}")?;
                }
            }
            Refusal::Protected { conflicts, .. } => {
                for c in conflicts {
                    write!(f, "\n  {c}")?;
                }
            }
        }
        write!(f, "\n  (apply it anyway with --force)")
    }
}

/// The guard settings.
#[derive(Clone, Debug)]
pub struct Guards {
    /// Largest share of a list's entries one update may add plus remove (0.25: a quarter).
    pub max_change_ratio: f64,
    pub protected: Protected,
}

impl Default for Guards {
    fn default() -> Self {
        Guards { max_change_ratio: DEFAULT_MAX_CHANGE_RATIO, protected: Protected::default() }
    }
}

pub const DEFAULT_MAX_CHANGE_RATIO: f64 = 0.25;
/// Conflicts listed per refusal; the total is always given.
const MAX_CONFLICTS_SHOWN: usize = 20;

impl Protected {
    /// Parses protected entries in the text list syntax. `source` names them in errors.
    pub fn parse(source: &Path, text: &str) -> Result<Protected, ListError> {
        // Protected entries may be as wide as the operator likes: parse them as allow entries.
        let (parsed, _) = parse_text(source, text, &ParseOptions::new(ListKind::Allow))?;
        let mut p = Protected::default();
        for e in parsed {
            p.add(&e.target);
        }
        Ok(p)
    }

    /// Adds the entries of another source (a file beside inline entries).
    pub fn extend(&mut self, other: Protected) {
        self.names.extend(other.names);
        for (k, v) in other.prefixes {
            self.prefixes.entry(k).or_default().extend(v);
        }
    }

    fn add(&mut self, target: &Target) {
        match target {
            Target::Name(n) => {
                let e = self.names.entry(n.name.clone()).or_insert((0, String::new()));
                e.0 |= n.flags;
                e.1 = NameEntry { name: n.name.clone(), flags: e.0 }.to_string();
            }
            Target::Prefix(p) => {
                let (v6, bits) = network(p);
                self.prefixes.entry((v6, p.len())).or_default().insert(bits, p.to_string());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.names.len() + self.prefixes.values().map(HashMap::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Block entries of `new` (enforced ones: shadow entries block nothing) that are not in
    /// `old` and meet a protected entry. Entries already live are not re-judged: an operator
    /// who forced one in is not asked again at every update.
    pub fn conflicts(&self, old: &ListSet, new: &ListSet) -> Vec<(u16, Conflict)> {
        if self.is_empty() {
            return Vec::new();
        }
        // Is this enforced block entry live already, as it is (same target, same mode)?
        let live = |e: &Entry| old.find_identity(e).is_some_and(|o| o.target == e.target);
        let mut out = Vec::new();
        let list_name = |e: &Entry| new.lists().get(e.list as usize).map(|l| l.name.clone()).unwrap_or_default();
        let mut report = |e: &Entry, protected: &str| {
            out.push((e.list, Conflict { list: list_name(e), entry: e.target.to_string(), at: e.location(), protected: protected.to_string() }));
        };
        for e in new.block().filter(|e| !e.shadow) {
            let protected = match &e.target {
                Target::Name(n) => self.name_conflict(n),
                Target::Prefix(b) => self.prefix_conflict(b),
            };
            // Few entries meet a protected one: only those are looked up in the live set.
            if let Some(p) = protected
                && !live(e)
            {
                report(e, p);
            }
        }
        // A new block entry above a protected name (`com` over `google.com`) is caught by
        // walking up from each protected name: few protected names, many list entries.
        for (pname, (pflags, ptext)) in &self.names {
            for ancestor in proper_suffixes(pname) {
                if let Some((e, n)) = new.name_entry_in(ListKind::Block, false, ancestor)
                    && n.flags & blocker_common::name::MATCH_BELOW != 0
                    && !live(e)
                    && *pflags != 0
                {
                    report(e, ptext);
                }
            }
        }
        out.sort_by(|a, b| a.1.at.cmp(&b.1.at));
        out.dedup_by(|a, b| a.1 == b.1);
        out
    }

    /// The protected entry that block name `b` meets, if any.
    fn name_conflict(&self, b: &NameEntry) -> Option<&str> {
        use blocker_common::name::{MATCH_BELOW, MATCH_SELF};
        if let Some((pflags, text)) = self.names.get(&b.name) {
            // Same name: they meet where their modes overlap.
            if (b.flags & MATCH_SELF != 0 && pflags & MATCH_SELF != 0) || (b.flags & MATCH_BELOW != 0 && pflags & MATCH_BELOW != 0) {
                return Some(text);
            }
        }
        // A protected ancestor with its subdomains covers everything b covers.
        for ancestor in proper_suffixes(&b.name) {
            if let Some((pflags, text)) = self.names.get(ancestor) {
                if pflags & MATCH_BELOW != 0 {
                    return Some(text);
                }
            }
        }
        None
    }

    /// The protected prefix that block prefix `b` overlaps (one inside the other), if any.
    fn prefix_conflict(&self, b: &Prefix) -> Option<&str> {
        let (v6, bits) = network(b);
        let width = if v6 { 128 } else { 32 };
        for ((pv6, plen), nets) in &self.prefixes {
            if *pv6 != v6 {
                continue;
            }
            // Compare at the shorter of the two lengths.
            let len = (*plen).min(b.len());
            let key = mask(bits, len, width);
            for (net, text) in nets {
                if mask(*net, len, width) == key {
                    return Some(text);
                }
            }
        }
        None
    }
}

/// `b.example.com` → `example.com`, `com`.
fn proper_suffixes(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('.').map(move |(i, _)| &name[i + 1..])
}

fn network(p: &Prefix) -> (bool, u128) {
    match *p {
        Prefix::V4 { addr, .. } => (false, u32::from(addr) as u128),
        Prefix::V6 { addr, .. } => (true, u128::from(addr)),
    }
}

fn mask(bits: u128, len: u8, width: u32) -> u128 {
    if len == 0 {
        return 0;
    }
    let keep = u128::MAX << (width - len as u32);
    let all = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    bits & keep & all
}

/// What the guards say of `new` loaded from nothing (`blocker lists verify --config`, with no
/// live set to compare against): the protected names and addresses only, since a change ratio
/// needs a live list (an empty diff has none).
pub fn check_protected(guards: &Guards, new: &ListSet) -> Vec<(u16, Refusal)> {
    check(guards, &ListSet::new(), new, &SetDiff::default())
}

/// Applies the guards to the change from `old` to `new`; returns the refusal of each list the
/// guards stop, by list index in `new`.
pub fn check(guards: &Guards, old: &ListSet, new: &ListSet, diff: &SetDiff) -> Vec<(u16, Refusal)> {
    let mut out: Vec<(u16, Refusal)> = Vec::new();
    for (i, info) in new.lists().iter().enumerate() {
        let Some(d) = diff.list(&info.name) else { continue };
        if d.change_ratio() > guards.max_change_ratio {
            out.push((i as u16, Refusal::ChangeRatio { diff: d.clone(), max_ratio: guards.max_change_ratio }));
        }
    }
    let conflicts = guards.protected.conflicts(old, new);
    let mut by_list: HashMap<u16, Vec<Conflict>> = HashMap::new();
    for (list, c) in conflicts {
        by_list.entry(list).or_default().push(c);
    }
    let mut lists: Vec<_> = by_list.into_iter().collect();
    lists.sort_by_key(|(l, _)| *l);
    for (list, mut cs) in lists {
        let total = cs.len();
        cs.truncate(MAX_CONFLICTS_SHOWN);
        let name = new.lists()[list as usize].name.clone();
        out.push((list, Refusal::Protected { list: name, conflicts: cs, total }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::{ListInfo, diff_sets, parse_list};

    fn set(text: &str) -> ListSet {
        let mut s = ListSet::new();
        let (p, _) = parse_list(Path::new("l.txt"), text, ListKind::Block).unwrap();
        s.add_list(ListInfo { name: "l".into(), source: "l.txt".into(), shadow: false }, Path::new("l.txt"), p).unwrap();
        s
    }

    fn protected(text: &str) -> Protected {
        Protected::parse(Path::new("protected"), text).unwrap()
    }

    fn conflicting(p: &str, old: &str, new: &str) -> Vec<String> {
        protected(p).conflicts(&set(old), &set(new)).into_iter().map(|(_, c)| c.entry).collect()
    }

    #[test]
    fn a_protected_name_cannot_be_blocked_nor_anything_below_it() {
        let p = "google.com\n";
        assert_eq!(conflicting(p, "", "google.com\n"), vec!["google.com"]);
        assert_eq!(conflicting(p, "", "=google.com\n"), vec!["=google.com"]);
        assert_eq!(conflicting(p, "", "mail.google.com\n"), vec!["mail.google.com"]);
        assert_eq!(conflicting(p, "", "*.google.com\n"), vec!["*.google.com"]);
        // A look-alike is not the protected name.
        assert!(conflicting(p, "", "xgoogle.com\ngoogle.com.evil.test\n").is_empty());
    }

    #[test]
    fn a_block_entry_above_a_protected_name_is_caught() {
        assert_eq!(conflicting("=www.google.com\n", "", "google.com\n"), vec!["google.com"]);
        // `=google.com` covers only the name, not www below it.
        assert!(conflicting("=www.google.com\n", "", "=google.com\n").is_empty());
    }

    #[test]
    fn modes_decide_whether_a_protected_name_is_met() {
        // Protected: the name only. Blocking only its subdomains does not touch it.
        assert!(conflicting("=example.com\n", "", "*.example.com\nsub.example.com\n").is_empty());
        // Protected: the subdomains only. Blocking the name only does not touch them.
        assert!(conflicting("*.example.com\n", "", "=example.com\n").is_empty());
        assert_eq!(conflicting("*.example.com\n", "", "a.example.com\n"), vec!["a.example.com"]);
    }

    #[test]
    fn protected_addresses_meet_covering_and_covered_prefixes() {
        let p = "192.0.2.53\n2001:db8::/48\n";
        assert_eq!(conflicting(p, "", "192.0.2.0/24\n"), vec!["192.0.2.0/24"]);
        assert_eq!(conflicting(p, "", "192.0.2.53\n"), vec!["192.0.2.53/32"]);
        assert!(conflicting(p, "", "192.0.2.54\n198.51.100.0/24\n").is_empty());
        assert_eq!(conflicting(p, "", "2001:db8::1\n"), vec!["2001:db8::1/128"]);
        assert_eq!(conflicting(p, "", "2001:db8::/32\n"), vec!["2001:db8::/32"]);
        assert!(conflicting(p, "", "2001:db8:1::/48\n").is_empty());
    }

    #[test]
    fn entries_already_live_are_not_judged_again() {
        assert!(conflicting("google.com\n", "google.com\n", "google.com\n192.0.2.1\n").is_empty());
    }

    #[test]
    fn the_change_ratio_guard_refuses_big_changes_but_not_first_loads() {
        let g = Guards { max_change_ratio: 0.5, protected: Protected::default() };
        let old = set("192.0.2.1\n192.0.2.2\n192.0.2.3\n192.0.2.4\n");
        let small = set("192.0.2.1\n192.0.2.2\n192.0.2.3\n192.0.2.5\n");
        let big = set("192.0.2.1\n198.51.100.1\n198.51.100.2\n");
        assert!(check(&g, &old, &small, &diff_sets(&old, &small)).is_empty());
        let r = check(&g, &old, &big, &diff_sets(&old, &big));
        assert_eq!(r.len(), 1);
        let text = r[0].1.to_string();
        assert!(text.starts_with("list l: update refused: it changes 125.0% of the list (+2 -3 of 4 entries)"), "{text}");
        assert!(text.contains("+ 198.51.100.1/32 at l.txt:2"), "{text}");
        assert!(text.contains("- 192.0.2.2/32 at l.txt:2"), "{text}");
        assert!(text.contains("--force"), "{text}");
        let first = ListSet::new();
        assert!(check(&g, &first, &big, &diff_sets(&first, &big)).is_empty());
    }

    #[test]
    fn a_refusal_for_protected_entries_names_them_in_full_but_logs_only_places() {
        let g = Guards { max_change_ratio: 10.0, protected: protected("google.com\nfacebook.com\n") };
        let old = set("192.0.2.1\n");
        let new = set("192.0.2.1\ngoogle.com\nwww.facebook.com\n");
        let r = check(&g, &old, &new, &diff_sets(&old, &new));
        assert_eq!(r.len(), 1);
        let Refusal::Protected { total, .. } = &r[0].1 else { panic!() };
        assert_eq!(*total, 2);
        let full = r[0].1.to_string();
        assert!(full.contains("google.com (l.txt:2) would block protected google.com"), "{full}");
        let log = r[0].1.summary();
        assert!(!log.contains("google"), "a log line must not carry list entries: {log}");
        assert!(log.contains("l.txt:2"), "{log}");
    }
}
