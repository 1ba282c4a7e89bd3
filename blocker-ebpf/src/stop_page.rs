//! Answering a blocked HTTP request with the stop-page response, from XDP.
//!
//! Two situations (ARCHITECTURE.md, "HTTP"):
//! - a request whose Host is listed, on a connection the server already accepted: the request
//!   segment becomes the response (451, `Link: rel="blocked-by"`, a page that sends the browser
//!   to the stop-page service), with FIN; the request never reaches the server;
//! - a connection to a listed address on port 80: the server must never see the SYN, so the
//!   program answers the handshake itself, statelessly: the SYN-ACK's sequence number is a keyed
//!   hash of the connection (a SYN cookie), and only a request that acknowledges it gets the
//!   response — a forged request cannot make the appliance send a page to a third party.

use aya_ebpf::{helpers::generated::bpf_xdp_store_bytes, programs::XdpContext};
use blocker_common::{
    name::{HashKey, LabelBytes, keyed_hash},
    stop_page::{PREFIX_MAX, SUFFIX_MAX},
    verdict::Action,
};

use crate::{
    cursor::read,
    looping::{BREAK, CONTINUE, repeat},
    maps::{CONFIG, HASH_KEYS, HOST_SUM, NAME_SCRATCH, STOP_PAGE},
    parse::{L4, Packet, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN},
    reply::{self, reply, seq_len, tcp_packet},
};

/// The connection's addresses (source then destination) as the SipHash message, read straight
/// from the frame: no copy on the stack.
struct Addresses<'a> {
    ctx: &'a XdpContext,
    off: usize,
}

impl LabelBytes for Addresses<'_> {
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        read::<u64>(self.ctx, self.off + (i & 3) * 8).unwrap_or(0)
    }
}

/// The SYN cookie of this connection: a keyed hash of its addresses and ports.
#[inline(always)]
fn cookie(ctx: &XdpContext, key: &HashKey, pkt: &Packet, l4: &L4) -> u32 {
    let (off, len) = if pkt.v6 != 0 { (pkt.l3() + 8, 32) } else { (pkt.l3() + 12, 8) };
    let ports = (l4.sport as u64) << 16 | l4.dport as u64 | (pkt.v6 as u64) << 32;
    keyed_hash(key, ports, &Addresses { ctx, off }, len) as u32
}

/// The running sum of the host bytes. In map memory: the verifier then checks the loop's
/// callback once.
#[repr(C)]
pub struct HostSum {
    sum: u64,
    len: u32,
    reserved: u32,
}

struct SumCtx {
    bytes: *const u8,
    h: *mut HostSum,
}

extern "C" fn sum_step(i: u64, c: *mut SumCtx) -> i64 {
    // SAFETY: bpf_loop hands back host_sum()'s context; both pointers are map memory that
    // outlives the loop, and `bytes` has 256 + 8 readable bytes past any masked offset < 256.
    let c = unsafe { &mut *c };
    let h = unsafe { &mut *c.h };
    let at = ((i as usize) * 8) & 0xff;
    if at as u32 >= h.len {
        return BREAK;
    }
    let w = unsafe { (c.bytes.add(at) as *const u64).read_unaligned() };
    let keep = h.len - at as u32;
    let w = if keep >= 8 { w } else { w & ((1u64 << (8 * keep)) - 1) };
    h.sum += (w & 0xffff) + ((w >> 16) & 0xffff) + ((w >> 32) & 0xffff) + (w >> 48);
    CONTINUE
}

/// Sum of the host bytes as big-endian 16-bit words from an even offset.
#[inline(always)]
fn host_sum(bytes: *const u8, len: usize) -> u64 {
    let Some(p) = HOST_SUM.get_ptr_mut(0) else { return 0 };
    // SAFETY: per-CPU scratch used by this program run only.
    let h = unsafe { &mut *p };
    h.sum = 0;
    h.len = len as u32;
    let mut c = SumCtx { bytes, h: p };
    repeat(32, sum_step, &mut c);
    // Sums of little-endian words are the byte-swapped sum of big-endian ones (RFC 1071).
    (fold_sum(h.sum) as u16).swap_bytes() as u64
}

#[inline(always)]
fn fold_sum(mut s: u64) -> u64 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    (s & 0xffff) + (s >> 16)
}

