//! Restart without a gap (issue 6, "Show"): the release `blocker` pins its program, link and
//! maps; killed with SIGKILL while an allowed stream runs, it leaves blocking in place (the
//! listed server stays reset, the allowed stream loses not a packet); a new daemon adopts the
//! pinned maps and replaces the program on the pinned link (names, read by the program
//! `blocker` tail-calls, stay blocked throughout); a daemon of another build gets
//! fresh maps and still replaces the program in one step; `blocker detach` leaves nothing
//! behind, neither in bpffs nor on the interface.

use std::{
    fs,
    path::PathBuf,
    process::Child,
    time::Duration,
};

use blocker_tests::lab::*;

struct Setup {
    binary: PathBuf,
    args: Vec<String>,
    socket: String,
}

impl Setup {
    fn new(lab: &Lab, pins: &PrivateBpffs) -> Setup {
        let list = lab.dir().join("restart.list");
        fs::write(&list, format!("{BLOCKED_V4}\n{BLOCKED_V6}\n{BLOCKED_NAME}\n")).unwrap();
        let socket = lab.dir().join("control.sock").to_string_lossy().into_owned();
        let args = vec![
            "--list".into(),
            list.to_string_lossy().into_owned(),
            "--state-dir".into(),
            lab.dir().join("state").to_string_lossy().into_owned(),
            "--socket".into(),
            socket.clone(),
            "--pin-dir".into(),
            pins.arg(),
        ];
        Setup { binary: blocker_binary().unwrap(), args, socket }
    }

    /// Starts a daemon and waits for its control socket: with a pinned program already on
    /// the interface, an attached program says nothing about the new daemon being up.
    fn start(&self, lab: &Lab) -> Blocker {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let b = lab.start_blocker(&self.binary, APPLIANCE_CLIENT_IF, &args).unwrap();
        let deadline = std::time::Instant::now() + ATTACH_TIMEOUT;
        while !self.blocker(lab, &["lists", "show", "--socket", &self.socket]).status.success() {
            assert!(std::time::Instant::now() < deadline, "the daemon's control socket did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    fn blocker(&self, lab: &Lab, args: &[&str]) -> std::process::Output {
        let b = self.binary.to_string_lossy();
        let mut argv = vec![&*b];
        argv.extend_from_slice(args);
        lab.exec_timeout(Node::Appliance, &argv, Duration::from_secs(30))
    }
}

fn xdp_attached(lab: &Lab) -> bool {
    lab.wait_for_xdp(Node::Appliance, APPLIANCE_CLIENT_IF, Duration::ZERO).is_ok()
}

const BLOCKED_NAME: &str = "blocked.example";

fn assert_blocking(lab: &Lab) {
    assert_eq!(lab.http_get(Node::Client, BLOCKED_V4.into()), HttpOutcome::Reset, "{BLOCKED_V4} is listed");
    assert_eq!(lab.http_get(Node::Client, BLOCKED_V6.into()), HttpOutcome::Reset, "{BLOCKED_V6} is listed");
    assert_eq!(lab.http_get(Node::Client, ALLOWED_V4.into()), HttpOutcome::Status(200), "{ALLOWED_V4} is not");
    // Names are read by the program `blocker` tail-calls: it must stay in place as well.
    let a = curl_https(lab, BLOCKED_NAME, ALLOWED_V4.into());
    assert_eq!(a.outcome, Outcome::Reset, "https://{BLOCKED_NAME}/ is listed: {a}");
}

/// 1000 pings at 5 ms to the allowed server: about 5 s of traffic across the kill and the
/// restart, bounded by ping's own deadline.
fn allowed_stream(lab: &Lab) -> Child {
    let addr = ALLOWED_V4.to_string();
    lab.spawn(Node::Client, &["ping", "-n", "-q", "-c", "1000", "-i", "0.005", "-w", "30", &addr]).unwrap()
}

fn received(out: &std::process::Output) -> (u32, u32) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("packets transmitted")).unwrap_or_else(|| panic!("ping said: {text}"));
    let n: Vec<u32> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    (n[0], n[1])
}

