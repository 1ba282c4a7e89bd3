//! Name entries: their syntax, normalisation to the A-label form the wire carries, and validation.
//!
//! A list line that is not an address or CIDR is a name, written in one of three modes:
//!
//! | line            | matches                                  | kernel flags               |
//! |-----------------|------------------------------------------|----------------------------|
//! | `example.com`   | `example.com` and every name below it    | `MATCH_SELF \| MATCH_BELOW` |
//! | `=example.com`  | `example.com` only                       | `MATCH_SELF`               |
//! | `*.example.com` | names below `example.com`, not itself    | `MATCH_BELOW`              |
//!
//! The bare form means "and subdomains" because that is what a list body means by a domain.
//! `*` is only a mode marker: `*` anywhere else (`ex*ample.com`, `*.*.example.com`, `a.*.com`) is an
//! error, as is `=` anywhere but first, and `=*.` (the two modes exclude each other).
//!
//! Normalisation: the trimmed text is lowercased, ONE trailing dot (the root) is removed, and the
//! name goes through UTS 46 ToASCII (the `idna` crate, non-transitional: `ß` stays `ß`), so
//! `Bücher.Example.` becomes `xn--bcher-kva.example` and an `xn--` label must be valid punycode of a
//! valid label. The result must then be a host name as the wire carries it:
//! - at most 253 bytes, labels of 1..=63 bytes (no `a..b`, no leading dot, no `example.com..`);
//! - labels of `a-z`, `0-9`, `-` and `_` only (underscore for service names such as `_dmarc`);
//! - no label starting or ending with `-` (`--` inside is allowed: real CDN hosts such as
//!   `r3---sn-abc.googlevideo.com` have it, and `xn--` labels are checked by idna instead);
//! - a last label that is not all digits (no top-level domain is numeric; it is a broken address).
//!
//! URLs (`http://example.com`), paths (`example.com/foo`), ports (`example.com:443`) and spaces are
//! refused with a message saying what to write instead, never cut down silently: a list that says
//! more than a host name was probably meant for another tool.

use std::fmt;

use blocker_common::name::{MATCH_BELOW, MATCH_SELF, MAX_LABEL_LEN, MAX_NAME_LEN};
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

use super::entry::ListKind;

/// How much of the tree below a listed name an entry covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameMode {
    /// `example.com`
    NameAndSubdomains,
    /// `=example.com`
    NameOnly,
    /// `*.example.com`
    SubdomainsOnly,
}

impl NameMode {
    pub fn flags(self) -> u32 {
        match self {
            NameMode::NameAndSubdomains => MATCH_SELF | MATCH_BELOW,
            NameMode::NameOnly => MATCH_SELF,
            NameMode::SubdomainsOnly => MATCH_BELOW,
        }
    }

    /// The mode of a flag set; `None` for flags that match nothing (never produced by parsing).
    pub fn from_flags(flags: u32) -> Option<NameMode> {
        match (flags & MATCH_SELF != 0, flags & MATCH_BELOW != 0) {
            (true, true) => Some(NameMode::NameAndSubdomains),
            (true, false) => Some(NameMode::NameOnly),
            (false, true) => Some(NameMode::SubdomainsOnly),
            (false, false) => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            NameMode::NameAndSubdomains => "name and subdomains",
            NameMode::NameOnly => "this name only",
            NameMode::SubdomainsOnly => "subdomains only",
        }
    }
}

/// A listed name: normalised A-label form, and `MATCH_SELF | MATCH_BELOW` flags as the kernel
/// stores them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameEntry {
    pub name: String,
    pub flags: u32,
}

impl NameEntry {
    pub fn mode(&self) -> NameMode {
        NameMode::from_flags(self.flags).expect("a parsed name entry matches something")
    }

    pub fn matches_self(&self) -> bool {
        self.flags & MATCH_SELF != 0
    }

    pub fn matches_below(&self) -> bool {
        self.flags & MATCH_BELOW != 0
    }

    /// The name with its A-labels decoded (`bücher.example`), when it has any, for people.
    pub fn unicode(&self) -> Option<String> {
        to_unicode(&self.name)
    }
}

/// The entry in list syntax: `example.com`, `=example.com` or `*.example.com`.
impl fmt::Display for NameEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NameMode::from_flags(self.flags) {
            Some(NameMode::NameOnly) => write!(f, "={}", self.name),
            Some(NameMode::SubdomainsOnly) => write!(f, "*.{}", self.name),
            _ => write!(f, "{}", self.name),
        }
    }
}

