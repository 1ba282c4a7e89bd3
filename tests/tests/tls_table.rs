//! TLS ClientHellos through the real kernel program: the server name is read across TCP
//! segments and TLS records, matched on label boundaries, and a listed name gets the client a
//! reset while the flow's later packets are stopped too.

mod support;

use blocker_common::{
    flow::{FlowKey, NAME_WAIT_SLOTS},
    verdict::{Action, Reason},
};
use blocker_user::datapath::XdpAction;
use support::{
    Harness, Outcome,
    frames::{Frame, L4, TCP_SYN},
    tls::{Hello, client_hello, records, segment, sni_offset, stream, with_leading_extensions, with_name_last},
};

const CLIENT: &str = "192.0.2.2";
const SERVER: &str = "203.0.113.10";
const CLIENT6: &str = "2001:db8:c::2";
const SERVER6: &str = "2001:db8:f::10";
const BLOCK: &str = "blocked.example\n=exact.example\n*.sub.example\n";
const ALLOW: &str = "ok.blocked.example\n";

fn harness() -> Harness {
    Harness::new(BLOCK, ALLOW)
}

/// Sends `stream` as consecutive segments cut at `cuts` (stream offsets), returning outcomes.
fn send(h: &Harness, sport: u16, stream: &[u8], cuts: &[usize]) -> Vec<Outcome> {
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < stream.len()));
    bounds.push(stream.len());
    bounds.windows(2).map(|w| h.run(&segment(CLIENT, SERVER, sport, w[0], &stream[w[0]..w[1]]).build())).collect()
}

fn is_reset(o: &Outcome, reason: Reason) -> bool {
    o.action == XdpAction::Tx && o.verdict == Action::TcpReset && o.reason == reason
}

#[test]
#[ignore = "needs root"]
fn a_listed_name_in_one_segment_gets_a_reset() {
    let h = harness();
    let out = send(&h, 1000, &stream(&Hello::default()), &[]);
    assert!(is_reset(&out[0], Reason::Sni), "{out:?}");
}

#[test]
#[ignore = "needs root"]
fn an_unlisted_name_passes_at_once() {
    let h = harness();
    for (i, sni) in ["allowed.example", "xblocked.example", "blocked.example.evil.test", "example", "ok.blocked.example"].iter().enumerate() {
        let out = send(&h, 1100 + i as u16, &stream(&Hello { sni: Some(sni), ..Default::default() }), &[]);
        assert_eq!(out[0].action, XdpAction::Pass, "{sni}: {out:?}");
        let want = if *sni == "ok.blocked.example" { Reason::AllowList } else { Reason::NoMatch };
        assert_eq!(out[0].reason, want, "{sni}");
    }
}

#[test]
#[ignore = "needs root"]
fn names_match_on_label_boundaries_in_every_mode() {
    let h = harness();
    let cases = [
        ("www.blocked.example", true),
        ("BLOCKED.Example", true),
        ("blocked.example.", true),
        ("exact.example", true),
        ("www.exact.example", false),
        ("sub.example", false),
        ("a.sub.example", true),
        ("a.b.sub.example", true),
        ("xsub.example", false),
    ];
    for (i, (sni, blocked)) in cases.iter().enumerate() {
        let out = send(&h, 1200 + i as u16, &stream(&Hello { sni: Some(sni), ..Default::default() }), &[]);
        assert_eq!(is_reset(&out[0], Reason::Sni), *blocked, "{sni}: {:?}", out[0]);
    }
}

#[test]
#[ignore = "needs root"]
fn a_browser_sized_hello_is_read_with_the_name_in_the_first_or_second_segment() {
    let h = harness();
    // ~1.9 KB, like a post-quantum Chromium hello; MSS-sized first segment.
    for (i, before) in [0usize, 8].into_iter().enumerate() {
        let s = stream(&Hello { before, key_share: 1248, ..Default::default() });
        assert!(s.len() > 1460 && s.len() < 2700, "{}", s.len());
        let at = sni_offset(&s, "blocked.example");
        let out = send(&h, 1300 + i as u16, &s, &[1448]);
        if at + "blocked.example".len() <= 1448 {
            assert!(is_reset(&out[0], Reason::Sni), "name in the first segment: {out:?}");
            assert!(is_reset(&out[1], Reason::FlowBlocked), "{out:?}");
        } else {
            assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::TlsPending), "{out:?}");
            assert!(is_reset(&out[1], Reason::Sni), "name in the second segment: {out:?}");
        }
    }
}

