//! The text list format.
//!
//! One entry per line: an IPv4/IPv6 address or CIDR prefix, or a host name in one of the modes
//! of `name.rs` (`example.com`, `=example.com`, `*.example.com`). `#` starts a comment (whole
//! line, or after the entry); blank lines are ignored. A line is an address if it parses as one
//! or is made only of address characters (so `192.0.2.256` is a bad address, not a name);
//! anything else is a name. Any invalid line rejects the whole file, every bad line reported
//! as `file:line: reason`.

use std::{hash::BuildHasher, path::Path};

use hashbrown::HashTable;

use super::{
    entry::{ListKind, Locus, Target, fast_hasher},
    error::{LineError, ListError, MAX_REPORTED},
    name::{NameError, NameMode, parse_name_entry},
    prefix::{MIN_BLOCK_LEN_V4, MIN_BLOCK_LEN_V6, Prefix, parse_prefix},
};

/// One accepted line, before the set gives it an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedEntry {
    pub target: Target,
    pub kind: ListKind,
    pub at: Locus,
}

/// What a list's configuration says about entries that do not say it themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    /// The action of entries without one (every entry of a text list).
    pub kind: ListKind,
    /// Whether a bare name (`example.com`) also covers its subdomains; `=name` and `*.name`
    /// always mean what they say.
    pub subdomains: bool,
}

