//! What a scrape shows: plain data the daemon fills on each scrape ([`Snapshot`]), the fixed
//! label vocabularies, and small helpers to fill it (counter cells from the kernel's table, a
//! tally of update outcomes, the process's own figures from `/proc/self`).

use std::collections::BTreeMap;

use blocker_common::capacity;
use blocker_common::verdict::{Action, Reason};

use crate::datapath::Counters;
use crate::lists::{ListKind, ListSet};
use crate::update::ListsView;

/// Every value the `result` label of the list metrics can take. A result outside the set is
/// shown as `other`, so a label never carries free text.
pub const LIST_RESULTS: [&str; 9] =
    ["updated", "unchanged", "not_modified", "refused", "failed", "restored", "rolled_back", "skipped", "other"];

/// Every value the `mode` label of `blocker_attach_mode` can take (`none`: not attached, e.g.
/// replay or a test harness).
pub const ATTACH_MODES: [&str; 3] = ["native", "generic", "none"];

/// Longest list name shown in a label (the configuration allows 64).
pub const MAX_LIST_LABEL: usize = 64;

/// One (reason, action) cell of the kernel counter table, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterCell {
    /// A [`Reason::name`].
    pub reason: &'static str,
    /// An [`Action::name`].
    pub action: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

impl CounterCell {
    /// The cells of `counters` that have seen packets (the same rows as [`Counters::rows`]).
    /// A cell appears from its first packet on and never goes away while the program is loaded.
    pub fn from_counters(counters: &Counters) -> Vec<CounterCell> {
        counters
            .rows()
            .into_iter()
            .map(|r| CounterCell { reason: r.reason, action: r.action, packets: r.packets, bytes: r.bytes })
            .collect()
    }
}

/// One configured list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListMetrics {
    /// The configured list name (the only free-form label value metrics carry; the renderer
    /// replaces characters outside `A-Z a-z 0-9 - _ .` with `_` and cuts it to 64 bytes).
    pub name: String,
    /// A shadow list counts what it would block without blocking.
    pub shadow: bool,
    /// Entries of this list in the live generation.
    pub entries: u64,
    /// Packets blocked by this list's entries in the live generation (for a shadow list: packets
    /// its entries would have blocked). Resets when a new generation is installed, as the kernel's
    /// per-entry counts do; Prometheus' `rate()` treats that as a counter reset.
    pub hits: u64,
    /// Unix seconds of the last successful pull or check of the list (`ListStatus::ok_at`, or
    /// the version's `fetched_at`), if any.
    pub last_update_unix: Option<u64>,
    /// The last update result: one of [`LIST_RESULTS`] (empty: none yet).
    pub last_result: String,
}

impl ListMetrics {
    /// One per configured list, from the manager's view and per-list hits
    /// ([`hits_by_list`]).
    pub fn from_view(view: &ListsView, hits: &BTreeMap<String, u64>) -> Vec<ListMetrics> {
        view.lists
            .iter()
            .map(|l| ListMetrics {
                name: l.name.clone(),
                shadow: l.shadow,
                entries: l.entries as u64,
                hits: hits.get(&l.name).copied().unwrap_or(0),
                last_update_unix: l.status.as_ref().and_then(|s| s.ok_at).or(l.fetched_at),
                last_result: l.status.as_ref().map(|s| s.result.clone()).unwrap_or_default(),
            })
            .collect()
    }
}

/// Sums per-entry hits (`Datapath::entry_hits` of the live generation) by the list each entry
/// came from in the live `set`. Ids the set does not know are left out.
pub fn hits_by_list(set: &ListSet, entry_hits: &[(u32, u64)]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for &(id, n) in entry_hits {
        if let Some(info) = set.entry(id).and_then(|e| set.lists().get(usize::from(e.list))) {
            *out.entry(info.name.clone()).or_insert(0) += n;
        }
    }
    out
}