/// Where an empty label sits, to say which typo it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyAt {
    Start,
    Inside,
    End,
}

/// Why a name entry (or a name query) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("contains whitespace: one entry per line (a comment starts with '#')")]
    Whitespace,
    #[error("a URL, not a host name: write the host name alone{}", suggest(host))]
    Url { host: String },
    #[error("contains '/': a path is not part of a host name; write the host name alone{}", suggest(host))]
    Path { host: String },
    #[error("contains ':': a port is not part of a host name; write the host name alone{}", suggest(host))]
    Port { host: String },
    #[error("an address in brackets, as a URL writes it: write the address alone{}", suggest(addr))]
    Bracketed { addr: String },
    #[error("'*' is only allowed as the whole first label, as in '*.example.com' (subdomains only)")]
    Wildcard,
    #[error("'=' is only allowed as the first character, as in '=example.com' (this name only)")]
    MisplacedEquals,
    #[error("'=' (this name only) and '*.' (subdomains only) cannot be combined")]
    ModeConflict,
    #[error("'=' and '*.' apply to names; an address or CIDR is written alone")]
    ModeOnAddress,
    #[error("{}", match at {
        EmptyAt::Start => "empty label: the name starts with '.'",
        EmptyAt::Inside => "empty label: two dots in a row",
        EmptyAt::End => "empty label: the name ends with '..' (only one trailing dot, the root, is ignored)",
    })]
    EmptyLabel { at: EmptyAt },
    #[error("label {label:?} is {len} bytes; a label has at most 63")]
    LabelTooLong { label: String, len: usize },
    #[error("the name is {len} bytes; a name has at most 253")]
    TooLong { len: usize },
    #[error(
        "character {ch:?} in label {label:?} is not allowed: labels hold only a-z, 0-9, '-' and '_'"
    )]
    BadChar { ch: char, label: String },
    #[error("label {label:?} starts with '-'")]
    LeadingHyphen { label: String },
    #[error("label {label:?} ends with '-'")]
    TrailingHyphen { label: String },
    #[error("the last label {label:?} is all digits: no top-level domain is numeric (a mistyped address?)")]
    NumericTld { label: String },
    #[error("{}", idn_reason(label.as_deref()))]
    Idn { label: Option<String> },
    #[error(
        "{name:?} is a single label: with its subdomains it would block a whole top-level domain; \
         refused in block lists (write ={name} for the name alone)"
    )]
    SingleLabel { name: String },
    #[error("*.{name} matches nothing: any name below this {len}-byte name is longer than 253 bytes")]
    NothingBelow { name: String, len: usize },
}

fn suggest(host: &str) -> String {
    if host.is_empty() { String::new() } else { format!(" ({host})") }
}

fn idn_reason(label: Option<&str>) -> String {
    match label {
        // `get`: byte 4 may fall inside a multi-byte character (found by fuzzing: `o7ﻷ`).
        Some(l) if l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--")) => {
            format!("label {l:?} is not a valid A-label: it is not punycode of a valid internationalised label")
        }
        Some(l) => format!(
            "label {l:?} is not a valid internationalised label (UTS 46: a disallowed character, \
             joiner or normalisation)"
        ),
        None => "not a valid internationalised name (UTS 46 rules across labels, such as bidi)".to_string(),
    }
}

/// Parses one name line (already trimmed, comment removed) in its mode syntax. A bare name
/// covers its subdomains when `subdomains` is set (the list's default), else only itself.
pub fn parse_name_entry(text: &str, kind: ListKind, subdomains: bool) -> Result<NameEntry, NameError> {
    let (mode, rest) = if let Some(rest) = text.strip_prefix('=') {
        if rest.starts_with("*.") {
            return Err(NameError::ModeConflict);
        }
        (NameMode::NameOnly, rest)
    } else if let Some(rest) = text.strip_prefix("*.") {
        (NameMode::SubdomainsOnly, rest)
    } else if subdomains {
        (NameMode::NameAndSubdomains, text)
    } else {
        (NameMode::NameOnly, text)
    };
    let name = match plain_name(rest) {
        // Neither '*' nor '=' in it, nor only digits and dots (its last label would be numeric).
        Some(name) => name.to_owned(),
        None => {
            if rest.contains('*') {
                return Err(NameError::Wildcard);
            }
            if rest.contains('=') {
                return Err(NameError::MisplacedEquals);
            }
            if rest.len() != text.len() && super::parse::looks_like_address(rest) {
                return Err(NameError::ModeOnAddress);
            }
            normalise_name(rest)?
        }
    };
    // A bare or starred single label covers a whole TLD: in a block list that is an accident
    // (a stray `com` line), in an allow list it is a deliberate exemption.
    if kind == ListKind::Block && mode != NameMode::NameOnly && !name.contains('.') {
        return Err(NameError::SingleLabel { name });
    }
    if mode == NameMode::SubdomainsOnly && name.len() > MAX_NAME_LEN - 2 {
        let len = name.len();
        return Err(NameError::NothingBelow { name, len });
    }
    Ok(NameEntry { name, flags: mode.flags() })
}

