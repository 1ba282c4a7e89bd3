//! The DNS answering options shared by `run` and `replay`.

use std::net::{Ipv4Addr, Ipv6Addr};

use blocker_user::datapath::{BlockedBecause, DnsPolicy, DnsReply};
use clap::{Args, ValueEnum};

#[derive(Args, Debug, Clone)]
pub struct DnsArgs {
    /// Answer A queries for listed names with this stop-page address.
    #[arg(long = "dns-v4", value_name = "ADDR")]
    pub v4: Option<Ipv4Addr>,
    /// Answer AAAA queries for listed names with this stop-page address.
    #[arg(long = "dns-v6", value_name = "ADDR")]
    pub v6: Option<Ipv6Addr>,
    /// TTL of the stop-page answers.
    #[arg(long = "dns-ttl", value_name = "SECS", default_value_t = 300)]
    pub ttl: u32,
    /// Answer NXDOMAIN even when stop-page addresses are given (the default without them).
    #[arg(long = "dns-nxdomain")]
    pub nxdomain: bool,
    /// The Extended DNS Error sent to clients that use EDNS (RFC 8914): blocked (15, the
    /// operator's own policy), censored (16, required by another entity: the law, a court) or
    /// filtered (17, a filter the subscriber asked for).
    #[arg(long = "dns-ede", value_enum, value_name = "CODE", default_value_t = EdeArg::Blocked)]
    pub ede: EdeArg,
    /// Do not answer DNS queries for listed names: they pass (unless their destination is listed).
    #[arg(long = "no-dns", conflicts_with_all = ["v4", "v6", "nxdomain"])]
    pub no_dns: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdeArg {
    Blocked,
    Censored,
    Filtered,
}

impl DnsArgs {
    pub fn policy(&self) -> DnsPolicy {
        if self.no_dns {
            return DnsPolicy::disabled();
        }
        let mut p = DnsPolicy::stop_page(self.v4, self.v6);
        if self.nxdomain {
            p.reply = DnsReply::NxDomain;
        }
        p.ttl = self.ttl;
        p.ede = match self.ede {
            EdeArg::Blocked => BlockedBecause::Blocked,
            EdeArg::Censored => BlockedBecause::Censored,
            EdeArg::Filtered => BlockedBecause::Filtered,
        };
        p
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        dns: DnsArgs,
    }

    fn policy(args: &[&str]) -> DnsPolicy {
        Cli::try_parse_from(std::iter::once("blocker").chain(args.iter().copied())).expect("arguments parse").dns.policy()
    }

    #[test]
    fn without_options_blocked_names_get_nxdomain_with_ede_blocked() {
        assert_eq!(policy(&[]), DnsPolicy::default());
    }

    #[test]
    fn stop_page_addresses_ttl_and_ede_are_taken() {
        let p = policy(&["--dns-v4", "192.0.2.80", "--dns-v6", "2001:db8::80", "--dns-ttl", "60", "--dns-ede", "filtered"]);
        assert_eq!(p.reply, DnsReply::StopPage { v4: Some("192.0.2.80".parse().unwrap()), v6: Some("2001:db8::80".parse().unwrap()) });
        assert_eq!((p.ttl, p.ede, p.enabled), (60, BlockedBecause::Filtered, true));
        assert_eq!(policy(&["--dns-ede", "censored"]).ede, BlockedBecause::Censored);
    }

    #[test]
    fn nxdomain_wins_over_addresses_and_no_dns_disables() {
        assert_eq!(policy(&["--dns-v4", "192.0.2.80", "--dns-nxdomain"]).reply, DnsReply::NxDomain);
        assert!(!policy(&["--no-dns"]).enabled);
        assert!(Cli::try_parse_from(["blocker", "--no-dns", "--dns-v4", "192.0.2.80"]).is_err());
    }
}