/// A short frame as a NIC hands it over: padded with zeros to Ethernet's 60-byte minimum.
fn padded(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

#[test]
#[ignore = "needs root"]
fn a_first_segment_of_a_few_bytes_padded_by_the_link_still_starts_the_reader() {
    // The program answers most data segments without reading their names, from their first
    // four bytes; after one to three bytes of payload those are the link's padding.
    let h = harness();
    let s = stream(&Hello::default());
    for cut in 1..4 {
        let sport = 2900 + cut as u16;
        let first = h.run(&padded(segment(CLIENT, SERVER, sport, 0, &s[..cut]).build()));
        assert_eq!((first.action, first.reason), (XdpAction::Pass, Reason::TlsPending), "cut {cut}");
        let second = h.run(&segment(CLIENT, SERVER, sport, cut, &s[cut..]).build());
        assert!(is_reset(&second, Reason::Sni), "cut {cut}: {second:?}");
    }
}

#[test]
#[ignore = "needs root"]
fn a_two_segment_hello_split_at_every_byte_is_caught() {
    let h = harness();
    let s = stream(&Hello { before: 4, key_share: 400, ..Default::default() });
    let end_of_name = sni_offset(&s, "blocked.example") + "blocked.example".len();
    for cut in 1..s.len() {
        let out = send(&h, 2000 + cut as u16, &s, &[cut]);
        let (first, second) = (&out[0], &out[1]);
        if cut >= end_of_name {
            assert!(is_reset(first, Reason::Sni), "cut {cut}: {out:?}");
            assert!(is_reset(second, Reason::FlowBlocked), "cut {cut}: {out:?}");
        } else {
            assert_eq!((first.action, first.reason), (XdpAction::Pass, Reason::TlsPending), "cut {cut}");
            assert!(is_reset(second, Reason::Sni), "cut {cut}: {out:?}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn hellos_with_many_extensions_before_the_name_are_caught_whole_and_split_at_every_byte() {
    // The common case is read in straight code for up to 24 extensions before the name; past
    // that, and wherever a segment ends, the streaming reader goes on. Either way: one verdict.
    let h = harness();
    let mut sport = 3000u16;
    for lead in [15usize, 16, 17, 40] {
        let s = records(&with_leading_extensions(&client_hello(&Hello { before: 8, ..Default::default() }), lead), 16384);
        let end_of_name = sni_offset(&s, "blocked.example") + "blocked.example".len();
        for cut in (0..s.len()).step_by(if lead == 16 { 1 } else { 7 }) {
            sport = sport.wrapping_add(1);
            let out = send(&h, sport, &s, &[cut]);
            if cut == 0 || cut >= end_of_name {
                assert!(is_reset(&out[0], Reason::Sni), "{lead} extensions first, cut {cut}: {out:?}");
            } else {
                assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::TlsPending), "{lead}, cut {cut}");
                assert!(is_reset(&out[1], Reason::Sni), "{lead} extensions first, cut {cut}: {out:?}");
            }
        }
    }
}

#[test]
#[ignore = "needs root"]
fn a_hello_sent_one_byte_per_segment_is_caught() {
    let h = harness();
    let s = stream(&Hello { before: 3, ..Default::default() });
    let end_of_name = sni_offset(&s, "blocked.example") + "blocked.example".len();
    let cuts: Vec<usize> = (1..s.len()).collect();
    let out = send(&h, 3000, &s, &cuts);
    for (i, o) in out.iter().enumerate() {
        let want = if i + 1 < end_of_name {
            (XdpAction::Pass, Reason::TlsPending)
        } else if i + 1 == end_of_name {
            (XdpAction::Tx, Reason::Sni)
        } else {
            (XdpAction::Tx, Reason::FlowBlocked)
        };
        assert_eq!((o.action, o.reason), want, "byte {i}");
    }
}

#[test]
#[ignore = "needs root"]
fn a_hello_split_into_many_tls_records_is_caught() {
    let h = harness();
    let hs = client_hello(&Hello { before: 5, ..Default::default() });
    for (i, max) in [1usize, 2, 3, 7, 50, 100].into_iter().enumerate() {
        let s = records(&hs, max);
        // Records of 1..3 bytes make a long stream: send it in MSS-sized segments.
        let cuts: Vec<usize> = (1448..s.len()).step_by(1448).collect();
        let out = send(&h, 4000 + i as u16, &s, &cuts);
        assert!(out.iter().any(|o| is_reset(o, Reason::Sni)), "records of {max}: {out:?}");
        assert!(out.iter().all(|o| o.reason != Reason::TlsUnparsed), "records of {max}");
    }
}

#[test]
#[ignore = "needs root"]
fn a_hello_in_several_records_split_at_every_byte_is_caught() {
    // Record ends and segment ends anywhere relative to each other, the extensions and the
    // name: the waiting reader's next segment is read in straight code only inside its record.
    let h = harness();
    let hs = client_hello(&Hello { before: 6, ..Default::default() });
    let mut sport = 5000u16;
    for max in [40usize, 97, 150] {
        let s = records(&hs, max);
        for cut in 1..s.len() {
            sport = sport.wrapping_add(1);
            let out = send(&h, sport, &s, &[cut]);
            let resets = out.iter().filter(|o| is_reset(o, Reason::Sni)).count();
            assert_eq!(resets, 1, "records of {max}, cut {cut}: {out:?}");
            assert!(out.iter().all(|o| o.reason != Reason::TlsUnparsed), "records of {max}, cut {cut}: {out:?}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn retransmitted_segments_are_read_once() {
    let h = harness();
    let s = stream(&Hello { before: 8, ..Default::default() });
    let at = sni_offset(&s, "blocked.example");
    let first = segment(CLIENT, SERVER, 5000, 0, &s[..at]).build();
    assert_eq!(h.run(&first).reason, Reason::TlsPending);
    // The same segment again, and an overlapping one: nothing is read twice.
    assert_eq!(h.run(&first).reason, Reason::TlsPending);
    let overlap = segment(CLIENT, SERVER, 5000, at - 10, &s[at - 10..at + 3]).build();
    assert_eq!(h.run(&overlap).reason, Reason::TlsPending);
    let rest = segment(CLIENT, SERVER, 5000, at + 3, &s[at + 3..]).build();
    assert!(is_reset(&h.run(&rest), Reason::Sni));
}

#[test]
#[ignore = "needs root"]
fn an_overlapping_decoy_cannot_replace_bytes_already_read() {
    let h = harness();
    let real = stream(&Hello { before: 8, ..Default::default() });
    let at = sni_offset(&real, "blocked.example");
    let decoy = stream(&Hello { sni: Some("allowed.example"), before: 8, ..Default::default() });
    // The real stream up to "bloc", then a segment that overlaps it with the decoy's bytes and
    // goes on. The first copy of each byte wins, as in the server's TCP: the reader sees
    // "bloc" from the real stream and "wed.example" from the decoy.
    assert_eq!(h.run(&segment(CLIENT, SERVER, 5100, 0, &real[..at + 4]).build()).reason, Reason::TlsPending);
    let o = h.run(&segment(CLIENT, SERVER, 5100, 0, &decoy).build());
    // "blocwed.example": not listed, and not the decoy either.
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch));
    // With the real bytes sent first in full, a decoy retransmission changes nothing.
    assert!(is_reset(&h.run(&segment(CLIENT, SERVER, 5101, 0, &real).build()), Reason::Sni));
    let o = h.run(&segment(CLIENT, SERVER, 5101, 0, &decoy).build());
    assert!(is_reset(&o, Reason::FlowBlocked), "{o:?}");
}

#[test]
#[ignore = "needs root"]
fn out_of_order_segments_are_dropped_until_the_gap_is_filled() {
    let h = harness();
    let s = stream(&Hello { before: 8, ..Default::default() });
    let at = sni_offset(&s, "blocked.example");
    let (a, b, c) = (at / 2, at + 4, s.len());
    assert_eq!(h.run(&segment(CLIENT, SERVER, 6000, 0, &s[..a]).build()).reason, Reason::TlsPending);
    // The third piece arrives before the second: dropped, so the client resends it in order.
    let o = h.run(&segment(CLIENT, SERVER, 6000, b, &s[b..c]).build());
    assert_eq!((o.action, o.reason), (XdpAction::Drop, Reason::TlsOutOfOrder));
    assert_eq!(h.run(&segment(CLIENT, SERVER, 6000, a, &s[a..b]).build()).reason, Reason::TlsPending);
    assert!(is_reset(&h.run(&segment(CLIENT, SERVER, 6000, b, &s[b..c]).build()), Reason::Sni));
}

#[test]
#[ignore = "needs root"]
fn a_reader_waiting_behind_the_key_share_survives_retransmission_and_reordering_and_a_new_syn_forgets_it() {
    // A post-quantum browser's hello: the first 1448-byte segment ends in the key share, the
    // name follows in the second. The reader waits at the next extension header (parked in its
    // bucket's slot, not in FLOWS: flow.rs `park`), counted like any waiting reader.
    let h = harness();
    let s = records(&with_name_last(&client_hello(&Hello { sni: None, before: 8, key_share: 1248 }), "blocked.example"), 16384);
    let at = sni_offset(&s, "blocked.example");
    assert!(at > 1448 + 4, "the name lies in the second segment, after the key share");
    let seg = |sport: u16, from: usize, to: usize| h.run(&segment(CLIENT, SERVER, sport, from, &s[from..to]).build());

    assert_eq!(verdict(&seg(7000, 0, 1448)), (XdpAction::Pass, Reason::TlsPending));
    assert_eq!(h.dp.flow_entries().unwrap(), 1, "the waiting reader is counted");
    assert_eq!(verdict(&seg(7000, 0, 1448)), (XdpAction::Pass, Reason::TlsPending), "a retransmission is not read again");
    assert!(is_reset(&seg(7000, 1448, s.len()), Reason::Sni));

    // The rest in two pieces, the second first: dropped until the gap is filled.
    assert_eq!(verdict(&seg(7001, 0, 1448)), (XdpAction::Pass, Reason::TlsPending));
    assert_eq!(verdict(&seg(7001, at + 4, s.len())), (XdpAction::Drop, Reason::TlsOutOfOrder));
    assert_eq!(verdict(&seg(7001, 1448, at + 4)), (XdpAction::Pass, Reason::TlsPending));
    assert!(is_reset(&seg(7001, at + 4, s.len()), Reason::Sni));

    // A new connection from the port of a waiting reader: the old reader is forgotten, and the
    // new hello is read from its own first byte.
    assert_eq!(verdict(&seg(7002, 0, 1448)), (XdpAction::Pass, Reason::TlsPending));
    assert_eq!(verdict(&h.run(&syn(CLIENT, SERVER, 7002))), (XdpAction::Pass, Reason::NoMatch));
    let other = stream(&Hello { sni: Some("allowed.example"), ..Default::default() });
    assert_eq!(verdict(&h.run(&segment(CLIENT, SERVER, 7002, 0, &other).build())), (XdpAction::Pass, Reason::NoMatch));
    // The two blocked flows keep state; nothing else does.
    assert_eq!(h.dp.flow_entries().unwrap(), 2);
}

/// The FLOW_FILTER bucket of an IPv4 flow to port 443, by the program's own function (its flow
/// key as flow.rs `key_of` builds it): to put two flows in one bucket, and so in one parking
/// slot, on purpose.
fn bucket(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, sport: u16) -> u32 {
    let addr = |a: std::net::Ipv4Addr| {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&a.octets());
        b
    };
    FlowKey { src: addr(src), dst: addr(dst), sport, dport: 443, v6: 0 }.bucket()
}

#[test]
#[ignore = "needs root"]
fn two_waiting_readers_in_one_bucket_are_both_judged_and_an_abandoned_one_is_freed_after_its_wait() {
    let h = harness();
    let s = records(&with_name_last(&client_hello(&Hello { sni: None, before: 8, key_share: 1248 }), "blocked.example"), 16384);
    let server: std::net::Ipv4Addr = SERVER.parse().unwrap();
    let (a_src, a_port) = ("192.0.2.2".parse::<std::net::Ipv4Addr>().unwrap(), 7100u16);
    let b = (1..=254u8)
        .flat_map(|o| (1024..=65535u16).step_by(7).map(move |p| (std::net::Ipv4Addr::new(192, 0, 2, o), p)))
        .find(|&(src, p)| (src, p) != (a_src, a_port) && bucket(src, server, p) == bucket(a_src, server, a_port))
        .expect("another flow in the same bucket");
    let (a_src, b_src) = (a_src.to_string(), b.0.to_string());
    let seg = |src: &str, sport: u16, from: usize, to: usize| h.run(&segment(src, SERVER, sport, from, &s[from..to]).build());

    // Both wait behind their key share: the first parked, the second in FLOWS (the slot is
    // the first's). Both are judged by their own name.
    assert_eq!(verdict(&seg(&a_src, a_port, 0, 1448)), (XdpAction::Pass, Reason::TlsPending));
    assert_eq!(verdict(&seg(&b_src, b.1, 0, 1448)), (XdpAction::Pass, Reason::TlsPending));
    assert_eq!(h.dp.flow_entries().unwrap(), 2);
    assert!(is_reset(&seg(&b_src, b.1, 1448, s.len()), Reason::Sni), "the reader in FLOWS");
    assert_eq!(h.dp.flow_entries().unwrap(), 2, "the blocked flow is remembered; the first still waits");

    // The first is abandoned. Its slot holds for its wait (2 500 jiffies: at least 2.5 s), then
    // a data segment of its bucket frees it. Bounded: at most 60 s of polling.
    let start = std::time::Instant::now();
    // The blocked flow's later data: the same bucket (it is still reset).
    let later = segment(&b_src, SERVER, b.1, s.len(), b"later data").build();
    while h.dp.flow_entries().unwrap() == 2 {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "the abandoned reader's slot was never freed");
        assert!(is_reset(&h.run(&later), Reason::FlowBlocked));
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(start.elapsed() >= std::time::Duration::from_millis(2_400), "freed after {:?}, before its wait", start.elapsed());
    assert_eq!(h.dp.flow_entries().unwrap(), 1, "only the blocked flow keeps state");
}

#[test]
#[ignore = "needs root"]
fn a_reader_waiting_inside_the_name_is_parked_with_the_name_read_so_far_and_judged_by_the_whole_name() {
    // The segment boundary cuts the name (the key share first, the name's first bytes at the
    // end of segment 1): the reader waits with those bytes in its bucket's slot and NAME_WAITS,
    // not in FLOWS, and the next segment judges the name put together again, on label
    // boundaries like any other.
    let h = harness();
    let hello = |sni: &'static str| stream(&Hello { sni: Some(sni), before: 8, key_share: 1248 });
    let cases: [(&str, usize, Option<Reason>); 6] = [
        ("blocked.example", 3, Some(Reason::Sni)),
        ("www.blocked.example", 4, Some(Reason::Sni)),
        // The cut right after a dot, and one byte before the end.
        ("www.blocked.example", 4 + 4, Some(Reason::Sni)),
        ("www.blocked.example", 18, Some(Reason::Sni)),
        // Names that end like a listed one but not on a label boundary, or end elsewhere.
        ("notblocked.example", 5, None),
        ("blocked.example.evil.test", 9, None),
    ];
    for (i, &(sni, into_name, listed)) in cases.iter().enumerate() {
        let s = hello(sni);
        let cut = sni_offset(&s, sni) + into_name;
        let sport = 7300 + i as u16;
        let first = h.run(&segment(CLIENT, SERVER, sport, 0, &s[..cut]).build());
        assert_eq!(verdict(&first), (XdpAction::Pass, Reason::TlsPending), "{sni}");
        assert_eq!(h.dp.flow_counts().unwrap().1, 1, "{sni}: the reader is parked, not stored in FLOWS");
        let second = h.run(&segment(CLIENT, SERVER, sport, cut, &s[cut..]).build());
        match listed {
            Some(reason) => assert!(is_reset(&second, reason), "{sni} cut {into_name} bytes into the name: {second:?}"),
            None => assert_eq!(verdict(&second), (XdpAction::Pass, Reason::NoMatch), "{sni} cut {into_name} bytes into the name"),
        }
        assert_eq!(h.dp.flow_counts().unwrap().1, 0, "{sni}: the slot is free again");
    }

    // A retransmission of the first segment takes the reader to FLOWS, where it still finishes
    // the name it had begun.
    let s = hello("blocked.example");
    let cut = sni_offset(&s, "blocked.example") + 3;
    let seg = |from: usize, to: usize| h.run(&segment(CLIENT, SERVER, 7310, from, &s[from..to]).build());
    assert_eq!(verdict(&seg(0, cut)), (XdpAction::Pass, Reason::TlsPending));
    assert_eq!(verdict(&seg(0, cut)), (XdpAction::Pass, Reason::TlsPending), "a retransmission is not read again");
    assert!(is_reset(&seg(cut, s.len()), Reason::Sni));
}

#[test]
#[ignore = "needs root"]
fn readers_inside_names_whose_name_slots_collide_are_each_judged_by_their_own_name() {
    // Two flows in different buckets that share a NAME_WAITS slot: the first parks its name's
    // bytes there, the second (its WAITS slot free, its name slot not) waits in FLOWS. Each is
    // judged by its own name: the allowed one passes and the listed one is reset, whichever
    // holds the slot.
    let h = harness();
    let server: std::net::Ipv4Addr = SERVER.parse().unwrap();
    // Another flow whose bucket differs from flow `a`'s and whose name slot does not.
    let sharing_name_slot = |a: (std::net::Ipv4Addr, u16)| {
        let ba = bucket(a.0, server, a.1);
        (1..=254u8)
            .flat_map(|o| (1024..=65535u16).step_by(7).map(move |p| (std::net::Ipv4Addr::new(192, 0, 2, o), p)))
            .find(|&(src, p)| {
                let bb = bucket(src, server, p);
                bb != ba && bb % NAME_WAIT_SLOTS == ba % NAME_WAIT_SLOTS
            })
            .expect("another flow with the same name slot")
    };
    let part = |sni: &str, (src, sport): (std::net::Ipv4Addr, u16), whole: bool| {
        let s = stream(&Hello { sni: Some(sni), before: 8, key_share: 1248 });
        let cut = sni_offset(&s, sni) + 4;
        let (from, to) = if whole { (cut, s.len()) } else { (0, cut) };
        h.run(&segment(&src.to_string(), SERVER, sport, from, &s[from..to]).build())
    };
    for (port, first, second) in [(7400, "allowed.example", "blocked.example"), (7401, "blocked.example", "allowed.example")] {
        let a = ("192.0.2.2".parse::<std::net::Ipv4Addr>().unwrap(), port);
        let b = sharing_name_slot(a);
        let (stored, parked) = h.dp.flow_counts().unwrap();
        assert_eq!(verdict(&part(first, a, false)), (XdpAction::Pass, Reason::TlsPending));
        assert_eq!(verdict(&part(second, b, false)), (XdpAction::Pass, Reason::TlsPending));
        assert_eq!(h.dp.flow_counts().unwrap(), (stored + 1, parked + 1), "one reader parked, the other in FLOWS");
        for (sni, flow) in [(second, b), (first, a)] {
            let o = part(sni, flow, true);
            if sni == "blocked.example" {
                assert!(is_reset(&o, Reason::Sni), "{sni}: {o:?}");
            } else {
                assert_eq!(verdict(&o), (XdpAction::Pass, Reason::NoMatch), "{sni}");
            }
        }
        // Only the blocked flow is remembered.
        assert_eq!(h.dp.flow_counts().unwrap(), (stored + 1, parked));
    }
}

/// The client's SYN for the flow whose first data byte `segment` puts at stream offset 0.
fn syn(src: &str, dst: &str, sport: u16) -> Vec<u8> {
    let l4 = L4::Tcp { sport, dport: 443, seq: 1_000_000 - 1, ack: 0, flags: TCP_SYN, options: vec![], payload: vec![] };
    Frame::new(src, dst, l4).build()
}

fn verdict(o: &Outcome) -> (XdpAction, Reason) {
    (o.action, o.reason)
}

#[test]
#[ignore = "needs root"]
fn a_new_connection_from_the_port_of_a_blocked_one_is_judged_by_its_own_name() {
    // A client whose connection was reset may reuse the port at once (no TIME_WAIT): the
    // "blocked" kept for the old connection must not reset the next one, which asks for
    // another name on the same server.
    let h = harness();
    let allowed = stream(&Hello { sni: Some("allowed.example"), ..Default::default() });
    assert!(is_reset(&send(&h, 6050, &stream(&Hello::default()), &[])[0], Reason::Sni));
    // Without a SYN it is the same connection: its data stays blocked, whatever it holds.
    assert!(is_reset(&send(&h, 6050, &allowed, &[])[0], Reason::FlowBlocked));
    // The SYN of a new connection on the same addresses and ports starts it afresh.
    assert_eq!(verdict(&h.run(&syn(CLIENT, SERVER, 6050))), (XdpAction::Pass, Reason::NoMatch));
    assert_eq!(verdict(&send(&h, 6050, &allowed, &[])[0]), (XdpAction::Pass, Reason::NoMatch));
    // The same for a reader left waiting by a connection that ended mid-hello.
    let cut = sni_offset(&allowed, "allowed.example") + 3;
    assert_eq!(verdict(&send(&h, 6051, &allowed[..cut], &[])[0]), (XdpAction::Pass, Reason::TlsPending));
    assert_eq!(verdict(&h.run(&syn(CLIENT, SERVER, 6051))), (XdpAction::Pass, Reason::NoMatch));
    assert!(is_reset(&send(&h, 6051, &stream(&Hello::default()), &[])[0], Reason::Sni));
}

#[test]
#[ignore = "needs root"]
fn a_hello_sent_in_reverse_order_is_read_once_its_first_segment_has_passed() {
    let h = harness();
    let s = stream(&Hello { before: 8, ..Default::default() });
    let at = sni_offset(&s, "blocked.example");
    let (a, b) = (at / 2, at + 4);
    let piece = |from: usize, to: usize| segment(CLIENT, SERVER, 6100, from, &s[from..to]).build();
    assert_eq!(verdict(&h.run(&syn(CLIENT, SERVER, 6100))), (XdpAction::Pass, Reason::NoMatch));
    // C, then B, before A: data ahead of the flow's first byte, whatever it holds, is dropped
    // (an evasion tool's reverse order; without the SYN they would pass as ordinary data).
    assert_eq!(verdict(&h.run(&piece(b, s.len()))), (XdpAction::Drop, Reason::TlsOutOfOrder));
    assert_eq!(verdict(&h.run(&piece(a, b))), (XdpAction::Drop, Reason::TlsOutOfOrder));
    // A starts the reader; the client's TCP resends B and C in order; C completes the name.
    assert_eq!(verdict(&h.run(&piece(0, a))), (XdpAction::Pass, Reason::TlsPending));
    assert_eq!(verdict(&h.run(&piece(a, b))), (XdpAction::Pass, Reason::TlsPending));
    assert!(is_reset(&h.run(&piece(b, s.len())), Reason::Sni));
}

#[test]
#[ignore = "needs root"]
fn an_allowed_hello_whose_first_segment_comes_late_completes() {
    let h = harness();
    let s = stream(&Hello { sni: Some("allowed.example"), before: 8, key_share: 1248 });
    // Cut before the name: the first segment alone cannot decide.
    let cut = sni_offset(&s, "allowed.example") - 10;
    let piece = |from: usize, to: usize| segment(CLIENT, SERVER, 6200, from, &s[from..to]).build();
    h.run(&syn(CLIENT, SERVER, 6200));
    // The second segment first (reordered on the way, or the first lost): dropped once.
    assert_eq!(verdict(&h.run(&piece(cut, s.len()))), (XdpAction::Drop, Reason::TlsOutOfOrder));
    assert_eq!(verdict(&h.run(&piece(0, cut))), (XdpAction::Pass, Reason::TlsPending));
    // Resent after the first: read, the name is not listed, the flow goes on unfollowed.
    assert_eq!(verdict(&h.run(&piece(cut, s.len()))), (XdpAction::Pass, Reason::NoMatch));
    let next = segment(CLIENT, SERVER, 6200, s.len() + 3000, b"\x17\x03\x03\x00\x01x").build();
    assert_eq!(verdict(&h.run(&next)), (XdpAction::Pass, Reason::NoMatch));
}

#[test]
#[ignore = "needs root"]
fn after_the_first_data_byte_nothing_is_awaited() {
    let h = harness();
    h.run(&syn(CLIENT, SERVER, 6300));
    // Not a ClientHello (another protocol on the port): passes, and the flow is not followed,
    // so its later data passes whatever its order.
    let first = segment(CLIENT, SERVER, 6300, 0, b"SSH-2.0-OpenSSH_9.9\r\n").build();
    assert_eq!(verdict(&h.run(&first)), (XdpAction::Pass, Reason::NoMatch));
    let later = segment(CLIENT, SERVER, 6300, 5000, b"later data").build();
    assert_eq!(verdict(&h.run(&later)), (XdpAction::Pass, Reason::NoMatch));
    // A SYN's retransmission (the same sequence number) changes nothing for a fresh flow;
    // a hello in one segment after it is judged as ever.
    h.run(&syn(CLIENT, SERVER, 6301));
    h.run(&syn(CLIENT, SERVER, 6301));
    let out = send(&h, 6301, &stream(&Hello::default()), &[]);
    assert!(is_reset(&out[0], Reason::Sni), "{out:?}");
}

#[test]
#[ignore = "needs root"]
fn a_first_segment_that_never_comes_stalls_the_flow_for_a_bounded_time() {
    let h = harness();
    h.run(&syn(CLIENT, SERVER, 6400));
    let ahead = segment(CLIENT, SERVER, 6400, 100, b"data ahead of a first segment that took another path").build();
    assert_eq!(verdict(&h.run(&ahead)), (XdpAction::Drop, Reason::TlsOutOfOrder));
    // The wait is HEAD_WAIT_NS (5 s, blocker-ebpf/src/flow.rs): then the flow passes as any
    // flow whose SYN was not seen (fail open), never black-holed.
    std::thread::sleep(std::time::Duration::from_millis(5_200));
    assert_eq!(verdict(&h.run(&ahead)), (XdpAction::Pass, Reason::NoMatch));
}

#[test]
#[ignore = "needs root"]
fn hellos_without_a_name_or_that_are_not_tls_pass() {
    let h = harness();
    // No server name at all (a connection to an address): nothing to judge, not a failure.
    let out = send(&h, 7000, &stream(&Hello { sni: None, ..Default::default() }), &[]);
    assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::NoMatch));
    let mut bad = stream(&Hello::default());
    bad[5] = 2; // a ServerHello, not a ClientHello
    let out = send(&h, 7001, &bad, &[]);
    assert_eq!(out[0].action, XdpAction::Pass);
    // Not TLS at all: judged as what it is (here an HTTP request for an unlisted host).
    let out = send(&h, 7002, b"GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n", &[]);
    assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::NoMatch));
}

