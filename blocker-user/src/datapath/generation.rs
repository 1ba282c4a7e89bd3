//! The two list slots as generations: which slot holds a whole generation, so that a
//! rollback can switch back to the one before in a single write, and never to a slot whose
//! install did not finish.

use blocker_common::config::FLAG_V6_ALL_EXACT;

use super::{Datapath, DatapathError, InstallReport};
use crate::{lists::ListSet, update::Installer};

/// A slot holding a whole generation, with the per-generation switch that goes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotState {
    v6_all_exact: bool,
}

impl SlotState {
    /// The state of the live slot of adopted maps, from the live config.
    pub(super) fn from_flags(flags: u32) -> SlotState {
        SlotState { v6_all_exact: flags & FLAG_V6_ALL_EXACT != 0 }
    }
}

impl Datapath {
    /// The slot packets use now.
    pub fn live_slot(&self) -> u32 {
        self.config.slot & 1
    }

    /// Whether the other slot holds a whole generation (the one before the live one).
    pub fn has_previous(&self) -> bool {
        self.slots[(self.live_slot() ^ 1) as usize].is_some()
    }

    /// Installs `set` as a new generation and records the slot it fills as whole.
    pub fn install_generation(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError> {
        let next = (self.live_slot() ^ 1) as usize;
        // From the first write on, the other slot no longer holds the generation before.
        self.slots[next] = None;
        let report = self.install(set)?;
        self.slots[next] = Some(SlotState { v6_all_exact: report.v6_all_exact });
        Ok(report)
    }

    /// Makes the generation in the other slot live again with one write of the config, if that
    /// slot holds one whole. Returns whether it did.
    pub fn switch_to_previous(&mut self) -> Result<bool, DatapathError> {
        let other = self.live_slot() ^ 1;
        let Some(state) = self.slots[other as usize] else { return Ok(false) };
        self.config.slot = other;
        if state.v6_all_exact {
            self.config.flags |= FLAG_V6_ALL_EXACT;
        } else {
            self.config.flags &= !FLAG_V6_ALL_EXACT;
        }
        self.write_config()?;
        Ok(true)
    }
}

impl Installer for Datapath {
    fn install(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError> {
        self.install_generation(set)
    }

    fn switch_back(&mut self) -> Result<bool, DatapathError> {
        self.switch_to_previous()
    }

    fn forget_previous(&mut self) {
        let other = (self.live_slot() ^ 1) as usize;
        self.slots[other] = None;
    }
}
