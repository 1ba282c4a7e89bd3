//! The coarse destination filter in front of the exact prefix tries.
//!
//! Kernel LPM-trie lookups get slow as the trie grows (~665 ns at 1M prefixes), far above the
//! ~67 ns per packet a 10 GbE port leaves. So every destination first tests one bit in a
//! 2^24-bit bitmap (one array lookup). Only when the bit is set does the packet go on to the
//! tries. A clear bit proves "not listed", so the common allowed packet never pays for the trie.
//!
//! * IPv4: the bit is the destination's /24, exactly. A listed prefix longer than /24 sets the
//!   bit of its /24; a shorter one sets the bits of every /24 it covers (a /8 sets 65 536).
//! * IPv6: two multiplicative hashes into the same bitmap. A listed prefix of /48 or longer (a
//!   host, a /64) sets the bit of its /48, the end-site assignment and the longest prefix routed
//!   across the internet, as the /24 is for IPv4; one from /32 to /47 sets the bit of its /32;
//!   one from /16 to /31 the bits of every /32 it covers (at most 65 536). A destination is let
//!   through when either its /48's or its /32's bit is set. With the /32 alone, one listed host
//!   at a hosting provider or cloud would send all traffic to that provider's /32 (often all of
//!   its IPv6 space) to the trie. A collision only sends a packet to the exact path, never
//!   blocks it. Listing a prefix shorter than /16 sets `FLAG_V6_ALL_EXACT` instead: correct, but
//!   every IPv6 packet then pays for the trie.

pub const BITS: u32 = 24;
/// 64-bit words in one generation's bitmap.
pub const WORDS: u32 = (1 << BITS) / 64;
/// The array map holds both generations: slot 1's words follow slot 0's.
pub const MAP_WORDS: u32 = 2 * WORDS;
/// IPv6 prefixes shorter than this do not fit the coarse filter.
pub const V6_MIN_COARSE_LEN: u8 = 16;
/// IPv6 prefixes this long or longer mark their /48 ([`v6_site_bit`]), shorter ones their /32s.
pub const V6_SITE_LEN: u8 = 48;

/// Bit index of an IPv4 destination (host-order address).
#[inline(always)]
pub const fn v4_bit(addr: u32) -> u32 {
    addr >> 8
}

/// Bit index of an IPv6 destination, from its first 32 bits read as a big-endian number.
#[inline(always)]
pub const fn v6_bit(top32: u32) -> u32 {
    top32.wrapping_mul(0x9E37_79B1) >> (32 - BITS)
}

/// Bit index of an IPv6 destination's /48, from its first 48 bits read as a big-endian number.
/// A 64-bit multiplier of its own, so that a /48 and its /32 seldom share a bit.
#[inline(always)]
pub const fn v6_site_bit(top48: u64) -> u32 {
    (top48.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BITS)) as u32
}

/// The first 48 bits of an IPv6 address, as [`v6_site_bit`] takes them.
#[inline(always)]
pub const fn v6_top48(a: &[u8; 16]) -> u64 {
    u64::from_be_bytes([0, 0, a[0], a[1], a[2], a[3], a[4], a[5]])
}

/// Splits a bit index into the array word (within one generation) and the mask within it.
#[inline(always)]
pub const fn word_and_mask(bit: u32) -> (u32, u64) {
    (bit >> 6, 1u64 << (bit & 63))
}

/// The map index of a word of the given generation slot.
#[inline(always)]
pub const fn map_index(slot: u32, word: u32) -> u32 {
    (slot & 1) * WORDS + word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_bits_are_the_slash_24() {
        assert_eq!(v4_bit(0xC000_0201), 0x00C0_0002);
        assert_eq!(v4_bit(0xC000_02FF), v4_bit(0xC000_0200));
        assert_ne!(v4_bit(0xC000_0300), v4_bit(0xC000_0200));
    }

    #[test]
    fn v6_bits_stay_in_range() {
        for x in [0u32, 1, 0x2001_0db8, u32::MAX] {
            assert!(v6_bit(x) < 1 << BITS);
            let (w, _) = word_and_mask(v6_bit(x));
            assert!(w < WORDS);
        }
        for x in [0u64, 1, 0x2001_0db8_0bad, (1 << 48) - 1] {
            assert!(v6_site_bit(x) < 1 << BITS);
        }
    }

    #[test]
    fn the_site_bit_reads_the_first_48_bits() {
        let a = [0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(v6_top48(&a), 0x2001_0db8_0bad);
        let mut b = a;
        b[6..].fill(0);
        assert_eq!(v6_site_bit(v6_top48(&a)), v6_site_bit(v6_top48(&b)), "bits after the /48 do not count");
        b[5] ^= 1;
        assert_ne!(v6_site_bit(v6_top48(&a)), v6_site_bit(v6_top48(&b)), "neighbouring /48s differ");
    }
}
