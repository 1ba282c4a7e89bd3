//! QUIC through the real kernel program (BPF_PROG_TEST_RUN) and the daemon's judging: client
//! Initials of flows without a verdict pass and are copied to the ring buffer; the daemon side
//! (ring → Reader → lists → verdict map, `QuicJudge` on the real maps) writes block for a
//! listed name, and the flow's later datagrams are dropped and counted under `quic`; an
//! unlisted name's flow gets pass and is no longer copied; other UDP is neither touched nor
//! copied; overload fails open; bypass passes everything.
//!
//! Fixtures: the one-packet client Initials of RFC 9001 / RFC 9369 (QUIC v1 / v2, example.com)
//! and Chromium 156's two-packet first flights (v1 and v2, quic.example.test).

mod support;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use blocker_common::{
    quic::{QuicConfig, QuicFlow, QuicVerdict, VERDICT_BLOCK, VERDICT_PASS, VERDICT_SHADOW},
    verdict::{Action, Reason},
};
use blocker_user::{
    daemon::{
        Daemon, QuicSettings,
        quic::{QuicJudge, epoch_of},
    },
    datapath::{
        Adoption, Options, QuicMaps, XdpAction,
        quic::{Copied, flow_key},
    },
    quic::{
        Limits,
        fixtures::{self, CHROMIUM_NAME, RFC_NAME},
    },
    update::{ListManager, Settings, UpdateRequest},
};
use support::{
    Harness, NEEDS_ROOT, Outcome,
    frames::{Frame, L4},
};

const CLIENT4: &str = "192.0.2.20";
const SERVER4: &str = "203.0.113.44";
const CLIENT6: &str = "2001:db8:c::20";
const SERVER6: &str = "2001:db8:5::44";

/// The RFC vectors' connection ID (of the Initials' Destination Connection ID).
const RFC_DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

/// The program with `block`/`allow` lists (and a shadow list), QUIC on, and the daemon's judge
/// on the real maps.
struct Quic {
    h: Harness,
    maps: QuicMaps,
    judge: QuicJudge,
}

impl Quic {
    fn new(block: &str, allow: &str, shadow: &str) -> Quic {
        Self::with_rate(block, allow, shadow, 1_000_000, 100_000)
    }

    fn with_rate(block: &str, allow: &str, shadow: &str, rate: u32, burst: u32) -> Quic {
        let mut h = Harness::with_set(support::shadow_set(block, allow, shadow), Options::default());
        let mut maps = h.dp.take_quic().expect("the QUIC maps");
        maps.set_config(QuicConfig::new(true, 1, rate, burst)).expect("QUIC_CONFIG");
        let judge = QuicJudge::new(Arc::new(h.set.clone()), 1, Limits::default());
        Quic { h, maps, judge }
    }

    fn run(&self, frame: &[u8]) -> Outcome {
        self.h.run(frame)
    }

    /// Everything waiting in the ring.
    fn copies(&mut self) -> Vec<Copied> {
        std::iter::from_fn(|| self.maps.next()).collect()
    }

    /// The daemon's part: every waiting copy read and judged, verdicts into the map.
    fn judge_waiting(&mut self) -> Vec<QuicVerdict> {
        let mut out = Vec::new();
        while let Some(c) = self.maps.next() {
            if let Some(v) = self.judge.handle(&c, &mut self.maps) {
                out.push(v);
            }
        }
        out
    }

    fn entry(&self, name: &str) -> u32 {
        let l = self.h.set.match_name(name).unwrap();
        l.block.or(l.shadow).expect("a listed name").entry.id
    }
}

fn datagram(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    Frame::new(src, dst, L4::Udp { sport, dport, payload: payload.to_vec() }).build()
}

fn flow(src: &str, sport: u16, dst: &str, dport: u16) -> QuicFlow {
    flow_key(src.parse::<IpAddr>().unwrap(), sport, dst.parse::<IpAddr>().unwrap(), dport)
}

fn coalesced_with_zero_rtt(initial: Vec<u8>, version: u32) -> Vec<u8> {
    let mut d = initial;
    d.extend(fixtures::zero_rtt_packet(version, &RFC_DCID, 100));
    d
}

