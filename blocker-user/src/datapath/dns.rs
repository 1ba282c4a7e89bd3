//! How the program answers DNS queries for listed names: the controller's typed view of the
//! DNS_CONFIG map (blocker-common dns.rs).

use std::net::{Ipv4Addr, Ipv6Addr};

use aya::maps::{Array, MapData};
use blocker_common::dns::{DnsConfig, EDE_BLOCKED, EDE_CENSORED, EDE_FILTERED, ENABLED, HAS_V4, HAS_V6, MODE_NXDOMAIN, MODE_STOP_PAGE};

use super::{Datapath, DatapathError};

/// What a blocked query is answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsReply {
    /// A queries get `v4`, AAAA queries get `v6`; a type with no address configured, and every
    /// other type (MX, TXT, HTTPS, ...), gets NODATA: NOERROR with no answer.
    StopPage { v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr> },
    /// NXDOMAIN for every type.
    NxDomain,
}

/// The Extended DNS Error info-code (RFC 8914 §4) sent to clients that use EDNS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockedBecause {
    /// 15 Blocked: the operator's own policy (a voluntary block, as with the IWF list).
    Blocked,
    /// 16 Censored: a requirement an entity other than the operator imposes (a block the law
    /// or a court orders).
    Censored,
    /// 17 Filtered: a filter the client asked for (e.g. a family-safe service).
    Filtered,
}

impl BlockedBecause {
    pub fn code(self) -> u16 {
        match self {
            BlockedBecause::Blocked => EDE_BLOCKED,
            BlockedBecause::Censored => EDE_CENSORED,
            BlockedBecause::Filtered => EDE_FILTERED,
        }
    }
}

/// How queries for listed names are answered.
///
/// The default answers NXDOMAIN: without a stop-page address there is nothing useful to put
/// in an A/AAAA answer, and NXDOMAIN makes clients give up at once where NODATA would leave
/// them trying other record types. Configure `DnsReply::StopPage` with addresses to send
/// clients to the stop page instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsPolicy {
    /// Off: DNS queries are judged by destination only and otherwise pass untouched.
    pub enabled: bool,
    pub reply: DnsReply,
    /// TTL of the A/AAAA answer records.
    pub ttl: u32,
    pub ede: BlockedBecause,
}

impl Default for DnsPolicy {
    fn default() -> Self {
        DnsPolicy { enabled: true, reply: DnsReply::NxDomain, ttl: 300, ede: BlockedBecause::Blocked }
    }
}

impl DnsPolicy {
    /// Answering switched off.
    pub fn disabled() -> Self {
        DnsPolicy { enabled: false, ..Self::default() }
    }

    /// The stop-page reply with these addresses; with neither, NXDOMAIN (see the type's doc).
    pub fn stop_page(v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) -> Self {
        let reply = if v4.is_none() && v6.is_none() { DnsReply::NxDomain } else { DnsReply::StopPage { v4, v6 } };
        DnsPolicy { reply, ..Self::default() }
    }

    /// The map value the program reads.
    pub fn to_config(&self) -> DnsConfig {
        let mut c = DnsConfig { ttl: self.ttl, ede_code: self.ede.code(), ..DnsConfig::default() };
        if self.enabled {
            c.flags |= ENABLED;
        }
        match self.reply {
            DnsReply::NxDomain => c.mode = MODE_NXDOMAIN,
            DnsReply::StopPage { v4, v6 } => {
                c.mode = MODE_STOP_PAGE;
                if let Some(a) = v4 {
                    c.flags |= HAS_V4;
                    c.v4 = a.octets();
                }
                if let Some(a) = v6 {
                    c.flags |= HAS_V6;
                    c.v6 = a.octets();
                }
            }
        }
        c
    }
}

impl Datapath {
    /// Sets how queries for listed names are answered. Until this is called the program does
    /// not answer DNS at all (the map starts zeroed, which means disabled).
    pub fn set_dns(&mut self, policy: &DnsPolicy) -> Result<(), DatapathError> {
        let mut map: Array<&mut MapData, DnsConfig> = self.map_mut("DNS_CONFIG")?;
        map.set(0, policy.to_config(), 0).map_err(|e| DatapathError::map("DNS_CONFIG", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_answers_nxdomain_with_ede_blocked() {
        let c = DnsPolicy::default().to_config();
        assert_eq!((c.mode, c.flags, c.ttl, c.ede_code), (MODE_NXDOMAIN, ENABLED, 300, EDE_BLOCKED));
    }

    #[test]
    fn stop_page_addresses_are_flagged_and_written_in_network_order() {
        let p = DnsPolicy::stop_page(Some(Ipv4Addr::new(192, 0, 2, 80)), None);
        let c = p.to_config();
        assert_eq!(c.mode, MODE_STOP_PAGE);
        assert_eq!(c.flags, ENABLED | HAS_V4);
        assert_eq!(c.v4, [192, 0, 2, 80]);
        let v6: Ipv6Addr = "2001:db8::80".parse().unwrap();
        let c = DnsPolicy::stop_page(None, Some(v6)).to_config();
        assert_eq!((c.flags, c.v6), (ENABLED | HAS_V6, v6.octets()));
    }

    #[test]
    fn a_stop_page_without_addresses_is_nxdomain() {
        assert_eq!(DnsPolicy::stop_page(None, None).reply, DnsReply::NxDomain);
    }

    #[test]
    fn disabled_clears_the_enabled_flag_and_the_ede_codes_are_rfc_8914_s() {
        assert_eq!(DnsPolicy::disabled().to_config().flags & ENABLED, 0);
        for (ede, code) in [(BlockedBecause::Blocked, 15), (BlockedBecause::Censored, 16), (BlockedBecause::Filtered, 17)] {
            assert_eq!(DnsPolicy { ede, ..DnsPolicy::default() }.to_config().ede_code, code, "{ede:?}");
        }
    }
}
