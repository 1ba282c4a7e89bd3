//! BPF_PROG_TEST_RUN table tests: crafted frames through the real kernel program, asserting
//! the XDP action, the counted reason and verdict, and the bytes of every reset it builds.

mod support;

use blocker_common::verdict::{Action, Reason};
use blocker_user::datapath::{Options, XdpAction};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use support::{
    Harness, NEEDS_ROOT,
    frames::{self, CLIENT_MAC, Frame, L4, ROUTER_MAC, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, tcp, udp},
};

const BLOCK: &str = "\
203.0.113.66
203.0.113.128/25
198.51.100.0/24
2001:db8:f::66
2001:db8:f:1::/64
2001:db8:a00::/40
";
const ALLOW: &str = "203.0.113.200\n2001:db8:f:1::200\n";

const CLIENT4: &str = "192.0.2.2";
const CLIENT6: &str = "2001:db8:c::2";

fn harness() -> Harness {
    Harness::new(BLOCK, ALLOW)
}

fn expect(h: &Harness, f: &Frame, action: XdpAction, reason: Reason) -> Vec<u8> {
    let o = h.run(&f.build());
    assert_eq!((o.action, o.reason), (action, reason), "frame {f:?}");
    o.frame
}

/// Checks a reset the program built in reply to `orig`: addresses, ports and MACs swapped,
/// VLAN tags kept, RST flags and sequence numbers per RFC 9293, valid checksums, no options.
fn assert_reset(orig: &Frame, out: &[u8]) {
    assert_reset_from(orig, out, orig.dst);
}

