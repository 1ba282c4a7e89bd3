//! The CSV list format.
//!
//! ```text
//! # lines starting with '#' and blank lines are skipped, before the header too
//! entry,type,action,comment
//! 192.0.2.0/24,,,a network
//! example.com,,,the name and its subdomains (or the list's default)
//! =www.example.net,,allow,this name only
//! example.org,subdomains_only,block,
//! ```
//!
//! The first row that is not a comment is the header. Column names are case-insensitive and
//! trimmed, in any order: `entry` (required), `type`, `action` and `comment` (optional); other
//! columns are ignored, so an export with more columns loads as it is. Every row has as many
//! fields as the header (a field holding a comma is quoted: `"a,b"`; a quote inside a quoted
//! field is doubled, and a quoted field may run over several lines); fields are trimmed. A
//! quote never closed refuses the file at the line it opens on, where the csv crate would read
//! the rest of the file as one field. A row whose fields are all empty is skipped. `type` and `action` mean what `format/mod.rs`
//! says. Each bad row is reported as `file:LINE: reason (in "entry")`, and any bad row refuses
//! the whole file.

use std::path::Path;

use super::{Record, interpret, malformed};
use crate::lists::{
    entry::Locus,
    error::ListError,
    parse::{Collector, ListSummary, ParseOptions, ParsedEntry},
};

/// The columns this format reads, by index in the header.
#[derive(Default)]
struct Columns {
    entry: Option<usize>,
    ty: Option<usize>,
    action: Option<usize>,
}

const COLUMNS: &str = "entry (required), and optionally type, action, comment";

/// Parses a CSV list under the list's defaults. `source` only names it in messages.
pub(super) fn parse_csv(source: &Path, text: &str, opts: &ParseOptions) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
    let reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut lines = LineCounter { text, at: 0, line: 1 };
    let mut records = reader.into_records();
    // Where the last record read starts: only the last one can hold a quote never closed,
    // which runs to the end of the file.
    let mut last = 0;
    let mut next = || match records.next() {
        Some(r) => Some(
            r.map(|record| {
                let line = lines.start_line(record.position());
                last = lines.at;
                (line, last, record)
            })
            .map_err(|e| {
                let at = Locus::Line(lines.start_line(e.position()));
                malformed(source, Some(at), format!("not readable as CSV: {e}"))
            }),
        ),
        None => unterminated_quote(source, text, last).map(Err),
    };

    let Some(header) = next() else {
        let reason = format!("no header row: a CSV list starts with a header naming its columns: {COLUMNS}");
        return Err(malformed(source, Some(Locus::Line(1)), reason));
    };
    let (header_line, header_start, header) = header?;
    let columns = columns(&header).map_err(|reason| {
        // A header that swallowed the file is refused for that, not for its columns.
        unterminated_quote(source, text, header_start).unwrap_or_else(|| malformed(source, Some(Locus::Line(header_line)), reason))
    })?;
    let width = header.len();

    let mut c = Collector::new();
    while let Some(record) = next() {
        let (line, _, record) = record?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let at = Locus::Line(line);
        if record.len() != width {
            let row = record.iter().collect::<Vec<_>>().join(",");
            let reason = format!(
                "{} field(s), but the header has {width}: every row has one field per column (a field holding a comma is quoted)",
                record.len()
            );
            c.reject(at, &row, reason);
            continue;
        }
        let field = |i: Option<usize>| i.and_then(|i| record.get(i));
        let entry = field(columns.entry).unwrap_or("");
        let r = Record { entry, ty: field(columns.ty), action: field(columns.action) };
        match interpret(&r, opts) {
            Ok((kind, target)) => c.accept(at, kind, target),
            Err((_, reason)) => c.reject(at, entry, reason),
        }
    }
    c.set_lines(text.lines().count());
    c.finish(source)
}