#[test]
#[ignore = "needs root"]
fn ipv6_flows_are_read_the_same_way() {
    let h = harness();
    let s = stream(&Hello { before: 8, key_share: 1248, ..Default::default() });
    let at = sni_offset(&s, "blocked.example");
    let o1 = h.run(&segment(CLIENT6, SERVER6, 8000, 0, &s[..at + 2]).build());
    assert_eq!(o1.reason, Reason::TlsPending);
    let o2 = h.run(&segment(CLIENT6, SERVER6, 8000, at + 2, &s[at + 2..]).build());
    assert!(is_reset(&o2, Reason::Sni), "{o2:?}");
}

#[test]
#[ignore = "needs root"]
fn blocks_are_counted_per_list_entry() {
    let h = harness();
    for i in 0..3 {
        send(&h, 9000 + i, &stream(&Hello { sni: Some("www.blocked.example"), ..Default::default() }), &[]);
    }
    let hits = h.dp.entry_hits().unwrap();
    let id = h.set.name_entry(blocker_user::lists::ListKind::Block, "blocked.example").unwrap().0.id;
    assert_eq!(hits, vec![(id, 3)]);
}

/// The controller hashes listed names, the kernel hashes the names it reads: over many random
/// names, of every length up to the 253-byte limit, they agree exactly.
#[test]
#[ignore = "needs root"]
fn kernel_and_controller_hash_names_alike() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut names = Vec::new();
    while names.len() < 120 {
        let labels = 1 + rnd(6) as usize;
        let mut parts: Vec<String> = (0..labels)
            .map(|_| {
                let len = 1 + rnd(if names.len() % 10 == 0 { 63 } else { 12 }) as usize;
                let mut l: String = (0..len).map(|_| alphabet[rnd(alphabet.len() as u64) as usize] as char).collect();
                // Labels may not start or end with a hyphen in lists.
                l = l.trim_matches('-').to_string();
                if l.is_empty() { "a".to_string() } else { l }
            })
            .collect();
        parts.push("example".to_string());
        let name = parts.join(".");
        if name.len() <= 253 {
            names.push(name);
        }
    }
    let list: String = names.iter().map(|n| format!("={n}\n")).collect();
    let h = Harness::new(&list, "");
    for (i, n) in names.iter().enumerate() {
        let out = send(&h, 20000 + i as u16, &stream(&Hello { sni: Some(n), ..Default::default() }), &[]);
        assert!(is_reset(&out[0], Reason::Sni), "{n}: {out:?}");
        let other = format!("x{n}");
        let out = send(&h, 30000 + i as u16, &stream(&Hello { sni: Some(&other), ..Default::default() }), &[]);
        assert_eq!(out[0].action, XdpAction::Pass, "{other}");
    }
}