/// Normalises a listed name (no mode marker) to lowercase A-labels without the root dot, and
/// checks it is a host name.
pub fn normalise_name(text: &str) -> Result<String, NameError> {
    let text = text.trim();
    if let Some(name) = plain_name(text) {
        return Ok(name.to_owned());
    }
    normalise_slowly(text)
}

/// `normalise_name` without the fast path for names that need no change.
fn normalise_slowly(text: &str) -> Result<String, NameError> {
    reject_non_host(text)?;
    let name = strip_root_dot(text);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    // Before idna, so `a..b` is reported as such rather than as whatever idna makes of it;
    // lengths only after, since they count A-label bytes.
    check_no_empty_label(name)?;
    // Most listed names are already what ToASCII would make of them: lowercase ASCII letters,
    // digits, '-', '_' and dots, no `xn--` label to check as punycode. UTS 46 maps each of these
    // characters to itself (with hyphens allowed, no ASCII deny list and no length checks, as
    // `to_a_labels` calls it) and checks nothing on such a name, so it is skipped; every check
    // below is still made.
    let name = if is_plain_ascii(name) { name.to_owned() } else { to_a_labels(&name.to_ascii_lowercase())? };
    check_structure(&name)?;
    check_host_labels(&name)?;
    Ok(name)
}

/// Normalises a name being looked up the way the kernel sees a name on the wire: lowercase ASCII,
/// one trailing dot removed. No IDN processing for ASCII, since the wire already carries A-labels
/// (an invalid `xn--` label is still a name the kernel would hash), but non-ASCII text is
/// converted so a person can ask about `bücher.example`. Characters are not restricted: a listed
/// `example.com` matches `a*b.example.com` in the kernel too.
pub fn normalise_query(text: &str) -> Result<String, NameError> {
    let text = text.trim();
    reject_non_host(text)?;
    let name = strip_root_dot(text);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let name = if name.is_ascii() { name.to_ascii_lowercase() } else { to_a_labels(name)? };
    check_structure(&name)?;
    Ok(name)
}

/// The U-label form of a name with A-labels, if it has any and they decode.
pub fn to_unicode(name: &str) -> Option<String> {
    if !name.split('.').any(|l| l.starts_with("xn--")) {
        return None;
    }
    match idna::domain_to_unicode(name) {
        (u, Ok(())) => Some(u),
        _ => None,
    }
}

fn strip_root_dot(text: &str) -> &str {
    text.strip_suffix('.').unwrap_or(text)
}

