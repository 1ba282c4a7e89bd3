//! BPF_PROG_TEST_RUN table tests for DNS: queries to UDP port 53 through the real kernel
//! program. A query for a listed name comes back as its answer (XDP_TX), which a real DNS
//! parser (simple-dns) must accept and whose every field we check; anything the program cannot
//! fully judge passes byte for byte unchanged.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use blocker_common::verdict::{Action, Reason};
use blocker_user::{
    datapath::{BlockedBecause, DnsPolicy, DnsReply, XdpAction},
    lists::ListKind,
};
use simple_dns::{CLASS, Packet, PacketFlag, RCODE, rdata::RData};
use support::{
    Harness, NEEDS_ROOT,
    frames::{self, CLIENT_MAC, Frame, ROUTER_MAC, udp},
};

const BLOCK: &str = "blocked.example\n=exact.example\n*.sub.example\n";
const ALLOW: &str = "ok.blocked.example\n";

const CLIENT4: &str = "192.0.2.2";
const RESOLVER4: &str = "198.51.100.53";
const CLIENT6: &str = "2001:db8:c::2";
const RESOLVER6: &str = "2001:db8:53::53";
const CLIENT_PORT: u16 = 40001;

const STOP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const STOP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x80, 0, 0, 0, 0, 0x80);
const TTL: u32 = 120;

const A: u16 = 1;
const TXT: u16 = 16;
const MX: u16 = 15;
const AAAA: u16 = 28;
const OPT: u16 = 41;
const HTTPS: u16 = 65;

// Header flag bits.
const QR: u16 = 0x8000;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;
const CD: u16 = 0x0010;

/// A DNS query as a client sends it, built by hand so tests can also break it.
#[derive(Clone, Debug)]
struct Query {
    id: u16,
    flags: u16,
    name: String,
    qtype: u16,
    qclass: u16,
    edns: Option<Edns>,
}

#[derive(Clone, Debug)]
struct Edns {
    do_bit: bool,
    /// Raw options (code, length, data), which the answer ignores.
    options: Vec<u8>,
}

impl Query {
    fn new(name: &str, qtype: u16) -> Query {
        Query { id: 0xbeef, flags: RD, name: name.to_string(), qtype, qclass: 1, edns: None }
    }

    fn edns(mut self, do_bit: bool) -> Query {
        self.edns = Some(Edns { do_bit, options: vec![] });
        self
    }

    fn flags(mut self, flags: u16) -> Query {
        self.flags = flags;
        self
    }

    /// QNAME, QTYPE, QCLASS exactly as sent.
    fn question(&self) -> Vec<u8> {
        let mut b = wire_name(&self.name);
        b.extend(self.qtype.to_be_bytes());
        b.extend(self.qclass.to_be_bytes());
        b
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(self.id.to_be_bytes());
        b.extend(self.flags.to_be_bytes());
        b.extend([0, 1, 0, 0, 0, 0, 0, self.edns.is_some() as u8]);
        b.extend(self.question());
        if let Some(e) = &self.edns {
            b.extend(opt_rr(e.do_bit, &e.options));
        }
        b
    }
}

fn opt_rr(do_bit: bool, options: &[u8]) -> Vec<u8> {
    let mut b = vec![0];
    b.extend(OPT.to_be_bytes());
    b.extend(4096u16.to_be_bytes());
    b.extend([0, 0, if do_bit { 0x80 } else { 0 }, 0]);
    b.extend((options.len() as u16).to_be_bytes());
    b.extend(options);
    b
}

fn wire_name(dotted: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for label in dotted.split('.').filter(|l| !l.is_empty()) {
        b.push(label.len() as u8);
        b.extend(label.as_bytes());
    }
    b.push(0);
    b
}

#[derive(Clone, Copy, Debug)]
enum Family {
    V4,
    V6,
}

fn to_resolver(family: Family, payload: &[u8]) -> Frame {
    match family {
        Family::V4 => udp(CLIENT4, RESOLVER4, 53, payload),
        Family::V6 => udp(CLIENT6, RESOLVER6, 53, payload),
    }
}

