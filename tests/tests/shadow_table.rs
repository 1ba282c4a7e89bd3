//! Lists in shadow mode through the real kernel program (BPF_PROG_TEST_RUN): a frame only a
//! shadow entry matches passes unchanged, counted as `shadow` under the reason a block would
//! have had and against that entry; enforced entries beat shadow ones at any specificity, allow
//! entries beat both; and the kernel's verdict is the reference matcher's (`ListSet::lookup`).

mod support;

use std::collections::HashMap;

use blocker_common::verdict::{Action, Reason};
use blocker_user::{
    datapath::{DnsPolicy, DnsReply, StopPageResponse, XdpAction},
    lists::{ListKind, Verdict},
};
use support::{
    Harness, NEEDS_ROOT, Outcome, dns,
    frames::{Frame, L4, TCP_ACK, TCP_PSH, TCP_SYN, tcp, udp},
    tls::{Hello, segment, sni_offset, stream},
};

/// Enforced block entries. Next to each, how it meets the shadow list.
const BLOCK: &str = "\
203.0.113.0/24
198.51.100.64/26
192.0.2.128/25
2001:db8:e::/48
2001:db8:d:1::/64
blocked.example
=www.trial.example
both.example
";
// 203.0.113.0/24: the shadow 203.0.113.64/26 is inside it (not installed).
// 198.51.100.64/26: inside the shadow 198.51.100.0/24.
// 192.0.2.128/25: the same prefix is in the shadow list.
// 2001:db8:e::/48: the shadow 2001:db8:e:1::/64 is inside it.
// 2001:db8:d:1::/64: inside the shadow 2001:db8:d::/48.
// blocked.example: less specific than the shadow www.blocked.example.
// =www.trial.example: more specific than the shadow trial.example.
// both.example: in both lists.

const ALLOW: &str = "198.51.100.7\n2001:db8:d::7\nok.trial.example\n";

const SHADOW: &str = "\
198.51.100.0/24
203.0.113.64/26
192.0.2.128/25
2001:db8:d::/48
2001:db8:e:1::/64
trial.example
deep.trial.example
www.blocked.example
both.example
=only.example
";

const CLIENT4: &str = "192.0.2.2";
const CLIENT6: &str = "2001:db8:c::2";
/// Unlisted servers and resolvers.
const SERVER4: &str = "192.0.2.10";
const RESOLVER4: &str = "192.0.2.53";

fn harness() -> Harness {
    let mut h = Harness::with_shadow(BLOCK, ALLOW, SHADOW);
    let dns = DnsPolicy { reply: DnsReply::StopPage { v4: Some("192.0.2.80".parse().unwrap()), v6: None }, ..DnsPolicy::default() };
    h.dp.set_dns(&dns).expect("DNS policy");
    let page = StopPageResponse { service_url: "http://192.0.2.1".into(), blocked_by_url: "https://list-body.example/about".into() };
    h.dp.set_stop_page(Some(&page)).expect("stop page");
    h
}

/// The id of the entry of `shadow` enforcement listing `text` (a prefix or a name, as written).
fn id(h: &Harness, text: &str, shadow: bool) -> u32 {
    h.set
        .entries()
        .iter()
        .find(|e| e.shadow == shadow && e.kind == ListKind::Block && e.target.to_string() == text)
        .unwrap_or_else(|| panic!("no {} entry {text}", if shadow { "shadow" } else { "enforced" }))
        .id
}

/// Runs a frame and returns the outcome and which entry counts grew.
fn run(h: &Harness, frame: &[u8]) -> (Outcome, Vec<(u32, u64)>) {
    let before = h.hits();
    let o = h.run(frame);
    let after = h.hits();
    let mut grew: Vec<(u32, u64)> =
        after.iter().filter_map(|(k, v)| Some((*k, v - before.get(k).copied().unwrap_or(0))).filter(|(_, d)| *d > 0)).collect();
    grew.sort();
    (o, grew)
}

/// The frame passes unchanged, counted as shadow for `reason` against the entry `entry`.
fn shadowed(h: &Harness, frame: &[u8], reason: Reason, entry: u32, what: &str) {
    let (o, grew) = run(h, frame);
    assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Shadow, reason), "{what}");
    assert_eq!(o.frame, frame, "{what}: a passed frame is not changed");
    assert_eq!(grew, vec![(entry, 1)], "{what}: counted against the shadow entry");
}