/// The error for a quote opened in the record starting at byte `start` and never closed, if it
/// was: the csv crate then reads the rest of the file as one field without a word. Scans the
/// record as the crate reads it: a quote opens a field only as its first byte (elsewhere it is
/// an ordinary character), and inside a quoted field a doubled quote is a quote.
fn unterminated_quote(source: &Path, text: &str, start: usize) -> Option<ListError> {
    enum State {
        FieldStart,
        Field,
        Quoted { opened: usize },
        QuoteInQuoted { opened: usize },
    }
    let mut state = State::FieldStart;
    for (i, &b) in text.as_bytes().iter().enumerate().skip(start) {
        state = match (state, b) {
            (State::FieldStart, b'"') => State::Quoted { opened: i },
            (State::FieldStart | State::Field | State::QuoteInQuoted { .. }, b'\n' | b'\r') => return None,
            (State::FieldStart | State::Field | State::QuoteInQuoted { .. }, b',') => State::FieldStart,
            (State::Quoted { opened }, b'"') => State::QuoteInQuoted { opened },
            (State::QuoteInQuoted { opened }, b'"') => State::Quoted { opened },
            (quoted @ State::Quoted { .. }, _) => quoted,
            (State::FieldStart | State::Field | State::QuoteInQuoted { .. }, _) => State::Field,
        };
    }
    let State::Quoted { opened } = state else { return None };
    let before = &text[..opened];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    let reason = format!(
        "unterminated quoted field: the quote at column {column} is never closed, so the rest of the file would be read \
         as one field (a quote inside a quoted field is written twice: \"\")"
    );
    Some(malformed(source, Some(Locus::Line(line)), reason))
}

/// Finds the line a record starts on from the byte offset the csv crate gives it. Its line
/// numbers cannot be used: it counts a CRLF line break as the next line's, and places a record
/// that follows comment lines at the first of them; its byte offset can point at the `\n` of
/// the break before the record or at skipped lines (comments, empty lines). Offsets only grow,
/// so lines are counted once.
struct LineCounter<'a> {
    text: &'a str,
    /// The byte offset counted up to, and the line it is on.
    at: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn start_line(&mut self, at: Option<&::csv::Position>) -> usize {
        let bytes = self.text.as_bytes();
        let byte = at.map_or(0, |p| p.byte());
        let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        if bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        // Past the lines csv skips; a record never starts on one.
        while let Some(len) = bytes[start..].iter().position(|&b| b == b'\n') {
            let line = &bytes[start..start + len];
            if !(line.first() == Some(&b'#') || line == b"" || line == b"\r") {
                break;
            }
            start += len + 1;
        }
        if start < self.at {
            (self.at, self.line) = (0, 1);
        }
        self.line += bytes[self.at..start].iter().filter(|&&b| b == b'\n').count();
        self.at = start;
        self.line
    }
}

