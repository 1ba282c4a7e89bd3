//! Names as the program judges them (ARCHITECTURE.md, "Names"): lowercase ASCII, one trailing
//! dot ignored, labels of 1-63 bytes of `a-z 0-9 - _`, at most 253 bytes. Anything else is a
//! name the program cannot normalise, so it does not judge it (the reader's `*_unparsed`).

/// Longest name (without the trailing dot), RFC 1035 §2.3.4 as presentation text.
pub const MAX_NAME: usize = 253;
/// Longest label, RFC 1035 §2.3.4.
pub const MAX_LABEL: usize = 63;

/// A name byte as listed names hold it, lowercased; None for a byte no listed name has.
pub fn name_byte(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b.to_ascii_lowercase()),
        b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => Some(b),
        _ => None,
    }
}

/// The normalised form of dotted text (an SNI, a Host), or None when it is not a name.
pub fn normalise(text: &[u8]) -> Option<String> {
    let text = text.strip_suffix(b".").unwrap_or(text);
    if text.is_empty() || text.len() > MAX_NAME {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for label in text.split(|&b| b == b'.') {
        if label.is_empty() || label.len() > MAX_LABEL {
            return None;
        }
        if !out.is_empty() {
            out.push('.');
        }
        for &b in label {
            out.push(name_byte(b)? as char);
        }
    }
    Some(out)
}

/// The normalised form of a name given as wire labels (a DNS QNAME without its root byte).
pub fn from_labels(labels: &[&[u8]]) -> Option<String> {
    let mut out = String::new();
    for label in labels {
        if label.is_empty() || label.len() > MAX_LABEL {
            return None;
        }
        if !out.is_empty() {
            out.push('.');
        }
        for &b in *label {
            out.push(name_byte(b)? as char);
        }
    }
    (!out.is_empty() && out.len() <= MAX_NAME).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_one_trailing_dot() {
        assert_eq!(normalise(b"WWW.Example.COM.").as_deref(), Some("www.example.com"));
        assert_eq!(normalise(b"a_b-c.example"), Some("a_b-c.example".into()));
        for bad in [&b""[..], b".", b"a..b", b".a", b"a.b..", b"a b", b"a*b.example", b"\xc3\xa9.example"] {
            assert_eq!(normalise(bad), None, "{bad:?}");
        }
        let l63 = "a".repeat(63);
        assert!(normalise(format!("{l63}.example").as_bytes()).is_some());
        assert!(normalise(format!("a{l63}.example").as_bytes()).is_none());
        let n253 = [l63.as_str(); 4].join(".")[..253].to_string();
        assert!(normalise(n253.as_bytes()).is_some());
        assert!(normalise(format!("{n253}.").as_bytes()).is_some());
        assert!(normalise(format!("{n253}a").as_bytes()).is_none());
    }
}
