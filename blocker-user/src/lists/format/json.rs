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
//! other keys are ignored: they are the publisher's). An element is a string, written as a text
//! list line (no comment) and taking the list's defaults, or an object with a string `entry` and
//! optionally `type`, `action` and `comment` (strings or null), meaning what `format/mod.rs`
//! says, and no other key: a misspelt `type` must not leave a name to the list's default. Each
//! bad element is reported at its JSON path, `file:$.entries[3]: reason (in "entry")`, or the
//! path of the key at fault (`$.entries[3].action`); any bad element refuses the whole file.
//! Broken JSON refuses it at the line of the syntax error, and so does a key given twice in any
//! object (a JSON reader would keep one of the two values without a word).

use std::{fmt, path::Path};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
    let doc = read_document(text).map_err(|e| syntax_error(source, &e))?;
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

/// The keys an entry object may have.
const KEYS: [&str; 4] = ["entry", "type", "action", "comment"];

/// The fields of an object element; on error, the path suffix of the key at fault (empty for
/// the object itself) and why.
fn object_record(o: &Map<String, Value>) -> Result<Record<'_>, (String, String)> {
    let entry = match o.get("entry") {
        Some(Value::String(s)) => s.trim(),
        None | Some(Value::Null) => {
            return Err((String::new(), "no \"entry\": an object element names its entry as {\"entry\": \"example.com\", ...}".to_string()));
        }
        Some(other) => return Err((".entry".into(), format!("\"entry\" is {}, not a string", describe(other)))),
    };
    if let Some(key) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
        let reason = format!("unknown key {key:?}: an entry object has \"entry\" and optionally \"type\", \"action\" and \"comment\"");
        return Err((key_step(key), reason));
    }
    let text = |key: &'static str| match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err((format!(".{key}"), format!("{key:?} is {}, not a string", describe(other)))),
    };
    Ok(Record { entry, ty: text("type")?, action: text("action")? })
}

/// Reads the document as `serde_json::Value` would, but refuses a key given twice in an object
/// (a `Value` keeps the last value without a word), naming the key and its path.
fn read_document(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = Strict(Step::Root).deserialize(&mut de)?;
    de.end()?;
    Ok(doc)
}

/// Where a value is in the document, written out only for a message.
#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Index(&'a Step<'a>, usize),
    Key(&'a Step<'a>, &'a str),
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Root => f.write_str("$"),
            Step::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Step::Key(parent, key) => write!(f, "{parent}{}", key_step(key)),
        }
    }
}

/// The step to a key in a path: `.key`, or `["the key"]` when it is not a plain word.
fn key_step(key: &str) -> String {
    let plain = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { format!(".{key}") } else { format!("[{key:?}]") }
}

/// Reads the value at a step of the document.
struct Strict<'a>(Step<'a>);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(Strict(Step::Index(&self.0, out.len())))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let at = Step::Key(&self.0, &key);
                return Err(de::Error::custom(format!("key {key:?} given twice, at {at}")));
            }
            let v = map.next_value_seed(Strict(Step::Key(&self.0, &key)))?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// A syntax error, or a key given twice (the only error the document's reader makes itself).
fn syntax_error(source: &Path, e: &serde_json::Error) -> ListError {
    let msg = e.to_string();
    let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m);
    let reason = match e.classify() {
        serde_json::error::Category::Data => {
            format!("{msg} (column {}): a key is given once per object: one of the two values would be lost", e.column())
        }
        _ => format!("not valid JSON: {msg} (column {})", e.column()),
    };
    malformed(source, Some(Locus::Line(e.line().max(1))), reason)
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
    fn an_object_element_may_give_type_action_and_comment() {
        let doc = r#"[
            {"entry": "a.example", "type": "Name_Only", "action": "ALLOW", "comment": "ours"},
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
    fn an_unknown_key_in_an_entry_object_is_an_error_at_its_path() {
        // Ignored, a misspelt "type" would leave the name to the list's default, with its subdomains.
        assert_eq!(
            error(r#"{"entry": "www.example.com", "tpye": "name_only"}"#),
            "block.json:$.entries[1].tpye: unknown key \"tpye\": an entry object has \"entry\" and optionally \"type\", \
             \"action\" and \"comment\" (in \"{\\\"entry\\\":\\\"www.example.com\\\",\\\"tpye\\\":\\\"name_only\\\"}\")"
        );
        assert!(error(r#"{"entry": "b.example", "Type": "name_only"}"#).starts_with("block.json:$.entries[1].Type: unknown key \"Type\""));
        assert!(error(r#"{"entry": "b.example", "added": 2026}"#).starts_with("block.json:$.entries[1].added: unknown key \"added\""));
        assert!(error(r#"{"entry": "b.example", "the type": "x"}"#).starts_with("block.json:$.entries[1][\"the type\"]: unknown key \"the type\""));
    }

    #[test]
    fn a_key_given_twice_refuses_the_file_at_its_line_naming_it_and_its_path() {
        // A JSON reader keeps one of the two values and drops the other without a word.
        let tail = "a key is given once per object: one of the two values would be lost; nothing from this file was applied";
        assert_eq!(
            malformed(r#"{"entries": ["a.example"], "entries": ["b.example"]}"#),
            format!("block.json:1: key \"entries\" given twice, at $.entries (column 36): {tail}")
        );
        assert_eq!(
            malformed("[\n  \"a.example\",\n  {\"entry\": \"b.example\",\n   \"entry\": \"c.example\"}\n]"),
            format!("block.json:4: key \"entry\" given twice, at $[1].entry (column 10): {tail}")
        );
        let msg = malformed(r#"{"version": 1, "publisher": {"name": "x", "name": "y"}, "entries": []}"#);
        assert!(msg.starts_with("block.json:1: key \"name\" given twice, at $.publisher.name (column "), "{msg}");
        let msg = malformed(r#"[{"entry": "a.example", "action": "allow", "action": "block"}]"#);
        assert!(msg.starts_with("block.json:1: key \"action\" given twice, at $[0].action (column "), "{msg}");
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