fn stop_page() -> DnsPolicy {
    DnsPolicy { reply: DnsReply::StopPage { v4: Some(STOP4), v6: Some(STOP6) }, ttl: TTL, ..DnsPolicy::default() }
}

fn harness(policy: DnsPolicy) -> Harness {
    let mut h = Harness::new(BLOCK, ALLOW);
    h.dp.set_dns(&policy).expect("writing the DNS policy");
    h
}

/// Runs `frame` and requires it back as an answer; returns the DNS message after checking the
/// Ethernet, IP and UDP layers.
fn answer(h: &Harness, frame: &Frame) -> Vec<u8> {
    let o = h.run(&frame.build());
    assert_eq!((o.action, o.reason, o.verdict), (XdpAction::Tx, Reason::DnsName, Action::DnsAnswer), "{frame:?}");
    check_lower_layers(frame, &o.frame)
}

/// Runs `frame` and requires it to pass untouched for `reason`.
fn passes(h: &Harness, frame: &[u8], reason: Reason, what: &str) {
    let o = h.run(frame);
    assert_eq!((o.action, o.reason), (XdpAction::Pass, reason), "{what}");
    assert_eq!(o.frame, frame, "{what}: a passed frame is not changed");
}

/// MACs swapped with VLAN tags kept; a fresh IPv4 (no options, valid checksum) or IPv6 (no
/// extension headers) header with the addresses swapped; UDP from port 53 back to the
/// client's port with lengths that match the frame and a valid checksum.
fn check_lower_layers(query: &Frame, out: &[u8]) -> Vec<u8> {
    assert_eq!(&out[0..6], &CLIENT_MAC, "to the client");
    assert_eq!(&out[6..12], &ROUTER_MAC, "from the port it came in on");
    let mut off = 12;
    for (tpid, tci) in &query.vlans {
        assert_eq!(&out[off..off + 4], &[tpid.to_be_bytes(), tci.to_be_bytes()].concat()[..], "VLAN tags kept");
        off += 4;
    }
    let (src, dst, udp_off) = match (query.src, query.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            assert_eq!(&out[off..off + 2], &[0x08, 0x00]);
            let ip = &out[off + 2..];
            assert_eq!(ip[0], 0x45, "IPv4 without options");
            assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, ip.len(), "IPv4 total length");
            assert_eq!(ip[9], 17);
            assert_eq!(frames::checksum(&ip[..20], 0), 0, "IPv4 header checksum");
            let src = IpAddr::from(<[u8; 4]>::try_from(&ip[12..16]).unwrap());
            let dst = IpAddr::from(<[u8; 4]>::try_from(&ip[16..20]).unwrap());
            (src, dst, off + 2 + 20)
        }
        (IpAddr::V6(_), IpAddr::V6(_)) => {
            assert_eq!(&out[off..off + 2], &[0x86, 0xdd]);
            let ip = &out[off + 2..];
            assert_eq!(u16::from_be_bytes([ip[4], ip[5]]) as usize, ip.len() - 40, "IPv6 payload length");
            assert_eq!(ip[6], 17, "IPv6 without extension headers");
            let src = IpAddr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
            let dst = IpAddr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
            (src, dst, off + 2 + 40)
        }
        _ => panic!("mixed families"),
    };
    assert_eq!((src, dst), (query.dst, query.src), "addresses swapped");
    let u = &out[udp_off..];
    assert_eq!(u16::from_be_bytes([u[0], u[1]]), 53);
    assert_eq!(u16::from_be_bytes([u[2], u[3]]), CLIENT_PORT);
    assert_eq!(u16::from_be_bytes([u[4], u[5]]) as usize, u.len(), "UDP length");
    assert_ne!(u16::from_be_bytes([u[6], u[7]]), 0, "UDP checksum present");
    assert_eq!(frames::l4_checksum(src, dst, 17, u), 0, "UDP checksum");
    u[8..].to_vec()
}

