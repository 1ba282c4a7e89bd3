//! DNS queries the program answers (ARCHITECTURE.md, "DNS"), from RFC 1035 §4.1 and RFC 6891
//! §6.1: a standard query (QR 0, OPCODE 0, TC 0) with exactly one question, no answer or
//! authority records, at most one additional record which is an OPT record, and nothing after
//! it; a question name of uncompressed labels (at most 63 bytes each, at most 255 bytes on the
//! wire) in class IN. Bounds the program adds: the message is 17 to 4096 bytes, the OPT
//! record's VERSION is 0 (RFC 6891 §6.1.3: a higher version wants BADVERS, not an answer), and
//! the name is one the program can normalise (name.rs). Anything else is not judged
//! (`dns_unparsed`): a wrong answer is worse than none.

use super::name;

/// Longest message judged.
pub const MAX_QUERY: usize = 4096;
/// Header (12), root name (1), QTYPE and QCLASS (4).
pub const MIN_QUERY: usize = 17;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// Not a query the program judges.
    Unparsed,
    /// A query for the root name: valid, and never listed.
    Root,
    /// The question's name, normalised.
    Name(String),
}

const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

fn be16(m: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(m.get(at..at + 2)?.try_into().ok()?))
}

/// Reads a whole DNS message (the UDP payload).
pub fn read_query(m: &[u8]) -> Query {
    read(m).unwrap_or(Query::Unparsed)
}

fn read(m: &[u8]) -> Option<Query> {
    if !(MIN_QUERY..=MAX_QUERY).contains(&m.len()) {
        return None;
    }
    let flags = be16(m, 2)?;
    let (qd, an, ns, ar) = (be16(m, 4)?, be16(m, 6)?, be16(m, 8)?, be16(m, 10)?);
    let qr = flags >> 15;
    let opcode = (flags >> 11) & 0xf;
    let tc = (flags >> 9) & 1;
    if qr != 0 || opcode != 0 || tc != 0 || qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    // QNAME: length-prefixed labels up to the root label. 0x40..=0xff are compression pointers
    // (0xc0) and reserved label types (RFC 6891 §5): a question is never compressed.
    let mut at = 12;
    let mut labels: Vec<&[u8]> = Vec::new();
    loop {
        let len = usize::from(*m.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > name::MAX_LABEL {
            return None;
        }
        labels.push(m.get(at + 1..at + 1 + len)?);
        at += 1 + len;
    }
    if at - 12 > 255 {
        return None;
    }
    let _qtype = be16(m, at)?;
    if be16(m, at + 2)? != CLASS_IN {
        return None;
    }
    let rest = &m[at + 4..];
    if ar == 0 {
        if !rest.is_empty() {
            return None;
        }
    } else {
        // OPT (RFC 6891 §6.1.2): root owner, TYPE 41, CLASS = UDP payload size, TTL =
        // extended RCODE, VERSION, flags; RDLENGTH bytes of options ending the message.
        let opt = rest.get(..11)?;
        let rdlen = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
        if opt[0] != 0 || u16::from_be_bytes([opt[1], opt[2]]) != TYPE_OPT || opt[6] != 0 || 11 + rdlen != rest.len() {
            return None;
        }
    }
    if labels.is_empty() {
        return Some(Query::Root);
    }
    name::from_labels(&labels).map(Query::Name)
}

/// A query for `name` (dotted, as given) with `qtype`, RD set, optionally with an OPT record.
pub fn build_query(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns as u8]);
    for l in name.split('.').filter(|l| !l.is_empty()) {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.push(0);
    q.extend(qtype.to_be_bytes());
    q.extend(CLASS_IN.to_be_bytes());
    if edns {
        q.extend([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_question_name() {
        assert_eq!(read_query(&build_query(1, "WWW.Blocked.example", 1, false)), Query::Name("www.blocked.example".into()));
        assert_eq!(read_query(&build_query(1, "blocked.example", 28, true)), Query::Name("blocked.example".into()));
        assert_eq!(read_query(&build_query(1, "", 2, false)), Query::Root);
    }

    #[test]
    fn anything_it_does_not_fully_understand_is_unparsed() {
        let q = build_query(7, "blocked.example", 1, true);
        let mut response = q.clone();
        response[2] |= 0x80;
        let mut two = q.clone();
        two[5] = 2;
        let mut chaos = build_query(7, "blocked.example", 1, false);
        let n = chaos.len();
        chaos[n - 1] = 3;
        let mut pointer = build_query(7, "x", 1, false);
        pointer.splice(12..14, [0xc0, 0x0c]);
        let mut trailing = build_query(7, "blocked.example", 1, false);
        trailing.push(0);
        let mut bad_char = build_query(7, "bl*cked.example", 1, false);
        bad_char[14] = b'*';
        for m in [response, two, chaos, pointer, trailing, bad_char, q[..q.len() - 1].to_vec()] {
            assert_eq!(read_query(&m), Query::Unparsed, "{m:02x?}");
        }
    }
}
