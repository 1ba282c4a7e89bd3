//! Installing a list set as a new generation.
//!
//! The new set is written into the slot packets are not using, then one write of
//! `Config::slot` switches every following packet to it: a packet sees the old set or the new
//! one, never a mix. The previous generation stays in the other slot until the next install
//! overwrites it.
//!
//! Block prefixes of lists in shadow mode go into the same tries and coarse bitmaps as enforced
//! ones, flagged `PREFIX_SHADOW`, except those an enforced block prefix covers (equal or
//! inside): the trie returns the longest match only, which would then be the shadow value and
//! let through what the enforced entry blocks. Left out, the enforced entry decides there, as
//! it should (enforced beats shadow).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use aya::maps::{
    Map, MapData,
    lpm_trie::{Key, LpmTrie},
};
use blocker_common::{
    coarse::WORDS,
    config::FLAG_V6_ALL_EXACT,
    prefix::{PREFIX_SHADOW, PrefixValue, SLOT_BITS, V4KeyData, V6KeyData, v4_key_data, v6_key_data},
};

use super::{Datapath, DatapathError, coarse::Bitmap, mmap::MappedArray};
use crate::lists::{Entry, ListSet, Prefix};

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InstallReport {
    /// The slot now live.
    pub slot: u32,
    /// Enforced block prefixes installed, by family.
    pub block_v4: usize,
    pub block_v6: usize,
    pub allow_v4: usize,
    pub allow_v6: usize,
    /// Enforced block names.
    pub names_block: usize,
    pub names_allow: usize,
    /// Block prefixes of lists in shadow mode installed (flagged, counted, never enforced).
    pub shadow_prefixes: usize,
    /// Shadow prefixes not installed because an enforced block prefix covers them (equal to or
    /// inside it): there the enforced entry decides.
    pub shadow_prefixes_covered: usize,
    /// Block names of lists in shadow mode.
    pub shadow_names: usize,
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
        report.names_block = set.block_names().filter(|(e, _)| !e.shadow).count();
        report.shadow_names = set.block_names().filter(|(e, _)| e.shadow).count();
        report.names_allow = set.allow_names().count();

        let mut bitmap = Bitmap::default();
        let plan = block_prefix_plan(set);
        report.shadow_prefixes_covered = plan.covered;
        for (e, p) in plan.install {
            bitmap.add(p);
            self.insert_prefix("BLOCK_V4", "BLOCK_V6", slot, e, p)?;
            if e.shadow {
                report.shadow_prefixes += 1;
            } else if p.is_v4() {
                report.block_v4 += 1
            } else {
                report.block_v6 += 1
            }
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
        let value = PrefixValue { entry_id: e.id, flags: if e.shadow { PREFIX_SHADOW } else { 0 } };
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

/// The block prefixes to install: every enforced one, and the shadow ones no enforced prefix
/// covers.
pub(crate) struct PrefixPlan<'a> {
    pub install: Vec<(&'a Entry, &'a Prefix)>,
    /// Shadow prefixes left out because an enforced one covers them.
    pub covered: usize,
}

pub(crate) fn block_prefix_plan(set: &ListSet) -> PrefixPlan<'_> {
    let enforced = Enforced::of(set);
    let mut plan = PrefixPlan { install: Vec::new(), covered: 0 };
    for (e, p) in set.block_prefixes() {
        if e.shadow && enforced.covers(p) {
            plan.covered += 1;
        } else {
            plan.install.push((e, p));
        }
    }
    plan
}

/// The enforced block prefixes as one set of masked addresses per family and prefix length:
/// whether one covers a prefix of length L is one probe per length ≤ L that occurs in the lists
/// (a handful in practice), so a million shadow prefixes cost a few million hash probes.
#[derive(Default)]
struct Enforced {
    v4: Vec<HashSet<u32>>,
    v6: Vec<HashSet<u128>>,
    /// The lengths with at least one prefix, ascending.
    lens4: Vec<u8>,
    lens6: Vec<u8>,
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 { 0 } else { a & (u32::MAX << (32 - len as u32)) }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 { 0 } else { a & (u128::MAX << (128 - len as u32)) }
}