/// A Handshake packet header (v1) with an opaque body: what a client sends once it has the
/// server's Initial. Only its header is read.
fn handshake_packet() -> Vec<u8> {
    let mut p = vec![0xe1, 0, 0, 0, 1, 8];
    p.extend_from_slice(&RFC_DCID);
    p.push(0);
    p.extend_from_slice(&(0x4000u16 | 102).to_be_bytes());
    p.extend(std::iter::repeat_n(0x33, 102));
    p
}

/// A short-header (1-RTT) packet: what carries a connection's data.
fn short_packet() -> Vec<u8> {
    let mut p = vec![0x41];
    p.extend_from_slice(&RFC_DCID);
    p.extend(std::iter::repeat_n(0x77, 60));
    p
}

#[test]
#[ignore = "needs root"]
fn client_initials_of_flows_without_a_verdict_pass_and_are_copied() {
    let _ = NEEDS_ROOT;
    let mut q = Quic::new("", "", "");
    let [c1, _] = fixtures::chromium_first_flight(false);
    let [c2, _] = fixtures::chromium_first_flight(true);
    let mut with_handshake = fixtures::rfc9001_initial();
    with_handshake.extend(handshake_packet());
    let cases: [(&str, &str, &str, Vec<u8>); 6] = [
        ("RFC 9001 one-packet Initial (v1)", CLIENT4, SERVER4, fixtures::rfc9001_initial()),
        ("RFC 9369 one-packet Initial (v2)", CLIENT4, SERVER4, fixtures::rfc9369_initial()),
        ("Chromium's first Initial (v1)", CLIENT4, SERVER4, c1),
        ("Chromium's first Initial (v2)", CLIENT4, SERVER4, c2),
        ("an Initial with a Handshake packet coalesced", CLIENT4, SERVER4, with_handshake),
        ("an Initial over IPv6", CLIENT6, SERVER6, fixtures::rfc9001_initial()),
    ];
    for (i, (what, src, dst, payload)) in cases.into_iter().enumerate() {
        let sport = 50000 + i as u16;
        let frame = datagram(src, sport, dst, 443, &payload);
        let o = q.run(&frame);
        assert_eq!((o.action, o.reason, o.verdict), (XdpAction::Pass, Reason::QuicPending, Action::Pass), "{what}");
        assert_eq!(o.frame, frame, "{what}: passed unchanged");
        let copies = q.copies();
        assert_eq!(copies.len(), 1, "{what}: one copy");
        let c = &copies[0];
        assert_eq!(c.flow, flow(src, sport, dst, 443), "{what}: the flow key");
        assert_eq!((c.payload.as_slice(), c.wire_len as usize, c.epoch), (payload.as_slice(), payload.len(), 1), "{what}");
    }
}

