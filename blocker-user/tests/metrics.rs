//! Metrics endpoint over loopback TCP (no root): scrapes with a plain HTTP/1.1 client, counters
//! that move between scrapes, status codes, the bounds against slow, large and numerous clients,
//! and the Grafana dashboard's queries against the metric names the renderer produces.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use blocker_user::metrics::{
    CounterCell, FlowPressure, ListMetrics, MapFill, MetricsError, MetricsLimits, MetricsServer, ProcessStats,
    Snapshot, SnapshotSource, UpdateCount, render,
};

/// Bound on any single wait in these tests.
const WAIT: Duration = Duration::from_secs(10);

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is and reads the reply to the server's close.
fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    read_reply(&mut s)
}

fn read_reply(s: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reply read to the close");
    let text = String::from_utf8(raw).expect("utf-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    Reply { status, headers, body: body.to_string() }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    exchange(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n").as_bytes())
}

/// The value of the sample `series` (name and labels exactly as rendered) in `body`.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')).map(|v| v.parse().unwrap()))
}

const RESETS: &str = r#"blocker_packets_total{action="tcp_reset",reason="dst_v4"}"#;

/// A source whose counters grow by 10 packets per scrape.
fn moving_source() -> (SnapshotSource, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let source: SnapshotSource = Arc::new(move || {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        Snapshot {
            counters: vec![
                CounterCell { reason: "no_match", action: "pass", packets: 1000 * n, bytes: 64_000 * n },
                CounterCell { reason: "dst_v4", action: "tcp_reset", packets: 10 * n, bytes: 600 * n },
            ],
            generation: 3,
            ..Snapshot::default()
        }
    });
    (source, calls)
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn scrapes_show_counters_moving() {
    let (source, calls) = moving_source();
    let server = MetricsServer::start(local(), source).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let first = get(addr, "/metrics");
    assert_eq!(first.status, 200);
    let ct = first.header("content-type").unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert_eq!(first.header("content-length").unwrap().parse::<usize>().unwrap(), first.body.len());
    assert!(first.body.contains("# HELP blocker_packets_total "));
    assert!(first.body.contains("# TYPE blocker_packets_total counter"));
    assert_eq!(sample(&first.body, "blocker_generation"), Some(3.0));
    // The server adds the process's own figures.
    assert!(sample(&first.body, "process_resident_memory_bytes").unwrap() > 0.0);
    let before = sample(&first.body, RESETS).expect("reset counter present");

    let second = get(addr, "/metrics");
    assert_eq!(second.status, 200);
    let after = sample(&second.body, RESETS).unwrap();
    assert!(after > before, "{before} -> {after}");
    assert_eq!(after - before, 10.0);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one snapshot per scrape");

    // Query strings and absolute-form targets reach the same endpoint.
    assert_eq!(get(addr, "/metrics?format=text").status, 200);
    assert_eq!(exchange(addr, format!("GET http://{addr}/metrics HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).status, 200);
}

#[test]
fn index_not_found_method_not_allowed_and_head() {
    let (source, calls) = moving_source();
    let server = MetricsServer::start(local(), source).unwrap();
    let addr = server.local_addr();

    let index = get(addr, "/");
    assert_eq!(index.status, 200);
    assert!(index.header("content-type").unwrap().starts_with("text/html"));
    assert!(index.body.contains("/metrics"));

    for path in ["/metric", "/metrics/", "/favicon.ico", "/../etc/passwd"] {
        assert_eq!(get(addr, path).status, 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r =
            exchange(addr, format!("{method} /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").as_bytes());
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.header("content-length").unwrap().parse::<usize>().unwrap() > 0);

    assert_eq!(exchange(addr, b"NONSENSE\r\n\r\n").status, 400);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only GET/HEAD /metrics take a snapshot");
}

#[test]
fn a_slow_client_does_not_block_a_scrape_and_is_cut_off() {
    let (source, _) = moving_source();
    let limits = MetricsLimits { header_timeout: Duration::from_millis(1500), ..MetricsLimits::default() };
    let server = MetricsServer::start_with(local(), source, limits).unwrap();
    let addr = server.local_addr();

    // A client that starts a request and stalls, and one that never sends anything.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    thread::sleep(Duration::from_millis(100));

    let start = Instant::now();
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert!(start.elapsed() < Duration::from_millis(1000), "scrape waited on the slow client: {:?}", start.elapsed());

    // Both are closed once the header timeout passes, without a reply.
    for s in [&mut slow, &mut silent] {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = Vec::new();
        let t = Instant::now();
        let _ = s.read_to_end(&mut buf);
        assert!(t.elapsed() < WAIT, "not cut off");
        assert!(buf.is_empty(), "{:?}", String::from_utf8_lossy(&buf));
    }
}

#[test]
fn oversize_requests_are_refused() {
    let (source, calls) = moving_source();
    let server = MetricsServer::start(local(), source).unwrap();
    let addr = server.local_addr();
    let big = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(20_000));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // The server may stop reading before all is written: ignore a reset on write.
    let _ = s.write_all(big.as_bytes());
    let r = read_reply(&mut s);
    assert_eq!(r.status, 431);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn connections_over_the_limit_wait_for_a_slot() {
    let (source, _) = moving_source();
    let timeout = Duration::from_millis(800);
    let limits = MetricsLimits { header_timeout: timeout, max_connections: 2, ..MetricsLimits::default() };
    let server = MetricsServer::start_with(local(), source, limits).unwrap();
    let addr = server.local_addr();

    // Two stalled clients take both slots; a scrape waits until they are cut off, then is served.
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    let waited = start.elapsed();
    assert!(waited >= timeout / 2, "served at once with both slots taken ({waited:?})");
    assert!(waited < WAIT);
    drop(idle);

    // Many scrapes at once are all served.
    let scrapes: Vec<_> = (0..6).map(|_| thread::spawn(move || get(addr, "/metrics").status)).collect();
    for s in scrapes {
        assert_eq!(s.join().unwrap(), 200);
    }
}

#[test]
fn a_panicking_source_gets_500_and_the_server_goes_on() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let source: SnapshotSource = Arc::new(move || {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("snapshot failed (expected by the test)");
        }
        Snapshot::default()
    });
    let server = MetricsServer::start(local(), source).unwrap();
    assert_eq!(get(server.local_addr(), "/metrics").status, 500);
    assert_eq!(get(server.local_addr(), "/metrics").status, 200);
}

#[test]
fn bind_errors_are_returned_and_drop_stops_the_server() {
    let taken = TcpListener::bind(local()).unwrap();
    let (source, _) = moving_source();
    match MetricsServer::start(taken.local_addr().unwrap(), source.clone()) {
        Err(MetricsError::Bind { addr, .. }) => assert_eq!(addr, taken.local_addr().unwrap()),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("bound an address in use"),
    }

    let server = MetricsServer::start(local(), source).unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/").status, 200);
    let t = Instant::now();
    drop(server);
    assert!(t.elapsed() < WAIT);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(), "still listening after drop");
}

/// A snapshot with every field filled, so every metric family is rendered.
fn full() -> Snapshot {
    Snapshot {
        counters: vec![CounterCell { reason: "dst_v4", action: "tcp_reset", packets: 1, bytes: 60 }],
        lists: vec![ListMetrics {
            name: "l".into(),
            shadow: true,
            entries: 1,
            hits: 1,
            last_update_unix: Some(1),
            last_result: "updated".into(),
        }],
        generation: 1,
        generation_installed_unix: Some(1),
        maps: vec![MapFill { map: "names", entries: 1, capacity: 2 }],
        attach_mode: Some("native".into()),
        bypass: false,
        flows: FlowPressure { entries: 1, capacity: 2, ..FlowPressure::default() },
        update_results: vec![UpdateCount { list: "l".into(), result: "updated".into(), count: 1 }],
        quic: None,
        xdp_forward: Some(vec![("forwarded", 1)]),
        xdp_forward_route_cached: Some(1),
        build_version: "0".into(),
        process: Some(ProcessStats::default()),
    }
}

/// PromQL words that are not metric names.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "by",
    "without",
    "rate",
    "irate",
    "increase",
    "time",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "clamp_min",
    "clamp_max",
    "topk",
    "bottomk",
];

/// The identifiers of `expr` outside strings, label matchers, range selectors and grouping
/// clauses (`by (...)`, `on (...)`, ...): metric names, functions and keywords.
fn identifiers(expr: &str) -> Vec<String> {
    // Words and parentheses, outside quotes, braces and brackets.
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    let (mut depth, mut quoted, mut escaped) = (0, false, false);
    for ch in expr.chars() {
        if quoted {
            match (escaped, ch) {
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => escaped = false,
            }
            continue;
        }
        if depth == 0 && (ch.is_ascii_alphanumeric() || ch == '_' || ch == ':') {
            word.push(ch);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        match ch {
            '"' => quoted = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '(' | ')' if depth == 0 => tokens.push(ch.to_string()),
            _ => {}
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let grouping = ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&t.as_str());
        if grouping && tokens.get(i + 1).map(String::as_str) == Some("(") {
            out.push(t.clone());
            // Skip the label names up to the closing parenthesis.
            i += 2;
            while i < tokens.len() && tokens[i] != ")" {
                i += 1;
            }
        } else if t != "(" && t != ")" && !t.starts_with(|c: char| c.is_ascii_digit()) {
            out.push(t.clone());
        }
        i += 1;
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

const DASHBOARD: &str = include_str!("../../packaging/grafana/blocker-dashboard.json");

#[test]
fn dashboard_queries_use_only_rendered_metrics() {
    let rendered = render(&full());
    let names: BTreeSet<&str> =
        rendered.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");

    let mut all = Vec::new();
    exprs(&dash, &mut all);
    assert!(all.len() >= 12, "{} queries", all.len());
    let mut used = BTreeSet::new();
    for e in &all {
        let ids = identifiers(e);
        let metrics: Vec<&String> = ids.iter().filter(|w| !PROMQL_WORDS.contains(&w.as_str())).collect();
        assert!(!metrics.is_empty(), "no metric in {e}");
        for m in metrics {
            assert!(names.contains(m.as_str()), "{e}: {m} is not a metric render produces");
            used.insert(m.clone());
        }
    }
    // The issue's list: traffic, lists, updates, generation, map fill, flows, bypass, attach mode.
    for m in [
        "blocker_packets_total",
        "blocker_list_hits_total",
        "blocker_list_entries",
        "blocker_list_last_update_timestamp_seconds",
        "blocker_list_last_update_result",
        "blocker_generation",
        "blocker_map_fill_ratio",
        "blocker_flow_entries",
        "blocker_flow_capacity",
        "blocker_bypass",
        "blocker_attach_mode",
    ] {
        assert!(used.contains(m), "the dashboard does not show {m}");
    }
}

#[test]
fn dashboard_imports_with_a_datasource_input() {
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["type"] == "datasource" && i["pluginId"] == "prometheus")
    );
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    assert!(dash["id"].is_null(), "an importable dashboard carries no id");
    let panels = dash["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        }
        let g = &p["gridPos"];
        assert!(g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24, "{}", p["title"]);
    }
    // The map fill gauge warns at 0.7 and alarms at 0.9.
    let gauge = panels.iter().find(|p| p["title"] == "Map fill ratio").expect("map fill panel");
    assert_eq!(gauge["type"], "gauge");
    let steps: Vec<f64> = gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect();
    assert_eq!(steps, vec![0.7, 0.9]);
    // Bypass turns red when on.
    let bypass = panels.iter().find(|p| p["title"] == "Bypass").expect("bypass panel");
    let steps = bypass["fieldConfig"]["defaults"]["thresholds"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["color"] == "red" && s["value"] == 1));
}

#[test]
fn identifiers_skip_matchers_strings_and_ranges() {
    assert_eq!(
        identifiers(
            r#"sum by (reason) (rate(blocker_packets_total{action!~"pass|x{y}",reason="a\"b"}[$__rate_interval])) / 2"#
        ),
        ["sum", "by", "rate", "blocker_packets_total"]
    );
    assert_eq!(
        identifiers("max by (instance) (blocker_attach_mode{mode=\"native\"}) * 2 + time() - process_threads"),
        ["max", "by", "blocker_attach_mode", "time", "process_threads"]
    );
}