/// The DNS header and question of an answer to `q`; returns the parsed message.
fn check_header<'a>(q: &Query, msg: &'a [u8], rcode: RCODE, answers: usize) -> Packet<'a> {
    let p = Packet::parse(msg).expect("the answer parses");
    assert_eq!(p.id(), q.id, "ID echoed");
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    assert_eq!(flags & 0x7800, 0, "OPCODE 0");
    assert!(p.has_flags(PacketFlag::RESPONSE | PacketFlag::RECURSION_AVAILABLE));
    assert!(!p.has_flags(PacketFlag::AUTHORITATIVE_ANSWER) && !p.has_flags(PacketFlag::TRUNCATION));
    assert!(!p.has_flags(PacketFlag::AUTHENTIC_DATA), "never claims DNSSEC validation");
    assert_eq!(p.has_flags(PacketFlag::RECURSION_DESIRED), q.flags & RD != 0, "RD echoed");
    assert_eq!(p.has_flags(PacketFlag::CHECKING_DISABLED), q.flags & CD != 0, "CD echoed");
    assert_eq!(p.rcode(), rcode);
    let question = q.question();
    assert_eq!(&msg[4..12], &[0, 1, 0, answers as u8, 0, 0, 0, q.edns.is_some() as u8], "section counts");
    assert_eq!(&msg[12..12 + question.len()], &question[..], "question echoed byte for byte");
    assert_eq!(p.questions[0].qname.to_string(), q.name.trim_end_matches('.'));
    assert_eq!(p.answers.len(), answers);
    p
}

/// The answer's OPT record: present exactly when the query had one, with EDE `code` and the
/// query's DO bit.
fn check_edns(q: &Query, msg: &[u8], p: &Packet, code: u16) {
    let Some(e) = &q.edns else {
        assert!(p.opt().is_none(), "no OPT record without EDNS in the query");
        return;
    };
    let opt = p.opt().expect("an OPT record answers EDNS");
    assert_eq!(opt.udp_packet_size, 1232);
    assert_eq!(opt.opt_codes.len(), 1, "only the EDE option: the query's options are not echoed");
    assert_eq!(opt.opt_codes[0].code, 15, "Extended DNS Error (RFC 8914)");
    assert_eq!(&opt.opt_codes[0].data[..], &code.to_be_bytes(), "INFO-CODE, no EXTRA-TEXT");
    // The OPT record closes the message; its TTL's flags carry DO.
    // (simple-dns 0.13 reads the flags byte as the version, so both are checked here.)
    let rr = &msg[msg.len() - 17..];
    assert_eq!(&rr[..3], &[0, 0, 41]);
    assert_eq!((rr[5], rr[6]), (0, 0), "extended RCODE 0, EDNS version 0");
    assert_eq!(rr[7] & 0x80 != 0, e.do_bit, "DO bit copied");
    assert_eq!((rr[7] & 0x7f, rr[8]), (0, 0), "no other flags");
}

fn check_address(p: &Packet, q: &Query) {
    let rr = &p.answers[0];
    assert_eq!(rr.name.to_string(), q.name, "the answer names the question (a pointer to it)");
    assert_eq!((rr.class, rr.ttl), (CLASS::IN, TTL));
    match (&rr.rdata, q.qtype) {
        (RData::A(a), A) => assert_eq!(Ipv4Addr::from(a.address), STOP4),
        (RData::AAAA(a), AAAA) => assert_eq!(Ipv6Addr::from(a.address), STOP6),
        (other, t) => panic!("type {t} answered with {other:?}"),
    }
}

fn all_frames(payload: &[u8]) -> Vec<Frame> {
    let mut v = Vec::new();
    for family in [Family::V4, Family::V6] {
        v.push(to_resolver(family, payload));
        v.push(to_resolver(family, payload).vlan(0x8100, 7));
        v.push(to_resolver(family, payload).vlan(0x88a8, 1).vlan(0x8100, 2));
    }
    v
}