#[test]
#[ignore = "needs root"]
fn pinned_quic_maps_hand_verdicts_and_unread_initials_to_the_next_daemon() {
    let pins = blocker_tests::lab::PrivateBpffs::mount("quic-pins").expect("a bpf filesystem of the test's own");
    let options = || Options { pin_dir: Some(pins.dir.clone()), ..Options::default() };
    let blocked = |p: &[u8]| datagram(CLIENT4, 53000, SERVER4, 443, p);
    let unread = datagram(CLIENT4, 53001, SERVER4, 443, &fixtures::rfc9001_initial());

    // A daemon judges one flow blocked; another flow's Initial is copied and not yet read
    // when it exits.
    let epoch = {
        let mut h = Harness::with_set(support::list_set(CHROMIUM_NAME, ""), options());
        let mut maps = h.dp.take_quic().expect("the QUIC maps");
        let epoch = epoch_of(&h.set);
        maps.set_config(QuicConfig::new(true, epoch, 1_000_000, 100_000)).expect("QUIC_CONFIG");
        let mut judge = QuicJudge::new(Arc::new(h.set.clone()), epoch, Limits::default());
        let [a, b] = fixtures::chromium_first_flight(false);
        h.run(&blocked(&a));
        h.run(&blocked(&b));
        while let Some(c) = maps.next() {
            judge.handle(&c, &mut maps);
        }
        assert_eq!(maps.verdict(&flow(CLIENT4, 53000, SERVER4, 443)).map(|v| v.kind), Some(VERDICT_BLOCK));
        assert_eq!(h.run(&unread).reason, Reason::QuicPending);
        epoch
    };

    // The next daemon of the same build, with the same lists, starts QUIC as `blocker run` does.
    let mut h = Harness::with_set(support::list_set(CHROMIUM_NAME, ""), options());
    assert_eq!(h.dp.adoption(), Some(Adoption::Adopted));
    let mut maps = h.dp.take_quic().expect("the pinned QUIC maps");
    assert_eq!(epoch_of(&h.set), epoch, "the same lists, the same epoch");
    maps.set_config(QuicConfig::new(true, epoch_of(&h.set), 1_000_000, 100_000)).expect("QUIC_CONFIG");
    for (what, p) in [("handshake", handshake_packet()), ("1-RTT", short_packet())] {
        let o = h.run(&blocked(&p));
        assert_eq!((o.action, o.reason), (XdpAction::Drop, Reason::Quic), "the blocked flow's {what} packet");
    }
    let waiting: Vec<Copied> = std::iter::from_fn(|| maps.next()).collect();
    assert_eq!(waiting.len(), 1, "the Initial copied before the restart waits in the ring");
    assert_eq!(waiting[0].flow, flow(CLIENT4, 53001, SERVER4, 443));
    let mut judge = QuicJudge::new(Arc::new(h.set.clone()), epoch, Limits::default());
    assert_eq!(judge.handle(&waiting[0], &mut maps).map(|v| v.kind), Some(VERDICT_PASS), "and is judged by the next daemon");
    drop((maps, h));

    // A daemon run with --no-quic turns QUIC off in the maps it adopts.
    let mut h = Harness::with_set(support::list_set(CHROMIUM_NAME, ""), options());
    h.dp.quic_off().expect("QUIC off");
    let o = h.run(&blocked(&short_packet()));
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch), "judged by address only");
}

#[test]
#[ignore = "needs root"]
fn a_listed_name_read_from_two_chromium_initials_blocks_the_rest_of_its_flow() {
    for v2 in [false, true] {
        let mut q = Quic::new(CHROMIUM_NAME, "", "");
        let [a, b] = fixtures::chromium_first_flight(v2);
        let at = |p: &[u8]| datagram(CLIENT4, 51000, SERVER4, 443, p);
        // The first flight passes (the name may be in either datagram); both are copied.
        assert_eq!(q.run(&at(&a)).reason, Reason::QuicPending);
        assert_eq!(q.run(&at(&b)).reason, Reason::QuicPending);
        let verdicts = q.judge_waiting();
        let entry = q.entry(CHROMIUM_NAME);
        assert_eq!(verdicts, [QuicVerdict { kind: VERDICT_BLOCK, entry_id: entry, epoch: 1, reserved: 0 }], "v2 {v2}");
        assert_eq!(q.maps.verdict(&flow(CLIENT4, 51000, SERVER4, 443)).map(|v| v.kind), Some(VERDICT_BLOCK));

        // From now on every datagram of the flow is dropped: Handshake, 1-RTT, a resent Initial.
        for (what, p) in [("handshake", handshake_packet()), ("1-RTT", short_packet()), ("resent Initial", a.clone())] {
            let o = q.run(&at(&p));
            assert_eq!((o.action, o.reason, o.verdict), (XdpAction::Drop, Reason::Quic, Action::Drop), "v2 {v2}: {what}");
        }
        assert!(q.copies().is_empty(), "a judged flow is not copied");
        assert_eq!(q.h.hits().get(&entry), Some(&3), "counted against the entry");
        // Another flow to the same server is its own: judged from its own Initials.
        let other = datagram(CLIENT4, 51001, SERVER4, 443, &a);
        assert_eq!(q.run(&other).reason, Reason::QuicPending);
    }
}

#[test]
#[ignore = "needs root"]
fn an_unlisted_name_gets_pass_and_its_flow_is_no_longer_copied() {
    // Listed: a name that only shares a suffix with example.com across no label boundary.
    let mut q = Quic::new("xexample.com\n", "", "");
    for (version, initial) in [(1, fixtures::rfc9001_initial()), (2, fixtures::rfc9369_initial())] {
        let frame = datagram(CLIENT4, 52000 + version, SERVER4, 443, &initial);
        assert_eq!(q.run(&frame).reason, Reason::QuicPending);
        let v = q.judge_waiting();
        assert_eq!(v.iter().map(|v| v.kind).collect::<Vec<_>>(), [VERDICT_PASS], "v{version}");
        // The same Initial again (a retransmission): passes, not copied.
        let o = q.run(&frame);
        assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch), "v{version}");
        assert!(q.copies().is_empty(), "v{version}: no more copies");
        // 0-RTT of a judged flow passes too.
        let zero = datagram(CLIENT4, 52000 + version, SERVER4, 443, &fixtures::zero_rtt_packet(version as u32, &RFC_DCID, 1200));
        assert_eq!(q.run(&zero).reason, Reason::NoMatch);
    }
}

