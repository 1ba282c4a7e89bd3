//! Rewriting a segment into a TCP reply to its sender, in place, for XDP_TX: a reset, a SYN-ACK,
//! or (stop_page.rs) a response carrying data.
//!
//! The new frame keeps the Ethernet header and VLAN tags (MACs swapped, so the reply leaves on
//! the same VLAN), then a fresh option-less IPv4/IPv6 header and a fresh TCP header (20 bytes,
//! or 32 with the timestamps option a reply in place of the server echoes, see [`Timestamps`]),
//! then the payload if any; the tail is cut or grown to fit. Everything the new headers need is
//! read before anything is written. Fields are written one by one and checksums summed from
//! values: these functions must stay small on the stack.
//!
//! Reset sequence numbers follow RFC 9293 §3.10.7.1 as Linux does: if the segment carried an
//! ACK, the reset uses that as its sequence number; otherwise it acknowledges the segment (SYN,
//! FIN and payload counted) with RST|ACK.

use aya_ebpf::{
    helpers::generated::{bpf_xdp_load_bytes, bpf_xdp_store_bytes},
    programs::XdpContext,
};

use crate::{
    csum::fold,
    cursor::{MAX_OFF, read, read_u8, write},
    looping::{BREAK, CONTINUE, repeat},
    maps::{PACKET, REPLY_SCRATCH},
    parse::{IPPROTO_TCP, L4, MAX_V6_EXT, Packet, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
};

const TTL: u8 = 64;
const WINDOW: u16 = 65535;

/// What a reply is built from: the frame's MACs and addresses, copied out with one helper call
/// each instead of byte-wise loads whose temporaries would crowd the 512-byte stack.
#[repr(C)]
pub struct ReplyScratch {
    macs: [u8; 12],
    flags: u32,
    /// Source then destination address (IPv4: the first 8 bytes).
    addrs: [u8; 32],
    seq: u32,
    ack: u32,
    payload_len: u32,
    /// 1: the reply carries the timestamps option with `ts_val`/`ts_ecr`.
    with_ts: u32,
    payload_sum: u64,
    ts_val: u32,
    ts_ecr: u32,
}

/// The TCP timestamps option (RFC 7323) a data segment sent in place of the server carries
/// when the client's segment carried one: once a connection has negotiated timestamps, a stack
/// may drop segments without them (§3.2). TSval is the client's TSecr, the newest TSval it
/// holds from the server, so the segment passes its PAWS check (§5.3); TSecr echoes the
/// client's TSval.
#[derive(Clone, Copy)]
pub struct Timestamps {
    pub val: u32,
    pub ecr: u32,
}

/// NOP, NOP, kind 8, length 10: the layout RFC 7323 Appendix A recommends, which every common
/// stack sends on data segments.
const TS_LEAD: u32 = 0x0101_080a;
const TS_OPTION_LEN: u32 = 12;

/// The timestamps a reply in place of the server carries, if the segment the parser described
/// carries the option: its TSecr and TSval, crossed. The usual layout is read in one go; any
/// other is walked (at most 40 option bytes).
#[inline(always)]
pub fn echo_timestamps(ctx: &XdpContext) -> Option<Timestamps> {
    let (_, l4) = tcp_packet()?;
    let (start, end) = (l4.off as usize + 20, (l4.off + l4.hdr_len) as usize);
    if start + TS_OPTION_LEN as usize <= end && read_be32(ctx, start) == Some(TS_LEAD) {
        return Some(Timestamps { val: read_be32(ctx, start + 8)?, ecr: read_be32(ctx, start + 4)? });
    }
    let mut c = OptionsCtx { xdp: ctx.ctx, at: start as u32, end: end as u32, found: 0, val: 0, ecr: 0 };
    repeat(40, options_step, &mut c);
    (c.found != 0).then_some(Timestamps { val: c.ecr, ecr: c.val })
}

struct OptionsCtx {
    xdp: *mut aya_ebpf::bindings::xdp_md,
    at: u32,
    end: u32,
    found: u32,
    val: u32,
    ecr: u32,
}

extern "C" fn options_step(_: u64, c: *mut OptionsCtx) -> i64 {
    // SAFETY: bpf_loop hands back the context timestamps() passed, on its stack for the loop.
    let c = unsafe { &mut *c };
    let ctx = XdpContext::new(c.xdp);
    let at = c.at as usize & MAX_OFF;
    if c.at >= c.end {
        return BREAK;
    }
    let Some(kind) = read_u8(&ctx, at) else { return BREAK };
    match kind {
        0 => BREAK,
        1 => {
            c.at += 1;
            CONTINUE
        }
        _ => {
            let Some(len) = read_u8(&ctx, at + 1) else { return BREAK };
            if len < 2 || c.at + len as u32 > c.end {
                return BREAK;
            }
            if kind == 8 && len == 10 {
                if let (Some(val), Some(ecr)) = (read_be32(&ctx, at + 2), read_be32(&ctx, at + 6)) {
                    (c.found, c.val, c.ecr) = (1, val, ecr);
                }
                return BREAK;
            }
            c.at += len as u32;
            CONTINUE
        }
    }
}

#[inline(always)]
fn read_be32(ctx: &XdpContext, off: usize) -> Option<u32> {
    read::<[u8; 4]>(ctx, off).map(u32::from_be_bytes)
}

/// Sum of `n` bytes as big-endian 16-bit words.
#[inline(always)]
fn sum_bytes(b: &[u8; 32], n: usize) -> u64 {
    let mut s = 0u64;
    let mut i = 0;
    while i < 32 {
        if i < n {
            s += u16::from_be_bytes([b[i], b[i + 1]]) as u64;
        }
        i += 2;
    }
    s
}

#[inline(always)]
fn load(ctx: &XdpContext, off: usize, dst: *mut u8, len: u32) -> bool {
    // SAFETY: the helper checks the frame's bounds; dst is map memory of at least len bytes.
    unsafe { bpf_xdp_load_bytes(ctx.ctx, (off & crate::cursor::MAX_OFF) as u32, dst.cast(), len) == 0 }
}

#[inline(always)]
fn store(ctx: &XdpContext, off: usize, src: *const u8, len: u32) -> bool {
    // SAFETY: the helper checks the frame's bounds; src is map memory of at least len bytes.
    unsafe { bpf_xdp_store_bytes(ctx.ctx, (off & crate::cursor::MAX_OFF) as u32, src as *mut _, len) == 0 }
}

#[inline(always)]
fn wr32(ctx: &XdpContext, off: usize, v: u32) -> bool {
    write(ctx, off, v.to_be_bytes())
}

#[inline(always)]
fn wr16(ctx: &XdpContext, off: usize, v: u16) -> bool {
    write(ctx, off, v.to_be_bytes())
}

/// The parsed description of the frame being answered, when it is TCP.
#[inline(always)]
pub fn tcp_packet() -> Option<(&'static Packet, L4)> {
    let p = PACKET.get_ptr(0)?;
    // SAFETY: per-CPU scratch the parser filled for this frame.
    let pkt = unsafe { &*p };
    let l4 = *pkt.tcp()?;
    Some((pkt, l4))
}

/// How many sequence numbers a segment occupies (payload, SYN and FIN each count one).
#[inline(always)]
pub fn seq_len(l4: &L4) -> u32 {
    let mut len = l4.payload_len;
    if l4.tcp_flags & TCP_SYN != 0 {
        len += 1;
    }
    if l4.tcp_flags & TCP_FIN != 0 {
        len += 1;
    }
    len
}

/// Turns the frame into a TCP segment back to its sender with the given numbers and flags and
/// `payload_len` bytes of payload, written by the caller afterwards at the returned offset.
/// `payload_sum` is the payload's unfolded one's-complement sum.
#[inline(always)]
pub fn reply(ctx: &XdpContext, seq: u32, ack: u32, flags: u16, payload_len: u32, payload_sum: u64, ts: Option<Timestamps>) -> Option<usize> {
    let sp = REPLY_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch used by this program run only.
    let sc = unsafe { &mut *sp };
    sc.seq = seq;
    sc.ack = ack;
    sc.flags = flags as u32;
    sc.payload_len = payload_len;
    sc.payload_sum = payload_sum;
    (sc.with_ts, sc.ts_val, sc.ts_ecr) = match ts {
        Some(t) => (1, t.val, t.ecr),
        None => (0, 0, 0),
    };
    match write_reply(ctx) {
        0 => None,
        off => Some(off as usize),
    }
}

/// The work of `reply`, as a BPF function of its own shared by every reply (BPF functions take
/// at most five arguments: the parameters travel in the scratch). Returns the payload offset,
/// or 0 on failure.
#[inline(never)]
fn write_reply(ctx: &XdpContext) -> u32 {
    let Some((pkt, l4)) = tcp_packet() else { return 0 };
    let Some(sp) = REPLY_SCRATCH.get_ptr_mut(0) else { return 0 };
    // SAFETY: per-CPU scratch used by this program run only.
    let sc = unsafe { &mut *sp };
    let (seq, ack, flags, payload_len, payload_sum) = (sc.seq, sc.ack, sc.flags as u16, sc.payload_len, sc.payload_sum);
    let (with_ts, ts_val, ts_ecr) = (sc.with_ts != 0, sc.ts_val, sc.ts_ecr);
    let l3 = pkt.l3();
    let (sport, dport) = (l4.dport, l4.sport);
    let opt_len = if with_ts { TS_OPTION_LEN } else { 0 };
    let off_flags = (((20 + opt_len) as u16 / 4) << 12) | flags;
    let tcp_len = 20 + opt_len + payload_len;
    let opt_sum = if with_ts {
        (TS_LEAD >> 16) as u64 + (TS_LEAD & 0xffff) as u64 + (ts_val >> 16) as u64 + (ts_val & 0xffff) as u64 + (ts_ecr >> 16) as u64 + (ts_ecr & 0xffff) as u64
    } else {
        0
    };
    // TCP header words (checksum field zero), options, then the payload.
    let tcp_sum = opt_sum
        + sport as u64
        + dport as u64
        + (seq >> 16) as u64
        + (seq & 0xffff) as u64
        + (ack >> 16) as u64
        + (ack & 0xffff) as u64
        + off_flags as u64
        + WINDOW as u64
        + payload_sum;

    let v6 = pkt.v6 != 0;
    let alen: u32 = if v6 { 32 } else { 8 };
    let aoff = if v6 { l3 + 8 } else { l3 + 12 };
    if !load(ctx, 0, sc.macs.as_mut_ptr(), 12) || !load(ctx, aoff, sc.addrs.as_mut_ptr(), alen) {
        return 0;
    }
    if v6 && pkt.n_finals != 0 {
        // Source-routed (a routing header with segments left): the client's connection is with
        // the final destination, the address in its pseudo-header checksum (RFC 8200 §8.1), not
        // with the waypoint in the destination field. A reply from the waypoint would match no
        // socket and be dropped. With several routing headers (RFC 8200 asks for one), the last
        // one's final destination is where the packet ends.
        let last = &pkt.finals[((pkt.n_finals - 1) as usize) & (MAX_V6_EXT - 1)];
        let mut i = 0;
        while i < 16 {
            // SAFETY: i < 16: inside `last` and inside the second half of `addrs`. Volatile, so
            // the copy stays sixteen byte moves and does not become a memcpy call.
            unsafe { core::ptr::write_volatile(sc.addrs.as_mut_ptr().add(16 + i), core::ptr::read_volatile(last.as_ptr().add(i))) };
            i += 1;
        }
    }
    let addr_sum = sum_bytes(&sc.addrs, alen as usize);
    let tcp_off = if v6 { l3 + 40 } else { l3 + 20 };
    let csum = fold(addr_sum + IPPROTO_TCP as u64 + tcp_len as u64 + tcp_sum);

    // Size the frame first: growing it moves data_end, and every write below re-checks bounds.
    let new_len = tcp_off + tcp_len as usize;
    let old_len = ctx.data_end() - ctx.data();
    let delta = new_len as i64 - old_len as i64;
    if !crate::resize::resize(ctx, l3, delta) {
        return 0;
    }

    let half = alen / 2;
    let src = sc.addrs.as_ptr();
    // SAFETY: half < 32: the second address lies inside `addrs`.
    let dst = unsafe { src.add(half as usize) };
    let ok = if v6 {
        wr32(ctx, l3, 0x6000_0000)
            && wr16(ctx, l3 + 4, tcp_len as u16)
            && write(ctx, l3 + 6, [IPPROTO_TCP, TTL])
            && store(ctx, l3 + 8, dst, 16)
            && store(ctx, l3 + 24, src, 16)
    } else {
        let total = 20 + tcp_len;
        // Version/IHL 0x45, total length, DF, TTL/protocol.
        let ip_csum = fold(0x4500 + total as u64 + 0x4000 + ((TTL as u64) << 8 | IPPROTO_TCP as u64) + addr_sum);
        wr16(ctx, l3, 0x4500)
            && wr16(ctx, l3 + 2, total as u16)
            && wr32(ctx, l3 + 4, 0x0000_4000)
            && write(ctx, l3 + 8, [TTL, IPPROTO_TCP])
            && wr16(ctx, l3 + 10, ip_csum)
            && store(ctx, l3 + 12, dst, 4)
            && store(ctx, l3 + 16, src, 4)
    };
    let macs = sc.macs.as_ptr();
    let ok = ok
        && wr16(ctx, tcp_off, sport)
        && wr16(ctx, tcp_off + 2, dport)
        && wr32(ctx, tcp_off + 4, seq)
        && wr32(ctx, tcp_off + 8, ack)
        && wr16(ctx, tcp_off + 12, off_flags)
        && wr16(ctx, tcp_off + 14, WINDOW)
        && wr16(ctx, tcp_off + 16, csum)
        && wr16(ctx, tcp_off + 18, 0)
        && (!with_ts || (wr32(ctx, tcp_off + 20, TS_LEAD) && wr32(ctx, tcp_off + 24, ts_val) && wr32(ctx, tcp_off + 28, ts_ecr)))
        // MACs swapped: the old source (bytes 6..12) becomes the destination.
        // SAFETY: both halves lie inside `macs`.
        && store(ctx, 0, unsafe { macs.add(6) }, 6)
        && store(ctx, 6, macs, 6);
    if !ok {
        return 0;
    }
    (tcp_off + 20 + opt_len as usize) as u32
}

/// A separate BPF function, not inlined: its locals take stack only while it runs, instead of
/// adding to the frame of the main program that the loop callbacks sit on.
#[inline(never)]
pub fn rewrite_into_reset(ctx: &XdpContext) -> bool {
    let Some((_, l4)) = tcp_packet() else { return false };
    let (seq, ack, flags) = if l4.tcp_flags & TCP_ACK != 0 {
        (l4.ack, 0u32, TCP_RST)
    } else {
        (0u32, l4.seq.wrapping_add(seq_len(&l4)), TCP_RST | TCP_ACK)
    };
    reply(ctx, seq, ack, flags as u16, 0, 0, None).is_some()
}