/// How full one kernel map is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapFill {
    /// The map, lower case (`names`, `block_v4`, `block_v6`, `allow_v4`, `allow_v6`,
    /// `entry_hits`, `flows`, ...).
    pub map: &'static str,
    pub entries: u64,
    pub capacity: u64,
}

impl MapFill {
    /// `entries / capacity`, 0 for a map without capacity.
    pub fn ratio(&self) -> f64 {
        if self.capacity == 0 { 0.0 } else { self.entries as f64 / self.capacity as f64 }
    }

    /// The list maps' fill by the live generation `set`, against what one generation may hold:
    /// `names` (block and allow names), `block_v4`, `block_v6`, `allow_v4`, `allow_v6`. These
    /// are the counts an update is checked against, so a ratio of 1 is where updates are refused.
    pub fn from_list_set(set: &ListSet) -> Vec<MapFill> {
        let per_gen = |c: u32| u64::from(capacity::per_generation(c));
        let names = (set.block_names().count() + set.allow_names().count()) as u64;
        let family = |kind| {
            set.prefixes(kind)
                .fold((0u64, 0u64), |(v4, v6), (_, p)| if p.is_v4() { (v4 + 1, v6) } else { (v4, v6 + 1) })
        };
        let (block_v4, block_v6) = family(ListKind::Block);
        let (allow_v4, allow_v6) = family(ListKind::Allow);
        vec![
            MapFill { map: "names", entries: names, capacity: per_gen(capacity::NAMES) },
            MapFill { map: "block_v4", entries: block_v4, capacity: per_gen(capacity::BLOCK_PREFIXES) },
            MapFill { map: "block_v6", entries: block_v6, capacity: per_gen(capacity::BLOCK_PREFIXES) },
            MapFill { map: "allow_v4", entries: allow_v4, capacity: per_gen(capacity::ALLOW_PREFIXES) },
            MapFill { map: "allow_v6", entries: allow_v6, capacity: per_gen(capacity::ALLOW_PREFIXES) },
        ]
    }
}

/// The events of `blocker_flow_upkeep_total` ([`FlowPressure`]).
pub const FLOW_UPKEEP_EVENTS: [&str; 2] = ["idle", "repaired"];

/// The flow-state table (`FLOWS`, an LRU hash): under pressure it evicts the oldest readers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowPressure {
    pub entries: u64,
    pub capacity: u64,
    /// Since start, by the daemon's upkeep: flows forgotten as idle, and bucket counts taken
    /// off that LRU evictions had left (many: a flood filled the table).
    pub idle_forgotten: u64,
    pub counts_repaired: u64,
}

/// The daemon's QUIC reading (None in [`Snapshot::quic`]: QUIC is off). Datagrams the program
/// passed uncopied under overload are `blocker_packets_total{reason="quic_overload"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuicMetrics {
    /// Counts since start by event ([`QUIC_EVENTS`]).
    pub events: Vec<(&'static str, u64)>,
    /// Connections and estimated bytes the reader holds now.
    pub connections: u64,
    pub memory: u64,
}

/// The `event` label values of `blocker_quic_events_total`: copies read from the ring, Initial
/// packets opened or not, datagrams that read as nothing, connections finished with a name,
/// without one, or unreadable, connections evicted by the reader's bounds, verdicts written by
/// kind, flows given up, blocked flows judged again after a list change, verdicts the map refused.
pub const QUIC_EVENTS: &[&str] = &[
    "copies",
    "initials",
    "undecryptable",
    "not_quic",
    "sni",
    "no_sni",
    "failed",
    "evictions",
    "verdict_block",
    "verdict_shadow",
    "verdict_pass",
    "given_up",
    "rejudged",
    "carried",
    "write_errors",
];

/// How many updates of one list ended with one result since the daemon started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateCount {
    pub list: String,
    /// One of [`LIST_RESULTS`].
    pub result: String,
    pub count: u64,
}

/// The daemon's own process, from `/proc/self` (the standard `process_*` metrics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time.
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// Unix seconds the process started.
    pub start_time_seconds: f64,
    pub threads: u64,
}

