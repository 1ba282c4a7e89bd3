//! The daemon's QUIC thread: drains the ring of client Initials the program copied
//! (datapath/quic.rs), reads each connection's server name ([`crate::quic::Reader`]), judges
//! it against the live list set with the same matcher as `blocker lookup` (label boundaries,
//! name modes, allow entries winning, shadow lists), and writes the flow's verdict:
//!
//! - a listed name: block (the program drops the flow's datagrams, `quic`/drop);
//! - a name only a shadow list has: shadow (passes, counted `quic`/shadow);
//! - an unlisted or allowed name, a ClientHello without a name, a name no list could hold,
//!   and a flow whose copies keep failing to read ([`GIVE_UP`] of them): pass, so the program
//!   stops copying the flow.
//!
//! **Verdicts and list changes.** Every verdict carries the epoch of the list set it was judged
//! against ([`epoch_of`]: the set's content and entry ids, so equal sets have equal epochs);
//! the program ignores verdicts of another epoch than its QUIC_CONFIG's. When the live set
//! changes, [`QuicJudge::relist`] writes the new set's epoch to the program and judges again
//! the flows it blocked (their names are kept in memory, bounded, never logged): those still
//! listed get a block verdict of the new epoch, those no longer listed get pass. Between the
//! two writes (a few map updates) blocked flows pass. Passed flows are not judged again, as a
//! TCP connection whose ClientHello passed is not.
//!
//! **Restarts.** The QUIC maps are pinned with the others (datapath/pin.rs). A daemon that
//! exits leaves QUIC on: verdicts stay in force, and for the reader's lease ([`LEASE`]) the
//! program goes on copying Initials into the ring, where the next daemon finds them. That one
//! starts with the epoch of its live set, so when it adopted the same lists the verdicts it
//! finds hold as they are. It does not know their names: at its first list change it carries a
//! block or shadow verdict over to the new epoch when the entry it names is in the new set
//! unchanged ([`QuicStats::carried`]); a verdict whose entry left the set or changed lapses,
//! and that flow is judged again from its next client Initial.
//!
//! Privacy: names and addresses stay in memory; counters are aggregate.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use blocker_common::quic::{QUIC_ENABLED, QuicConfig, QuicFlow, QuicVerdict, VERDICT_BLOCK, VERDICT_PASS, VERDICT_SHADOW};
use serde::Serialize;

use crate::{
    datapath::{
        DatapathError, QuicMaps,
        quic::{Copied, DEFAULT_BURST, DEFAULT_RATE, wait_readable},
    },
    lists::{ListSet, Verdict},
    quic::{Limits, Progress, Reader, ReaderStats},
};

/// Datagrams of one flow that read as nothing (not QUIC, not an Initial that opens) before the
/// flow gets a pass verdict and is no longer copied. More than one: a client's later Initials
/// (ACKs under the server's connection ID) do not open here, and may arrive before the name is
/// complete.
pub const GIVE_UP: u8 = 4;

/// Flows remembered at once, each for counting failed reads and for blocked flows' names.
const MAX_FLOWS: usize = 65_536;

/// The reader's lease in the program: while it runs, copies are made and 0-RTT of unjudged
/// flows is held back; renewed every LEASE_RENEWAL. A daemon killed or stuck lets it run out,
/// and QUIC then fails open within LEASE.
pub const LEASE: Duration = Duration::from_secs(5);
const LEASE_RENEWAL: Duration = Duration::from_secs(1);

/// Records drained per lock hold, so a flood never keeps a list change waiting long.
const BATCH: usize = 256;

/// How the daemon runs QUIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuicSettings {
    /// Copies per second per CPU the program may make, and how many at once.
    pub rate: u32,
    pub burst: u32,
    pub limits: Limits,
}

impl Default for QuicSettings {
    fn default() -> Self {
        QuicSettings { rate: DEFAULT_RATE, burst: DEFAULT_BURST, limits: Limits::default() }
    }
}

/// Where verdicts go: the program's map, or a test's table.
pub trait VerdictSink {
    fn write(&mut self, flow: &QuicFlow, v: QuicVerdict) -> Result<(), DatapathError>;
    /// Tells the program the epoch of the live list set.
    fn set_epoch(&mut self, epoch: u32) -> Result<(), DatapathError>;
    /// The block and shadow verdicts of `epoch` held now.
    fn held(&self, epoch: u32) -> Vec<(QuicFlow, QuicVerdict)>;
}

