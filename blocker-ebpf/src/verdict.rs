//! Acting on a verdict: the one place that spells XDP return codes, and the one place that
//! counts. A reset that cannot be built falls back to a drop and is counted as one.
//!
//! Where a passing frame goes depends on the run mode: in router mode it continues into the
//! kernel stack (XDP_PASS); in inline mode (`FLAG_INLINE`) it is redirected out of the other
//! port through `PORTS`. A redirect whose port entry is missing falls back to XDP_PASS, so a
//! half-configured inline appliance still fails open into its own stack. In router mode with
//! `FLAG_XDP_FORWARD`, the program forwards what it can itself (forward.rs) and passes the rest.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use blocker_common::{
    config::{Config, FLAG_INLINE, FLAG_XDP_FORWARD},
    counters::{ACTION_SLOTS, CELLS, cell_index},
    verdict::{Action, Reason},
};

use crate::{
    cursor::frame_len,
    decide::Verdict,
    maps::{COUNTERS, ENTRY_HITS, PORTS},
    reply, stop_page,
};

/// `PORTS` entry of the internet port: where the subscriber port's passing frames go.
const TO_INTERNET: u32 = 0;
/// `PORTS` entry of the subscriber port: where the internet port's frames go.
const TO_SUBSCRIBER: u32 = 1;

#[inline(always)]
pub fn apply(ctx: &XdpContext, v: Verdict, cfg: Option<Config>) -> u32 {
    let (flags, slot) = match cfg {
        Some(c) => (c.flags, c.slot & 1),
        None => (0, 0),
    };
    let bytes = frame_len(ctx);
    let mut action = v.action;
    if action == Action::TcpReset && !reply::rewrite_into_reset(ctx) {
        action = Action::Drop;
    }
    if action == Action::StopPage {
        action = stop_page::answer(ctx, v.reason == Reason::HttpHost);
    }
    // A listed name's query we cannot answer is dropped: the name stays blocked.
    if action == Action::DnsAnswer && !crate::dns::rewrite_into_answer(ctx) {
        action = Action::Drop;
    }
    count(v.reason as u8, action as u8, bytes);
    // Blocked packets count against their entry, and so do the packets a shadow entry would
    // have blocked.
    if v.entry != 0 && action != Action::Pass {
        count_entry(v.entry, slot);
    }
    match action {
        Action::Pass | Action::Shadow => {
            if flags & FLAG_INLINE != 0 {
                forward(TO_INTERNET)
            } else if flags & FLAG_XDP_FORWARD != 0 && v.reason != Reason::Bypass {
                // The bypass switch hands everything to the kernel, as if the program were not there.
                crate::forward::route(ctx.ctx, flags)
            } else {
                xdp_action::XDP_PASS
            }
        }
        Action::Drop => xdp_action::XDP_DROP,
        Action::TcpReset | Action::DnsAnswer | Action::StopPage => xdp_action::XDP_TX,
    }
}

/// Inline mode, the internet port: every frame goes to the subscriber port unjudged, counted
/// as `from_internet`/`pass`.
#[inline(always)]
pub fn from_internet(ctx: &XdpContext) -> u32 {
    count(Reason::FromInternet as u8, Action::Pass as u8, frame_len(ctx));
    forward(TO_SUBSCRIBER)
}

/// Redirects the frame out of the port in `PORTS[port]`; XDP_PASS when that entry is missing.
#[inline(always)]
fn forward(port: u32) -> u32 {
    match PORTS.redirect(port, xdp_action::XDP_PASS as u64) {
        Ok(code) | Err(code) => code,
    }
}

#[inline(always)]
fn count(reason: u8, action: u8, bytes: u64) {
    let i = cell_index(reason, action);
    if i >= CELLS || (action as usize) >= ACTION_SLOTS {
        return;
    }
    if let Some(table) = COUNTERS.get_ptr_mut(0) {
        // SAFETY: per-CPU value, only this CPU writes it while this program runs; i < CELLS.
        unsafe {
            let cell = &mut (*table).cells[i];
            cell.packets += 1;
            cell.bytes += bytes;
        }
    }
}

/// Bumps the blocked (or, for a shadow entry, would-be-blocked) packet count of a list entry (keyed with the live slot, as entry ids are
/// per generation).
#[inline(always)]
fn count_entry(entry: u32, slot: u32) {
    let key = (slot << 31) | (entry & 0x7fff_ffff);
    if let Some(p) = ENTRY_HITS.get_ptr_mut(&key) {
        // SAFETY: a valid, aligned map value.
        unsafe { crate::atomic::add_u64(p, 1) };
    } else {
        // A lost race with another CPU inserting the same key only loses that one count.
        let _ = ENTRY_HITS.insert(&key, &1, 0);
    }
}
