//! The release `blocker` on the lab's appliance, with real clients (curl, ping) over IPv4 and
//! IPv6, segmentation offloads off (a real wire) and on; then `blocker replay` on a capture of
//! what the blocker received must reproduce what it did in the lab (issue 2, "done when").
//!
//! Where the capture is taken (see `tests/src/lab/capture.rs`): XDP on `a0` acts before
//! tcpdump's tap on `a0`, so frames it drops or answers never show there. The frames `a0`
//! receives are exactly what its veth peer `c0` transmits, so the capture that is replayed is
//! the *egress* of `c0` in the client namespace. Two more captures check the other sides:
//! the ingress of `c0` (the resets the blocker sent back) and the ingress of `a0` (what the
//! blocker let into the appliance: nothing towards a blocked address).
//!
//! The three captures run strictly inside the blocker's run (started after it attached,
//! stopped before it is stopped), and all traffic to the servers happens inside them. So the
//! counter cells of blocked traffic (`dst_v4`, `dst_v6`) must be equal between the running
//! blocker and the replay, in packets and bytes; other cells (neighbour discovery, MLD, ...)
//! may hold frames sent outside the capture window, so there the replay may count less.

use std::{
    collections::BTreeMap,
    fs,
    net::IpAddr,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use blocker_common::verdict::Reason;
use blocker_tests::lab::*;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// A blocked TCP connection must be refused within this: a reset, not a timeout (curl gives up
/// after 3 s). Generous: a loaded two-core CI machine starts processes slowly.
const RESET_WITHIN: Duration = Duration::from_secs(2);
/// Deadline of `blocker replay`.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);
/// Whether the program passed a frame under this reason because it could not judge it.
fn fail_open(reason: &str) -> bool {
    Reason::ALL
        .iter()
        .any(|r| r.name() == reason && r.is_fail_open())
}

fn blocked(addr: IpAddr) -> bool {
    addr == IpAddr::from(BLOCKED_V4) || addr == IpAddr::from(BLOCKED_V6)
}

fn allowed(addr: IpAddr) -> bool {
    addr == IpAddr::from(ALLOWED_V4) || addr == IpAddr::from(ALLOWED_V6)
}

fn dst_reason(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "dst_v4",
        IpAddr::V6(_) => "dst_v6",
    }
}

/// What a test needs to know about one captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    src: IpAddr,
    dst: IpAddr,
    l4: L4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp {
        syn: bool,
        rst: bool,
    },
    /// ICMP or ICMPv6 echo request.
    EchoRequest,
    OtherIcmp,
    Other,
}

/// Source, destination and L4 kind of an IPv4/IPv6 frame; None for anything else (ARP).
fn inspect(frame: &[u8]) -> Option<Seen> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst) = match p.net.as_ref()? {
        NetSlice::Ipv4(v4) => (
            IpAddr::from(v4.header().source_addr()),
            IpAddr::from(v4.header().destination_addr()),
        ),
        NetSlice::Ipv6(v6) => (
            IpAddr::from(v6.header().source_addr()),
            IpAddr::from(v6.header().destination_addr()),
        ),
    };
    let l4 = match &p.transport {
        Some(TransportSlice::Tcp(t)) => L4::Tcp {
            syn: t.syn(),
            rst: t.rst(),
        },
        Some(TransportSlice::Icmpv4(i)) if i.type_u8() == 8 => L4::EchoRequest,
        Some(TransportSlice::Icmpv6(i)) if i.type_u8() == 128 => L4::EchoRequest,
        Some(TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_)) => L4::OtherIcmp,
        _ => L4::Other,
    };
    Some(Seen { src, dst, l4 })
}

/// One line of `blocker replay --json`.
#[derive(Debug, Clone)]
struct Replayed {
    frame: usize,
    /// XDP action in the JSON's form: "pass", "drop", "tx", "aborted", ...
    action: String,
    verdict: Option<String>,
    reason: Option<String>,
    len: usize,
    out_len: usize,
    summary: String,
}

