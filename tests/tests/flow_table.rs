//! The flow table's upkeep (`Datapath::flow_upkeep`, run by the daemon every minute): a flow
//! whose state stays the same from one upkeep to the next is forgotten and its bucket freed, a
//! reader that moves on in between is kept, and the bucket counts the LRU's evictions leave
//! behind are brought back to what the buckets hold. The per-bucket bits segments read first
//! (FLOW_BITS) follow the counts through all of it.

mod support;

use blocker_common::{capacity, verdict::Reason};
use blocker_user::datapath::{FlowBitsCheck, FlowUpkeep, PROGRAM, UpkeepReport, XdpAction};
use support::{
    Harness, NEEDS_ROOT,
    frames::{Frame, L4, TCP_SYN},
    tls::{Hello, client_hello, records, segment, sni_offset, stream, with_name_last},
};

const CLIENT: &str = "192.0.2.2";
const SERVER: &str = "203.0.113.10";

fn harness() -> Harness {
    Harness::new("blocked.example\n", "")
}

/// A ClientHello for blocked.example, whole in one segment, on flow `sport`.
fn blocked_hello(sport: u16) -> Vec<u8> {
    segment(CLIENT, SERVER, sport, 0, &stream(&Hello::default())).build()
}

/// The segment after the hello on flow `sport`.
fn next_segment(sport: u16) -> Vec<u8> {
    segment(CLIENT, SERVER, sport, stream(&Hello::default()).len(), b"more of the flow").build()
}

fn upkeep(h: &mut Harness, last: &mut FlowUpkeep) -> UpkeepReport {
    h.dp.flow_upkeep(last).expect("flow table upkeep")
}

/// Every bucket's bit set exactly where its count is not 0; the number of such buckets.
fn bits_follow_counts(h: &Harness) -> u32 {
    let c = h.dp.flow_bits_check().expect("reading FLOW_BITS and FLOW_FILTER");
    assert_eq!(c, FlowBitsCheck { busy: c.busy, hidden: 0, stale: 0 }, "bits against counts");
    c.busy
}

#[test]
#[ignore = "needs root"]
fn blocked_flows_unchanged_between_two_upkeeps_are_forgotten_and_their_buckets_freed() {
    let _ = NEEDS_ROOT;
    let mut h = harness();
    for i in 0..200 {
        assert_eq!(h.run(&blocked_hello(2000 + i)).reason, Reason::Sni);
    }
    assert_eq!(h.dp.flow_entries().unwrap(), 200);
    assert!(bits_follow_counts(&h) > 150, "200 flows in 65 536 buckets: few share one");
    let mut last = FlowUpkeep::default();
    assert_eq!(upkeep(&mut h, &mut last), UpkeepReport { entries: 200, idle: 0, repaired: 0 }, "the first upkeep only looks");

    // Within the minute the flow is still remembered as blocked.
    assert_eq!(h.run(&next_segment(2000)).reason, Reason::FlowBlocked);
    assert_eq!(h.run(&blocked_hello(3000)).reason, Reason::Sni);

    let r = upkeep(&mut h, &mut last);
    assert_eq!(r, UpkeepReport { entries: 1, idle: 200, repaired: 0 }, "the 200 unchanged since the last upkeep go, the newer one stays");
    assert_eq!(h.dp.flow_entries().unwrap(), 1, "their buckets' counts went with them");
    assert_eq!(bits_follow_counts(&h), 1, "and their bits");
    let o = h.run(&next_segment(2000));
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch), "a forgotten flow's segment is ordinary data");
    assert_eq!(h.run(&next_segment(3000)).reason, Reason::FlowBlocked);

    assert_eq!(upkeep(&mut h, &mut last), UpkeepReport { entries: 0, idle: 1, repaired: 0 });
    assert_eq!(h.dp.flow_entries().unwrap(), 0);
}