impl VerdictSink for QuicMaps {
    fn write(&mut self, flow: &QuicFlow, v: QuicVerdict) -> Result<(), DatapathError> {
        self.write_verdict(flow, v)
    }

    fn set_epoch(&mut self, epoch: u32) -> Result<(), DatapathError> {
        let mut c = self.config()?;
        c.epoch = epoch;
        self.set_config(c)
    }

    fn held(&self, epoch: u32) -> Vec<(QuicFlow, QuicVerdict)> {
        self.verdicts_of(epoch).into_iter().filter(|(_, v)| v.kind != VERDICT_PASS).collect()
    }
}

/// What the QUIC thread did since start (aggregate only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QuicStats {
    /// Records read from the ring.
    pub copies: u64,
    /// Verdicts written, by kind.
    pub blocked: u64,
    pub shadowed: u64,
    pub passed: u64,
    /// Of the pass verdicts: flows given up after GIVE_UP unreadable datagrams.
    pub given_up: u64,
    /// Blocked flows judged again after a list change.
    pub rejudged: u64,
    /// Block and shadow verdicts this daemon found (a previous daemon's) and carried over to a
    /// new list set whose entry they name is unchanged.
    pub carried: u64,
    /// Verdicts the map refused (the flow stays unjudged: fails open).
    pub write_errors: u64,
    /// The reader's own counters.
    pub datagrams: u64,
    pub initials: u64,
    pub undecryptable: u64,
    pub not_quic: u64,
    pub sni: u64,
    pub no_sni: u64,
    pub failed: u64,
    pub evictions: u64,
    pub connections: u64,
    pub memory: u64,
}

impl QuicStats {
    /// As metrics: event counts under the fixed `event` labels.
    pub fn metrics(&self) -> crate::metrics::QuicMetrics {
        crate::metrics::QuicMetrics {
            events: vec![
                ("copies", self.copies),
                ("initials", self.initials),
                ("undecryptable", self.undecryptable),
                ("not_quic", self.not_quic),
                ("sni", self.sni),
                ("no_sni", self.no_sni),
                ("failed", self.failed),
                ("evictions", self.evictions),
                ("verdict_block", self.blocked),
                ("verdict_shadow", self.shadowed),
                ("verdict_pass", self.passed),
                ("given_up", self.given_up),
                ("rejudged", self.rejudged),
                ("carried", self.carried),
                ("write_errors", self.write_errors),
            ],
            connections: self.connections,
            memory: self.memory,
        }
    }

    fn with_reader(mut self, r: ReaderStats) -> Self {
        self.datagrams = r.datagrams;
        self.initials = r.initials;
        self.undecryptable = r.undecryptable;
        self.not_quic = r.not_quic;
        self.sni = r.sni;
        self.no_sni = r.no_sni;
        self.failed = r.failed;
        self.evictions = r.evictions;
        self.connections = r.connections as u64;
        self.memory = r.memory as u64;
        self
    }
}

/// What one flow is remembered for.
enum Held {
    /// Datagrams of the flow that read as nothing so far.
    Unread(u8),
    /// Blocked or shadow-counted because of this name: judged again when the lists change.
    Judged(String),
}

/// The judging half of the QUIC thread, without threads or maps: feed it copies, it writes
/// verdicts into a [`VerdictSink`].
pub struct QuicJudge {
    reader: Reader,
    live: Arc<ListSet>,
    epoch: u32,
    flows: HashMap<QuicFlow, Held>,
    /// Insertion order of `flows`, oldest first (entries may be stale: checked on eviction).
    order: VecDeque<QuicFlow>,
    stats: QuicStats,
}

/// The epoch verdicts judged against `set` carry: never 0 (no verdict's epoch), equal for
/// equal sets (`ListSet::content_id`).
pub fn epoch_of(set: &ListSet) -> u32 {
    let id = set.content_id();
    ((id >> 32) as u32 ^ id as u32).max(1)
}