/// The frame is blocked for `reason` by the enforced entry `entry`.
fn blocked(h: &Harness, frame: &[u8], reason: Reason, entry: u32, what: &str) -> Outcome {
    let (o, grew) = run(h, frame);
    assert_ne!(o.action, XdpAction::Pass, "{what}: {o:?}");
    assert!(matches!(o.verdict, Action::TcpReset | Action::Drop | Action::DnsAnswer | Action::StopPage), "{what}: {o:?}");
    assert_eq!(o.reason, reason, "{what}");
    assert_eq!(grew, vec![(entry, 1)], "{what}: counted against the enforced entry");
    o
}

fn syn(dst: &str, dport: u16) -> Vec<u8> {
    let src = if dst.contains(':') { CLIENT6 } else { CLIENT4 };
    tcp(src, dst, dport, TCP_SYN).build()
}

fn hello(sport: u16, sni: &str) -> Vec<u8> {
    segment(CLIENT4, SERVER4, sport, 0, &stream(&Hello { sni: Some(sni), ..Default::default() })).build()
}

fn http(sport: u16, dst: &str, host: &str) -> Vec<u8> {
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let l4 = L4::Tcp { sport, dport: 80, seq: 500_000, ack: 9, flags: TCP_ACK | TCP_PSH, options: vec![], payload: req.into_bytes() };
    Frame::new(CLIENT4, dst, l4).build()
}

/// A standard A query for `name`, as a stub resolver sends it.
fn dns_query(dst: &str, name: &str) -> Vec<u8> {
    udp(CLIENT4, dst, 53, &dns::query(name, 0xbeef)).build()
}

#[test]
#[ignore = "needs root"]
fn a_destination_only_a_shadow_prefix_covers_passes_and_is_counted() {
    let _ = NEEDS_ROOT;
    let h = harness();
    let v4 = id(&h, "198.51.100.0/24", true);
    let v6 = id(&h, "2001:db8:d::/48", true);
    shadowed(&h, &syn("198.51.100.10", 443), Reason::DstV4, v4, "TCP to a shadow IPv4 prefix");
    shadowed(&h, &syn("2001:db8:d::10", 443), Reason::DstV6, v6, "TCP to a shadow IPv6 prefix");
    shadowed(&h, &udp(CLIENT4, "198.51.100.10", 443, b"quic").build(), Reason::DstV4, v4, "UDP");
    // Port 80 with the stop page configured: no SYN-ACK of our own, no 451; the server answers.
    shadowed(&h, &syn("198.51.100.10", 80), Reason::DstV4, v4, "SYN to port 80");
    shadowed(&h, &syn("2001:db8:d::10", 80), Reason::DstV6, v6, "IPv6 SYN to port 80");
    shadowed(&h, &http(100, "198.51.100.10", "unlisted.example"), Reason::DstV4, v4, "HTTP request to port 80");
    // A query to a resolver a shadow prefix covers passes, unanswered.
    shadowed(&h, &dns_query("198.51.100.10", "unlisted.example"), Reason::DstV4, v4, "DNS to a shadow resolver");
    let c = h.dp.counters().unwrap();
    assert_eq!((c.packets(Reason::DstV4, Action::Shadow), c.packets(Reason::DstV6, Action::Shadow)), (5, 2));
    assert_eq!(h.hits(), HashMap::from([(v4, 5), (v6, 2)]));
    assert!(h.dp.counters().unwrap().render().contains("shadow"), "the counters table shows the action");
}

#[test]
#[ignore = "needs root"]
fn an_enforced_name_on_a_shadow_destination_still_blocks() {
    let h = harness();
    let o = blocked(&h, &http(110, "198.51.100.10", "blocked.example"), Reason::HttpHost, id(&h, "blocked.example", false), "Host");
    assert_eq!(o.verdict, Action::StopPage);
    let f = segment(CLIENT4, "198.51.100.10", 111, 0, &stream(&Hello { sni: Some("blocked.example"), ..Default::default() })).build();
    blocked(&h, &f, Reason::Sni, id(&h, "blocked.example", false), "SNI");
    blocked(&h, &dns_query("198.51.100.10", "blocked.example"), Reason::DnsName, id(&h, "blocked.example", false), "DNS");
    // A name only the shadow list has, to a shadow address: counted once, by the address.
    shadowed(&h, &http(112, "198.51.100.10", "a.trial.example"), Reason::DstV4, id(&h, "198.51.100.0/24", true), "both shadow");
}

