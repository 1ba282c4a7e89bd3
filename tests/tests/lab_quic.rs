//! QUIC in the lab with a real HTTP/3 server and a real browser (issue 9, "Show"): the lab's
//! h3 server (quinn + h3, `src/bin/h3_server.rs`) on UDP and TCP 443 in the internet
//! namespace, and headless Chromium in the client namespace forced to QUIC for the page's
//! origin (`--origin-to-force-quic-on`, so it never falls back to TCP; see
//! `blocker_tests::lab::chromium`).
//!
//! - Without the blocker every name loads over HTTP/3: the harness really speaks QUIC, so what
//!   the blocker changes is the blocker's doing.
//! - With `blocker run --list` naming `blocked.example`: `blocked.example` and
//!   `www.blocked.example` never complete over QUIC (the browser fails, the server never
//!   completes a QUIC handshake nor answers an h3 request for them), while `allowed.example`
//!   and `xblocked.example` (not on a label boundary of the listed name) load over h3 every
//!   time, over IPv4 and IPv6; the blocker's counters show the dropped datagrams of the blocked
//!   flows (`quic`, `drop`) and the client Initials it read (`quic_pending`).
//!
//! Every name maps (in Chromium's resolver rules) to the same server address, so a block can
//! only come from the name the client's Initial carries. Every browser run is bounded
//! (`QUIC_CHROMIUM_TIMEOUT`), the server has a lifetime, and each test builds its own lab, torn
//! down on drop (also when an assertion fails).

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    thread,
};

use blocker_tests::lab::*;

const BLOCKED_NAMES: [&str; 2] = ["blocked.example", "www.blocked.example"];
/// `xblocked.example` ends in `blocked.example` but not on a label boundary: never blocked.
const ALLOWED_NAMES: [&str; 2] = ["allowed.example", "xblocked.example"];
/// Rounds of page loads with the blocker (each round: every name once, side by side), IPv4
/// then IPv6. A blocked load lasts until the browser is killed (`QUIC_CHROMIUM_TIMEOUT`, see
/// `blocker_tests::lab::chromium`), so a round takes that long.
const ROUNDS: usize = 2;
/// Every name resolves to the allowed server addresses: no address is listed anywhere.
const SERVERS: [IpAddr; 2] = [IpAddr::V4(ALLOWED_V4), IpAddr::V6(ALLOWED_V6)];

fn is_blocked(name: &str) -> bool {
    BLOCKED_NAMES.contains(&name)
}

fn write_list(lab: &Lab) -> PathBuf {
    let list = lab.dir().join("names.list");
    fs::write(
        &list,
        "# lab_quic: one name, with its subdomains\nblocked.example\n",
    )
    .unwrap();
    list
}

fn start_blocker(lab: &Lab, binary: &Path) -> Blocker {
    let list = write_list(lab);
    lab.start_blocker(
        binary,
        APPLIANCE_CLIENT_IF,
        &["--list", &list.to_string_lossy()],
    )
    .expect("starting the blocker")
}

/// Loads every name in `names` once from `addr`, one forced-QUIC browser each, side by side
/// (a browser's start-up is most of an allowed load's time). The server log is per name, so
/// the loads cannot be mistaken for one another.
fn load_all(lab: &Lab, h3: &H3Server, names: &[&str], addr: IpAddr) -> Vec<QuicPage> {
    thread::scope(|scope| {
        let loads: Vec<_> = names
            .iter()
            .map(|name| {
                let load = QuicLoad {
                    name,
                    addr,
                    force_quic: true,
                    spki: h3.spki_sha256(),
                };
                scope.spawn(move || chromium_quic(lab, &load).expect("running chromium"))
            })
            .collect();
        loads
            .into_iter()
            .map(|l| l.join().expect("a chromium thread"))
            .collect()
    })
}

/// Whether the server completed a QUIC handshake or answered an h3 request for `name`.
fn quic_completed(events: &[H3Event], name: &str) -> bool {
    events.iter().any(|e| match e {
        H3Event::QuicHandshake { sni, .. } => sni == name,
        H3Event::Request {
            proto: H3Proto::H3,
            sni,
            ..
        } => sni == name,
        _ => false,
    })
}

/// Whether the server answered an h3 request for `name` with its page.
fn h3_answered(events: &[H3Event], name: &str) -> bool {
    events.iter().any(|e| {
        matches!(e, H3Event::Request { proto: H3Proto::H3, sni, host, status, .. }
            if sni == name && host == name && status == "200")
    })
}

