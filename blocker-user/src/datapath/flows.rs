//! How full the flow-state table is: the sum of FLOW_FILTER's per-bucket counts, which the
//! program raises when it stores flow state and lowers when it removes it. (The LRU table
//! evicts its oldest flows when full; a count near capacity means readers lose state.)

use std::sync::atomic::{AtomicU64, Ordering};

use aya::maps::{Array, HashMap, Map, MapData};
use blocker_common::flow::{BIT_WORDS, FILTER_BUCKETS, FLOW_STATE_SIZE, FlowKey, HEAD_SIZE, STORED_MASK, bit_of};

use super::{Datapath, DatapathError, mmap::MappedArray};

impl Datapath {
    /// Flows with state now, flows whose first data segment is awaited after their SYN (a
    /// HEADS slot counts in its bucket too) and ClientHello readers parked between segments
    /// (WAITS): an upper bound, since LRU evictions are not seen by the counts.
    pub fn flow_entries(&self) -> Result<u64, DatapathError> {
        let (stored, parked) = self.flow_counts()?;
        Ok(stored + parked)
    }

    /// Of `flow_entries`: FLOWS entries and awaited heads, and readers parked in WAITS.
    pub fn flow_counts(&self) -> Result<(u64, u64), DatapathError> {
        // An array map keeps each value in a slot of 8 bytes (the kernel rounds the value size
        // up to 8), so every u32 count has a word of its own, in the word's low half.
        let mut mapped = self.mapped_filter()?;
        // Each count: FLOWS entries and awaited heads in its low 16 bits, readers parked between
        // segments (WAITS) from bit 16.
        Ok(mapped.words_mut().iter().fold((0, 0), |(stored, parked), w| (stored + ((*w as u32) & 0xffff) as u64, parked + ((*w as u32) >> 16) as u64)))
    }
}

/// What the controller remembers between two upkeeps of the flow table: every FLOWS entry it
/// saw, with a hash of its value.
#[derive(Default)]
pub struct FlowUpkeep {
    seen: std::collections::HashMap<FlowKey, u64>,
    /// Since this was made: flows forgotten as idle, counts repaired.
    pub idle_total: u64,
    pub repaired_total: u64,
}

/// What one upkeep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpkeepReport {
    /// FLOWS entries left.
    pub entries: usize,
    /// Entries removed because they had not changed since the upkeep before.
    pub idle: usize,
    /// Counts taken off buckets whose count was above what they hold.
    pub repaired: u64,
}