/// Answers the segment; returns the action actually taken: the response or SYN-ACK
/// (StopPage), a reset for a FIN, or a drop for anything else (bare ACKs, forged requests).
/// `named` is true when the request's Host was judged (the name is in NAME_SCRATCH).
#[inline(never)]
pub fn answer(ctx: &XdpContext, named: bool) -> Action {
    let Some((pkt, l4)) = tcp_packet() else { return Action::Drop };
    let flags = l4.tcp_flags;
    if flags & TCP_RST != 0 {
        return Action::Drop;
    }
    let slot = CONFIG.get(0).map(|c| c.slot & 1).unwrap_or(0);
    let Some(key) = HASH_KEYS.get(slot) else { return Action::Drop };

    if !named {
        let c = cookie(ctx, key, pkt, &l4);
        if flags & TCP_SYN != 0 && flags & TCP_ACK == 0 {
            let ack = l4.seq.wrapping_add(1);
            // No timestamps: the synthetic connection never negotiates them.
            let ok = reply(ctx, c, ack, (TCP_SYN | TCP_ACK) as u16, 0, 0, None).is_some();
            return if ok { Action::StopPage } else { Action::Drop };
        }
        if l4.payload_len == 0 || l4.ack != c.wrapping_add(1) {
            if flags & TCP_FIN != 0 {
                                return if reply::rewrite_into_reset(ctx) { Action::TcpReset } else { Action::Drop };
            }
            return Action::Drop;
        }
    } else if l4.payload_len == 0 {
        return Action::Drop;
    }

    let Some(tpl) = STOP_PAGE.get(0) else { return Action::Drop };
    let plen = (tpl.prefix_len as usize) & (PREFIX_MAX - 1);
    let slen = (tpl.suffix_len as usize) & (SUFFIX_MAX - 1);
    if plen == 0 || slen == 0 || plen != tpl.prefix_len as usize || slen != tpl.suffix_len as usize {
        return Action::Drop;
    }
    let (hbytes, hlen): (*const u8, usize) = match (named, NAME_SCRATCH.get_ptr(0)) {
        (true, Some(s)) => {
            // SAFETY: per-CPU scratch filled by the name judgement of this very frame.
            let s = unsafe { &*s };
            (s.bytes.as_ptr(), (s.len as usize) & 0xff)
        }
        _ => (core::ptr::null(), 0),
    };
    let hsum = if hlen > 0 { host_sum(hbytes, hlen) } else { 0 };
    let ssum = if hlen % 2 == 1 { (tpl.suffix_sum as u16).swap_bytes() as u64 } else { tpl.suffix_sum as u64 };
    let payload_len = (plen + hlen + slen) as u32;
    let seq = l4.ack;
    let ack = l4.seq.wrapping_add(seq_len(&l4));
    let rflags = (TCP_PSH | TCP_ACK | TCP_FIN) as u16;
    // The request's timestamps are echoed (a named request's connection may have negotiated
    // them with the server); the request carried the option too, so the frame grows no more
    // for it.
    let ts = reply::echo_timestamps(ctx);
    let Some(off) = reply(ctx, seq, ack, rflags, payload_len, tpl.prefix_sum as u64 + hsum + ssum, ts) else {
        // The frame could not grow to hold the page (reply.rs left it as it was): the client
        // still learns at once that the request failed.
        return if reply::rewrite_into_reset(ctx) { Action::TcpReset } else { Action::Drop };
    };
    // SAFETY (all three): helper copies from map memory of at least the given length into the
    // frame, which write_reply sized to hold the whole payload; it checks bounds itself.
    let ok = unsafe { bpf_xdp_store_bytes(ctx.ctx, off as u32, tpl.prefix.as_ptr() as *mut _, plen as u32) } == 0
        && (hlen == 0
            || unsafe { bpf_xdp_store_bytes(ctx.ctx, (off + plen) as u32, hbytes as *mut _, hlen as u32) } == 0)
        && unsafe { bpf_xdp_store_bytes(ctx.ctx, (off + plen + hlen) as u32, tpl.suffix.as_ptr() as *mut _, slen as u32) } == 0;
    if ok { Action::StopPage } else { Action::Drop }
}
