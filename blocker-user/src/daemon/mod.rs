//! The running controller: the datapath and the list manager behind locks, serving the control
//! socket and polling list sources. `blocker run` (cli/run.rs) builds one and drives its loop.
//!
//! Locks: an update holds the manager for as long as its pulls take, and the datapath only for
//! the install itself, so packets, counters and the bypass switch never wait on a list server.
//! `lists show` reads a view refreshed after each change, so it never waits either.

mod attach;
mod forward;
mod info;
mod metrics;
pub mod quic;
mod route_follower;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

pub use attach::{AttachPlan, Attached, RunMode};
pub use info::{ListHits, RunInfo, Stats, Status};
pub use quic::{QuicSettings, QuicStats, QuicThread};

use crate::{
    control::{Request, Response},
    datapath::{Datapath, DatapathError, FlowUpkeep, InstallReport},
    lists::ListSet,
    update::{Installer, ListManager, ListsView, RollbackReport, UpdateError, UpdateReport, UpdateRequest},
};

pub struct Daemon {
    dp: Mutex<Datapath>,
    manager: Mutex<ListManager>,
    view: RwLock<ListsView>,
    /// The live set, for lookups and per-list counts without waiting on an update.
    live: RwLock<Arc<ListSet>>,
    info: RwLock<RunInfo>,
    tally: metrics::Tally,
    /// The QUIC judge and its maps, once `start_quic` ran.
    quic: OnceLock<Arc<Mutex<quic::QuicState>>>,
    /// The flow table's entries at the last upkeep (`flow_upkeep`).
    flows: Mutex<FlowUpkeep>,
    /// Router mode's XDP forwarding ports (forward.rs).
    forward: Mutex<forward::ForwardState>,
}

/// The datapath as an installer, locked only while it installs or switches.
struct Locked<'a>(&'a Mutex<Datapath>);

impl Installer for Locked<'_> {
    fn install(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError> {
        lock(self.0).install_generation(set)
    }

    fn switch_back(&mut self) -> Result<bool, DatapathError> {
        lock(self.0).switch_to_previous()
    }

    fn forget_previous(&mut self) {
        Installer::forget_previous(&mut *lock(self.0))
    }

    fn end_rollback_window(&mut self) -> Result<(), DatapathError> {
        Installer::end_rollback_window(&mut *lock(self.0))
    }
}

