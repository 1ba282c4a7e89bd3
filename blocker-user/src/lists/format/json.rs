//! The JSON list format.
//!
//! ```json
//! { "version": 1, "generated": "2026-11-01T00:00:00Z",
//!   "entries": [
//!     "192.0.2.0/24",
//!     "=www.example.net",
//!     { "entry": "example.org", "type": "subdomains_only", "action": "block", "comment": "order 12" }
//!   ] }
//! ```
//!
//! The document is an array of entries, or an object whose `entries` key holds that array (its
//! other keys are ignored). An element is a string, written as a text list line (no comment) and
//! taking the list's defaults, or an object with a string `entry` and optionally `type`, `action`
//! and `comment` (strings or null), meaning what `format/mod.rs` says; other keys are ignored.
//! Each bad element is reported at its JSON path, `file:$.entries[3]: reason (in "entry")`, or
//! the path of the field at fault (`$.entries[3].action`); any bad element refuses the whole
//! file. Broken JSON refuses it at the line of the syntax error.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Field, Record, interpret, malformed};
use crate::lists::{
    entry::Locus,
    error::ListError,
    parse::{Collector, ListSummary, ParseOptions, ParsedEntry},
};

const EXPECTED: &str = "a JSON list is an array of entries, or an object with an \"entries\" array";

/// Parses a JSON list under the list's defaults. `source` only names it in messages. The
/// summary's `lines` counts the elements.
pub(super) fn parse_json(source: &Path, text: &str, opts: &ParseOptions) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
    if text.trim().is_empty() {
        return Err(malformed(source, Some(Locus::Line(1)), format!("empty file: {EXPECTED}")));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| syntax_error(source, &e))?;
    let (base, elements) = match &doc {
        Value::Array(a) => ("$", a),
        Value::Object(o) => match o.get("entries") {
            Some(Value::Array(a)) => ("$.entries", a),
            Some(other) => {
                let reason = format!("\"entries\" is {}: {EXPECTED}", describe(other));
                return Err(malformed(source, Some(Locus::Json("$.entries".into())), reason));
            }
            None => {
                let keys = o.keys().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
                let has = if keys.is_empty() { "an empty object".to_string() } else { format!("an object with keys {keys}") };
                return Err(malformed(source, None, format!("{has} but no \"entries\": {EXPECTED}")));
            }
        },
        other => return Err(malformed(source, None, format!("the document is {}: {EXPECTED}", describe(other)))),
    };

    let mut c = Collector::new();
    for (i, element) in elements.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let (record, shown) = match element {
            Value::String(s) => (Record { entry: s.trim(), ty: None, action: None }, s.as_str()),
            Value::Object(o) => match object_record(o) {
                Ok(r) => {
                    let entry = r.entry;
                    (r, entry)
                }
                Err((key, reason)) => {
                    c.reject(Locus::Json(format!("{path}{key}")), &compact(element), reason);
                    continue;
                }
            },
            other => {
                let reason = format!(
                    "{} is not an entry: an element is a string (\"example.com\") or an object with an \"entry\" key",
                    describe(other)
                );
                c.reject(Locus::Json(path), &compact(other), reason);
                continue;
            }
        };
        match interpret(&record, opts) {
            Ok((kind, target)) => c.accept(Locus::Json(path), kind, target),
            Err((field, reason)) => {
                let at = match field {
                    Field::Record => path,
                    Field::Type => format!("{path}.type"),
                    Field::Action => format!("{path}.action"),
                };
                c.reject(Locus::Json(at), shown, reason);
            }
        }
    }
    c.set_lines(elements.len());
    c.finish(source)
}

/// The fields of an object element; on error, the path suffix of the key at fault (empty for
/// the object itself) and why.
fn object_record(o: &Map<String, Value>) -> Result<Record<'_>, (&'static str, String)> {
    let entry = match o.get("entry") {
        Some(Value::String(s)) => s.trim(),
        None | Some(Value::Null) => {
            return Err(("", "no \"entry\": an object element names its entry as {\"entry\": \"example.com\", ...}".to_string()));
        }
        Some(other) => return Err((".entry", format!("\"entry\" is {}, not a string", describe(other)))),
    };
    let text = |key: &'static str, suffix: &'static str| match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err((suffix, format!("{key:?} is {}, not a string", describe(other)))),
    };
    Ok(Record { entry, ty: text("type", ".type")?, action: text("action", ".action")? })
}

