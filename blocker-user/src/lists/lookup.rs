//! The reference matcher: which entry a name or address would match, and why.
//!
//! This is the readable model of what the kernel decides, on strings instead of keyed hashes:
//! the kernel looks up the hash of every label-aligned suffix of the name
//! (`blocker_common::name::suffix_hashes`) where this walks the suffixes themselves. The whole
//! name matches entries with `MATCH_SELF`, a proper suffix matches entries with `MATCH_BELOW`,
//! and the longest matching suffix (the most specific entry) is the one reported. If any allow
//! entry matches, the verdict is allowed, whatever the block entries say. Addresses use the
//! longest prefix, as the LPM tries do.
//!
//! Entries of lists in shadow mode are looked up apart from enforced ones. An allow entry wins
//! over both, an enforced block entry (at any specificity) over a shadow one. A query only
//! shadow entries match is `Shadowed`: the kernel passes it, counting it (action `shadow`)
//! against the most specific shadow entry. The kernel gets there by keeping the shadow entry apart in each name's value,
//! and by leaving out of the tries every shadow prefix an enforced one covers.
//!
//! Note: in the kernel an allow entry only shows in the counters when it overrides a block
//! match (reason `allow_list`); an address or name that only an allow entry matches passes as
//! `no_match`. The lookup still reports the allow entry, since "would this be blocked, and is
//! it exempted" is what a person asks.

use std::{fmt, net::IpAddr};

use serde_json::{Value, json};

use super::{
    entry::{Entry, ListKind, Target},
    name::{NameError, normalise_query, to_unicode},
    parse::looks_like_address,
    set::ListSet,
};

/// Why a query could not be looked up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("not a single IPv4 or IPv6 address (a prefix or CIDR cannot be looked up; give one address)")]
    NotAnAddress,
    #[error(transparent)]
    Name(#[from] NameError),
    /// A list line pasted as a query: `=` (this name only) and `*.` (below it) are list syntax.
    #[error("{written:?} is list syntax, not a name: look up {name:?} itself (or a name below it)")]
    ListSyntax { written: String, name: String },
    /// The program matches names of `a-z 0-9 - _` labels only; anything else it passes
    /// unjudged (`tls_unparsed`, `dns_unparsed`, `http_unparsed`), listed or not.
    #[error("character {ch:?} cannot be in a name the program matches: it passes such a name unjudged, whatever the lists say")]
    NeverMatched { ch: char },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Blocked,
    Allowed,
    /// Would be blocked by a list in shadow mode; passes (and is counted).
    Shadowed,
    NotListed,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Blocked => "blocked",
            Verdict::Allowed => "allowed",
            Verdict::Shadowed => "shadowed",
            Verdict::NotListed => "not listed",
        }
    }

    /// What the verdict means, in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Blocked => "blocked",
            Verdict::Allowed => "allowed: an allow entry wins over block entries",
            Verdict::Shadowed => "would be blocked by a list in shadow mode; passes",
            Verdict::NotListed => "not listed",
        }
    }
}

/// What was looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `asked` as given; `name` normalised as the kernel sees it on the wire.
    Name { asked: String, name: String },
    Addr(IpAddr),
}

/// The query as the kernel sees it, with the Unicode form beside an internationalised name.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Addr(ip) => write!(f, "{ip}"),
            Query::Name { name, .. } => match to_unicode(name) {
                Some(u) => write!(f, "{name} ({u})"),
                None => write!(f, "{name}"),
            },
        }
    }
}

/// One entry that a query meets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match<'a> {
    pub entry: &'a Entry,
    /// For a name: the label-aligned suffix of the query equal to the listed name (the whole
    /// query when the name itself is listed). `None` for an address.
    pub suffix: Option<String>,
}

