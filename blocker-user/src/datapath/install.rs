//! Installing a list set as a new generation.
//!
//! The new set is written into the slot packets are not using, then one write of
//! `Config::slot` switches every following packet to it: a packet sees the old set or the new
//! one, never a mix. The previous generation stays in the other slot until the next install
//! overwrites it.

use std::time::{Duration, Instant};

use aya::maps::{
    Map, MapData,
    lpm_trie::{Key, LpmTrie},
};
use blocker_common::{
    coarse::WORDS,
    config::FLAG_V6_ALL_EXACT,
    prefix::{PrefixValue, SLOT_BITS, V4KeyData, V6KeyData, v4_key_data, v6_key_data},
};

use super::{Datapath, DatapathError, coarse::Bitmap, mmap::MappedArray};
use crate::lists::{Entry, ListSet, Prefix};

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InstallReport {
    /// The slot now live.
    pub slot: u32,
    pub block_v4: usize,
    pub block_v6: usize,
    pub allow_v4: usize,
    pub allow_v6: usize,
    pub names_block: usize,
    pub names_allow: usize,
    pub coarse_bits_v4: u64,
    pub coarse_bits_v6: u64,
    /// Some IPv6 block prefix is shorter than the coarse filter covers: every IPv6 packet is
    /// checked against the exact trie.
    pub v6_all_exact: bool,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl Datapath {
    /// Makes `set` the live generation.
    pub fn install(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError> {
        let start = Instant::now();
        let next = (self.config.slot & 1) ^ 1;
        let slot = next as u8;
        let mut report = InstallReport { slot: next, ..Default::default() };

        for name in ["BLOCK_V4", "ALLOW_V4"] {
            self.clear_trie::<V4KeyData>(name, slot)?;
        }
        for name in ["BLOCK_V6", "ALLOW_V6"] {
            self.clear_trie::<V6KeyData>(name, slot)?;
        }
        self.clear_names(next)?;
        let key = self.hash_key;
        self.write_hash_key(next, key)?;
        let values = super::names::name_values(set, &key);
        self.install_names(next, &values)?;
        report.names_block = set.block_names().count();
        report.names_allow = set.allow_names().count();

        let mut bitmap = Bitmap::default();
        for (e, p) in set.block_prefixes() {
            bitmap.add(p);
            self.insert_prefix("BLOCK_V4", "BLOCK_V6", slot, e, p)?;
            if p.is_v4() { report.block_v4 += 1 } else { report.block_v6 += 1 }
        }
        for (e, p) in set.allow_prefixes() {
            self.insert_prefix("ALLOW_V4", "ALLOW_V6", slot, e, p)?;
            if p.is_v4() { report.allow_v4 += 1 } else { report.allow_v6 += 1 }
        }
        self.write_bitmap("COARSE_V4", next, &bitmap.v4)?;
        self.write_bitmap("COARSE_V6", next, &bitmap.v6)?;
        (report.coarse_bits_v4, report.coarse_bits_v6) = bitmap.bits_set();
        report.v6_all_exact = bitmap.v6_all_exact;

        // The switch: from the next packet on, the new generation is live.
        self.config.slot = next;
        if bitmap.v6_all_exact {
            self.config.flags |= FLAG_V6_ALL_EXACT;
        } else {
            self.config.flags &= !FLAG_V6_ALL_EXACT;
        }
        self.write_config()?;
        report.elapsed = start.elapsed();
        Ok(report)
    }

    fn insert_prefix(&mut self, v4_map: &'static str, v6_map: &'static str, slot: u8, e: &Entry, p: &Prefix) -> Result<(), DatapathError> {
        let value = PrefixValue { entry_id: e.id, flags: 0 };
        match *p {
            Prefix::V4 { addr, len } => {
                let mut trie: LpmTrie<&mut MapData, V4KeyData, PrefixValue> = self.map_mut(v4_map)?;
                let key = Key::new(SLOT_BITS + len as u32, v4_key_data(slot, addr.octets()));
                trie.insert(&key, value, 0).map_err(|err| DatapathError::map(v4_map, err))
            }
            Prefix::V6 { addr, len } => {
                let mut trie: LpmTrie<&mut MapData, V6KeyData, PrefixValue> = self.map_mut(v6_map)?;
                let key = Key::new(SLOT_BITS + len as u32, v6_key_data(slot, &addr.octets()));
                trie.insert(&key, value, 0).map_err(|err| DatapathError::map(v6_map, err))
            }
        }
    }

    /// Removes every entry of `slot` from a trie (the generation before last).
    fn clear_trie<K: aya::Pod + AsRef<[u8]>>(&mut self, name: &'static str, slot: u8) -> Result<(), DatapathError> {
        let mut trie: LpmTrie<&mut MapData, K, PrefixValue> = self.map_mut(name)?;
        let stale: Vec<Key<K>> = trie
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| k.data().as_ref().first() == Some(&slot))
            .collect();
        for key in stale {
            trie.remove(&key).map_err(|err| DatapathError::map(name, err))?;
        }
        Ok(())
    }

    fn write_bitmap(&mut self, name: &'static str, slot: u32, words: &[u64]) -> Result<(), DatapathError> {
        let map = self.ebpf.map(name).ok_or(DatapathError::MissingMap(name))?;
        let Map::Array(data) = map else {
            return Err(DatapathError::MissingMap(name));
        };
        let mut mapped = MappedArray::new(data, name, 2 * WORDS as usize)?;
        let base = (slot as usize) * WORDS as usize;
        mapped.words_mut()[base..base + WORDS as usize].copy_from_slice(words);
        Ok(())
    }
}