/// Real ClientHellos captured from Chromium 156, curl and openssl (tests/fixtures/tls).
mod captured {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    #[ignore = "needs root"]
    fn chromium_hellos_split_at_every_byte_are_caught() {
        let h = harness();
        let mut sport = 40000u16;
        for file in ["chromium-156-blocked.example-1.bin", "chromium-156-blocked.example-2.bin"] {
            let s = fixture(file);
            let end_of_name = sni_offset(&s, "blocked.example") + "blocked.example".len();
            for cut in 1..s.len() {
                sport = sport.wrapping_add(1);
                let out = send(&h, sport, &s, &[cut]);
                let (first, second) = (&out[0], &out[1]);
                if cut >= end_of_name {
                    assert!(is_reset(first, Reason::Sni), "{file} cut {cut}: {out:?}");
                    assert!(is_reset(second, Reason::FlowBlocked), "{file} cut {cut}");
                } else {
                    assert_eq!((first.action, first.reason), (XdpAction::Pass, Reason::TlsPending), "{file} cut {cut}");
                    assert!(is_reset(second, Reason::Sni), "{file} cut {cut}: {out:?}");
                }
            }
        }
    }

    #[test]
    #[ignore = "needs root"]
    fn chromium_hellos_on_a_1500_byte_path_are_caught_in_either_segment() {
        let h = harness();
        for (i, file) in ["chromium-156-blocked.example-1.bin", "chromium-156-blocked.example-2.bin"].iter().enumerate() {
            let out = send(&h, 50000 + i as u16, &fixture(file), &[1448]);
            assert!(out.iter().any(|o| is_reset(o, Reason::Sni)), "{file}: {out:?}");
        }
        // One byte per segment too.
        let s = fixture("chromium-156-blocked.example-2.bin");
        let cuts: Vec<usize> = (1..s.len()).collect();
        let out = send(&h, 50010, &s, &cuts);
        assert_eq!(out.iter().filter(|o| is_reset(o, Reason::Sni)).count(), 1);
    }