#[test]
#[ignore = "needs root"]
fn enforced_prefixes_beat_shadow_prefixes() {
    let h = harness();
    assert_eq!(h.report.shadow_prefixes_covered, 3, "{:?}", h.report);
    assert_eq!(h.report.shadow_prefixes, 2, "{:?}", h.report);
    assert_eq!((h.report.block_v4, h.report.block_v6), (3, 2));
    // A shadow prefix inside an enforced one.
    let o = blocked(&h, &syn("203.0.113.70", 443), Reason::DstV4, id(&h, "203.0.113.0/24", false), "shadow inside enforced");
    assert_eq!(o.verdict, Action::TcpReset);
    blocked(&h, &syn("2001:db8:e:1::1", 443), Reason::DstV6, id(&h, "2001:db8:e::/48", false), "v6 shadow inside enforced");
    // Inside it, the SYN-cookie handshake of the stop page still runs for port 80.
    let o = blocked(&h, &syn("203.0.113.70", 80), Reason::DstV4, id(&h, "203.0.113.0/24", false), "port 80");
    assert_eq!(o.verdict, Action::StopPage);
    // An enforced prefix inside a shadow one: blocked inside, shadowed around it.
    blocked(&h, &syn("198.51.100.70", 443), Reason::DstV4, id(&h, "198.51.100.64/26", false), "enforced inside shadow");
    shadowed(&h, &syn("198.51.100.130", 443), Reason::DstV4, id(&h, "198.51.100.0/24", true), "around it");
    blocked(&h, &syn("2001:db8:d:1::1", 443), Reason::DstV6, id(&h, "2001:db8:d:1::/64", false), "v6 enforced inside shadow");
    shadowed(&h, &syn("2001:db8:d:2::1", 443), Reason::DstV6, id(&h, "2001:db8:d::/48", true), "v6 around it");
    // The same prefix in both.
    blocked(&h, &syn("192.0.2.200", 443), Reason::DstV4, id(&h, "192.0.2.128/25", false), "same prefix");
}

#[test]
#[ignore = "needs root"]
fn a_routing_header_to_an_enforced_destination_beats_a_shadow_first_hop() {
    let h = harness();
    // SRv6 (type 4), segments left 1: the first hop is shadow-listed, the final one enforced.
    let mut srh = vec![4, 1, 0, 0, 0, 0];
    srh.extend("2001:db8:d:1::9".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let f = tcp(CLIENT6, "2001:db8:d::10", 443, TCP_SYN).ext(43, &srh).build();
    blocked(&h, &f, Reason::DstV6, id(&h, "2001:db8:d:1::/64", false), "final destination enforced");
    // And the reverse: an enforced first hop decides whatever the final one is.
    let mut srh = vec![4, 1, 0, 0, 0, 0];
    srh.extend("2001:db8:d::10".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let f = tcp(CLIENT6, "2001:db8:e::1", 443, TCP_SYN).ext(43, &srh).build();
    blocked(&h, &f, Reason::DstV6, id(&h, "2001:db8:e::/48", false), "first hop enforced");
    // Only the final destination listed, in the shadow list: shadow.
    let mut srh = vec![4, 1, 0, 0, 0, 0];
    srh.extend("2001:db8:d::10".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let f = tcp(CLIENT6, "2001:db8:f::10", 443, TCP_SYN).ext(43, &srh).build();
    shadowed(&h, &f, Reason::DstV6, id(&h, "2001:db8:d::/48", true), "final destination shadow");
}

#[test]
#[ignore = "needs root"]
fn allow_entries_beat_shadow_entries() {
    let h = harness();
    for dst in ["198.51.100.7", "2001:db8:d::7"] {
        let (o, grew) = run(&h, &syn(dst, 443));
        assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Pass, Reason::AllowList), "{dst}");
        assert!(grew.is_empty());
    }
    let (o, grew) = run(&h, &hello(200, "www.ok.trial.example"));
    assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Pass, Reason::AllowList));
    assert!(grew.is_empty());
    let (o, _) = run(&h, &dns_query(RESOLVER4, "ok.trial.example"));
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::AllowList));
}