#[test]
#[ignore = "needs root"]
fn a_and_aaaa_queries_for_a_listed_name_get_the_stop_page_address() {
    let _ = NEEDS_ROOT;
    let h = harness(stop_page());
    // Mixed case, as a resolver using DNS 0x20 sends it: matched case-insensitively, echoed as is.
    for qtype in [A, AAAA] {
        for q in [Query::new("BlOcKeD.ExAmPlE", qtype), Query::new("www.blocked.example", qtype).edns(true).flags(RD | CD)] {
            for f in all_frames(&q.bytes()) {
                let msg = answer(&h, &f);
                let p = check_header(&q, &msg, RCODE::NoError, 1);
                check_address(&p, &q);
                assert_eq!(&msg[12 + q.question().len()..][..2], &[0xc0, 0x0c], "answer NAME points at the question");
                check_edns(&q, &msg, &p, 15);
            }
        }
    }
}

#[test]
#[ignore = "needs root"]
fn other_types_get_nodata() {
    let h = harness(stop_page());
    for qtype in [MX, TXT, HTTPS] {
        let q = Query::new("blocked.example", qtype).edns(false);
        for f in all_frames(&q.bytes()) {
            let msg = answer(&h, &f);
            let p = check_header(&q, &msg, RCODE::NoError, 0);
            check_edns(&q, &msg, &p, 15);
        }
    }
}

#[test]
#[ignore = "needs root"]
fn a_family_without_a_stop_page_address_gets_nodata() {
    let h = harness(DnsPolicy { reply: DnsReply::StopPage { v4: Some(STOP4), v6: None }, ttl: TTL, ..DnsPolicy::default() });
    let q = Query::new("blocked.example", AAAA);
    check_header(&q, &answer(&h, &to_resolver(Family::V4, &q.bytes())), RCODE::NoError, 0);
    let q = Query::new("blocked.example", A);
    let msg = answer(&h, &to_resolver(Family::V6, &q.bytes()));
    check_address(&check_header(&q, &msg, RCODE::NoError, 1), &q);
}

#[test]
#[ignore = "needs root"]
fn nxdomain_mode_answers_nxdomain_for_every_type() {
    let h = harness(DnsPolicy { reply: DnsReply::NxDomain, ..stop_page() });
    for qtype in [A, AAAA, MX, HTTPS] {
        for q in [Query::new("blocked.example", qtype), Query::new("a.sub.example", qtype).edns(true)] {
            for f in all_frames(&q.bytes()) {
                let msg = answer(&h, &f);
                let p = check_header(&q, &msg, RCODE::NameError, 0);
                check_edns(&q, &msg, &p, 15);
            }
        }
    }
}

#[test]
#[ignore = "needs root"]
fn the_extended_error_comes_exactly_with_edns_and_says_what_is_configured() {
    let h = harness(stop_page());
    let plain = Query::new("blocked.example", A);
    let msg = answer(&h, &to_resolver(Family::V4, &plain.bytes()));
    let p = check_header(&plain, &msg, RCODE::NoError, 1);
    check_edns(&plain, &msg, &p, 15);
    assert_eq!(msg.len(), 12 + plain.question().len() + 16, "nothing after the answer");

    for do_bit in [false, true] {
        // A cookie (option 10) and padding (12) in the query are not echoed.
        let mut q = Query::new("blocked.example", A).edns(do_bit);
        q.edns.as_mut().unwrap().options = [&[0, 10, 0, 8][..], &[1, 2, 3, 4, 5, 6, 7, 8], &[0, 12, 0, 3, 0, 0, 0]].concat();
        let msg = answer(&h, &to_resolver(Family::V6, &q.bytes()));
        check_edns(&q, &msg, &check_header(&q, &msg, RCODE::NoError, 1), 15);
    }

    let h = harness(DnsPolicy { ede: BlockedBecause::Filtered, ..stop_page() });
    let q = Query::new("blocked.example", HTTPS).edns(true);
    let msg = answer(&h, &to_resolver(Family::V4, &q.bytes()));
    check_edns(&q, &msg, &check_header(&q, &msg, RCODE::NoError, 0), 17);
}

