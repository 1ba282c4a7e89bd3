//! Readers waiting for a ClientHello's next segment (blocker-ebpf flow.rs): in their flow's
//! PENDING slot while it is free, in FLOWS when another flow holds it, and moved to FLOWS when
//! their slot's time is over and another flow wants it. Wherever a reader waits, its flow is
//! judged exactly as if it had been alone, and a finished reader leaves no state behind.

mod support;

use std::{thread, time::Duration};

use blocker_common::verdict::{Action, Reason};
use blocker_user::datapath::XdpAction;
use support::{
    Harness,
    tls::{Hello, segment, sni_offset, stream},
};

const CLIENT: &str = "192.0.2.2";
const SERVER: &str = "203.0.113.10";

/// More flows than PENDING has slots (16 384): many flows share a slot, so some readers
/// wait in their slot and the rest in FLOWS.
const FLOWS: usize = 18_000;

/// Longer than a reader keeps its slot against other flows (flow.rs PENDING_WAIT_NS, 1 s).
const PAST_THE_SLOT_TIME: Duration = Duration::from_millis(1300);

/// Every third flow names a listed server.
fn listed(i: usize) -> bool {
    i % 3 == 0
}

/// One flow's ClientHello, cut inside its server name: segment 1 leaves a reader waiting.
struct Flow {
    sport: u16,
    name: String,
    hello: Vec<u8>,
    cut: usize,
}

impl Flow {
    fn new(generation: usize, i: usize) -> Flow {
        let zone = if listed(i) { "listed.example" } else { "other.example" };
        let name = format!("g{generation}-{i}.{zone}");
        let hello = stream(&Hello { sni: Some(&name), before: 8, key_share: 1248 });
        let cut = sni_offset(&hello, &name) + 5;
        Flow { sport: (10_000 + generation * FLOWS + i) as u16, name, hello, cut }
    }

    fn first(&self, h: &Harness) {
        let o = h.run(&segment(CLIENT, SERVER, self.sport, 0, &self.hello[..self.cut]).build());
        assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::TlsPending), "{}: segment 1 passes, its reader waits", self.name);
    }

    fn second(&self, h: &Harness, i: usize) {
        let o = h.run(&segment(CLIENT, SERVER, self.sport, self.cut, &self.hello[self.cut..]).build());
        if listed(i) {
            assert_eq!((o.reason, o.verdict), (Reason::Sni, Action::TcpReset), "{}: judged by its whole name", self.name);
            // Remembered as blocked: the flow's later data is blocked too.
            let after = h.run(&segment(CLIENT, SERVER, self.sport, self.hello.len(), b"\x17\x03\x03\x00\x01x").build());
            assert_eq!(after.reason, Reason::FlowBlocked, "{}: data after the blocked hello", self.name);
        } else {
            assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch), "{}: not listed", self.name);
        }
    }
}

fn harness() -> Harness {
    Harness::new("listed.example\n", "")
}

fn listed_count(n: usize) -> u64 {
    (0..n).filter(|&i| listed(i)).count() as u64
}

#[test]
#[ignore = "needs root"]
fn more_waiting_readers_than_slots_are_all_judged_and_leave_only_blocked_flows() {
    let h = harness();
    let flows: Vec<Flow> = (0..FLOWS).map(|i| Flow::new(0, i)).collect();
    for f in &flows {
        f.first(&h);
    }
    assert_eq!(h.dp.flow_entries().unwrap(), FLOWS as u64, "every waiting reader counted once, in its slot or in FLOWS");
    for (i, f) in flows.iter().enumerate() {
        f.second(&h, i);
    }
    assert_eq!(h.dp.flow_entries().unwrap(), listed_count(FLOWS), "only the blocked flows keep state");
}

#[test]
#[ignore = "needs root"]
fn readers_past_their_slot_time_move_to_flows_and_are_still_judged() {
    let h = harness();
    let old: Vec<Flow> = (0..FLOWS).map(|i| Flow::new(0, i)).collect();
    for f in &old {
        f.first(&h);
    }
    thread::sleep(PAST_THE_SLOT_TIME);
    // New flows now take every slot the old readers held; those readers move to FLOWS.
    let new: Vec<Flow> = (0..FLOWS).map(|i| Flow::new(1, i)).collect();
    for f in &new {
        f.first(&h);
    }
    assert_eq!(h.dp.flow_entries().unwrap(), 2 * FLOWS as u64, "no reader dropped, none counted twice");
    for (i, f) in old.iter().enumerate() {
        f.second(&h, i);
    }
    for (i, f) in new.iter().enumerate() {
        f.second(&h, i);
    }
    assert_eq!(h.dp.flow_entries().unwrap(), 2 * listed_count(FLOWS), "only the blocked flows keep state");
}