#[test]
#[ignore = "needs root"]
fn a_server_name_only_a_shadow_list_has_passes_and_is_counted() {
    let h = harness();
    let trial = id(&h, "trial.example", true);
    shadowed(&h, &hello(300, "trial.example"), Reason::Sni, trial, "the name itself");
    shadowed(&h, &hello(301, "A.Trial.Example"), Reason::Sni, trial, "a subdomain, any case");
    // The most specific shadow entry names the hit.
    shadowed(&h, &hello(302, "x.deep.trial.example"), Reason::Sni, id(&h, "deep.trial.example", true), "most specific");
    // Mode: =only.example covers the name only.
    shadowed(&h, &hello(303, "only.example"), Reason::Sni, id(&h, "=only.example", true), "=only.example");
    let (o, grew) = run(&h, &hello(304, "www.only.example"));
    assert_eq!((o.verdict, o.reason, grew.len()), (Action::Pass, Reason::NoMatch, 0));
    let c = h.dp.counters().unwrap();
    assert_eq!(c.packets(Reason::Sni, Action::Shadow), 4);
}

#[test]
#[ignore = "needs root"]
fn a_flow_whose_hello_was_shadowed_is_not_remembered_as_blocked() {
    let h = harness();
    let trial = id(&h, "trial.example", true);
    // The name across two segments: pending, then shadow.
    let s = stream(&Hello { sni: Some("www2.trial.example"), before: 8, key_share: 1248 });
    let at = sni_offset(&s, "www2.trial.example");
    let (o1, _) = run(&h, &segment(CLIENT4, SERVER4, 400, 0, &s[..at + 3]).build());
    assert_eq!((o1.action, o1.reason), (XdpAction::Pass, Reason::TlsPending));
    shadowed(&h, &segment(CLIENT4, SERVER4, 400, at + 3, &s[at + 3..]).build(), Reason::Sni, trial, "second segment");
    // Application data later on the same flow passes as an ordinary segment.
    let later = segment(CLIENT4, SERVER4, 400, s.len(), &[0x17, 3, 3, 0, 4, 1, 2, 3, 4]).build();
    let (o, grew) = run(&h, &later);
    assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Pass, Reason::NoMatch));
    assert!(grew.is_empty());
    assert_eq!(o.frame, later);
    // A flow whose name is enforced is remembered, as before.
    let s = stream(&Hello { sni: Some("blocked.example"), ..Default::default() });
    blocked(&h, &segment(CLIENT4, SERVER4, 401, 0, &s).build(), Reason::Sni, id(&h, "blocked.example", false), "enforced");
    let later = segment(CLIENT4, SERVER4, 401, s.len(), &[0x17, 3, 3, 0, 1, 1]).build();
    assert_eq!(h.run(&later).reason, Reason::FlowBlocked);
}

#[test]
#[ignore = "needs root"]
fn an_http_host_only_a_shadow_list_has_passes_and_is_counted() {
    let h = harness();
    shadowed(&h, &http(500, SERVER4, "a.trial.example."), Reason::HttpHost, id(&h, "trial.example", true), "trailing dot");
    shadowed(&h, &http(501, SERVER4, "a.trial.example:8080"), Reason::HttpHost, id(&h, "trial.example", true), "with a port");
    let o = blocked(&h, &http(502, SERVER4, "www.trial.example"), Reason::HttpHost, id(&h, "=www.trial.example", false), "enforced");
    assert_eq!(o.verdict, Action::StopPage);
}

#[test]
#[ignore = "needs root"]
fn a_dns_query_only_a_shadow_list_has_passes_untouched_and_is_counted() {
    let h = harness();
    shadowed(&h, &dns_query(RESOLVER4, "a.trial.example"), Reason::DnsName, id(&h, "trial.example", true), "A query");
    shadowed(&h, &dns_query(RESOLVER4, "WWW.Blocked.Example.trial.example"), Reason::DnsName, id(&h, "trial.example", true), "0x20");
    let o = blocked(&h, &dns_query(RESOLVER4, "www.blocked.example"), Reason::DnsName, id(&h, "blocked.example", false), "enforced");
    assert_eq!((o.action, o.verdict), (XdpAction::Tx, Action::DnsAnswer));
}

#[test]
#[ignore = "needs root"]
fn enforced_names_beat_shadow_names_at_any_specificity() {
    let h = harness();
    let cases = [
        // (SNI, enforced entry that decides, or the shadow entry)
        ("www.blocked.example", Ok("blocked.example")),   // shadow more specific
        ("a.www.blocked.example", Ok("blocked.example")), // ... and below it
        ("www.trial.example", Ok("=www.trial.example")),  // enforced more specific
        ("x.www.trial.example", Err("trial.example")),    // =www leaves it out
        ("both.example", Ok("both.example")),             // same name in both
        ("a.both.example", Ok("both.example")),
    ];
    for (i, (sni, want)) in cases.iter().enumerate() {
        let f = hello(600 + i as u16, sni);
        match want {
            Ok(e) => {
                blocked(&h, &f, Reason::Sni, id(&h, e, false), sni);
            }
            Err(e) => shadowed(&h, &f, Reason::Sni, id(&h, e, true), sni),
        }
    }
}

