//! What `blocker status` and `blocker stats` report: aggregate only (counts by reason, action
//! and list), never an address or a name.

use std::fmt;

use serde::Serialize;

use super::QuicStats;
use crate::{
    datapath::{CounterRow, Counters, ForwardPort},
    lists::ListSet,
};

/// What `run` set up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunInfo {
    pub mode: String,
    pub interfaces: Vec<String>,
    pub attach_mode: String,
    /// The pin directory, when blocking outlives the daemon.
    pub pin_dir: Option<String>,
    /// The maps were adopted from a previous daemon.
    pub adopted: bool,
    pub control_socket: String,
    pub started_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    pub version: &'static str,
    /// The fingerprint of the embedded XDP object.
    pub build: String,
    #[serde(flatten)]
    pub info: RunInfo,
    pub bypass: bool,
    pub generation: u64,
    pub previous: Option<u64>,
    pub entries: usize,
    pub lists: usize,
    /// QUIC Initials are read and QUIC flows judged by name.
    pub quic: bool,
    /// Router mode's XDP forwarding ports (empty: off).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xdp_forward: Vec<ForwardPort>,
    /// XDP forwarding reuses the FIB's answers, following the kernel's routing changes.
    pub route_cache: bool,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "blocker {} (program {})", self.version, self.build)?;
        writeln!(f, "  mode:        {} on {} ({} XDP)", self.info.mode, self.info.interfaces.join(", "), self.info.attach_mode)?;
        match &self.info.pin_dir {
            Some(p) => writeln!(f, "  pinned:      {p}{}", if self.info.adopted { " (adopted at start)" } else { "" })?,
            None => writeln!(f, "  pinned:      no (detached when the daemon exits)")?,
        }
        writeln!(f, "  bypass:      {}", if self.bypass { "ON: every packet passes untouched" } else { "off" })?;
        let prev = self.previous.map(|p| format!(", previous {p} kept for rollback")).unwrap_or_default();
        writeln!(f, "  generation:  {} ({} entries in {} lists{prev})", self.generation, self.entries, self.lists)?;
        writeln!(f, "  quic:        {}", if self.quic { "on: HTTP/3 flows judged by server name" } else { "off: UDP to port 443 judged by address only" })?;
        if !self.xdp_forward.is_empty() {
            writeln!(f, "  forwarding:  in XDP where the route leaves through a port marked yes, else by the kernel")?;
            writeln!(
                f,
                "    route cache  {}",
                if self.route_cache { "on: the FIB's answers reused until the kernel reports a routing change (1 s at most)" } else { "off: every frame asks the FIB" }
            )?;
            for p in &self.xdp_forward {
                match &p.why_not {
                    None => writeln!(f, "    {:<16} yes", p.name)?,
                    Some(why) => writeln!(f, "    {:<16} no: {why}", p.name)?,
                }
            }
        }
        writeln!(f, "  control:     {}", self.info.control_socket)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListHits {
    pub list: String,
    pub shadow: bool,
    /// Packets blocked by the list's entries (counted, for a shadow list).
    pub packets: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub counters: Vec<CounterRow>,
    pub lists: Vec<ListHits>,
    /// The QUIC thread's counts (None: QUIC is off).
    pub quic: Option<QuicStats>,
    /// XDP forwarding's outcomes, `(outcome, packets)` (None: forwarding is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_forward: Option<Vec<(&'static str, u64)>>,
    /// Of the forwarded packets, those whose route came from the route cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_forward_route_cached: Option<u64>,
}

impl Stats {
    pub fn new(counters: &Counters, live: &ListSet, hits: &[(u32, u64)]) -> Stats {
        let mut per_list: Vec<ListHits> =
            live.lists().iter().map(|l| ListHits { list: l.name.clone(), shadow: l.shadow, packets: 0 }).collect();
        for (id, n) in hits {
            if let Some(e) = live.entry(*id) {
                per_list[e.list as usize].packets += n;
            }
        }
        Stats { counters: counters.rows(), lists: per_list, quic: None, xdp_forward: None, xdp_forward_route_cached: None }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<18} {:<12} {:>14} {:>16}", "reason", "action", "packets", "bytes")?;
        for r in &self.counters {
            writeln!(f, "{:<18} {:<12} {:>14} {:>16}", r.reason, r.action, r.packets, r.bytes)?;
        }
        writeln!(f, "per list (packets blocked; shadow lists: would have blocked):")?;
        for l in &self.lists {
            writeln!(f, "  {:<24} {:>14}{}", l.list, l.packets, if l.shadow { "  (shadow)" } else { "" })?;
        }
        if let Some(rows) = &self.xdp_forward {
            writeln!(f, "xdp forwarding (allowed packets: forwarded by the program, or why the kernel got them):")?;
            for (outcome, n) in rows {
                writeln!(f, "  {outcome:<18} {n:>14}")?;
            }
            if let Some(n) = self.xdp_forward_route_cached {
                writeln!(f, "  (forwarded with the route from the cache: {n})")?;
            }
        }
        match &self.quic {
            Some(q) => {
                writeln!(f, "quic (copied Initials read in user space; overload is the quic_overload row above):")?;
                writeln!(f, "  copies read {:>12}   initials opened {:>10}   undecryptable {:>10}   not quic {:>10}", q.copies, q.initials, q.undecryptable, q.not_quic)?;
                writeln!(f, "  names read  {:>12}   without a name  {:>10}   unreadable    {:>10}   evicted  {:>10}", q.sni, q.no_sni, q.failed, q.evictions)?;
                writeln!(
                    f,
                    "  verdicts: blocked {} shadow {} pass {} (given up {}), judged again {}, a previous daemon's carried over {}, refused by the map {}",
                    q.blocked, q.shadowed, q.passed, q.given_up, q.rejudged, q.carried, q.write_errors
                )?;
                writeln!(f, "  held now: {} connections, {} bytes", q.connections, q.memory)
            }
            None => writeln!(f, "quic: off"),
        }
    }
}