#[test]
#[ignore = "needs root"]
fn names_match_on_label_boundaries_and_the_allow_list_wins() {
    let h = harness(stop_page());
    let table: &[(&str, Reason)] = &[
        ("blocked.example", Reason::DnsName),
        ("blocked.example.", Reason::DnsName),
        ("www.blocked.example", Reason::DnsName),
        ("a.b.c.blocked.example", Reason::DnsName),
        ("xblocked.example", Reason::NoMatch),
        ("blocked.example.evil.test", Reason::NoMatch),
        ("example", Reason::NoMatch),
        ("exact.example", Reason::DnsName),
        ("a.exact.example", Reason::NoMatch),
        ("sub.example", Reason::NoMatch),
        ("a.sub.example", Reason::DnsName),
        ("x.y.sub.example", Reason::DnsName),
        ("ok.blocked.example", Reason::AllowList),
        ("www.ok.blocked.example", Reason::AllowList),
        ("OK.Blocked.Example", Reason::AllowList),
        ("unlisted.test", Reason::NoMatch),
        // The root name: a valid query that no list can name.
        ("", Reason::NoMatch),
    ];
    for (name, reason) in table {
        let q = Query::new(name, A);
        for f in [to_resolver(Family::V4, &q.bytes()), to_resolver(Family::V6, &q.edns(true).bytes()).vlan(0x8100, 9)] {
            if *reason == Reason::DnsName {
                answer(&h, &f);
            } else {
                passes(&h, &f.build(), *reason, name);
            }
        }
    }
}

#[test]
#[ignore = "needs root"]
fn names_of_the_longest_length_and_label_count_are_answered() {
    let h = harness(stop_page());
    let long_labels = format!("{0}.{0}.{0}.{1}.blocked.example", "x".repeat(63), "y".repeat(45));
    let many_labels = format!("{}blocked.example", "a.".repeat(119));
    for name in [long_labels, many_labels] {
        assert_eq!(name.len(), 253, "the longest name a list can hold");
        let q = Query::new(&name, AAAA).edns(true);
        let msg = answer(&h, &to_resolver(Family::V6, &q.bytes()).vlan(0x8100, 3));
        check_address(&check_header(&q, &msg, RCODE::NoError, 1), &q);
    }
}

#[test]
#[ignore = "needs root"]
fn ip_options_and_extension_headers_are_left_out_of_the_answer() {
    let h = harness(stop_page());
    let q = Query::new("blocked.example", A).edns(true);
    let v4 = to_resolver(Family::V4, &q.bytes()).ipv4_options(&[1, 1, 1, 0]);
    let v6 = to_resolver(Family::V6, &q.bytes()).ext(0, &[1, 4, 0, 0, 0, 0]).ext(60, &[1, 4, 0, 0, 0, 0]);
    for f in [v4, v6] {
        let msg = answer(&h, &f);
        check_address(&check_header(&q, &msg, RCODE::NoError, 1), &q);
    }
}

#[test]
#[ignore = "needs root"]
fn ethernet_padding_after_the_datagram_is_not_part_of_the_query() {
    let h = harness(stop_page());
    let q = Query::new("blocked.example", A);
    let f = to_resolver(Family::V4, &q.bytes());
    let mut padded = f.build();
    padded.extend([0; 6]);
    let o = h.run(&padded);
    assert_eq!((o.action, o.reason), (XdpAction::Tx, Reason::DnsName));
    check_address(&check_header(&q, &check_lower_layers(&f, &o.frame), RCODE::NoError, 1), &q);
}

#[test]
#[ignore = "needs root"]
fn unlisted_and_allowed_queries_pass_byte_for_byte() {
    let h = harness(stop_page());
    for (name, reason) in [("example.org", Reason::NoMatch), ("ok.blocked.example", Reason::AllowList)] {
        for q in [Query::new(name, A), Query::new(name, HTTPS).edns(true)] {
            for f in all_frames(&q.bytes()) {
                passes(&h, &f.build(), reason, name);
            }
        }
    }
}