impl ParseOptions {
    pub const fn new(kind: ListKind) -> Self {
        ParseOptions { kind, subdomains: true }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ListSummary {
    pub lines: usize,
    /// Distinct entries: prefixes plus names.
    pub entries: usize,
    pub v4: usize,
    pub v6: usize,
    /// Distinct names (a name listed in two modes is one name with both).
    pub names: usize,
    /// Names listed as `=name`.
    pub names_self_only: usize,
    /// Names listed as `*.name`.
    pub names_below_only: usize,
    /// Entries that allow rather than block (from a per-entry action or an allow list).
    pub allow: usize,
    /// Lines that repeated an entry already in the file, including a name in another mode
    /// (whose modes were merged).
    pub duplicates: usize,
    /// Count of entries per prefix length, v4 then v6, only lengths present.
    pub v4_lengths: Vec<(u8, usize)>,
    pub v6_lengths: Vec<(u8, usize)>,
}

/// Why one line was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("{0}")]
    Address(String),
    #[error(transparent)]
    Name(#[from] NameError),
}

/// Parses one entry (comment removed, trimmed).
pub fn parse_entry(text: &str, kind: ListKind) -> Result<Target, EntryError> {
    parse_entry_with(text, &ParseOptions::new(kind))
}

/// Parses one entry in the text syntax under a list's defaults.
pub fn parse_entry_with(text: &str, opts: &ParseOptions) -> Result<Target, EntryError> {
    if looks_like_address(text) {
        return parse_address_entry(text, opts.kind);
    }
    Ok(Target::Name(parse_name_entry(text, opts.kind, opts.subdomains)?))
}

/// An address or CIDR entry, refused when too broad to block.
pub fn parse_address_entry(text: &str, kind: ListKind) -> Result<Target, EntryError> {
    let p = match plain_v4(text) {
        Some(p) => p,
        None => parse_prefix(text).map_err(EntryError::Address)?,
    };
    Ok(Target::Prefix(check_breadth(p, kind).map_err(EntryError::Address)?))
}

/// `a.b.c.d` or `a.b.c.d/n` as most IPv4 lines are written (octets without leading zeros, a
/// length of one or two digits, no host bits beyond it), read in one pass; None for anything
/// else, which `parse_prefix` reads (and says what is wrong with). Whatever this reads,
/// `parse_prefix` reads alike.
fn plain_v4(text: &str) -> Option<Prefix> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let number = |digits: &[u8], max: u32| -> Option<u32> {
        if digits.is_empty() || digits.len() > 3 || (digits.len() > 1 && digits[0] == b'0') || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = digits.iter().fold(0u32, |n, d| n * 10 + (d - b'0') as u32);
        (n <= max).then_some(n)
    };
    let mut octets = [0u8; 4];
    let mut parts = addr.as_bytes().split(|&b| b == b'.');
    for o in &mut octets {
        *o = number(parts.next()?, 255)? as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    let len = match len {
        Some(l) => number(l.as_bytes(), 32)? as u8,
        None => 32,
    };
    let a = u32::from_be_bytes(octets);
    if len < 32 && a & (u32::MAX >> len) != 0 {
        return None;
    }
    Some(Prefix::V4 { addr: octets.into(), len })
}

/// Made only of what addresses and CIDRs are made of. Such a line is judged as an address even
/// when it does not parse, so its error speaks of addresses. (Whatever `parse_prefix` accepts
/// passes these byte tests: an IPv4 address is digits and dots, an IPv6 one hex digits, colons
/// and dots, a length digits; so a name costs no parse attempt.)
pub(super) fn looks_like_address(text: &str) -> bool {
    let v4 = text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'/');
    let v6 = text.contains(':') && text.bytes().all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.' | b'/'));
    !text.is_empty() && (v4 || v6)
}

fn check_breadth(p: Prefix, kind: ListKind) -> Result<Prefix, String> {
    if kind == ListKind::Allow {
        return Ok(p);
    }
    let min = if p.is_v4() { MIN_BLOCK_LEN_V4 } else { MIN_BLOCK_LEN_V6 };
    if p.len() < min {
        return Err(format!("refusing to block /{} (wider than /{min}): a list entry names sites, not networks this size", p.len()));
    }
    Ok(p)
}

/// Gathers a source's entries in any format: drops duplicates, merges the modes of a name
/// listed twice (the kernel holds one value per name), and keeps every error, so that a
/// source with any bad entry is refused whole with all of them reported.
#[derive(Default)]
pub struct Collector {
    out: Vec<ParsedEntry>,
    /// The entries already in `out`, by index there, keyed by a hash of kind and prefix or name
    /// and compared against the entry: no copy of a name, 4 bytes a slot.
    seen: HashTable<u32>,
    errors: Vec<LineError>,
    total_errors: usize,
    summary: ListSummary,
}

/// What makes two entries of one source the same: kind, and prefix or name (not its mode).
fn seen_key(kind: ListKind, target: &Target) -> u64 {
    match target {
        Target::Prefix(p) => fast_hasher().hash_one((kind as u8, p)),
        Target::Name(n) => fast_hasher().hash_one((kind as u8, n.name.as_str())),
    }
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// A collector for a source of about `entries` entries.
    pub fn with_capacity(entries: usize) -> Self {
        let mut c = Self::default();
        c.out.reserve(entries);
        c.seen.reserve(entries, |_| unreachable!("an empty table has nothing to move"));
        c
    }

    /// Records how many lines (or records) the source had.
    pub fn set_lines(&mut self, lines: usize) {
        self.summary.lines = lines;
    }

    pub fn accept(&mut self, at: Locus, kind: ListKind, target: Target) {
        let out = &mut self.out;
        let same = |&i: &u32| {
            let e = &out[i as usize];
            e.kind == kind
                && match (&e.target, &target) {
                    (Target::Prefix(a), Target::Prefix(b)) => a == b,
                    (Target::Name(a), Target::Name(b)) => a.name == b.name,
                    _ => false,
                }
        };
        let rehash = |&i: &u32| seen_key(out[i as usize].kind, &out[i as usize].target);
        match self.seen.entry(seen_key(kind, &target), same, rehash) {
            hashbrown::hash_table::Entry::Occupied(o) => {
                if let (Target::Name(first), Target::Name(n)) = (&mut out[*o.get() as usize].target, &target) {
                    first.flags |= n.flags;
                }
                self.summary.duplicates += 1;
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(out.len() as u32);
                out.push(ParsedEntry { target, kind, at });
            }
        }
    }

    /// Records a refused entry; `text` is the entry as written, `reason` why it was refused.
    pub fn reject(&mut self, at: Locus, text: &str, reason: String) {
        self.total_errors += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(LineError { at, text: text.to_string(), reason });
        }
    }

    pub fn finish(mut self, path: &Path) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
        if self.total_errors > 0 {
            return Err(ListError::Invalid { path: path.to_path_buf(), errors: self.errors, total: self.total_errors });
        }
        summarise(&self.out, &mut self.summary);
        Ok((self.out, self.summary))
    }
}

/// Parses list text with every entry of `kind`. `path` only names the source in messages.
pub fn parse_list(path: &Path, text: &str, kind: ListKind) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
    parse_text(path, text, &ParseOptions::new(kind))
}