/// Things people paste from a browser or a config file: refused with what to write instead.
fn reject_non_host(text: &str) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.chars().any(char::is_whitespace) {
        return Err(NameError::Whitespace);
    }
    if let Some((_, rest)) = text.split_once("://") {
        let host = rest.split(['/', ':', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        return Err(NameError::Url { host: host.to_string() });
    }
    if let Some(rest) = text.strip_prefix('[') {
        let addr = rest.split(']').next().unwrap_or(rest);
        return Err(NameError::Bracketed { addr: addr.to_string() });
    }
    if let Some((host, _)) = text.split_once('/') {
        return Err(NameError::Path { host: host.to_string() });
    }
    if let Some((host, _)) = text.split_once(':') {
        return Err(NameError::Port { host: host.to_string() });
    }
    Ok(())
}

/// The name (without its root dot) if `text` is a valid listed name as it stands: made of
/// `a-z 0-9 - _` labels of 1 to 63 bytes, none starting or ending with '-' or starting with
/// `xn--`, the last not all digits, at most 253 bytes. Such a text is what `normalise_slowly`
/// would make of it (UTS 46 ToASCII leaves it as it is, see `is_plain_ascii`, and it passes every
/// check after), in one pass over its bytes; anything else (upper case, IDNs, A-labels, every
/// error) goes the slow way, which says what is wrong.
fn plain_name(text: &str) -> Option<&str> {
    let name = text.strip_suffix('.').unwrap_or(text);
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return None;
    }
    let mut start = 0;
    loop {
        let end = b[start..].iter().position(|&c| c == b'.').map_or(b.len(), |p| start + p);
        let label = &b[start..end];
        let (first, last) = (*label.first()?, *label.last()?);
        if label.len() > MAX_LABEL_LEN
            || first == b'-'
            || last == b'-'
            || label.starts_with(b"xn--")
            || !label.iter().all(|&c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
        {
            return None;
        }
        if end == b.len() {
            return (!label.iter().all(u8::is_ascii_digit)).then_some(name);
        }
        start = end + 1;
    }
}

/// Only `a-z 0-9 - _ .`, and no label starting with `xn--`: a name UTS 46 ToASCII leaves as it
/// is.
fn is_plain_ascii(name: &str) -> bool {
    name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.')) && !name.split('.').any(|l| l.starts_with("xn--"))
}

fn check_no_empty_label(name: &str) -> Result<(), NameError> {
    match name.split('.').position(|l| l.is_empty()) {
        None => Ok(()),
        Some(0) => Err(NameError::EmptyLabel { at: EmptyAt::Start }),
        Some(i) if i == name.split('.').count() - 1 => Err(NameError::EmptyLabel { at: EmptyAt::End }),
        Some(_) => Err(NameError::EmptyLabel { at: EmptyAt::Inside }),
    }
}

/// Label and name lengths, and no empty label. `name` has no root dot.
fn check_structure(name: &str) -> Result<(), NameError> {
    check_no_empty_label(name)?;
    for label in name.split('.') {
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong { label: label.to_string(), len: label.len() });
        }
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    Ok(())
}

/// The character and hyphen rules of a listed host name (A-label form).
fn check_host_labels(name: &str) -> Result<(), NameError> {
    for label in name.split('.') {
        if let Some(ch) = label.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_')) {
            return Err(NameError::BadChar { ch, label: label.to_string() });
        }
        if label.starts_with('-') {
            return Err(NameError::LeadingHyphen { label: label.to_string() });
        }
        if label.ends_with('-') {
            return Err(NameError::TrailingHyphen { label: label.to_string() });
        }
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::NumericTld { label: last.to_string() });
    }
    Ok(())
}

