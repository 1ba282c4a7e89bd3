//! Names in the lab with real clients (issue 3, "Show"): the release `blocker` on the
//! appliance with the list `blocked.example`, an HTTPS server for every lab name in the
//! internet namespace, and from the client namespace, many times each, with segmentation
//! offloads off (a real 1500-byte wire: Chromium's ~2 KB ClientHello crosses as two segments)
//! and on (one GSO packet):
//!
//! - headless Chromium, curl and `openssl s_client` to `blocked.example` and
//!   `www.blocked.example` are reset, every time, and the server never completes a handshake
//!   for those names; `allowed.example` and `xblocked.example` (not on a label boundary of the
//!   listed name) load every time;
//! - the blocker's counters show the resets (`sni`, `tcp_reset`) and, offloads off, ClientHellos
//!   whose name came only with a later segment (`tls_pending`);
//! - DNS: `dig` and the glibc resolver (`getent`) in the client namespace get the stop-page
//!   addresses for the listed names with the extended error `15 (Blocked)` when the query had
//!   EDNS, the real addresses for the others; `--dns-nxdomain` answers NXDOMAIN.
//!
//! Every client run is bounded (see `blocker_tests::lab::clients`), and each test builds its
//! own lab, torn down on drop (also when an assertion fails).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use blocker_tests::lab::*;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// Runs of curl and of s_client per name and address family.
const TLS_ITERATIONS: usize = 10;
/// Chromium page loads per name (alternating IPv4 and IPv6).
const CHROMIUM_ITERATIONS: usize = 10;
/// A blocked connection must be refused within this: a reset, not a stall that ends in one.
/// The outcome already tells a reset from a timeout; the bound is generous (a loaded two-core
/// CI machine starts processes slowly) and stays below the clients' 5 s timeout.
const RESET_WITHIN: Duration = Duration::from_secs(3);
/// dig queries per blocked name and type.
const DNS_ITERATIONS: usize = 10;

const BLOCKED_NAMES: [&str; 2] = ["blocked.example", "www.blocked.example"];
/// `xblocked.example` ends in `blocked.example` but not on a label boundary: never blocked.
const ALLOWED_NAMES: [&str; 2] = ["allowed.example", "xblocked.example"];

/// The stop-page addresses the DNS answers point at: the appliance's client-side addresses.
const STOP_V4: Ipv4Addr = APPLIANCE_CLIENT_V4;
const STOP_V6: Ipv6Addr = APPLIANCE_CLIENT_V6;
/// The TTL the blocker is told to give its DNS answers.
const DNS_TTL: u32 = 60;

/// Every server name resolves (in the upstream DNS and in Chromium's rules) to the allowed
/// server addresses, so that a block can only come from the name.
const SERVER_V4: Ipv4Addr = ALLOWED_V4;
const SERVER_V6: Ipv6Addr = ALLOWED_V6;

fn is_blocked(name: &str) -> bool {
    BLOCKED_NAMES.contains(&name)
}

fn write_list(lab: &Lab) -> PathBuf {
    let list = lab.dir().join("names.list");
    fs::write(
        &list,
        "# lab_names: one name, with its subdomains\nblocked.example\n",
    )
    .unwrap();
    list
}

