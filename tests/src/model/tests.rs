//! The model on frames whose verdict ARCHITECTURE.md states outright.

use super::*;
use crate::packets::{
    frames::{Frame, L4, TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN, tcp, udp},
    tls,
};

fn lists() -> PlainLists {
    let mut l = PlainLists::default();
    l.parse("203.0.113.66\n198.51.100.0/24\n2001:db8:f::66\nblocked.example\n=exact.example\n", Kind::Block);
    l.parse("198.51.100.128/25\nok.blocked.example\nallowed.example\n", Kind::Allow);
    l.parse("203.0.113.128/25\ntrial.example\n", Kind::Shadow);
    l
}

fn v(f: &Frame) -> Verdict {
    let e = judge(&f.build(), &lists(), &Config::default());
    assert_eq!(e.known, None);
    e.verdict
}

fn data(dst: &str, dport: u16, payload: Vec<u8>) -> Frame {
    let src = if dst.contains(':') { "2001:db8:c::2" } else { "192.0.2.2" };
    Frame::new(src, dst, L4::Tcp { sport: 5555, dport, seq: 1, ack: 1, flags: TCP_ACK | TCP_PSH, options: vec![], payload })
}

fn hello(sni: &str) -> Vec<u8> {
    tls::stream(&tls::Hello { sni: Some(sni), ..Default::default() })
}

#[test]
fn destinations() {
    assert_eq!(v(&tcp("192.0.2.2", "203.0.113.66", 443, TCP_SYN)), Verdict::new(Reason::DstV4, Action::TcpReset));
    assert_eq!(v(&tcp("192.0.2.2", "203.0.113.66", 443, TCP_RST)), Verdict::new(Reason::DstV4, Action::Drop));
    assert_eq!(v(&udp("192.0.2.2", "198.51.100.7", 443, b"x")), Verdict::new(Reason::DstV4, Action::Drop));
    assert_eq!(v(&udp("192.0.2.2", "198.51.100.200", 443, b"x")), Verdict::pass(Reason::AllowList));
    assert_eq!(v(&udp("192.0.2.2", "203.0.113.130", 443, b"x")), Verdict::new(Reason::DstV4, Action::Shadow));
    assert_eq!(v(&tcp("2001:db8:c::2", "2001:db8:f::66", 80, TCP_SYN)), Verdict::new(Reason::DstV6, Action::TcpReset));
    // A non-first fragment has no TCP header: dropped, not reset.
    assert_eq!(v(&tcp("192.0.2.2", "203.0.113.66", 443, TCP_SYN).ipv4_frag(0x0010)), Verdict::new(Reason::DstV4, Action::Drop));
    // The routing header's final destination.
    let mut rh = vec![0, 1, 0, 0, 0, 0];
    rh.extend("2001:db8:f::66".parse::<std::net::Ipv6Addr>().unwrap().octets());
    assert_eq!(v(&tcp("2001:db8:c::2", "2001:db8:f::10", 443, TCP_SYN).ext(43, &rh)), Verdict::new(Reason::DstV6, Action::TcpReset));
}

#[test]
fn shapes_that_are_not_judged() {
    let f = tcp("192.0.2.2", "203.0.113.66", 443, TCP_SYN);
    let three = f.clone().vlan(0x88a8, 1).vlan(0x8100, 2).vlan(0x8100, 3);
    assert_eq!(v(&three), Verdict::pass(Reason::Unsupported));
    let mut b = f.build();
    b[12] = 0x08;
    b[13] = 0x06;
    assert_eq!(judge(&b, &lists(), &Config::default()).verdict, Verdict::pass(Reason::NotIp));
    let b = f.build();
    assert_eq!(judge(&b[..30], &lists(), &Config::default()).verdict, Verdict::pass(Reason::Malformed));
    // Cut inside the TCP header: still judged by the destination, dropped.
    assert_eq!(judge(&b[..40], &lists(), &Config::default()).verdict, Verdict::new(Reason::DstV4, Action::Drop));
}