impl ProcessStats {
    /// This process's figures, or None where `/proc` cannot be read.
    pub fn current() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may contain anything.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        // proc(5) numbering: field 3 (state) is f[0]; utime 14, stime 15, num_threads 20,
        // starttime 22, vsize 23, rss 24.
        let (utime, stime, threads, start, vsize, rss) = (num(11)?, num(12)?, num(17)?, num(19)?, num(20)?, num(21)?);
        // SAFETY: sysconf and getrlimit only read process-wide settings.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        let max_fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur } else { 0 };
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<u64>().ok())))
            .unwrap_or(0);
        // The directory handle reading /proc/self/fd is one of the entries: leave it out.
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count().saturating_sub(1) as u64).unwrap_or(0);
        Some(ProcessStats {
            cpu_seconds: (utime + stime) as f64 / ticks,
            resident_bytes: rss * page,
            virtual_bytes: vsize,
            open_fds,
            max_fds: max_fds as u64,
            start_time_seconds: boot as f64 + start as f64 / ticks,
            threads,
        })
    }
}

/// Everything one scrape shows. The daemon builds one per scrape (see the module docs for
/// where each field comes from); [`render`](super::render) turns it into the text exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Packets and bytes by reason and action ([`CounterCell::from_counters`]).
    pub counters: Vec<CounterCell>,
    /// Every configured list, enforced and shadow.
    pub lists: Vec<ListMetrics>,
    /// The live generation number (0: nothing installed yet).
    pub generation: u64,
    /// Unix seconds the live generation was installed.
    pub generation_installed_unix: Option<u64>,
    /// Fill of the kernel maps that can run full.
    pub maps: Vec<MapFill>,
    /// `native`, `generic`, or None (or `none`) when not attached.
    pub attach_mode: Option<String>,
    /// The global bypass switch.
    pub bypass: bool,
    /// The flow-state table.
    pub flows: FlowPressure,
    /// Update outcomes by list and result since start ([`UpdateTally::counts`]).
    pub update_results: Vec<UpdateCount>,
    /// QUIC reading (None: off).
    pub quic: Option<QuicMetrics>,
    /// XDP forwarding's packets by outcome, labels from `blocker_common::forward::OUTCOME_NAMES`
    /// (None: forwarding is off).
    pub xdp_forward: Option<Vec<(&'static str, u64)>>,
    /// Of the packets XDP forwarding forwarded, those whose route came from the route cache
    /// (None: forwarding is off).
    pub xdp_forward_route_cached: Option<u64>,
    /// The `version` label of `blocker_build_info` (default: this crate's version).
    pub build_version: String,
    /// The daemon process's figures; when None, [`MetricsServer`](super::MetricsServer) fills
    /// it from `/proc/self` at each scrape (and [`render`](super::render) leaves the
    /// `process_*` metrics out).
    pub process: Option<ProcessStats>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            counters: Vec::new(),
            lists: Vec::new(),
            generation: 0,
            generation_installed_unix: None,
            maps: Vec::new(),
            attach_mode: None,
            bypass: false,
            flows: FlowPressure::default(),
            update_results: Vec::new(),
            quic: None,
            xdp_forward: None,
            xdp_forward_route_cached: None,
            build_version: env!("CARGO_PKG_VERSION").to_string(),
            process: None,
        }
    }
}

/// Counts update outcomes by list and result; the daemon keeps one and records every list
/// outcome of every update (and `rolled_back` for each list on a rollback).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateTally {
    counts: BTreeMap<(String, &'static str), u64>,
}

impl UpdateTally {
    pub fn new() -> UpdateTally {
        UpdateTally::default()
    }

    /// Counts one outcome; a result outside [`LIST_RESULTS`] counts as `other`.
    pub fn record(&mut self, list: &str, result: &str) {
        *self.counts.entry((list.to_string(), result_label(result))).or_insert(0) += 1;
    }

    /// Every list outcome of an update report.
    pub fn record_report(&mut self, report: &crate::update::UpdateReport) {
        for o in &report.lists {
            self.record(&o.list, &o.result);
        }
    }

