//! Acting on a verdict: the one place that spells XDP return codes, and the one place that
//! counts. A reset that cannot be built falls back to a drop and is counted as one.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use blocker_common::{
    counters::{ACTION_SLOTS, CELLS, cell_index},
    verdict::Action,
};

use crate::{cursor::frame_len, decide::Verdict, maps::COUNTERS, reset};

#[inline(always)]
pub fn apply(ctx: &XdpContext, v: Verdict) -> u32 {
    let bytes = frame_len(ctx);
    let mut action = v.action;
    if action == Action::TcpReset {
        let built = match v.packet {
            Some(pkt) => reset::rewrite_into_reset(ctx, &pkt),
            None => false,
        };
        if !built {
            action = Action::Drop;
        }
    }
    count(v.reason as u8, action as u8, bytes);
    match action {
        Action::Pass => xdp_action::XDP_PASS,
        Action::Drop => xdp_action::XDP_DROP,
        Action::TcpReset => xdp_action::XDP_TX,
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
