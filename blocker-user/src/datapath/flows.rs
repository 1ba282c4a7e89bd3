//! How full the flow-state table is: the sum of FLOW_FILTER's per-bucket counts, which the
//! program raises when it stores flow state and lowers when it removes it. (The LRU table
//! evicts its oldest flows when full; a count near capacity means readers lose state.)

use aya::maps::Map;

use super::{Datapath, DatapathError, mmap::MappedArray};

/// FLOW_FILTER's buckets (blocker-ebpf/src/flow.rs).
const FILTER_BUCKETS: usize = 1 << 16;

impl Datapath {
    /// Flows with state now, flows whose first data segment is awaited after their SYN (a
    /// HEADS slot counts in its bucket too) and ClientHello readers parked between segments
    /// (WAITS): an upper bound, since LRU evictions are not seen by the counts.
    pub fn flow_entries(&self) -> Result<u64, DatapathError> {
        let map = self.ebpf.map("FLOW_FILTER").ok_or(DatapathError::MissingMap("FLOW_FILTER"))?;
        let Map::Array(data) = map else { return Err(DatapathError::MissingMap("FLOW_FILTER")) };
        // An array map keeps each value in a slot of 8 bytes (the kernel rounds the value size
        // up to 8), so every u32 count has a word of its own, in the word's low half.
        let mut mapped = MappedArray::new(data, "FLOW_FILTER", FILTER_BUCKETS)?;
        // Each count: FLOWS entries and awaited heads in its low 16 bits, readers parked at an
        // extension header (WAITS) from bit 16.
        let sum = mapped.words_mut().iter().map(|w| ((*w as u32) & 0xffff) as u64 + ((*w as u32) >> 16) as u64).sum();
        Ok(sum)
    }
}