    /// The counts, by list then result.
    pub fn counts(&self) -> Vec<UpdateCount> {
        self.counts
            .iter()
            .map(|((list, result), &count)| UpdateCount { list: list.clone(), result: (*result).to_string(), count })
            .collect()
    }
}

/// `result` as a label value: itself if in [`LIST_RESULTS`], else `other`.
pub fn result_label(result: &str) -> &'static str {
    LIST_RESULTS.iter().find(|r| **r == result).copied().unwrap_or("other")
}

/// `mode` as a label value: `native` or `generic`, anything else `none`.
pub fn attach_label(mode: Option<&str>) -> &'static str {
    match mode {
        Some("native") => "native",
        Some("generic") => "generic",
        _ => "none",
    }
}

/// A list name as a label value: characters outside `A-Z a-z 0-9 - _ .` become `_`, at most
/// [`MAX_LIST_LABEL`] bytes, and a name so changed ends in `-` and 8 hex digits of its digest.
/// Configured names are already of that form and pass unchanged.
pub fn list_label(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    if s == name && !s.is_empty() && s.len() <= MAX_LIST_LABEL {
        return s;
    }
    // Masked or cut: two names could now meet in one series (`児童.list` and `違法.list` both
    // mask to `__.list`), so the label ends in a digest of the whole name, stable across runs.
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    let tag: String = d[..4].iter().map(|b| format!("{b:02x}")).collect();
    let mut s = s;
    s.truncate(MAX_LIST_LABEL - tag.len() - 1);
    format!("{s}-{tag}")
}

/// The names of every reason, for label checks.
pub fn reason_names() -> impl Iterator<Item = &'static str> {
    Reason::ALL.into_iter().map(Reason::name)
}

