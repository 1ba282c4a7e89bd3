//! Router mode's opt-in XDP forwarding (`FLAG_XDP_FORWARD`): what became of each allowed frame
//! the program tried to forward itself. Frames it does not forward go on into the kernel's own
//! forwarding path, as without the switch; the outcome says why, so an operator can tell a
//! working fast path from one that quietly hands everything to the kernel.

use crate::assert_size;

/// Redirected out of the FIB's egress port by the program.
pub const FORWARDED: usize = 0;
/// The FIB has a route but no resolved neighbour yet: the kernel resolves it (and forwards).
pub const NO_NEIGHBOUR: usize = 1;
/// Larger than the egress MTU: the kernel fragments it or answers "fragmentation needed".
pub const FRAG_NEEDED: usize = 2;
/// TTL or hop limit would expire here: the kernel answers "time exceeded".
pub const TTL_EXPIRED: usize = 3;
/// The FIB routes it out of a port not in the forwarding allowlist (`FORWARD_PORTS`).
pub const PORT_NOT_ALLOWED: usize = 4;
/// Not for forwarding in XDP: addressed to this host, not to the port's MAC, VLAN-tagged, not
/// IP, IP options, multicast, link-local or martian addresses, or a route the FIB does not
/// forward (local, blackhole, unreachable, prohibit, forwarding off).
pub const NOT_FORWARDED: usize = 5;
pub const OUTCOMES: usize = 6;

/// Metric label of each outcome, by index.
pub const OUTCOME_NAMES: [&str; OUTCOMES] = ["forwarded", "no_neighbour", "frag_needed", "ttl_expired", "port_not_allowed", "kernel"];

/// Not an outcome: of the frames counted as `FORWARDED`, those whose route came from the route
/// cache (route_cache.rs) instead of a FIB lookup. Kept in the same per-CPU value.
pub const ROUTE_CACHED: usize = 6;

/// Packets per outcome, per CPU (one map value); summed by the controller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardCounts {
    pub packets: [u64; 8],
}
assert_size!(ForwardCounts, 64);

/// The MAC address of the port the program judges on, as it receives unicast frames: only
/// frames sent to it are the router's to forward. Padded to 8 bytes; `set` is 0 until the
/// controller wrote it, and then no frame is forwarded in XDP.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortMac {
    pub mac: [u8; 6],
    pub set: u8,
    pub _pad: u8,
}
assert_size!(PortMac, 8);
