//! The control socket in the lab (issue 6, "Show"): every CLI command of a running daemon,
//! driven through its socket, as an operator would, with and without `--json`, and checked
//! against real traffic from the client.

mod support;

use std::{fs, time::Duration};

use blocker_tests::lab::*;
use serde_json::Value;
use support::control::Cli;

/// One sample of `/metrics` scraped in the appliance namespace, by its exact series name.
fn scrape(lab: &Lab) -> String {
    lab.exec_ok(Node::Appliance, &["curl", "-sS", "--max-time", "5", &format!("http://{METRICS}/metrics")]).unwrap()
}

fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

const METRICS: &str = "127.0.0.1:9464";

fn cell(stats: &Value, reason: &str, action: &str) -> u64 {
    stats["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason"] == reason && c["action"] == action)
        .map(|c| c["packets"].as_u64().unwrap())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs root"]
fn every_command_works_through_the_control_socket() {
    let mut lab = Lab::create(LabOptions::default()).unwrap();
    lab.start_http_server().unwrap();
    let list = lab.dir().join("block.list");
    fs::write(&list, format!("{BLOCKED_V4}\nblocked.example\n")).unwrap();
    let trial = lab.dir().join("trial.list");
    fs::write(&trial, format!("{BLOCKED_V6}\n")).unwrap();
    let config = lab.dir().join("blocker.toml");
    fs::write(
        &config,
        format!(
            "state_dir = {:?}\ncontrol_socket = {:?}\n[guards]\nmax_change_ratio = 10.0\n\
             [[list]]\nname = \"main\"\nsource = {list:?}\n\
             [[list]]\nname = \"trial\"\nsource = {trial:?}\nshadow = true\n",
            lab.dir().join("state"),
            lab.dir().join("control.sock")
        ),
    )
    .unwrap();
    let cli = Cli::for_lab(&lab);
    let c = config.to_string_lossy().into_owned();
    let blocker = lab.start_blocker(&cli.binary, APPLIANCE_CLIENT_IF, &["--config", &c, "--metrics", METRICS]).unwrap();

    // The configuration's control_socket, found by the client commands through --config.
    let b = cli.binary.to_string_lossy();
    let with_config: [&[&str]; 5] = [
        &["status", "--config", &c],
        &["stats", "--config", &c],
        &["lists", "show", "--config", &c],
        &["lists", "--config", &c, "show"],
        &["lookup", "blocked.example", "--config", &c],
    ];
    for args in with_config {
        let mut argv = vec![&*b];
        argv.extend_from_slice(args);
        let out = lab.exec_timeout(Node::Appliance, &argv, Duration::from_secs(60));
        assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = lab.exec_timeout(Node::Appliance, &[&*b, "status"], Duration::from_secs(60));
    assert!(!out.status.success(), "without --config the default socket has no daemon");
    let before = scrape(&lab);

    // status
    let (ok, text) = cli.run(&lab, &["status"]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("router on {APPLIANCE_CLIENT_IF} (native XDP)")), "{text}");
    assert!(text.contains("bypass:      off"), "{text}");
    let status = cli.json(&lab, &["status"]);
    assert_eq!((status["generation"].as_u64(), status["entries"].as_u64(), status["lists"].as_u64()), (Some(1), Some(3), Some(2)));

    // traffic, then stats
    assert_eq!(lab.http_get(Node::Client, BLOCKED_V4.into()), HttpOutcome::Reset);
    assert_eq!(lab.http_get(Node::Client, BLOCKED_V6.into()), HttpOutcome::Status(200), "a shadow list blocks nothing");
    assert_eq!(lab.http_get(Node::Client, ALLOWED_V4.into()), HttpOutcome::Status(200));
    let stats = cli.json(&lab, &["stats"]);
    assert!(cell(&stats, "dst_v4", "tcp_reset") >= 1, "{stats}");
    assert!(cell(&stats, "dst_v6", "shadow") >= 1, "{stats}");
    assert!(cell(&stats, "no_match", "pass") >= 1, "{stats}");
    let lists = stats["lists"].as_array().unwrap();
    assert!(lists[0]["list"] == "main" && lists[0]["packets"].as_u64().unwrap() >= 1, "{stats}");
    assert!(lists[1]["shadow"] == true && lists[1]["packets"].as_u64().unwrap() >= 1, "{stats}");
    let (_, text) = cli.run(&lab, &["stats"]);
    assert!(text.contains("tcp_reset") && text.contains("(shadow)"), "{text}");
    assert!(!text.contains(&BLOCKED_V4.to_string()), "stats carry no addresses: {text}");

    // metrics: the counters moved with the traffic, and carry no subscriber or list data.
    let after = scrape(&lab);
    let resets = r#"blocker_packets_total{action="tcp_reset",reason="dst_v4"}"#;
    let before_resets = before.lines().any(|l| l.starts_with(resets)).then(|| sample(&before, resets)).unwrap_or(0.0);
    assert!(sample(&after, resets) > before_resets, "{after}");
    assert!(sample(&after, r#"blocker_packets_total{action="shadow",reason="dst_v6"}"#) >= 1.0, "{after}");
    assert_eq!(sample(&after, r#"blocker_list_entries{list="main",shadow="false"}"#), 2.0);
    assert!(sample(&after, r#"blocker_list_hits_total{list="trial",shadow="true"}"#) >= 1.0);
    assert_eq!(sample(&after, "blocker_generation"), 1.0);
    assert_eq!(sample(&after, "blocker_bypass"), 0.0);
    assert_eq!(sample(&after, r#"blocker_attach_mode{mode="native"}"#), 1.0);
    for secret in [BLOCKED_V4.to_string(), CLIENT_V4.to_string(), "blocked.example".into()] {
        assert!(!after.contains(&secret), "metrics must not carry {secret}");
    }

    // lookup, against the live lists
    let (ok, text) = cli.run(&lab, &["lookup", "www.blocked.example", "xblocked.example"]);
    assert!(ok, "{text}");
    assert!(text.contains("www.blocked.example: blocked"), "{text}");
    assert!(text.contains("xblocked.example: not listed"), "{text}");
    let l = cli.json(&lab, &["lookup", &BLOCKED_V6.to_string()]);
    assert_eq!(l["verdict"], "shadowed", "{l}");

    // bypass
    let (ok, text) = cli.run(&lab, &["bypass", "on"]);
    assert!(ok, "{text}");
    assert_eq!(lab.http_get(Node::Client, BLOCKED_V4.into()), HttpOutcome::Status(200), "bypass lets everything through");
    assert_eq!(cli.json(&lab, &["status"])["bypass"], true);
    assert_eq!(sample(&scrape(&lab), "blocker_bypass"), 1.0);
    cli.run(&lab, &["bypass", "off"]);
    assert_eq!(lab.http_get(Node::Client, BLOCKED_V4.into()), HttpOutcome::Reset);

    // lists: show, diff, reload, rollback
    let show = cli.json(&lab, &["lists", "show"]);
    assert_eq!(show["result"]["lists"][1]["shadow"], true);
    fs::write(&list, format!("{BLOCKED_V4}\nblocked.example\n{ALLOWED_V6}\n")).unwrap();
    let (ok, text) = cli.run(&lab, &["lists", "diff"]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("+ {ALLOWED_V6}/128")), "{text}");
    assert_eq!(lab.http_get(Node::Client, ALLOWED_V6.into()), HttpOutcome::Status(200), "diff installs nothing");
    let (ok, text) = cli.run(&lab, &["lists", "reload", "main"]);
    assert!(ok, "{text}");
    assert!(text.contains("generation 2 is live"), "{text}");
    assert_eq!(lab.http_get(Node::Client, ALLOWED_V6.into()), HttpOutcome::Reset);
    let (ok, text) = cli.run(&lab, &["lists", "rollback"]);
    assert!(ok, "{text}");
    assert_eq!(lab.http_get(Node::Client, ALLOWED_V6.into()), HttpOutcome::Status(200));
    let (ok, text) = cli.run(&lab, &["lists", "reload", "nosuchlist"]);
    assert!(!ok && text.contains("unknown list"), "{text}");

    // SIGHUP reads the configuration again: the trial list is dropped, and its address,
    // counted before, is now not listed at all.
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, &text[..text.find("[[list]]\nname = \"trial\"").unwrap()]).unwrap();
    lab.exec_ok(Node::Appliance, &["kill", "-HUP", &blocker.pid().to_string()]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cli.json(&lab, &["lookup", &BLOCKED_V6.to_string()])["verdict"] != "not_listed" {
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload the configuration");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cli.json(&lab, &["lists", "show"])["result"]["lists"].as_array().unwrap().len(), 1);

    // A stopped daemon: the CLI says so plainly.
    blocker.stop().unwrap();
    let (ok, text) = cli.run(&lab, &["status"]);
    assert!(!ok && text.contains("no blocker daemon is listening"), "{text}");
}

/// The daemon's flow-table upkeep, end to end: a flow blocked by its Host is remembered (one
/// `FLOWS` entry) and forgotten by the second upkeep after it (60 s apart), its count with it.
#[test]
#[ignore = "needs root"]
fn the_daemon_forgets_a_blocked_flow_within_two_upkeeps() {
    let mut lab = Lab::create(LabOptions::default()).unwrap();
    lab.start_http_server().unwrap();
    let list = lab.dir().join("block.list");
    fs::write(&list, "blocked.example\n").unwrap();
    let binary = blocker_binary().unwrap();
    let l = list.to_string_lossy().into_owned();
    let socket = lab.dir().join("control.sock").to_string_lossy().into_owned();
    let _blocker = lab.start_blocker(&binary, APPLIANCE_CLIENT_IF, &["--list", &l, "--socket", &socket, "--metrics", METRICS]).unwrap();

    // A request for a listed Host at an allowed address: reset (no stop page configured), the
    // flow remembered as blocked.
    let url = format!("http://{ALLOWED_V4}/");
    let out = lab.exec_timeout(Node::Client, &["curl", "-sS", "-o", "/dev/null", "--max-time", "5", "-H", "Host: blocked.example", &url], Duration::from_secs(8));
    assert!(!out.status.success(), "the request for blocked.example is reset: {}", String::from_utf8_lossy(&out.stderr));
    let text = scrape(&lab);
    assert!(sample(&text, r#"blocker_packets_total{action="tcp_reset",reason="http_host"}"#) >= 1.0, "{text}");
    assert_eq!(sample(&text, "blocker_flow_entries"), 1.0, "the blocked flow is remembered: {text}");
    assert_eq!(sample(&text, r#"blocker_flow_upkeep_total{event="idle"}"#), 0.0);

    // The first upkeep (60 s after the start) sees it, the second (120 s) forgets it. Polled,
    // bounded at 150 s.
    let start = std::time::Instant::now();
    let text = loop {
        let text = scrape(&lab);
        if sample(&text, "blocker_flow_entries") == 0.0 || start.elapsed() > Duration::from_secs(150) {
            break text;
        }
        std::thread::sleep(Duration::from_secs(5));
    };
    assert_eq!(sample(&text, "blocker_flow_entries"), 0.0, "forgotten within two upkeeps: {text}");
    assert_eq!(sample(&text, r#"blocker_flow_upkeep_total{event="idle"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"blocker_flow_upkeep_total{event="repaired"}"#), 0.0, "{text}");
}