impl Enforced {
    fn of(set: &ListSet) -> Self {
        let mut s = Enforced { v4: vec![HashSet::new(); 33], v6: vec![HashSet::new(); 129], ..Default::default() };
        if !set.block_prefixes().any(|(e, _)| e.shadow) {
            return s;
        }
        for (e, p) in set.block_prefixes() {
            if e.shadow {
                continue;
            }
            match *p {
                Prefix::V4 { addr, len } => {
                    s.v4[len as usize].insert(mask4(u32::from(addr), len));
                }
                Prefix::V6 { addr, len } => {
                    s.v6[len as usize].insert(mask6(u128::from(addr), len));
                }
            }
        }
        s.lens4 = (0..=32u8).filter(|&l| !s.v4[l as usize].is_empty()).collect();
        s.lens6 = (0..=128u8).filter(|&l| !s.v6[l as usize].is_empty()).collect();
        s
    }

    /// Is `p` equal to or inside an enforced prefix?
    fn covers(&self, p: &Prefix) -> bool {
        match *p {
            Prefix::V4 { addr, len } => {
                let a = u32::from(addr);
                self.lens4.iter().take_while(|&&l| l <= len).any(|&l| self.v4[l as usize].contains(&mask4(a, l)))
            }
            Prefix::V6 { addr, len } => {
                let a = u128::from(addr);
                self.lens6.iter().take_while(|&&l| l <= len).any(|&l| self.v6[l as usize].contains(&mask6(a, l)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, path::Path};

    use super::*;
    use crate::lists::{ListInfo, ListKind, parse_list};

    fn set(enforced: &str, shadow: &str) -> ListSet {
        let mut set = ListSet::new();
        let (p, _) = parse_list(Path::new("b"), enforced, ListKind::Block).unwrap();
        set.add_parsed(Path::new("b"), p);
        let (p, _) = parse_list(Path::new("s"), shadow, ListKind::Block).unwrap();
        set.add_list(ListInfo { name: "s".into(), source: "s".into(), shadow: true }, Path::new("s"), p).unwrap();
        set
    }

    fn installed(set: &ListSet) -> (Vec<String>, usize) {
        let plan = block_prefix_plan(set);
        (plan.install.iter().map(|(e, p)| format!("{}{p}", if e.shadow { "s:" } else { "" })).collect(), plan.covered)
    }

    #[test]
    fn a_shadow_prefix_inside_or_equal_to_an_enforced_one_is_left_out() {
        let s = set(
            "203.0.113.0/24\n2001:db8:1::/48\n198.51.100.7\n",
            "203.0.113.64/26\n203.0.113.0/24\n2001:db8:1:2::/64\n198.51.100.0/24\n2001:db8::/32\n198.51.100.8\n",
        );
        let (install, covered) = installed(&s);
        assert_eq!(
            install,
            ["203.0.113.0/24", "2001:db8:1::/48", "198.51.100.7/32", "s:198.51.100.0/24", "s:2001:db8::/32", "s:198.51.100.8/32"]
        );
        assert_eq!(covered, 3);
    }

    #[test]
    fn without_shadow_lists_every_prefix_is_installed() {
        let s = set("203.0.113.0/24\n203.0.113.64/26\n2001:db8::/32\n", "");
        assert_eq!(installed(&s), (vec!["203.0.113.0/24".into(), "203.0.113.64/26".into(), "2001:db8::/32".into()], 0));
    }

    #[test]
    fn the_cover_check_agrees_with_a_plain_scan() {
        // Pseudo-random prefixes around one /16 so that covers occur at many lengths.
        let mut x = 0x1234_5678u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut enforced = String::new();
        let mut shadow = String::new();
        for i in 0..400 {
            let len = 18 + next() % 15;
            let a = mask4(0xcb00_0000 | (next() & 0x0000_ffff), len as u8);
            let line = format!("{}/{len}\n", std::net::Ipv4Addr::from(a));
            if i % 2 == 0 { enforced.push_str(&line) } else { shadow.push_str(&line) }
        }
        let s = set(&enforced, &shadow);
        let e: Vec<&Prefix> = s.block_prefixes().filter(|(e, _)| !e.shadow).map(|(_, p)| p).collect();
        let plan = block_prefix_plan(&s);
        let mut covered = 0;
        for (en, p) in s.block_prefixes().filter(|(e, _)| e.shadow) {
            let scan = e.iter().any(|q| q.len() <= p.len() && q.contains(first_addr(p)));
            covered += scan as usize;
            assert_eq!(plan.install.iter().any(|(i, _)| i.id == en.id), !scan, "{p}");
        }
        assert_eq!(plan.covered, covered);
        assert!(covered > 20 && covered < 180, "{covered}: the table tests both sides");
    }

    fn first_addr(p: &Prefix) -> IpAddr {
        match *p {
            Prefix::V4 { addr, .. } => IpAddr::V4(addr),
            Prefix::V6 { addr, .. } => IpAddr::V6(addr),
        }
    }
}
