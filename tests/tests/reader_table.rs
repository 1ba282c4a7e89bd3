//! Readers waiting for a ClientHello's next segment (blocker-ebpf flow.rs, FLOWS): many at
//! once, each judged by its whole name when its next segment comes, each counted once in
//! FLOW_FILTER while it waits, and gone when judged, except blocked flows, which are
//! remembered (what `blocker_flow_entries` reports).

mod support;

use blocker_common::verdict::{Action, Reason};
use blocker_user::datapath::XdpAction;
use support::{
    Harness,
    tls::{Hello, segment, sni_offset, stream},
};

const CLIENT: &str = "192.0.2.2";
const SERVER: &str = "203.0.113.10";

/// Waiting readers at once: more than FLOW_FILTER's buckets hold one each (65 536 buckets, so
/// many buckets count several), well within FLOWS (32 768), so none is evicted.
const FLOWS: usize = 18_000;

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
    fn new(i: usize) -> Flow {
        let zone = if listed(i) { "listed.example" } else { "other.example" };
        let name = format!("f{i}.{zone}");
        let hello = stream(&Hello { sni: Some(&name), before: 8, key_share: 1248 });
        let cut = sni_offset(&hello, &name) + 5;
        Flow { sport: (10_000 + i) as u16, name, hello, cut }
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

#[test]
#[ignore = "needs root"]
fn many_waiting_readers_are_each_counted_judged_and_forgotten_unless_blocked() {
    let h = Harness::new("listed.example\n", "");
    let flows: Vec<Flow> = (0..FLOWS).map(Flow::new).collect();
    for f in &flows {
        f.first(&h);
    }
    assert_eq!(h.dp.flow_entries().unwrap(), FLOWS as u64, "every waiting reader counted once");
    for (i, f) in flows.iter().enumerate() {
        f.second(&h, i);
    }
    let blocked = (0..FLOWS).filter(|&i| listed(i)).count() as u64;
    assert_eq!(h.dp.flow_entries().unwrap(), blocked, "only the blocked flows keep state");
}
