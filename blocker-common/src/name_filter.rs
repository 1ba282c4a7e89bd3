//! The name filter in front of the NAMES map.
//!
//! Matching a name costs one hash step and one NAMES lookup per label-aligned suffix
//! (name.rs). At a million listed names the NAMES hash table is far bigger than the caches, so
//! each lookup is a cache miss or two, and almost every suffix of almost every name is not
//! listed. So before each NAMES lookup the program tests one bit of a per-generation bitmap,
//! indexed by the top bits of the suffix's key (keyed with the deployment's secret key, so the
//! bits are uniform and a list cannot be chosen to crowd them). Those bits come from a short
//! mix of the hash state (name.rs `Chain::filter_word`): a suffix the filter rules out is
//! never finalized. The controller sets the bit of every key it
//! writes into NAMES for that slot, before the slot goes live. A clear bit proves the suffix is
//! not a NAMES key, so the lookup is skipped; a set bit (a listed name, or another hash sharing
//! the bit) only sends the suffix on to the exact lookup. The filter can cost a lookup, never
//! hide an entry.
//!
//! 2^25 bits (4 MiB) per slot: at the 2M names a slot may hold (capacity.rs) 6% of the bits are
//! set, so an unlisted suffix goes on to NAMES 6% of the time; at 1M, 3%.

pub const BITS: u32 = 25;
/// 64-bit words in one generation's bitmap.
pub const WORDS: u32 = (1 << BITS) / 64;
/// The array map holds both generations: slot 1's words follow slot 0's.
pub const MAP_WORDS: u32 = 2 * WORDS;

/// The bit of a NAMES key, or of the short mix it takes its top from (blocker-common name.rs):
/// its top BITS bits.
#[inline(always)]
pub const fn bit(hash: u64) -> u32 {
    (hash >> (64 - BITS)) as u32
}

/// The map index of the word holding `hash`'s bit in `slot`'s bitmap, and the bit's mask.
#[inline(always)]
pub const fn index_and_mask(slot: u32, hash: u64) -> (u32, u64) {
    let b = bit(hash);
    ((slot & 1) * WORDS + (b >> 6), 1u64 << (b & 63))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hash_lands_in_its_own_slots_half() {
        for h in [0u64, 1, u64::MAX, 0x8000_0000_0000_0000, 0x1234_5678_9abc_def0] {
            let (i0, m0) = index_and_mask(0, h);
            let (i1, m1) = index_and_mask(1, h);
            assert!(i0 < WORDS && (WORDS..MAP_WORDS).contains(&i1));
            assert_eq!((i1 - WORDS, m1), (i0, m0), "both slots use the same layout");
            assert_eq!(m0.count_ones(), 1);
        }
    }

    #[test]
    fn the_bit_is_the_top_of_the_hash() {
        assert_eq!(bit(u64::MAX), (1 << BITS) - 1);
        assert_eq!(bit((1u64 << (64 - BITS)) - 1), 0, "low bits do not matter");
        assert_eq!(bit(1u64 << 63), 1 << (BITS - 1));
    }
}
