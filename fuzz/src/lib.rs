//! The checks behind the fuzz targets (fuzz_targets/*.rs), one function each: each must never
//! panic on any input except where an invariant is broken, which is a finding.
//!
//! - `list_round_trip`: the list parsers (text, CSV, JSON) never panic, and every accepted
//!   entry, written back in list syntax (`Display`), parses to the same entry.
//! - `dns_query`, `client_hello`, `http_head`: the reference model's parsers
//!   (`blocker_tests::model`) never panic, and keep simple invariants: a streaming reader's
//!   outcome on a prefix of its input is "pending" or its outcome on the whole input; bytes the
//!   segment declares but the frame lacks can only make it "unparsed"; a name found is one the
//!   input holds.
//! - `verdict_model`: the model's verdict on any frame: no panic, deterministic, only the
//!   fail-open policy's reasons take a frame away, with nothing listed every frame passes.

use std::path::Path;

use blocker_tests::model::{
    self, Action, Config, Kind, PlainLists, Reason,
    dns::{self, Query},
    frame::Payload,
    http::{self, Head},
    name,
    tls::{self, Hello},
};
use blocker_user::lists::{Format, ListKind, ParseOptions, parse_entry_with, parse_source};

/// The first byte chooses the list's defaults (kind, what a bare name covers); the rest is the
/// list source.
pub fn list_round_trip(data: &[u8], format: Format) {
    let Some((&opts, body)) = data.split_first() else { return };
    let kind = if opts & 1 == 0 { ListKind::Block } else { ListKind::Allow };
    let opts = ParseOptions { kind, subdomains: opts & 2 == 0 };
    let Ok((entries, summary)) = parse_source(Path::new("fuzz.list"), body, format, &opts) else { return };
    assert!(summary.entries <= entries.len(), "summary counts {} entries, {} returned", summary.entries, entries.len());
    for e in &entries {
        let text = e.target.to_string();
        let again = parse_entry_with(&text, &ParseOptions::new(e.kind))
            .unwrap_or_else(|err| panic!("accepted entry {:?} written as {text:?} does not parse: {err}", e.target));
        assert_eq!(again, e.target, "entry written as {text:?} reads back differently");
    }
}

/// Steps through cut points of `n` bytes: all of them for short inputs, about 64 otherwise.
fn cuts(n: usize) -> impl Iterator<Item = usize> {
    let step = (n / 64).max(1);
    (0..n).step_by(step)
}

/// A DNS message: the reader never panics; a name it finds is normalised and is the question's
/// name (re-encoded, the same bytes up to case); a query rebuilt for that name reads the same.
pub fn dns_query(data: &[u8]) {
    match dns::read_query(data) {
        Query::Unparsed => {}
        Query::Root => assert_eq!(data[12], 0, "root query without a root name"),
        Query::Name(n) => {
            assert_eq!(name::normalise(n.as_bytes()).as_deref(), Some(n.as_str()), "name not normalised");
            let mut wire = Vec::new();
            for l in n.split('.') {
                wire.push(l.len() as u8);
                wire.extend_from_slice(l.as_bytes());
            }
            wire.push(0);
            let asked = &data[12..12 + wire.len()];
            assert!(asked.eq_ignore_ascii_case(&wire), "name {n:?} is not the question's {asked:02x?}");
            let again = dns::build_query(1, &n, 1, false);
            assert_eq!(dns::read_query(&again), Query::Name(n.clone()));
            // The message must end where its records do.
            let mut longer = data.to_vec();
            longer.push(0);
            assert_eq!(dns::read_query(&longer), Query::Unparsed, "a trailing byte was accepted");
        }
    }
}

fn tls_read(bytes: &[u8], declared: usize) -> Hello {
    tls::read_client_hello(&Payload { bytes, declared })
}

