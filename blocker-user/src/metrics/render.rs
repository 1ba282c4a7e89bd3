//! A [`Snapshot`] as Prometheus text exposition (format 0.0.4), through the `prometheus` crate:
//! a fresh registry per scrape, filled from the snapshot and encoded.

use prometheus::core::{Collector, GenericCounterVec, GenericGaugeVec};
use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use super::snapshot::{ATTACH_MODES, FLOW_UPKEEP_EVENTS, LIST_RESULTS, QUIC_EVENTS, Snapshot, attach_label, list_label, result_label};

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric family [`render`] can produce, with its type. The `process_*` families appear
/// only when the snapshot carries [`ProcessStats`](super::ProcessStats);
/// `blocker_generation_installed_timestamp_seconds` only once a generation is installed, and
/// the per-list, per-map and per-cell families only when they have a series; the
/// `blocker_quic_*` families only while QUIC is judged; `blocker_xdp_forward_packets_total`
/// and `blocker_xdp_forward_route_cache_hits_total` only in router mode with XDP forwarding.
pub const METRICS: &[(&str, &str)] = &[
    ("blocker_packets_total", "counter"),
    ("blocker_bytes_total", "counter"),
    ("blocker_list_entries", "gauge"),
    ("blocker_list_hits_total", "counter"),
    ("blocker_list_last_update_timestamp_seconds", "gauge"),
    ("blocker_list_last_update_result", "gauge"),
    ("blocker_list_updates_total", "counter"),
    ("blocker_generation", "gauge"),
    ("blocker_generation_installed_timestamp_seconds", "gauge"),
    ("blocker_map_entries", "gauge"),
    ("blocker_map_capacity", "gauge"),
    ("blocker_map_fill_ratio", "gauge"),
    ("blocker_attach_mode", "gauge"),
    ("blocker_bypass", "gauge"),
    ("blocker_flow_entries", "gauge"),
    ("blocker_flow_capacity", "gauge"),
    ("blocker_flow_upkeep_total", "counter"),
    ("blocker_xdp_forward_packets_total", "counter"),
    ("blocker_xdp_forward_route_cache_hits_total", "counter"),
    ("blocker_quic_events_total", "counter"),
    ("blocker_quic_connections", "gauge"),
    ("blocker_quic_memory_bytes", "gauge"),
    ("blocker_build_info", "gauge"),
    ("process_cpu_seconds_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_virtual_memory_bytes", "gauge"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_start_time_seconds", "gauge"),
    ("process_threads", "gauge"),
];

/// Renders `s` as Prometheus text exposition. Label values come only from the verdict
/// vocabulary, [`LIST_RESULTS`], [`ATTACH_MODES`], the map names, the build version and list
/// names (masked by [`list_label`]): never an address, a listed name or anything about a
/// subscriber.
pub fn render(s: &Snapshot) -> String {
    let mut r = Reg(Registry::new());

    let packets = r.counter_vec(
        "blocker_packets_total",
        "Packets judged by the XDP program, by reason and action.",
        &["reason", "action"],
    );
    let bytes = r.counter_vec(
        "blocker_bytes_total",
        "Bytes of the packets judged by the XDP program, by reason and action.",
        &["reason", "action"],
    );
    for c in &s.counters {
        packets.with_label_values(&[c.reason, c.action]).inc_by(c.packets);
        bytes.with_label_values(&[c.reason, c.action]).inc_by(c.bytes);
    }

    let entries =
        r.int_gauge_vec("blocker_list_entries", "Entries of each list in the live generation.", &["list", "shadow"]);
    let hits = r.counter_vec(
        "blocker_list_hits_total",
        "Packets blocked by each list's entries in the live generation (shadow lists: packets they would have blocked); resets on a new generation.",
        &["list", "shadow"],
    );
    let last_update = r.int_gauge_vec(
        "blocker_list_last_update_timestamp_seconds",
        "Unix time of the last successful pull or check of each list.",
        &["list"],
    );
    let last_result = r.int_gauge_vec(
        "blocker_list_last_update_result",
        "The result of each list's last update: 1 for the current result, 0 for the others.",
        &["list", "result"],
    );
    for l in &s.lists {
        let name = list_label(&l.name);
        let shadow = if l.shadow { "true" } else { "false" };
        entries.with_label_values(&[name.as_str(), shadow]).set(clamp(l.entries));
        hits.with_label_values(&[name.as_str(), shadow]).inc_by(l.hits);
        if let Some(t) = l.last_update_unix {
            last_update.with_label_values(&[name.as_str()]).set(clamp(t));
        }
        let current = (!l.last_result.is_empty()).then(|| result_label(&l.last_result));
        for result in LIST_RESULTS {
            last_result.with_label_values(&[name.as_str(), result]).set((current == Some(result)) as i64);
        }
    }

    let updates = r.counter_vec(
        "blocker_list_updates_total",
        "Updates of each list since the controller started, by result.",
        &["list", "result"],
    );
    for u in &s.update_results {
        updates.with_label_values(&[list_label(&u.list).as_str(), result_label(&u.result)]).inc_by(u.count);
    }

    r.int_gauge("blocker_generation", "The live list generation (0: none installed).").set(clamp(s.generation));
    if let Some(t) = s.generation_installed_unix {
        r.int_gauge("blocker_generation_installed_timestamp_seconds", "Unix time the live generation was installed.")
            .set(clamp(t));
    }

    let map_entries = r.int_gauge_vec("blocker_map_entries", "Entries in each kernel map.", &["map"]);
    let map_capacity = r.int_gauge_vec("blocker_map_capacity", "Capacity of each kernel map.", &["map"]);
    let map_ratio =
        r.gauge_vec("blocker_map_fill_ratio", "Entries over capacity of each kernel map (0 to 1).", &["map"]);
    for m in &s.maps {
        map_entries.with_label_values(&[m.map]).set(clamp(m.entries));
        map_capacity.with_label_values(&[m.map]).set(clamp(m.capacity));
        map_ratio.with_label_values(&[m.map]).set(m.ratio());
    }

    let attach = r.int_gauge_vec(
        "blocker_attach_mode",
        "How the program is attached: 1 for the current mode, 0 for the others.",
        &["mode"],
    );
    let mode = attach_label(s.attach_mode.as_deref());
    for m in ATTACH_MODES {
        attach.with_label_values(&[m]).set((m == mode) as i64);
    }

    r.int_gauge("blocker_bypass", "1 while the global bypass switch is on (every packet passes unjudged).")
        .set(s.bypass as i64);
    r.int_gauge(
        "blocker_flow_entries",
        "Flows with state in the flow table (ClientHello or HTTP readers, blocked flows).",
    )
    .set(clamp(s.flows.entries));
    r.int_gauge("blocker_flow_capacity", "Capacity of the flow table; when full the oldest flows are evicted.")
        .set(clamp(s.flows.capacity));
    let upkeep = r.counter_vec(
        "blocker_flow_upkeep_total",
        "The flow table's upkeep: flows forgotten as idle for a minute (idle), and counts taken off buckets that evictions had left counted (repaired).",
        &["event"],
    );
    let [idle, repaired] = FLOW_UPKEEP_EVENTS;
    upkeep.with_label_values(&[idle]).inc_by(s.flows.idle_forgotten);
    upkeep.with_label_values(&[repaired]).inc_by(s.flows.counts_repaired);

    if let Some(rows) = &s.xdp_forward {
        let fwd = r.counter_vec(
            "blocker_xdp_forward_packets_total",
            "Allowed packets in router mode with XDP forwarding: forwarded by the program, or why the kernel got them instead.",
            &["outcome"],
        );
        for (outcome, n) in rows {
            if blocker_common::forward::OUTCOME_NAMES.contains(outcome) {
                fwd.with_label_values(&[outcome]).inc_by(*n);
            }
        }
    }
    if let Some(n) = s.xdp_forward_route_cached {
        r.counter_vec(
            "blocker_xdp_forward_route_cache_hits_total",
            "Packets XDP forwarding forwarded with the route from its cache instead of a FIB lookup (counted as forwarded too).",
            &[],
        )
        .with_label_values::<&str>(&[])
        .inc_by(n);
    }

    if let Some(q) = &s.quic {
        let events = r.counter_vec(
            "blocker_quic_events_total",
            "QUIC client Initials read in user space: copies, packets opened, names read, verdicts written, by event.",
            &["event"],
        );
        for (event, n) in &q.events {
            // Only the fixed vocabulary becomes a label value.
            if QUIC_EVENTS.contains(event) {
                events.with_label_values(&[event]).inc_by(*n);
            }
        }
        r.int_gauge("blocker_quic_connections", "QUIC connections whose ClientHello the reader holds now.")
            .set(clamp(q.connections));
        r.int_gauge("blocker_quic_memory_bytes", "Estimated bytes the QUIC reader holds now (bounded).")
            .set(clamp(q.memory));
    }

    let build = r.int_gauge_vec("blocker_build_info", "The controller's version; always 1.", &["version"]);
    build.with_label_values(&[version_label(&s.build_version).as_str()]).set(1);

    if let Some(p) = &s.process {
        r.add(counter_f64(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ));
        r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.").set(p.resident_bytes as f64);
        r.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.").set(p.virtual_bytes as f64);
        r.gauge("process_open_fds", "Number of open file descriptors.").set(p.open_fds as f64);
        r.gauge("process_max_fds", "Maximum number of open file descriptors.").set(p.max_fds as f64);
        r.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
            .set(p.start_time_seconds);
        r.gauge("process_threads", "Number of OS threads in the process.").set(p.threads as f64);
    }

    let mut out = String::new();
    TextEncoder::new().encode_utf8(&r.0.gather(), &mut out).expect("text encoding of valid metrics");
    out
}

/// The registry of one render. Registration fails only for a duplicate or malformed name, which
/// the unit tests rule out for every name used here.
struct Reg(Registry);

impl Reg {
    fn add<C: Collector + Clone + 'static>(&mut self, c: C) -> C {
        self.0.register(Box::new(c.clone())).expect("metric names are unique and valid");
        c
    }

    fn counter_vec(&mut self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(GenericCounterVec::new(Opts::new(name, help), labels).expect("valid counter"))
    }

    fn int_gauge_vec(&mut self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(GenericGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"))
    }

    fn gauge_vec(&mut self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GenericGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"))
    }

    fn int_gauge(&mut self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid gauge"))
    }

    fn gauge(&mut self, name: &str, help: &str) -> Gauge {
        self.add(Gauge::new(name, help).expect("valid gauge"))
    }
}

/// A float counter holding `value` (the crate's `Counter` only adds non-negative amounts).
fn counter_f64(name: &str, help: &str, value: f64) -> prometheus::Counter {
    let c = prometheus::Counter::new(name, help).expect("valid counter");
    c.inc_by(value.max(0.0));
    c
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The build version as a label value: printable ASCII without quotes or backslashes, at most 64.
fn version_label(v: &str) -> String {
    let mut s: String =
        v.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    s.truncate(64);
    s
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::super::snapshot::*;
    use super::*;

    fn full() -> Snapshot {
        Snapshot {
            counters: vec![
                CounterCell { reason: "no_match", action: "pass", packets: 1000, bytes: 640_000 },
                CounterCell { reason: "dst_v4", action: "tcp_reset", packets: 7, bytes: 420 },
                CounterCell { reason: "sni", action: "shadow", packets: 3, bytes: 1800 },
            ],
            lists: vec![
                ListMetrics {
                    name: "jp-csam".into(),
                    shadow: false,
                    entries: 1234,
                    hits: 56,
                    last_update_unix: Some(1_700_000_000),
                    last_result: "updated".into(),
                },
                ListMetrics {
                    name: "trial".into(),
                    shadow: true,
                    entries: 10,
                    hits: 3,
                    last_update_unix: None,
                    last_result: "failed".into(),
                },
                ListMetrics {
                    name: "fresh".into(),
                    shadow: false,
                    entries: 0,
                    hits: 0,
                    last_update_unix: None,
                    last_result: String::new(),
                },
            ],
            generation: 42,
            generation_installed_unix: Some(1_700_000_100),
            maps: vec![
                MapFill { map: "names", entries: 1_048_576, capacity: 4_194_304 },
                MapFill { map: "block_v4", entries: 0, capacity: 4_194_304 },
                MapFill { map: "flows", entries: 3, capacity: 0 },
            ],
            attach_mode: Some("generic".into()),
            bypass: true,
            flows: FlowPressure { entries: 100, capacity: 32_768, idle_forgotten: 7, counts_repaired: 3 },
            update_results: vec![
                UpdateCount { list: "jp-csam".into(), result: "updated".into(), count: 4 },
                UpdateCount { list: "jp-csam".into(), result: "not_modified".into(), count: 9 },
                UpdateCount { list: "trial".into(), result: "failed".into(), count: 2 },
            ],
            quic: Some(QuicMetrics { events: vec![("copies", 12), ("verdict_block", 2)], connections: 3, memory: 4096 }),
            xdp_forward: Some(vec![("forwarded", 900), ("no_neighbour", 2), ("frag_needed", 0), ("ttl_expired", 1), ("port_not_allowed", 0), ("kernel", 40)]),
            xdp_forward_route_cached: Some(850),
            build_version: "1.2.3".into(),
            process: Some(ProcessStats {
                cpu_seconds: 1.5,
                resident_bytes: 10 << 20,
                virtual_bytes: 100 << 20,
                open_fds: 12,
                max_fds: 1024,
                start_time_seconds: 1_699_999_000.0,
                threads: 5,
            }),
        }
    }

    /// One sample line: name, labels, value.
    #[derive(Debug)]
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("sample has a value");
                let (name, labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
                    None => (series, ""),
                };
                let labels = labels
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").expect("label=\"value\"");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                Sample { name: name.to_string(), labels, value: value.parse().expect("numeric value") }
            })
            .collect()
    }

    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples(text)
            .into_iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    #[test]
    fn every_metric_has_help_and_type() {
        let text = render(&full());
        for (name, kind) in METRICS {
            assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}:\n{text}");
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "no TYPE {kind} for {name}:\n{text}");
            assert!(samples(&text).iter().any(|s| s.name == *name), "no sample of {name}");
        }
        // And nothing else.
        let families: BTreeSet<&str> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        let known: BTreeSet<&str> = METRICS.iter().map(|(n, _)| *n).collect();
        assert_eq!(families, known);
    }

    #[test]
    fn values_are_the_snapshot_s() {
        let t = render(&full());
        assert_eq!(value(&t, "blocker_packets_total", &[("reason", "dst_v4"), ("action", "tcp_reset")]), Some(7.0));
        assert_eq!(value(&t, "blocker_bytes_total", &[("reason", "no_match"), ("action", "pass")]), Some(640_000.0));
        assert_eq!(value(&t, "blocker_packets_total", &[("reason", "sni"), ("action", "shadow")]), Some(3.0));
        assert_eq!(value(&t, "blocker_quic_events_total", &[("event", "verdict_block")]), Some(2.0));
        assert_eq!(value(&t, "blocker_quic_connections", &[]), Some(3.0));
        assert_eq!(value(&t, "blocker_xdp_forward_packets_total", &[("outcome", "forwarded")]), Some(900.0));
        assert_eq!(value(&t, "blocker_xdp_forward_packets_total", &[("outcome", "kernel")]), Some(40.0));
        assert_eq!(value(&t, "blocker_xdp_forward_packets_total", &[("outcome", "frag_needed")]), Some(0.0));
        assert_eq!(value(&t, "blocker_xdp_forward_route_cache_hits_total", &[]), Some(850.0));
        assert_eq!(value(&t, "blocker_list_entries", &[("list", "jp-csam"), ("shadow", "false")]), Some(1234.0));
        assert_eq!(value(&t, "blocker_list_hits_total", &[("list", "trial"), ("shadow", "true")]), Some(3.0));
        assert_eq!(value(&t, "blocker_list_last_update_timestamp_seconds", &[("list", "jp-csam")]), Some(1.7e9));
        assert_eq!(value(&t, "blocker_list_last_update_timestamp_seconds", &[("list", "trial")]), None);
        assert_eq!(
            value(&t, "blocker_list_updates_total", &[("list", "jp-csam"), ("result", "not_modified")]),
            Some(9.0)
        );
        assert_eq!(value(&t, "blocker_list_updates_total", &[("list", "trial"), ("result", "failed")]), Some(2.0));
        assert_eq!(value(&t, "blocker_generation", &[]), Some(42.0));
        assert_eq!(value(&t, "blocker_generation_installed_timestamp_seconds", &[]), Some(1_700_000_100.0));
        assert_eq!(value(&t, "blocker_map_entries", &[("map", "names")]), Some(1_048_576.0));
        assert_eq!(value(&t, "blocker_map_capacity", &[("map", "block_v4")]), Some(4_194_304.0));
        assert_eq!(value(&t, "blocker_bypass", &[]), Some(1.0));
        assert_eq!(value(&t, "blocker_flow_entries", &[]), Some(100.0));
        assert_eq!(value(&t, "blocker_flow_capacity", &[]), Some(32_768.0));
        assert_eq!(value(&t, "blocker_flow_upkeep_total", &[("event", "idle")]), Some(7.0));
        assert_eq!(value(&t, "blocker_flow_upkeep_total", &[("event", "repaired")]), Some(3.0));
        assert_eq!(value(&t, "blocker_build_info", &[("version", "1.2.3")]), Some(1.0));
        assert_eq!(value(&t, "process_cpu_seconds_total", &[]), Some(1.5));
        assert_eq!(value(&t, "process_resident_memory_bytes", &[]), Some((10 << 20) as f64));
        assert_eq!(value(&t, "process_threads", &[]), Some(5.0));
    }

    #[test]
    fn fill_ratio_is_entries_over_capacity() {
        let t = render(&full());
        assert_eq!(value(&t, "blocker_map_fill_ratio", &[("map", "names")]), Some(0.25));
        assert_eq!(value(&t, "blocker_map_fill_ratio", &[("map", "block_v4")]), Some(0.0));
        assert_eq!(value(&t, "blocker_map_fill_ratio", &[("map", "flows")]), Some(0.0), "no capacity: 0, not NaN");
    }

    #[test]
    fn last_result_and_attach_mode_are_one_hot() {
        let t = render(&full());
        for (list, current) in [("jp-csam", Some("updated")), ("trial", Some("failed")), ("fresh", None)] {
            for r in LIST_RESULTS {
                let want = if Some(r) == current { 1.0 } else { 0.0 };
                assert_eq!(
                    value(&t, "blocker_list_last_update_result", &[("list", list), ("result", r)]),
                    Some(want),
                    "{list} {r}"
                );
            }
        }
        for (mode, want) in [("native", 0.0), ("generic", 1.0), ("none", 0.0)] {
            assert_eq!(value(&t, "blocker_attach_mode", &[("mode", mode)]), Some(want));
        }
        let mut s = full();
        s.attach_mode = None;
        s.lists[0].last_result = "some new outcome".into();
        let t = render(&s);
        assert_eq!(value(&t, "blocker_attach_mode", &[("mode", "none")]), Some(1.0));
        assert_eq!(
            value(&t, "blocker_list_last_update_result", &[("list", "jp-csam"), ("result", "other")]),
            Some(1.0)
        );
        let hot: f64 = samples(&t).iter().filter(|s| s.name == "blocker_attach_mode").map(|s| s.value).sum();
        assert_eq!(hot, 1.0);
    }

    #[test]
    fn label_values_come_only_from_fixed_sets_and_list_names() {
        let mut s = full();
        // A list named after a file with odd characters, and a hostile result and mode.
        s.lists.push(ListMetrics {
            name: "203.0.113.7 \"evil\"\n{x}".into(),
            last_result: "198.51.100.1".into(),
            ..Default::default()
        });
        s.update_results.push(UpdateCount { list: "ok".into(), result: "example.com".into(), count: 1 });
        s.attach_mode = Some("user@example.com".into());
        s.quic.as_mut().unwrap().events.push(("192.0.2.9", 1));
        s.xdp_forward.as_mut().unwrap().push(("eth0 198.51.100.2", 1));
        let t = render(&s);
        let allowed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::from([
            ("reason", reason_names().map(String::from).collect()),
            ("action", action_names().map(String::from).collect()),
            ("list", s.lists.iter().map(|l| l.name.as_str()).chain(["ok"]).map(list_label).collect()),
            ("shadow", ["true", "false"].map(String::from).into()),
            ("result", LIST_RESULTS.map(String::from).into()),
            ("map", s.maps.iter().map(|m| m.map.to_string()).collect()),
            ("mode", ATTACH_MODES.map(String::from).into()),
            ("version", ["1.2.3".to_string()].into()),
            ("event", QUIC_EVENTS.iter().chain(FLOW_UPKEEP_EVENTS.iter()).map(|e| e.to_string()).collect()),
            ("outcome", blocker_common::forward::OUTCOME_NAMES.map(String::from).into()),
        ]);
        let all = samples(&t);
        assert!(all.len() > 40);
        for sample in &all {
            for (k, v) in &sample.labels {
                let set = allowed.get(k.as_str()).unwrap_or_else(|| panic!("unexpected label {k} on {}", sample.name));
                assert!(set.contains(v), "{}: {k}={v:?} is not in the fixed set", sample.name);
                assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{k}={v:?}");
            }
        }
        // The masked list name kept no address or quote.
        assert!(
            !t.contains("203.0.113.7 ")
                && !t.contains("evil\"")
                && !t.contains("198.51.100.1")
                && !t.contains("198.51.100.2")
                && !t.contains("192.0.2.9")
                && !t.contains("example.com")
        );
    }

    #[test]
    fn an_empty_snapshot_renders_the_scalar_metrics() {
        let t = render(&Snapshot::default());
        assert_eq!(value(&t, "blocker_generation", &[]), Some(0.0));
        assert_eq!(value(&t, "blocker_bypass", &[]), Some(0.0));
        assert_eq!(value(&t, "blocker_attach_mode", &[("mode", "none")]), Some(1.0));
        assert_eq!(value(&t, "blocker_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
        assert!(!t.contains("process_"), "process metrics only when given");
        assert!(!t.contains("blocker_generation_installed_timestamp_seconds"));
        assert!(!t.contains("blocker_xdp_forward"), "forwarding outcomes only when forwarding is on");
    }

    #[test]
    fn large_values_render_as_numbers() {
        // Prometheus values are floats: exact to 2^53, which packet counts never reach and byte
        // counts reach only after months at line rate (then off by a few bytes).
        let mut s = Snapshot::default();
        s.counters.push(CounterCell { reason: "dst_v6", action: "drop", packets: (1 << 53) - 1, bytes: u64::MAX });
        s.generation = u64::MAX;
        let t = render(&s);
        assert_eq!(
            value(&t, "blocker_packets_total", &[("reason", "dst_v6"), ("action", "drop")]),
            Some(((1u64 << 53) - 1) as f64)
        );
        assert_eq!(
            value(&t, "blocker_bytes_total", &[("reason", "dst_v6"), ("action", "drop")]),
            Some(u64::MAX as f64)
        );
        assert_eq!(value(&t, "blocker_generation", &[]), Some(i64::MAX as f64));
    }
}