#[test]
#[ignore = "needs root"]
fn a_killed_daemon_leaves_blocking_in_place_and_a_new_one_adopts_it_without_a_gap() {
    let pins = PrivateBpffs::mount("restart").unwrap();
    let mut lab = Lab::create(LabOptions::default()).unwrap();
    lab.start_http_server().unwrap();
    let _tls = TlsServer::start(&lab).unwrap();
    let setup = Setup::new(&lab, &pins);
    let first = setup.start(&lab);
    assert_blocking(&lab);
    let pinned = pins.entries();
    assert!(pinned.iter().any(|e| e == &format!("link-{APPLIANCE_CLIENT_IF}-native")), "{pinned:?}");
    assert!(pinned.iter().any(|e| e.starts_with("maps-")), "{pinned:?}");

    let stream = allowed_stream(&lab);
    std::thread::sleep(Duration::from_millis(500));
    lab.exec_ok(Node::Appliance, &["kill", "-KILL", &first.pid().to_string()]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(xdp_attached(&lab), "the program stays attached when its daemon dies");
    assert_blocking(&lab);

    let second = setup.start(&lab);
    assert_blocking(&lab);
    let out = stream.wait_with_output().unwrap();
    let (sent, got) = received(&out);
    assert_eq!(got, sent, "the allowed stream lost {} of {sent} packets across the kill and the restart", sent - got);

    let exit = second.stop().unwrap();
    let log = exit.stopped.output();
    assert!(log.contains("adopted the pinned maps"), "{log}");
    assert!(log.contains("replaced the program on the pinned link"), "{log}");
    assert!(log.contains("the program stays attached"), "{log}");
    assert!(xdp_attached(&lab), "a clean stop leaves blocking in place too");
    assert_blocking(&lab);

    // A daemon of another build: its maps directory differs. Pretend the pinned maps came from
    // an older build; the new daemon loads fresh maps, fills them, replaces the program on the
    // same link and unpins the old maps.
    let maps = pins.entries().into_iter().find(|e| e.starts_with("maps-")).unwrap();
    fs::rename(pins.dir.join(&maps), pins.dir.join("maps-0123456789abcdef")).unwrap();
    let third = setup.start(&lab);
    assert_blocking(&lab);
    let log = third.stop().unwrap().stopped.output();
    assert!(!log.contains("adopted the pinned maps"), "another build's maps are not adopted: {log}");
    assert!(log.contains("replaced the program on the pinned link"), "{log}");
    assert!(!pins.entries().contains(&"maps-0123456789abcdef".to_string()), "{:?}", pins.entries());
    assert_blocking(&lab);

    // Pins removed under a running daemon are pinned again, so blocking still outlives it.
    let running = setup.start(&lab);
    fs::remove_dir_all(&pins.dir).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !pins.entries().iter().any(|e| e.starts_with("link-")) {
        assert!(std::time::Instant::now() < deadline, "the daemon did not pin again: {:?}", pins.entries());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    // The QUIC maps too, which the daemon's QUIC thread holds apart from the others.
    let maps = pins.entries().into_iter().find(|e| e.starts_with("maps-")).expect("the maps pinned again");
    let pinned: Vec<String> = fs::read_dir(pins.dir.join(maps)).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    for name in ["CONFIG", "QUIC_CONFIG", "QUIC_VERDICTS", "QUIC_RING"] {
        assert!(pinned.iter().any(|p| p == name), "{name} not pinned again: {pinned:?}");
    }
    let log = running.stop().unwrap().stopped.output();
    assert!(log.contains("pinned again so blocking outlives it"), "{log}");
    assert!(xdp_attached(&lab), "the re-pinned program outlives the daemon");
    assert_blocking(&lab);

    // `detach` refuses while a daemon runs, and otherwise removes everything.
    let running = setup.start(&lab);
    let out = setup.blocker(&lab, &["detach", "--pin-dir", &pins.arg(), "--socket", &setup.socket]);
    assert!(!out.status.success(), "detach must refuse while a daemon runs");
    running.stop().unwrap();
    let out = setup.blocker(&lab, &["detach", "--pin-dir", &pins.arg(), "--socket", &setup.socket]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!pins.dir.exists(), "detach leaves {:?}", pins.entries());
    // The link is released with its last pin: the interface has no program.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!xdp_attached(&lab), "the program is gone from {APPLIANCE_CLIENT_IF}");
    assert_eq!(lab.http_get(Node::Client, BLOCKED_V4.into()), HttpOutcome::Status(200));
}