impl Match<'_> {
    /// `file:line: entry (mode)`, as the entry was listed.
    pub fn cite(&self) -> String {
        let e = self.entry;
        match &e.target {
            Target::Prefix(p) => format!("{}: {p}", e.location()),
            Target::Name(n) => {
                let u = n.unicode().map(|u| format!(" [{u}]")).unwrap_or_default();
                format!("{}: {n}{u} ({})", e.location(), n.mode().describe())
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup<'a> {
    pub query: Query,
    pub verdict: Verdict,
    /// The most specific enforced block entry matching, if any.
    pub block: Option<Match<'a>>,
    /// The most specific block entry of a list in shadow mode matching, if any. It decides
    /// only when no enforced block or allow entry matches.
    pub shadow: Option<Match<'a>>,
    /// The most specific allow entry matching, if any.
    pub allow: Option<Match<'a>>,
    /// Names listed at some suffix of the query whose mode leaves the query out
    /// (`=example.com` for `www.example.com`, `*.example.com` for `example.com`): why a name that
    /// looks listed is not matched by them.
    pub excluded: Vec<Match<'a>>,
}

impl ListSet {
    /// Looks up an address (`192.0.2.1`, `2001:db8::1`) or else a host name.
    pub fn lookup(&self, query: &str) -> Result<Lookup<'_>, QueryError> {
        let q = query.trim();
        match q.parse::<IpAddr>() {
            Ok(ip) => Ok(self.match_addr(ip)),
            Err(_) if looks_like_address(q) => Err(QueryError::NotAnAddress),
            Err(_) => {
                if let Some(name) = q.strip_prefix('=').or_else(|| q.strip_prefix("*.")) {
                    return Err(QueryError::ListSyntax { written: q.to_string(), name: name.to_string() });
                }
                let l = self.match_name(query)?;
                if let Query::Name { name, .. } = &l.query {
                    if let Some(ch) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.')) {
                        return Err(QueryError::NeverMatched { ch });
                    }
                }
                Ok(l)
            }
        }
    }

    /// Which name entry decides `name`, on label boundaries.
    pub fn match_name(&self, name: &str) -> Result<Lookup<'_>, NameError> {
        let normalised = normalise_query(name)?;
        let suffixes = label_suffixes(&normalised);
        let mut excluded = Vec::new();
        let mut find = |kind: ListKind, shadow: bool| {
            let mut found = None;
            for (i, suffix) in suffixes.iter().enumerate() {
                let Some((entry, listed)) = self.name_entry_in(kind, shadow, suffix) else { continue };
                let m = Match { entry, suffix: Some(suffix.to_string()) };
                let covers = if i == 0 { listed.matches_self() } else { listed.matches_below() };
                if !covers {
                    excluded.push(m);
                } else if found.is_none() {
                    found = Some(m);
                }
            }
            found
        };
        let block = find(ListKind::Block, false);
        let allow = find(ListKind::Allow, false);
        let shadow = find(ListKind::Block, true);
        let query = Query::Name { asked: name.trim().to_string(), name: normalised };
        Ok(Lookup::decide(query, block, allow, shadow, excluded))
    }

    /// Which prefix entries cover `ip`: the longest of each kind and enforcement, as the LPM
    /// tries find them.
    pub fn match_addr(&self, ip: IpAddr) -> Lookup<'_> {
        let find = |kind, shadow| self.longest_match_in(ip, kind, shadow).map(|(entry, _)| Match { entry, suffix: None });
        let (block, allow, shadow) = (find(ListKind::Block, false), find(ListKind::Allow, false), find(ListKind::Block, true));
        Lookup::decide(Query::Addr(ip), block, allow, shadow, Vec::new())
    }
}

/// `a.b.example.com`, `b.example.com`, `example.com`, `com`: the whole name first.
fn label_suffixes(name: &str) -> Vec<&str> {
    std::iter::once(0).chain(name.match_indices('.').map(|(i, _)| i + 1)).map(|i| &name[i..]).collect()
}