/// A poisoned lock means a thread panicked while holding it; the data (maps, lists) is still
/// whole, since every change to them is a single install or switch.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Daemon {
    pub fn new(dp: Datapath, manager: ListManager) -> Arc<Daemon> {
        let view = manager.view();
        let live = manager.live();
        Arc::new(Daemon {
            dp: Mutex::new(dp),
            manager: Mutex::new(manager),
            view: RwLock::new(view),
            live: RwLock::new(live),
            info: RwLock::new(RunInfo::default()),
            tally: metrics::Tally::default(),
            quic: OnceLock::new(),
            flows: Mutex::new(FlowUpkeep::default()),
            forward: Mutex::new(forward::ForwardState::default()),
        })
    }

    /// Starts judging QUIC: takes the QUIC maps out of the datapath, turns QUIC on in the
    /// program and starts the thread that reads copied Initials. The thread stops when the
    /// returned handle is dropped; [`Daemon::stop_quic`] then turns QUIC off in the program
    /// (unpinned runs: pinned maps keep QUIC on for the next daemon, see daemon/quic.rs).
    pub fn start_quic(&self, settings: QuicSettings) -> Result<QuicThread, DatapathError> {
        let maps = self.datapath().take_quic()?;
        let (state, thread) = quic::start(maps, self.live(), settings)?;
        let _ = self.quic.set(state);
        // A list change between reading the live set and publishing the state: judge anew.
        self.relist_quic(&self.live());
        Ok(thread)
    }

    /// Turns QUIC off in the program: with no daemon to read copies, UDP to port 443 passes
    /// untouched rather than filling a ring nobody drains.
    pub fn stop_quic(&self) {
        if let Some(q) = self.quic.get() {
            quic::disable(q);
        }
    }

    /// The epoch of the list set QUIC verdicts are judged against (None: QUIC is off).
    pub fn quic_epoch(&self) -> Option<u32> {
        self.quic.get().map(|q| lock(q).judge.epoch())
    }

    /// What the QUIC thread did (None: QUIC is off).
    pub fn quic_stats(&self) -> Option<QuicStats> {
        self.quic.get().map(|q| lock(q).judge.stats())
    }

    fn relist_quic(&self, live: &Arc<ListSet>) {
        if let Some(q) = self.quic.get() {
            let mut q = lock(q);
            if !Arc::ptr_eq(q.judge.live(), live) {
                let q = &mut *q;
                q.judge.relist(live.clone(), &mut q.maps);
            }
        }
    }

    /// The datapath, for attaching, counters and switches.
    pub fn datapath(&self) -> MutexGuard<'_, Datapath> {
        lock(&self.dp)
    }

    pub fn live(&self) -> Arc<ListSet> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records what `run` set up (for `status` and metrics).
    pub fn set_info(&self, info: RunInfo) {
        *self.info.write().unwrap_or_else(|e| e.into_inner()) = info;
    }

    pub fn info(&self) -> RunInfo {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn view(&self) -> ListsView {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn refresh(&self, manager: &ListManager) {
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = manager.view();
        let live = manager.live();
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = live.clone();
        // QUIC verdicts were judged against the old set: they must not outlive it.
        self.relist_quic(&live);
    }

    /// Loads the persisted generation (before any pull).
    pub fn restore(&self) -> Result<Option<UpdateReport>, UpdateError> {
        let mut m = lock(&self.manager);
        let r = m.restore(&mut Locked(&self.dp));
        self.refresh(&m);
        if let Ok(Some(r)) = &r {
            log_report(r);
            self.tally.report(r);
        }
        r
    }

    /// Pulls and installs; every outcome is logged (counts and places, never entries).
    pub fn update(&self, req: &UpdateRequest) -> Result<UpdateReport, UpdateError> {
        let mut m = lock(&self.manager);
        let r = m.update(&mut Locked(&self.dp), req);
        self.refresh(&m);
        match &r {
            Ok(r) if !req.dry_run => {
                log_report(r);
                self.tally.report(r);
            }
            Ok(_) => {}
            Err(e) => log::error!("list update failed: {e}; the live generation stays"),
        }
        r
    }

    pub fn rollback(&self) -> Result<RollbackReport, UpdateError> {
        let mut m = lock(&self.manager);
        let r = m.rollback(&mut Locked(&self.dp));
        self.refresh(&m);
        match &r {
            Ok(r) => {
                log::warn!("{r}");
                self.tally.rolled_back(&m.view().lists.iter().map(|l| l.name.clone()).collect::<Vec<_>>());
            }
            Err(e) => log::error!("rollback failed: {e}"),
        }
        r
    }

    /// Replaces the list settings (SIGHUP with a changed configuration).
    pub fn set_settings(&self, settings: crate::update::Settings) {
        let mut m = lock(&self.manager);
        m.set_settings(settings);
        self.refresh(&m);
    }

    /// Pins again what someone unpinned under the running daemon, and says so.
    pub fn check_pins(&self) {
        match self.datapath().repin_missing() {
            Ok(done) if !done.is_empty() => {
                log::warn!("pins were removed under the running daemon; pinned again so blocking outlives it: {}", done.join(", "))
            }
            Ok(_) => {}
            Err(e) => log::error!("pins were removed under the running daemon and cannot be pinned again: {e}; blocking ends with this daemon"),
        }
    }

    /// Upkeep of the flow table (`Datapath::flow_upkeep`): forgets flows idle since the last
    /// upkeep and repairs the bucket counts evictions left. Run every `FLOW_UPKEEP`; logs only
    /// totals (no flow is ever named).
    pub fn flow_upkeep(&self) {
        let mut last = lock(&self.flows);
        match self.datapath().flow_upkeep(&mut last) {
            Ok(r) if r.idle > 0 || r.repaired > 0 => {
                log::info!("flow table upkeep: {} idle flows forgotten, {} stale bucket counts repaired; {} flows followed", r.idle, r.repaired, r.entries)
            }
            Ok(_) => {}
            Err(e) => log::error!("flow table upkeep failed: {e}; blocking is unaffected, idle flows stay until evicted"),
        }
    }

    /// Pulls the lists whose poll interval has passed.
    pub fn poll_due(&self) {
        let due = lock(&self.manager).due(std::time::Instant::now());
        if !due.is_empty() {
            let _ = self.update(&UpdateRequest { lists: due, ..Default::default() });
        }
        self.end_rollback_window_due();
    }

    /// Ends the rollback window once it is over.
    fn end_rollback_window_due(&self) {
        let mut m = lock(&self.manager);
        match m.end_rollback_window_due(std::time::Instant::now(), &mut Locked(&self.dp)) {
            Ok(true) => {
                self.refresh(&m);
                log::info!("rollback window over: a rollback now installs the previous generation again");
            }
            Ok(false) => {}
            Err(e) => log::error!("ending the rollback window failed: {e}; blocking is unaffected"),
        }
    }

    /// Serves one control-socket request.
    pub fn handle(&self, req: Request) -> Response {
        match req {
            Request::ListsShow => {
                let v = self.view();
                let text = v.to_string();
                Response::ok(&v, text)
            }
            Request::ListsDiff { lists } => self.answer(self.update(&UpdateRequest { lists, force: false, dry_run: true })),
            Request::ListsReload { lists, force } => self.answer(self.update(&UpdateRequest { lists, force, dry_run: false })),
            Request::ListsRollback => match self.rollback() {
                Ok(r) => Response::ok(&r, r.to_string()),
                Err(e) => Response::error(e.to_string()),
            },
            Request::Status => match self.status() {
                Ok(s) => Response::ok(&s, s.to_string()),
                Err(e) => Response::error(e.to_string()),
            },
            Request::Stats => match self.stats() {
                Ok(s) => Response::ok(&s, s.to_string()),
                Err(e) => Response::error(e.to_string()),
            },
            Request::Lookup { query } => {
                let live = self.live();
                match live.lookup(&query) {
                    Ok(l) => Response::ok(&l.to_json(), l.render()),
                    Err(e) => Response::error(format!("{query}: {e}")),
                }
            }
            Request::Bypass { on } => match self.datapath().set_bypass(on) {
                Ok(()) => {
                    if on {
                        log::warn!("bypass on: every packet passes untouched until `blocker bypass off`");
                    } else {
                        log::warn!("bypass off: blocking again");
                    }
                    let text = if on { "bypass on: every packet passes untouched" } else { "bypass off: blocking" };
                    Response::ok(&serde_json::json!({ "bypass": on }), text.to_string())
                }
                Err(e) => Response::error(e.to_string()),
            },
        }
    }

    pub fn status(&self) -> Result<Status, DatapathError> {
        let bypass = self.datapath().config().flags & blocker_common::config::FLAG_BYPASS != 0;
        let view = self.view();
        Ok(Status {
            version: env!("CARGO_PKG_VERSION"),
            build: crate::datapath::fingerprint(),
            info: self.info(),
            bypass,
            generation: view.generation,
            previous: view.previous,
            entries: view.entries,
            lists: view.lists.len(),
            quic: self.quic.get().is_some(),
            xdp_forward: self.forward_ports(),
            route_cache: self.route_caching(),
        })
    }

    pub fn stats(&self) -> Result<Stats, DatapathError> {
        let (counters, hits, forward) = {
            let dp = self.datapath();
            let forward = if dp.is_xdp_forwarding() { Some(dp.forward_counts()?) } else { None };
            (dp.counters()?, dp.entry_hits()?, forward)
        };
        let live = self.live();
        let mut stats = Stats::new(&counters, &live, &hits);
        stats.quic = self.quic_stats();
        stats.xdp_forward = forward.map(|c| c.rows());
        stats.xdp_forward_route_cached = forward.map(|c| c.route_cached);
        Ok(stats)
    }

    fn answer(&self, r: Result<UpdateReport, UpdateError>) -> Response {
        match r {
            Ok(r) => {
                let problem = r.has_problems();
                Response::ok(&r, r.to_string()).with_problem(problem)
            }
            Err(e) => Response::error(e.to_string()),
        }
    }
}

/// One structured event per list outcome (fields for log shippers), and one per new
/// generation. Counts and places only: never an entry.
fn log_report(r: &UpdateReport) {
    for l in &r.lists {
        let (added, removed) = l.diff.as_ref().map(|d| (d.added, d.removed)).unwrap_or((0, 0));
        let kind = l.kind.as_deref().unwrap_or("");
        match l.result.as_str() {
            "refused" | "failed" => tracing::warn!(list = %l.list, result = %l.result, kind, "{}", l.log_line()),
            "unchanged" | "not_modified" => tracing::debug!(list = %l.list, result = %l.result, "{}", l.log_line()),
            _ => tracing::info!(list = %l.list, result = %l.result, added, removed, "{}", l.log_line()),
        }
    }
    if let (Some(i), crate::update::Outcome::Applied { generation } | crate::update::Outcome::Restored { generation }) = (&r.install, &r.outcome) {
        tracing::info!(
            generation,
            block_v4 = i.block_v4,
            block_v6 = i.block_v6,
            names_block = i.names_block,
            shadow_prefixes = i.shadow_prefixes,
            shadow_names = i.shadow_names,
            install_ms = i.elapsed.as_millis() as u64,
            "generation {generation} live: {} + {} block prefixes (IPv4 + IPv6), {} + {} allow, {} block + {} allow names, {} + {} in shadow mode (prefixes + names); installed in {:?}",
            i.block_v4, i.block_v6, i.allow_v4, i.allow_v6, i.names_block, i.names_allow, i.shadow_prefixes, i.shadow_names, i.elapsed
        );
    }
}
