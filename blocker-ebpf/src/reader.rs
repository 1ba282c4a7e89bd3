//! What the two stream readers (tls.rs: ClientHello to server name; http.rs: request head to
//! host) share: their outcome, the loop context, how a reader starts, and how one segment's bytes
//! are fed through a reader's per-step callback.

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};

use crate::{
    flow::{FlowState, KIND_PENDING},
    looping::{Callback, repeat},
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The segment ended before the name was complete.
    NeedMore,
    /// `state.name[..state.name_len]` holds the name.
    Name,
    /// The message names none (no server_name, no Host, an address literal).
    NoName,
    /// Not a message we can read to its name.
    Unparsed,
}

// Result codes the step callbacks leave in `FlowState::result`.
pub const NEED_MORE: u32 = 0;
pub const NAME: u32 = 1;
pub const NO_NAME: u32 = 2;
pub const UNPARSED: u32 = 3;

/// The bpf_loop context of a reader: pointers only, the loop's state lives in the FlowState
/// (map memory), so the verifier checks each callback once.
pub struct FeedCtx {
    pub xdp: *mut xdp_md,
    pub st: *mut FlowState,
}

/// Resets the fields every reader uses; the reader then sets its own first step.
#[inline(always)]
pub fn start(st: &mut FlowState, proto: u32, seq: u32) {
    st.kind = KIND_PENDING;
    st.proto = proto;
    st.next_seq = seq;
    set(&mut st.need, 0);
    set(&mut st.acc, 0);
    set(&mut st.skip, 0);
    set(&mut st.name_len, 0);
    set(&mut st.name_got, 0);
    set(&mut st.entry_id, 0);
    set(&mut st.ahead_drops, 0);
}

/// A store LLVM keeps as it is: runs of zero stores are otherwise merged into a call of a
/// byte-by-byte memset.
#[inline(always)]
pub fn set(field: &mut u32, v: u32) {
    // SAFETY: a valid, aligned u32.
    unsafe { core::ptr::write_volatile(field, v) }
}

/// Feeds `len` stream bytes at packet offset `off` through `step`, at most `loops` iterations.
#[inline(always)]
pub fn feed(ctx: &XdpContext, st: &mut FlowState, off: usize, len: u32, loops: u32, step: Callback<FeedCtx>) -> Outcome {
    st.cur_off = off as u32;
    st.cur_end = off as u32 + len;
    st.result = NEED_MORE;
    let mut c = FeedCtx { xdp: ctx.ctx, st: st as *mut FlowState };
    repeat(loops, step, &mut c);
    match st.result {
        NAME => Outcome::Name,
        NO_NAME => Outcome::NoName,
        UNPARSED => Outcome::Unparsed,
        _ => Outcome::NeedMore,
    }
}
