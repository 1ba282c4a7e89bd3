//! How blocked DNS queries are answered: configuration the controller writes and the program
//! reads when it rewrites a query into its answer.

use crate::assert_size;

/// Answer A/AAAA with the stop-page addresses (other types: NODATA).
pub const MODE_STOP_PAGE: u8 = 0;
/// Answer NXDOMAIN.
pub const MODE_NXDOMAIN: u8 = 1;

/// Extended DNS Error info-codes (RFC 8914 §4).
pub const EDE_BLOCKED: u16 = 15;
pub const EDE_CENSORED: u16 = 16;
pub const EDE_FILTERED: u16 = 17;

/// The flags: the addresses below are set.
pub const HAS_V4: u8 = 1 << 0;
pub const HAS_V6: u8 = 1 << 1;
/// Answer queries for listed names at all (off: DNS passes untouched).
pub const ENABLED: u8 = 1 << 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// TTL of the answer records. Negative answers (NXDOMAIN, NODATA) carry no SOA, so resolvers
    /// do not cache them (RFC 2308 §5): each query for a listed name comes back here.
    pub ttl: u32,
    pub ede_code: u16,
    pub mode: u8,
    pub flags: u8,
    pub v4: [u8; 4],
    pub reserved: u32,
    pub v6: [u8; 16],
}
assert_size!(DnsConfig, 32);