/// Parses the text format under a list's defaults. A large text is cut into pieces at line
/// ends and parsed on every CPU, each piece writing the entries of its lines in place into one
/// slot per line; then duplicates are dropped (a name's modes merged into its first line) in
/// line order and the slots closed up where they are: the same entries, summary and errors as
/// a line-by-line read, without copying the entries from one buffer to another.
pub fn parse_text(path: &Path, text: &str, opts: &ParseOptions) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
    let pieces = pieces(text, std::thread::available_parallelism().map_or(1, |n| n.get()).min(8));
    let total: usize = pieces.iter().map(|p| p.2).sum();
    let mut slots: Vec<Option<ParsedEntry>> = Vec::new();
    slots.resize_with(total, || None);
    let mut parts = Vec::with_capacity(pieces.len());
    let mut rest = slots.as_mut_slice();
    for &(_, _, lines) in &pieces {
        let (part, tail) = rest.split_at_mut(lines);
        parts.push(part);
        rest = tail;
    }
    let bad: Vec<Vec<BadLine<'_>>> = if pieces.len() == 1 {
        pieces.iter().zip(parts).map(|(&(first, piece, _), part)| parse_lines(first, piece, part, opts)).collect()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = pieces.iter().zip(parts).map(|(&(first, piece, _), part)| s.spawn(move || parse_lines(first, piece, part, opts))).collect();
            handles.into_iter().map(|h| h.join().expect("parsing lines does not panic")).collect()
        })
    };
    let mut summary = ListSummary { lines: total, ..Default::default() };
    summary.duplicates = drop_duplicates(&mut slots);
    let total_errors: usize = bad.iter().map(Vec::len).sum();
    if total_errors > 0 {
        let errors = bad
            .into_iter()
            .flatten()
            .take(MAX_REPORTED)
            .map(|(line, text, reason)| LineError { at: Locus::Line(line), text: text.to_string(), reason })
            .collect();
        return Err(ListError::Invalid { path: path.to_path_buf(), errors, total: total_errors });
    }
    // Closed up in place: an Option of an entry is the size of the entry, and collecting a
    // vector's own `filter_map` reuses its buffer (`flatten` would not).
    #[allow(clippy::filter_map_identity)]
    let out: Vec<ParsedEntry> = slots.into_iter().filter_map(|slot| slot).collect();
    summarise(&out, &mut summary);
    Ok((out, summary))
}

/// A refused line: its number, the entry as written, and why.
type BadLine<'a> = (usize, &'a str, String);

/// `text` in up to `n` pieces, each ending at a line end (the last at the end of the text),
/// with the number of the line each starts at and how many lines it has (as `str::lines` counts
/// them); one piece for a small text.
fn pieces(text: &str, n: usize) -> Vec<(usize, &str, usize)> {
    const SMALL: usize = 1 << 20;
    let n = if text.len() < SMALL { 1 } else { n.max(1) };
    let mut out = Vec::with_capacity(n);
    let (mut start, mut line) = (0, 1);
    for k in 1..=n {
        let end = if k == n {
            text.len()
        } else {
            let target = (text.len() * k / n).max(start);
            text.as_bytes()[target..].iter().position(|&b| b == b'\n').map_or(text.len(), |p| target + p + 1)
        };
        if end > start || k == n {
            let piece = &text[start..end];
            let newlines = piece.bytes().filter(|&b| b == b'\n').count();
            // A last line without its newline is a line too.
            let lines = newlines + usize::from(!piece.is_empty() && !piece.ends_with('\n'));
            out.push((line, piece, lines));
            line += newlines;
            start = end;
        }
    }
    out
}

/// Parses the lines of one piece, numbered from `first`, into `slots` (one per line); returns
/// the lines refused.
fn parse_lines<'a>(first: usize, piece: &'a str, slots: &mut [Option<ParsedEntry>], opts: &ParseOptions) -> Vec<BadLine<'a>> {
    let mut bad = Vec::new();
    for ((i, raw), slot) in piece.lines().enumerate().zip(slots) {
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        match parse_entry_with(content, opts) {
            Ok(target) => *slot = Some(ParsedEntry { target, kind: opts.kind, at: Locus::Line(first + i) }),
            Err(e) => bad.push((first + i, content, e.to_string())),
        }
    }
    bad
}

