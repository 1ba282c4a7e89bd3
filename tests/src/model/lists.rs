//! What the model asks of the lists: for an address or a name, which kinds of entry cover it.
//!
//! The semantics are those of `ListSet::lookup` (blocker-user/src/lists/lookup.rs): an address is
//! covered by a prefix that contains it; a name is covered by an entry listing the name itself
//! with "this name" in its mode, or listing a label-aligned proper suffix of it with "names
//! below" in its mode. Enforced block entries, allow entries and block entries of lists in
//! shadow mode are looked up apart. This library cannot depend on blocker-user (xtask links it
//! before bpf-linker exists), so the lists come in through the [`Lists`] trait: the privileged
//! tests implement it with `ListSet::match_addr` / `match_name`, and [`PlainLists`] is a small
//! independent implementation for the fuzz targets and unit tests.

use std::net::IpAddr;

/// Which kinds of entry cover an address or a name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// An enforced block entry.
    pub block: bool,
    /// An allow entry.
    pub allow: bool,
    /// A block entry of a list in shadow mode.
    pub shadow: bool,
}

pub trait Lists {
    /// The entries covering a destination address.
    fn addr(&self, ip: IpAddr) -> Listed;
    /// The entries covering a name, given normalised: lowercase ASCII, no trailing dot, labels
    /// of 1-63 bytes of `a-z 0-9 - _`, at most 253 bytes.
    fn name(&self, name: &str) -> Listed;
}

/// Whether an entry blocks, allows, or would block (shadow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Block,
    Allow,
    Shadow,
}

/// Lists as plain data.
#[derive(Clone, Debug, Default)]
pub struct PlainLists {
    /// (network address, prefix length, kind).
    pub prefixes: Vec<(IpAddr, u8, Kind)>,
    /// (normalised name, covers the name itself, covers names below it, kind).
    pub names: Vec<(String, bool, bool, Kind)>,
}

impl PlainLists {
    /// From list-like text: one entry per line, `kind` for all; `=name` is the name only,
    /// `*.name` its subdomains only, a bare name both; addresses with an optional `/len`.
    pub fn parse(&mut self, text: &str, kind: Kind) {
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (addr, len) = match line.split_once('/') {
                Some((a, l)) => (a, l.parse::<u8>().ok()),
                None => (line, None),
            };
            if let Ok(ip) = addr.parse::<IpAddr>() {
                let len = len.unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
                self.prefixes.push((ip, len, kind));
            } else if let Some(n) = line.strip_prefix('=') {
                self.names.push((n.to_ascii_lowercase(), true, false, kind));
            } else if let Some(n) = line.strip_prefix("*.") {
                self.names.push((n.to_ascii_lowercase(), false, true, kind));
            } else {
                self.names.push((line.to_ascii_lowercase(), true, true, kind));
            }
        }
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

fn mark(l: &mut Listed, kind: Kind) {
    match kind {
        Kind::Block => l.block = true,
        Kind::Allow => l.allow = true,
        Kind::Shadow => l.shadow = true,
    }
}

impl Lists for PlainLists {
    fn addr(&self, ip: IpAddr) -> Listed {
        let mut l = Listed::default();
        for &(net, len, kind) in &self.prefixes {
            if contains(net, len, ip) {
                mark(&mut l, kind);
            }
        }
        l
    }

    fn name(&self, name: &str) -> Listed {
        let mut l = Listed::default();
        for (listed, this, below, kind) in &self.names {
            let covers = if name == listed {
                *this
            } else {
                *below && name.len() > listed.len() && name.ends_with(listed.as_str()) && name.as_bytes()[name.len() - listed.len() - 1] == b'.'
            };
            if covers {
                mark(&mut l, *kind);
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_on_label_boundaries_in_their_modes() {
        let mut p = PlainLists::default();
        p.parse("example.com\n=exact.example\n*.sub.example\n", Kind::Block);
        p.parse("ok.example.com\n", Kind::Allow);
        let b = |n: &str| p.name(n).block;
        assert!(b("example.com") && b("www.example.com") && !b("xexample.com"));
        assert!(b("exact.example") && !b("www.exact.example"));
        assert!(!b("sub.example") && b("a.sub.example"));
        assert!(p.name("a.ok.example.com").allow && p.name("a.ok.example.com").block);
    }

    #[test]
    fn prefixes_cover_their_addresses() {
        let mut p = PlainLists::default();
        p.parse("198.51.100.0/24\n2001:db8:b::/48\n", Kind::Block);
        p.parse("198.51.100.128/25\n", Kind::Allow);
        assert!(p.addr("198.51.100.7".parse().unwrap()).block);
        assert!(p.addr("198.51.100.200".parse().unwrap()).allow);
        assert!(!p.addr("198.51.101.1".parse().unwrap()).block);
        assert!(p.addr("2001:db8:b:ffff::1".parse().unwrap()).block);
    }
}
