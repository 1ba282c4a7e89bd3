//! The text list format and the set of entries the datapath installs.
//!
//! Format: one IPv4/IPv6 address or CIDR per line; `#` starts a comment (whole line, or after
//! the entry); blank lines are ignored. Any invalid line rejects the whole file.

use std::{
    collections::HashSet,
    net::IpAddr,
    path::{Path, PathBuf},
};

use super::{
    error::{LineError, ListError, MAX_REPORTED},
    prefix::{MIN_BLOCK_LEN_V4, MIN_BLOCK_LEN_V6, Prefix, parse_prefix},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    Block,
    Allow,
}

/// One accepted entry. `id` is what the kernel stores and counts by; it names the entry
/// (source and line) without the kernel holding the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: u32,
    pub kind: ListKind,
    pub prefix: Prefix,
    pub source: PathBuf,
    pub line: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ListSummary {
    pub lines: usize,
    pub entries: usize,
    pub v4: usize,
    pub v6: usize,
    pub duplicates: usize,
    /// Count of entries per prefix length, v4 then v6, only lengths present.
    pub v4_lengths: Vec<(u8, usize)>,
    pub v6_lengths: Vec<(u8, usize)>,
}

/// Parses list text. `path` only names the source in messages.
pub fn parse_list(path: &Path, text: &str, kind: ListKind) -> Result<(Vec<(Prefix, usize)>, ListSummary), ListError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    let mut total_errors = 0;
    let mut summary = ListSummary::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        summary.lines = line_no;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let result = parse_prefix(content).and_then(|p| check_breadth(p, kind));
        match result {
            Ok(p) => {
                if seen.insert(p) {
                    out.push((p, line_no));
                } else {
                    summary.duplicates += 1;
                }
            }
            Err(reason) => {
                total_errors += 1;
                if errors.len() < MAX_REPORTED {
                    errors.push(LineError { line: line_no, text: content.to_string(), reason });
                }
            }
        }
    }
    if total_errors > 0 {
        return Err(ListError::Invalid { path: path.to_path_buf(), errors, total: total_errors });
    }
    summary.entries = out.len();
    let mut v4 = [0usize; 33];
    let mut v6 = [0usize; 129];
    for (p, _) in &out {
        match p {
            Prefix::V4 { len, .. } => v4[*len as usize] += 1,
            Prefix::V6 { len, .. } => v6[*len as usize] += 1,
        }
    }
    summary.v4 = v4.iter().sum();
    summary.v6 = v6.iter().sum();
    summary.v4_lengths = v4.iter().enumerate().filter(|(_, n)| **n > 0).map(|(l, n)| (l as u8, *n)).collect();
    summary.v6_lengths = v6.iter().enumerate().filter(|(_, n)| **n > 0).map(|(l, n)| (l as u8, *n)).collect();
    Ok((out, summary))
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

/// Reads and parses one list file.
pub fn load_list(path: &Path, kind: ListKind) -> Result<(Vec<(Prefix, usize)>, ListSummary), ListError> {
    let text = std::fs::read_to_string(path).map_err(|source| ListError::Io { path: path.to_path_buf(), source })?;
    parse_list(path, &text, kind)
}

/// Everything the datapath should enforce: block and allow entries with their ids.
#[derive(Clone, Debug, Default)]
pub struct ListSet {
    entries: Vec<Entry>,
}

impl ListSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a file into the set. On error the set is unchanged.
    pub fn add_file(&mut self, path: &Path, kind: ListKind) -> Result<ListSummary, ListError> {
        let (prefixes, summary) = load_list(path, kind)?;
        self.add_parsed(path, kind, prefixes);
        Ok(summary)
    }

    pub fn add_parsed(&mut self, source: &Path, kind: ListKind, prefixes: Vec<(Prefix, usize)>) {
        for (prefix, line) in prefixes {
            let id = self.entries.len() as u32 + 1;
            self.entries.push(Entry { id, kind, prefix, source: source.to_path_buf(), line });
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn block(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind == ListKind::Block)
    }

    pub fn allow(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind == ListKind::Allow)
    }

    pub fn entry(&self, id: u32) -> Option<&Entry> {
        id.checked_sub(1).and_then(|i| self.entries.get(i as usize))
    }

    /// The most specific entry of `kind` covering `ip`, as the kernel's LPM lookup finds it.
    pub fn longest_match(&self, ip: IpAddr, kind: ListKind) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.kind == kind && e.prefix.contains(ip))
            .max_by_key(|e| e.prefix.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Vec<(Prefix, usize)>, ListSummary), ListError> {
        parse_list(Path::new("test.txt"), text, ListKind::Block)
    }

    #[test]
    fn comments_blank_lines_and_inline_comments_are_ignored() {
        let (p, s) = parse("# header\n\n192.0.2.1 # a host\n  2001:db8::/32  \n").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].1, 3);
        assert_eq!(p[1].1, 4);
        assert_eq!((s.v4, s.v6, s.lines), (1, 1, 4));
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
        let e = parse("x\n192.0.2.1\ny\n").unwrap_err();
        let ListError::Invalid { errors, total, .. } = e else { panic!() };
        assert_eq!(total, 2);
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn duplicates_are_counted_once() {
        let (p, s) = parse("192.0.2.1\n192.0.2.1/32\n").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(s.duplicates, 1);
    }

    #[test]
    fn over_broad_block_prefixes_are_refused_but_allowed_in_allow_lists() {
        assert!(parse("10.0.0.0/7\n").is_err());
        assert!(parse("2001::/15\n").is_err());
        assert!(parse("10.0.0.0/8\n").is_ok());
        assert!(parse_list(Path::new("a"), "0.0.0.0/0\n", ListKind::Allow).is_ok());
    }

    #[test]
    fn longest_match_picks_the_most_specific_entry() {
        let mut set = ListSet::new();
        let (p, _) = parse("203.0.113.0/24\n203.0.113.64/26\n").unwrap();
        set.add_parsed(Path::new("l"), ListKind::Block, p);
        let e = set.longest_match("203.0.113.66".parse().unwrap(), ListKind::Block).unwrap();
        assert_eq!(e.prefix.len(), 26);
        assert_eq!(set.entry(e.id).unwrap(), e);
        assert!(set.longest_match("198.51.100.1".parse().unwrap(), ListKind::Block).is_none());
    }
}
