//! The daemon's side of the metrics: one snapshot per scrape, aggregate only.

use std::sync::Mutex;

use blocker_common::capacity;

use super::{Daemon, lock};
use crate::{
    metrics::{CounterCell, FlowPressure, ListMetrics, MapFill, Snapshot, UpdateTally, hits_by_list},
    update::UpdateReport,
};

/// Update outcomes since start, for `blocker_list_updates_total`.
#[derive(Default)]
pub struct Tally(Mutex<UpdateTally>);

impl Tally {
    pub fn report(&self, r: &UpdateReport) {
        lock(&self.0).record_report(r);
    }

    pub fn rolled_back(&self, lists: &[String]) {
        let mut t = lock(&self.0);
        for l in lists {
            t.record(l, "rolled_back");
        }
    }
}

impl Daemon {
    /// What a scrape shows. The datapath is locked only to read counters and switches.
    pub fn snapshot(&self) -> Snapshot {
        let live = self.live();
        let view = self.view();
        let info = self.info();
        let (counters, hits, bypass, flows, xdp_forward) = {
            let dp = self.datapath();
            (
                dp.counters().ok(),
                dp.entry_hits().unwrap_or_default(),
                dp.config().flags & blocker_common::config::FLAG_BYPASS != 0,
                dp.flow_entries().unwrap_or(0),
                if dp.is_xdp_forwarding() { dp.forward_counts().ok() } else { None },
            )
        };
        Snapshot {
            counters: counters.map(|c| CounterCell::from_counters(&c)).unwrap_or_default(),
            lists: ListMetrics::from_view(&view, &hits_by_list(&live, &hits)),
            generation: view.generation,
            generation_installed_unix: view.installed_at,
            maps: MapFill::from_list_set(&live),
            attach_mode: (!info.attach_mode.is_empty()).then(|| info.attach_mode.clone()),
            bypass,
            flows: {
                let upkeep = lock(&self.flows);
                FlowPressure { entries: flows, capacity: capacity::FLOWS as u64, idle_forgotten: upkeep.idle_total, counts_repaired: upkeep.repaired_total }
            },
            update_results: lock(&self.tally.0).counts(),
            quic: self.quic_stats().map(|q| q.metrics()),
            xdp_forward: xdp_forward.map(|c| c.rows()),
            xdp_forward_route_cached: xdp_forward.map(|c| c.route_cached),
            ..Snapshot::default()
        }
    }
}