#[test]
#[ignore = "needs root"]
fn allow_entries_win_and_shadow_names_are_counted_not_dropped() {
    let mut q = Quic::new("example.test\n", "quic.example.test\n", "example.com\n");
    let [a, b] = fixtures::chromium_first_flight(false);
    for p in [&a, &b] {
        q.run(&datagram(CLIENT4, 53000, SERVER4, 443, p));
    }
    q.run(&datagram(CLIENT4, 53001, SERVER4, 443, &fixtures::rfc9001_initial()));
    let kinds: Vec<u32> = q.judge_waiting().iter().map(|v| v.kind).collect();
    assert_eq!(kinds, [VERDICT_PASS, VERDICT_SHADOW], "allowed, then shadow-listed");
    let allowed = q.run(&datagram(CLIENT4, 53000, SERVER4, 443, &short_packet()));
    assert_eq!((allowed.action, allowed.reason), (XdpAction::Pass, Reason::NoMatch));
    let shadowed = q.run(&datagram(CLIENT4, 53001, SERVER4, 443, &short_packet()));
    assert_eq!((shadowed.action, shadowed.reason, shadowed.verdict), (XdpAction::Pass, Reason::Quic, Action::Shadow));
    assert_eq!(q.h.hits().get(&q.entry(RFC_NAME)), Some(&1));
}

#[test]
#[ignore = "needs root"]
fn unrelated_udp_other_ports_and_non_initial_quic_are_untouched_and_not_copied() {
    let mut q = Quic::new(RFC_NAME, "", "");
    let initial = fixtures::rfc9001_initial();
    let mut short_initial = initial.clone();
    short_initial.truncate(1199);
    let mut garbage = vec![0u8; 1300];
    let mut x = 0x2545_f491_u32;
    for b in garbage.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut unknown_version = initial.clone();
    unknown_version[1..5].copy_from_slice(&[0xff, 0, 0, 0x1d]);
    let cases: [(&str, Vec<u8>); 9] = [
        ("an Initial to UDP 8443", datagram(CLIENT4, 54000, SERVER4, 8443, &initial)),
        ("an Initial from port 443 (a server's side)", datagram(SERVER4, 443, CLIENT4, 54001, &initial)),
        ("DNS-sized UDP to 443", datagram(CLIENT4, 54002, SERVER4, 443, b"\x00\x01hello")),
        ("garbage on UDP 443", datagram(CLIENT4, 54003, SERVER4, 443, &garbage)),
        ("an Initial shorter than 1200 bytes", datagram(CLIENT4, 54004, SERVER4, 443, &short_initial)),
        ("a draft or unknown version", datagram(CLIENT4, 54005, SERVER4, 443, &unknown_version)),
        ("a Handshake packet", datagram(CLIENT4, 54006, SERVER4, 443, &handshake_packet())),
        ("a 1-RTT packet", datagram(CLIENT4, 54007, SERVER4, 443, &short_packet())),
        ("an empty UDP 443 datagram", datagram(CLIENT4, 54008, SERVER4, 443, b"")),
    ];
    for (what, frame) in cases {
        let o = q.run(&frame);
        assert_eq!((o.action, o.reason, o.verdict), (XdpAction::Pass, Reason::NoMatch, Action::Pass), "{what}");
        assert_eq!(o.frame, frame, "{what}: unchanged");
        assert!(q.copies().is_empty(), "{what}: not copied");
    }
}

