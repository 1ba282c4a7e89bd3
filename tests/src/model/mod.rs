//! A host reference model of the XDP program's verdict on one frame (issue 8, item 2).
//!
//! Given a frame, the lists ([`Lists`]) and the switches ([`Config`]), [`judge`] says which
//! (reason, action) counter cell the program must move for that frame, in the vocabulary of
//! `blocker_common::verdict`. It is written from the RFCs and the program's documented bounds
//! (ARCHITECTURE.md: data flow, verdict table, fail-open policy, parser bounds, names), not from
//! the kernel code, so that the differential test (`tests/tests/differential.rs`) can catch the
//! program where it departs from what it promises.
//!
//! Scope: a frame that starts a fresh flow, with no state from earlier frames: no flow already
//! blocked, no ClientHello or request head being read, no segment out of order. A ClientHello
//! or request head is judged from the one segment it starts in (complete: by its name;
//! incomplete: pending). Not modelled: state across segments (`flow_blocked`, `*_out_of_order`,
//! a second segment of a hello), the stop page (off), bypass (off), inline mode (the verdict's
//! counter cell is the same; only where a passing frame goes differs), the rewritten bytes of a
//! reset or DNS answer (the table tests check those), and per-entry counts.
//!
//! Where the model and the program disagree and the program's reading is a known, reported
//! departure, the model says so: [`Expectation::known`] carries the verdict the program gives
//! today, with the [`KnownIssue`]. The differential test counts those apart and lists them;
//! any other difference fails it.
//!
//! - frame.rs: Ethernet, VLAN tags, IPv4, IPv6 and its extension headers, TCP, UDP.
//! - tls.rs, http.rs, dns.rs: the names a ClientHello, an HTTP request head, a DNS query carry.
//! - name.rs: which names the program can judge, normalised as it judges them.
//! - lists.rs: what the model asks of the lists, and a plain implementation.

pub mod dns;
pub mod frame;
pub mod http;
pub mod lists;
pub mod name;
pub mod tls;

use std::net::IpAddr;

pub use blocker_common::verdict::{Action, Reason};
pub use lists::{Kind, Listed, Lists, PlainLists};

use frame::{Parsed, TCP_RST, Unjudged};

/// The program's switches that change verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Blocked TCP gets a reset (`--drop-tcp` off).
    pub tcp_reset: bool,
    /// DNS answering is on (`DNS_CONFIG` written, as `blocker run` does unless `--no-dns`).
    pub dns_answers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { tcp_reset: true, dns_answers: true }
    }
}

/// The counter cell a frame moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Verdict {
    pub reason: Reason,
    pub action: Action,
}

impl Verdict {
    pub const fn new(reason: Reason, action: Action) -> Self {
        Verdict { reason, action }
    }

    const fn pass(reason: Reason) -> Self {
        Verdict { reason, action: Action::Pass }
    }

    /// The XDP return code of the action in router mode.
    pub fn xdp(self) -> Xdp {
        match self.action {
            Action::Pass | Action::Shadow => Xdp::Pass,
            Action::Drop => Xdp::Drop,
            Action::TcpReset | Action::DnsAnswer | Action::StopPage => Xdp::Tx,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.reason.name(), self.action.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xdp {
    Pass,
    Drop,
    Tx,
}

/// Where the program departs from the model today, found by the differential test and reported
/// (see each one's [`KnownIssue::describe`]). None today: the seven the differential test found
/// first (a hello without extensions, an absolute-form target with a userinfo or the https
/// scheme, a bare LF in the target, a 254-byte Host with its trailing dot, several routing
/// headers, a routing header past the walk's bound) were fixed in the program (issue 8), and
/// `tests/tests/differential.rs` keeps one frame of each as a regression case. A departure found
/// later is listed here with the verdict the program gives, until it is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KnownIssue {}

impl KnownIssue {
    pub const ALL: [KnownIssue; 0] = [];

    pub fn name(self) -> &'static str {
        match self {}
    }

    pub fn describe(self) -> &'static str {
        match self {}
    }
}

/// A known departure: the verdict the program gives today.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Known {
    pub issue: KnownIssue,
    pub kernel: Verdict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// What the program should do.
    pub verdict: Verdict,
    /// What it does today, where that differs for a known reason.
    pub known: Option<Known>,
}

/// The verdict for one frame on a fresh flow.
pub fn judge(frame: &[u8], lists: &impl Lists, cfg: &Config) -> Expectation {
    Expectation { verdict: judge_frame(frame, lists, cfg), known: None }
}

fn judge_frame(frame: &[u8], lists: &impl Lists, cfg: &Config) -> Verdict {
    let p = match frame::parse(frame) {
        Ok(p) => p,
        Err(Unjudged::NotIp) => return Verdict::pass(Reason::NotIp),
        Err(Unjudged::Malformed) => return Verdict::pass(Reason::Malformed),
        Err(Unjudged::Unsupported) => return Verdict::pass(Reason::Unsupported),
    };
    let dst_reason = if p.dst.is_ipv4() { Reason::DstV4 } else { Reason::DstV6 };
    let mut shadow = None;
    match destination(&p, lists) {
        Dest::Blocked => return Verdict::new(dst_reason, block_action(&p, cfg)),
        Dest::Allowed => return Verdict::pass(Reason::AllowList),
        Dest::Shadow => shadow = Some(Verdict::new(dst_reason, Action::Shadow)),
        Dest::NotListed => {}
    }
    let v = by_name(&p, lists, cfg);
    // A destination only a shadow list covers never blocks: an enforced name block still
    // does; otherwise the frame passes, counted as what the shadow list would have done.
    match shadow {
        Some(s) if v.action.passes() => s,
        _ => v,
    }
}