impl Datapath {
    /// Upkeep of the flow table, for the daemon to run every minute or so.
    ///
    /// - Forgets flows whose FLOWS entry has not changed since the previous upkeep (the same
    ///   value as `last` recorded): a blocked flow's verdict is needed for its last segments
    ///   and its FIN, seconds after the block, and a reader that has not moved for that long
    ///   waits for a client that has gone. Left alone, such entries stayed until the LRU
    ///   evicted them, and each kept its bucket busy, so every data segment of the bucket's
    ///   other flows paid a FLOWS lookup and a HEADS read.
    /// - Repairs the bucket counts: an entry the LRU evicts to make room is not uncounted (no
    ///   program sees the eviction), so after a flood of blocked flows or readers (more than
    ///   FLOWS holds) counts stayed up for good. A bucket whose count is higher than the FLOWS
    ///   entries and the awaited head it holds is brought down to them; only where its count
    ///   did not change while it was being counted, so a flow the program adds or removes
    ///   meanwhile is never uncounted (that would hide its state: fail open).
    ///
    /// The program removes entries concurrently; an entry removed here is uncounted here, one
    /// the program removed first is not (the delete that succeeds uncounts). What this cannot
    /// rule out, both fail open for one flow: a segment that arrives for an idle flow in the
    /// instant between the look and the delete finds its state gone; and a bucket where one flow
    /// leaves and another comes while its entries are counted, the count unchanged, may be
    /// brought one too low, hiding one flow's state until the program uncounts it.
    pub fn flow_upkeep(&mut self, last: &mut FlowUpkeep) -> Result<UpkeepReport, DatapathError> {
        let mut report = UpkeepReport::default();
        let filter = self.mapped_filter()?;
        let count = |b: u32| filter.atomic_u32(b as usize).load(Ordering::SeqCst);

        // Idle entries: unchanged since the last upkeep.
        let mut flows: HashMap<&mut MapData, FlowKey, [u8; FLOW_STATE_SIZE]> = self.map_mut("FLOWS")?;
        let mut seen = std::collections::HashMap::new();
        let mut idle = Vec::new();
        for entry in flows.iter() {
            let (key, value) = entry.map_err(|e| DatapathError::map("FLOWS", e))?;
            let h = value_hash(&value);
            if last.seen.get(&key) == Some(&h) {
                idle.push(key);
            } else {
                seen.insert(key, h);
            }
        }
        for key in &idle {
            // Gone already when the program removed it first (its delete uncounted it).
            if flows.remove(key).is_ok() {
                filter.atomic_u32(key.bucket() as usize).fetch_sub(1, Ordering::SeqCst);
                report.idle += 1;
            }
        }
        last.seen = seen;

        // Counts above what their buckets hold: counted between two looks at the count.
        let before: Vec<u32> = (0..FILTER_BUCKETS).map(count).collect();
        let mut held = vec![0u32; FILTER_BUCKETS as usize];
        for key in flows.keys() {
            let key = key.map_err(|e| DatapathError::map("FLOWS", e))?;
            held[key.bucket() as usize] += 1;
            report.entries += 1;
        }
        drop(flows);
        let heads: Array<&MapData, [u8; HEAD_SIZE]> = self.map_ref("HEADS")?;
        for b in 0..FILTER_BUCKETS {
            let stored = before[b as usize] & STORED_MASK;
            if stored <= held[b as usize] {
                continue;
            }
            // An awaited head counts in its bucket too (only read where it could matter).
            let head = heads.get(&b, 0).map_err(|e| DatapathError::map("HEADS", e))?;
            let holds = held[b as usize] + u32::from(head[..4] != [0; 4]);
            let now = count(b);
            if now != before[b as usize] || stored <= holds {
                continue;
            }
            let excess = stored - holds;
            // Only if the count is still what was counted against; else next time.
            if filter.atomic_u32(b as usize).compare_exchange(now, now - excess, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                report.repaired += u64::from(excess);
            }
        }

        // Each bucket's bit set exactly where its count is not 0. The counts lowered above
        // leave their bits set (only the program keeps bits as it changes counts); a bit is
        // cleared the program's way, the count read again after the clear.
        let bits = self.mapped_bits()?;
        for b in 0..FILTER_BUCKETS {
            let (w, m) = bit_of(b);
            reconcile_bit(bits.atomic_u64(w as usize), m, || count(b));
        }
        last.idle_total += report.idle as u64;
        last.repaired_total += report.repaired;
        Ok(report)
    }

    /// How FLOW_BITS stands against the counts it summarises, at one look (the program may
    /// change both meanwhile): buckets whose count is not 0, those of them whose bit is clear
    /// (their flows' state is not seen), and bits set over a count of 0 (an extra count read
    /// for their segments until the next upkeep).
    pub fn flow_bits_check(&self) -> Result<FlowBitsCheck, DatapathError> {
        let filter = self.mapped_filter()?;
        let bits = self.mapped_bits()?;
        let mut c = FlowBitsCheck::default();
        for b in 0..FILTER_BUCKETS {
            let (w, m) = bit_of(b);
            let set = bits.atomic_u64(w as usize).load(Ordering::SeqCst) & m != 0;
            let busy = filter.atomic_u32(b as usize).load(Ordering::SeqCst) != 0;
            c.busy += u32::from(busy);
            c.hidden += u32::from(busy && !set);
            c.stale += u32::from(!busy && set);
        }
        Ok(c)
    }