/// Empties every slot whose entry an earlier one has (same kind, prefix or name), merging a
/// name's mode into the first; returns how many.
fn drop_duplicates(slots: &mut [Option<ParsedEntry>]) -> usize {
    let key = |e: &Option<ParsedEntry>| e.as_ref().map_or(0, |e| seen_key(e.kind, &e.target));
    let mut seen: HashTable<u32> = HashTable::with_capacity(slots.len());
    let mut duplicates = 0;
    for i in 0..slots.len() {
        let Some(e) = &slots[i] else { continue };
        let hash = seen_key(e.kind, &e.target);
        let all = &*slots;
        let same = |&j: &u32| match (&all[j as usize], &all[i]) {
            (Some(a), Some(b)) => {
                a.kind == b.kind
                    && match (&a.target, &b.target) {
                        (Target::Prefix(x), Target::Prefix(y)) => x == y,
                        (Target::Name(x), Target::Name(y)) => x.name == y.name,
                        _ => false,
                    }
            }
            _ => false,
        };
        let first = match seen.entry(hash, same, |&j| key(&all[j as usize])) {
            hashbrown::hash_table::Entry::Occupied(o) => *o.get() as usize,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(i as u32);
                continue;
            }
        };
        duplicates += 1;
        if let Some(ParsedEntry { target: Target::Name(n), .. }) = slots[i].take()
            && let Some(ParsedEntry { target: Target::Name(f), .. }) = &mut slots[first]
        {
            f.flags |= n.flags;
        }
    }
    duplicates
}

fn summarise(entries: &[ParsedEntry], summary: &mut ListSummary) {
    summary.entries = entries.len();
    let mut v4 = [0usize; 33];
    let mut v6 = [0usize; 129];
    for e in entries {
        if e.kind == ListKind::Allow {
            summary.allow += 1;
        }
        match &e.target {
            Target::Prefix(Prefix::V4 { len, .. }) => v4[*len as usize] += 1,
            Target::Prefix(Prefix::V6 { len, .. }) => v6[*len as usize] += 1,
            Target::Name(n) => {
                summary.names += 1;
                match n.mode() {
                    NameMode::NameOnly => summary.names_self_only += 1,
                    NameMode::SubdomainsOnly => summary.names_below_only += 1,
                    NameMode::NameAndSubdomains => {}
                }
            }
        }
    }
    summary.v4 = v4.iter().sum();
    summary.v6 = v6.iter().sum();
    summary.v4_lengths = v4.iter().enumerate().filter(|(_, n)| **n > 0).map(|(l, n)| (l as u8, *n)).collect();
    summary.v6_lengths = v6.iter().enumerate().filter(|(_, n)| **n > 0).map(|(l, n)| (l as u8, *n)).collect();
}

#[cfg(test)]
mod tests {
    use blocker_common::name::{MATCH_BELOW, MATCH_SELF};

    use super::*;
    use crate::lists::NameEntry;

