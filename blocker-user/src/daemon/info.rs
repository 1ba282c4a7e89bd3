//! What `blocker status` and `blocker stats` report: aggregate only (counts by reason, action
//! and list), never an address or a name.

use std::fmt;

use serde::Serialize;

use crate::{datapath::Counters, datapath::CounterRow, lists::ListSet};

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
        Stats { counters: counters.rows(), lists: per_list }
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
        Ok(())
    }
}
