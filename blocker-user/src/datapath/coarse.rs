//! Building the coarse destination bitmaps (the layout is in blocker-common's coarse.rs).

use std::net::{Ipv4Addr, Ipv6Addr};

use blocker_common::coarse::{self, BITS, V6_MIN_COARSE_LEN, V6_SITE_LEN, WORDS};

use crate::lists::Prefix;

/// One generation's bitmap pair, built in memory and then copied into the maps.
pub struct Bitmap {
    pub v4: Vec<u64>,
    pub v6: Vec<u64>,
    /// Some IPv6 prefix was too short for the coarse filter (see FLAG_V6_ALL_EXACT).
    pub v6_all_exact: bool,
}

impl Default for Bitmap {
    fn default() -> Self {
        Bitmap { v4: vec![0; WORDS as usize], v6: vec![0; WORDS as usize], v6_all_exact: false }
    }
}

fn set(words: &mut [u64], bit: u32) {
    let (w, m) = coarse::word_and_mask(bit);
    words[w as usize] |= m;
}

impl Bitmap {
    pub fn add(&mut self, p: &Prefix) {
        match *p {
            Prefix::V4 { addr, len } => {
                let a = u32::from(addr);
                if len >= BITS as u8 {
                    set(&mut self.v4, coarse::v4_bit(a));
                } else {
                    // Every /24 the prefix covers.
                    let first = coarse::v4_bit(a);
                    let count = 1u32 << (BITS - len as u32);
                    for b in first..first + count {
                        set(&mut self.v4, b);
                    }
                }
            }
            Prefix::V6 { addr, len } => {
                let top32 = (u128::from(addr) >> 96) as u32;
                if len >= V6_SITE_LEN {
                    set(&mut self.v6, coarse::v6_site_bit(coarse::v6_top48(&addr.octets())));
                } else if len >= 32 {
                    set(&mut self.v6, coarse::v6_bit(top32));
                } else if len >= V6_MIN_COARSE_LEN {
                    let count = 1u64 << (32 - len as u32);
                    for i in 0..count {
                        set(&mut self.v6, coarse::v6_bit(top32 + i as u32));
                    }
                } else {
                    self.v6_all_exact = true;
                }
            }
        }
    }

    /// Would the kernel's coarse test let this destination through to the exact path?
    pub fn hit_v4(&self, a: Ipv4Addr) -> bool {
        let (w, m) = coarse::word_and_mask(coarse::v4_bit(u32::from(a)));
        self.v4[w as usize] & m != 0
    }

    pub fn hit_v6(&self, a: Ipv6Addr) -> bool {
        if self.v6_all_exact {
            return true;
        }
        let hit = |bit| {
            let (w, m) = coarse::word_and_mask(bit);
            self.v6[w as usize] & m != 0
        };
        hit(coarse::v6_site_bit(coarse::v6_top48(&a.octets()))) || hit(coarse::v6_bit((u128::from(a) >> 96) as u32))
    }

    pub fn bits_set(&self) -> (u64, u64) {
        let count = |v: &[u64]| v.iter().map(|w| w.count_ones() as u64).sum();
        (count(&self.v4), count(&self.v6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::parse_prefix;

    fn bitmap(entries: &[&str]) -> Bitmap {
        let mut b = Bitmap::default();
        for e in entries {
            b.add(&parse_prefix(e).unwrap());
        }
        b
    }

    #[test]
    fn a_host_sets_only_its_slash_24() {
        let b = bitmap(&["192.0.2.66"]);
        assert!(b.hit_v4("192.0.2.1".parse().unwrap()));
        assert!(!b.hit_v4("192.0.3.66".parse().unwrap()));
        assert_eq!(b.bits_set().0, 1);
    }

    #[test]
    fn a_short_prefix_sets_every_slash_24_it_covers() {
        let b = bitmap(&["198.51.0.0/16"]);
        assert_eq!(b.bits_set().0, 256);
        assert!(b.hit_v4("198.51.255.1".parse().unwrap()));
        assert!(!b.hit_v4("198.52.0.1".parse().unwrap()));
    }

    #[test]
    fn a_v6_host_or_slash_64_marks_only_its_slash_48() {
        let b = bitmap(&["2001:db8:f::66", "2001:db8:f:1::/64", "2001:db8:a::/48"]);
        assert!(b.hit_v6("2001:db8:f::66".parse().unwrap()));
        assert!(b.hit_v6("2001:db8:f:2::1".parse().unwrap()), "the same /48: the trie decides");
        assert!(b.hit_v6("2001:db8:a:ffff::1".parse().unwrap()));
        // The rest of the provider's /32 never pays for the trie.
        assert!(!b.hit_v6("2001:db8:e::1".parse().unwrap()));
        assert!(!b.hit_v6("2001:db8:ffff::1".parse().unwrap()));
        assert_eq!(b.bits_set().1, 2);
        assert!(!b.v6_all_exact);
    }

    #[test]
    fn v6_prefixes_from_slash_16_to_47_mark_their_slash_32s_and_shorter_fall_back_to_exact() {
        let b = bitmap(&["2001:db8:f00::/40"]);
        assert!(b.hit_v6("2001:db8:f00::1".parse().unwrap()));
        assert!(b.hit_v6("2001:db8:1::1".parse().unwrap()), "another /48 of the same /32: the trie decides");
        assert!(!b.hit_v6("2001:db9::1".parse().unwrap()));
        assert_eq!(b.bits_set().1, 1);
        let b = bitmap(&["2001::/16"]);
        assert!(b.bits_set().1 > 60_000, "a /16 covers 65 536 /32s");
        assert!(b.hit_v6("2001:ffff:1::1".parse().unwrap()));
        let b = bitmap(&["2000::/3"]);
        assert!(b.v6_all_exact);
        assert!(b.hit_v6("2600::1".parse().unwrap()));
    }
}
