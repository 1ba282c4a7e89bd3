//! List file formats: text (`parse.rs`), CSV (`csv.rs`) and JSON (`json.rs`).
//!
//! Every format yields the same entries through the same `Collector`, so a source is refused
//! whole when any of its entries is bad, each bad entry reported where it was written:
//! `file:LINE: reason (in "entry")` for text and CSV, `file:$.entries[3]: reason (in "entry")`
//! for JSON. Sources are UTF-8 (a leading byte-order mark is skipped).
//!
//! CSV rows and JSON objects may say more than a text line: an entry's `type` (what kind of
//! entry it must be, or a name's mode) and its `action` (`block` or `allow`, overriding the
//! list's default). Both formats share their meaning here:
//!
//! | `type`                         | the entry must be                 | a bare name covers        |
//! |--------------------------------|-----------------------------------|---------------------------|
//! | empty or absent                | anything, inferred as in text     | the list's default        |
//! | `address`, `ip`, `cidr`        | an address or CIDR                | —                         |
//! | `name`, `domain`               | a name (`=` and `*.` allowed)     | the list's default        |
//! | `name_only`, `exact`           | a bare name                       | itself only               |
//! | `subdomains_only`              | a bare name                       | its subdomains only       |
//! | `name_and_subdomains`          | a bare name                       | itself and its subdomains |
//!
//! `type` and `action` are case-insensitive and trimmed; an empty `action` means the list's.

mod csv;
mod json;

use std::{fmt, path::Path, str::FromStr};

use super::{
    entry::{ListKind, Locus, Target},
    error::{ListError, SourceProblem},
    name::{NameMode, parse_name_entry},
    parse::{ListSummary, ParseOptions, ParsedEntry, looks_like_address, parse_address_entry, parse_entry_with, parse_text},
};

/// How a list source is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One entry per line, `#` comments.
    #[default]
    Text,
    /// A header row naming `entry` (and optionally `type`, `action`, `comment`), then one entry
    /// per row.
    Csv,
    /// An array of entries, or an object with an `entries` array.
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Text, Format::Csv, Format::Json];

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// The format a file name or URL says by its extension (case-insensitive, a URL's query and
    /// fragment ignored): `.csv` is CSV, `.json` is JSON, anything else is text.
    pub fn from_name(path_or_url: &str) -> Format {
        let path = path_or_url.split(['?', '#']).next().unwrap_or("");
        let last = path.rsplit(['/', '\\']).next().unwrap_or("");
        match last.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
            Some("csv") => Format::Csv,
            Some("json") => Format::Json,
            _ => Format::Text,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        let s = s.trim();
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown list format {s:?}: expected text, csv or json"))
    }
}

/// Parses a list source in `format` under the list's defaults. `source` only names it in
/// messages. Invalid UTF-8 refuses the source, naming the line it is on.
pub fn parse_source(source: &Path, bytes: &[u8], format: Format, opts: &ParseOptions) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
    let text = decode(source, bytes)?;
    match format {
        Format::Text => parse_text(source, text, opts),
        Format::Csv => csv::parse_csv(source, text, opts),
        Format::Json => json::parse_json(source, text, opts),
    }
}

/// Reads a list file and parses it in `format`.
pub fn load_source(path: &Path, format: Format, opts: &ParseOptions) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
    let bytes = std::fs::read(path).map_err(|error| ListError::Io { path: path.to_path_buf(), error })?;
    parse_source(path, &bytes, format, opts)
}

/// Reads a list file in the format its name says ([`Format::from_name`]: `.csv`, `.json`,
/// anything else text), every entry without an action of its own of `kind`: the files given on
/// the command line (`lookup`, `replay`), read as `check-list` and `run --list` read them.
pub fn load_list(path: &Path, kind: ListKind) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
    load_source(path, Format::from_name(&path.to_string_lossy()), &ParseOptions::new(kind))
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The source as text, without a byte-order mark.
fn decode<'a>(source: &Path, bytes: &'a [u8]) -> Result<&'a str, ListError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        let byte = bytes[e.valid_up_to()];
        malformed(
            source,
            Some(Locus::Line(line)),
            format!("not UTF-8: byte 0x{byte:02x} at column {column} (a list must be UTF-8 text; convert it, e.g. with iconv)"),
        )
    })
}

pub(super) fn malformed(source: &Path, at: Option<Locus>, reason: String) -> ListError {
    ListError::Malformed { path: source.to_path_buf(), problem: SourceProblem { at, reason } }
}

/// Which field of a record an error is about, so a JSON path can point at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// The record as a whole (its entry could not be accepted).
    Record,
    Type,
    Action,
}

/// One record of a CSV or JSON list, fields trimmed; `None` or empty means not given.
struct Record<'a> {
    entry: &'a str,
    ty: Option<&'a str>,
    action: Option<&'a str>,
}

/// What `type` says about an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryType {
    Infer,
    Address,
    Name,
    Mode(NameMode),
}

const TYPES: &str = "address (or ip, cidr), name (or domain), name_only (or exact), subdomains_only, name_and_subdomains, or empty to infer";

