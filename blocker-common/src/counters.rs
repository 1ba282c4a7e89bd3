//! The per-CPU counter table: packets and bytes for every (reason, action) pair. It is one
//! per-CPU array value, so the kernel bumps one cell and the controller reads the whole table
//! with one lookup and sums the CPUs at read time.

use crate::assert_size;

/// Room for reasons and actions added later without changing the map layout.
pub const REASON_SLOTS: usize = 32;
pub const ACTION_SLOTS: usize = 8;
pub const CELLS: usize = REASON_SLOTS * ACTION_SLOTS;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}
assert_size!(Counter, 16);

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterTable {
    pub cells: [Counter; CELLS],
}
assert_size!(CounterTable, CELLS * 16);

impl Default for CounterTable {
    fn default() -> Self {
        Self { cells: [Counter::default(); CELLS] }
    }
}

/// Index of the cell for a (reason, action) pair.
#[inline(always)]
pub const fn cell_index(reason: u8, action: u8) -> usize {
    (reason as usize) * ACTION_SLOTS + action as usize
}

impl CounterTable {
    pub fn get(&self, reason: u8, action: u8) -> Counter {
        self.cells[cell_index(reason, action)]
    }

    /// Adds another table cell by cell (summing CPUs).
    pub fn accumulate(&mut self, other: &CounterTable) {
        for (a, b) in self.cells.iter_mut().zip(other.cells.iter()) {
            a.packets = a.packets.wrapping_add(b.packets);
            a.bytes = a.bytes.wrapping_add(b.bytes);
        }
    }
}