fn syntax_error(source: &Path, e: &serde_json::Error) -> ListError {
    let msg = e.to_string();
    let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m);
    malformed(source, Some(Locus::Line(e.line().max(1))), format!("not valid JSON: {msg} (column {})", e.column()))
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An element as written (compactly), for messages; long ones cut short.
fn compact(v: &Value) -> String {
    const MAX: usize = 80;
    let s = v.to_string();
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::{
        ListKind,
        format::{Format, parse_source, tests::entries},
    };

    fn parse(text: &str) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
        parse_source(Path::new("block.json"), text.as_bytes(), Format::Json, &ParseOptions::new(ListKind::Block))
    }

    fn shown(text: &str) -> Vec<String> {
        entries(Format::Json, text).into_iter().map(|(t, _)| t).collect()
    }

    /// The errors of a refused document, as printed, one per bad element.
    fn errors(text: &str) -> Vec<String> {
        let e = parse(text).expect_err("the file is refused");
        assert!(matches!(e, ListError::Invalid { .. }), "{e}");
        let msg = e.to_string();
        let mut lines: Vec<String> = msg.lines().map(str::to_string).collect();
        assert_eq!(lines.pop().unwrap(), format!("block.json: rejected: {} invalid element(s); nothing from this file was applied", lines.len()));
        lines
    }

    /// The one error of `{"entries": ["a.example", ELEMENT]}`, which is at `$.entries[1]`.
    fn error(element: &str) -> String {
        let errs = errors(&format!("{{\"entries\": [\"a.example\", {element}]}}"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        errs.into_iter().next().unwrap()
    }

    /// The problem of a document refused as a whole.
    fn malformed(text: &str) -> String {
        let e = parse(text).expect_err("the file is refused");
        assert!(matches!(e, ListError::Malformed { .. }), "{e}");
        e.to_string()
    }

    #[test]
    fn a_document_is_an_array_or_an_object_with_an_entries_array() {
        assert_eq!(shown(r#"["example.com", "192.0.2.1"]"#), ["example.com", "192.0.2.1/32"]);
        let doc = r#"{"version": 2, "generated": "2026-11-01", "publisher": {"name": "x"}, "entries": ["example.com"]}"#;
        assert_eq!(shown(doc), ["example.com"]);
        assert_eq!(shown("[]"), Vec::<String>::new());
    }

    #[test]
    fn entries_are_located_by_their_json_path() {
        let (p, s) = parse(r#"{"entries": ["a.example", {"entry": "b.example"}]}"#).unwrap();
        assert_eq!(p.iter().map(|e| e.at.to_string()).collect::<Vec<_>>(), ["$.entries[0]", "$.entries[1]"]);
        let (p, _) = parse(r#"["a.example", "b.example"]"#).unwrap();
        assert_eq!(p[1].at, Locus::Json("$[1]".into()));
        assert_eq!(s.lines, 2, "a JSON list counts its elements");
    }

    #[test]
    fn a_string_element_is_a_text_line_with_the_list_defaults() {
        assert_eq!(shown(r#"[" =a.example ", "*.b.example", "c.example", "2001:db8::/32"]"#), ["=a.example", "*.b.example", "c.example", "2001:db8::/32"]);
        let exact = ParseOptions { kind: ListKind::Allow, subdomains: false };
        let (p, _) = parse_source(Path::new("x.json"), br#"["c.example"]"#, Format::Json, &exact).unwrap();
        assert_eq!((p[0].target.to_string(), p[0].kind), ("=c.example".to_string(), ListKind::Allow));
    }

    #[test]
    fn an_object_element_may_give_type_action_and_comment_and_other_keys_are_ignored() {
        let doc = r#"[
            {"entry": "a.example", "type": "Name_Only", "action": "ALLOW", "comment": "ours", "added": 2026},
            {"entry": "b.example", "type": "subdomains_only", "action": null, "comment": null},
            {"entry": "192.0.2.0/24", "type": "cidr"},
            {"entry": "=c.example", "type": ""},
            {"entry": "d.example", "type": "exact", "action": "block"}
        ]"#;
        assert_eq!(
            entries(Format::Json, doc),
            [
                ("=a.example".to_string(), ListKind::Allow),
                ("*.b.example".to_string(), ListKind::Block),
                ("192.0.2.0/24".to_string(), ListKind::Block),
                ("=c.example".to_string(), ListKind::Block),
                ("=d.example".to_string(), ListKind::Block),
            ]
        );
    }

    #[test]
    fn a_bad_entry_is_reported_at_the_element() {
        assert_eq!(error(r#""exa mple.com""#), "block.json:$.entries[1]: contains whitespace: one entry per line (a comment starts with '#') (in \"exa mple.com\")");
        assert_eq!(error(r#"{"entry": "192.0.2.0/33"}"#), "block.json:$.entries[1]: prefix length /33 is longer than /32 (in \"192.0.2.0/33\")");
        assert_eq!(error(r#""""#), "block.json:$.entries[1]: empty entry (in \"\")");
        let errs = errors(r#"["example..com"]"#);
        assert_eq!(errs, ["block.json:$[0]: empty label: two dots in a row (in \"example..com\")"]);
    }

    #[test]
    fn a_wrong_field_is_reported_at_its_own_path() {
        assert_eq!(
            error(r#"{"entry": "b.example", "action": "deny"}"#),
            "block.json:$.entries[1].action: unknown action \"deny\": expected block or allow (or empty for the list's block) (in \"b.example\")"
        );
        assert_eq!(
            error(r#"{"entry": "b.example", "action": true}"#),
            "block.json:$.entries[1].action: \"action\" is a boolean, not a string (in \"{\\\"action\\\":true,\\\"entry\\\":\\\"b.example\\\"}\")"
        );
        assert!(error(r#"{"entry": "b.example", "type": "host"}"#).starts_with("block.json:$.entries[1].type: unknown type \"host\": expected address"));
        assert_eq!(
            error(r#"{"entry": "b.example", "type": "address"}"#),
            "block.json:$.entries[1].type: type \"address\" says an address or CIDR, but \"b.example\" is not one (in \"b.example\")"
        );
        assert_eq!(
            error(r#"{"entry": "*.b.example", "type": "name_only"}"#),
            "block.json:$.entries[1].type: type \"name_only\" (this name only) gives the mode, so the entry is written as a bare name, \
             but \"*.b.example\" says subdomains only (in \"*.b.example\")"
        );
        assert_eq!(error(r#"{"entry": 42}"#), "block.json:$.entries[1].entry: \"entry\" is a number, not a string (in \"{\\\"entry\\\":42}\")");
    }

    #[test]
    fn an_element_without_an_entry_or_of_another_kind_is_an_error() {
        assert_eq!(
            error(r#"{"name": "b.example"}"#),
            "block.json:$.entries[1]: no \"entry\": an object element names its entry as {\"entry\": \"example.com\", ...} \
             (in \"{\\\"name\\\":\\\"b.example\\\"}\")"
        );
        assert_eq!(
            error("17"),
            "block.json:$.entries[1]: a number is not an entry: an element is a string (\"example.com\") or an object with an \
             \"entry\" key (in \"17\")"
        );
        assert!(error(r#"["x.example"]"#).starts_with("block.json:$.entries[1]: an array is not an entry"));
        assert!(error("null").starts_with("block.json:$.entries[1]: null is not an entry"));
    }

    #[test]
    fn one_bad_element_among_good_ones_refuses_the_whole_file_and_every_bad_one_is_listed() {
        let doc = r#"["a.example", {"entry": "b.example", "action": "maybe"}, "c.example", "192.0.2.256", "d.example"]"#;
        assert_eq!(
            errors(doc),
            [
                "block.json:$[1].action: unknown action \"maybe\": expected block or allow (or empty for the list's block) (in \"b.example\")",
                "block.json:$[3]: not an IPv4 or IPv6 address: \"192.0.2.256\" (in \"192.0.2.256\")",
            ]
        );
    }

    #[test]
    fn broken_json_is_refused_at_the_line_of_the_error_with_its_column() {
        let doc = "{\"entries\": [\n  \"a.example\",\n  \"b.example\"\n  \"c.example\"\n]}\n";
        assert_eq!(
            malformed(doc),
            "block.json:4: not valid JSON: expected `,` or `]` (column 3); nothing from this file was applied"
        );
        assert_eq!(malformed("[\"a.example\",]"), "block.json:1: not valid JSON: trailing comma (column 14); nothing from this file was applied");
        assert_eq!(
            malformed("[\"a.example\"] x"),
            "block.json:1: not valid JSON: trailing characters (column 15); nothing from this file was applied"
        );
    }

    #[test]
    fn a_document_of_another_shape_says_what_was_expected() {
        let tail = "a JSON list is an array of entries, or an object with an \"entries\" array; nothing from this file was applied";
        assert_eq!(malformed(r#""example.com""#), format!("block.json: the document is a string: {tail}"));
        assert_eq!(malformed(r#"{"list": []}"#), format!("block.json: an object with keys \"list\" but no \"entries\": {tail}"));
        assert_eq!(malformed("{}"), format!("block.json: an empty object but no \"entries\": {tail}"));
        assert_eq!(malformed(r#"{"entries": "example.com"}"#), format!("block.json:$.entries: \"entries\" is a string: {tail}"));
        assert_eq!(malformed("  \n"), format!("block.json:1: empty file: {tail}"));
    }

    #[test]
    fn long_elements_are_cut_short_in_messages() {
        let long = format!(r#"{{"entry": 1, "comment": "{}"}}"#, "x".repeat(200));
        let msg = error(&long);
        assert!(msg.ends_with("...\")"), "{msg}");
        assert!(msg.len() < 200, "{msg}");
    }
}
