//! Keys and values of the prefix (CIDR) maps.
//!
//! The controller keeps two list generations in the kernel at once, in slots 0 and 1, and
//! switches between them with one write of `Config::slot` (see config.rs). Both share one trie
//! per map: a key is a prefix of either generation, and its value carries what each slot's
//! generation answers for it (`PrefixSlots`). Two generations that differ by a few entries
//! therefore cost about one generation of trie nodes, not two.
//!
//! A longest-prefix lookup returns the longest key of either generation. So that it answers
//! for the live slot alone, a key that slot's generation does not list holds, in that slot's
//! half, the value of the generation's own longest prefix covering it (`PREFIX_COVERING`), or
//! entry id 0 where none does: every prefix of a generation that covers an address also covers
//! the longest key that does, so the half holds exactly the generation's own longest match.

use crate::assert_size;

/// LPM key data for IPv4: the address, network order.
pub type V4KeyData = [u8; 4];
/// LPM key data for IPv6: the address, network order.
pub type V6KeyData = [u8; 16];

/// `PrefixValue::flags`: the entry is in a list in shadow mode. A destination it covers passes
/// and is counted (`Action::Shadow`). The controller never installs a shadow prefix inside an
/// enforced block prefix, so the longest match is a shadow value only where no enforced block
/// prefix covers the destination.
pub const PREFIX_SHADOW: u32 = 1 << 0;

/// `PrefixValue::flags`: the slot's generation does not list this key; the value is that of
/// its longest prefix covering the key. The program treats it like any value (it is the right
/// answer); the controller tells the generation's own entries from the rest by it.
pub const PREFIX_COVERING: u32 = 1 << 1;

/// What one generation answers for a prefix key. `entry_id` names the list entry for per-entry
/// counters and for `lookup`, without naming the address; 0 (ids start at 1): no prefix of the
/// generation covers the key.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixValue {
    pub entry_id: u32,
    /// PREFIX_SHADOW and PREFIX_COVERING, or 0 for an enforced entry of the generation.
    pub flags: u32,
}
assert_size!(PrefixValue, 8);

impl PrefixValue {
    /// The generation lists this very prefix (not only one covering it).
    #[inline(always)]
    pub const fn is_own(&self) -> bool {
        self.entry_id != 0 && self.flags & PREFIX_COVERING == 0
    }
}

/// The value of a prefix map: what each slot's generation answers. With the 4- or 16-byte key
/// the kernel's trie node stays a 64-byte object.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixSlots {
    pub slot: [PrefixValue; 2],
}
assert_size!(PrefixSlots, 16);
