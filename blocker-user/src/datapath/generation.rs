//! The two list slots as generations: which slot holds a whole generation, so that a
//! rollback can switch back to the one before in a single write, and never to a slot whose
//! install did not finish; and what each slot holds, so that an install writes only what
//! differs (`slot.rs`, `shared.rs`).

// Declared here rather than in mod.rs, which other work shares: the batch map operations and
// the slot records the install uses (files beside this one).

use blocker_common::config::FLAG_V6_ALL_EXACT;

use super::slot::SlotRecord;
use super::{Adoption, Datapath, DatapathError, InstallReport};
use crate::{lists::ListSet, update::Installer};

/// One slot as this process knows it. A slot no install of this process has touched (None in
/// `Datapath::slots`) is empty in fresh maps and unknown in adopted ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SlotState {
    /// The slot holds a whole generation: a rollback may switch to it.
    whole: bool,
    v6_all_exact: bool,
    /// What the slot holds, key by key, as this process wrote it; None when that is not known
    /// (the live slot of adopted maps, an install that did not finish).
    record: Option<Box<SlotRecord>>,
}

impl SlotState {
    /// The state of the live slot of adopted maps, from the live config: whole, contents
    /// unknown.
    pub(super) fn from_flags(flags: u32) -> SlotState {
        SlotState { whole: true, v6_all_exact: flags & FLAG_V6_ALL_EXACT != 0, record: None }
    }
}

impl Datapath {
    /// The slot packets use now.
    pub fn live_slot(&self) -> u32 {
        self.config.slot & 1
    }

    /// Whether the other slot holds a generation a rollback may switch to: the one before the
    /// live one, whole, its rollback window not ended.
    pub fn has_previous(&self) -> bool {
        self.slots[(self.live_slot() ^ 1) as usize].as_ref().is_some_and(|s| s.whole)
    }

    /// Installs `set` as a new generation (`install`, which records the slot it fills as
    /// whole once it is).
    pub fn install_generation(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError> {
        self.install(set)
    }

    /// What both slots hold before an install writes into `slot`: the slot's record, the other
    /// slot's (taken until `keep_record` gives it back), and, where they had to be read back
    /// from the kernel, the elements that read-back repaired. From here until `end_install` the
    /// slot is neither whole nor known.
    pub(super) fn begin_install(&mut self, slot: u32) -> Result<(SlotRecord, Box<SlotRecord>, Option<usize>), DatapathError> {
        // The last install's rewrites (freeing.rs) must be over before the maps change.
        self.stop_freeing();
        let held = self.take_record(slot);
        self.slots[slot as usize] = Some(SlotState { whole: false, v6_all_exact: false, record: None });
        let live = self.take_record(slot ^ 1);
        match (held, live) {
            (Some(held), Some(live)) => Ok((*held, live, None)),
            (_, live) => {
                // Put back what is known, so that a failed read leaves it known.
                if let Some(live) = live {
                    self.keep_record(slot ^ 1, live);
                }
                let ([r0, r1], repaired) = self.read_back(true)?;
                if repaired > 0 {
                    log::warn!("the list maps held {repaired} elements an earlier install left half written; repaired before this install");
                } else {
                    log::info!("read the list maps back (what they held was not known to this process)");
                }
                let (held, live) = if slot == 0 { (r0, r1) } else { (r1, r0) };
                Ok((held, Box::new(live), Some(repaired)))
            }
        }
    }

    /// What `slot` holds, taken out of its state; None when not known.
    fn take_record(&mut self, slot: u32) -> Option<Box<SlotRecord>> {
        match &mut self.slots[slot as usize] {
            Some(state) => state.record.take(),
            // Never written by this process: empty in fresh maps, unknown in adopted ones.
            None if self.adoption == Some(Adoption::Adopted) => None,
            None => Some(Box::default()),
        }
    }

    /// Gives `slot` back its record, which an install took while it wrote the other slot.
    pub(super) fn keep_record(&mut self, slot: u32, record: Box<SlotRecord>) {
        match &mut self.slots[slot as usize] {
            Some(state) => state.record = Some(record),
            None => self.slots[slot as usize] = Some(SlotState { whole: false, v6_all_exact: false, record: Some(record) }),
        }
    }

    /// `slot` now holds a whole generation, `record` key by key.
    pub(super) fn end_install(&mut self, slot: u32, record: SlotRecord, v6_all_exact: bool) {
        self.slots[slot as usize] = Some(SlotState { whole: true, v6_all_exact, record: Some(Box::new(record)) });
    }

    /// Makes the generation in the other slot live again with one write of the config, if that
    /// slot holds one a rollback may switch to (`has_previous`). Returns whether it did.
    pub fn switch_to_previous(&mut self) -> Result<bool, DatapathError> {
        let other = self.live_slot() ^ 1;
        let Some(v6_all_exact) = self.slots[other as usize].as_ref().filter(|s| s.whole).map(|s| s.v6_all_exact) else { return Ok(false) };
        self.config.slot = other;
        if v6_all_exact {
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

    fn end_rollback_window(&mut self) -> Result<(), DatapathError> {
        Datapath::end_rollback_window(self)
    }

    /// The other slot stays as it is in the kernel (and so does what is known of it), but is
    /// no longer a generation to switch back to.
    fn forget_previous(&mut self) {
        let other = (self.live_slot() ^ 1) as usize;
        match &mut self.slots[other] {
            Some(state) => state.whole = false,
            None => {
                let record = (self.adoption != Some(Adoption::Adopted)).then(Box::default);
                self.slots[other] = Some(SlotState { whole: false, v6_all_exact: false, record });
            }
        }
    }
}