#[test]
#[ignore = "needs root"]
fn a_reader_that_moves_on_between_upkeeps_is_kept_and_one_that_waits_is_forgotten() {
    let mut h = harness();
    // Cut inside the name's length field, then 3 bytes into the name: the reader waits in FLOWS
    // (the readers parked in WAITS instead stand at an extension header or inside the name, and
    // free their slots after their wait themselves).
    let s = stream(&Hello { sni: Some("www.blocked.example"), before: 8, key_share: 1248 });
    let at = sni_offset(&s, "www.blocked.example");
    let part = |sport: u16, from: usize, to: usize| segment(CLIENT, SERVER, sport, from, &s[from..to]).build();
    let mut last = FlowUpkeep::default();

    for sport in [4000, 4001] {
        assert_eq!(h.run(&part(sport, 0, at - 1)).reason, Reason::TlsPending);
    }
    assert_eq!(h.dp.flow_counts().unwrap(), (2, 0), "both in FLOWS");
    upkeep(&mut h, &mut last);
    // Flow 4000 reads the rest of the length and three bytes of its name; 4001 sends nothing.
    assert_eq!(h.run(&part(4000, at - 1, at + 3)).reason, Reason::TlsPending);
    assert_eq!(upkeep(&mut h, &mut last), UpkeepReport { entries: 1, idle: 1, repaired: 0 });

    let o = h.run(&part(4000, at + 3, s.len()));
    assert_eq!((o.action, o.reason), (XdpAction::Tx, Reason::Sni), "the reader kept reads its name to the end");
    // The reader that waited for over a minute is gone: its flow passes unjudged (fail open,
    // as for a reader the LRU evicted).
    let o = h.run(&part(4001, at - 1, s.len()));
    assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch));
}

#[test]
#[ignore = "needs root"]
fn counts_left_behind_by_evictions_are_repaired() {
    let mut h = harness();
    // More blocked flows than FLOWS holds: the LRU evicts, and each eviction leaves its
    // bucket counted (no program sees it).
    let flows = capacity::FLOWS as usize + 8_000;
    for k in 0..flows {
        let server = format!("198.51.100.{}", 1 + k / 60_000);
        let frame = segment(CLIENT, &server, 1024 + (k % 60_000) as u16, 0, &stream(&Hello::default())).build();
        assert_eq!(h.dp.run_frame_with(PROGRAM, &frame, 1).unwrap().action, XdpAction::Tx);
    }
    let counted = h.dp.flow_entries().unwrap();
    assert!(counted > capacity::FLOWS as u64, "evictions left counts behind: {counted}");

    let mut last = FlowUpkeep::default();
    let r = upkeep(&mut h, &mut last);
    assert_eq!(r.idle, 0);
    assert!(r.entries <= capacity::FLOWS as usize, "{r:?}");
    assert_eq!(r.repaired, counted - r.entries as u64, "every count above what the buckets hold taken off");
    assert_eq!(h.dp.flow_entries().unwrap(), r.entries as u64);
    // A second look finds nothing more to repair.
    assert_eq!(upkeep(&mut h, &mut last).repaired, 0);
}

#[test]
#[ignore = "needs root"]
fn a_buckets_bit_is_set_while_it_holds_state_and_cleared_when_it_is_empty_again() {
    let h = harness();
    assert_eq!(bits_follow_counts(&h), 0);
    // A SYN awaits its flow's first data byte (HEADS): the bucket is busy until it comes.
    let syn = L4::Tcp { sport: 5000, dport: 443, seq: 1_000_000 - 1, ack: 0, flags: TCP_SYN, options: vec![], payload: vec![] };
    let o = h.run(&Frame::new(CLIENT, SERVER, syn).build());
    assert_eq!(o.action, XdpAction::Pass);
    assert_eq!(bits_follow_counts(&h), 1);
    let hello = stream(&Hello { sni: Some("www.allowed.example"), before: 8, key_share: 32 });
    assert_eq!(h.run(&segment(CLIENT, SERVER, 5000, 0, &hello).build()).reason, Reason::NoMatch);
    assert_eq!(bits_follow_counts(&h), 0, "read whole and allowed: nothing kept");

    // A reader parked behind a post-quantum key share (WAITS), then taken out by its name's
    // segment; a reader kept in FLOWS (the name cut), then done.
    let s = records(&with_name_last(&client_hello(&Hello { sni: None, before: 8, key_share: 1248 }), "www.allowed.example"), 16384);
    assert_eq!(h.run(&segment(CLIENT, SERVER, 5001, 0, &s[..1448]).build()).reason, Reason::TlsPending);
    assert_eq!(bits_follow_counts(&h), 1);
    assert_eq!(h.run(&segment(CLIENT, SERVER, 5001, 1448, &s[1448..]).build()).reason, Reason::NoMatch);
    assert_eq!(bits_follow_counts(&h), 0);
    let at = sni_offset(&s, "www.allowed.example");
    assert_eq!(h.run(&segment(CLIENT, SERVER, 5002, 0, &s[..at + 3]).build()).reason, Reason::TlsPending);
    assert_eq!(bits_follow_counts(&h), 1);
    assert_eq!(h.run(&segment(CLIENT, SERVER, 5002, at + 3, &s[at + 3..]).build()).reason, Reason::NoMatch);
    assert_eq!(bits_follow_counts(&h), 0);

    // A blocked flow stays busy until its FIN.
    assert_eq!(h.run(&blocked_hello(5003)).reason, Reason::Sni);
    assert_eq!(bits_follow_counts(&h), 1);
}