/// The names of every action, for label checks.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    Action::ALL.into_iter().map(Action::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_by_list_and_result_and_folds_unknown_results() {
        let mut t = UpdateTally::new();
        t.record("a", "updated");
        t.record("a", "updated");
        t.record("a", "failed");
        t.record("b", "something new");
        assert_eq!(
            t.counts(),
            vec![
                UpdateCount { list: "a".into(), result: "failed".into(), count: 1 },
                UpdateCount { list: "a".into(), result: "updated".into(), count: 2 },
                UpdateCount { list: "b".into(), result: "other".into(), count: 1 },
            ]
        );
    }

    #[test]
    fn list_labels_keep_configured_names_and_mask_anything_else() {
        assert_eq!(list_label("jp-csam_2024.v1"), "jp-csam_2024.v1");
        let masked = list_label("a b/c\"d");
        assert!(masked.starts_with("a_b_c_d-") && masked.len() == "a_b_c_d-".len() + 8, "{masked}");
        assert!(list_label("ドメイン").starts_with("____-"));
        assert!(list_label("").starts_with('-'));
        assert_eq!(list_label(&"x".repeat(100)).len(), MAX_LIST_LABEL);
        // Names that mask or cut alike still get series of their own, and keep them.
        assert_ne!(list_label("児童.list"), list_label("違法.list"));
        assert_ne!(list_label("a b.list"), list_label("a_b.list"));
        assert_ne!(list_label(&"x".repeat(100)), list_label(&"x".repeat(101)));
        assert_eq!(list_label("児童.list"), list_label("児童.list"));
    }

    fn set() -> ListSet {
        use crate::lists::{ListInfo, parse_list};
        use std::path::Path;
        let mut set = ListSet::new();
        let (p, _) =
            parse_list(Path::new("a"), "192.0.2.1\n198.51.100.0/24\n2001:db8::/32\nexample.com\n", ListKind::Block)
                .unwrap();
        set.add_list(ListInfo { name: "a".into(), source: "a".into(), shadow: false }, Path::new("a"), p).unwrap();
        let (p, _) = parse_list(Path::new("s"), "example.net\n203.0.113.9\n", ListKind::Block).unwrap();
        set.add_list(ListInfo { name: "s".into(), source: "s".into(), shadow: true }, Path::new("s"), p).unwrap();
        let (p, _) = parse_list(Path::new("ok"), "192.0.2.1\nsafe.example.com\n", ListKind::Allow).unwrap();
        set.add_list(ListInfo { name: "ok".into(), source: "ok".into(), shadow: false }, Path::new("ok"), p).unwrap();
        set
    }

    #[test]
    fn map_fill_counts_the_live_set_against_one_generation() {
        let maps = MapFill::from_list_set(&set());
        let got: Vec<(&str, u64, u64)> = maps.iter().map(|m| (m.map, m.entries, m.capacity)).collect();
        let half = |c: u32| u64::from(c / 2);
        assert_eq!(
            got,
            vec![
                ("names", 3, half(capacity::NAMES)),
                ("block_v4", 3, half(capacity::BLOCK_PREFIXES)),
                ("block_v6", 1, half(capacity::BLOCK_PREFIXES)),
                ("allow_v4", 1, half(capacity::ALLOW_PREFIXES)),
                ("allow_v6", 0, half(capacity::ALLOW_PREFIXES)),
            ]
        );
    }

    #[test]
    fn hits_are_summed_by_list() {
        let set = set();
        let id = |list: &str, n: usize| {
            let li = set.lists().iter().position(|l| l.name == list).unwrap() as u16;
            set.entries().iter().filter(|e| e.list == li).nth(n).unwrap().id
        };
        let hits = hits_by_list(&set, &[(id("a", 0), 5), (id("a", 3), 2), (id("s", 1), 7), (9999, 1)]);
        assert_eq!(hits, BTreeMap::from([("a".to_string(), 7), ("s".to_string(), 7)]));
    }

    #[test]
    fn list_metrics_come_from_the_view() {
        use crate::update::{ListStatus, ListView};
        let list = |name: &str, shadow, status: Option<ListStatus>, fetched_at| ListView {
            name: name.into(),
            source: "https://lists.example/x.txt".into(),
            format: "text".into(),
            action: "block".into(),
            shadow,
            signed: true,
            entries: 12,
            summary: None,
            digest: None,
            fetched_at,
            poll_secs: None,
            status,
        };
        let view = ListsView {
            generation: 4,
            installed_at: Some(100),
            previous: None,
            previous_in_kernel: false,
            previous_kept_secs: None,
            entries: 24,
            lists: vec![
                list("a", false, Some(ListStatus::ok("not_modified", 500)), Some(400)),
                list("s", true, Some(ListStatus::problem("failed", "fetch", "timeout")), Some(300)),
                list("new", false, None, None),
            ],
        };
        let got = ListMetrics::from_view(&view, &BTreeMap::from([("s".to_string(), 9)]));
        let want = [
            ("a", false, 0, Some(500), "not_modified"),
            ("s", true, 9, Some(300), "failed"),
            ("new", false, 0, None, ""),
        ];
        assert_eq!(got.len(), want.len());
        for (g, (name, shadow, hits, at, result)) in got.iter().zip(want) {
            assert_eq!(
                (g.name.as_str(), g.shadow, g.entries, g.hits, g.last_update_unix, g.last_result.as_str()),
                (name, shadow, 12, hits, at, result)
            );
        }
    }

    #[test]
    fn ratio_of_an_empty_capacity_is_zero() {
        assert_eq!(MapFill { map: "names", entries: 5, capacity: 0 }.ratio(), 0.0);
        assert_eq!(MapFill { map: "names", entries: 1, capacity: 4 }.ratio(), 0.25);
    }

    #[test]
    fn process_stats_are_read_from_proc() {
        let p = ProcessStats::current().expect("/proc/self readable");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
        assert!(p.threads >= 1 && p.open_fds >= 1 && p.max_fds >= p.open_fds);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(p.start_time_seconds > now - 86_400.0 * 365.0 && p.start_time_seconds <= now + 5.0, "{p:?}");
    }
}
