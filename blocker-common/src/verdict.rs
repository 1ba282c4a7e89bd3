//! The verdict vocabulary: what the data plane does with a packet (`Action`) and why (`Reason`).
//! Counters are indexed by both, so every verdict is counted by reason and action.

/// What happens to a frame. The kernel maps each action to an XDP return code in one place
/// (`blocker-ebpf/src/verdict.rs`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Continue: into the kernel stack (router mode), or out of the other port (inline mode).
    Pass = 0,
    /// Silently discard.
    Drop = 1,
    /// The frame was rewritten into a TCP reset and sent back out of the port it came in on.
    TcpReset = 2,
    /// The DNS query was rewritten into its answer and sent back out of the port it came in on.
    DnsAnswer = 3,
    /// The segment was rewritten into the HTTP 451 stop-page response (or, for a flow to a
    /// listed address, the SYN-ACK that leads to it) and sent back to the client.
    StopPage = 4,
    /// Passed because the only matching entry is in a shadow list: counted under the reason a
    /// block would have had (and against that entry), never enforced.
    Shadow = 5,
}

impl Action {
    pub const ALL: [Action; 6] =
        [Action::Pass, Action::Drop, Action::TcpReset, Action::DnsAnswer, Action::StopPage, Action::Shadow];

    pub const fn name(self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Drop => "drop",
            Action::TcpReset => "tcp_reset",
            Action::DnsAnswer => "dns_answer",
            Action::StopPage => "stop_page",
            Action::Shadow => "shadow",
        }
    }

    pub fn from_index(i: usize) -> Option<Action> {
        Self::ALL.get(i).copied()
    }

    /// What the action means, in a sentence.
    pub const fn describe(self) -> &'static str {
        match self {
            Action::Pass => "passed",
            Action::Drop => "dropped",
            Action::TcpReset => "answered with a TCP reset",
            Action::DnsAnswer => "answered with a DNS answer",
            Action::StopPage => "answered with the stop page",
            Action::Shadow => "passed because the only matching entry is in a shadow list",
        }
    }

    /// True for the actions under which the frame continues: into the kernel stack (router
    /// mode) or out of the other port (inline mode).
    pub const fn passes(self) -> bool {
        matches!(self, Action::Pass | Action::Shadow)
    }
}

/// Why a verdict was reached. Values are stable: they index the counter table and appear in
/// replay output, metrics and the conformance corpus.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Nothing listed matched: the common case.
    NoMatch = 0,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp = 1,
    /// The global bypass switch is on.
    Bypass = 2,
    /// A block entry matched but an allow entry covering the destination wins.
    AllowList = 3,
    /// A header was truncated or inconsistent: fail open.
    Malformed = 4,
    /// A shape the parser bounds do not cover (a third VLAN tag, a too long IPv6 extension
    /// chain, ...): fail open.
    Unsupported = 5,
    /// An internal failure (a map the program needs is missing, or `blocker_tcp` could not be
    /// tail-called): fail open.
    Internal = 6,
    /// The IPv4 destination is inside a listed prefix.
    DstV4 = 7,
    /// The IPv6 destination is inside a listed prefix.
    DstV6 = 8,
    /// A TLS ClientHello named a listed server (SNI).
    Sni = 9,
    /// A DNS query asked for a listed name.
    DnsName = 10,
    /// An HTTP request named a listed Host.
    HttpHost = 11,
    /// A later packet of a flow already blocked.
    FlowBlocked = 12,
    /// A segment arrived ahead of a gap while a ClientHello was incomplete: dropped so the
    /// client resends in order (see tls.rs).
    TlsOutOfOrder = 13,
    /// A segment of a ClientHello still being read: passed while the name is incomplete.
    TlsPending = 14,
    /// Looked like a ClientHello but could not be read to a server name: fail open. (A
    /// ClientHello without server_name is `NoMatch`: there is nothing to judge.)
    TlsUnparsed = 15,
    /// A packet to UDP port 53 that is not a query we can judge: fail open.
    DnsUnparsed = 16,
    /// A segment of an HTTP request head whose host is not complete yet: passed.
    HttpPending = 17,
    /// Looked like an HTTP request but could not be read to a host: fail open. (A request
    /// without a Host, or for an address literal, is `NoMatch`.)
    HttpUnparsed = 18,
    /// A segment ahead of a gap while an HTTP request head was incomplete: dropped.
    HttpOutOfOrder = 19,
    /// Inline mode: a frame the internet port received, forwarded to the subscriber port
    /// unjudged (the program there, `blocker_wire`, blocks nothing).
    FromInternet = 20,
    /// A datagram of a QUIC flow whose client Initial named a listed server (read in user space
    /// from a copy, see blocker-user/src/quic): dropped, or counted as shadow.
    Quic = 21,
    /// A client Initial of a QUIC flow without a verdict, copied to user space to be read and
    /// passed while its name is judged.
    QuicPending = 22,
    /// A client Initial that should have been copied but was not (the per-CPU rate bound or the
    /// ring buffer was exhausted): passed unread, fail open.
    QuicOverload = 23,
    /// 0-RTT data of a QUIC flow without a verdict yet (alone, or coalesced after its Initial):
    /// dropped, as it may carry a request to a listed server before its name is judged; the
    /// client sends it again once the handshake is done.
    QuicEarly = 24,
}

