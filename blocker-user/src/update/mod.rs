//! List operations that cannot hurt the network: each update is pulled, verified, parsed,
//! checked by the guards and only then installed as a whole new generation beside the live
//! one; the generation before stays for an instant rollback; the last good lists are kept in
//! the state directory and loaded at start before the first pull.
//!
//! Lists are updated independently: a list whose update is refused (bad signature, bad line,
//! guard) keeps its last good version while the others move on. A refusal never touches the
//! kernel, so the live set and its counters stay exactly as they were.

pub mod pull;
mod report;
mod spec;
mod state;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use blocker_common::capacity;

pub use pull::{PullError, Pulled, Version, digest};
pub use report::{ListOutcome, ListStatus, ListView, ListsView, Outcome, RollbackReport, UpdateReport};
pub use spec::{DEFAULT_ROLLBACK_WINDOW, ListSpec, Settings, SettingsError};
pub use state::{Manifest, Pointers, StateDir};

use crate::{
    datapath::{DatapathError, InstallReport},
    lists::{ListError, ListSet, ListSummary, ParsedEntry, Refusal, Validators, check_guards, diff_sets},
};

/// What receives generations: the datapath, or a recorder in tests.
pub trait Installer {
    /// Makes `set` the live generation, built beside the live one and switched in one step.
    fn install(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError>;
    /// Makes the generation before the live one live again in one step, if the kernel still
    /// holds it whole; Ok(false) when it does not (the caller installs it again instead).
    fn switch_back(&mut self) -> Result<bool, DatapathError>;
    /// What the kernel holds beside the live generation is not the manager's previous one
    /// (after a restore over adopted maps): a rollback must install, not switch.
    fn forget_previous(&mut self) {}
    /// The rollback window is over: what the kernel holds beside the live generation is no
    /// longer one to switch to. A rollback after it installs the previous generation again.
    fn end_rollback_window(&mut self) -> Result<(), DatapathError> {
        Ok(())
    }
}

/// What the kernel holds beside the live generation, for the rollback window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Beside {
    /// Nothing (a fresh start, or the rollback window is over).
    Nothing,
    /// The previous generation, whole, since then: a rollback is one write.
    Previous(Instant),
    /// Something no rollback switches to (what a rollback left, or what adopted maps held).
    Stale,
}