#[test]
#[ignore = "needs root"]
fn without_the_blocker_every_name_loads_over_h3() {
    let lab = Lab::create(LabOptions::default()).expect("creating the lab");
    let h3 = H3Server::start(&lab).expect("starting the h3 server");
    let names: Vec<&str> = BLOCKED_NAMES
        .iter()
        .chain(&ALLOWED_NAMES)
        .copied()
        .collect();
    let mut problems = Vec::new();
    for addr in SERVERS {
        let mark = h3.mark();
        let pages = load_all(&lab, &h3, &names, addr);
        let events = h3.events_since(mark);
        for (name, page) in names.iter().zip(&pages) {
            if !(page.loaded_over_h3(name) && h3_answered(&events, name)) {
                problems.push(format!(
                    "{name} at {addr}: {page}; expected the page over h3 and its h3 request in \
                     the server log; chromium log: {}",
                    page.log.trim()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "without the blocker, forced-QUIC loads failed:\n{}\nserver log:\n{}",
        problems.join("\n"),
        h3.log()
    );
    // Nothing came over TCP: the loads above were QUIC only.
    let tcp = h3
        .events()
        .iter()
        .filter(|e| matches!(e, H3Event::TlsHandshake { .. }))
        .count();
    assert_eq!(tcp, 0, "forced-QUIC loads used TCP:\n{}", h3.log());
}

#[test]
#[ignore = "needs root"]
fn a_listed_name_never_completes_over_quic() {
    let binary = blocker_binary().expect("the blocker binary");
    let lab = Lab::create(LabOptions::default()).expect("creating the lab");
    let h3 = H3Server::start(&lab).expect("starting the h3 server");
    let blocker = start_blocker(&lab, &binary);
    let names: Vec<&str> = BLOCKED_NAMES
        .iter()
        .chain(&ALLOWED_NAMES)
        .copied()
        .collect();

    let mut problems = Vec::new();
    let mut report = Vec::new();
    let mut blocked_loads = 0u64;
    for round in 0..ROUNDS {
        let addr = SERVERS[round % SERVERS.len()];
        let mark = h3.mark();
        let pages = load_all(&lab, &h3, &names, addr);
        let events = h3.events_since(mark);
        for (name, page) in names.iter().zip(&pages) {
            report.push(format!("  round {round} {name:<20} {addr:<16} {page}"));
            if is_blocked(name) {
                blocked_loads += 1;
                // The browser gives up (or is killed at the deadline) without the page, and
                // the server never saw the handshake through: the blocked flow's datagrams
                // after the first Initial never reached it.
                if page.protocol().is_some() || quic_completed(&events, name) {
                    problems.push(format!(
                        "{name} at {addr} (round {round}): {page}; expected no page and no \
                         QUIC handshake at the server"
                    ));
                }
            } else if !(page.loaded_over_h3(name) && h3_answered(&events, name)) {
                problems.push(format!(
                    "{name} at {addr} (round {round}): {page}; expected the page over h3 and \
                     its h3 request in the server log; chromium log: {}",
                    page.log.trim()
                ));
            }
        }
    }
    let exit = blocker.stop().expect("stopping the blocker");
    let counters = &exit.counters;
    assert!(
        problems.is_empty(),
        "with blocked.example listed:\n{}\nall loads:\n{}\nserver log:\n{}\ncounters:\n{counters}",
        problems.join("\n"),
        report.join("\n"),
        h3.log()
    );
    // Whole-run totals for the blocked names, never for the others.
    for name in BLOCKED_NAMES {
        assert_eq!(h3.quic_handshakes_for(name), 0, "{name}:\n{}", h3.log());
        assert_eq!(h3.h3_requests_for(name), 0, "{name}:\n{}", h3.log());
    }
    // Each blocked load's flow had at least one datagram dropped as `quic` (the client's
    // Handshake packets, or its Initial sent again), and every flow's first Initial was read.
    let dropped = counters.packets("quic", "drop");
    assert!(
        dropped >= blocked_loads,
        "{blocked_loads} blocked loads but {dropped} `quic` drops:\n{counters}"
    );
    let read = counters.packets("quic_pending", "pass");
    let loads = (ROUNDS * names.len()) as u64;
    assert!(
        read >= loads,
        "{loads} QUIC flows but {read} client Initials read (`quic_pending`):\n{counters}"
    );
    assert_eq!(
        counters.packets("quic_overload", "pass"),
        0,
        "a handful of flows must not exhaust the copy budget:\n{counters}"
    );
    println!(
        "lab_quic: {loads} forced-QUIC loads\n{}\ncounters:\n{counters}server log:\n{}",
        report.join("\n"),
        h3.log()
    );
}
