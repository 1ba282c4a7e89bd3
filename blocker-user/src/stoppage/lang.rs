//! `Accept-Language` negotiation between the page's two languages (RFC 9110 §12.5.4, RFC 4647).

use super::config::Language;

/// Language ranges looked at; a longer header is cut (browsers send a handful).
const MAX_RANGES: usize = 32;

/// What the header says about one of our languages: its weight (thousandths) and where it was first
/// mentioned (index of the range), or nothing.
#[derive(Clone, Copy, Default)]
struct Pref {
    q: Option<u16>,
    pos: usize,
}

impl Pref {
    fn merge(&mut self, q: u16, pos: usize) {
        match self.q {
            None => *self = Pref { q: Some(q), pos },
            Some(old) => self.q = Some(old.max(q)),
        }
    }
}

/// Picks `ja` or `en` for an `Accept-Language` value.
///
/// - A range matches a language by its primary subtag, any case: `ja`, `ja-JP`, `JA` mean Japanese;
///   `en`, `en-US`, `en-GB` mean English. The highest q of a language's ranges is its weight.
/// - `*` gives its weight to a language the header does not name.
/// - The language with the highest weight above 0 wins; on a tie, the one mentioned first (browsers
///   list in order of preference); on a tie through `*`, `default`.
/// - If neither is acceptable (no header, empty, only other languages, or all q=0): `default`, unless
///   the header refuses it outright (`ja;q=0`) and not the other one.
/// - Malformed ranges or q-values are skipped, not fatal; only the first 32 ranges count.
///
/// Examples with `default` = `ja`: `en;q=0.9, ja;q=0.8` → en; `ja-JP` → ja; `fr, en;q=0.5` → en;
/// `fr` → ja; `*` → ja; none → ja.
pub fn negotiate_language(header: Option<&str>, default: Language) -> Language {
    let Some(header) = header else { return default };
    let mut ja = Pref::default();
    let mut en = Pref::default();
    let mut star = Pref::default();
    for (pos, item) in header.split(',').take(MAX_RANGES).enumerate() {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim();
        if !valid_range(range) {
            continue;
        }
        let mut q = Some(1000);
        for param in parts {
            let param = param.trim();
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = parse_qvalue(value.trim());
            }
        }
        let Some(q) = q else { continue };
        if range == "*" {
            star.merge(q, pos);
        } else {
            match Language::from_tag(range) {
                Some(Language::Ja) => ja.merge(q, pos),
                Some(Language::En) => en.merge(q, pos),
                None => {}
            }
        }
    }
    let resolve = |p: Pref| if p.q.is_some() { p } else { star };
    let (ja, en) = (resolve(ja), resolve(en));
    let weight = |p: Pref| p.q.unwrap_or(0);
    let (wj, we) = (weight(ja), weight(en));
    if wj == 0 && we == 0 {
        let refused = |p: Pref| p.q == Some(0);
        let (d, o) = match default {
            Language::Ja => (ja, en),
            Language::En => (en, ja),
        };
        return if refused(d) && !refused(o) { default.other() } else { default };
    }
    if wj != we {
        return if wj > we { Language::Ja } else { Language::En };
    }
    if ja.pos != en.pos {
        return if ja.pos < en.pos { Language::Ja } else { Language::En };
    }
    default
}

/// `*` or `alpha{1,8}(-alphanum{1,8})*`.
fn valid_range(r: &str) -> bool {
    if r == "*" {
        return true;
    }
    let mut subtags = r.split('-');
    let first = subtags.next().unwrap_or("");
    let ok = |s: &str, first: bool| {
        (1..=8).contains(&s.len())
            && s.bytes().all(|b| if first { b.is_ascii_alphabetic() } else { b.is_ascii_alphanumeric() })
    };
    ok(first, true) && subtags.all(|s| ok(s, false))
}

/// RFC 9110 qvalue: `0[.ddd]` or `1[.000]`, as thousandths.
fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, f),
        None => (v, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Language::{En, Ja};

    fn pick(h: &str) -> Language {
        negotiate_language(Some(h), Ja)
    }

    #[test]
    fn q_values_and_order() {
        assert_eq!(negotiate_language(None, Ja), Ja);
        assert_eq!(negotiate_language(None, En), En);
        assert_eq!(pick(""), Ja);
        assert_eq!(pick("en"), En);
        assert_eq!(pick("EN-us"), En);
        assert_eq!(pick("ja-JP"), Ja);
        assert_eq!(pick("en;q=0.9, ja;q=0.8"), En);
        assert_eq!(pick("ja;q=0.8, en;q=0.9"), En);
        assert_eq!(pick("en-US,en;q=0.9,ja;q=0.8"), En);
        assert_eq!(pick("ja,en-US;q=0.9,en;q=0.8"), Ja);
        assert_eq!(pick("en, ja"), En);
        assert_eq!(pick("ja, en"), Ja);
        assert_eq!(pick("fr-FR, fr;q=0.9"), Ja);
        assert_eq!(pick("fr, en;q=0.5"), En);
        assert_eq!(pick("*"), Ja);
        assert_eq!(negotiate_language(Some("*"), En), En);
        assert_eq!(pick("*;q=0.5, ja;q=0.1"), En);
        assert_eq!(pick("en;q=0"), Ja);
        assert_eq!(pick("ja;q=0"), En);
        assert_eq!(pick("ja;q=0, en;q=0"), Ja);
        assert_eq!(pick("en-GB;q=0.3, en;q=0.7, ja;q=0.5"), En);
        assert_eq!(pick("zh-Hant-TW, en;q=0.1"), En);
    }

    #[test]
    fn malformed_is_skipped() {
        assert_eq!(pick("en;q=2"), Ja);
        assert_eq!(pick("en;q=0.1234, ja;q=0.1"), Ja);
        assert_eq!(pick("en;q=abc"), Ja);
        assert_eq!(pick("e n, ja;q=0.2"), Ja);
        assert_eq!(pick("<script>, en"), En);
        assert_eq!(pick(",,,;;;=,en;q=0.5"), En);
        assert_eq!(pick("en ; Q=0.9 , ja ; q=0.95"), Ja);
        let long = "fr,".repeat(100) + "en";
        assert_eq!(pick(&long), Ja); // past the first 32 ranges
    }

    #[test]
    fn qvalue_grammar() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("0."), Some(0));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0.125"), Some(125));
        assert_eq!(parse_qvalue(".5"), None);
        assert_eq!(parse_qvalue("-0"), None);
        assert_eq!(parse_qvalue(""), None);
    }
}