#[test]
#[ignore = "needs root"]
fn with_answering_off_queries_pass_untouched() {
    let h = harness(DnsPolicy::disabled());
    let q = Query::new("blocked.example", A).edns(true);
    passes(&h, &to_resolver(Family::V4, &q.bytes()).build(), Reason::NoMatch, "disabled");
    // And a port-53 datagram that is no DNS at all is not even looked at.
    passes(&h, &to_resolver(Family::V4, b"junk").build(), Reason::NoMatch, "disabled");
}

/// Each entry: a description and the UDP payload. Every one would be a query for a listed name
/// if the program read it loosely.
fn bad_queries() -> Vec<(&'static str, Vec<u8>)> {
    let good = Query::new("blocked.example", A);
    let header = |flags: u16, qd: u16, an: u16, ns: u16, ar: u16| -> Vec<u8> {
        [0xbeefu16, flags, qd, an, ns, ar].iter().flat_map(|w| w.to_be_bytes()).collect()
    };
    let question = good.question();
    vec![
        ("a truncated header", header(RD, 1, 0, 0, 0)[..10].to_vec()),
        ("two questions", [header(RD, 2, 0, 0, 0), question.clone(), Query::new("other.test", A).question()].concat()),
        ("no question", header(RD, 0, 0, 0, 0)),
        ("a compression pointer in the question", [header(RD, 1, 0, 0, 0), vec![0xc0, 0x0c, 0, 1, 0, 1]].concat()),
        (
            "a compression pointer after a label",
            [header(RD, 1, 0, 0, 0), vec![7], b"blocked".to_vec(), vec![0xc0, 0x0c, 0, 1, 0, 1]].concat(),
        ),
        ("a label length of 64", [header(RD, 1, 0, 0, 0), vec![64], vec![b'a'; 64], vec![0, 0, 1, 0, 1]].concat()),
        ("a label running past the payload", [header(RD, 1, 0, 0, 0), vec![20], b"blocked".to_vec()].concat()),
        ("a name without its root label", [header(RD, 1, 0, 0, 0), wire_name("blocked.example")[..16].to_vec()].concat()),
        ("QTYPE and QCLASS cut", [header(RD, 1, 0, 0, 0), wire_name("blocked.example"), vec![0, 1]].concat()),
        ("QCLASS CH", [header(RD, 1, 0, 0, 0), wire_name("blocked.example"), vec![0, 1, 0, 3]].concat()),
        ("bytes after the question", [good.bytes(), vec![0, 0]].concat()),
        ("a response (QR=1)", [header(QR | RD, 1, 0, 0, 0), question.clone()].concat()),
        ("a truncated message (TC=1)", [header(TC | RD, 1, 0, 0, 0), question.clone()].concat()),
        ("OPCODE 4 (NOTIFY)", [header(4 << 11, 1, 0, 0, 0), question.clone()].concat()),
        ("OPCODE 5 (UPDATE)", [header(5 << 11, 1, 0, 0, 0), question.clone()].concat()),
        ("an answer record", [header(RD, 1, 1, 0, 0), question.clone(), vec![0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]].concat()),
        ("ARCOUNT 2", [header(RD, 1, 0, 0, 2), question.clone(), opt_rr(false, &[]), opt_rr(false, &[])].concat()),
        ("ARCOUNT 1 without the record", [header(RD, 1, 0, 0, 1), question.clone()].concat()),
        (
            "an additional record that is not OPT",
            [header(RD, 1, 0, 0, 1), question.clone(), vec![0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]].concat(),
        ),
        ("an OPT record running past the payload", {
            let mut opt = opt_rr(false, &[0, 10, 0, 8]);
            opt[10] = 12;
            [header(RD, 1, 0, 0, 1), question.clone(), opt].concat()
        }),
        ("EDNS version 1", {
            let mut opt = opt_rr(false, &[]);
            opt[6] = 1;
            [header(RD, 1, 0, 0, 1), question.clone(), opt].concat()
        }),
        ("a name longer than 255 bytes", {
            let name = wire_name(&format!("{}blocked.example", "a.".repeat(120)));
            assert_eq!(name.len(), 257);
            [header(RD, 1, 0, 0, 0), name, vec![0, 1, 0, 1]].concat()
        }),
        ("a character no listed name has", [header(RD, 1, 0, 0, 0), vec![7], b"bl*cked".to_vec(), wire_name("example"), vec![0, 1, 0, 1]].concat()),
    ]
}