fn entry_type(word: &str) -> Result<EntryType, String> {
    Ok(match word.to_ascii_lowercase().as_str() {
        "" => EntryType::Infer,
        "address" | "ip" | "cidr" => EntryType::Address,
        "name" | "domain" => EntryType::Name,
        "name_only" | "exact" => EntryType::Mode(NameMode::NameOnly),
        "subdomains_only" => EntryType::Mode(NameMode::SubdomainsOnly),
        "name_and_subdomains" => EntryType::Mode(NameMode::NameAndSubdomains),
        _ => return Err(format!("unknown type {word:?}: expected {TYPES}")),
    })
}

fn action(word: &str, default: ListKind) -> Result<ListKind, String> {
    match word.to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "block" => Ok(ListKind::Block),
        "allow" => Ok(ListKind::Allow),
        _ => Err(format!("unknown action {word:?}: expected block or allow (or empty for the list's {})", default.name())),
    }
}

/// The mode marker an entry is written with, if any.
fn written_mode(entry: &str) -> Option<NameMode> {
    if entry.starts_with('=') {
        Some(NameMode::NameOnly)
    } else if entry.starts_with("*.") {
        Some(NameMode::SubdomainsOnly)
    } else {
        None
    }
}

/// Interprets one record under the list's defaults: its action, then its entry as its type says.
fn interpret(r: &Record<'_>, opts: &ParseOptions) -> Result<(ListKind, Target), (Field, String)> {
    let kind = action(r.action.unwrap_or(""), opts.kind).map_err(|e| (Field::Action, e))?;
    let word = r.ty.unwrap_or("");
    let ty = entry_type(word).map_err(|e| (Field::Type, e))?;
    let entry = r.entry;
    if entry.is_empty() {
        return Err((Field::Record, "empty entry".to_string()));
    }
    let bad_entry = |e: &dyn fmt::Display| (Field::Record, e.to_string());
    let contradiction = |reason: String| Err((Field::Type, reason));
    let target = match ty {
        EntryType::Infer => parse_entry_with(entry, &ParseOptions { kind, subdomains: opts.subdomains }).map_err(|e| bad_entry(&e))?,
        EntryType::Address => {
            if !looks_like_address(entry) {
                return contradiction(format!("type {word:?} says an address or CIDR, but {entry:?} is not one"));
            }
            parse_address_entry(entry, kind).map_err(|e| bad_entry(&e))?
        }
        EntryType::Name => {
            if looks_like_address(entry) {
                return contradiction(format!("type {word:?} says a host name, but {entry:?} is an address"));
            }
            Target::Name(parse_name_entry(entry, kind, opts.subdomains).map_err(|e| bad_entry(&e))?)
        }
        EntryType::Mode(mode) => {
            let says = mode.describe();
            if looks_like_address(entry) {
                return contradiction(format!("type {word:?} ({says}) is for host names, but {entry:?} is an address"));
            }
            if let Some(written) = written_mode(entry) {
                return contradiction(format!(
                    "type {word:?} ({says}) gives the mode, so the entry is written as a bare name, but {entry:?} says {}",
                    written.describe()
                ));
            }
            let name = match mode {
                NameMode::NameOnly => parse_name_entry(entry, kind, false),
                NameMode::NameAndSubdomains => parse_name_entry(entry, kind, true),
                NameMode::SubdomainsOnly => parse_name_entry(&format!("*.{entry}"), kind, true),
            };
            Target::Name(name.map_err(|e| bad_entry(&e))?)
        }
    };
    Ok((kind, target))
}

#[cfg(test)]
mod tests {
    use blocker_common::name::{MATCH_BELOW, MATCH_SELF};

    use super::*;
    use crate::lists::NameEntry;

    pub(super) const BLOCK: ParseOptions = ParseOptions::new(ListKind::Block);

    /// What a source yields, without where: the entries' targets as list syntax and actions.
    pub(super) fn entries(format: Format, text: &str) -> Vec<(String, ListKind)> {
        let (p, _) = parse_source(Path::new("x"), text.as_bytes(), format, &BLOCK).unwrap_or_else(|e| panic!("{e}"));
        p.into_iter().map(|e| (e.target.to_string(), e.kind)).collect()
    }