/// UTS 46 ToASCII. ASCII deny list, hyphen and length checks are off here because
/// `check_host_labels` and `check_structure` make them with precise messages (and allow `_`).
fn to_a_labels(name: &str) -> Result<String, NameError> {
    let convert = |s: &str| {
        Uts46::new()
            .to_ascii(s.as_bytes(), AsciiDenyList::EMPTY, Hyphens::Allow, DnsLength::Ignore)
            .map(|a| a.into_owned())
    };
    convert(name).map_err(|_| {
        // idna says only that the name failed; find the label to name it. UTS 46 also splits
        // on the ideographic and full-width full stops.
        let label = name.split(['.', '\u{3002}', '\u{ff0e}', '\u{ff61}']).find(|l| convert(l).is_err());
        NameError::Idn { label: label.map(str::to_string) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> Result<NameEntry, NameError> {
        parse_name_entry(text, ListKind::Block, true)
    }

    fn name(text: &str) -> String {
        normalise_name(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn names_are_lowercased_and_lose_one_trailing_dot() {
        assert_eq!(name("Example.COM."), "example.com");
        assert_eq!(name("www.example.com"), "www.example.com");
        assert_eq!(normalise_name("example.com..").unwrap_err(), NameError::EmptyLabel { at: EmptyAt::End });
    }

    #[test]
    fn internationalised_names_become_a_labels() {
        assert_eq!(name("bücher.example"), "xn--bcher-kva.example");
        assert_eq!(name("Bücher.Example."), "xn--bcher-kva.example");
        assert_eq!(name("XN--BCHER-KVA.example"), "xn--bcher-kva.example");
        assert_eq!(name("例え.テスト"), "xn--r8jz45g.xn--zckzah");
        // Non-transitional: ß is its own letter, not "ss".
        assert_eq!(name("straße.de"), "xn--strae-oqa.de");
        // UTS 46 maps full-width forms and the ideographic full stop.
        assert_eq!(name("ｅｘａｍｐｌｅ。com"), "example.com");
    }

    #[test]
    fn invalid_internationalised_names_are_refused() {
        let e = normalise_name("xn--zz.example").unwrap_err();
        assert_eq!(e, NameError::Idn { label: Some("xn--zz".into()) });
        assert!(e.to_string().contains("not a valid A-label"), "{e}");
        assert!(normalise_name("xn--bcher-kva-.example").is_err());
        // A zero-width joiner outside the contexts that allow it.
        let e = normalise_name("a\u{200d}b.example").unwrap_err();
        assert!(matches!(e, NameError::Idn { label: Some(_) }), "{e}");
    }

    #[test]
    fn service_labels_and_inner_hyphens_are_host_names() {
        assert_eq!(name("_dmarc.example.com"), "_dmarc.example.com");
        assert_eq!(name("r3---sn-abc.googlevideo.com"), "r3---sn-abc.googlevideo.com");
        assert_eq!(name("a-b.example"), "a-b.example");
    }

    #[test]
    fn length_limits_are_counted_in_a_label_bytes() {
        let label63 = "a".repeat(63);
        assert_eq!(name(&format!("{label63}.example")), format!("{label63}.example"));
        let label64 = "a".repeat(64);
        let e = normalise_name(&format!("{label64}.example")).unwrap_err();
        assert_eq!(e, NameError::LabelTooLong { label: label64, len: 64 });
        assert!(e.to_string().contains("64 bytes; a label has at most 63"), "{e}");

        // Four labels of 63, 63, 63 and 61 bytes with three dots: 253 bytes.
        let n253 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        assert_eq!(n253.len(), 253);
        assert_eq!(name(&n253), n253);
        assert_eq!(name(&format!("{n253}.")), n253, "the root dot does not count");
        let n254 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(62));
        assert_eq!(normalise_name(&n254).unwrap_err(), NameError::TooLong { len: 254 });

        // Limits count A-label bytes, not the UTF-8 as written: 57 × "ü" is 114 bytes of UTF-8
        // and a 63-byte A-label; 58 × "ü" makes a 64-byte one.
        let ue57 = name(&format!("{}.example", "ü".repeat(57)));
        assert_eq!(ue57.split('.').next().unwrap().len(), 63);
        let ue58 = format!("{}.example", "ü".repeat(58));
        assert!(matches!(normalise_name(&ue58), Err(NameError::LabelTooLong { len: 64, .. })));
    }

    #[test]
    fn empty_labels_are_refused_with_where_they_are() {
        assert_eq!(normalise_name("example..com").unwrap_err(), NameError::EmptyLabel { at: EmptyAt::Inside });
        assert_eq!(normalise_name(".example.com").unwrap_err(), NameError::EmptyLabel { at: EmptyAt::Start });
        assert_eq!(normalise_name(".").unwrap_err(), NameError::Empty);
    }

    #[test]
    fn hyphens_may_not_start_or_end_a_label() {
        assert_eq!(
            normalise_name("-bad.example").unwrap_err(),
            NameError::LeadingHyphen { label: "-bad".into() }
        );
        assert_eq!(
            normalise_name("bad-.example").unwrap_err(),
            NameError::TrailingHyphen { label: "bad-".into() }
        );
    }

    #[test]
    fn only_host_name_characters_are_allowed() {
        let e = normalise_name("exa$mple.com").unwrap_err();
        assert_eq!(e, NameError::BadChar { ch: '$', label: "exa$mple".into() });
        assert!(normalise_name("a,b.example").is_err());
        assert!(normalise_name("a@b.example").is_err());
    }

    #[test]
    fn urls_paths_ports_and_spaces_say_what_to_write() {
        let e = normalise_name("http://example.com/x").unwrap_err();
        assert_eq!(e, NameError::Url { host: "example.com".into() });
        assert!(e.to_string().contains("write the host name alone (example.com)"), "{e}");
        let e = normalise_name("example.com/path").unwrap_err();
        assert!(e.to_string().contains("path") && e.to_string().contains("(example.com)"), "{e}");
        let e = normalise_name("example.com:443").unwrap_err();
        assert!(e.to_string().contains("port") && e.to_string().contains("(example.com)"), "{e}");
        assert_eq!(normalise_name("exa mple.com").unwrap_err(), NameError::Whitespace);
        for bracketed in ["[2001:db8::1]", "[2001:db8::1]:443"] {
            let e = normalise_name(bracketed).unwrap_err();
            assert_eq!(e, NameError::Bracketed { addr: "2001:db8::1".into() });
            assert!(e.to_string().ends_with("write the address alone (2001:db8::1)"), "{e}");
        }
    }

    #[test]
    fn a_numeric_last_label_is_not_a_host_name() {
        assert_eq!(normalise_name("host.123").unwrap_err(), NameError::NumericTld { label: "123".into() });
        assert_eq!(name("123.example"), "123.example");
    }

    #[test]
    fn modes_set_the_kernel_flags() {
        assert_eq!(block("example.com").unwrap().flags, MATCH_SELF | MATCH_BELOW);
        assert_eq!(block("=example.com").unwrap().flags, MATCH_SELF);
        assert_eq!(block("*.example.com").unwrap().flags, MATCH_BELOW);
        assert_eq!(block("*.Example.COM.").unwrap(), NameEntry { name: "example.com".into(), flags: MATCH_BELOW });
    }

    #[test]
    fn entries_print_in_list_syntax() {
        for text in ["example.com", "=example.com", "*.example.com"] {
            assert_eq!(block(text).unwrap().to_string(), text);
        }
        assert_eq!(block("=bücher.example").unwrap().to_string(), "=xn--bcher-kva.example");
        assert_eq!(block("bücher.example").unwrap().unicode().as_deref(), Some("bücher.example"));
        assert_eq!(block("example.com").unwrap().unicode(), None);
    }

    #[test]
    fn a_star_is_only_a_whole_first_label() {
        for bad in ["*.*.example", "ex*ample.com", "a.*.example", "*example.com", "*", "example.*"] {
            assert_eq!(block(bad).unwrap_err(), NameError::Wildcard, "{bad}");
        }
        assert_eq!(block("=*.example.com").unwrap_err(), NameError::ModeConflict);
        assert_eq!(block("*.=example.com").unwrap_err(), NameError::MisplacedEquals);
        assert_eq!(block("==example.com").unwrap_err(), NameError::MisplacedEquals);
        assert_eq!(block("=192.0.2.1").unwrap_err(), NameError::ModeOnAddress);
    }

    #[test]
    fn a_single_label_covering_a_tld_is_refused_in_block_lists_only() {
        let e = block("com").unwrap_err();
        assert_eq!(e, NameError::SingleLabel { name: "com".into() });
        assert!(e.to_string().contains("whole top-level domain"), "{e}");
        assert!(block("*.com").is_err());
        assert_eq!(block("=com").unwrap().flags, MATCH_SELF, "the name alone blocks no TLD");
        assert!(parse_name_entry("com", ListKind::Allow, true).is_ok());
        assert!(parse_name_entry("*.local", ListKind::Allow, true).is_ok());
    }

    #[test]
    fn subdomains_of_a_name_too_long_to_have_any_are_refused() {
        let n252 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(60));
        assert!(matches!(block(&format!("*.{n252}")), Err(NameError::NothingBelow { len: 252, .. })));
        assert!(block(&n252).is_ok(), "the name itself still matches");
    }

    #[test]
    fn the_plain_ascii_fast_path_gives_what_uts_46_gives() {
        // Every name over a small alphabet with the characters the fast path takes, up to four
        // characters with dots in every place: the fast path must agree with ToASCII on each
        // (same result, or ToASCII refusing a name the checks after it refuse too).
        let alphabet = ['a', 'z', '0', '9', '-', '_', '.', 'x', 'n', 'A', '*', '='];
        let mut names = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = names.iter().flat_map(|n| alphabet.iter().map(move |c| format!("{n}{c}"))).collect();
            names.extend(longer);
        }
        names.extend(["xn--bcher-kva.example", "a.xn--zz", "xn-a.example", "r3---sn-abc.googlevideo.com", "_dmarc.example.com", "1.2.3.4"].map(String::from));
        let mut fast = 0;
        for n in names.iter().filter(|n| !n.is_empty() && check_no_empty_label(n).is_ok()) {
            if !is_plain_ascii(n) {
                continue;
            }
            fast += 1;
            match to_a_labels(n) {
                Ok(a) => assert_eq!(&a, n, "ToASCII changes {n:?}"),
                Err(e) => assert!(check_structure(n).and_then(|_| check_host_labels(n)).is_err(), "ToASCII refuses {n:?} ({e}), the fast path not"),
            }
        }
        assert!(fast > 5000, "{fast}");
        // And the one-pass fast path agrees with the slow one on every such text, with a
        // trailing dot or without, and with the mode markers of an entry.
        let long = |n: usize| format!("{}.example", "a".repeat(n));
        let n253 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        let mut texts: Vec<String> = names.iter().flat_map(|n| [n.clone(), format!("{n}.")]).collect();
        texts.extend([long(63), long(64), n253.clone(), format!("{n253}."), format!("{n253}a"), "a.b..".into(), "..".into()]);
        let mut accepted = 0;
        for t in &texts {
            let slow = normalise_slowly(t.trim());
            match plain_name(t) {
                Some(n) => {
                    accepted += 1;
                    assert_eq!(slow.as_deref(), Ok(n), "{t:?}");
                }
                None => assert!(slow.is_err() || !is_plain_ascii(strip_root_dot(t)), "{t:?} is valid and plain but took the slow way"),
            }
            for entry in [t.clone(), format!("={t}"), format!("*.{t}")] {
                for kind in [ListKind::Block, ListKind::Allow] {
                    assert_eq!(parse_name_entry(&entry, kind, true), parse_name_entry_slowly(&entry, kind, true), "{entry:?}");
                }
            }
        }
        assert!(accepted > 5000 && accepted < texts.len(), "{accepted}");
        assert!(!is_plain_ascii("xn--bcher-kva.example") && !is_plain_ascii("a.XN--x") && !is_plain_ascii("Example.com"));
    }

    /// `parse_name_entry` as it was before its fast path.
    fn parse_name_entry_slowly(text: &str, kind: ListKind, subdomains: bool) -> Result<NameEntry, NameError> {
        let (mode, rest) = if let Some(rest) = text.strip_prefix('=') {
            if rest.starts_with("*.") {
                return Err(NameError::ModeConflict);
            }
            (NameMode::NameOnly, rest)
        } else if let Some(rest) = text.strip_prefix("*.") {
            (NameMode::SubdomainsOnly, rest)
        } else if subdomains {
            (NameMode::NameAndSubdomains, text)
        } else {
            (NameMode::NameOnly, text)
        };
        if rest.contains('*') {
            return Err(NameError::Wildcard);
        }
        if rest.contains('=') {
            return Err(NameError::MisplacedEquals);
        }
        if rest.len() != text.len() && crate::lists::parse::looks_like_address(rest) {
            return Err(NameError::ModeOnAddress);
        }
        let name = normalise_slowly(rest.trim())?;
        if kind == ListKind::Block && mode != NameMode::NameOnly && !name.contains('.') {
            return Err(NameError::SingleLabel { name });
        }
        if mode == NameMode::SubdomainsOnly && name.len() > MAX_NAME_LEN - 2 {
            let len = name.len();
            return Err(NameError::NothingBelow { name, len });
        }
        Ok(NameEntry { name, flags: mode.flags() })
    }

    #[test]
    fn upper_case_and_a_labels_still_take_the_uts_46_path() {
        assert_eq!(name("XN--BCHER-KVA.example"), "xn--bcher-kva.example");
        assert_eq!(normalise_name("xn--zz.example").unwrap_err(), NameError::Idn { label: Some("xn--zz".into()) });
        assert_eq!(name("WWW.Example.COM"), "www.example.com");
    }

    #[test]
    fn queries_are_normalised_like_the_wire_not_validated_like_entries() {
        assert_eq!(normalise_query("Example.COM.").unwrap(), "example.com");
        assert_eq!(normalise_query("bücher.example").unwrap(), "xn--bcher-kva.example");
        // Invalid punycode is still a name a client can send and the kernel hashes.
        assert_eq!(normalise_query("xn--zz.example").unwrap(), "xn--zz.example");
        assert_eq!(normalise_query("-x.example").unwrap(), "-x.example");
        assert!(normalise_query("a..example").is_err());
        assert!(normalise_query("https://example.com/").is_err());
        assert!(normalise_query(&format!("{}.example", "a".repeat(64))).is_err());
    }
}

#[cfg(test)]
mod fuzz_findings {
    use super::*;

    #[test]
    fn a_name_whose_fourth_byte_is_inside_a_character_is_an_error_not_a_panic() {
        assert!(parse_name_entry("o7\u{fef7}", ListKind::Block, true).is_err());
    }
}