/// `assert_reset` for a reset sent from `from` (the final destination of a source-routed
/// segment), its checksum over that address.
fn assert_reset_from(orig: &Frame, out: &[u8], from: std::net::IpAddr) {
    let p = SlicedPacket::from_ethernet(out).expect("reset parses");
    let eth = p.link.as_ref().unwrap().to_header().unwrap();
    let eth = match eth {
        etherparse::LinkHeader::Ethernet2(e) => e,
        other => panic!("not ethernet: {other:?}"),
    };
    assert_eq!((eth.source, eth.destination), (ROUTER_MAC, CLIENT_MAC), "MACs swapped");
    let mut vlan_ids = Vec::new();
    let mut off = 12;
    while matches!(u16::from_be_bytes([out[off], out[off + 1]]), 0x8100 | 0x88a8) {
        vlan_ids.push(u16::from_be_bytes([out[off + 2], out[off + 3]]) & 0x0fff);
        off += 4;
    }
    assert_eq!(vlan_ids, orig.vlans.iter().map(|(_, tci)| tci & 0x0fff).collect::<Vec<_>>(), "VLAN tags kept");

    let TransportSlice::Tcp(t) = p.transport.as_ref().expect("tcp") else { panic!("not tcp") };
    let L4::Tcp { sport, dport, seq, ack, flags, payload, .. } = &orig.l4 else { panic!() };
    assert_eq!((t.source_port(), t.destination_port()), (*dport, *sport), "ports swapped");
    assert!(t.rst(), "RST set");
    assert_eq!(t.options().len(), 0);
    assert_eq!(t.payload().len(), 0);
    if flags & TCP_ACK != 0 {
        assert_eq!(t.sequence_number(), *ack, "seq = the segment's ack");
        assert!(!t.ack());
    } else {
        let len = payload.len() as u32 + u32::from(flags & TCP_SYN != 0) + u32::from(flags & TCP_FIN != 0);
        assert_eq!(t.sequence_number(), 0);
        assert!(t.ack());
        assert_eq!(t.acknowledgment_number(), seq.wrapping_add(len), "acknowledges the segment");
    }
    let tcp_header = t.to_header();
    match p.net.as_ref().expect("ip") {
        NetSlice::Ipv4(v4) => {
            let h = v4.header().to_header();
            assert_eq!(h.source, match from { std::net::IpAddr::V4(a) => a.octets(), _ => panic!() });
            assert_eq!(h.destination, match orig.src { std::net::IpAddr::V4(a) => a.octets(), _ => panic!() });
            assert_eq!(h.options.len(), 0, "no IPv4 options in the reset");
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header checksum");
            assert_eq!(h.total_len, 40);
            assert_eq!(tcp_header.checksum, tcp_header.calc_checksum_ipv4(&h, &[]).unwrap(), "TCP checksum");
            assert_eq!(out.len(), 14 + 4 * orig.vlans.len() + 40, "frame cut to the headers");
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header().to_header();
            assert_eq!(std::net::IpAddr::from(h.source), from, "sent from the connection's peer");
            assert_eq!(std::net::IpAddr::from(h.destination), orig.src);
            assert_eq!(h.payload_length, 20);
            assert_eq!(h.next_header, etherparse::IpNumber::TCP, "no extension headers in the reset");
            assert_eq!(tcp_header.checksum, tcp_header.calc_checksum_ipv6(&h, &[]).unwrap(), "TCP checksum");
            assert_eq!(out.len(), 14 + 4 * orig.vlans.len() + 60, "frame cut to the headers");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn unlisted_destinations_pass() {
    let _ = NEEDS_ROOT;
    let h = harness();
    expect(&h, &tcp(CLIENT4, "203.0.113.10", 443, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    expect(&h, &tcp(CLIENT6, "2001:db8:f::10", 443, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    // Same /24 as a listed host, but not listed: the coarse filter hits, the exact trie decides.
    expect(&h, &tcp(CLIENT4, "203.0.113.67", 80, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    expect(&h, &tcp(CLIENT4, "203.0.113.127", 80, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    expect(&h, &tcp(CLIENT6, "2001:db8:f::67", 80, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    expect(&h, &tcp(CLIENT6, "2001:db8:f:2::1", 80, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    // Other /48s of the listed hosts' /32 (the coarse filter lets them by), and of the /32 a
    // listed /40 marks (the trie decides).
    expect(&h, &tcp(CLIENT6, "2001:db8:e::66", 80, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    expect(&h, &tcp(CLIENT6, "2001:db8:b00::1", 80, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    expect(&h, &tcp(CLIENT6, "2001:db8:9ff:ffff::1", 80, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
}

#[test]
#[ignore = "needs root"]
fn a_syn_to_a_listed_ipv4_host_is_answered_with_a_reset() {
    let h = harness();
    let f = tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN).with_syn_options();
    let out = expect(&h, &f, XdpAction::Tx, Reason::DstV4);
    assert_reset(&f, &out);
}

#[test]
#[ignore = "needs root"]
fn a_data_segment_to_a_listed_host_gets_a_reset_in_sequence() {
    let h = harness();
    let f = tcp(CLIENT4, "203.0.113.66", 80, TCP_ACK | TCP_PSH).payload(b"GET / HTTP/1.1\r\nHost: x.example\r\n\r\n");
    let out = expect(&h, &f, XdpAction::Tx, Reason::DstV4);
    assert_reset(&f, &out);
    let f = tcp(CLIENT4, "203.0.113.66", 80, TCP_FIN).payload(b"abc");
    let out = expect(&h, &f, XdpAction::Tx, Reason::DstV4);
    assert_reset(&f, &out);
}

#[test]
#[ignore = "needs root"]
fn prefixes_block_every_address_inside_them() {
    let h = harness();
    for dst in ["203.0.113.128", "203.0.113.199", "203.0.113.255", "198.51.100.1"] {
        let f = tcp(CLIENT4, dst, 80, TCP_SYN);
        assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV4));
    }
    // A /64 marks its /48 in the coarse filter, a /40 its /32 (blocker-common coarse.rs): both
    // must reach the trie from every address they cover.
    for dst in ["2001:db8:f:1::abcd", "2001:db8:a00::1", "2001:db8:a42:1::1", "2001:db8:aff:ffff:ffff:ffff:ffff:ffff"] {
        let f = tcp(CLIENT6, dst, 80, TCP_SYN);
        assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV6));
    }
}

#[test]
#[ignore = "needs root"]
fn the_allow_list_wins_over_a_covering_block_prefix() {
    let h = harness();
    expect(&h, &tcp(CLIENT4, "203.0.113.200", 80, TCP_SYN), XdpAction::Pass, Reason::AllowList);
    expect(&h, &tcp(CLIENT6, "2001:db8:f:1::200", 80, TCP_SYN), XdpAction::Pass, Reason::AllowList);
    // Its neighbours stay blocked.
    expect(&h, &tcp(CLIENT4, "203.0.113.201", 80, TCP_SYN), XdpAction::Tx, Reason::DstV4);
}

#[test]
#[ignore = "needs root"]
fn a_syn_to_a_listed_ipv6_host_is_answered_with_a_reset() {
    let h = harness();
    let f = tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN).with_syn_options();
    assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV6));
}

#[test]
#[ignore = "needs root"]
fn udp_icmp_and_resets_to_listed_hosts_are_dropped() {
    let h = harness();
    expect(&h, &udp(CLIENT4, "203.0.113.66", 443, b"quic"), XdpAction::Drop, Reason::DstV4);
    expect(&h, &udp(CLIENT6, "2001:db8:f::66", 53, b"dns"), XdpAction::Drop, Reason::DstV6);
    let icmp = Frame::new(CLIENT4, "203.0.113.66", L4::Raw { proto: 1, bytes: vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0] });
    expect(&h, &icmp, XdpAction::Drop, Reason::DstV4);
    // Never answer a reset with a reset.
    expect(&h, &tcp(CLIENT4, "203.0.113.66", 80, TCP_RST), XdpAction::Drop, Reason::DstV4);
}

#[test]
#[ignore = "needs root"]
fn with_drop_tcp_blocked_tcp_is_dropped_silently() {
    let h = Harness::with_options(BLOCK, ALLOW, Options { tcp_reset: false, ..Options::default() });
    expect(&h, &tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN), XdpAction::Drop, Reason::DstV4);
}

#[test]
#[ignore = "needs root"]
fn vlan_and_qinq_tagged_frames_are_judged_and_reset_on_their_vlan() {
    let h = harness();
    let f = tcp(CLIENT4, "203.0.113.66", 80, TCP_SYN).vlan(0x8100, 100);
    assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV4));
    let f = tcp(CLIENT6, "2001:db8:f::66", 80, TCP_SYN).vlan(0x88a8, 10).vlan(0x8100, 20);
    assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV6));
    let f = tcp(CLIENT4, "203.0.113.66", 80, TCP_SYN).vlan(0x8100, 10).vlan(0x8100, 20);
    assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV4));
    expect(&h, &tcp(CLIENT4, "203.0.113.10", 80, TCP_SYN).vlan(0x88a8, 10).vlan(0x8100, 20), XdpAction::Pass, Reason::NoMatch);
    // A third tag is beyond what the parser follows: fail open, counted.
    let f = tcp(CLIENT4, "203.0.113.66", 80, TCP_SYN).vlan(0x88a8, 1).vlan(0x8100, 2).vlan(0x8100, 3);
    expect(&h, &f, XdpAction::Pass, Reason::Unsupported);
}

#[test]
#[ignore = "needs root"]
fn ipv4_options_are_skipped_and_left_out_of_the_reset() {
    let h = harness();
    // NOP, NOP, NOP, EOL and a Router Alert option.
    let f = tcp(CLIENT4, "203.0.113.66", 80, TCP_SYN).ipv4_options(&[1, 1, 1, 0, 148, 4, 0, 0]);
    assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV4));
    let f = tcp(CLIENT4, "203.0.113.10", 80, TCP_SYN).ipv4_options(&[1; 40]);
    expect(&h, &f, XdpAction::Pass, Reason::NoMatch);
}

#[test]
#[ignore = "needs root"]
fn ipv4_fragments_are_judged_by_address() {
    let h = harness();
    // First fragment (MF, offset 0) carries the TCP header: reset.
    let f = tcp(CLIENT4, "203.0.113.66", 80, TCP_SYN).ipv4_frag(0x2000);
    assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV4));
    // A later fragment has no L4 header: blocked by address, dropped.
    let later = Frame::new(CLIENT4, "203.0.113.66", L4::Raw { proto: 6, bytes: vec![0xab; 64] }).ipv4_frag(0x0010);
    expect(&h, &later, XdpAction::Drop, Reason::DstV4);
    let later = Frame::new(CLIENT4, "203.0.113.10", L4::Raw { proto: 6, bytes: vec![0xab; 64] }).ipv4_frag(0x2010);
    expect(&h, &later, XdpAction::Pass, Reason::NoMatch);
}

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DEST_OPTS: u8 = 60;
const AH: u8 = 51;

fn pad_opts(n: usize) -> Vec<u8> {
    // PadN option filling n bytes (n >= 2).
    let mut v = vec![1, (n - 2) as u8];
    v.resize(n, 0);
    v
}

#[test]
#[ignore = "needs root"]
fn ipv6_extension_chains_are_walked_to_the_tcp_header() {
    let h = harness();
    let f = tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN)
        .ext(HOP_BY_HOP, &pad_opts(6))
        .ext(DEST_OPTS, &pad_opts(14))
        .ext(ROUTING, &[0, 0, 0, 0, 0, 0]) // type 0, nothing left to visit
        .ext(FRAGMENT, &[0, 0, 0, 0, 0, 1]) // offset 0: first fragment
        .ext(AH, &[0; 10])
        .ext(DEST_OPTS, &pad_opts(6));
    assert_reset(&f, &expect(&h, &f, XdpAction::Tx, Reason::DstV6));
    let f = tcp(CLIENT6, "2001:db8:f::10", 443, TCP_SYN).ext(HOP_BY_HOP, &pad_opts(6)).ext(DEST_OPTS, &pad_opts(6));
    expect(&h, &f, XdpAction::Pass, Reason::NoMatch);
}