impl Reason {
    pub const ALL: [Reason; 25] = [
        Reason::NoMatch,
        Reason::NotIp,
        Reason::Bypass,
        Reason::AllowList,
        Reason::Malformed,
        Reason::Unsupported,
        Reason::Internal,
        Reason::DstV4,
        Reason::DstV6,
        Reason::Sni,
        Reason::DnsName,
        Reason::HttpHost,
        Reason::FlowBlocked,
        Reason::TlsOutOfOrder,
        Reason::TlsPending,
        Reason::TlsUnparsed,
        Reason::DnsUnparsed,
        Reason::HttpPending,
        Reason::HttpUnparsed,
        Reason::HttpOutOfOrder,
        Reason::FromInternet,
        Reason::Quic,
        Reason::QuicPending,
        Reason::QuicOverload,
        Reason::QuicEarly,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Reason::NoMatch => "no_match",
            Reason::NotIp => "not_ip",
            Reason::Bypass => "bypass",
            Reason::AllowList => "allow_list",
            Reason::Malformed => "malformed",
            Reason::Unsupported => "unsupported",
            Reason::Internal => "internal",
            Reason::DstV4 => "dst_v4",
            Reason::DstV6 => "dst_v6",
            Reason::Sni => "sni",
            Reason::DnsName => "dns_name",
            Reason::HttpHost => "http_host",
            Reason::FlowBlocked => "flow_blocked",
            Reason::TlsOutOfOrder => "tls_out_of_order",
            Reason::TlsPending => "tls_pending",
            Reason::TlsUnparsed => "tls_unparsed",
            Reason::DnsUnparsed => "dns_unparsed",
            Reason::HttpPending => "http_pending",
            Reason::HttpUnparsed => "http_unparsed",
            Reason::HttpOutOfOrder => "http_out_of_order",
            Reason::FromInternet => "from_internet",
            Reason::Quic => "quic",
            Reason::QuicPending => "quic_pending",
            Reason::QuicOverload => "quic_overload",
            Reason::QuicEarly => "quic_early",
        }
    }

    /// True for the reasons under which a packet passes because the program could not judge it.
    pub const fn is_fail_open(self) -> bool {
        matches!(
            self,
            Reason::Malformed
                | Reason::Unsupported
                | Reason::Internal
                | Reason::TlsUnparsed
                | Reason::DnsUnparsed
                | Reason::HttpUnparsed
                | Reason::QuicOverload
        )
    }

    pub fn from_index(i: usize) -> Option<Reason> {
        Self::ALL.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_round_trip_and_fit_the_counter_table() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(Reason::from_index(i), Some(*r));
            assert!(i < crate::counters::REASON_SLOTS);
        }
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            assert!(i < crate::counters::ACTION_SLOTS);
        }
    }
}