fn chromium_rules(addr: IpAddr) -> String {
    TLS_NAMES
        .iter()
        .map(|n| format!("MAP {n} {}", clients_addr(addr)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chromium's host-resolver-rules take IPv6 addresses in brackets.
fn clients_addr(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// Whether `blocker run` has the DNS responder's options.
fn blocker_has_dns_options(binary: &std::path::Path) -> bool {
    let out = std::process::Command::new(binary)
        .args(["run", "--help"])
        .output()
        .expect("blocker run --help");
    let help = String::from_utf8_lossy(&out.stdout);
    [
        "--dns-v4",
        "--dns-v6",
        "--dns-ttl",
        "--dns-nxdomain",
        "--dns-ede",
    ]
    .iter()
    .all(|o| help.contains(o))
}

/// The DNS options of `blocker run` for the stop page, when the binary has them.
fn dns_args(binary: &std::path::Path) -> Vec<String> {
    if !blocker_has_dns_options(binary) {
        return Vec::new();
    }
    vec![
        "--dns-v4".into(),
        STOP_V4.to_string(),
        "--dns-v6".into(),
        STOP_V6.to_string(),
        "--dns-ttl".into(),
        DNS_TTL.to_string(),
        "--dns-ede".into(),
        "blocked".into(),
    ]
}

fn start_blocker(lab: &Lab, binary: &std::path::Path, extra: &[String]) -> Blocker {
    let list = write_list(lab);
    let mut args = vec!["--list".to_string(), list.to_string_lossy().into_owned()];
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.start_blocker(binary, APPLIANCE_CLIENT_IF, &args)
        .expect("starting the blocker")
}

// ---------------------------------------------------------------------------------------------
// TLS: Chromium, curl, openssl s_client.

/// Tallies outcomes per (client, name) for the report.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<(String, String), BTreeMap<String, usize>>,
    /// Total and longest time per (client, name).
    times: BTreeMap<(String, String), (Duration, Duration)>,
    problems: Vec<String>,
    /// Client runs to blocked names (each opens at least one connection).
    blocked_attempts: u64,
}

impl Tally {
    fn record(
        &mut self,
        client: &str,
        name: &str,
        addr: IpAddr,
        attempt: &Attempt,
        ok: bool,
        why: &str,
    ) {
        *self
            .outcomes
            .entry((client.to_string(), name.to_string()))
            .or_default()
            .entry(attempt.outcome.to_string())
            .or_default() += 1;
        let t = self
            .times
            .entry((client.to_string(), name.to_string()))
            .or_default();
        t.0 += attempt.elapsed;
        t.1 = t.1.max(attempt.elapsed);
        if is_blocked(name) {
            self.blocked_attempts += 1;
        }
        if !ok {
            self.problems.push(format!(
                "{client} {name} at {addr}: {attempt}; expected {why}"
            ));
        }
    }

    fn report(&self) -> String {
        let mut s = String::new();
        for ((client, name), outcomes) in &self.outcomes {
            let list: Vec<String> = outcomes.iter().map(|(o, n)| format!("{n}× {o}")).collect();
            let runs: usize = outcomes.values().sum();
            let (total, longest) = self.times[&(client.clone(), name.clone())];
            let _ = writeln!(
                s,
                "  {client:<9} {name:<20} {:<28} mean {:>4} ms, max {:>4} ms",
                list.join(", "),
                (total / runs.max(1) as u32).as_millis(),
                longest.as_millis()
            );
        }
        s
    }
}

/// Checks one blocked attempt against the server log: no handshake and no request for `name`
/// since `mark`.
fn server_saw_name(tls: &TlsServer, mark: usize, name: &str) -> bool {
    tls.events_since(mark).iter().any(|e| match e {
        TlsEvent::Handshake { sni, .. } | TlsEvent::Request { sni, .. } => sni == name,
        TlsEvent::HandshakeFailed { .. } => false,
    })
}

fn check_curl_and_s_client(lab: &Lab, tls: &TlsServer, tally: &mut Tally) {
    for i in 0..TLS_ITERATIONS {
        for addr in [IpAddr::V4(SERVER_V4), IpAddr::V6(SERVER_V6)] {
            for name in BLOCKED_NAMES.iter().chain(&ALLOWED_NAMES) {
                let blocked = is_blocked(name);
                // curl
                let mark = tls.mark();
                let a = curl_https(lab, name, addr);
                let (ok, why) = if blocked {
                    let ok = a.outcome == Outcome::Reset
                        && a.elapsed < RESET_WITHIN
                        && !server_saw_name(tls, mark, name);
                    (
                        ok,
                        format!("a reset within {RESET_WITHIN:?}, nothing at the server"),
                    )
                } else {
                    (a.outcome == Outcome::Http(200), "HTTP 200".to_string())
                };
                tally.record("curl", name, addr, &a, ok, &format!("{why} (run {i})"));

                // openssl s_client
                let mark = tls.mark();
                let a = openssl_s_client(lab, name, addr);
                let (ok, why) = if blocked {
                    let ok = a.outcome == Outcome::Reset
                        && a.elapsed < RESET_WITHIN
                        && !server_saw_name(tls, mark, name);
                    (
                        ok,
                        format!("a reset within {RESET_WITHIN:?}, no handshake at the server"),
                    )
                } else {
                    (
                        a.outcome == Outcome::Handshake,
                        "a completed handshake".to_string(),
                    )
                };
                tally.record("s_client", name, addr, &a, ok, &format!("{why} (run {i})"));
            }
        }
    }
}

/// Chromium loads each name once per run, the four names side by side (one browser each, in
/// parallel: a browser's start-up is most of a load's time). The server log is per name, so
/// the loads of one run cannot be mistaken for one another.
fn check_chromium(lab: &Lab, tls: &TlsServer, tally: &mut Tally) {
    for i in 0..CHROMIUM_ITERATIONS {
        let addr = if i % 2 == 0 {
            IpAddr::V4(SERVER_V4)
        } else {
            IpAddr::V6(SERVER_V6)
        };
        let rules = chromium_rules(addr);
        let mark = tls.mark();
        let names: Vec<&str> = BLOCKED_NAMES
            .iter()
            .chain(&ALLOWED_NAMES)
            .copied()
            .collect();
        let pages: Vec<ChromiumPage> = thread::scope(|scope| {
            let loads: Vec<_> = names
                .iter()
                .map(|name| {
                    let rules = &rules;
                    scope.spawn(move || {
                        chromium_fetch(lab, &format!("https://{name}/"), rules)
                            .expect("running chromium")
                    })
                })
                .collect();
            loads
                .into_iter()
                .map(|l| l.join().expect("a chromium thread"))
                .collect()
        });
        let events = tls.events_since(mark);
        for (name, page) in names.iter().zip(&pages) {
            let a = page.attempt();
            let seen = events.iter().any(|e| match e {
                TlsEvent::Handshake { sni, .. } | TlsEvent::Request { sni, .. } => sni == name,
                TlsEvent::HandshakeFailed { .. } => false,
            });
            let (ok, why) = if is_blocked(name) {
                // Never loads: Chromium reports the reset, and the server never completed a
                // handshake or answered a request for the name.
                let ok = a.outcome == Outcome::Reset && !page.dom.contains(TLS_BODY) && !seen;
                (ok, "net::ERR_CONNECTION_RESET, nothing at the server")
            } else {
                let expected_text = format!("{TLS_BODY} {name}");
                let ok = a.outcome == Outcome::Loaded
                    && page.dom.contains(&expected_text)
                    && events.iter().any(
                        |e| matches!(e, TlsEvent::Request { sni, status: 200, .. } if sni == name),
                    );
                (ok, "the server's page, and its request in the server log")
            };
            let why = if ok {
                format!("{why} (run {i})")
            } else {
                format!("{why} (run {i}); chromium log: {}", page.log.trim())
            };
            tally.record("chromium", name, addr, &a, ok, &why);
        }
    }
}

/// One client's ClientHello as it crossed `c0`.
#[derive(Debug, Clone)]
struct HelloSeen {
    /// TLS record header + handshake message (first record only).
    size: usize,
    /// TCP segments (distinct sequence numbers) that carried it.
    segments: usize,
    /// Payload of the first of them.
    first_segment: usize,
    /// Offset of the server name's first byte from the start of the stream, if found.
    name_at: Option<usize>,
    name: Option<String>,
}

/// Source address, source port, destination address of a client-to-443 flow.
type Flow = (IpAddr, u16, IpAddr);

/// Reassembles each client-to-443 flow's first bytes from a capture of `c0`'s egress and reads
/// the ClientHello's size, segmentation and the server name's offset.
/// The ClientHellos in a capture of the client's egress, and the client ports that opened a
/// second connection to the server (a SYN with another sequence number on the same addresses
/// and ports; only the last connection's hello is read for such a port). A reused port is
/// what a reset kept for an earlier connection would hit, so a failure reports them.
fn client_hellos(frames: &[CapturedFrame]) -> (Vec<HelloSeen>, Vec<u16>) {
    // flow (src, sport, dst) -> (seq, payload) in capture order.
    let mut flows: BTreeMap<Flow, Vec<(u32, Vec<u8>)>> = BTreeMap::new();
    let mut isn: BTreeMap<Flow, u32> = BTreeMap::new();
    let mut reused = std::collections::BTreeSet::new();
    for f in frames {
        let Ok(p) = SlicedPacket::from_ethernet(&f.data) else {
            continue;
        };
        let (src, dst) = match p.net.as_ref() {
            Some(NetSlice::Ipv4(v4)) => (
                IpAddr::from(v4.header().source_addr()),
                IpAddr::from(v4.header().destination_addr()),
            ),
            Some(NetSlice::Ipv6(v6)) => (
                IpAddr::from(v6.header().source_addr()),
                IpAddr::from(v6.header().destination_addr()),
            ),
            _ => continue,
        };
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            continue;
        };
        if t.destination_port() != 443 {
            continue;
        }
        let key = (src, t.source_port(), dst);
        if t.syn() {
            let start = t.sequence_number().wrapping_add(1);
            if isn.insert(key, start).is_some_and(|earlier| earlier != start) {
                reused.insert(key.1);
            }
            continue;
        }
        if !t.payload().is_empty() {
            flows
                .entry(key)
                .or_default()
                .push((t.sequence_number(), t.payload().to_vec()));
        }
    }
    let mut seen = Vec::new();
    for (key, segments) in flows {
        let Some(&start) = isn.get(&key) else {
            continue;
        };
        // The stream from `start`, first copy of each byte wins.
        let mut stream: Vec<Option<u8>> = Vec::new();
        let mut first = None;
        let mut carrying = std::collections::BTreeSet::new();
        for (seq, payload) in &segments {
            let off = seq.wrapping_sub(start) as usize;
            if off > 1 << 16 {
                continue;
            }
            if off == 0 && first.is_none() {
                first = Some(payload.len());
            }
            if stream.len() < off + payload.len() {
                stream.resize(off + payload.len(), None);
            }
            for (i, b) in payload.iter().enumerate() {
                stream[off + i].get_or_insert(*b);
            }
            carrying.insert(off);
        }
        let bytes: Vec<u8> = stream.iter().map_while(|b| *b).collect();
        if bytes.len() < 5 || bytes[0] != 0x16 {
            continue;
        }
        let size = 5 + u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
        let segments = carrying.iter().filter(|&&off| off < size).count();
        let (name_at, name) = sni_offset(&bytes).unzip();
        seen.push(HelloSeen {
            size,
            segments,
            first_segment: first.unwrap_or(0),
            name_at,
            name,
        });
    }
    (seen, reused.into_iter().collect())
}

/// Offset and text of the server name in a ClientHello stream (one record).
fn sni_offset(b: &[u8]) -> Option<(usize, String)> {
    let u16_at = |i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize);
    // record header 5, handshake header 4, version 2, random 32
    let mut i = 5 + 4 + 2 + 32;
    i += 1 + *b.get(i)? as usize; // session id
    i += 2 + u16_at(i)?; // cipher suites
    i += 1 + *b.get(i)? as usize; // compression methods
    let end = i + 2 + u16_at(i)?;
    i += 2;
    while i + 4 <= end {
        let (ty, len) = (u16_at(i)?, u16_at(i + 2)?);
        if ty == 0 {
            // list length 2, name type 1, name length 2, name
            let n = u16_at(i + 7)?;
            let at = i + 9;
            return Some((at, String::from_utf8_lossy(b.get(at..at + n)?).into_owned()));
        }
        i += 4 + len;
    }
    None
}

fn describe_hellos(hellos: &[HelloSeen]) -> String {
    let sizes: Vec<usize> = hellos.iter().map(|h| h.size).collect();
    let split = hellos.iter().filter(|h| h.segments > 1).count();
    let name_later = hellos
        .iter()
        .filter(|h| h.segments > 1 && h.name_at.is_some_and(|at| at >= h.first_segment))
        .count();
    // The name not complete in the first segment: starts there and ends in a later one.
    let straddling = hellos
        .iter()
        .filter(|h| {
            h.segments > 1
                && h.name_at.is_some_and(|at| {
                    at < h.first_segment
                        && at + h.name.as_ref().map_or(0, String::len) > h.first_segment
                })
        })
        .count();
    let names: std::collections::BTreeSet<&str> =
        hellos.iter().filter_map(|h| h.name.as_deref()).collect();
    format!(
        "{} ClientHellos, {}–{} bytes, {split} in more than one segment, the name in a later \
         segment in {name_later}, straddling the boundary in {straddling}; names {names:?}; (size, segments, first segment, name offset): {:?}",
        hellos.len(),
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0),
        hellos
            .iter()
            .map(|h| (h.size, h.segments, h.first_segment, h.name_at.unwrap_or(0)))
            .collect::<Vec<_>>()
    )
}

