//! Router mode with XDP forwarding (`blocker run --xdp-forward a1`) in the lab (issue 7: the
//! design change for router-mode throughput). The appliance routes between `a0` and `a1` as
//! always; with the switch the program routes allowed frames from the client itself, through
//! the kernel's FIB, when the route leaves through `a1` and `a1` takes redirected frames.
//!
//! - While `a1` cannot take redirected frames (its veth peer `i0` has neither an XDP program nor
//!   GRO on, so the driver would drop them; with GRO on a veth takes them and wakes its peer), the daemon leaves it out and says why in `status`:
//!   everything goes through the kernel (`port_not_allowed`), nothing is lost.
//! - Once `i0` turns GRO on, the daemon's next check puts `a1` in: pings and HTTP over IPv4 and
//!   IPv6 reach the servers through the program (`forwarded`), with the TTL and hop limit one
//!   less, as after a router, and a valid IPv4 header checksum (the server answers).
//! - A listed address is still reset, and never reaches the server.
//! - What the program leaves to the kernel is still done by the kernel: a TTL of 1 gets "time
//!   exceeded" from the appliance (`ttl_expired`), a flushed neighbour entry is resolved again
//!   (`no_neighbour`).
//! - When `i0` turns GRO off again, the daemon takes `a1` out and traffic flows through the
//!   kernel again.

mod support;

use std::{
    fs,
    net::IpAddr,
    thread,
    time::{Duration, Instant},
};

use blocker_tests::lab::*;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde_json::Value;
use support::control::Cli;

/// The daemon checks the ports every 2 s; a loaded CI machine gets some slack.
const PORT_CHECK_WITHIN: Duration = Duration::from_secs(10);

/// Packets of one XDP forwarding outcome so far.
fn outcome(cli: &Cli, lab: &Lab, outcome: &str) -> u64 {
    let stats = cli.json(lab, &["stats"]);
    let rows = stats["xdp_forward"].as_array().unwrap_or_else(|| panic!("no xdp_forward in stats: {stats}"));
    rows.iter()
        .find(|r| r[0] == outcome)
        .and_then(|r| r[1].as_u64())
        .unwrap_or_else(|| panic!("no outcome {outcome} in {stats}"))
}

/// Waits until `status` shows `a1` forwarding (or not); returns its entry.
fn wait_for_port(cli: &Cli, lab: &Lab, forwarding: bool) -> Value {
    let deadline = Instant::now() + PORT_CHECK_WITHIN;
    loop {
        let status = cli.json(lab, &["status"]);
        let ports = status["xdp_forward"].as_array().unwrap_or_else(|| panic!("no xdp_forward in status: {status}"));
        assert_eq!(ports.len(), 1, "{status}");
        let port = ports[0].clone();
        assert_eq!(port["name"], APPLIANCE_INTERNET_IF);
        if port["forwarding"] == forwarding {
            return port;
        }
        assert!(Instant::now() < deadline, "a1 not {}forwarding within {PORT_CHECK_WITHIN:?}: {status}", if forwarding { "" } else { "out of " });
        thread::sleep(Duration::from_millis(200));
    }
}

fn gro(lab: &Lab, on: bool) {
    lab.exec_ok(Node::Internet, &["ethtool", "-K", INTERNET_IF, "gro", if on { "on" } else { "off" }]).unwrap();
}

fn http_ok(lab: &Lab, addr: IpAddr) {
    assert_eq!(lab.http_get(Node::Client, addr), HttpOutcome::Status(200), "GET {addr}");
}

/// TTL (IPv4) or hop limit (IPv6) of every echo request from the client in `frames`.
fn echo_request_ttls(frames: &[CapturedFrame]) -> Vec<(IpAddr, u8)> {
    let mut out = Vec::new();
    for f in frames {
        let Ok(p) = SlicedPacket::from_ethernet(&f.data) else { continue };
        let request = match &p.transport {
            Some(TransportSlice::Icmpv4(i)) => i.type_u8() == 8,
            Some(TransportSlice::Icmpv6(i)) => i.type_u8() == 128,
            _ => false,
        };
        match p.net.as_ref() {
            Some(NetSlice::Ipv4(v4)) if request => out.push((IpAddr::from(v4.header().destination_addr()), v4.header().ttl())),
            Some(NetSlice::Ipv6(v6)) if request => out.push((IpAddr::from(v6.header().destination_addr()), v6.header().hop_limit())),
            _ => {}
        }
    }
    out
}