#[test]
#[ignore = "needs root"]
fn garbage_shaped_like_an_initial_is_copied_until_the_daemon_gives_up_on_its_flow() {
    let mut q = Quic::new(RFC_NAME, "", "");
    let mut fake = fixtures::rfc9001_initial();
    // Corrupt the protected payload: the header still says Initial, the packet no longer opens.
    for b in fake[100..].iter_mut() {
        *b ^= 0xa5;
    }
    let frame = datagram(CLIENT4, 55000, SERVER4, 443, &fake);
    let mut written = Vec::new();
    for _ in 0..blocker_user::daemon::quic::GIVE_UP {
        assert_eq!(q.run(&frame).reason, Reason::QuicPending);
        written.extend(q.judge_waiting());
    }
    assert_eq!(written.iter().map(|v| v.kind).collect::<Vec<_>>(), [VERDICT_PASS]);
    assert_eq!(q.run(&frame).reason, Reason::NoMatch);
    assert!(q.copies().is_empty());
}

#[test]
#[ignore = "needs root"]
fn zero_rtt_of_a_flow_without_a_verdict_does_not_pass() {
    let mut q = Quic::new(RFC_NAME, "", "");
    for (version, initial) in [(1u32, fixtures::rfc9001_initial()), (2, fixtures::rfc9369_initial())] {
        let sport = 56000 + version as u16;
        // 0-RTT alone: dropped, not copied.
        let zero = datagram(CLIENT4, sport, SERVER4, 443, &fixtures::zero_rtt_packet(version, &RFC_DCID, 1200));
        let o = q.run(&zero);
        assert_eq!((o.action, o.reason), (XdpAction::Drop, Reason::QuicEarly), "v{version}");
        assert!(q.copies().is_empty());
        // Coalesced after the Initial, IPv4: copied whole (the name gets read), and the Initial
        // passes cut before the 0-RTT packet: lengths and IP checksum fixed, UDP checksum
        // cleared (none, as RFC 768 allows).
        let both = datagram(CLIENT4, sport, SERVER4, 443, &coalesced_with_zero_rtt(initial.clone(), version));
        let o = q.run(&both);
        assert_eq!((o.action, o.reason, o.verdict), (XdpAction::Pass, Reason::QuicEarly, Action::Pass), "v{version}");
        let mut cut = datagram(CLIENT4, sport, SERVER4, 443, &initial);
        cut[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
        assert_eq!(o.frame, cut, "v{version}: the Initial alone, IPv4 header checksum right");
        let copies = q.copies();
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].payload, coalesced_with_zero_rtt(initial.clone(), version), "the copy is whole");
        assert_eq!(q.judge.handle(&copies[0], &mut q.maps).map(|v| v.kind), Some(VERDICT_BLOCK), "v{version}");
        // The client's resend now meets the verdict.
        assert_eq!(q.run(&both).reason, Reason::Quic);

        // IPv6: UDP must keep a checksum, so the datagram is dropped instead (the client resends
        // its Initial after a probe timeout, by when the verdict exists).
        let both6 = datagram(CLIENT6, sport, SERVER6, 443, &coalesced_with_zero_rtt(initial.clone(), version));
        let o = q.run(&both6);
        assert_eq!((o.action, o.reason), (XdpAction::Drop, Reason::QuicEarly), "v{version} over IPv6");
        assert_eq!(q.judge_waiting().iter().map(|v| v.kind).collect::<Vec<_>>(), [VERDICT_BLOCK], "v{version}");
        assert_eq!(q.run(&both6).reason, Reason::Quic);
    }
}

