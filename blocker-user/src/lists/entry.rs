//! What one accepted list line becomes: an entry with an id, naming an address prefix or a name.

use std::{
    fmt,
    hash::{BuildHasher, Hasher},
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
};

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

/// Where an entry was written, as the set keeps it: `Locus` in 16 bytes (a line number fits in
/// 32 bits; a JSON path is boxed, and only JSON entries have one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum At {
    Line(u32),
    Json(Box<str>),
}

impl At {
    /// The line number, for entries from line-based formats.
    pub fn line(&self) -> Option<usize> {
        match self {
            At::Line(n) => Some(*n as usize),
            At::Json(_) => None,
        }
    }
}

impl From<Locus> for At {
    fn from(l: Locus) -> At {
        match l {
            // A list of 4 G lines is far beyond any size limit; saturate rather than wrap.
            Locus::Line(n) => At::Line(u32::try_from(n).unwrap_or(u32::MAX)),
            Locus::Json(p) => At::Json(p.into_boxed_str()),
        }
    }
}

impl From<&At> for Locus {
    fn from(a: &At) -> Locus {
        match a {
            At::Line(n) => Locus::Line(*n as usize),
            At::Json(p) => Locus::Json(p.to_string()),
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Line(n) => write!(f, "{n}"),
            At::Json(path) => f.write_str(path),
        }
    }
}

impl serde::Serialize for At {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            At::Line(n) => s.serialize_u64(*n as u64),
            At::Json(p) => s.serialize_str(p),
        }
    }
}

/// One accepted entry. `id` is what the kernel stores and counts by; it names the entry
/// (source and line) without the kernel holding the address or name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: u32,
    /// Index of the list (in `ListSet::lists`) the entry came from.
    pub list: u16,
    pub kind: ListKind,
    /// The list is in shadow mode: the entry is counted where it would block, never enforced.
    pub shadow: bool,
    pub at: At,
    /// The list's source, shared by all its entries (`intern_source`).
    pub source: &'static SourcePath,
    pub target: Target,
}

impl Entry {
    /// `file:line` (or `file:$.entries[3]`), as error messages and lookups cite it.
    pub fn location(&self) -> String {
        format!("{}:{}", self.source.display(), self.at)
    }

    /// The hash of what the entry is, for the set's index: kind, enforcement and the prefix
    /// or name (not a name's mode). Ids are kept across generations by this identity.
    pub(crate) fn identity_hash(&self) -> u64 {
        let mut h = identity_hasher(self.kind, self.shadow);
        write_target(&mut h, &self.target, false);
        h.finish()
    }

    /// Same kind, enforcement and prefix or name (a name's mode may differ).
    pub(crate) fn same_identity(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.shadow == other.shadow
            && match (&self.target, &other.target) {
                (Target::Prefix(a), Target::Prefix(b)) => a == b,
                (Target::Name(a), Target::Name(b)) => a.name == b.name,
                _ => false,
            }
    }

    /// The hash of what the entry does (its identity and a name's mode): what a diff compares.
    pub(crate) fn effect_hash(&self) -> u64 {
        let mut h = identity_hasher(self.kind, self.shadow);
        write_target(&mut h, &self.target, true);
        h.finish()
    }

    /// Does the same: kind, enforcement, target with its mode.
    pub(crate) fn same_effect(&self, other: &Entry) -> bool {
        self.kind == other.kind && self.shadow == other.shadow && self.target == other.target
    }
}

/// The source of a list (a file path or a URL), as its entries name it: a `Path`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SourcePath(PathBuf);

impl std::ops::Deref for SourcePath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl serde::Serialize for SourcePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A list's source as entries name it: one copy per distinct source for the life of the
/// process, so that a million entries share it through a plain pointer (8 bytes, no reference
/// count to increment per entry: an atomic operation that stalls on every store before it).
/// Sources come from the configuration (files, URLs), so there are few, and they are kept even
/// once no list names them any more: a few bytes per source ever configured.
pub(crate) fn intern_source(source: &Path) -> &'static SourcePath {
    static SOURCES: OnceLock<Mutex<hashbrown::HashMap<PathBuf, &'static SourcePath>>> = OnceLock::new();
    let mut sources = SOURCES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&s) = sources.get(source) {
        return s;
    }
    let s: &'static SourcePath = Box::leak(Box::new(SourcePath(source.to_path_buf())));
    sources.insert(source.to_path_buf(), s);
    s
}