/// Bytes as the start of a TCP stream, and as a handshake message cut into records of other
/// sizes: the outcome does not depend on where records or the segment end.
pub fn client_hello(data: &[u8]) {
    let full = tls_read(data, data.len());
    let _ = tls::starts_client_hello(&Payload { bytes: data, declared: data.len() });
    for cut in cuts(data.len()) {
        let early = tls_read(&data[..cut], cut);
        assert!(early == Hello::Pending || early == full, "prefix of {cut} bytes: {early:?}, whole: {full:?}");
        let missing = tls_read(&data[..cut], data.len());
        assert!(missing == Hello::Unparsed || missing == full, "{cut} of {} bytes present: {missing:?}, whole: {full:?}", data.len());
    }
    if let Hello::Name(n) = &full {
        assert!((1..=name::MAX_NAME).contains(&n.len()));
    }
    // The same bytes as one handshake message in records of `size` bytes.
    let Some((&size, msg)) = data.split_first() else { return };
    if msg.len() > tls::MAX_RECORD {
        return;
    }
    let records = |max: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in msg.chunks(max) {
            out.extend([22, 3, 3]);
            out.extend((chunk.len() as u16).to_be_bytes());
            out.extend(chunk);
        }
        out
    };
    let one = records(tls::MAX_RECORD);
    let many = records(usize::from(size).max(1));
    assert_eq!(tls_read(&one, one.len()), tls_read(&many, many.len()), "records of {size} bytes read differently");
}

fn http_read(bytes: &[u8], declared: usize) -> Head {
    http::read_request_head(&Payload { bytes, declared })
}

/// A request head: outcomes are causal as for the ClientHello; a host found is a run of the
/// input's bytes with none of the characters that end a host after its first byte.
pub fn http_head(data: &[u8]) {
    let full = http_read(data, data.len());
    let _ = http::starts_request(&Payload { bytes: data, declared: data.len() });
    for cut in cuts(data.len()) {
        let early = http_read(&data[..cut], cut);
        assert!(early == Head::Pending || early == full, "prefix of {cut} bytes: {early:?}, whole: {full:?}");
        let missing = http_read(&data[..cut], data.len());
        assert!(missing == Head::Unparsed || missing == full, "{cut} of {} bytes present: {missing:?}, whole: {full:?}", data.len());
    }
    if let Head::Name(host) = &full {
        assert!(!host.is_empty() && host.len() <= name::MAX_NAME + 1, "host of {} bytes", host.len());
        // Space, ':', CR and LF end a host in a Host field and in an absolute-form target alike
        // (a tab ends only the former), except that a Host field's first byte, after its
        // whitespace, may be a ':'.
        assert!(!b" \r\n[".contains(&host[0]), "host {host:?} starts with a delimiter");
        assert!(!host[1..].iter().any(|b| b" :\r\n".contains(b)), "host {host:?} holds a delimiter");
        assert!(data.windows(host.len()).any(|w| w == &host[..]), "host {host:?} is not in the input");
    }
}

fn lists() -> PlainLists {
    let mut l = PlainLists::default();
    l.parse("203.0.113.66\n198.51.100.0/24\n2001:db8:f::66\n2001:db8:b::/48\nblocked.example\n=exact.example\n*.sub.example\n", Kind::Block);
    l.parse("198.51.100.128/25\n2001:db8:b:1::/64\nok.blocked.example\nallowed.example\n", Kind::Allow);
    l.parse("203.0.113.128/25\n2001:db8:5::/48\ntrial.example\n", Kind::Shadow);
    l
}

/// The first byte chooses the switches; the rest is the frame.
pub fn verdict_model(data: &[u8]) {
    let Some((&switches, frame)) = data.split_first() else { return };
    let cfg = Config { tcp_reset: switches & 1 != 0, dns_answers: switches & 2 != 0 };
    let listed = lists();
    let e = model::judge(frame, &listed, &cfg);
    assert_eq!(e, model::judge(frame, &listed, &cfg), "not deterministic");
    let v = e.verdict;
    if !v.action.passes() {
        assert!(
            matches!(v.reason, Reason::DstV4 | Reason::DstV6 | Reason::Sni | Reason::HttpHost | Reason::DnsName),
            "{v} takes a frame away without a listed match"
        );
    }
    assert!(cfg.tcp_reset || v.action != Action::TcpReset, "a reset with resets off");
    assert!(cfg.dns_answers || v.action != Action::DnsAnswer, "a DNS answer with answers off");
    if let Some(k) = e.known {
        assert_ne!(k.kernel, v, "a known departure that does not depart");
    }
    let nothing = model::judge(frame, &PlainLists::default(), &cfg);
    assert_eq!(nothing.verdict.action, Action::Pass, "with nothing listed: {}", nothing.verdict);
}