#[test]
#[ignore = "needs root"]
fn without_a_live_reader_quic_fails_open_and_written_verdicts_still_hold() {
    let mut q = Quic::new(RFC_NAME, "", "");
    let initial = fixtures::rfc9001_initial();
    // A flow judged while the daemon ran: blocked.
    assert_eq!(q.run(&datagram(CLIENT4, 58000, SERVER4, 443, &initial)).reason, Reason::QuicPending);
    assert_eq!(q.judge_waiting().iter().map(|v| v.kind).collect::<Vec<_>>(), [VERDICT_BLOCK]);
    // The daemon dies: its lease (renewed every second while it runs) ends in the past.
    let mut c = q.maps.config().unwrap();
    c.reader_alive_until_ns = 1;
    q.maps.set_config(c).unwrap();
    // New flows: Initials pass uncopied (nothing would read them), 0-RTT passes (nothing would
    // judge the flow), a coalesced 0-RTT packet is left in place.
    let o = q.run(&datagram(CLIENT4, 58001, SERVER4, 443, &initial));
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::QuicOverload));
    let zero = datagram(CLIENT4, 58002, SERVER4, 443, &fixtures::zero_rtt_packet(1, &RFC_DCID, 1200));
    assert_eq!((q.run(&zero).action, q.run(&zero).reason), (XdpAction::Pass, Reason::NoMatch));
    let both = datagram(CLIENT6, 58003, SERVER6, 443, &coalesced_with_zero_rtt(initial.clone(), 1));
    let o = q.run(&both);
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::QuicOverload));
    assert_eq!(o.frame, both, "untouched");
    assert!(q.copies().is_empty());
    // The blocked flow stays blocked, as the rest of the lists do.
    assert_eq!(q.run(&datagram(CLIENT4, 58000, SERVER4, 443, &initial)).reason, Reason::Quic);
    // A renewed lease: copies again.
    let mut c = q.maps.config().unwrap();
    c.reader_alive_until_ns = u64::MAX;
    q.maps.set_config(c).unwrap();
    assert_eq!(q.run(&datagram(CLIENT4, 58004, SERVER4, 443, &initial)).reason, Reason::QuicPending);
}

#[test]
#[ignore = "needs root"]
fn an_empty_token_bucket_or_a_full_ring_fails_open_and_is_counted() {
    // A bucket of two copies that refills at one a second: the third Initial in a row is not
    // copied, and passes.
    let mut q = Quic::with_rate(RFC_NAME, "", "", 1, 2);
    let initial = fixtures::rfc9001_initial();
    let reasons: Vec<Reason> = (0..4).map(|i| q.run(&datagram(CLIENT4, 57000 + i, SERVER4, 443, &initial)).reason).collect();
    assert_eq!(reasons, [Reason::QuicPending, Reason::QuicPending, Reason::QuicOverload, Reason::QuicOverload]);
    assert_eq!(q.copies().len(), 2);
    let o = q.run(&datagram(CLIENT4, 57009, SERVER4, 443, &initial));
    assert_eq!((o.action, o.verdict), (XdpAction::Pass, Action::Pass), "an overloaded Initial passes");

    // A ring nobody drains: it fills, and every Initial after that passes uncopied.
    let q = Quic::new(RFC_NAME, "", "");
    let before = q.h.dp.counters().unwrap();
    let n = 4000u32;
    for i in 0..n {
        let frame = datagram(CLIENT4, 1024 + (i % 60000) as u16, SERVER4, 443, &initial);
        assert_eq!(q.run(&frame).action, XdpAction::Pass);
    }
    let after = q.h.dp.counters().unwrap();
    let pending = after.packets(Reason::QuicPending, Action::Pass) - before.packets(Reason::QuicPending, Action::Pass);
    let overload = after.packets(Reason::QuicOverload, Action::Pass) - before.packets(Reason::QuicOverload, Action::Pass);
    assert_eq!(pending + overload, n as u64);
    assert!(overload > 0 && pending > 1000, "a 4 MiB ring holds a few thousand copies: {pending} copied, {overload} not");
}

#[test]
#[ignore = "needs root"]
fn bypass_passes_every_quic_datagram_and_copies_none() {
    let mut q = Quic::new(RFC_NAME, "", "");
    let frame = datagram(CLIENT4, 58000, SERVER4, 443, &fixtures::rfc9001_initial());
    q.run(&frame);
    assert_eq!(q.judge_waiting().len(), 1);
    assert_eq!(q.run(&frame).reason, Reason::Quic, "blocked");
    q.h.dp.set_bypass(true).unwrap();
    let zero = datagram(CLIENT4, 58001, SERVER4, 443, &fixtures::zero_rtt_packet(1, &RFC_DCID, 1200));
    let fresh = datagram(CLIENT4, 58002, SERVER4, 443, &fixtures::rfc9001_initial());
    for f in [&frame, &zero, &fresh] {
        let o = q.run(f);
        assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::Bypass));
    }
    assert!(q.copies().is_empty());
}

