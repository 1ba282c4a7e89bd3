//! Listed names in the kernel: each name becomes one keyed 64-bit hash (blocker-common name.rs)
//! in the NAMES map, whose value has a half per generation slot. Block, allow and shadow entries for the
//! same name share one value (`slot::name_values`), so the kernel answers every question with
//! one lookup per label.

use aya::maps::{HashMap as BpfHashMap, MapData};
use blocker_common::name::{HashKey, name_key};

use super::{Datapath, DatapathError};

/// The NAMES key of a whole (normalised) name.
pub fn name_hash(key: &HashKey, name: &str) -> u64 {
    name_key(key, name.as_bytes())
}

/// A fresh secret key from the kernel's random source.
pub fn random_key() -> std::io::Result<HashKey> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))?;
    Ok(HashKey { k0: u64::from_le_bytes(b[..8].try_into().unwrap()), k1: u64::from_le_bytes(b[8..].try_into().unwrap()) })
}

impl Datapath {
    pub(super) fn write_hash_key(&mut self, slot: u32, key: HashKey) -> Result<(), DatapathError> {
        let mut map: aya::maps::Array<&mut MapData, HashKey> = self.map_mut("HASH_KEYS")?;
        map.set(slot, key, 0).map_err(|e| DatapathError::map("HASH_KEYS", e))
    }

    /// Blocked packets (for an entry of a shadow list: packets it would have blocked) per list
    /// entry id of the live generation (entries never hit are absent).
    pub fn entry_hits(&self) -> Result<Vec<(u32, u64)>, DatapathError> {
        let map: BpfHashMap<&MapData, u32, u64> = self.map_ref("ENTRY_HITS")?;
        let slot = self.config.slot & 1;
        let mut out: Vec<(u32, u64)> = map
            .iter()
            .filter_map(|r| r.ok())
            .filter(|(k, _)| k >> 31 == slot)
            .map(|(k, v)| (k & 0x7fff_ffff, v))
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_hash_is_the_chain_over_labels() {
        use blocker_common::name::{MAX_LABELS, suffix_hashes};
        let key = HashKey { k0: 1, k1: 2 };
        let mut out = [0u64; MAX_LABELS];
        suffix_hashes(&key, b"www.example.com", &mut out);
        assert_eq!(name_hash(&key, "example.com"), out[1]);
        assert_ne!(name_hash(&key, "example.com"), name_hash(&HashKey { k0: 1, k1: 3 }, "example.com"));
    }

    #[test]
    fn shadow_entries_fill_their_own_fields_of_the_shared_value() {
        use std::path::Path;

        use blocker_common::name::{MATCH_BELOW, MATCH_SELF, NameValue};

        use crate::lists::{ListInfo, ListKind, ListSet, parse_list};

        let mut set = ListSet::new();
        let (p, _) = parse_list(Path::new("b"), "example.com\n", ListKind::Block).unwrap();
        set.add_parsed(Path::new("b"), p);
        let (p, _) = parse_list(Path::new("s"), "=example.com\nshadow.example\n", ListKind::Block).unwrap();
        let info = ListInfo { name: "s".into(), source: "s".into(), shadow: true };
        set.add_list(info, Path::new("s"), p).unwrap();
        let key = HashKey { k0: 3, k1: 4 };
        let values = super::super::slot::name_values(&set, &key);
        let value = |name: &str| values.iter().find(|v| v.0 == name_hash(&key, name)).unwrap().1;
        assert_eq!(
            value("example.com"),
            NameValue { block_id: 1, block_mode: (MATCH_SELF | MATCH_BELOW) as u8, shadow_id: 2, shadow_mode: MATCH_SELF as u8, ..Default::default() }
        );
        assert_eq!(value("shadow.example"), NameValue { shadow_id: 3, shadow_mode: (MATCH_SELF | MATCH_BELOW) as u8, ..Default::default() });
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_key().unwrap(), random_key().unwrap());
    }
}