/// The verdict a server name gets from a list set: (kind, entry id).
pub fn judge_name(set: &ListSet, name: &str) -> (u32, u32) {
    // What the kernel's name matcher accepts (names.rs): ASCII letters, digits, '-', '_' and
    // dots. Anything else cannot be a listed name on the wire, and passes, as the TLS path's
    // `tls_unparsed` does.
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return (VERDICT_PASS, 0);
    }
    match set.match_name(name) {
        Ok(l) => match l.verdict {
            Verdict::Blocked => (VERDICT_BLOCK, l.block.map_or(0, |m| m.entry.id)),
            Verdict::Shadowed => (VERDICT_SHADOW, l.shadow.map_or(0, |m| m.entry.id)),
            Verdict::Allowed | Verdict::NotListed => (VERDICT_PASS, 0),
        },
        Err(_) => (VERDICT_PASS, 0),
    }
}

impl QuicJudge {
    pub fn new(live: Arc<ListSet>, epoch: u32, limits: Limits) -> Self {
        QuicJudge {
            reader: Reader::new(limits),
            live,
            epoch,
            flows: HashMap::new(),
            order: VecDeque::new(),
            stats: QuicStats::default(),
        }
    }

    /// The list set names are judged against.
    pub fn live(&self) -> &Arc<ListSet> {
        &self.live
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn stats(&self) -> QuicStats {
        self.stats.with_reader(self.reader.stats())
    }

    /// Reads one copied datagram and writes its flow's verdict once there is one. Returns the
    /// verdict written, if any.
    pub fn handle(&mut self, copy: &Copied, sink: &mut dyn VerdictSink) -> Option<QuicVerdict> {
        self.stats.copies += 1;
        match self.reader.feed(&copy.payload) {
            Progress::NeedMore => None,
            Progress::Sni(name) => {
                let (kind, entry_id) = judge_name(&self.live, &name);
                if kind != VERDICT_PASS {
                    self.remember(copy.flow, Held::Judged(name));
                } else {
                    self.flows.remove(&copy.flow);
                }
                Some(self.write(sink, &copy.flow, kind, entry_id))
            }
            Progress::NoSni => {
                self.flows.remove(&copy.flow);
                Some(self.write(sink, &copy.flow, VERDICT_PASS, 0))
            }
            Progress::NotQuic => {
                let n = match self.flows.get(&copy.flow) {
                    // A judged flow's later copy (its verdict was stale, or is being written).
                    Some(Held::Judged(_)) => return None,
                    Some(Held::Unread(n)) => n + 1,
                    None => 1,
                };
                if n >= GIVE_UP {
                    self.flows.remove(&copy.flow);
                    self.stats.given_up += 1;
                    Some(self.write(sink, &copy.flow, VERDICT_PASS, 0))
                } else {
                    self.remember(copy.flow, Held::Unread(n));
                    None
                }
            }
        }
    }

    /// A new live list set: its epoch goes to the program, and the flows blocked (or counted)
    /// by name are judged again against `live`; those whose names this daemon never read (a
    /// previous daemon's) keep their verdict if the entry it names is unchanged.
    pub fn relist(&mut self, live: Arc<ListSet>, sink: &mut dyn VerdictSink) {
        let old = std::mem::replace(&mut self.live, live);
        let epoch = epoch_of(&self.live);
        if epoch == self.epoch {
            // The same entries with the same ids: every verdict holds as it is.
            return;
        }
        let unread: Vec<(QuicFlow, QuicVerdict)> =
            sink.held(self.epoch).into_iter().filter(|(f, _)| !matches!(self.flows.get(f), Some(Held::Judged(_)))).collect();
        self.epoch = epoch;
        if let Err(e) = sink.set_epoch(self.epoch) {
            log::error!("QUIC: cannot write the new list epoch: {e}; verdicts of the old lists stay in force");
        }
        for (flow, v) in unread {
            // The same entry: same id, name, mode and enforcement. (An allow entry new to the
            // set for the flow's own name is not seen: that flow stays blocked until it ends,
            // and the client's next connection is judged afresh.)
            let unchanged = old
                .entry(v.entry_id)
                .and_then(|was| self.live.find_identity(was).filter(|now| now.id == was.id && now.target == was.target));
            if unchanged.is_some() {
                self.stats.carried += 1;
                self.write(sink, &flow, v.kind, v.entry_id);
            }
        }
        let judged: Vec<(QuicFlow, String)> = self
            .flows
            .iter()
            .filter_map(|(f, h)| match h {
                Held::Judged(name) => Some((*f, name.clone())),
                Held::Unread(_) => None,
            })
            .collect();
        for (flow, name) in judged {
            self.stats.rejudged += 1;
            let (kind, entry_id) = judge_name(&self.live, &name);
            if kind == VERDICT_PASS {
                self.flows.remove(&flow);
            }
            self.write(sink, &flow, kind, entry_id);
        }
    }

    fn write(&mut self, sink: &mut dyn VerdictSink, flow: &QuicFlow, kind: u32, entry_id: u32) -> QuicVerdict {
        let v = QuicVerdict { kind, entry_id, epoch: self.epoch, reserved: 0 };
        match sink.write(flow, v) {
            Ok(()) => match kind {
                VERDICT_BLOCK => self.stats.blocked += 1,
                VERDICT_SHADOW => self.stats.shadowed += 1,
                _ => self.stats.passed += 1,
            },
            Err(_) => self.stats.write_errors += 1,
        }
        v
    }

    fn remember(&mut self, flow: QuicFlow, held: Held) {
        if self.flows.insert(flow, held).is_none() {
            self.order.push_back(flow);
        }
        // Oldest first; `order` may name flows already forgotten, which only cost the pop.
        while self.flows.len() > MAX_FLOWS || self.order.len() > 2 * MAX_FLOWS {
            match self.order.pop_front() {
                Some(f) => {
                    if self.flows.len() > MAX_FLOWS {
                        self.flows.remove(&f);
                    }
                }
                None => break,
            }
        }
    }
}

/// The judge and the maps, behind one lock the thread and list changes share.
pub(super) struct QuicState {
    pub maps: QuicMaps,
    pub judge: QuicJudge,
}

impl QuicState {
    /// Reads and judges what waits in the ring, at most `max` records.
    pub fn drain(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(copy) = self.maps.next() else { break };
            self.judge.handle(&copy, &mut self.maps);
            n += 1;
        }
        n
    }