#[test]
#[ignore = "needs root"]
fn quic_off_leaves_udp_443_to_the_address_checks() {
    let mut h = Harness::with_set(support::shadow_set(&format!("{RFC_NAME}\n{SERVER6}\n"), "", ""), Options::default());
    let mut maps = h.dp.take_quic().unwrap();
    // The map starts zeroed: off, as `blocker run --no-quic` leaves it.
    assert_eq!(maps.config().unwrap(), QuicConfig::default());
    let o = h.run(&datagram(CLIENT4, 59000, SERVER4, 443, &fixtures::rfc9001_initial()));
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch));
    let o = h.run(&datagram(CLIENT6, 59000, SERVER6, 443, &fixtures::zero_rtt_packet(1, &RFC_DCID, 1200)));
    assert_eq!((o.action, o.reason), (XdpAction::Drop, Reason::DstV6), "a listed address is dropped by address");
    assert!(maps.next().is_none());
}

#[test]
#[ignore = "needs root"]
fn a_verdict_of_an_older_list_epoch_is_ignored() {
    let mut q = Quic::new(RFC_NAME, "", "");
    let frame = datagram(CLIENT4, 60000, SERVER4, 443, &fixtures::rfc9001_initial());
    q.run(&frame);
    q.judge_waiting();
    assert_eq!(q.run(&frame).reason, Reason::Quic);
    // The program moves to epoch 2 without the daemon rewriting the verdict.
    q.maps.set_config(QuicConfig::new(true, 2, 1_000_000, 100_000)).unwrap();
    let o = q.run(&frame);
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::QuicPending), "judged anew, from a copy");
    let o = q.run(&datagram(CLIENT4, 60000, SERVER4, 443, &short_packet()));
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch));
}