/// The kernel's verdict for a table of names (as SNI, Host and DNS question) and addresses is
/// the reference matcher's, entry for entry.
#[test]
#[ignore = "needs root"]
fn the_kernel_agrees_with_the_reference_matcher() {
    let h = harness();
    let names = [
        "trial.example",
        "a.trial.example",
        "www.trial.example",
        "x.www.trial.example",
        "deep.trial.example",
        "a.deep.trial.example",
        "ok.trial.example",
        "a.ok.trial.example",
        "blocked.example",
        "www.blocked.example",
        "b.www.blocked.example",
        "both.example",
        "x.both.example",
        "only.example",
        "a.only.example",
        "xtrial.example",
        "unlisted.example",
        "example",
    ];
    let mut port = 700;
    for name in names {
        let l = h.set.lookup(name).unwrap();
        for (reason, frame) in [
            (Reason::Sni, hello(port, name)),
            (Reason::HttpHost, http(port + 1, SERVER4, name)),
            (Reason::DnsName, dns_query(RESOLVER4, name)),
        ] {
            port += 2;
            let what = format!("{name} ({}): {:?}", reason.name(), l.verdict);
            let (o, grew) = run(&h, &frame);
            match l.verdict {
                Verdict::Blocked => {
                    assert_ne!(o.action, XdpAction::Pass, "{what}");
                    assert_eq!(o.reason, reason, "{what}");
                    assert_eq!(grew, vec![(l.block.as_ref().unwrap().entry.id, 1)], "{what}");
                }
                Verdict::Shadowed => {
                    assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Shadow, reason), "{what}");
                    assert_eq!(grew, vec![(l.shadow.as_ref().unwrap().entry.id, 1)], "{what}");
                }
                Verdict::Allowed => {
                    assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Pass, Reason::AllowList), "{what}");
                    assert!(grew.is_empty(), "{what}");
                }
                Verdict::NotListed => {
                    assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Pass, Reason::NoMatch), "{what}");
                    assert!(grew.is_empty(), "{what}");
                }
            }
        }
    }
    let addrs = [
        "198.51.100.1",
        "198.51.100.7",
        "198.51.100.64",
        "198.51.100.127",
        "198.51.100.128",
        "203.0.113.1",
        "203.0.113.64",
        "203.0.113.127",
        "192.0.2.127",
        "192.0.2.128",
        "192.0.2.255",
        "198.18.0.1",
        "2001:db8:d::1",
        "2001:db8:d::7",
        "2001:db8:d:1::1",
        "2001:db8:d:ffff::1",
        "2001:db8:e::1",
        "2001:db8:e:1::1",
        "2001:db8:f::1",
    ];
    for a in addrs {
        let l = h.set.lookup(a).unwrap();
        let reason = if a.contains(':') { Reason::DstV6 } else { Reason::DstV4 };
        let what = format!("{a}: {:?}", l.verdict);
        let (o, grew) = run(&h, &syn(a, 443));
        match l.verdict {
            Verdict::Blocked => {
                assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Tx, Action::TcpReset, reason), "{what}");
                assert_eq!(grew, vec![(l.block.as_ref().unwrap().entry.id, 1)], "{what}");
            }
            Verdict::Shadowed => {
                assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Shadow, reason), "{what}");
                assert_eq!(grew, vec![(l.shadow.as_ref().unwrap().entry.id, 1)], "{what}");
            }
            // The kernel consults the allow trie only once a block prefix matched.
            Verdict::Allowed => {
                let want = if l.block.is_some() || l.shadow.is_some() { Reason::AllowList } else { Reason::NoMatch };
                assert_eq!((o.action, o.reason), (XdpAction::Pass, want), "{what}");
                assert!(grew.is_empty(), "{what}");
            }
            Verdict::NotListed => {
                assert_eq!((o.action, o.verdict, o.reason), (XdpAction::Pass, Action::Pass, Reason::NoMatch), "{what}");
                assert!(grew.is_empty(), "{what}");
            }
        }
    }
    // Every verdict occurs in the table.
    let seen: std::collections::HashSet<Verdict> =
        names.iter().chain(addrs.iter()).map(|q| h.set.lookup(q).unwrap().verdict).collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
}
