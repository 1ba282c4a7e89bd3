//! Inline (bump-in-the-wire) mode in the lab (issue 6, "Show"): the appliance's `a0` and `a1`
//! have no addresses and the appliance does not forward; the client and internet namespaces
//! share the client subnet, the internet namespace's `i0` holding the client's gateway
//! addresses. `blocker run --iface a0 --internet-iface a1` joins the two sides: allowed frames
//! are redirected port to port in both directions, blocking applies to what the client sends.
//!
//! With segmentation offloads off (a real wire) and on:
//!
//! - before the blocker runs nothing crosses the appliance (a cut wire);
//! - with it: ARP and neighbour discovery cross (the client's neighbour entry for its gateway
//!   holds `i0`'s MAC), pings cross both ways (internet → client and back too), HTTP to the
//!   allowed servers answers 200 over IPv4 and IPv6, DNS for unlisted names reaches the server;
//! - a listed address is reset within a bound and the server never sees the request; a ping to
//!   it gets no reply;
//! - a listed name in the TLS server name is reset (`curl --resolve` to the allowed address), and
//!   the server never completes a handshake for it; an unlisted name loads;
//! - DNS for a listed name is answered by the blocker (the stop-page address and EDE 15), the
//!   server never sees the query;
//! - the counters show `from_internet`/`pass` frames and each kind of block;
//! - once the blocker stops (not pinned), the wire is cut again.
//!
//! Pinned (`--pin-dir`): both ports' links are pinned; the program keeps forwarding and blocking
//! after the daemon exits, a new daemon takes both links over without losing a packet of an
//! allowed stream, bypass forwards everything, and `blocker detach` cuts the wire.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::Child,
    time::{Duration, Instant},
};

use blocker_tests::lab::*;

/// A blocked TCP connection must be refused within this: a reset, not a timeout.
const RESET_WITHIN: Duration = Duration::from_secs(3);
/// The stop-page addresses the blocker's DNS answers carry (documentation addresses; nothing
/// in the lab listens there).
const STOP_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 80);
const STOP_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe, 0, 0, 0, 0, 0x80);
const DNS_TTL: u32 = 60;
const BLOCKED_NAME: &str = "blocked.example";
const ALLOWED_NAME: &str = "allowed.example";
/// How long a client may keep trying after the blocker stopped before the wire counts as not
/// cut (the last frames in flight may still cross).
const CUT_SETTLE: Duration = Duration::from_millis(300);

fn mac_of(lab: &Lab, node: Node, dev: &str) -> String {
    let link = lab
        .exec_ok(node, &["ip", "-o", "link", "show", "dev", dev])
        .expect("ip link show");
    link.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {link}"))
        .to_string()
}

/// The client's neighbour entry for `addr`: its link-layer address, if it has one.
fn client_neighbour(lab: &Lab, addr: IpAddr) -> Option<String> {
    let addr = addr.to_string();
    let out = lab
        .exec_ok(
            Node::Client,
            &["ip", "neigh", "show", &addr, "dev", CLIENT_IF],
        )
        .expect("ip neigh show");
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_string)
}

