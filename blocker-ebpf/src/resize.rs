//! Growing or shrinking a frame that is being turned into a reply.
//!
//! Shrinking always works. Growing at the tail needs room after the frame, which drivers and
//! veth do not always leave (an skb converted for XDP may end close to its buffer): then the
//! frame grows at the head instead, where XDP guarantees 256 bytes. Replies rebuild everything
//! after the link-layer header from saved values, so only that header (MACs, VLAN tags,
//! ethertype) has to move to the new start.

use aya_ebpf::{
    helpers::{
        bpf_xdp_adjust_head, bpf_xdp_adjust_tail,
        generated::{bpf_xdp_load_bytes, bpf_xdp_store_bytes},
    },
    programs::XdpContext,
};

use crate::maps::L2_SCRATCH;

/// Longest link-layer header: Ethernet with two VLAN tags (22 bytes), rounded up.
pub const L2_MAX: usize = 32;

/// Changes the frame's length by `delta`, keeping the first `l2_len` bytes (the link-layer
/// header) at the start. Returns false when the frame cannot be resized.
#[inline(always)]
pub fn resize(ctx: &XdpContext, l2_len: usize, delta: i64) -> bool {
    if delta == 0 {
        return true;
    }
    // SAFETY (all helper calls): plain helpers; each leaves the frame unchanged when it fails,
    // and every packet access afterwards derives its pointer from ctx afresh.
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } == 0 {
        return true;
    }
    if delta < 0 || delta > 256 || l2_len == 0 || l2_len >= L2_MAX {
        return false;
    }
    let Some(p) = L2_SCRATCH.get_ptr_mut(0) else { return false };
    let len = (l2_len as u32) & (L2_MAX as u32 - 1);
    if len == 0 {
        return false;
    }
    unsafe {
        if bpf_xdp_load_bytes(ctx.ctx, 0, p.cast(), len) != 0 {
            return false;
        }
        if bpf_xdp_adjust_head(ctx.ctx, -(delta as i32)) != 0 {
            return false;
        }
        bpf_xdp_store_bytes(ctx.ctx, 0, p.cast(), len) == 0
    }
}