/// What to update.
#[derive(Clone, Debug, Default)]
pub struct UpdateRequest {
    /// Only these lists (by name); all when empty.
    pub lists: Vec<String>,
    /// Apply even what the guards refuse, and pull unconditionally.
    pub force: bool,
    /// Pull, verify, parse and compare, but install nothing and remember nothing.
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no previous generation to roll back to")]
    NothingToRollBack,
    #[error("unknown list {0:?}")]
    UnknownList(String),
    #[error("kernel maps: {0}")]
    Datapath(#[from] DatapathError),
    #[error("state directory: {0}")]
    State(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

/// One generation: a version of each list, and (for the live one) the set built from them.
#[derive(Clone)]
struct Generation {
    number: u64,
    installed_at: u64,
    versions: BTreeMap<String, Version>,
    summaries: BTreeMap<String, ListSummary>,
    set: Arc<ListSet>,
    /// For the generation before the live one, whose set is not kept: the ids its entries had
    /// (`ListSet::id_map`), which the kernel still holds in the other slot. None when unknown
    /// (loaded from the state directory).
    ids: Option<Arc<(u64, Vec<u32>)>>,
}

pub struct ListManager {
    settings: Settings,
    state: Option<StateDir>,
    current: Option<Generation>,
    /// The generation before: kept whole in the kernel (until the next install) and on disk.
    previous: Option<Generation>,
    refused: BTreeMap<String, BTreeSet<String>>,
    status: BTreeMap<String, ListStatus>,
    next_poll: BTreeMap<String, Instant>,
    last_number: u64,
    beside: Beside,
}

/// Why a list's update did not go in, as recorded per list.
enum Held {
    Refused { kind: &'static str, reason: String },
    /// A list refused for its content: `log` says where, without the lines themselves.
    Invalid { reason: String, log: String },
    Failed { kind: &'static str, reason: String },
}

impl ListManager {
    pub fn new(settings: Settings, state: Option<StateDir>) -> ListManager {
        let now = Instant::now();
        let next_poll = settings.specs.iter().filter(|s| s.poll.is_some()).map(|s| (s.name.clone(), now)).collect();
        ListManager {
            settings,
            state,
            current: None,
            previous: None,
            refused: BTreeMap::new(),
            status: BTreeMap::new(),
            next_poll,
            last_number: 0,
            beside: Beside::Nothing,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Takes new settings (a reloaded configuration): lists added are pulled at the next
    /// update, lists removed leave the next generation, polls follow the new intervals.
    pub fn set_settings(&mut self, settings: Settings) {
        let now = Instant::now();
        self.next_poll.retain(|name, _| settings.specs.iter().any(|s| &s.name == name && s.poll.is_some()));
        for s in settings.specs.iter().filter(|s| s.poll.is_some()) {
            self.next_poll.entry(s.name.clone()).or_insert(now);
        }
        self.status.retain(|name, _| settings.specs.iter().any(|s| &s.name == name));
        self.settings = settings;
    }

    /// The live set (empty before the first install).
    pub fn live(&self) -> Arc<ListSet> {
        self.current.as_ref().map(|g| g.set.clone()).unwrap_or_default()
    }

    pub fn generation(&self) -> u64 {
        self.current.as_ref().map(|g| g.number).unwrap_or(0)
    }

    /// Loads the last good generation from the state directory and installs it: blocking
    /// resumes with what was live before, before any list server is asked. Lists no longer
    /// configured are left out; a list whose stored version fails verification is left out
    /// (and reported), the others still load.
    pub fn restore(&mut self, target: &mut dyn Installer) -> Result<Option<UpdateReport>, UpdateError> {
        let Some(state) = &self.state else { return Ok(None) };
        let pointers = state.pointers()?;
        self.refused = pointers.refused.clone();
        let numbers = [pointers.current, pointers.previous];
        self.last_number = numbers.into_iter().flatten().max().unwrap_or(0);
        let Some(number) = pointers.current else { return Ok(None) };
        let start = Instant::now();
        let stored = state.read_generation(number)?;
        let mut report = UpdateReport::new(Outcome::Restored { generation: number });
        let mut versions = BTreeMap::new();
        for spec in &self.settings.specs {
            let Some(v) = stored.versions.get(&spec.name) else { continue };
            if v.source != spec.source.to_string() {
                report.lists.push(ListOutcome::note(&spec.name, "skipped", "the stored version came from another source"));
                continue;
            }
            if let Err(e) = pull::verify(spec, self.settings.key.as_ref(), v) {
                report.lists.push(ListOutcome::note(&spec.name, "refused", &e.to_string()));
                continue;
            }
            versions.insert(spec.name.clone(), v.clone());
        }
        let (set, summaries) = match self.build(&versions, None) {
            Ok(x) => x,
            // Logged: places and counts only (`ListError::log_line`), never the lines.
            Err((name, e)) => return Err(UpdateError::Invalid(format!("stored list {name}: {}", e.log_line()))),
        };
        let install = target.install(&set)?;
        target.forget_previous();
        self.beside = Beside::Stale;
        for name in versions.keys() {
            report.lists.push(ListOutcome::note(name, "restored", "loaded from the state directory"));
            self.status.insert(name.clone(), ListStatus::ok("restored", stored.manifest.installed_at));
        }
        self.current = Some(Generation {
            number,
            installed_at: stored.manifest.installed_at,
            versions,
            summaries,
            set: Arc::new(set),
            ids: None,
        });
        // The kernel does not hold the generation before a restart: a rollback after a
        // restart installs it from the state directory.
        if let Some(p) = pointers.previous {
            if let Ok(prev) = state.read_generation(p) {
                self.previous = Some(Generation {
                    number: p,
                    installed_at: prev.manifest.installed_at,
                    versions: prev.versions,
                    summaries: BTreeMap::new(),
                    set: Arc::new(ListSet::new()),
                    ids: None,
                });
            }
        }
        report.install = Some(install);
        report.elapsed = start.elapsed();
        Ok(Some(report))
    }

    /// Lists whose poll interval has passed.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.next_poll.iter().filter(|(_, at)| **at <= now).map(|(n, _)| n.clone()).collect()
    }

    /// When the next poll is due, if any list polls.
    pub fn next_due(&self) -> Option<Instant> {
        self.next_poll.values().min().copied()
    }

    /// Pulls the requested lists and installs what changed, unless refused.
    pub fn update(&mut self, target: &mut dyn Installer, req: &UpdateRequest) -> Result<UpdateReport, UpdateError> {
        for name in &req.lists {
            if self.settings.spec(name).is_none() {
                return Err(UpdateError::UnknownList(name.clone()));
            }
        }
        let start = Instant::now();
        let wanted = |name: &str| req.lists.is_empty() || req.lists.iter().any(|n| n == name);
        let live_versions = self.current.as_ref().map(|g| g.versions.clone()).unwrap_or_default();
        let mut candidate = live_versions.clone();
        // Lists no longer configured leave the next generation.
        candidate.retain(|name, _| self.settings.spec(name).is_some());
        let dropped = candidate.len() != live_versions.len();
        let mut outcomes: BTreeMap<String, ListOutcome> = BTreeMap::new();
        let mut held: BTreeMap<String, Held> = BTreeMap::new();
        let mut changed: BTreeSet<String> = BTreeSet::new();

        for spec in self.settings.specs.clone() {
            if !wanted(&spec.name) {
                continue;
            }
            if !req.dry_run {
                if let Some(p) = spec.poll {
                    self.next_poll.insert(spec.name.clone(), Instant::now() + p);
                }
            }
            let live = live_versions.get(&spec.name);
            let validators = match (req.force, live) {
                (false, Some(v)) => v.validators.clone(),
                _ => Validators::default(),
            };
            match pull::pull(&spec, self.settings.key.as_ref(), &validators) {
                Ok(Pulled::NotModified) => {
                    outcomes.insert(spec.name.clone(), ListOutcome::note(&spec.name, "not_modified", "the server says it has not changed"));
                }
                Ok(Pulled::Fetched(v)) => {
                    if live.is_some_and(|l| l.digest == v.digest) {
                        // Same content: keep the live version, with the fresher validators.
                        if let Some(l) = candidate.get_mut(&spec.name) {
                            l.validators = v.validators.clone();
                            l.fetched_at = v.fetched_at;
                        }
                        outcomes.insert(spec.name.clone(), ListOutcome::note(&spec.name, "unchanged", "same content as the live version"));
                    } else if !req.force && self.refused.get(&spec.name).is_some_and(|r| r.contains(&v.digest)) {
                        held.insert(
                            spec.name.clone(),
                            Held::Refused {
                                kind: "rolled_back",
                                reason: format!(
                                    "list {}: this version was rolled back by an operator; apply it again with --force",
                                    spec.name
                                ),
                            },
                        );
                    } else {
                        candidate.insert(spec.name.clone(), v);
                        changed.insert(spec.name.clone());
                    }
                }
                Err(e) => {
                    let kind = e.kind();
                    let reason = format!("list {}: {e}", spec.name);
                    // A bad or missing signature, or an oversized body, is the update's fault: it
                    // is refused. A server that cannot be reached is a failure to pull.
                    let h = if kind == "fetch" { Held::Failed { kind, reason } } else { Held::Refused { kind, reason } };
                    held.insert(spec.name.clone(), h);
                }
            }
        }

        // Parse the changed lists; a list with any bad entry keeps its live version.
        let mut parsed: BTreeMap<String, (Vec<ParsedEntry>, ListSummary)> = BTreeMap::new();
        for name in changed.clone() {
            let spec = self.settings.spec(&name).expect("checked above").clone();
            match pull::parse(&spec, &candidate[&name]) {
                Ok(p) => {
                    parsed.insert(name, p);
                }
                Err(e) => {
                    held.insert(name.clone(), Held::Invalid { reason: e.to_string(), log: e.log_line() });
                    self.revert(&mut candidate, &live_versions, &name);
                    changed.remove(&name);
                }
            }
        }

        let live_set = self.live();
        let mut report = UpdateReport::new(Outcome::Unchanged);
        // Build, check capacity and guards; a list the guards refuse is put back to its live
        // version and the set built again (at most once per list).
        let (set, summaries, diff) = loop {
            // Entries the live set has keep their ids: the install writes only what changed.
            let (set, summaries) = match self.build_with(&candidate, &mut parsed, Some(&live_set)) {
                Ok(x) => x,
                // A new version its list's settings refuse (allow entries in a shadow list):
                // that list keeps its live version, and the others go on.
                Err((name, e)) if changed.contains(&name) => {
                    held.insert(name.clone(), Held::Invalid { reason: e.to_string(), log: e.log_line() });
                    self.revert(&mut candidate, &live_versions, &name);
                    changed.remove(&name);
                    continue;
                }
                Err((name, e)) => return Err(UpdateError::Invalid(format!("live list {name} no longer builds: {}", e.log_line()))),
            };
            if let Some(reason) = over_capacity(&set) {
                for name in std::mem::take(&mut changed) {
                    held.insert(name.clone(), Held::Refused { kind: "oversize", reason: format!("list {name}: {reason}") });
                    self.revert(&mut candidate, &live_versions, &name);
                }
                continue;
            }
            let diff = diff_sets(&live_set, &set);
            let refusals: Vec<(u16, Refusal)> =
                if req.force { Vec::new() } else { check_guards(&self.settings.guards, &live_set, &set, &diff) };
            let refused_now: Vec<(String, Refusal)> = refusals
                .into_iter()
                .map(|(i, r)| (set.lists()[i as usize].name.clone(), r))
                .filter(|(name, _)| changed.contains(name))
                .collect();
            if refused_now.is_empty() {
                break (set, summaries, diff);
            }
            for (name, r) in refused_now {
                report.refusals.push(r.clone());
                held.insert(name.clone(), Held::Refused { kind: "guard", reason: r.to_string() });
                self.revert(&mut candidate, &live_versions, &name);
                changed.remove(&name);
            }
        };

        for (name, h) in &held {
            let (status, kind, reason, log) = match h {
                Held::Refused { kind, reason } => ("refused", *kind, reason, None),
                Held::Invalid { reason, log } => ("refused", "parse", reason, Some(log.clone())),
                Held::Failed { kind, reason } => ("failed", *kind, reason, None),
            };
            outcomes.insert(
                name.clone(),
                ListOutcome { list: name.clone(), result: status.into(), kind: Some(kind.into()), detail: reason.clone(), diff: None, log },
            );
        }
        for name in &changed {
            outcomes.insert(
                name.clone(),
                ListOutcome {
                    list: name.clone(),
                    result: "updated".into(),
                    kind: None,
                    detail: String::new(),
                    diff: diff.list(name).cloned(),
                    log: None,
                },
            );
        }
        report.lists = outcomes.into_values().collect();
        report.diff = diff;
        report.elapsed = start.elapsed();

        if req.dry_run {
            report.outcome = if changed.is_empty() && !dropped { Outcome::Unchanged } else { Outcome::DryRun };
            return Ok(report);
        }
        self.record_status(&report);
        // Validators of unchanged lists may have moved on; they matter for the next pull only.
        if let Some(g) = &mut self.current {
            for (name, v) in &candidate {
                if let Some(live) = g.versions.get_mut(name) {
                    if live.digest == v.digest {
                        live.validators = v.validators.clone();
                        live.fetched_at = v.fetched_at;
                    }
                }
            }
        }
        if changed.is_empty() && !dropped && self.current.is_some() {
            report.outcome = if held.is_empty() { Outcome::Unchanged } else { Outcome::Refused };
            return Ok(report);
        }
        let install = target.install(&set)?;
        self.beside = Beside::Previous(Instant::now());
        self.last_number += 1;
        let g = Generation { number: self.last_number, installed_at: pull::now(), versions: candidate, summaries, set: Arc::new(set), ids: None };
        report.outcome = Outcome::Applied { generation: g.number };
        report.install = Some(install);
        let mut prev = self.current.replace(g);
        if let Some(p) = &mut prev {
            // The previous set is rebuilt from its versions if it is ever rolled back to;
            // holding it would double the controller's memory for a rare operation. Its ids
            // are kept, as the kernel holds them.
            p.ids = Some(Arc::new(p.set.id_map()));
            p.set = Arc::new(ListSet::new());
        }
        self.previous = prev;
        self.persist()?;
        for name in &changed {
            self.status.insert(name.clone(), ListStatus::ok("updated", pull::now()));
        }
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// Makes the previous generation live again: in one step when the kernel still holds it,
    /// else by installing it again. The versions rolled away from are remembered as refused,
    /// so the next poll does not bring them straight back.
    pub fn rollback(&mut self, target: &mut dyn Installer) -> Result<RollbackReport, UpdateError> {
        let Some(prev) = self.previous.take() else { return Err(UpdateError::NothingToRollBack) };
        let start = Instant::now();
        let live = self.live();
        let (mut set, summaries) = match self.build(&prev.versions, None) {
            Ok(x) => x,
            Err((name, e)) => {
                self.previous = Some(prev);
                return Err(UpdateError::Invalid(format!("previous list {name} no longer parses: {}", e.log_line())));
            }
        };
        // The set must carry the ids the kernel's copy of it carries. If it cannot (its ids are
        // not known, or the lists' settings changed since, so that it is not that copy), it is
        // installed again, with the live set's ids where they agree.
        if !prev.ids.as_ref().is_some_and(|ids| set.apply_id_map(ids)) {
            set.inherit_ids(&live);
            target.forget_previous();
        }
        drop(live);
        let instant = target.switch_back()?;
        if !instant {
            target.install(&set)?;
        }
        // Beside the live generation now: the one rolled away from, which nothing switches to.
        self.beside = Beside::Stale;
        let from = self.current.take().expect("a previous generation implies a current one");
        for (name, v) in &from.versions {
            if prev.versions.get(name).map(|p| &p.digest) != Some(&v.digest) {
                self.refused.entry(name.clone()).or_default().insert(v.digest.clone());
            }
        }
        let to = prev.number;
        self.current = Some(Generation { set: Arc::new(set), summaries, ids: None, ..prev });
        self.persist()?;
        for name in self.current.as_ref().expect("just set").versions.keys() {
            self.status.insert(name.clone(), ListStatus::ok("rolled_back", pull::now()));
        }
        Ok(RollbackReport { from: from.number, to, instant, elapsed: start.elapsed() })
    }

    /// Ends the rollback window once it is over (and at once for anything else held beside the
    /// live one, unless the window is "forever"): a rollback then installs instead of
    /// switching. Returns whether it ended one. Called from the daemon's loop.
    pub fn end_rollback_window_due(&mut self, now: Instant, target: &mut dyn Installer) -> Result<bool, UpdateError> {
        let Some(window) = self.settings.rollback_window else { return Ok(false) };
        let due = match self.beside {
            Beside::Nothing => false,
            Beside::Previous(since) => now.saturating_duration_since(since) >= window,
            Beside::Stale => true,
        };
        if !due {
            return Ok(false);
        }
        target.end_rollback_window()?;
        self.beside = Beside::Nothing;
        Ok(true)
    }

    /// Whether a rollback would be one step (the previous generation is still one to switch
    /// back to: within the rollback window), and for how long more.
    fn rollback_in_kernel(&self) -> (bool, Option<u64>) {
        match (self.beside, &self.previous) {
            (Beside::Previous(since), Some(_)) => {
                let left = self.settings.rollback_window.map(|w| w.saturating_sub(since.elapsed()).as_secs());
                (true, left)
            }
            _ => (false, None),
        }
    }

    /// What `blocker lists show` prints.
    pub fn view(&self) -> ListsView {
        let live = self.live();
        let mut per_list = vec![0usize; live.lists().len()];
        for e in live.entries() {
            per_list[e.list as usize] += 1;
        }
        let lists = self
            .settings
            .specs
            .iter()
            .map(|spec| {
                let index = live.lists().iter().position(|l| l.name == spec.name);
                let version = self.current.as_ref().and_then(|g| g.versions.get(&spec.name));
                ListView {
                    name: spec.name.clone(),
                    source: spec.source.to_string(),
                    format: spec.format.name().into(),
                    action: spec.options.kind.name().into(),
                    shadow: spec.shadow,
                    signed: spec.is_signed(),
                    entries: index.map(|i| per_list[i]).unwrap_or(0),
                    summary: self.current.as_ref().and_then(|g| g.summaries.get(&spec.name).cloned()),
                    digest: version.map(|v| v.digest.clone()),
                    fetched_at: version.map(|v| v.fetched_at),
                    poll_secs: spec.poll.map(|p| p.as_secs()),
                    status: self.status.get(&spec.name).cloned(),
                }
            })
            .collect();
        ListsView {
            generation: self.generation(),
            installed_at: self.current.as_ref().map(|g| g.installed_at),
            previous: self.previous.as_ref().map(|g| g.number),
            previous_in_kernel: self.rollback_in_kernel().0,
            previous_kept_secs: self.rollback_in_kernel().1,
            entries: live.len(),
            lists,
        }
    }

    fn record_status(&mut self, report: &UpdateReport) {
        for o in &report.lists {
            if o.result == "refused" || o.result == "failed" {
                self.status.insert(o.list.clone(), ListStatus::problem(&o.result, o.kind.as_deref().unwrap_or(""), &o.detail));
            } else if o.result != "updated" {
                self.status.insert(o.list.clone(), ListStatus::ok(&o.result, pull::now()));
            }
        }
    }

    fn revert(&self, candidate: &mut BTreeMap<String, Version>, live: &BTreeMap<String, Version>, name: &str) {
        match live.get(name) {
            Some(v) => candidate.insert(name.to_string(), v.clone()),
            None => candidate.remove(name),
        };
    }

    /// Builds a set from versions, parsing each; with `ids_from`, see `build_with`.
    fn build(&self, versions: &BTreeMap<String, Version>, ids_from: Option<&ListSet>) -> Result<(ListSet, BTreeMap<String, ListSummary>), (String, ListError)> {
        self.build_with(versions, &mut BTreeMap::new(), ids_from)
    }

    /// Builds a set from versions in configuration order; `parsed` holds lists already parsed.
    /// With `ids_from` (the live set), entries it has keep their ids there
    /// (`ListSet::inherit_ids`); without, the set numbers its entries 1, 2, 3, ...
    fn build_with(
        &self,
        versions: &BTreeMap<String, Version>,
        parsed: &mut BTreeMap<String, (Vec<ParsedEntry>, ListSummary)>,
        ids_from: Option<&ListSet>,
    ) -> Result<(ListSet, BTreeMap<String, ListSummary>), (String, ListError)> {
        let mut set = ListSet::new();
        let mut summaries = BTreeMap::new();
        for spec in &self.settings.specs {
            let Some(v) = versions.get(&spec.name) else { continue };
            // Entries parsed before are moved into the set; if the guards send the update
            // round again, the lists still changing are parsed once more (a rare path).
            let (entries, summary) = match parsed.remove(&spec.name) {
                Some(p) => p,
                None => pull::parse(spec, v).map_err(|e| (spec.name.clone(), e))?,
            };
            set.add_list(spec.info(), std::path::Path::new(&v.source), entries).map_err(|e| (spec.name.clone(), e))?;
            summaries.insert(spec.name.clone(), summary);
        }
        if let Some(prev) = ids_from {
            set.inherit_ids(prev);
        }
        Ok((set, summaries))
    }

    fn persist(&mut self) -> Result<(), UpdateError> {
        let Some(state) = &self.state else { return Ok(()) };
        let current = self.current.as_ref().expect("persist follows an install");
        state.write_generation(current.number, current.installed_at, &current.versions)?;
        let pointers = Pointers {
            current: Some(current.number),
            previous: self.previous.as_ref().map(|g| g.number),
            refused: self.refused.clone(),
        };
        state.set_pointers(&pointers)?;
        Ok(())
    }
}

/// How much one generation may hold in each map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub names: usize,
    pub block_prefixes: usize,
    pub allow_prefixes: usize,
}

impl Capacity {
    /// The kernel maps' capacities, halved: two generations share each map.
    pub const KERNEL: Capacity = Capacity {
        names: capacity::per_generation(capacity::NAMES) as usize,
        block_prefixes: capacity::per_generation(capacity::BLOCK_PREFIXES) as usize,
        allow_prefixes: capacity::per_generation(capacity::ALLOW_PREFIXES) as usize,
    };
}

fn over_capacity(set: &ListSet) -> Option<String> {
    over(set, &Capacity::KERNEL)
}

/// Why a set cannot be installed whole into maps of `cap`, if it cannot.
pub fn over(set: &ListSet, cap: &Capacity) -> Option<String> {
    use crate::lists::ListKind;
    let names = set.block_names().count() + set.allow_names().count();
    let max_names = cap.names;
    if names > max_names {
        return Some(format!("the set would hold {names} names; the kernel holds at most {max_names} per generation"));
    }
    for (kind, max) in [(ListKind::Block, cap.block_prefixes), (ListKind::Allow, cap.allow_prefixes)] {
        let (v4, v6) = set.prefixes(kind).fold((0, 0), |(a, b), (_, p)| if p.is_v4() { (a + 1, b) } else { (a, b + 1) });
        if v4.max(v6) > max {
            return Some(format!(
                "the set would hold {v4} IPv4 and {v6} IPv6 {} prefixes; the kernel holds at most {max} of each per generation",
                kind.name()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;

/// Ids across updates and rollbacks (the rest of the update rules are in tests.rs).
#[cfg(test)]
mod id_tests {
    use std::fs;

    use super::*;
    use crate::config::ControllerConfig;

    /// Records the ids of every set installed, and holds the one before like the kernel does.
    #[derive(Default)]
    struct Kernel {
        installed: Vec<Vec<(String, u32)>>,
        forgotten: bool,
    }

    fn ids(set: &ListSet) -> Vec<(String, u32)> {
        set.entries().iter().map(|e| (e.target.to_string(), e.id)).collect()
    }

    impl Installer for Kernel {
        fn install(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError> {
            self.installed.push(ids(set));
            self.forgotten = false;
            Ok(InstallReport::default())
        }
        fn switch_back(&mut self) -> Result<bool, DatapathError> {
            Ok(self.installed.len() > 1 && !self.forgotten)
        }
        fn forget_previous(&mut self) {
            self.forgotten = true;
        }
    }

    fn manager(dir: &std::path::Path, shadow: bool) -> ListManager {
        let text = format!(
            "state_dir = {:?}\n[guards]\nmax_change_ratio = 100.0\n[[list]]\nname = \"a\"\nsource = {:?}\nshadow = {shadow}\n",
            dir.join("state"),
            dir.join("a.txt")
        );
        let c = ControllerConfig::parse(&dir.join("blocker.toml"), &text).unwrap();
        ListManager::new(Settings::from_config(&c).unwrap(), Some(StateDir::open(&c.state_dir()).unwrap()))
    }

    #[test]
    fn updates_keep_ids_and_a_rollback_gets_back_the_ids_the_kernel_holds() {
        let dir = std::env::temp_dir().join(format!("blocker-update-ids-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut m = manager(&dir, false);
        let mut k = Kernel::default();
        fs::write(dir.join("a.txt"), "192.0.2.1\nexample.com\ngone.example\n").unwrap();
        m.update(&mut k, &UpdateRequest::default()).unwrap();
        fs::write(dir.join("a.txt"), "new.example\n192.0.2.1\nexample.com\n").unwrap();
        m.update(&mut k, &UpdateRequest::default()).unwrap();
        let second: Vec<(String, u32)> = [("new.example", 4), ("192.0.2.1/32", 1), ("example.com", 2)].map(|(t, i)| (t.to_string(), i)).into();
        assert_eq!(k.installed[1], second, "kept ids; a new one the live set did not use");
        assert_eq!(ids(&m.live()), second);

        // Back in one step: the rebuilt set has the ids of the generation the kernel holds.
        let r = m.rollback(&mut k).unwrap();
        assert!(r.instant);
        assert_eq!(ids(&m.live()), k.installed[0]);
        assert_eq!(m.live().entry(3).unwrap().target.to_string(), "gone.example");

        // The next update inherits from the rolled-back set.
        fs::write(dir.join("a.txt"), "192.0.2.1\nexample.com\nthird.example\n").unwrap();
        m.update(&mut k, &UpdateRequest { force: true, ..Default::default() }).unwrap();
        assert_eq!(ids(&m.live()), [("192.0.2.1/32", 1), ("example.com", 2), ("third.example", 4)].map(|(t, i)| (t.to_string(), i)));

        // A previous generation whose entries no longer come out the same (the list turned to
        // shadow mode meanwhile) is installed again rather than switched to.
        fs::write(dir.join("a.txt"), "192.0.2.1\n").unwrap();
        m.update(&mut k, &UpdateRequest { force: true, ..Default::default() }).unwrap();
        m.set_settings(manager(&dir, true).settings().clone());
        let installs = k.installed.len();
        let r = m.rollback(&mut k).unwrap();
        assert!(!r.instant && k.installed.len() == installs + 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// How long until `at`, zero if past.
pub fn until(at: Instant) -> Duration {
    at.saturating_duration_since(Instant::now())
}