#[test]
#[ignore = "needs root"]
fn allowed_frames_are_routed_by_the_program_and_the_rest_by_the_kernel() {
    // i0 without the lab's XDP_PASS program: whether a1 takes redirected frames is then up to
    // i0's GRO. c0 keeps one, so the blocker's resets reach the client at once (xdp.rs).
    // Offloads off, as on a real wire: a frame redirected in XDP leaves its skb behind, and with
    // it the mark that the sender left its TCP checksum to be finished (a NIC receives only
    // finished ones).
    let mut lab = Lab::create(LabOptions { offloads: false, peer_xdp_pass: false, ..Default::default() }).unwrap();
    let _c0_pass = lab.attach_constant_xdp(Node::Client, CLIENT_IF, XdpAction::Pass).unwrap();
    lab.start_http_server().unwrap();
    let list = lab.dir().join("block.list");
    fs::write(&list, format!("{BLOCKED_V4}\n{BLOCKED_V6}\n")).unwrap();
    let cli = Cli::for_lab(&lab);
    let l = list.to_string_lossy().into_owned();
    gro(&lab, false);
    let blocker = lab
        .start_blocker(&cli.binary, APPLIANCE_CLIENT_IF, &["--list", &l, "--xdp-forward", APPLIANCE_INTERNET_IF, "--socket", &cli.socket])
        .unwrap();

    // a1 cannot take redirected frames yet: left out, with the reason; the kernel routes.
    let port = wait_for_port(&cli, &lab, false);
    assert!(port["why_not"].as_str().unwrap().contains("does not take frames redirected from XDP"), "{port}");
    for addr in [ALLOWED_V4.into(), ALLOWED_V6.into()] {
        http_ok(&lab, addr);
    }
    assert_eq!(outcome(&cli, &lab, "forwarded"), 0);
    assert!(outcome(&cli, &lab, "port_not_allowed") > 0);

    // GRO on i0: a1 takes redirected frames, and the daemon's next check puts it in.
    gro(&lab, true);
    wait_for_port(&cli, &lab, true);
    let forwarded = outcome(&cli, &lab, "forwarded");
    let capture = lab.start_capture(Node::Internet, INTERNET_IF, Direction::In, "forwarded.pcap", &["icmp", "or", "icmp6"]).unwrap();
    for addr in [ALLOWED_V4.into(), ALLOWED_V6.into()] {
        assert_eq!(lab.ping(Node::Client, addr), PingOutcome::Replied, "ping {addr}");
        http_ok(&lab, addr);
    }
    let frames = capture.stop().unwrap().frames;
    let ttls = echo_request_ttls(&frames);
    for addr in [IpAddr::from(ALLOWED_V4), IpAddr::from(ALLOWED_V6)] {
        let seen: Vec<u8> = ttls.iter().filter(|(a, _)| *a == addr).map(|(_, t)| *t).collect();
        assert!(!seen.is_empty(), "no echo request to {addr} reached i0: {ttls:?}");
        assert!(seen.iter().all(|t| *t == 63), "echo requests to {addr} must arrive with 64 - 1: {seen:?}");
    }
    let after = outcome(&cli, &lab, "forwarded");
    // Two pings and a whole HTTP exchange per family, at the least.
    assert!(after >= forwarded + 8, "forwarded {forwarded} -> {after}");
    // The route cache is on by default: after a flow's first frame, the route comes from it.
    assert_eq!(cli.json(&lab, &["status"])["route_cache"], true);
    let stats = cli.json(&lab, &["stats"]);
    let cached = stats["xdp_forward_route_cached"].as_u64().unwrap_or_else(|| panic!("no route cache count: {stats}"));
    assert!(cached > 0 && cached < after, "cached {cached} of {after} forwarded");

    // Listed addresses are judged before forwarding: reset, and never at the server.
    for addr in [BLOCKED_V4.into(), BLOCKED_V6.into()] {
        assert_eq!(lab.http_get(Node::Client, addr), HttpOutcome::Reset, "GET {addr}");
        assert!(!lab.server_saw(addr), "the server saw a request to {addr}");
    }

    // A TTL that would expire here is the kernel's to answer.
    let expired = outcome(&cli, &lab, "ttl_expired");
    let out = lab.exec_timeout(Node::Client, &["ping", "-n", "-c", "1", "-t", "1", "-W", "2", &ALLOWED_V4.to_string()], Duration::from_secs(5));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Time to live exceeded"), "{text}");
    assert!(outcome(&cli, &lab, "ttl_expired") > expired);

    // A neighbour the kernel has not resolved: the kernel resolves it and forwards meanwhile.
    let unresolved = outcome(&cli, &lab, "no_neighbour");
    lab.exec_ok(Node::Appliance, &["ip", "neigh", "flush", "dev", APPLIANCE_INTERNET_IF]).unwrap();
    http_ok(&lab, ALLOWED_V4.into());
    assert!(outcome(&cli, &lab, "no_neighbour") > unresolved);

    // GRO off again: a1 would drop redirected frames, so the daemon takes it out.
    gro(&lab, false);
    let port = wait_for_port(&cli, &lab, false);
    assert!(port["why_not"].is_string(), "{port}");
    let forwarded = outcome(&cli, &lab, "forwarded");
    for addr in [ALLOWED_V4.into(), ALLOWED_V6.into()] {
        http_ok(&lab, addr);
    }
    assert_eq!(outcome(&cli, &lab, "forwarded"), forwarded);

    let exit = blocker.stop().unwrap();
    assert!(exit.counters.packets("dst_v4", "tcp_reset") >= 1);
    assert!(exit.counters.packets("dst_v6", "tcp_reset") >= 1);
    lab.teardown().unwrap();
}