fn check_inline(offloads: bool) {
    let binary = blocker_binary().expect("the blocker binary");
    let mut lab = Lab::create(LabOptions {
        offloads,
        inline: true,
        ..Default::default()
    })
    .expect("creating the inline lab");
    lab.start_http_server().expect("starting the HTTP server");
    let tls = TlsServer::start(&lab).expect("starting the TLS server");
    let dns = DnsServer::start(&lab).expect("starting the DNS server");
    let allowed = [IpAddr::V4(ALLOWED_V4), IpAddr::V6(ALLOWED_V6)];
    let blocked = [IpAddr::V4(BLOCKED_V4), IpAddr::V6(BLOCKED_V6)];
    let gateways = [
        IpAddr::V4(APPLIANCE_CLIENT_V4),
        IpAddr::V6(APPLIANCE_CLIENT_V6),
    ];

    // No program: the appliance neither routes nor bridges, so nothing crosses.
    for addr in gateways {
        let outcome = lab.ping(Node::Client, addr);
        assert_eq!(
            outcome,
            PingOutcome::NoReply,
            "offloads {offloads}: ping {addr} crossed the appliance with no blocker running"
        );
    }

    let list = lab.dir().join("inline.list");
    fs::write(
        &list,
        format!("# lab_inline\n{BLOCKED_V4}\n{BLOCKED_V6}\n{BLOCKED_NAME}\n"),
    )
    .unwrap();
    let list = list.to_string_lossy().into_owned();
    let (stop4, stop6, ttl) = (
        STOP_V4.to_string(),
        STOP_V6.to_string(),
        DNS_TTL.to_string(),
    );
    let blocker = lab
        .start_inline_blocker(
            &binary,
            &[
                "--list",
                &list,
                "--dns-v4",
                &stop4,
                "--dns-v6",
                &stop6,
                "--dns-ttl",
                &ttl,
                "--dns-ede",
                "blocked",
            ],
        )
        .expect("starting the blocker in inline mode");

    let mut problems = Vec::new();

    // ARP / ND and pings across the wire, both ways.
    for addr in gateways {
        let outcome = lab.ping(Node::Client, addr);
        if outcome != PingOutcome::Replied {
            problems.push(format!("ping {addr} (i0, across the wire): {outcome}"));
        }
    }
    let i0_mac = mac_of(&lab, Node::Internet, INTERNET_IF);
    for addr in gateways {
        match client_neighbour(&lab, addr) {
            Some(mac) if mac == i0_mac => {}
            other => problems.push(format!(
                "the client's neighbour entry for {addr} is {other:?}, expected i0's {i0_mac}"
            )),
        }
    }
    for addr in [IpAddr::V4(CLIENT_V4), IpAddr::V6(CLIENT_V6)] {
        let outcome = lab.ping(Node::Internet, addr);
        if outcome != PingOutcome::Replied {
            problems.push(format!("ping from the internet to {addr}: {outcome}"));
        }
    }

    // Addresses: allowed ones answer, listed ones are reset and never reach the server.
    for addr in allowed {
        let outcome = lab.http_get(Node::Client, addr);
        if outcome != HttpOutcome::Status(200) {
            problems.push(format!("curl {}: {outcome}, expected 200", http_url(addr)));
        }
        let outcome = lab.ping(Node::Client, addr);
        if outcome != PingOutcome::Replied {
            problems.push(format!("ping {addr}: {outcome}, expected replies"));
        }
    }
    for addr in blocked {
        let started = Instant::now();
        let outcome = lab.http_get(Node::Client, addr);
        let took = started.elapsed();
        if outcome != HttpOutcome::Reset || took >= RESET_WITHIN {
            problems.push(format!(
                "curl {}: {outcome} after {took:?}, expected a reset within {RESET_WITHIN:?}",
                http_url(addr)
            ));
        }
        if lab.server_saw(addr) {
            problems.push(format!("the server saw a request to listed {addr}"));
        }
        let outcome = lab.ping(Node::Client, addr);
        if outcome != PingOutcome::NoReply {
            problems.push(format!("ping {addr}: {outcome}, expected no reply"));
        }
    }

    // Names in TLS: the listed one is reset on the allowed address, the other loads.
    for addr in allowed {
        let a = curl_https(&lab, BLOCKED_NAME, addr);
        if a.outcome != Outcome::Reset || a.elapsed >= RESET_WITHIN {
            problems.push(format!(
                "curl https://{BLOCKED_NAME}/ at {addr}: {a}; expected a reset within {RESET_WITHIN:?}"
            ));
        }
        let a = curl_https(&lab, ALLOWED_NAME, addr);
        if a.outcome != Outcome::Http(200) {
            problems.push(format!(
                "curl https://{ALLOWED_NAME}/ at {addr}: {a}; expected 200"
            ));
        }
    }
    if tls.handshakes_for(BLOCKED_NAME) != 0 {
        problems.push(format!(
            "the TLS server completed a handshake for {BLOCKED_NAME}:\n{}",
            tls.log()
        ));
    }
    if tls.handshakes_for(ALLOWED_NAME) == 0 {
        problems.push(format!(
            "the TLS server saw no handshake for {ALLOWED_NAME}:\n{}",
            tls.log()
        ));
    }

    // DNS: the listed name is answered by the blocker, the other one by the server.
    for (qtype, stop) in [("A", IpAddr::V4(STOP_V4)), ("AAAA", IpAddr::V6(STOP_V6))] {
        let out = dig(&lab, BLOCKED_NAME, qtype, &[]);
        let r = DigReply::parse(&out);
        let ok = r.status.as_deref() == Some("NOERROR")
            && r.addresses == [stop]
            && r.ttls == [DNS_TTL]
            && r.ede
                .as_deref()
                .is_some_and(|e| e.starts_with("15 (Blocked)"));
        if !ok {
            problems.push(format!(
                "dig {BLOCKED_NAME} {qtype}: expected {stop} with EDE 15, got {r:?}\n{out}"
            ));
        }
    }
    let out = dig(&lab, ALLOWED_NAME, "A", &[]);
    let r = DigReply::parse(&out);
    if r.addresses != [IpAddr::V4(ALLOWED_V4)] {
        problems.push(format!("dig {ALLOWED_NAME} A: {r:?}\n{out}"));
    }
    if dns.queries_for(BLOCKED_NAME) != 0 {
        problems.push(format!(
            "a query for {BLOCKED_NAME} reached the DNS server:\n{}",
            dns.log()
        ));
    }
    if dns.queries_for(ALLOWED_NAME) == 0 {
        problems.push(format!(
            "no query for {ALLOWED_NAME} reached the DNS server:\n{}",
            dns.log()
        ));
    }

    let exit = blocker.stop().expect("stopping the blocker");
    if !exit.stopped.stdout.contains("inline mode") {
        problems.push("`blocker run` did not report inline mode".into());
    }
    let counters = exit.counters;
    eprintln!("offloads {offloads}: inline blocker counters:\n{counters}");
    for (reason, action) in [
        ("from_internet", "pass"),
        ("no_match", "pass"),
        ("dst_v4", "tcp_reset"),
        ("dst_v6", "tcp_reset"),
        ("dst_v4", "drop"),
        ("dst_v6", "drop"),
        ("sni", "tcp_reset"),
        ("dns_name", "dns_answer"),
    ] {
        if counters.packets(reason, action) == 0 {
            problems.push(format!("no {reason}/{action} in the counters"));
        }
    }

    // Without the program a bump in the wire is a cut wire: nothing crosses any more.
    std::thread::sleep(CUT_SETTLE);
    for addr in gateways.into_iter().chain(allowed) {
        let outcome = lab.ping(Node::Client, addr);
        if outcome != PingOutcome::NoReply {
            problems.push(format!(
                "ping {addr} after the blocker stopped: {outcome}, expected no reply (cut wire)"
            ));
        }
    }
    let outcome = lab.http_get(Node::Client, IpAddr::V4(ALLOWED_V4));
    if outcome != HttpOutcome::Timeout {
        problems.push(format!(
            "curl {} after the blocker stopped: {outcome}, expected a timeout (cut wire)",
            http_url(IpAddr::V4(ALLOWED_V4))
        ));
    }

    assert!(
        problems.is_empty(),
        "offloads {offloads}:\n{}\nblocker:\n{}",
        problems.join("\n"),
        exit.stopped.output()
    );
}

