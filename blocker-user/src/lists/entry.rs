//! What one accepted list line becomes: an entry with an id, naming an address prefix or a name.

use std::{fmt, path::PathBuf};

use super::{name::NameEntry, prefix::Prefix};

/// What an entry does: block, or exempt from blocking (allow entries win).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Block,
    Allow,
}

impl ListKind {
    pub fn name(self) -> &'static str {
        match self {
            ListKind::Block => "block",
            ListKind::Allow => "allow",
        }
    }
}

/// What an entry matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Destinations inside an IPv4/IPv6 prefix.
    Prefix(Prefix),
    /// A host name (TLS SNI, DNS query name), with its mode.
    Name(NameEntry),
}

impl Target {
    pub fn as_prefix(&self) -> Option<&Prefix> {
        match self {
            Target::Prefix(p) => Some(p),
            Target::Name(_) => None,
        }
    }

    pub fn as_name(&self) -> Option<&NameEntry> {
        match self {
            Target::Name(n) => Some(n),
            Target::Prefix(_) => None,
        }
    }
}

/// The entry as it would be written in a list file (names in A-label form).
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Prefix(p) => write!(f, "{p}"),
            Target::Name(n) => write!(f, "{n}"),
        }
    }
}

/// Where in its source an entry was written: a line of a text or CSV list, or the JSON path of
/// an element of a JSON list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Locus {
    Line(usize),
    Json(String),
}

impl Locus {
    /// The line number, for entries from line-based formats.
    pub fn line(&self) -> Option<usize> {
        match self {
            Locus::Line(n) => Some(*n),
            Locus::Json(_) => None,
        }
    }
}

impl fmt::Display for Locus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locus::Line(n) => write!(f, "{n}"),
            Locus::Json(path) => f.write_str(path),
        }
    }
}

impl serde::Serialize for Locus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Locus::Line(n) => s.serialize_u64(*n as u64),
            Locus::Json(p) => s.serialize_str(p),
        }
    }
}

/// One accepted entry. `id` is what the kernel stores and counts by; it names the entry
/// (source and line) without the kernel holding the address or name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: u32,
    pub kind: ListKind,
    pub target: Target,
    pub source: PathBuf,
    pub at: Locus,
    /// Index of the list (in `ListSet::lists`) the entry came from.
    pub list: u16,
    /// The list is in shadow mode: the entry is counted where it would block, never enforced.
    pub shadow: bool,
}

impl Entry {
    /// `file:line` (or `file:$.entries[3]`), as error messages and lookups cite it.
    pub fn location(&self) -> String {
        format!("{}:{}", self.source.display(), self.at)
    }
}
