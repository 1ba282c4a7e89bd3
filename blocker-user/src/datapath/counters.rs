//! Reading the per-CPU counter table and presenting it by reason and action.

use aya::maps::{MapData, PerCpuArray};
use blocker_common::{
    counters::CounterTable,
    verdict::{Action, Reason},
};

use super::{Datapath, DatapathError};

/// The counter table summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub CounterTable);

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CounterRow {
    pub reason: &'static str,
    pub action: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

impl Counters {
    pub fn get(&self, reason: Reason, action: Action) -> (u64, u64) {
        let c = self.0.get(reason as u8, action as u8);
        (c.packets, c.bytes)
    }

    pub fn packets(&self, reason: Reason, action: Action) -> u64 {
        self.get(reason, action).0
    }

    /// Non-zero cells, in reason then action order.
    pub fn rows(&self) -> Vec<CounterRow> {
        let mut rows = Vec::new();
        for r in Reason::ALL {
            for a in Action::ALL {
                let (packets, bytes) = self.get(r, a);
                if packets > 0 {
                    rows.push(CounterRow { reason: r.name(), action: a.name(), packets, bytes });
                }
            }
        }
        rows
    }

    /// Cells that grew from `before` to `self`.
    pub fn delta(&self, before: &Counters) -> Vec<(Reason, Action, u64)> {
        let mut out = Vec::new();
        for r in Reason::ALL {
            for a in Action::ALL {
                let d = self.packets(r, a).wrapping_sub(before.packets(r, a));
                if d > 0 {
                    out.push((r, a, d));
                }
            }
        }
        out
    }

    pub fn total_packets(&self) -> u64 {
        self.0.cells.iter().map(|c| c.packets).sum()
    }

    /// A small aligned table for terminals.
    pub fn render(&self) -> String {
        let rows = self.rows();
        if rows.is_empty() {
            return "no packets seen\n".to_string();
        }
        let mut s = format!("{:<14} {:<10} {:>12} {:>14}\n", "reason", "action", "packets", "bytes");
        for r in rows {
            s += &format!("{:<14} {:<10} {:>12} {:>14}\n", r.reason, r.action, r.packets, r.bytes);
        }
        s
    }
}

impl Datapath {
    pub fn counters(&self) -> Result<Counters, DatapathError> {
        let map: PerCpuArray<&MapData, CounterTable> = self.map_ref("COUNTERS")?;
        let per_cpu = map.get(&0, 0).map_err(|e| DatapathError::map("COUNTERS", e))?;
        let mut sum = CounterTable::default();
        for t in per_cpu.iter() {
            sum.accumulate(t);
        }
        Ok(Counters(sum))
    }
}
