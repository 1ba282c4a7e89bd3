//! What one accepted list line becomes: an entry with an id, naming an address prefix or a name.

use std::{fmt, path::PathBuf};

use super::{name::NameEntry, prefix::Prefix};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// One accepted entry. `id` is what the kernel stores and counts by; it names the entry
/// (source and line) without the kernel holding the address or name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: u32,
    pub kind: ListKind,
    pub target: Target,
    pub source: PathBuf,
    pub line: usize,
}

impl Entry {
    /// `file:line`, as error messages and lookups cite it.
    pub fn location(&self) -> String {
        format!("{}:{}", self.source.display(), self.line)
    }
}
