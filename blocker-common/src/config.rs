//! Run-time switches the controller sets and the program reads once per packet.

use crate::assert_size;

/// Pass every packet untouched (counted as `Reason::Bypass`).
pub const FLAG_BYPASS: u32 = 1 << 0;
/// Answer a blocked TCP segment with a reset to the client instead of a silent drop.
pub const FLAG_TCP_RESET: u32 = 1 << 1;
/// Some IPv6 block prefix is too short for the coarse filter: every IPv6 packet takes the exact
/// (slower) path. See `coarse.rs`.
pub const FLAG_V6_ALL_EXACT: u32 = 1 << 2;
/// Answer blocked HTTP requests with the stop-page response (STOP_PAGE) instead of a reset.
pub const FLAG_STOP_PAGE: u32 = 1 << 3;
/// Inline (bump-in-the-wire) mode: frames that pass are redirected out of the internet port
/// (`PORTS[0]`) instead of continuing into the kernel stack. Replies still go back out of
/// the port the frame came in on (XDP_TX).
pub const FLAG_INLINE: u32 = 1 << 4;
/// Router mode, opt-in: allowed frames are forwarded by the program itself (FIB lookup, TTL
/// decrement, MAC rewrite, redirect) when the FIB's egress port is in `FORWARD_PORTS`; the rest
/// go into the kernel stack as usual. It skips the kernel's forwarding path, and with it
/// netfilter, tc and rp_filter for those frames (see forward.rs).
pub const FLAG_XDP_FORWARD: u32 = 1 << 5;
/// With `FLAG_XDP_FORWARD`: reuse the FIB's answers per CPU (route_cache.rs) while the
/// controller sees no routing change and for at most a second.
pub const FLAG_ROUTE_CACHE: u32 = 1 << 6;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub flags: u32,
    /// The list generation packets are judged against: 0 or 1 (see prefix.rs).
    pub slot: u32,
}
assert_size!(Config, 8);

impl Config {
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}