fn check_tls(offloads: bool) {
    let started = Instant::now();
    let binary = blocker_binary().expect("the blocker binary");
    let lab = Lab::create(LabOptions {
        offloads,
        ..Default::default()
    })
    .expect("creating the lab");
    let tls = TlsServer::start(&lab).expect("starting the TLS server");
    let blocker = start_blocker(&lab, &binary, &[]);

    let mut tally = Tally::default();
    check_curl_and_s_client(&lab, &tls, &mut tally);
    let after_cli = started.elapsed();

    // Chromium's ClientHellos as they left the client: the capture is of c0's egress, which is
    // exactly what a0 (and the XDP program) receives.
    let capture = lab
        .start_capture(
            Node::Client,
            CLIENT_IF,
            Direction::Out,
            "chromium-443.pcap",
            &["tcp", "dst", "port", "443"],
        )
        .expect("capture on c0");
    check_chromium(&lab, &tls, &mut tally);
    thread::sleep(Duration::from_millis(200));
    let capture = capture.stop().expect("stopping the capture");
    let (hellos, reused_ports) = client_hellos(&capture.frames);

    let exit = blocker.stop().expect("stopping the blocker");
    let counters = exit.counters;
    eprintln!(
        "offloads {offloads}: {:?} in all ({after_cli:?} for curl and s_client)\noutcomes:\n{}\
         chromium: {}; client ports used for a second connection: {reused_ports:?}\nblocker counters:\n{counters}",
        started.elapsed(),
        tally.report(),
        describe_hellos(&hellos),
    );

    assert!(
        tally.problems.is_empty(),
        "offloads {offloads}: {} of the client runs went wrong:\n{}\n\noutcomes:\n{}\
         Chromium's client ports used for a second connection: {reused_ports:?}\n\
         blocker counters:\n{counters}\nTLS server log (tail):\n{}",
        tally.problems.len(),
        tally.problems.join("\n"),
        tally.report(),
        tls.log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The server never completed a handshake for a blocked name, and did for every allowed
    // one, every time.
    for name in BLOCKED_NAMES {
        assert_eq!(
            tls.handshakes_for(name),
            0,
            "handshakes for {name}:\n{}",
            tls.log()
        );
        assert_eq!(
            tls.requests_for(name),
            0,
            "requests for {name}:\n{}",
            tls.log()
        );
    }
    for name in ALLOWED_NAMES {
        // curl and s_client over both families, Chromium once per run.
        let at_least = 2 * 2 * TLS_ITERATIONS + CHROMIUM_ITERATIONS;
        assert!(
            tls.handshakes_for(name) >= at_least,
            "{} handshakes for {name}, expected at least {at_least}",
            tls.handshakes_for(name)
        );
    }

    // Counters: one reset per blocked connection at least.
    let resets = counters.packets("sni", "tcp_reset");
    assert!(
        resets >= tally.blocked_attempts,
        "offloads {offloads}: (sni, tcp_reset) = {resets} for {} client runs to blocked names:\n{counters}",
        tally.blocked_attempts
    );
    for reason in ["tls_unparsed", "tls_out_of_order", "malformed", "internal"] {
        for (r, a, cell) in counters.cells() {
            assert!(
                r != reason,
                "offloads {offloads}: ({r}, {a}) = {} packets:\n{counters}",
                cell.packets
            );
        }
    }

    // Chromium's ClientHellos and what the program made of them.
    assert!(
        !hellos.is_empty(),
        "no ClientHello in the capture of c0 ({} frames)",
        capture.frames.len()
    );
    if !offloads {
        // A real wire: the ~2 KB ClientHello crosses as two segments, and the program read a
        // name that was not complete in the first (tls_pending).
        assert!(
            hellos.iter().any(|h| h.segments > 1),
            "offloads off, but no ClientHello crossed in more than one segment: {}",
            describe_hellos(&hellos)
        );
        assert!(
            counters.packets("tls_pending", "pass") > 0,
            "offloads off: no (tls_pending, pass) although Chromium's ClientHellos crossed in \
             several segments ({}):\n{counters}",
            describe_hellos(&hellos)
        );
    }
    lab.teardown().expect("lab teardown");
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn tls_names_offloads_off() {
    check_tls(false);
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn tls_names_offloads_on() {
    check_tls(true);
}

// ---------------------------------------------------------------------------------------------
// DNS: dig and the glibc resolver.

fn require_dns_options(binary: &std::path::Path) {
    assert!(
        blocker_has_dns_options(binary),
        "`{} run --help` has no --dns-v4/--dns-v6/--dns-ttl/--dns-nxdomain/--dns-ede: the DNS \
         responder's options are not in this blocker yet",
        binary.display()
    );
}

fn dig_reply(lab: &Lab, name: &str, qtype: &str, extra: &[&str]) -> (DigReply, String) {
    let out = dig(lab, name, qtype, extra);
    (DigReply::parse(&out), out)
}

fn check_dns(offloads: bool) {
    let binary = blocker_binary().expect("the blocker binary");
    require_dns_options(&binary);
    let lab = Lab::create(LabOptions {
        offloads,
        ..Default::default()
    })
    .expect("creating the lab");
    let dns = DnsServer::start(&lab).expect("starting the DNS server");

    // Before the blocker: the lab's DNS answers every name with the real server addresses.
    for name in BLOCKED_NAMES.iter().chain(&ALLOWED_NAMES) {
        let (r, out) = dig_reply(&lab, name, "A", &[]);
        assert_eq!(
            r.addresses,
            [IpAddr::V4(SERVER_V4)],
            "no blocker, {name}:\n{out}"
        );
    }

    let blocker = start_blocker(&lab, &binary, &dns_args(&binary));
    let mut problems = Vec::new();
    let server6 = format!("@{INTERNET_V6}");
    for i in 0..DNS_ITERATIONS {
        for name in BLOCKED_NAMES {
            for (qtype, stop, server) in [
                ("A", IpAddr::V4(STOP_V4), None),
                ("AAAA", IpAddr::V6(STOP_V6), None),
                ("A", IpAddr::V4(STOP_V4), Some(server6.as_str())),
            ] {
                let extra: Vec<&str> = server.into_iter().collect();
                let (r, out) = dig_reply(&lab, name, qtype, &extra);
                let ok = r.status.as_deref() == Some("NOERROR")
                    && r.addresses == [stop]
                    && r.ttls == [DNS_TTL]
                    && r.ede
                        .as_deref()
                        .is_some_and(|e| e.starts_with("15 (Blocked)"));
                if !ok {
                    problems.push(format!(
                        "run {i}: dig {} {name} {qtype}: expected {stop} TTL {DNS_TTL} with EDE \
                         15 (Blocked), got {r:?}\n{out}",
                        server.unwrap_or("@198.51.100.2")
                    ));
                }
            }
        }
    }
    // No EDNS in the query: the same answer, no OPT record.
    let (r, out) = dig_reply(&lab, "blocked.example", "A", &["+noedns"]);
    if !(r.addresses == [IpAddr::V4(STOP_V4)] && !r.edns && r.ede.is_none()) {
        problems.push(format!("dig +noedns blocked.example A: {r:?}\n{out}"));
    }
    // An EDNS option of the client's own (here a cookie) still gets the extended error.
    let (r, out) = dig_reply(
        &lab,
        "blocked.example",
        "A",
        &["+ednsopt=10:0102030405060708"],
    );
    if !(r.addresses == [IpAddr::V4(STOP_V4)]
        && r.ede
            .as_deref()
            .is_some_and(|e| e.starts_with("15 (Blocked)")))
    {
        problems.push(format!("dig +ednsopt blocked.example A: {r:?}\n{out}"));
    }
    // Other types of a listed name: NODATA.
    let (r, out) = dig_reply(&lab, "blocked.example", "TXT", &[]);
    if !(r.status.as_deref() == Some("NOERROR") && r.addresses.is_empty() && r.ttls.is_empty()) {
        problems.push(format!(
            "dig blocked.example TXT: expected NODATA, got {r:?}\n{out}"
        ));
    }
    // Unlisted names, including the label-boundary decoy, reach the real server.
    for name in ALLOWED_NAMES {
        for (qtype, real) in [
            ("A", IpAddr::V4(SERVER_V4)),
            ("AAAA", IpAddr::V6(SERVER_V6)),
        ] {
            let (r, out) = dig_reply(&lab, name, qtype, &[]);
            if !(r.status.as_deref() == Some("NOERROR") && r.addresses == [real] && r.ede.is_none())
            {
                problems.push(format!(
                    "dig {name} {qtype}: expected {real}, got {r:?}\n{out}"
                ));
            }
        }
    }
    // The glibc resolver (resolv.conf of the client namespace, with edns0).
    for name in BLOCKED_NAMES {
        let v4 = getent(&lab, "ahostsv4", name);
        let v6 = getent(&lab, "ahostsv6", name);
        let any = getent_hosts(&lab, name);
        if v4 != [IpAddr::V4(STOP_V4)]
            || v6 != [IpAddr::V6(STOP_V6)]
            || !matches!(any, Some(a) if a == IpAddr::V4(STOP_V4) || a == IpAddr::V6(STOP_V6))
        {
            problems.push(format!(
                "getent {name}: ahostsv4 {v4:?}, ahostsv6 {v6:?}, hosts {any:?}; expected the stop page"
            ));
        }
    }
    for name in ALLOWED_NAMES {
        let v4 = getent(&lab, "ahostsv4", name);
        let any = getent_hosts(&lab, name);
        if v4 != [IpAddr::V4(SERVER_V4)]
            || !matches!(any, Some(a) if a == IpAddr::V4(SERVER_V4) || a == IpAddr::V6(SERVER_V6))
        {
            problems.push(format!(
                "getent {name}: ahostsv4 {v4:?}, hosts {any:?}; expected the server"
            ));
        }
    }
    let exit = blocker.stop().expect("stopping the blocker");
    let counters = exit.counters;
    eprintln!("offloads {offloads}: DNS, blocker counters:\n{counters}");
    // The appliance answered the listed names itself: none of the queries asked while it ran
    // reached the server (each blocked name was asked once, for A, before it started).
    for name in BLOCKED_NAMES {
        let reached = dns.queries_for(name);
        if reached != 1 {
            problems.push(format!(
                "{} queries for {name} reached the server while the blocker ran",
                reached.saturating_sub(1)
            ));
        }
    }
    if dns.queries_for("allowed.example") <= 1 {
        problems.push("no query for allowed.example reached the server".into());
    }
    let answers = counters.packets("dns_name", "dns_answer");
    let wanted = (DNS_ITERATIONS * BLOCKED_NAMES.len() * 3) as u64;
    if answers < wanted {
        problems.push(format!(
            "(dns_name, dns_answer) = {answers}, expected at least {wanted}"
        ));
    }
    for (r, a, cell) in counters.cells() {
        if r == "dns_unparsed" || r == "malformed" || (r == "dns_name" && a == "drop") {
            problems.push(format!("({r}, {a}) = {} packets", cell.packets));
        }
    }
    let mut report = vec![format!("answers:\n{counters}")];

    // NXDOMAIN by configuration, with the other extended error code.
    let mut args = dns_args(&binary);
    // Replace `--dns-ede blocked` by `--dns-ede filtered`.
    if let Some(i) = args.iter().position(|a| a == "--dns-ede") {
        args.drain(i..i + 2);
    }
    args.extend([
        "--dns-nxdomain".to_string(),
        "--dns-ede".into(),
        "filtered".into(),
    ]);
    let blocker = start_blocker(&lab, &binary, &args);
    for name in BLOCKED_NAMES {
        for qtype in ["A", "AAAA"] {
            let (r, out) = dig_reply(&lab, name, qtype, &[]);
            if !(r.status.as_deref() == Some("NXDOMAIN")
                && r.addresses.is_empty()
                && r.ede
                    .as_deref()
                    .is_some_and(|e| e.starts_with("17 (Filtered)")))
            {
                problems.push(format!(
                    "--dns-nxdomain: dig {name} {qtype}: expected NXDOMAIN with EDE 17 (Filtered), got {r:?}\n{out}"
                ));
            }
        }
        if let Some(a) = getent_hosts(&lab, name) {
            problems.push(format!(
                "--dns-nxdomain: getent hosts {name} resolved to {a}"
            ));
        }
    }
    let (r, out) = dig_reply(&lab, "allowed.example", "A", &[]);
    if r.addresses != [IpAddr::V4(SERVER_V4)] {
        problems.push(format!(
            "--dns-nxdomain: dig allowed.example A: {r:?}\n{out}"
        ));
    }
    let exit = blocker.stop().expect("stopping the blocker");
    report.push(format!("NXDOMAIN:\n{}", exit.counters));
    assert!(
        problems.is_empty(),
        "offloads {offloads}: {} DNS checks went wrong:\n{}\nblocker counters, {}\nDNS server log:\n{}",
        problems.len(),
        problems.join("\n"),
        report.join("\n"),
        dns.log()
    );
    drop(dns);
    lab.teardown().expect("lab teardown");
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn dns_names_offloads_off() {
    check_dns(false);
}

#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn dns_names_offloads_on() {
    check_dns(true);
}

/// The lab's own servers and clients, with no XDP program: every lab name resolves (dig and
/// glibc through the client namespace's resolv.conf) and loads (curl, s_client, Chromium); the
/// resolver files are gone after the server is dropped.
#[test]
#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]
fn lab_clients_without_blocker() {
    let lab = Lab::create(LabOptions {
        offloads: false,
        ..Default::default()
    })
    .expect("creating the lab");
    let tls = TlsServer::start(&lab).expect("starting the TLS server");
    let dns = DnsServer::start(&lab).expect("starting the DNS server");
    let etc = std::path::Path::new("/etc/netns").join(lab.ns_name(Node::Client));
    assert!(etc.join("resolv.conf").is_file());
    for name in TLS_NAMES {
        let (r, out) = dig_reply(&lab, name, "AAAA", &[]);
        assert_eq!(r.addresses, [IpAddr::V6(SERVER_V6)], "{out}");
        assert!(r.edns && r.ede.is_none(), "{out}");
        assert_eq!(
            getent(&lab, "ahostsv4", name),
            [IpAddr::V4(SERVER_V4)],
            "getent {name}"
        );
        // curl resolving through glibc, not --resolve.
        let out = lab.exec_timeout(
            Node::Client,
            &[
                "curl",
                "-sk",
                "--noproxy",
                "*",
                "-4",
                "--max-time",
                "5",
                &format!("https://{name}/"),
            ],
            Duration::from_secs(8),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("{TLS_BODY} {name}")),
            "curl https://{name}/ through the lab's DNS: {out:?}"
        );
        let a = curl_https(&lab, name, IpAddr::V6(SERVER_V6));
        assert_eq!(a.outcome, Outcome::Http(200), "curl {name}: {a}");
        let a = openssl_s_client(&lab, name, IpAddr::V4(SERVER_V4));
        assert_eq!(a.outcome, Outcome::Handshake, "s_client {name}: {a}");
    }
    let page = chromium_fetch(
        &lab,
        "https://www.blocked.example/",
        &chromium_rules(IpAddr::V4(SERVER_V4)),
    )
    .unwrap();
    assert_eq!(page.outcome(), Outcome::Loaded, "{page:?}");
    assert_eq!(
        dig_reply(&lab, "missing.example", "A", &[])
            .0
            .status
            .as_deref(),
        Some("NXDOMAIN")
    );
    assert!(tls.handshakes_for("www.blocked.example") >= 2);
    drop(dns);
    assert!(!etc.exists(), "{} left behind", etc.display());
    lab.teardown().expect("lab teardown");
}