    #[test]
    #[ignore = "needs root"]
    fn an_unlisted_chromium_hello_straddling_the_segments_passes() {
        let h = harness();
        let s = fixture("chromium-156-www.allowed.example.bin");
        let out = send(&h, 50100, &s, &[1448]);
        assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::TlsPending));
        assert_eq!((out[1].action, out[1].reason), (XdpAction::Pass, Reason::NoMatch));
    }

    #[test]
    #[ignore = "needs root"]
    fn curl_and_openssl_hellos_are_caught() {
        let h = harness();
        for (i, file) in ["curl-7.88.1-blocked.example.bin", "openssl-3.0.19-blocked.example.bin"].iter().enumerate() {
            let out = send(&h, 50200 + i as u16, &fixture(file), &[]);
            assert!(is_reset(&out[0], Reason::Sni), "{file}: {out:?}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn another_flows_syn_never_holds_back_a_hello_even_where_their_addresses_differ_by_bits_that_cancel() {
    // Found by the differential test: these two sources differ by the same bits in their first
    // and last words, so with the words XORed together their flows shared a bucket and a tag,
    // and the hello was dropped as data ahead of the other flow's awaited first byte.
    let h = harness();
    let l4 = L4::Tcp { sport: 42416, dport: 443, seq: 999_000, ack: 0, flags: TCP_SYN, options: vec![], payload: vec![] };
    assert_eq!(h.run(&Frame::new("2001:dbf:c::5b1a", SERVER6, l4).build()).action, XdpAction::Pass);
    let hello = stream(&Hello { sni: Some("www.allowed.example"), before: 8, key_share: 32 });
    let o = h.run(&segment("2001:db8:c::5b1d", SERVER6, 42416, 0, &hello).build());
    assert_eq!(verdict(&o), (XdpAction::Pass, Reason::NoMatch));
}