#[test]
#[ignore = "needs root"]
fn queries_the_program_cannot_fully_read_pass_unchanged() {
    let h = harness(stop_page());
    for (what, payload) in bad_queries() {
        for f in [to_resolver(Family::V4, &payload), to_resolver(Family::V6, &payload).vlan(0x8100, 5)] {
            passes(&h, &f.build(), Reason::DnsUnparsed, what);
        }
    }
}

#[test]
#[ignore = "needs root"]
fn lengths_that_disagree_pass_unchanged() {
    let h = harness(stop_page());
    let q = Query::new("blocked.example", A);
    for family in [Family::V4, Family::V6] {
        let f = to_resolver(family, &q.bytes());
        let frame = f.build();
        let udp_len_at = frame.len() - q.bytes().len() - 4;
        // UDP length larger than the IP length says, then smaller.
        for delta in [10i32, -3] {
            let mut bad = frame.clone();
            let len = u16::from_be_bytes([bad[udp_len_at], bad[udp_len_at + 1]]) as i32 + delta;
            bad[udp_len_at..udp_len_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
            passes(&h, &bad, Reason::DnsUnparsed, &format!("{family:?} UDP length {delta:+}"));
        }
        // A first fragment: its UDP length covers fragments still to come.
        if let Family::V4 = family {
            let mut first = f.clone().ipv4_frag(0x2000).build();
            first.truncate(first.len() - 8);
            let total = (first.len() - 14) as u16;
            first[16..18].copy_from_slice(&total.to_be_bytes());
            first[24..26].copy_from_slice(&[0, 0]);
            let c = frames::checksum(&first[14..34], 0);
            first[24..26].copy_from_slice(&c.to_be_bytes());
            passes(&h, &first, Reason::DnsUnparsed, "a first fragment is not a whole query");
        }
    }
}

/// Every blocked query cut at every length: never XDP_ABORTED and never an answer built from
/// a cut query; what passes is not changed.
#[test]
#[ignore = "needs root"]
fn a_cut_query_is_never_answered() {
    let h = harness(stop_page());
    let q = Query::new("www.BLOCKED.example", AAAA).edns(true);
    let mut runs = 0;
    for f in [to_resolver(Family::V4, &q.bytes()), to_resolver(Family::V6, &q.bytes()).vlan(0x8100, 7)] {
        let full = f.build();
        for len in 14..full.len() {
            let o = h.run(&full[..len]);
            runs += 1;
            assert!(
                matches!(o.action, XdpAction::Pass | XdpAction::Drop),
                "{f:?} cut at {len}: {:?} {:?}",
                o.action,
                o.reason
            );
            if o.action == XdpAction::Pass {
                assert_eq!(o.frame, &full[..len], "cut at {len}: passed unchanged");
                assert!(o.reason.is_fail_open() || matches!(o.reason, Reason::NoMatch | Reason::NotIp), "cut at {len}: {:?}", o.reason);
            }
        }
    }
    eprintln!("{runs} cut queries judged");
}

#[test]
#[ignore = "needs root"]
fn answers_are_counted_per_reason_and_per_entry() {
    let h = harness(stop_page());
    for name in ["blocked.example", "www.blocked.example", "a.sub.example"] {
        answer(&h, &to_resolver(Family::V4, &Query::new(name, A).bytes()));
    }
    let id = |name| h.set.name_entry(ListKind::Block, name).unwrap().0.id;
    let mut hits = h.dp.entry_hits().unwrap();
    hits.sort();
    let mut want = vec![(id("blocked.example"), 2), (id("sub.example"), 1)];
    want.sort();
    assert_eq!(hits, want);
    assert_eq!(h.dp.counters().unwrap().packets(Reason::DnsName, Action::DnsAnswer), 3);
}