#[test]
#[ignore = "needs root"]
fn ipv6_non_first_fragments_and_overlong_chains_are_judged_by_address() {
    let h = harness();
    let f = tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN).ext(FRAGMENT, &[0x00, 0x08, 0, 0, 0, 1]);
    expect(&h, &f, XdpAction::Drop, Reason::DstV6);
    let mut f = tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN);
    for _ in 0..12 {
        f = f.ext(DEST_OPTS, &pad_opts(6));
    }
    expect(&h, &f, XdpAction::Drop, Reason::DstV6);
    let mut f = tcp(CLIENT6, "2001:db8:f::10", 443, TCP_SYN);
    for _ in 0..12 {
        f = f.ext(DEST_OPTS, &pad_opts(6));
    }
    expect(&h, &f, XdpAction::Pass, Reason::NoMatch);
}

#[test]
#[ignore = "needs root"]
fn a_source_routed_packet_is_judged_by_its_final_destination_too() {
    let h = harness();
    // SRv6 header (type 4) with segments left 1, last entry 0, segment list [final=listed].
    let mut srh = vec![4, 1, 0, 0, 0, 0];
    srh.extend("2001:db8:f::66".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let f = tcp(CLIENT6, "2001:db8:f::10", 443, TCP_SYN).ext(ROUTING, &srh);
    let out = expect(&h, &f, XdpAction::Tx, Reason::DstV6);
    // The client's connection is with the final destination (its pseudo-header checksum
    // names it, RFC 8200 §8.1): the reset comes from there, not from the waypoint.
    assert_reset_from(&f, &out, "2001:db8:f::66".parse().unwrap());

    // A listed waypoint with an unlisted final destination: blocked by the destination field,
    // and still answered from the final destination, the client's peer.
    let mut srh = vec![4, 1, 0, 0, 0, 0];
    srh.extend("2001:db8:e::5".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let f = tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN).ext(ROUTING, &srh);
    let out = expect(&h, &f, XdpAction::Tx, Reason::DstV6);
    assert_reset_from(&f, &out, "2001:db8:e::5".parse().unwrap());

    // Segments left 0: the destination field is final, and the reset comes from it.
    let mut done = vec![4, 0, 0, 0, 0, 0];
    done.extend("2001:db8:e::5".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let f = tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN).ext(ROUTING, &done);
    let out = expect(&h, &f, XdpAction::Tx, Reason::DstV6);
    assert_reset(&f, &out);
}

#[test]
#[ignore = "needs root"]
fn frames_that_are_not_ip_pass() {
    let h = harness();
    let mut arp = vec![0xff; 6];
    arp.extend(CLIENT_MAC);
    arp.extend([0x08, 0x06]);
    arp.extend([0u8; 28]);
    let o = h.run(&arp);
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NotIp));
}