impl<'a> Lookup<'a> {
    fn decide(
        query: Query,
        block: Option<Match<'a>>,
        allow: Option<Match<'a>>,
        shadow: Option<Match<'a>>,
        excluded: Vec<Match<'a>>,
    ) -> Self {
        let verdict = match (&block, &allow, &shadow) {
            (_, Some(_), _) => Verdict::Allowed,
            (Some(_), None, _) => Verdict::Blocked,
            (None, None, Some(_)) => Verdict::Shadowed,
            (None, None, None) => Verdict::NotListed,
        };
        Lookup { query, verdict, block, allow, shadow, excluded }
    }

    /// The lookup for people: verdict, deciding entry, what it overrides, why.
    pub fn render(&self) -> String {
        let mut out = format!("{}: {}\n", self.query, self.verdict.name());
        if let Some(m) = self.deciding() {
            out.push_str(&format!("  entry: {} (id {})\n", m.cite(), m.entry.id));
        }
        if self.verdict == Verdict::Allowed
            && let Some(b) = &self.block
        {
            out.push_str(&format!("  overrides: {} (id {})\n", b.cite(), b.entry.id));
        }
        out.push_str(&format!("  why: {}\n", self.why()));
        out
    }

    /// The entry that decides the verdict: the allow entry if any, else the enforced block
    /// entry, else the shadow entry.
    pub fn deciding(&self) -> Option<&Match<'a>> {
        self.allow.as_ref().or(self.block.as_ref()).or(self.shadow.as_ref())
    }

    /// The shadow list an entry is in, for sentences.
    fn shadow_list(&self, m: &Match<'_>) -> String {
        format!("entry {} is in a list in shadow mode", m.entry.location())
    }

    /// How one entry meets the query, in a sentence.
    pub fn explain(&self, m: &Match<'_>) -> String {
        match (&self.query, &m.entry.target) {
            (Query::Name { name, .. }, Target::Name(listed)) => {
                let suffix = m.suffix.as_deref().unwrap_or(&listed.name);
                let how = format!("{listed} ({})", listed.mode().describe());
                let covers = if suffix == name { listed.matches_self() } else { listed.matches_below() };
                match (suffix == name, covers) {
                    (true, true) => format!("{name} is the listed name {how}"),
                    (false, true) => format!("suffix {suffix} of {name} matches {how}"),
                    (true, false) => format!("{name} is listed as {how}, which leaves out the name itself"),
                    (false, false) => format!("{suffix} is listed as {how}, which leaves out its subdomains"),
                }
            }
            (Query::Addr(ip), Target::Prefix(p)) => {
                let kind = if m.entry.shadow { "shadow block" } else { m.entry.kind.name() };
                format!("{ip} is inside {p}, the longest {kind} prefix covering it")
            }
            // A name entry never matches an address query, nor the reverse.
            _ => format!("{} does not apply to {}", m.entry.target, self.query),
        }
    }

    /// Why the verdict is what it is, in a sentence or two.
    pub fn why(&self) -> String {
        match (&self.shadow, self.verdict) {
            (Some(s), Verdict::Shadowed) => {
                let mut why = format!(
                    "{}; {}: it would be blocked, so it passes and is counted; no enforced block or allow entry matches",
                    self.explain(s),
                    self.shadow_list(s)
                );
                for m in &self.excluded {
                    why.push_str(&format!("; {} ({})", self.explain(m), m.entry.location()));
                }
                why
            }
            (Some(s), _) => format!(
                "{}; shadow entry {} matches too ({}), but {} entries win over shadow ones",
                self.why_enforced(),
                s.entry.location(),
                self.explain(s),
                if self.verdict == Verdict::Allowed { "allow" } else { "enforced block" }
            ),
            (None, _) => self.why_enforced(),
        }
    }

    /// `why` as the enforced entries alone have it.
    fn why_enforced(&self) -> String {
        match (&self.block, &self.allow) {
            (Some(b), None) => format!("{}; no allow entry matches", self.explain(b)),
            (Some(b), Some(a)) => format!(
                "{}; allow entries win over block entries, and it overrides block entry {} ({})",
                self.explain(a),
                b.entry.location(),
                self.explain(b)
            ),
            (None, Some(a)) => format!("{}; no block entry matches either", self.explain(a)),
            (None, None) => {
                let mut why = match &self.query {
                    Query::Addr(ip) => format!("no block or allow prefix covers {ip}"),
                    Query::Name { name, .. } => {
                        let below = label_suffixes(name);
                        if below.len() > 1 {
                            format!("no entry lists {name} itself, nor any of its parents ({}) with subdomains", below[1..].join(", "))
                        } else {
                            format!("no entry lists {name}")
                        }
                    }
                };
                for m in &self.excluded {
                    why.push_str(&format!("; {} ({})", self.explain(m), m.entry.location()));
                }
                why
            }
        }
    }

    /// The lookup as one JSON object, for `--json` and for callers over a socket.
    pub fn to_json(&self) -> Value {
        let (kind, asked, normalised) = match &self.query {
            Query::Name { asked, name } => ("name", asked.clone(), name.clone()),
            Query::Addr(ip) => ("address", ip.to_string(), ip.to_string()),
        };
        let m = |m: &Match<'_>| {
            let e = m.entry;
            let (mode, unicode) = match &e.target {
                Target::Name(n) => (Some(n.mode()), n.unicode()),
                Target::Prefix(_) => (None, None),
            };
            json!({
                "id": e.id,
                "list": e.kind,
                "source": e.source,
                "line": e.at.line(),
                "at": e.at,
                "entry": e.target.to_string(),
                "unicode": unicode,
                "mode": mode,
                "suffix": m.suffix,
                "explain": self.explain(m),
                "shadow": e.shadow,
            })
        };
        json!({
            "query": asked,
            "kind": kind,
            "normalised": normalised,
            "verdict": self.verdict,
            "why": self.why(),
            "block": self.block.as_ref().map(m),
            "allow": self.allow.as_ref().map(m),
            "shadow": self.shadow.as_ref().map(m),
            "excluded": self.excluded.iter().map(m).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::lists::parse_list;

    fn set(block: &str, allow: &str) -> ListSet {
        let mut set = ListSet::new();
        for (file, kind, text) in [("block.txt", ListKind::Block, block), ("allow.txt", ListKind::Allow, allow)] {
            let (p, _) = parse_list(Path::new(file), text, kind).unwrap();
            set.add_parsed(Path::new(file), p);
        }
        set
    }

    fn shadow_set(block: &str, allow: &str, shadow: &str) -> ListSet {
        let mut set = set(block, allow);
        let (p, _) = parse_list(Path::new("shadow.txt"), shadow, ListKind::Block).unwrap();
        let info = crate::lists::ListInfo { name: "trial".into(), source: "shadow.txt".into(), shadow: true };
        set.add_list(info, Path::new("shadow.txt"), p).unwrap();
        set
    }

    fn shadowed_by(entry: &str) -> (Verdict, Option<String>) {
        (Verdict::Shadowed, Some(entry.to_string()))
    }

    /// Verdict and the deciding entry's list text.
    fn check(set: &ListSet, query: &str) -> (Verdict, Option<String>) {
        let l = set.lookup(query).unwrap();
        (l.verdict, l.deciding().map(|m| m.entry.target.to_string()))
    }

    fn blocked_by(entry: &str) -> (Verdict, Option<String>) {
        (Verdict::Blocked, Some(entry.to_string()))
    }

    const NOT_LISTED: (Verdict, Option<String>) = (Verdict::NotListed, None);

    #[test]
    fn matching_is_on_label_boundaries_only() {
        let s = set("example.com\n", "");
        assert_eq!(check(&s, "xexample.com"), NOT_LISTED);
        assert_eq!(check(&s, "example.com.evil.test"), NOT_LISTED);
        assert_eq!(check(&s, "example.co"), NOT_LISTED);
        assert_eq!(check(&s, "com"), NOT_LISTED);
        assert_eq!(check(&s, "www.example.com"), blocked_by("example.com"));
    }

    #[test]
    fn a_pasted_list_line_is_explained_not_looked_up() {
        let s = set("=www.example.net\ncdn.example.org\n", "");
        assert_eq!(
            s.lookup("=www.example.net").unwrap_err(),
            QueryError::ListSyntax { written: "=www.example.net".into(), name: "www.example.net".into() }
        );
        assert!(matches!(s.lookup("*.cdn.example.org"), Err(QueryError::ListSyntax { .. })));
        assert_eq!(check(&s, "www.example.net"), blocked_by("=www.example.net"));
    }

    #[test]
    fn a_name_the_program_never_matches_is_said_to_pass_unjudged() {
        let s = set("cdn.example.org\n", "");
        assert_eq!(s.lookup("a*b.cdn.example.org").unwrap_err(), QueryError::NeverMatched { ch: '*' });
        assert_eq!(s.lookup("x=y.cdn.example.org").unwrap_err(), QueryError::NeverMatched { ch: '=' });
        assert_eq!(check(&s, "a_b.cdn.example.org"), blocked_by("cdn.example.org"));
    }

    #[test]
    fn case_and_the_root_dot_do_not_matter() {
        let s = set("example.com\n", "");
        assert_eq!(check(&s, "Example.COM."), blocked_by("example.com"));
        assert_eq!(check(&s, "WWW.Example.Com"), blocked_by("example.com"));
    }

    #[test]
    fn a_bare_name_covers_itself_and_every_subdomain() {
        let s = set("example.com\n", "");
        assert_eq!(check(&s, "example.com"), blocked_by("example.com"));
        let l = s.lookup("a.b.example.com").unwrap();
        assert_eq!(l.verdict, Verdict::Blocked);
        assert_eq!(l.block.as_ref().unwrap().suffix.as_deref(), Some("example.com"));
        assert_eq!(
            l.explain(l.block.as_ref().unwrap()),
            "suffix example.com of a.b.example.com matches example.com (name and subdomains)"
        );
    }

    #[test]
    fn a_star_covers_subdomains_but_not_the_name() {
        let s = set("*.example.com\n", "");
        assert_eq!(check(&s, "a.b.example.com"), blocked_by("*.example.com"));
        assert_eq!(check(&s, "www.example.com"), blocked_by("*.example.com"));
        let l = s.lookup("example.com").unwrap();
        assert_eq!(l.verdict, Verdict::NotListed);
        assert_eq!(l.excluded.len(), 1);
        assert!(l.why().contains("leaves out the name itself"), "{}", l.why());
    }

    #[test]
    fn an_equals_sign_covers_the_name_only() {
        let s = set("=example.com\n", "");
        assert_eq!(check(&s, "example.com"), blocked_by("=example.com"));
        assert_eq!(check(&s, "Example.com."), blocked_by("=example.com"));
        let l = s.lookup("www.example.com").unwrap();
        assert_eq!(l.verdict, Verdict::NotListed);
        assert!(l.why().contains("leaves out its subdomains"), "{}", l.why());
    }

    #[test]
    fn the_most_specific_entry_is_reported() {
        let s = set("example.com\n*.cdn.example.com\n", "");
        assert_eq!(check(&s, "x.cdn.example.com"), blocked_by("*.cdn.example.com"));
        // cdn.example.com itself is left out by the star, but its parent's entry covers it.
        assert_eq!(check(&s, "cdn.example.com"), blocked_by("example.com"));
    }

    #[test]
    fn an_allow_entry_wins_over_a_block_entry() {
        let s = set("example.com\n", "safe.example.com\n");
        let l = s.lookup("www.safe.example.com").unwrap();
        assert_eq!(l.verdict, Verdict::Allowed);
        assert_eq!(l.allow.as_ref().unwrap().entry.target.to_string(), "safe.example.com");
        assert_eq!(l.block.as_ref().unwrap().entry.target.to_string(), "example.com");
        assert!(l.why().contains("overrides block entry block.txt:1"), "{}", l.why());
        assert_eq!(check(&s, "www.example.com"), blocked_by("example.com"));
        assert_eq!(check(&s, "safe.example.com").0, Verdict::Allowed);
    }

    #[test]
    fn an_idn_entry_is_matched_by_its_punycode_and_unicode_queries() {
        let s = set("bücher.example\n", "");
        assert_eq!(check(&s, "xn--bcher-kva.example"), blocked_by("xn--bcher-kva.example"));
        assert_eq!(check(&s, "www.XN--BCHER-KVA.example."), blocked_by("xn--bcher-kva.example"));
        assert_eq!(check(&s, "Bücher.example"), blocked_by("xn--bcher-kva.example"));
        assert_eq!(check(&s, "bucher.example"), NOT_LISTED);
        let l = s.lookup("bücher.example").unwrap();
        assert_eq!(l.query.to_string(), "xn--bcher-kva.example (bücher.example)");
        assert!(l.block.unwrap().cite().ends_with("xn--bcher-kva.example [bücher.example] (name and subdomains)"));
    }

    #[test]
    fn full_length_names_match() {
        let n253 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        let s = set(&format!("={n253}\n"), "");
        assert_eq!(check(&s, &n253).0, Verdict::Blocked);
        let n254 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(62));
        assert_eq!(s.lookup(&n254).unwrap_err(), QueryError::Name(NameError::TooLong { len: 254 }));
    }

    #[test]
    fn addresses_use_the_longest_prefix() {
        let s = set("203.0.113.0/24\n2001:db8::/32\nexample.com\n", "203.0.113.128/25\n");
        assert_eq!(check(&s, "203.0.113.7"), blocked_by("203.0.113.0/24"));
        assert_eq!(check(&s, "203.0.113.200"), (Verdict::Allowed, Some("203.0.113.128/25".into())));
        assert_eq!(check(&s, "2001:db8::1"), blocked_by("2001:db8::/32"));
        assert_eq!(check(&s, "198.51.100.1"), NOT_LISTED);
        assert_eq!(s.lookup("203.0.113.0/24").unwrap_err(), QueryError::NotAnAddress);
        assert_eq!(s.lookup("203.0.113.256").unwrap_err(), QueryError::NotAnAddress);
        let l = s.lookup("203.0.113.7").unwrap();
        assert_eq!(l.why(), "203.0.113.7 is inside 203.0.113.0/24, the longest block prefix covering it; no allow entry matches");
    }

    #[test]
    fn not_listed_says_what_was_tried() {
        let s = set("example.com\n", "");
        let l = s.lookup("a.example.org").unwrap();
        assert_eq!(l.why(), "no entry lists a.example.org itself, nor any of its parents (example.org, org) with subdomains");
    }

    #[test]
    fn json_carries_the_verdict_and_the_entry() {
        let s = set("example.com\n", "");
        let j = s.lookup("www.example.com").unwrap().to_json();
        assert_eq!(j["verdict"], "blocked");
        assert_eq!(j["block"]["id"], 1);
        assert_eq!(j["block"]["source"], "block.txt");
        assert_eq!(j["block"]["line"], 1);
        assert_eq!(j["block"]["mode"], "name_and_subdomains");
        assert_eq!(j["block"]["suffix"], "example.com");
        assert!(j["allow"].is_null());
    }

    #[test]
    fn a_name_only_a_shadow_list_has_is_shadowed() {
        let s = shadow_set("", "", "example.com\n*.cdn.example.com\n");
        assert_eq!(check(&s, "www.example.com"), shadowed_by("example.com"));
        assert_eq!(check(&s, "x.cdn.example.com"), shadowed_by("*.cdn.example.com"), "the most specific shadow entry");
        assert_eq!(check(&s, "example.org"), NOT_LISTED);
        let l = s.lookup("www.example.com").unwrap();
        assert!(l.block.is_none() && l.allow.is_none());
        assert!(l.shadow.as_ref().unwrap().entry.shadow);
        assert_eq!(
            l.why(),
            "suffix example.com of www.example.com matches example.com (name and subdomains); entry shadow.txt:1 is in a \
             list in shadow mode: it would be blocked, so it passes and is counted; no enforced block or allow entry matches"
        );
        let j = l.to_json();
        assert_eq!(j["verdict"], "shadowed");
        assert_eq!(j["shadow"]["id"], 1);
        assert_eq!(j["shadow"]["shadow"], true);
        assert!(j["block"].is_null());
        assert_eq!(Verdict::Shadowed.name(), "shadowed");
    }

    #[test]
    fn an_enforced_name_beats_a_shadow_one_at_any_specificity() {
        // Shadow more specific than enforced.
        let s = shadow_set("example.com\n", "", "www.example.com\n");
        assert_eq!(check(&s, "a.www.example.com"), blocked_by("example.com"));
        let l = s.lookup("a.www.example.com").unwrap();
        assert_eq!(l.shadow.as_ref().unwrap().entry.target.to_string(), "www.example.com");
        assert!(l.why().ends_with("but enforced block entries win over shadow ones"), "{}", l.why());
        // Enforced more specific than shadow: the shadow entry decides only outside it.
        let s = shadow_set("=www.example.com\n", "", "example.com\n");
        assert_eq!(check(&s, "www.example.com"), blocked_by("=www.example.com"));
        assert_eq!(check(&s, "a.www.example.com"), shadowed_by("example.com"));
        assert_eq!(check(&s, "example.com"), shadowed_by("example.com"));
        // The same name in both.
        let s = shadow_set("example.com\n", "", "example.com\n");
        assert_eq!(check(&s, "example.com"), blocked_by("example.com"));
        assert_eq!(s.lookup("example.com").unwrap().block.unwrap().entry.id, 1);
    }

    #[test]
    fn an_allow_entry_beats_a_shadow_one() {
        let s = shadow_set("", "safe.example.com\n", "example.com\n");
        assert_eq!(check(&s, "www.safe.example.com"), (Verdict::Allowed, Some("safe.example.com".into())));
        let l = s.lookup("www.safe.example.com").unwrap();
        assert!(l.why().ends_with("but allow entries win over shadow ones"), "{}", l.why());
        assert_eq!(check(&s, "www.example.com"), shadowed_by("example.com"));
        let s = shadow_set("", "203.0.113.7\n", "203.0.113.0/24\n");
        assert_eq!(check(&s, "203.0.113.7"), (Verdict::Allowed, Some("203.0.113.7/32".into())));
        assert_eq!(check(&s, "203.0.113.8"), shadowed_by("203.0.113.0/24"));
    }

    #[test]
    fn an_enforced_prefix_beats_a_shadow_one_at_any_length() {
        // Shadow inside enforced.
        let s = shadow_set("203.0.113.0/24\n2001:db8::/32\n", "", "203.0.113.64/26\n2001:db8:1::/48\n");
        assert_eq!(check(&s, "203.0.113.66"), blocked_by("203.0.113.0/24"));
        assert_eq!(check(&s, "2001:db8:1::1"), blocked_by("2001:db8::/32"));
        // Enforced inside shadow.
        let s = shadow_set("203.0.113.64/26\n", "", "203.0.113.0/24\n");
        assert_eq!(check(&s, "203.0.113.66"), blocked_by("203.0.113.64/26"));
        assert_eq!(check(&s, "203.0.113.1"), shadowed_by("203.0.113.0/24"));
        let l = s.lookup("203.0.113.1").unwrap();
        assert!(l.why().starts_with("203.0.113.1 is inside 203.0.113.0/24, the longest shadow block prefix covering it"), "{}", l.why());
        // The same prefix in both.
        let s = shadow_set("2001:db8::/32\n", "", "2001:db8::/32\n");
        assert_eq!(check(&s, "2001:db8::1"), blocked_by("2001:db8::/32"));
        // Among shadow prefixes the longest names the hit.
        let s = shadow_set("", "", "203.0.113.0/24\n203.0.113.64/26\n");
        assert_eq!(check(&s, "203.0.113.66"), shadowed_by("203.0.113.64/26"));
    }
}