/// The daemon as `blocker run` builds it: lists from a file, the QUIC thread on the real ring.
/// A listed name's flow is dropped once the thread judged it; after a list update that unlists
/// the name the same flow passes again.
#[test]
#[ignore = "needs root"]
fn the_daemon_thread_reads_the_ring_and_follows_list_updates() {
    let dir = std::env::temp_dir().join(format!("blocker-quic-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("block.txt");
    std::fs::write(&list, format!("{CHROMIUM_NAME}\n")).unwrap();
    let mut settings = Settings::default();
    settings.add_files(&[list.clone()], &[]).unwrap();
    let dp = blocker_user::datapath::Datapath::load(Options::default()).unwrap();
    let daemon = Daemon::new(dp, ListManager::new(settings, None));
    daemon.update(&Default::default()).unwrap();
    let thread = daemon.start_quic(QuicSettings::default()).unwrap();

    let [a, b] = fixtures::chromium_first_flight(false);
    let at = |p: &[u8]| datagram(CLIENT4, 61000, SERVER4, 443, p);
    let run = |f: &[u8]| daemon.datapath().run_frame(f).unwrap().action;
    assert_eq!(run(&at(&a)), XdpAction::Pass);
    assert_eq!(run(&at(&b)), XdpAction::Pass);
    let until = |want: XdpAction| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = run(&at(&short_packet()));
            if got == want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(until(XdpAction::Drop), XdpAction::Drop, "the thread judged the flow");
    let stats = daemon.quic_stats().unwrap();
    assert_eq!((stats.copies, stats.sni, stats.blocked), (2, 1, 1));

    // The name is unlisted: the blocked flow is judged again and passes.
    std::fs::write(&list, "other.example.test\n").unwrap();
    // Forced: the change-ratio guard would refuse replacing a whole list.
    daemon.update(&UpdateRequest { force: true, ..Default::default() }).unwrap();
    assert_eq!(run(&at(&short_packet())), XdpAction::Pass, "the new epoch is written with the new verdicts");
    assert_eq!(daemon.quic_stats().unwrap().rejudged, 1);
    let counts: HashMap<&str, u64> =
        daemon.stats().unwrap().counters.iter().filter(|r| r.reason.starts_with("quic")).map(|r| (r.reason, r.packets)).collect();
    assert_eq!(counts.get("quic_pending"), Some(&2));
    assert!(counts.get("quic").is_some_and(|n| *n >= 1));
    drop(thread);
    daemon.stop_quic();
    assert_eq!(run(&at(&fixtures::rfc9001_initial())), XdpAction::Pass);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `blocker run`'s path across a restart with pinned maps: the next daemon restores the same
/// lists from its state directory, takes the same epoch, and the flow its predecessor blocked
/// stays blocked without a new Initial.
#[test]
#[ignore = "needs root"]
fn a_daemon_restarted_on_the_same_lists_keeps_its_predecessors_quic_blocks() {
    let pins = blocker_tests::lab::PrivateBpffs::mount("quic-restart").expect("a bpf filesystem of the test's own");
    let dir = std::env::temp_dir().join(format!("blocker-quic-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("block.txt");
    std::fs::write(&list, format!("{CHROMIUM_NAME}\nother.example.test\n")).unwrap();
    let start = || {
        let mut settings = Settings::default();
        settings.add_files(std::slice::from_ref(&list), &[]).unwrap();
        let dp = blocker_user::datapath::Datapath::load(Options { pin_dir: Some(pins.dir.clone()), ..Options::default() }).unwrap();
        let state = blocker_user::update::StateDir::open(&dir.join("state")).unwrap();
        let daemon = Daemon::new(dp, ListManager::new(settings, Some(state)));
        daemon.restore().unwrap();
        daemon.update(&Default::default()).unwrap();
        let thread = daemon.start_quic(QuicSettings::default()).unwrap();
        (daemon, thread)
    };
    let at = |p: &[u8]| datagram(CLIENT4, 62000, SERVER4, 443, p);

    let (first, thread) = start();
    let [a, b] = fixtures::chromium_first_flight(false);
    for d in [&a, &b] {
        assert_eq!(first.datapath().run_frame(&at(d)).unwrap().action, XdpAction::Pass);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while first.datapath().run_frame(&at(&short_packet())).unwrap().action != XdpAction::Drop {
        assert!(Instant::now() < deadline, "the first daemon did not judge the flow");
        std::thread::sleep(Duration::from_millis(20));
    }
    let epoch = first.quic_epoch();
    // As `run` exits with pinned maps: the thread stops, QUIC stays on.
    drop(thread);
    drop(first);

    let (second, thread) = start();
    assert_eq!(second.datapath().adoption(), Some(Adoption::Adopted));
    assert_eq!(second.quic_epoch(), epoch, "the same lists restored: the same epoch");
    let o = second.datapath().run_frame(&at(&short_packet())).unwrap();
    assert_eq!(o.action, XdpAction::Drop, "the predecessor's verdict holds");
    assert_eq!(second.quic_stats().unwrap().copies, 0, "without a copy read again");
    drop(thread);
    second.stop_quic();
    let _ = std::fs::remove_dir_all(&dir);
}

/// With QUIC on and nothing listed, cut and bit-flipped Initials never abort and never drop,
/// except 0-RTT-shaped datagrams of unjudged flows (`quic_early`: dropped or cut); and whatever the daemon
/// makes of the copies, no flow is blocked.
#[test]
#[ignore = "needs root"]
fn with_nothing_listed_mangled_quic_passes_and_no_flow_is_blocked() {
    let mut q = Quic::new("", "", "");
    let [c1, c2] = fixtures::chromium_first_flight(false);
    let sources = [fixtures::rfc9001_initial(), fixtures::rfc9369_initial(), c1, c2];
    // The intact ones too: they read to unlisted names.
    let mut frames: Vec<Vec<u8>> = sources.to_vec();
    for d in &sources {
        for len in (0..=d.len()).step_by(7) {
            frames.push(d[..len].to_vec());
        }
        for i in (0..d.len()).step_by(13) {
            let mut bad = d.clone();
            bad[i] ^= 1 << (i % 8);
            frames.push(bad);
        }
    }
    let mut verdicts = Vec::new();
    for (i, payload) in frames.iter().enumerate() {
        // A few dozen flows, so the daemon also gives up on some.
        let o = q.run(&datagram(CLIENT4, 1024 + (i % 40) as u16, SERVER4, 443, payload));
        match o.reason {
            // Dropped, or (IPv4) cut after the Initial.
            Reason::QuicEarly => assert!(matches!(o.action, XdpAction::Drop | XdpAction::Pass), "frame {i}: {:?}", o.action),
            r => assert_eq!((o.action, o.verdict), (XdpAction::Pass, Action::Pass), "frame {i}: {r:?}"),
        }
        verdicts.extend(q.judge_waiting());
    }
    assert!(!verdicts.is_empty());
    assert!(verdicts.iter().all(|v| v.kind == VERDICT_PASS), "nothing listed, nothing blocked");
}