enum Dest {
    NotListed,
    Allowed,
    Blocked,
    Shadow,
}

/// The destination, and the final destinations of IPv6 routing headers: allow > enforced
/// block > shadow over all of them; an allow entry counts only where something would block.
/// Every routing header with segments left among the extension headers the walk reads counts
/// (a packet with several visits each final destination); one past the walk's bound is not read.
fn destination(p: &Parsed, lists: &impl Lists) -> Dest {
    let finals = p.finals.iter().map(|a| IpAddr::V6(*a));
    let mut all = Listed::default();
    for ip in std::iter::once(p.dst).chain(finals) {
        let l = lists.addr(ip);
        all.block |= l.block;
        all.allow |= l.allow;
        all.shadow |= l.shadow;
    }
    match all {
        Listed { block: false, shadow: false, .. } => Dest::NotListed,
        Listed { allow: true, .. } => Dest::Allowed,
        Listed { block: true, .. } => Dest::Blocked,
        _ => Dest::Shadow,
    }
}

/// A blocked TCP segment is answered with a reset when resets are on, unless it is a reset
/// itself; anything else blocked (not TCP, or a TCP header not read) is dropped.
fn block_action(p: &Parsed, cfg: &Config) -> Action {
    match p.tcp() {
        Some((_, flags)) if cfg.tcp_reset && flags & TCP_RST == 0 => Action::TcpReset,
        _ => Action::Drop,
    }
}

enum Named {
    Blocked,
    Allowed,
    Shadow,
    NotListed,
}

fn name_match(lists: &impl Lists, name: &str) -> Named {
    // Names: any allow entry wins (counted as allow_list even with no block entry), then an
    // enforced block, then a shadow entry.
    match lists.name(name) {
        Listed { allow: true, .. } => Named::Allowed,
        Listed { block: true, .. } => Named::Blocked,
        Listed { shadow: true, .. } => Named::Shadow,
        _ => Named::NotListed,
    }
}

fn by_name(p: &Parsed, lists: &impl Lists, cfg: &Config) -> Verdict {
    if let Some((l4, length)) = p.udp()
        && l4.dport == 53
        && cfg.dns_answers
    {
        return dns_verdict(l4, length, lists);
    }
    let Some((l4, _)) = p.tcp() else { return Verdict::pass(Reason::NoMatch) };
    let payload = &l4.payload;
    if payload.declared == 0 {
        return Verdict::pass(Reason::NoMatch);
    }
    let (outcome, reason, pending, unparsed) = if tls::starts_client_hello(payload) {
        let o = match tls::read_client_hello(payload) {
            tls::Hello::Pending => Read::Pending,
            tls::Hello::NoName => Read::NoName,
            tls::Hello::Unparsed => Read::Unparsed,
            tls::Hello::Name(n) => Read::Name(n),
        };
        (o, Reason::Sni, Reason::TlsPending, Reason::TlsUnparsed)
    } else if http::starts_request(payload) {
        let o = match http::read_request_head(payload) {
            http::Head::Pending => Read::Pending,
            http::Head::NoName => Read::NoName,
            http::Head::Unparsed => Read::Unparsed,
            http::Head::Name(n) => Read::Name(n),
        };
        (o, Reason::HttpHost, Reason::HttpPending, Reason::HttpUnparsed)
    } else {
        return Verdict::pass(Reason::NoMatch);
    };
    match outcome {
        Read::Pending => Verdict::pass(pending),
        Read::NoName => Verdict::pass(Reason::NoMatch),
        Read::Unparsed => Verdict::pass(unparsed),
        Read::Name(raw) => match name::normalise(&raw) {
            None => Verdict::pass(unparsed),
            Some(n) => match name_match(lists, &n) {
                Named::Blocked => Verdict::new(reason, block_action(p, cfg)),
                Named::Allowed => Verdict::pass(Reason::AllowList),
                Named::Shadow => Verdict::new(reason, Action::Shadow),
                Named::NotListed => Verdict::pass(Reason::NoMatch),
            },
        },
    }
}

enum Read {
    Pending,
    NoName,
    Unparsed,
    Name(Vec<u8>),
}

/// A datagram to UDP port 53: its lengths must agree (UDP length = what the IP header
/// declares; the whole message in the frame), then the query (dns.rs).
fn dns_verdict(l4: &frame::L4, udp_length: u16, lists: &impl Lists) -> Verdict {
    let unparsed = Verdict::pass(Reason::DnsUnparsed);
    let p = &l4.payload;
    if usize::from(udp_length) != p.declared + 8 {
        return unparsed;
    }
    let Some(msg) = p.complete() else { return unparsed };
    match dns::read_query(msg) {
        dns::Query::Unparsed => unparsed,
        dns::Query::Root => Verdict::pass(Reason::NoMatch),
        dns::Query::Name(n) => match name_match(lists, &n) {
            Named::Blocked => Verdict::new(Reason::DnsName, Action::DnsAnswer),
            Named::Allowed => Verdict::pass(Reason::AllowList),
            Named::Shadow => Verdict::new(Reason::DnsName, Action::Shadow),
            Named::NotListed => Verdict::pass(Reason::NoMatch),
        },
    }
}

#[cfg(test)]
mod tests;