fn assert_forwarding_and_blocking(lab: &Lab, when: &str) {
    assert_eq!(
        lab.http_get(Node::Client, ALLOWED_V4.into()),
        HttpOutcome::Status(200),
        "{when}: {ALLOWED_V4} is not listed"
    );
    assert_eq!(
        lab.http_get(Node::Client, ALLOWED_V6.into()),
        HttpOutcome::Status(200),
        "{when}: {ALLOWED_V6} is not listed"
    );
    assert_eq!(
        lab.http_get(Node::Client, BLOCKED_V4.into()),
        HttpOutcome::Reset,
        "{when}: {BLOCKED_V4} is listed"
    );
}

/// 1000 pings at 5 ms to the allowed server: about 5 s of traffic across a restart, bounded by
/// ping's own deadline.
fn allowed_stream(lab: &Lab) -> Child {
    let addr = ALLOWED_V4.to_string();
    lab.spawn(
        Node::Client,
        &[
            "ping", "-n", "-q", "-c", "1000", "-i", "0.005", "-w", "30", &addr,
        ],
    )
    .unwrap()
}

fn received(out: &std::process::Output) -> (u32, u32) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("ping said: {text}"));
    let n: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

fn check_pinned() {
    let binary = blocker_binary().expect("the blocker binary");
    let pins = PrivateBpffs::mount("inline").unwrap();
    let mut lab = Lab::create(LabOptions {
        offloads: false,
        inline: true,
        ..Default::default()
    })
    .expect("creating the inline lab");
    lab.start_http_server().expect("starting the HTTP server");
    let list = lab.dir().join("inline.list");
    fs::write(&list, format!("{BLOCKED_V4}\n{BLOCKED_V6}\n")).unwrap();
    let list = list.to_string_lossy().into_owned();
    let socket = lab
        .dir()
        .join("control.sock")
        .to_string_lossy()
        .into_owned();
    let state = lab.dir().join("state").to_string_lossy().into_owned();
    let pin_dir = pins.dir.to_string_lossy().into_owned();
    let args = [
        "--list",
        &list,
        "--state-dir",
        &state,
        "--socket",
        &socket,
        "--pin-dir",
        &pin_dir,
    ];
    let bin = binary.to_string_lossy().into_owned();
    let blocker_cmd = |args: &[&str]| {
        let mut argv = vec![bin.as_str()];
        argv.extend_from_slice(args);
        lab.exec_timeout(Node::Appliance, &argv, Duration::from_secs(30))
    };
    // With a pinned program on both ports already, attached programs say nothing about a new
    // daemon being up: wait for its control socket too.
    let start = || {
        let b = lab
            .start_inline_blocker(&binary, &args)
            .expect("starting the blocker");
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        while !blocker_cmd(&["lists", "show", "--socket", &socket])
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "the daemon's control socket did not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    };

    let first = start();
    assert_forwarding_and_blocking(&lab, "first daemon");
    let pinned = pins.entries();
    for port in [APPLIANCE_CLIENT_IF, APPLIANCE_INTERNET_IF] {
        assert!(
            pinned.contains(&format!("link-{port}-native")),
            "no pinned link for {port}: {pinned:?}"
        );
    }
    let log = first
        .stop()
        .expect("stopping the first daemon")
        .stopped
        .output();
    assert!(log.contains("inline mode"), "{log}");
    assert_forwarding_and_blocking(&lab, "no daemon, pinned program");

    let stream = allowed_stream(&lab);
    std::thread::sleep(Duration::from_millis(500));
    let second = start();
    let out = stream.wait_with_output().unwrap();
    let (sent, got) = received(&out);
    assert_eq!(
        got,
        sent,
        "the allowed stream lost {} of {sent} packets across the restart",
        sent - got
    );
    assert_forwarding_and_blocking(&lab, "second daemon");
    // Bypass keeps the wire joined: everything is forwarded, nothing judged.
    let out = blocker_cmd(&["bypass", "on", "--socket", &socket]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lab.http_get(Node::Client, BLOCKED_V4.into()),
        HttpOutcome::Status(200),
        "bypass on: even {BLOCKED_V4} is forwarded"
    );
    let out = blocker_cmd(&["bypass", "off", "--socket", &socket]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_forwarding_and_blocking(&lab, "bypass off again");
    let log = second
        .stop()
        .expect("stopping the second daemon")
        .stopped
        .output();
    assert!(log.contains("adopted the pinned maps"), "{log}");
    assert!(
        log.contains("replaced the program on the pinned link"),
        "{log}"
    );

    let out = blocker_cmd(&["detach", "--pin-dir", &pin_dir, "--socket", &socket]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(200));
    for port in [APPLIANCE_CLIENT_IF, APPLIANCE_INTERNET_IF] {
        assert!(
            lab.wait_for_xdp(Node::Appliance, port, Duration::ZERO)
                .is_err(),
            "a program is left on {port} after detach"
        );
    }
    assert_eq!(
        lab.ping(Node::Client, ALLOWED_V4.into()),
        PingOutcome::NoReply,
        "after detach the wire is cut"
    );
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn inline_pinned_survives_the_daemon_and_restarts_without_a_gap() {
    check_pinned();
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn inline_offloads_off() {
    check_inline(false);
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn inline_offloads_on() {
    check_inline(true);
}
