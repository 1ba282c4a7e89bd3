//! Keys and values of the prefix (CIDR) maps.

use crate::assert_size;

/// An IPv6 address as 16 network-order bytes; the LPM trie key data for IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ipv6Addr(pub [u8; 16]);
assert_size!(Ipv6Addr, 16);

/// What a prefix map entry carries. `entry_id` names the list entry for per-entry counters,
/// without naming the address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixValue {
    pub entry_id: u32,
    pub flags: u32,
}
assert_size!(PrefixValue, 8);