fn parse_replay(stdout: &str) -> Vec<Replayed> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("replay line {l:?}: {e}"));
            let text = |k: &str| v[k].as_str().map(str::to_string);
            let number = |k: &str| {
                v[k].as_u64()
                    .unwrap_or_else(|| panic!("replay line without numeric {k}: {l}"))
                    as usize
            };
            Replayed {
                frame: number("frame"),
                // A unit variant serialises as a string; anything else (`{"unknown": 7}`) is
                // kept as its JSON text so it fails every comparison visibly.
                action: text("action").unwrap_or_else(|| v["action"].to_string()),
                verdict: text("verdict"),
                reason: text("reason"),
                len: number("len"),
                out_len: number("out_len"),
                summary: text("summary").unwrap_or_default(),
            }
        })
        .collect()
}

fn run_replay(lab: &Lab, blocker: &Path, list: &Path, capture: &Path) -> Vec<Replayed> {
    let (blocker, list, capture) = (
        blocker.to_string_lossy(),
        list.to_string_lossy(),
        capture.to_string_lossy(),
    );
    let out = lab.exec_timeout(
        Node::Appliance,
        &[&*blocker, "replay", "--json", "--list", &*list, &*capture],
        REPLAY_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "blocker replay failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_replay(&String::from_utf8_lossy(&out.stdout))
}

fn check_blocking(offloads: bool) {
    let binary = blocker_binary().expect("the blocker binary");
    let mut lab = Lab::create(LabOptions {
        offloads,
        ..Default::default()
    })
    .expect("creating the lab");
    lab.start_http_server().expect("starting the HTTP server");

    let list = lab.dir().join("blocked.list");
    fs::write(
        &list,
        format!("# lab_blocking: the two blocked servers\n{BLOCKED_V4}\n{BLOCKED_V6}\n"),
    )
    .unwrap();
    let list_arg = list.to_string_lossy().into_owned();
    let blocker = lab
        .start_blocker(&binary, APPLIANCE_CLIENT_IF, &["--list", &list_arg])
        .expect("starting the blocker");

    // What a0 receives, what comes back to the client, what a0 passes into the appliance.
    let wire = lab
        .start_capture(Node::Client, CLIENT_IF, Direction::Out, "c0-out.pcap", &[])
        .expect("capture on c0 (out)");
    let back = lab
        .start_capture(Node::Client, CLIENT_IF, Direction::In, "c0-in.pcap", &[])
        .expect("capture on c0 (in)");
    let inside = lab
        .start_capture(
            Node::Appliance,
            APPLIANCE_CLIENT_IF,
            Direction::In,
            "a0-in.pcap",
            &[],
        )
        .expect("capture on a0 (in)");

    // Real clients.
    let mut problems = Vec::new();
    for addr in SERVER_ADDRS {
        let started = Instant::now();
        let outcome = lab.http_get(Node::Client, addr);
        let took = started.elapsed();
        if blocked(addr) {
            if outcome != HttpOutcome::Reset || took >= RESET_WITHIN {
                problems.push(format!(
                    "curl {}: {outcome} after {took:?}, expected a reset within {RESET_WITHIN:?}",
                    http_url(addr)
                ));
            }
        } else if outcome != HttpOutcome::Status(200) {
            problems.push(format!("curl {}: {outcome}, expected 200", http_url(addr)));
        }
    }
    for addr in SERVER_ADDRS {
        let outcome = lab.ping(Node::Client, addr);
        let expected = if blocked(addr) {
            PingOutcome::NoReply
        } else {
            PingOutcome::Replied
        };
        if outcome != expected {
            problems.push(format!("ping {addr}: {outcome}, expected {expected}"));
        }
    }
    // Let the last frames of the connections (FIN, ACK) cross before the captures stop.
    thread::sleep(Duration::from_millis(300));

    let wire = wire.stop().expect("stopping the c0 (out) capture");
    let back = back.stop().expect("stopping the c0 (in) capture");
    let inside = inside.stop().expect("stopping the a0 (in) capture");
    let exit = blocker.stop().expect("stopping the blocker");
    let counters = exit.counters;
    eprintln!(
        "offloads {offloads}: blocker counters:\n{counters}captures: c0 out {}, c0 in {}, a0 in {} frames",
        wire.frames.len(),
        back.frames.len(),
        inside.frames.len()
    );
    assert!(
        problems.is_empty(),
        "offloads {offloads}: clients saw:\n{}\nblocker:\n{}",
        problems.join("\n"),
        exit.stopped.output()
    );
    for capture in [&wire, &back, &inside] {
        assert_eq!(
            capture.dropped_by_kernel,
            0,
            "{} is incomplete",
            capture.path.display()
        );
    }

    // The server's own view.
    let log = lab.server_log();
    for addr in SERVER_ADDRS {
        assert_eq!(
            lab.server_saw(addr),
            !blocked(addr),
            "server log for {addr}:\n{log}"
        );
    }

    // The running blocker's counters.
    for reason in ["dst_v4", "dst_v6"] {
        for action in ["tcp_reset", "drop"] {
            assert!(
                counters.packets(reason, action) > 0,
                "offloads {offloads}: no ({reason}, {action}) in the counters:\n{counters}"
            );
        }
    }
    for (reason, action, cell) in counters.cells() {
        assert!(
            !fail_open(reason),
            "offloads {offloads}: fail-open counter ({reason}, {action}) = {} packets:\n{counters}",
            cell.packets
        );
    }

    // Replay what a0 received.
    let replay = run_replay(&lab, &binary, &list, &wire.path);
    let context = || {
        replay
            .iter()
            .map(|r| {
                format!(
                    "frame={} action={} verdict={:?} reason={:?} len={} out_len={} {}",
                    r.frame, r.action, r.verdict, r.reason, r.len, r.out_len, r.summary
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        replay.len(),
        wire.frames.len(),
        "one replay line per captured frame:\n{}",
        context()
    );

    let mut replay_counters = Counters::default();
    // (destination, reset length) of every frame the replay answered with a reset.
    let mut replay_resets: Vec<(IpAddr, usize)> = Vec::new();
    let mut blocked_kinds: BTreeMap<(IpAddr, &str), usize> = BTreeMap::new();
    for (i, (frame, r)) in wire.frames.iter().zip(&replay).enumerate() {
        let line = format!(
            "frame {}: action={} verdict={:?} reason={:?} {}",
            r.frame, r.action, r.verdict, r.reason, r.summary
        );
        assert_eq!(r.frame, i + 1, "{line}");
        assert_eq!(r.len, frame.data.len(), "{line}");
        assert_eq!(
            frame.orig_len as usize,
            frame.data.len(),
            "cut frame, {line}"
        );
        assert_ne!(r.action, "aborted", "{line}");
        let (Some(reason), Some(verdict)) = (r.reason.as_deref(), r.verdict.as_deref()) else {
            panic!("replay could not tell the counted verdict: {line}");
        };
        assert!(!fail_open(reason), "fail open: {line}");
        replay_counters.add(
            reason,
            verdict,
            Cell {
                packets: 1,
                bytes: r.len as u64,
            },
        );

        let seen = inspect(&frame.data);
        match seen {
            Some(s) if blocked(s.dst) => {
                let (action, expected_verdict, kind) = match s.l4 {
                    L4::Tcp { rst: false, syn } => {
                        ("tx", "tcp_reset", if syn { "syn" } else { "tcp" })
                    }
                    // A reset is never answered with a reset.
                    L4::Tcp { rst: true, .. } => ("drop", "drop", "rst"),
                    L4::EchoRequest => ("drop", "drop", "echo"),
                    L4::OtherIcmp | L4::Other => ("drop", "drop", "other"),
                };
                assert_eq!(
                    (r.action.as_str(), verdict, reason),
                    (action, expected_verdict, dst_reason(s.dst)),
                    "to a blocked server: {line}"
                );
                *blocked_kinds.entry((s.dst, kind)).or_default() += 1;
                if action == "tx" {
                    replay_resets.push((s.dst, r.out_len));
                }
            }
            Some(s) if allowed(s.dst) => {
                assert_eq!(
                    (r.action.as_str(), verdict, reason),
                    ("pass", "pass", "no_match"),
                    "to an allowed server: {line}"
                );
            }
            _ => assert_eq!(
                (r.action.as_str(), verdict),
                ("pass", "pass"),
                "not to a server: {line}"
            ),
        }
    }
    // The capture did hold the blocked traffic: a SYN and pings to each blocked server.
    for addr in [IpAddr::from(BLOCKED_V4), IpAddr::from(BLOCKED_V6)] {
        for kind in ["syn", "echo"] {
            assert!(
                blocked_kinds.get(&(addr, kind)).copied().unwrap_or(0) > 0,
                "no {kind} to {addr} in the capture:\n{}",
                context()
            );
        }
    }

    // Per (reason, action): blocked cells equal in packets and bytes; the others at most what
    // the blocker counted over its longer run.
    for (reason, action, cell) in replay_counters.cells() {
        let lab_cell = counters.get(reason, action);
        if reason == "dst_v4" || reason == "dst_v6" {
            assert_eq!(
                cell, lab_cell,
                "({reason}, {action}): replay vs lab\nreplay:\n{replay_counters}lab:\n{counters}"
            );
        } else {
            assert!(
                cell.packets <= lab_cell.packets,
                "({reason}, {action}): replay counted more than the blocker did\n\
                 replay:\n{replay_counters}lab:\n{counters}"
            );
        }
    }
    for reason in ["dst_v4", "dst_v6"] {
        for action in ["tcp_reset", "drop"] {
            assert_eq!(
                replay_counters.get(reason, action),
                counters.get(reason, action),
                "({reason}, {action}) the lab counted frames the capture lacks\n\
                 replay:\n{replay_counters}lab:\n{counters}"
            );
        }
    }

    // The resets reached the client: one per reset counted, from the blocked server, as long
    // as the frame the replay built.
    let mut received_resets: Vec<(IpAddr, usize)> = back
        .frames
        .iter()
        .filter_map(|f| {
            let s = inspect(&f.data)?;
            (blocked(s.src) && matches!(s.l4, L4::Tcp { rst: true, .. }))
                .then_some((s.src, f.data.len()))
        })
        .collect();
    received_resets.sort();
    replay_resets.sort();
    assert_eq!(
        received_resets, replay_resets,
        "resets at the client (source, length) vs resets the replay built (destination, length)"
    );
    for s in back.frames.iter().filter_map(|f| inspect(&f.data)) {
        assert!(
            !blocked(s.src) || matches!(s.l4, L4::Tcp { rst: true, .. }),
            "a blocked server answered the client: {s:?}"
        );
    }

    // Nothing towards a blocked server entered the appliance; traffic to the allowed ones did,
    // every connection and every echo request of it.
    let count = |frames: &[CapturedFrame], addr: IpAddr, kind: fn(L4) -> bool| {
        frames
            .iter()
            .filter_map(|f| inspect(&f.data))
            .filter(|s| s.dst == addr && kind(s.l4))
            .count()
    };
    for f in &inside.frames {
        if let Some(s) = inspect(&f.data) {
            assert!(
                !blocked(s.dst),
                "a0 let a frame to a blocked server in: {s:?}"
            );
        }
    }
    for addr in [IpAddr::from(ALLOWED_V4), IpAddr::from(ALLOWED_V6)] {
        let syn: fn(L4) -> bool = |l| matches!(l, L4::Tcp { syn: true, .. });
        let echo: fn(L4) -> bool = |l| l == L4::EchoRequest;
        for (what, kind) in [("SYN", syn), ("echo request", echo)] {
            let sent = count(&wire.frames, addr, kind);
            assert!(sent > 0, "no {what} to {addr} on c0");
            assert_eq!(
                count(&inside.frames, addr, kind),
                sent,
                "{what}s to {addr}: a0 ingress vs c0 egress"
            );
        }
    }

    lab.teardown().expect("lab teardown");
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn blocks_listed_addresses_without_offloads() {
    check_blocking(false);
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn blocks_listed_addresses_with_offloads() {
    check_blocking(true);
}
