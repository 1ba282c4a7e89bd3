//! One list entry that names addresses: an IPv4/IPv6 address or CIDR prefix.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// Block prefixes shorter than these are refused: a list entry that covers a /7 of IPv4 or a
/// /15 of IPv6 is a mistake, not a site. (Allow lists have no such limit.)
pub const MIN_BLOCK_LEN_V4: u8 = 8;
pub const MIN_BLOCK_LEN_V6: u8 = blocker_common::coarse::V6_MIN_COARSE_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    V4 { addr: Ipv4Addr, len: u8 },
    V6 { addr: Ipv6Addr, len: u8 },
}

impl Prefix {
    pub fn len(&self) -> u8 {
        match *self {
            Prefix::V4 { len, .. } | Prefix::V6 { len, .. } => len,
        }
    }

    pub fn is_v4(&self) -> bool {
        matches!(self, Prefix::V4 { .. })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Prefix::V4 { addr, len }, IpAddr::V4(ip)) => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
                u32::from(addr) & mask == u32::from(ip) & mask
            }
            (Prefix::V6 { addr, len }, IpAddr::V6(ip)) => {
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
                u128::from(addr) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prefix::V4 { addr, len } => write!(f, "{addr}/{len}"),
            Prefix::V6 { addr, len } => write!(f, "{addr}/{len}"),
        }
    }
}

/// Parses `192.0.2.1`, `192.0.2.0/24`, `2001:db8::1`, `2001:db8::/32`. A prefix with bits set
/// beyond its length is refused rather than silently widened: `192.0.2.1/24` is more likely a
/// typo for a /32 than a request to block 256 addresses.
pub fn parse_prefix(text: &str) -> Result<Prefix, String> {
    let (addr_text, len_text) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("not an IPv4 or IPv6 address: {addr_text:?}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len_text {
        None => max,
        Some(l) => {
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                return Err(format!("prefix length {l:?} is not a number"));
            }
            let n: u16 = l.parse().map_err(|_| format!("prefix length {l:?} is not a number"))?;
            if n > max as u16 {
                return Err(format!("prefix length /{n} is longer than /{max}"));
            }
            n as u8
        }
    };
    let prefix = match addr {
        IpAddr::V4(a) => Prefix::V4 { addr: a, len },
        IpAddr::V6(a) => Prefix::V6 { addr: a, len },
    };
    // IPv4 traffic is IPv4 on the wire: an IPv4-mapped IPv6 entry would never match it.
    if let Prefix::V6 { addr, len } = prefix {
        if let (Some(v4), true) = (addr.to_ipv4_mapped(), len >= 96) {
            let write = match canonical(Prefix::V4 { addr: v4, len: len - 96 }) {
                Prefix::V4 { addr, len: 32 } => addr.to_string(),
                p => p.to_string(),
            };
            return Err(format!("an IPv4-mapped IPv6 address, which never appears on the wire: write {write}"));
        }
    }
    let canonical = canonical(prefix);
    if canonical != prefix {
        return Err(format!(
            "host bits set beyond /{len}: write {canonical} for the network, or the address alone for one host"
        ));
    }
    Ok(prefix)
}

fn canonical(p: Prefix) -> Prefix {
    match p {
        Prefix::V4 { addr, len } => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
            Prefix::V4 { addr: Ipv4Addr::from(u32::from(addr) & mask), len }
        }
        Prefix::V6 { addr, len } => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
            Prefix::V6 { addr: Ipv6Addr::from(u128::from(addr) & mask), len }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_ipv6_entries_are_refused_with_the_ipv4_form() {
        assert_eq!(parse_prefix("::ffff:192.0.2.1").unwrap_err(), "an IPv4-mapped IPv6 address, which never appears on the wire: write 192.0.2.1");
        assert!(parse_prefix("::ffff:198.51.100.0/120").unwrap_err().ends_with("write 198.51.100.0/24"));
        assert!(parse_prefix("::ffff:198.51.100.7/120").unwrap_err().ends_with("write 198.51.100.0/24"), "the network, as written right");
        assert!(parse_prefix("::ffff:0:0/96").unwrap_err().ends_with("write 0.0.0.0/0"));
        assert!(parse_prefix("2001:db8::ffff:c000:201").is_ok(), "only the mapped range is meant");
        assert!(parse_prefix("::/0").is_ok(), "a prefix that merely covers the mapped range is a real IPv6 prefix");
    }

    #[test]
    fn bare_addresses_are_host_prefixes() {
        assert_eq!(parse_prefix("192.0.2.7").unwrap(), Prefix::V4 { addr: "192.0.2.7".parse().unwrap(), len: 32 });
        assert_eq!(parse_prefix("2001:db8::7").unwrap().len(), 128);
    }

    #[test]
    fn cidrs_parse_with_their_length() {
        assert_eq!(parse_prefix("198.51.100.0/24").unwrap().len(), 24);
        assert_eq!(parse_prefix("2001:db8:1::/48").unwrap().len(), 48);
    }

    #[test]
    fn host_bits_beyond_the_length_are_refused_with_a_suggestion() {
        let e = parse_prefix("192.0.2.1/24").unwrap_err();
        assert!(e.contains("192.0.2.0/24"), "{e}");
        assert!(parse_prefix("2001:db8::1/64").is_err());
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "example", "192.0.2", "192.0.2.256", "192.0.2.0/33", "192.0.2.0/", "192.0.2.0/x", "2001:db8::/129", "2001:db8::/-1", "192.0.2.0/024x", "1.2.3.4 5"] {
            assert!(parse_prefix(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn contains_respects_the_length() {
        let p = parse_prefix("203.0.113.0/25").unwrap();
        assert!(p.contains("203.0.113.127".parse().unwrap()));
        assert!(!p.contains("203.0.113.128".parse().unwrap()));
        assert!(!p.contains("2001:db8::1".parse().unwrap()));
    }
}
