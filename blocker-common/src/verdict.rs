//! The verdict vocabulary: what the data plane does with a packet (`Action`) and why (`Reason`).
//! Counters are indexed by both, so every verdict is counted by reason and action.

/// What happens to a frame. The kernel maps each action to an XDP return code in one place
/// (`blocker-ebpf/src/verdict.rs`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Continue into the kernel stack (router mode).
    Pass = 0,
    /// Silently discard.
    Drop = 1,
    /// The frame was rewritten into a TCP reset and sent back out of the port it came in on.
    TcpReset = 2,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Pass, Action::Drop, Action::TcpReset];

    pub const fn name(self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Drop => "drop",
            Action::TcpReset => "tcp_reset",
        }
    }

    pub fn from_index(i: usize) -> Option<Action> {
        Self::ALL.get(i).copied()
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
    /// An internal failure (a map the program needs is missing): fail open.
    Internal = 6,
    /// The IPv4 destination is inside a listed prefix.
    DstV4 = 7,
    /// The IPv6 destination is inside a listed prefix.
    DstV6 = 8,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::NoMatch,
        Reason::NotIp,
        Reason::Bypass,
        Reason::AllowList,
        Reason::Malformed,
        Reason::Unsupported,
        Reason::Internal,
        Reason::DstV4,
        Reason::DstV6,
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
        }
    }

    /// True for the reasons under which a packet passes because the program could not judge it.
    pub const fn is_fail_open(self) -> bool {
        matches!(self, Reason::Malformed | Reason::Unsupported | Reason::Internal)
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