#[test]
fn names() {
    assert_eq!(v(&data("203.0.113.10", 443, hello("www.blocked.example"))), Verdict::new(Reason::Sni, Action::TcpReset));
    assert_eq!(v(&data("203.0.113.10", 443, hello("ok.blocked.example"))), Verdict::pass(Reason::AllowList));
    assert_eq!(v(&data("203.0.113.10", 443, hello("allowed.example"))), Verdict::pass(Reason::AllowList));
    assert_eq!(v(&data("203.0.113.10", 443, hello("www.exact.example"))), Verdict::pass(Reason::NoMatch));
    assert_eq!(v(&data("203.0.113.10", 443, hello("trial.example"))), Verdict::new(Reason::Sni, Action::Shadow));
    assert_eq!(v(&data("203.0.113.10", 443, hello("bad!.blocked.example"))), Verdict::pass(Reason::TlsUnparsed));
    let h = hello("blocked.example");
    assert_eq!(v(&data("203.0.113.10", 443, h[..100].to_vec())), Verdict::pass(Reason::TlsPending));
    let get = |host: &str| format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
    assert_eq!(v(&data("203.0.113.10", 80, get("Blocked.Example"))), Verdict::new(Reason::HttpHost, Action::TcpReset));
    assert_eq!(v(&data("203.0.113.10", 80, get("blocked.example")[..20].to_vec())), Verdict::pass(Reason::HttpPending));
    // A shadow destination: an enforced name still blocks; otherwise the shadow verdict.
    assert_eq!(v(&data("203.0.113.130", 443, hello("blocked.example"))), Verdict::new(Reason::Sni, Action::TcpReset));
    assert_eq!(v(&data("203.0.113.130", 443, hello("other.example"))), Verdict::new(Reason::DstV4, Action::Shadow));
    let q = |n: &str| dns::build_query(9, n, 1, true);
    assert_eq!(v(&udp("192.0.2.2", "203.0.113.53", 53, &q("a.blocked.example"))), Verdict::new(Reason::DnsName, Action::DnsAnswer));
    assert_eq!(v(&udp("192.0.2.2", "203.0.113.53", 53, &q("trial.example"))), Verdict::new(Reason::DnsName, Action::Shadow));
    assert_eq!(v(&udp("192.0.2.2", "203.0.113.53", 53, &q("x.example"))), Verdict::pass(Reason::NoMatch));
    let mut cut = udp("192.0.2.2", "203.0.113.53", 53, &q("blocked.example")).build();
    cut.pop();
    assert_eq!(judge(&cut, &lists(), &Config::default()).verdict, Verdict::pass(Reason::DnsUnparsed));
    let off = Config { dns_answers: false, ..Config::default() };
    let f = udp("192.0.2.2", "203.0.113.53", 53, &q("blocked.example")).build();
    assert_eq!(judge(&f, &lists(), &off).verdict, Verdict::pass(Reason::NoMatch));
}

#[test]
fn absolute_form_targets_name_the_host_whatever_the_scheme_or_userinfo() {
    for target in ["https://blocked.example/", "http://user:pw@blocked.example/", "HTTPS://u@blocked.example:8443"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: other.example\r\n\r\n").into_bytes();
        assert_eq!(v(&data("203.0.113.10", 80, req)), Verdict::new(Reason::HttpHost, Action::TcpReset), "{target}");
    }
}

#[test]
fn every_routing_header_in_the_walk_counts_and_none_past_it() {
    let rh = |to: &str| {
        let mut h = vec![0, 1, 0, 0, 0, 0];
        h.extend(to.parse::<std::net::Ipv6Addr>().unwrap().octets());
        h
    };
    let syn = || tcp("2001:db8:c::2", "2001:db8:f::10", 443, TCP_SYN);
    // The first of two routing headers goes to a listed host.
    let two = syn().ext(43, &rh("2001:db8:f::66")).ext(43, &rh("2001:db8:f::77"));
    assert_eq!(v(&two), Verdict::new(Reason::DstV6, Action::TcpReset));
    // Eight destination options headers, then the routing header: ninth, not read.
    let mut ninth = syn();
    for _ in 0..8 {
        ninth = ninth.ext(60, &[1, 4, 0, 0, 0, 0]);
    }
    assert_eq!(v(&ninth.ext(43, &rh("2001:db8:f::66"))), Verdict::pass(Reason::NoMatch));
}