#[test]
#[ignore = "needs root"]
fn the_bypass_switch_passes_everything_and_turns_off_again() {
    let mut h = harness();
    h.dp.set_bypass(true).unwrap();
    expect(&h, &tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN), XdpAction::Pass, Reason::Bypass);
    h.dp.set_bypass(false).unwrap();
    expect(&h, &tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN), XdpAction::Tx, Reason::DstV4);
}

#[test]
#[ignore = "needs root"]
fn counters_count_packets_and_bytes_by_reason_and_action() {
    let h = harness();
    let blocked = udp(CLIENT4, "203.0.113.66", 443, &[0; 100]).build();
    let allowed = udp(CLIENT4, "203.0.113.10", 443, &[0; 10]).build();
    for _ in 0..3 {
        h.run(&blocked);
    }
    h.run(&allowed);
    let c = h.dp.counters().unwrap();
    assert_eq!(c.get(Reason::DstV4, Action::Drop), (3, 3 * blocked.len() as u64));
    assert_eq!(c.get(Reason::NoMatch, Action::Pass), (1, allowed.len() as u64));
    assert_eq!(c.total_packets(), 4);
}

#[test]
#[ignore = "needs root"]
fn installing_a_new_list_replaces_the_old_one() {
    let mut h = harness();
    let new = support::list_set("203.0.113.10\n", "");
    let report = h.dp.install(&new).unwrap();
    assert_eq!(report.block_v4, 1);
    expect(&h, &tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    expect(&h, &tcp(CLIENT4, "203.0.113.10", 443, TCP_SYN), XdpAction::Tx, Reason::DstV4);
    expect(&h, &tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    // And back: the slot used two installs ago is cleared and refilled.
    h.dp.install(&support::list_set(BLOCK, ALLOW)).unwrap();
    expect(&h, &tcp(CLIENT4, "203.0.113.10", 443, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    expect(&h, &tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN), XdpAction::Tx, Reason::DstV4);
}

/// Both generations share one trie: a prefix only one of them lists, inside or around a prefix
/// of the other, never changes what the live one answers, nor which of its entries is counted.
#[test]
#[ignore = "needs root"]
fn nested_prefixes_of_the_two_generations_each_answer_for_their_own() {
    let mut h = harness();
    // Generation a: a /24 (id 1) and a /48 (id 2), and an allow /27 inside the /24.
    h.dp.install(&support::list_set("198.51.100.0/24\n2001:db8:a::/48\n", "198.51.100.224/27\n")).unwrap();
    // Generation b (live): a /26 inside a's /24 (id 3), a /64 inside its /48 (id 4) and a /28
    // inside its allow /27 (id 5); no allow entry. Two unrelated entries first, so that no id of
    // b is also one of a's.
    let b = "192.0.2.1\n192.0.2.2\n198.51.100.64/26\n2001:db8:a:1::/64\n198.51.100.240/28\n";
    h.dp.install(&support::list_set(b, "")).unwrap();
    for (dst, action, reason) in [
        ("198.51.100.70", XdpAction::Tx, Reason::DstV4),
        // Inside a's /24 but outside b's prefixes: a is not live.
        ("198.51.100.5", XdpAction::Pass, Reason::NoMatch),
        // Inside a's allow /27, which b does not have.
        ("198.51.100.241", XdpAction::Tx, Reason::DstV4),
    ] {
        expect(&h, &tcp(CLIENT4, dst, 443, TCP_SYN), action, reason);
    }
    expect(&h, &tcp(CLIENT6, "2001:db8:a:1::5", 443, TCP_SYN), XdpAction::Tx, Reason::DstV6);
    expect(&h, &tcp(CLIENT6, "2001:db8:a:2::5", 443, TCP_SYN), XdpAction::Pass, Reason::NoMatch);
    assert_eq!(h.dp.entry_hits().unwrap(), [(3, 1), (4, 1), (5, 1)]);

    // Back to a: its lookups find b's /26, /28 and /64 first, which answer with a's covering
    // entries, and its allow /27 wins over the /28's answer for a (its /24).
    assert!(h.dp.switch_to_previous().unwrap());
    for dst in ["198.51.100.5", "198.51.100.70", "198.51.100.200"] {
        expect(&h, &tcp(CLIENT4, dst, 443, TCP_SYN), XdpAction::Tx, Reason::DstV4);
    }
    for dst in ["198.51.100.230", "198.51.100.241"] {
        expect(&h, &tcp(CLIENT4, dst, 443, TCP_SYN), XdpAction::Pass, Reason::AllowList);
    }
    for dst in ["2001:db8:a:1::5", "2001:db8:a:2::5"] {
        expect(&h, &tcp(CLIENT6, dst, 443, TCP_SYN), XdpAction::Tx, Reason::DstV6);
    }
    // Counted against a's own entries: the /24 (id 1) three times, the /48 (id 2) twice.
    assert_eq!(h.dp.entry_hits().unwrap(), [(1, 3), (2, 2)]);
}

/// Every fixture cut at every length: never XDP_ABORTED, and never a block that the full
/// frame would not get (a cut frame is either judged by the same address or passes, for
/// whatever reason).
#[test]
#[ignore = "needs root"]
fn truncation_at_every_length_never_aborts_and_never_blocks_wrongly() {
    let h = harness();
    let fixtures: Vec<Frame> = vec![
        tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN).with_syn_options(),
        tcp(CLIENT4, "203.0.113.10", 443, TCP_SYN).with_syn_options(),
        tcp(CLIENT4, "203.0.113.66", 80, TCP_SYN).vlan(0x88a8, 1).vlan(0x8100, 2).ipv4_options(&[1, 1, 1, 0]),
        tcp(CLIENT4, "203.0.113.10", 80, TCP_ACK).vlan(0x8100, 2).payload(b"GET / HTTP/1.1\r\n\r\n"),
        udp(CLIENT4, "203.0.113.66", 53, b"query"),
        tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN).ext(HOP_BY_HOP, &pad_opts(6)).ext(FRAGMENT, &[0, 0, 0, 0, 0, 1]),
        tcp(CLIENT6, "2001:db8:f::10", 443, TCP_SYN).ext(HOP_BY_HOP, &pad_opts(6)).ext(ROUTING, &[0, 0, 0, 0, 0, 0]),
        udp(CLIENT6, "2001:db8:f::66", 443, b"quic").vlan(0x8100, 7),
    ];
    let mut runs = 0;
    for f in &fixtures {
        let full_frame = f.build();
        let full = h.run(&full_frame);
        // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header, as no NIC
        // delivers one; every longer cut is tried.
        for len in 14..full_frame.len() {
            let o = h.run(&full_frame[..len]);
            runs += 1;
            assert_ne!(o.action, XdpAction::Aborted, "{f:?} cut at {len}");
            if o.action != XdpAction::Pass {
                assert_eq!(o.reason, full.reason, "{f:?} cut at {len} blocked for a different reason");
                assert_ne!(full.action, XdpAction::Pass, "{f:?} cut at {len} blocked but the full frame passes");
            }
            if o.action == XdpAction::Tx {
                assert_reset(f, &o.frame);
            }
        }
    }
    eprintln!("{runs} truncated frames judged");
}

#[test]
#[ignore = "needs root"]
fn nothing_is_blocked_with_empty_lists() {
    let h = Harness::new("", "");
    for f in [tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN), tcp(CLIENT6, "2001:db8:f::66", 443, TCP_SYN), udp(CLIENT4, "198.51.100.7", 53, b"q")] {
        expect(&h, &f, XdpAction::Pass, Reason::NoMatch);
    }
    let _ = frames::checksum(&[], 0);
}
