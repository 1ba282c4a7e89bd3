//! Addresses and interface names of the lab (design.md §1). Documentation ranges only
//! (RFC 5737, RFC 3849), so nothing here can reach or impersonate a real network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The client's veth, in the client namespace.
pub const CLIENT_IF: &str = "c0";
/// The appliance's subscriber-facing veth (peer of `c0`): where the blocker attaches.
pub const APPLIANCE_CLIENT_IF: &str = "a0";
/// The appliance's upstream veth (peer of `i0`).
pub const APPLIANCE_INTERNET_IF: &str = "a1";
/// The internet's veth, in the internet namespace.
pub const INTERNET_IF: &str = "i0";

/// Client side: 192.0.2.0/24 and 2001:db8:c::/64.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 2);
/// The appliance on the client side: the client's default gateway. In the inline topology
/// (`LabOptions::inline`) the appliance has no addresses and these are the internet
/// namespace's, on `i0`: the client's gateway is then the far side of the wire.
pub const APPLIANCE_CLIENT_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const APPLIANCE_CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 1);
pub const CLIENT_PREFIX_LEN_V4: u8 = 24;
pub const CLIENT_PREFIX_LEN_V6: u8 = 64;

/// Upstream link: 198.51.100.0/24 and 2001:db8:e::/64. In the inline topology there is no
/// upstream link: `INTERNET_V4`/`INTERNET_V6` are host addresses on the internet namespace's
/// `lo` (the DNS server listens there) and the `APPLIANCE_INTERNET_*` ones are unused.
pub const APPLIANCE_INTERNET_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const APPLIANCE_INTERNET_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe, 0, 0, 0, 0, 1);
pub const INTERNET_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const INTERNET_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe, 0, 0, 0, 0, 2);
pub const UPSTREAM_PREFIX_LEN_V4: u8 = 24;
pub const UPSTREAM_PREFIX_LEN_V6: u8 = 64;

/// "Servers": host addresses on the internet namespace's `lo`, routed by the appliance
/// (203.0.113.0/24 and 2001:db8:f::/48). Tests block the `BLOCKED_*` ones and expect the
/// `ALLOWED_*` ones to keep working.
pub const ALLOWED_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const BLOCKED_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
pub const ALLOWED_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10);
pub const BLOCKED_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x66);
/// The routed server ranges, as the appliance's routes spell them.
pub const SERVERS_V4: &str = "203.0.113.0/24";
pub const SERVERS_V6: &str = "2001:db8:f::/48";

/// Every server address the internet namespace answers on.
pub const SERVER_ADDRS: [IpAddr; 4] = [
    IpAddr::V4(ALLOWED_V4),
    IpAddr::V4(BLOCKED_V4),
    IpAddr::V6(ALLOWED_V6),
    IpAddr::V6(BLOCKED_V6),
];

/// `http://203.0.113.10/` or `http://[2001:db8:f::10]/`.
pub fn http_url(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("http://{a}/"),
        IpAddr::V6(a) => format!("http://[{a}]/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bracket_v6() {
        assert_eq!(http_url(ALLOWED_V4.into()), "http://203.0.113.10/");
        assert_eq!(http_url(ALLOWED_V6.into()), "http://[2001:db8:f::10]/");
    }
}
