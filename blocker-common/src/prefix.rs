//! Keys and values of the prefix (CIDR) maps.
//!
//! The controller keeps two list generations in the kernel at once, in slots 0 and 1, and
//! switches between them with one write of `Config::slot` (see config.rs). In the LPM tries the
//! slot is the first byte of the key, covered by the prefix length, so one trie holds both
//! generations and a lookup only ever sees the generation it asked for.

use crate::assert_size;

/// LPM key data for IPv4: `[slot, a, b, c, d]`.
pub type V4KeyData = [u8; 5];
/// LPM key data for IPv6: `[slot, 16 address bytes]`.
pub type V6KeyData = [u8; 17];

/// Bits of the key taken by the slot byte, added to every prefix length.
pub const SLOT_BITS: u32 = 8;

#[inline(always)]
pub const fn v4_key_data(slot: u8, addr: [u8; 4]) -> V4KeyData {
    [slot, addr[0], addr[1], addr[2], addr[3]]
}

#[inline(always)]
pub fn v6_key_data(slot: u8, addr: &[u8; 16]) -> V6KeyData {
    let mut k = [0u8; 17];
    k[0] = slot;
    let mut i = 0;
    while i < 16 {
        k[i + 1] = addr[i];
        i += 1;
    }
    k
}

/// `PrefixValue::flags`: the entry is in a list in shadow mode. A destination it covers passes
/// and is counted (`Action::Shadow`). The controller never installs a shadow prefix inside an
/// enforced block prefix, so the longest match is a shadow value only where no enforced block
/// prefix covers the destination.
pub const PREFIX_SHADOW: u32 = 1 << 0;

/// What a prefix map entry carries. `entry_id` names the list entry for per-entry counters
/// and for `lookup`, without naming the address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixValue {
    pub entry_id: u32,
    /// PREFIX_SHADOW, or 0 for an enforced entry.
    pub flags: u32,
}
assert_size!(PrefixValue, 8);