/// The hasher of the controller's internal indexes (the set's index, the diff, the install's
/// slot records): foldhash, fast and not cryptographic. One per process, so that sets built
/// apart hash alike and can be compared by hash. What it hashes are list contents, which are
/// signed or put there by the operator, and the names' kernel keys are keyed SipHash: a list
/// author able to craft collisions here could only slow the controller down.
pub(crate) fn fast_hasher() -> &'static hashbrown::DefaultHashBuilder {
    static HASHER: OnceLock<hashbrown::DefaultHashBuilder> = OnceLock::new();
    HASHER.get_or_init(Default::default)
}

fn identity_hasher(kind: ListKind, shadow: bool) -> impl Hasher {
    let mut h = fast_hasher().build_hasher();
    h.write_u8(kind as u8);
    h.write_u8(shadow as u8);
    h
}

fn write_target(h: &mut impl Hasher, target: &Target, with_mode: bool) {
    match target {
        Target::Prefix(p) => write_prefix(h, p),
        Target::Name(n) => {
            write_name(h, &n.name);
            if with_mode {
                h.write_u32(n.flags);
            }
        }
    }
}

fn write_prefix(h: &mut impl Hasher, p: &Prefix) {
    match *p {
        Prefix::V4 { addr, len } => {
            h.write_u8(4);
            h.write_u32(u32::from(addr));
            h.write_u8(len);
        }
        Prefix::V6 { addr, len } => {
            h.write_u8(6);
            h.write_u128(u128::from(addr));
            h.write_u8(len);
        }
    }
}

fn write_name(h: &mut impl Hasher, name: &str) {
    h.write_u8(0);
    h.write(name.as_bytes());
    h.write_u8(0xff);
}

/// `Entry::identity_hash` of a name entry, from its parts.
pub(crate) fn name_identity_hash(kind: ListKind, shadow: bool, name: &str) -> u64 {
    let mut h = identity_hasher(kind, shadow);
    write_name(&mut h, name);
    h.finish()
}

/// `Entry::identity_hash` of a prefix entry, from its parts.
pub(crate) fn prefix_identity_hash(kind: ListKind, shadow: bool, prefix: &Prefix) -> u64 {
    let mut h = identity_hasher(kind, shadow);
    write_prefix(&mut h, prefix);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_stays_small() {
        assert_eq!(std::mem::size_of::<At>(), 16);
        assert_eq!(std::mem::size_of::<Entry>(), 64, "an entry per cache line");
    }

    #[test]
    fn identity_leaves_out_the_mode_and_effect_does_not() {
        let e = |name: &str, flags: u32, shadow: bool| Entry {
            id: 1,
            list: 0,
            kind: ListKind::Block,
            shadow,
            at: At::Line(1),
            source: intern_source(Path::new("l")),
            target: Target::Name(NameEntry { name: name.into(), flags }),
        };
        let (a, b) = (e("example.com", 1, false), e("example.com", 3, false));
        assert!(a.same_identity(&b) && !a.same_effect(&b));
        assert_eq!(a.identity_hash(), b.identity_hash());
        assert_ne!(a.effect_hash(), b.effect_hash());
        assert_eq!(a.identity_hash(), name_identity_hash(ListKind::Block, false, "example.com"));
        assert_ne!(a.identity_hash(), e("example.com", 1, true).identity_hash());
        let p = Prefix::V4 { addr: [192, 0, 2, 0].into(), len: 24 };
        let pe = Entry { target: Target::Prefix(p), ..a.clone() };
        assert_eq!(pe.identity_hash(), prefix_identity_hash(ListKind::Block, false, &p));
        assert_eq!(At::from(Locus::Json("$[1]".into())).to_string(), "$[1]");
        assert_eq!(At::from(Locus::Line(7)).line(), Some(7));
    }
}