    /// Extends the reader's lease in the program to LEASE from now. A failed write is retried
    /// at the next renewal; if none succeeds the lease runs out and QUIC fails open.
    pub fn renew_lease(&mut self) {
        if let Ok(mut c) = self.maps.config() {
            c.reader_alive_until_ns = monotonic_ns().saturating_add(LEASE.as_nanos() as u64);
            let _ = self.maps.set_config(c);
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock bpf_ktime_get_ns reads.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The running QUIC thread; stops and joins when dropped.
pub struct QuicThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for QuicThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Makes the state, turns QUIC on in the program and starts the thread that drains the ring.
pub(super) fn start(
    mut maps: QuicMaps,
    live: Arc<ListSet>,
    settings: QuicSettings,
) -> Result<(Arc<Mutex<QuicState>>, QuicThread), DatapathError> {
    // The epoch of the live set: the verdicts a previous daemon left against the same lists
    // (pinned maps) hold on.
    let epoch = epoch_of(&live);
    maps.set_config(QuicConfig::new(true, epoch, settings.rate, settings.burst))?;
    let fd = maps.ring_fd();
    let state = Arc::new(Mutex::new(QuicState { maps, judge: QuicJudge::new(live, epoch, settings.limits) }));
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let (state, stop) = (state.clone(), stop.clone());
        std::thread::Builder::new()
            .name("quic".into())
            .spawn(move || {
                let mut renewed = None;
                while !stop.load(Ordering::Relaxed) {
                    if renewed.is_none_or(|at: Instant| at.elapsed() >= LEASE_RENEWAL) {
                        super::lock(&state).renew_lease();
                        renewed = Some(Instant::now());
                    }
                    // Waits outside the lock; a list change never waits on an empty ring.
                    if !wait_readable(fd, Duration::from_millis(100)) {
                        continue;
                    }
                    while super::lock(&state).drain(BATCH) == BATCH {}
                }
            })
            .map_err(|source| DatapathError::Io { name: "QUIC_RING", what: "starting the QUIC thread", source })?
    };
    Ok((state, QuicThread { stop, handle: Some(handle) }))
}

/// Turns QUIC off in the program (UDP to port 443 then passes untouched).
pub(super) fn disable(state: &Mutex<QuicState>) {
    let mut s = super::lock(state);
    if let Ok(mut c) = s.maps.config() {
        c.flags &= !QUIC_ENABLED;
        let _ = s.maps.set_config(c);
    }
}

#[cfg(test)]
mod tests;