/// Finds the columns this format reads in a header row.
fn columns(header: &::csv::StringRecord) -> Result<Columns, String> {
    let mut cols = Columns::default();
    for (i, name) in header.iter().enumerate() {
        let slot = match name.to_ascii_lowercase().as_str() {
            "entry" => &mut cols.entry,
            "type" => &mut cols.ty,
            "action" => &mut cols.action,
            _ => continue,
        };
        if slot.replace(i).is_some() {
            return Err(format!("the header names column {name:?} twice"));
        }
    }
    if cols.entry.is_none() {
        let found = header.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "the header has no \"entry\" column (found {found}): the first row that is not a comment names the columns: {COLUMNS}"
        ));
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::{
        ListKind, Target,
        format::{Format, parse_source, tests::entries},
    };

    fn parse(text: &str) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
        parse_source(Path::new("block.csv"), text.as_bytes(), Format::Csv, &ParseOptions::new(ListKind::Block))
    }

    fn shown(text: &str) -> Vec<String> {
        entries(Format::Csv, text).into_iter().map(|(t, _)| t).collect()
    }

    /// The errors of a refused file, as printed, one per bad row.
    fn errors(text: &str) -> Vec<String> {
        let e = parse(text).expect_err("the file is refused");
        assert!(matches!(e, ListError::Invalid { .. }), "{e}");
        let msg = e.to_string();
        let mut lines: Vec<String> = msg.lines().map(str::to_string).collect();
        assert_eq!(lines.pop().unwrap(), format!("block.csv: rejected: {} invalid line(s); nothing from this file was applied", lines.len()));
        lines
    }

    /// The one error of a file with a header and one bad row on line 2.
    fn error(row: &str) -> String {
        let header = "entry,type,action";
        let errs = errors(&format!("{header}\n{row}\n"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        errs.into_iter().next().unwrap()
    }

    /// The problem of a file refused as a whole.
    fn malformed(text: &str) -> String {
        let e = parse(text).expect_err("the file is refused");
        assert!(matches!(e, ListError::Malformed { .. }), "{e}");
        e.to_string()
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_and_case_and_others_are_ignored() {
        let text = "\
 Comment , Source ,ACTION, Entry
first,feed-a,allow,=a.example
second,feed-b,,b.example
";
        assert_eq!(entries(Format::Csv, text), [("=a.example".to_string(), ListKind::Allow), ("b.example".to_string(), ListKind::Block)]);
    }

    #[test]
    fn one_entry_column_is_enough() {
        assert_eq!(shown("entry\n192.0.2.1\nexample.com\n"), ["192.0.2.1/32", "example.com"]);
    }

    #[test]
    fn comment_lines_and_blank_lines_are_skipped_and_lines_are_counted_as_written() {
        let text = "\
# exported 2026-11-01
# by the list body

entry,action
# a note between rows
example.com,

,
\"example.net\",block
";
        let (p, s) = parse(text).unwrap();
        let at: Vec<_> = p.iter().map(|e| (e.target.to_string(), e.at.clone())).collect();
        assert_eq!(at, [("example.com".to_string(), Locus::Line(6)), ("example.net".to_string(), Locus::Line(9))]);
        assert_eq!((s.lines, s.entries), (9, 2));
    }

    #[test]
    fn fields_are_trimmed_and_quoted_fields_may_hold_commas() {
        let text = "entry,comment\n  example.com  ,\"blocked by order 12, 2026\"\n";
        assert_eq!(shown(text), ["example.com"]);
    }

    #[test]
    fn windows_line_endings_are_read_as_well() {
        let (p, s) = parse("entry,action\r\n# note\r\nexample.com,allow\r\n").unwrap();
        assert_eq!((p[0].target.to_string(), p[0].kind, p[0].at.clone(), s.lines), ("example.com".to_string(), ListKind::Allow, Locus::Line(3), 3));
    }

    #[test]
    fn rows_are_located_on_the_line_they_start_on_whatever_comes_between() {
        let body = "entry,comment\r\n\r\na.example,\"two\r\nlines\"\r\n# c\r\n\r\nEND\r\n";
        let (p, _) = parse(&body.replace("END", "b.example,")).unwrap();
        assert_eq!(p.iter().map(|e| e.at.clone()).collect::<Vec<_>>(), [Locus::Line(3), Locus::Line(7)]);
        assert_eq!(errors(&body.replace("END", "b..example,")), ["block.csv:7: empty label: two dots in a row (in \"b..example\")"]);
        assert_eq!(errors(&body.replace("\r\n", "\n").replace("END", "b..example,")), ["block.csv:7: empty label: two dots in a row (in \"b..example\")"]);
    }

    #[test]
    fn a_quoted_field_may_hold_commas_doubled_quotes_and_line_breaks_once_it_is_closed() {
        let text = "\
entry,comment
\"example.com\",\"said \"\"x, y\"\"
over two lines\"
example.net,\"\"\"quoted\"\"\"
203.0.113.9,\"closed at the end\"";
        let (p, s) = parse(text).unwrap();
        let at: Vec<_> = p.iter().map(|e| (e.target.to_string(), e.at.clone())).collect();
        let expected = [("example.com", 2), ("example.net", 4), ("203.0.113.9/32", 5)].map(|(t, l)| (t.to_string(), Locus::Line(l)));
        assert_eq!(at, expected);
        assert_eq!(s.entries, 3);
    }

    #[test]
    fn an_unterminated_quote_is_refused_at_the_line_it_opens() {
        // Read as CSV, the quote would run to the end of the file as one field, and the rows after
        // it would vanish.
        let text = "entry,comment\nexample.com,\"list body said \"\"x\"\"\nexample.net,ok\n203.0.113.9,ok\n";
        assert_eq!(
            malformed(text),
            "block.csv:2: unterminated quoted field: the quote at column 13 is never closed, so the rest of the file would \
             be read as one field (a quote inside a quoted field is written twice: \"\"); nothing from this file was applied"
        );
        // In a row that already spans lines, at the very end, in the header, on a Windows file.
        let cases = [
            ("entry,comment\na.example,\"two\nlines\"\nb.example,\"open\nc.example,\n", "block.csv:4:"),
            ("entry\na.example\n\"b.example", "block.csv:3:"),
            ("entry,\"comment\na.example,x\n", "block.csv:1:"),
            ("# list\r\nentry,comment\r\n\r\na.example,\"ok\r\n\"\r\nb.example,\"\"\"\r\nc.example,\r\n", "block.csv:6:"),
        ];
        for (text, at) in cases {
            let msg = malformed(text);
            assert!(msg.starts_with(&format!("{at} unterminated quoted field")), "{text:?}: {msg}");
        }
    }

    #[test]
    fn a_row_action_overrides_the_list_default() {
        let text = "entry,action\na.example,allow\nb.example,Block\nc.example,\n";
        let kinds: Vec<ListKind> = entries(Format::Csv, text).into_iter().map(|(_, k)| k).collect();
        assert_eq!(kinds, [ListKind::Allow, ListKind::Block, ListKind::Block]);
        let allow_list = ParseOptions::new(ListKind::Allow);
        let (p, s) = parse_source(Path::new("allow.csv"), text.as_bytes(), Format::Csv, &allow_list).unwrap();
        assert_eq!(p.iter().map(|e| e.kind).collect::<Vec<_>>(), [ListKind::Allow, ListKind::Block, ListKind::Allow]);
        assert_eq!(s.allow, 2);
    }

    #[test]
    fn the_action_decides_how_broad_an_entry_may_be() {
        // An allow entry may exempt a network or a whole top-level domain; a block entry may not.
        assert_eq!(shown("entry,action\n10.0.0.0/7,allow\nlocal,allow\n"), ["10.0.0.0/7", "local"]);
        assert!(error("10.0.0.0/7,,block").contains("refusing to block /7"));
    }

    #[test]
    fn without_a_type_the_entry_is_inferred_as_in_a_text_list() {
        let text = "entry,type\n192.0.2.0/24,\n2001:db8::/32,\nexample.com,\n=only.example,\n*.below.example,\n";
        assert_eq!(shown(text), ["192.0.2.0/24", "2001:db8::/32", "example.com", "=only.example", "*.below.example"]);
    }

    #[test]
    fn each_type_says_what_the_entry_is() {
        let text = "\
entry,type
192.0.2.1,address
192.0.2.0/24,IP
2001:db8::/32,cidr
a.example,name
=b.example,domain
*.c.example,Name
d.example,name_only
e.example,exact
f.example,subdomains_only
g.example, Name_And_Subdomains 
";
        assert_eq!(
            shown(text),
            [
                "192.0.2.1/32",
                "192.0.2.0/24",
                "2001:db8::/32",
                "a.example",
                "=b.example",
                "*.c.example",
                "=d.example",
                "=e.example",
                "*.f.example",
                "g.example",
            ]
        );
    }

    #[test]
    fn a_bare_name_of_type_name_follows_the_list_default_but_the_mode_types_do_not() {
        let text = "entry,type\na.example,name\nb.example,\nc.example,name_and_subdomains\nd.example,subdomains_only\n";
        let exact = ParseOptions { kind: ListKind::Block, subdomains: false };
        let (p, _) = parse_source(Path::new("x.csv"), text.as_bytes(), Format::Csv, &exact).unwrap();
        let shown: Vec<String> = p.iter().map(|e| e.target.to_string()).collect();
        assert_eq!(shown, ["=a.example", "=b.example", "c.example", "*.d.example"]);
    }

    #[test]
    fn a_type_that_contradicts_the_entry_is_an_error_saying_both() {
        let cases = [
            ("example.com,address", "block.csv:2: type \"address\" says an address or CIDR, but \"example.com\" is not one (in \"example.com\")"),
            ("192.0.2.1,name", "block.csv:2: type \"name\" says a host name, but \"192.0.2.1\" is an address (in \"192.0.2.1\")"),
            (
                "192.0.2.1,exact",
                "block.csv:2: type \"exact\" (this name only) is for host names, but \"192.0.2.1\" is an address (in \"192.0.2.1\")",
            ),
            (
                "=example.com,subdomains_only",
                "block.csv:2: type \"subdomains_only\" (subdomains only) gives the mode, so the entry is written as a bare name, \
                 but \"=example.com\" says this name only (in \"=example.com\")",
            ),
            (
                "*.example.com,name_only",
                "block.csv:2: type \"name_only\" (this name only) gives the mode, so the entry is written as a bare name, \
                 but \"*.example.com\" says subdomains only (in \"*.example.com\")",
            ),
            (
                "=example.com,name_and_subdomains",
                "block.csv:2: type \"name_and_subdomains\" (name and subdomains) gives the mode, so the entry is written as a bare \
                 name, but \"=example.com\" says this name only (in \"=example.com\")",
            ),
        ];
        for (row, expected) in cases {
            assert_eq!(error(&format!("{row},")), expected, "{row}");
        }
    }

    #[test]
    fn unknown_types_and_actions_are_errors_naming_what_is_accepted() {
        assert_eq!(
            error("example.com,host,"),
            "block.csv:2: unknown type \"host\": expected address (or ip, cidr), name (or domain), name_only (or exact), \
             subdomains_only, name_and_subdomains, or empty to infer (in \"example.com\")"
        );
        assert_eq!(
            error("example.com,,deny"),
            "block.csv:2: unknown action \"deny\": expected block or allow (or empty for the list's block) (in \"example.com\")"
        );
    }

    #[test]
    fn a_bad_entry_is_reported_with_its_file_line_and_why() {
        assert_eq!(error("192.0.2.256,,"), "block.csv:2: not an IPv4 or IPv6 address: \"192.0.2.256\" (in \"192.0.2.256\")");
        assert_eq!(error("example..com,name,"), "block.csv:2: empty label: two dots in a row (in \"example..com\")");
        assert_eq!(
            error("https://example.com/,,"),
            "block.csv:2: a URL, not a host name: write the host name alone (example.com) (in \"https://example.com/\")"
        );
        assert_eq!(error(",name,block"), "block.csv:2: empty entry (in \"\")");
        assert!(error("com,,").starts_with("block.csv:2: \"com\" is a single label"));
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_is_an_error() {
        assert_eq!(
            error("example.com,name,block,extra"),
            "block.csv:2: 4 field(s), but the header has 3: every row has one field per column (a field holding a comma is \
             quoted) (in \"example.com,name,block,extra\")"
        );
        assert_eq!(
            error("example.com"),
            "block.csv:2: 1 field(s), but the header has 3: every row has one field per column (a field holding a comma is \
             quoted) (in \"example.com\")"
        );
    }

    #[test]
    fn one_bad_row_among_good_ones_refuses_the_whole_file_and_every_bad_row_is_listed() {
        let text = "\
entry,action
a.example,
b.example,maybe
c.example,allow
exa mple.com,
d.example,
";
        assert_eq!(
            errors(text),
            [
                "block.csv:3: unknown action \"maybe\": expected block or allow (or empty for the list's block) (in \"b.example\")",
                "block.csv:5: contains whitespace: one entry per line (a comment starts with '#') (in \"exa mple.com\")",
            ]
        );
    }

    #[test]
    fn a_missing_or_unrecognised_header_refuses_the_file_at_line_one() {
        assert_eq!(
            malformed("example.com\nexample.net\n"),
            "block.csv:1: the header has no \"entry\" column (found \"example.com\"): the first row that is not a comment names \
             the columns: entry (required), and optionally type, action, comment; nothing from this file was applied"
        );
        assert_eq!(
            malformed("domain,action\nexample.com,block\n"),
            "block.csv:1: the header has no \"entry\" column (found \"domain\", \"action\"): the first row that is not a comment \
             names the columns: entry (required), and optionally type, action, comment; nothing from this file was applied"
        );
        assert_eq!(
            malformed(""),
            "block.csv:1: no header row: a CSV list starts with a header naming its columns: entry (required), and optionally \
             type, action, comment; nothing from this file was applied"
        );
        assert_eq!(
            malformed("# only a comment\n\n"),
            "block.csv:1: no header row: a CSV list starts with a header naming its columns: entry (required), and optionally \
             type, action, comment; nothing from this file was applied"
        );
    }

    #[test]
    fn the_header_is_found_after_leading_comments_and_its_problems_name_its_line() {
        assert_eq!(shown("# list\n\nentry\nexample.com\n"), ["example.com"]);
        let msg = malformed("# list\n\n# columns:\nEntry,entry\nexample.com,example.net\n");
        assert!(msg.starts_with("block.csv:4: the header names column \"entry\" twice"), "{msg}");
        let errs = errors("# list\nentry\n# bad ones:\n\n# here\nexample..com\n");
        assert_eq!(errs, ["block.csv:6: empty label: two dots in a row (in \"example..com\")"]);
    }

    #[test]
    fn a_header_alone_is_an_empty_list() {
        let (p, s) = parse("entry,type,action,comment\n").unwrap();
        assert!(p.is_empty());
        assert_eq!((s.entries, s.lines), (0, 1));
    }

    #[test]
    fn a_name_listed_twice_in_two_modes_is_one_entry_with_both() {
        let (p, s) = parse("entry,type\nexample.com,name_only\nexample.com,subdomains_only\n").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].target.to_string(), "example.com");
        assert!(matches!(p[0].target, Target::Name(_)));
        assert_eq!((s.duplicates, s.names), (1, 1));
    }
}