    #[test]
    fn the_same_list_in_text_csv_and_json_yields_the_same_entries() {
        let text = "\
# a list
192.0.2.0/24
2001:db8::1
example.com
=only.example
*.below.example
Bücher.Example.
";
        let csv = "\
# a list
entry,type,action,comment
192.0.2.0/24,,,a network
2001:db8::1,address,,
example.com,name,,
only.example,name_only,,
below.example,subdomains_only,block,
Bücher.Example.,,,
";
        let json = r#"{"version": 1, "entries": [
            "192.0.2.0/24",
            {"entry": "2001:db8::1", "type": "ip"},
            "example.com",
            {"entry": "=only.example", "comment": "the name alone"},
            {"entry": "below.example", "type": "subdomains_only", "action": "block"},
            "Bücher.Example."
        ]}"#;
        let yields = |format: Format, text: &str| -> Vec<(Target, ListKind)> {
            let (p, _) = parse_source(Path::new("x"), text.as_bytes(), format, &BLOCK).unwrap_or_else(|e| panic!("{e}"));
            p.into_iter().map(|e| (e.target, e.kind)).collect()
        };
        let from_text = yields(Format::Text, text);
        assert_eq!(yields(Format::Csv, csv), from_text);
        assert_eq!(yields(Format::Json, json), from_text);
        let shown: Vec<String> = from_text.iter().map(|(t, _)| t.to_string()).collect();
        assert_eq!(shown, ["192.0.2.0/24", "2001:db8::1/128", "example.com", "=only.example", "*.below.example", "xn--bcher-kva.example"]);
        assert!(from_text.iter().all(|(_, k)| *k == ListKind::Block));
    }

    #[test]
    fn the_format_follows_the_extension_of_a_path_or_url() {
        let cases = [
            ("lists/block.csv", Format::Csv),
            ("BLOCK.CSV", Format::Csv),
            ("block.json", Format::Json),
            ("https://lists.example/feed.json?token=abc#top", Format::Json),
            ("https://lists.example/feed.csv#part", Format::Csv),
            ("https://lists.example/feed?format=csv", Format::Text),
            ("block.txt", Format::Text),
            ("block", Format::Text),
            ("csv/block", Format::Text),
            ("lists.json/block.list", Format::Text),
        ];
        for (name, format) in cases {
            assert_eq!(Format::from_name(name), format, "{name}");
        }
    }

    #[test]
    fn a_format_is_named_in_lowercase_on_the_command_line_and_in_configuration() {
        assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
        assert_eq!(" json ".parse::<Format>(), Ok(Format::Json));
        assert_eq!("text".parse::<Format>(), Ok(Format::Text));
        assert_eq!("xml".parse::<Format>(), Err("unknown list format \"xml\": expected text, csv or json".to_string()));
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
            assert_eq!(serde_json::from_str::<Format>(&format!("\"{f}\"")).unwrap(), f);
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped_in_every_format() {
        for (format, body) in [(Format::Text, "example.com\n"), (Format::Csv, "entry\nexample.com\n"), (Format::Json, "[\"example.com\"]")] {
            let bytes = [BOM, body.as_bytes()].concat();
            let (p, _) = parse_source(Path::new("x"), &bytes, format, &BLOCK).unwrap_or_else(|e| panic!("{format}: {e}"));
            assert_eq!(p[0].target, Target::Name(NameEntry { name: "example.com".into(), flags: MATCH_SELF | MATCH_BELOW }), "{format}");
        }
    }

    #[test]
    fn invalid_utf8_refuses_the_source_naming_its_line_in_every_format() {
        for format in Format::ALL {
            let bytes = b"example.com\nexample.net\nbad\xff.example\n";
            let e = parse_source(Path::new("latin1.txt"), bytes, format, &BLOCK).unwrap_err();
            let ListError::Malformed { problem, .. } = &e else { panic!("{e}") };
            assert_eq!(problem.at, Some(Locus::Line(3)), "{format}");
            assert_eq!(
                e.to_string(),
                "latin1.txt:3: not UTF-8: byte 0xff at column 4 (a list must be UTF-8 text; convert it, e.g. with iconv); \
                 nothing from this file was applied"
            );
        }
    }

    #[test]
    fn load_source_reads_a_file_and_names_it_when_it_cannot() {
        let dir = std::env::temp_dir().join(format!("blocker-format-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("block.csv");
        std::fs::write(&path, "entry,action\nexample.com,allow\n").unwrap();
        let (p, s) = load_source(&path, Format::from_name(&path.to_string_lossy()), &BLOCK).unwrap();
        assert_eq!((p[0].kind, s.allow, s.lines), (ListKind::Allow, 1, 2));
        std::fs::remove_dir_all(&dir).unwrap();
        let e = load_source(&path, Format::Csv, &BLOCK).unwrap_err();
        assert!(matches!(e, ListError::Io { .. }), "{e}");
        assert!(e.to_string().starts_with(&format!("{}: cannot read: ", path.display())), "{e}");
    }

    #[test]
    fn an_unreadable_file_says_why_once_however_it_is_printed() {
        let e = load_source(Path::new("/nonexistent.invalid/block.list"), Format::Text, &BLOCK).unwrap_err();
        let why = "No such file or directory";
        assert_eq!(e.to_string().matches(why).count(), 1, "{e}");
        let chained = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(chained.matches(why).count(), 1, "{chained}");
        assert!(chained.starts_with("/nonexistent.invalid/block.list: cannot read: "), "{chained}");
    }

    #[test]
    fn text_sources_keep_the_list_default_for_bare_names() {
        let opts = ParseOptions { kind: ListKind::Block, subdomains: false };
        let (p, _) = parse_source(Path::new("x"), b"example.com\n*.example.net\n", Format::Text, &opts).unwrap();
        let shown: Vec<String> = p.iter().map(|e| e.target.to_string()).collect();
        assert_eq!(shown, ["=example.com", "*.example.net"]);
    }
}