    fn mapped_filter(&self) -> Result<MappedArray, DatapathError> {
        let map = self.ebpf.map("FLOW_FILTER").ok_or(DatapathError::MissingMap("FLOW_FILTER"))?;
        let Map::Array(data) = map else { return Err(DatapathError::MissingMap("FLOW_FILTER")) };
        MappedArray::new(data, "FLOW_FILTER", FILTER_BUCKETS as usize)
    }

    fn mapped_bits(&self) -> Result<MappedArray, DatapathError> {
        let map = self.ebpf.map("FLOW_BITS").ok_or(DatapathError::MissingMap("FLOW_BITS"))?;
        let Map::Array(data) = map else { return Err(DatapathError::MissingMap("FLOW_BITS")) };
        MappedArray::new(data, "FLOW_BITS", BIT_WORDS as usize)
    }
}

/// Sets or clears one bucket's bit (`mask` in `word`) to match its count, the way the program
/// does as it changes counts: a bit over a count of 0 is cleared and the count read again, and
/// set back if a segment filled the bucket meanwhile (else that bucket's state would be hidden
/// from its segments until the next upkeep). A bit a race left clear over a busy bucket is set.
fn reconcile_bit(word: &AtomicU64, mask: u64, count: impl Fn() -> u32) {
    let set = word.load(Ordering::SeqCst) & mask != 0;
    if count() != 0 {
        if !set {
            word.fetch_or(mask, Ordering::SeqCst);
        }
    } else if set {
        word.fetch_and(!mask, Ordering::SeqCst);
        if count() != 0 {
            word.fetch_or(mask, Ordering::SeqCst);
        }
    }
}

/// `Datapath::flow_bits_check`'s findings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowBitsCheck {
    pub busy: u32,
    pub hidden: u32,
    pub stale: u32,
}

/// A hash of a FLOWS value: equal values, equal hashes (a reader that moved, a flow blocked
/// since, hash differently).
fn value_hash(v: &[u8; FLOW_STATE_SIZE]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const OTHERS: u64 = 0b1010_0000;
    const MINE: u64 = 0b0000_0100;

    #[test]
    fn a_busy_bucket_whose_bit_a_race_left_clear_gets_it_set() {
        let word = AtomicU64::new(OTHERS);
        reconcile_bit(&word, MINE, || 1);
        assert_eq!(word.load(Ordering::SeqCst), OTHERS | MINE);
    }

    #[test]
    fn an_empty_buckets_bit_is_cleared_and_the_other_bits_of_its_word_stay() {
        let word = AtomicU64::new(OTHERS | MINE);
        reconcile_bit(&word, MINE, || 0);
        assert_eq!(word.load(Ordering::SeqCst), OTHERS);
    }

    #[test]
    fn a_bucket_filled_again_between_the_clear_and_the_second_look_keeps_its_bit() {
        let word = AtomicU64::new(OTHERS | MINE);
        // Empty at the first look; a segment stores state before the second.
        let looks = Cell::new(0);
        reconcile_bit(&word, MINE, || {
            looks.set(looks.get() + 1);
            if looks.get() == 1 { 0 } else { 1 }
        });
        assert_eq!(looks.get(), 2);
        assert_eq!(word.load(Ordering::SeqCst), OTHERS | MINE);
    }

    #[test]
    fn bits_that_match_their_counts_are_left_alone() {
        let busy = AtomicU64::new(OTHERS | MINE);
        reconcile_bit(&busy, MINE, || 3);
        assert_eq!(busy.load(Ordering::SeqCst), OTHERS | MINE);
        let empty = AtomicU64::new(OTHERS);
        reconcile_bit(&empty, MINE, || 0);
        assert_eq!(empty.load(Ordering::SeqCst), OTHERS);
    }
}