    fn parse(text: &str) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
        parse_list(Path::new("test.txt"), text, ListKind::Block)
    }

    fn name(n: &str, flags: u32) -> Target {
        Target::Name(NameEntry { name: n.into(), flags })
    }

    /// The one error a one-bad-line file gets, as printed.
    fn error_of(line: &str) -> String {
        let text = format!("example.org\n{line}\n");
        let e = parse(&text).unwrap_err();
        let ListError::Invalid { errors, total, .. } = &e else { panic!("{e}") };
        assert_eq!((*total, &errors[0].at), (1, &Locus::Line(2)), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with("test.txt:2: "), "{msg}");
        msg
    }

    #[test]
    fn comments_blank_lines_and_inline_comments_are_ignored() {
        let (p, s) = parse("# header\n\n192.0.2.1 # a host\n  2001:db8::/32  \nexample.com # a site\n").unwrap();
        assert_eq!(p.iter().map(|e| e.at.line().unwrap()).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(p[2].target, name("example.com", MATCH_SELF | MATCH_BELOW));
        assert_eq!((s.v4, s.v6, s.names, s.entries, s.lines), (1, 1, 1, 3, 5));
    }

    #[test]
    fn a_line_is_an_address_if_it_looks_like_one_and_a_name_otherwise() {
        let (p, _) = parse("192.0.2.0/24\n2001:db8::1\nexample.com\n123.example\n").unwrap();
        assert!(matches!(p[0].target, Target::Prefix(_)));
        assert!(matches!(p[1].target, Target::Prefix(_)));
        assert!(matches!(p[2].target, Target::Name(_)));
        assert!(matches!(p[3].target, Target::Name(_)));
        assert!(error_of("192.0.2.256").contains("not an IPv4 or IPv6 address"));
        assert!(error_of("192.0.2.0/33").contains("longer than /32"));
    }

    #[test]
    fn names_are_stored_normalised() {
        let (p, _) = parse("Example.COM.\n=Bücher.example\n*.WWW.example.net\n").unwrap();
        let targets: Vec<_> = p.into_iter().map(|e| e.target).collect();
        assert_eq!(
            targets,
            vec![
                name("example.com", MATCH_SELF | MATCH_BELOW),
                name("xn--bcher-kva.example", MATCH_SELF),
                name("www.example.net", MATCH_BELOW),
            ]
        );
    }

    #[test]
    fn summary_counts_names_by_mode() {
        let (_, s) = parse("a.example\n=b.example\n=c.example\n*.d.example\n192.0.2.1\n").unwrap();
        assert_eq!((s.entries, s.names, s.names_self_only, s.names_below_only, s.v4), (5, 4, 2, 1, 1));
    }

    #[test]
    fn a_name_in_two_modes_is_one_entry_with_both() {
        let (p, s) = parse("=example.com\n*.example.com\nEXAMPLE.com.\n").unwrap();
        assert_eq!(p, vec![ParsedEntry { target: name("example.com", MATCH_SELF | MATCH_BELOW), kind: ListKind::Block, at: Locus::Line(1) }]);
        assert_eq!((s.names, s.duplicates, s.names_self_only), (1, 2, 0));
    }

    #[test]
    fn a_bad_line_names_file_and_line_and_rejects_the_file() {
        let e = parse("192.0.2.1\nexample.invalid/33\n192.0.2.2\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("test.txt:2:"), "{msg}");
        assert!(msg.contains("nothing from this file was applied"), "{msg}");
    }

    #[test]
    fn every_bad_line_is_reported() {
        let e = parse("exa mple.com\n192.0.2.1\nexample..com\nok.example\n-bad.example\n").unwrap_err();
        let ListError::Invalid { errors, total, .. } = e else { panic!() };
        assert_eq!(total, 3);
        assert_eq!(errors.iter().map(|e| e.at.line().unwrap()).collect::<Vec<_>>(), vec![1, 3, 5]);
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        let label64 = "a".repeat(64);
        let name254 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(62));
        let cases: &[(&str, &str)] = &[
            ("exa mple.com", "contains whitespace"),
            ("example..com", "two dots in a row"),
            (".example.com", "starts with '.'"),
            ("example.com..", "ends with '..'"),
            ("-bad.example", "label \"-bad\" starts with '-'"),
            ("bad-.example", "label \"bad-\" ends with '-'"),
            ("*.*.example", "'*' is only allowed as the whole first label"),
            ("ex*ample.com", "'*' is only allowed as the whole first label"),
            ("=*.example.com", "cannot be combined"),
            ("http://example.com", "a URL, not a host name: write the host name alone (example.com)"),
            ("https://user@example.com:8443/x", "(example.com)"),
            ("example.com/path", "a path is not part of a host name"),
            ("example.com:443", "a port is not part of a host name"),
            (&format!("{label64}.example"), "is 64 bytes; a label has at most 63"),
            (&name254, "the name is 254 bytes; a name has at most 253"),
            ("xn--zz.example", "label \"xn--zz\" is not a valid A-label"),
            ("exa$mple.com", "character '$' in label \"exa$mple\" is not allowed"),
            ("host.42", "the last label \"42\" is all digits"),
            ("com", "would block a whole top-level domain"),
            ("=192.0.2.1", "apply to names"),
        ];
        for (line, reason) in cases {
            let msg = error_of(line);
            assert!(msg.contains(reason), "{line:?}: expected {reason:?} in {msg:?}");
        }
    }

    #[test]
    fn whatever_parses_as_a_prefix_looks_like_an_address() {
        for t in ["192.0.2.1", "192.0.2.0/24", "::", "::1", "::ffff:192.0.2.1", "2001:DB8::/32", "0.0.0.0/0", "fe80::1%eth0", "1::2::3", "a:b"] {
            assert!(parse_prefix(t).is_err() || looks_like_address(t), "{t}");
        }
        assert!(!looks_like_address("example.com") && !looks_like_address("") && looks_like_address("1.2.3.256"));
    }

    #[test]
    fn a_large_text_parsed_in_pieces_reads_as_if_line_by_line() {
        // Lines of every kind, long enough to be cut into pieces; duplicates and errors across
        // the cuts, CRLF line ends, and no newline at the end.
        let mut text = String::new();
        for i in 0..100_000 {
            match i % 6 {
                0 => text.push_str(&format!("n{}.example # c\r\n", i % 5000)),
                1 => text.push_str(&format!("=n{}.example\n", i % 7000)),
                2 => text.push_str(&format!("10.{}.{}.0/24\n", i % 200, i % 250)),
                3 => text.push_str("\n# comment only\n"),
                4 if i % 1000 == 4 => text.push_str(&format!("bad..{i}.example\n")),
                _ => text.push_str(&format!("2001:db8::{:x}\n", i % 3000)),
            }
        }
        text.push_str("last.example");
        assert!(text.len() > 1 << 20);
        let one_by_one = |text: &str| {
            let mut c = Collector::new();
            let mut lines = 0;
            for (i, raw) in text.lines().enumerate() {
                lines = i + 1;
                let content = raw.split('#').next().unwrap_or("").trim();
                if !content.is_empty() {
                    match parse_entry_with(content, &ParseOptions::new(ListKind::Block)) {
                        Ok(t) => c.accept(Locus::Line(i + 1), ListKind::Block, t),
                        Err(e) => c.reject(Locus::Line(i + 1), content, e.to_string()),
                    }
                }
            }
            c.set_lines(lines);
            c.finish(Path::new("t"))
        };
        let good = text.replace("bad..", "good.");
        for t in [&text, &good] {
            let got = parse_list(Path::new("t"), t, ListKind::Block);
            match (got, one_by_one(t)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{:?} against {:?}", a.map(|x| x.1), b.map(|x| x.1)),
            }
        }
        for n in [1, 2, 3, 7] {
            let p = pieces(&good, n);
            assert_eq!(p.iter().map(|x| x.1).collect::<String>(), good);
            let starts: Vec<usize> = p.iter().map(|x| x.0).collect();
            let mut line = 1;
            for (i, (first, piece, lines)) in p.iter().enumerate() {
                assert_eq!(*first, line, "piece {i}");
                assert_eq!(*lines, piece.lines().count(), "piece {i}");
                line += piece.matches('\n').count();
            }
            assert_eq!(starts.len(), n);
        }
    }

    #[test]
    fn the_ipv4_fast_path_reads_what_parse_prefix_reads() {
        let mut texts: Vec<String> = Vec::new();
        for a in ["0", "1", "01", "9", "10", "99", "100", "255", "256", "300", "000", "1000", "", "a"] {
            for len in ["", "/0", "/8", "/24", "/024", "/32", "/33", "/", "/x", "/08", "/00"] {
                texts.push(format!("{a}.0.0.0{len}"));
                texts.push(format!("192.0.{a}.1{len}"));
                texts.push(format!("10.{a}.0.0{len}"));
            }
        }
        texts.extend(["1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.4.", ".1.2.3.4", "1.2.3.4/1/2", "203.0.113.0/24", "203.0.113.1/24"].map(String::from));
        let mut fast = 0;
        for t in &texts {
            if let Some(p) = plain_v4(t) {
                fast += 1;
                assert_eq!(parse_prefix(t), Ok(p), "{t}");
            }
            // The entry, whichever way it is read, is the same (or the same error).
            assert_eq!(parse_address_entry(t, ListKind::Block), parse_prefix(t).and_then(|p| check_breadth(p, ListKind::Block)).map(Target::Prefix).map_err(EntryError::Address), "{t}");
        }
        assert!(fast > 50, "{fast}");
    }

    #[test]
    fn duplicates_are_counted_once() {
        let (p, s) = parse("192.0.2.1\n192.0.2.1/32\n").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(s.duplicates, 1);
    }

    #[test]
    fn over_broad_block_entries_are_refused_but_allowed_in_allow_lists() {
        assert!(parse("10.0.0.0/7\n").is_err());
        assert!(parse("2001::/15\n").is_err());
        assert!(parse("10.0.0.0/8\n").is_ok());
        assert!(parse("com\n").is_err());
        let allow = |t: &str| parse_list(Path::new("a"), t, ListKind::Allow);
        assert!(allow("0.0.0.0/0\n").is_ok());
        assert!(allow("local\n*.internal\n").is_ok());
    }
}
