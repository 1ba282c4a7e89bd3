//! Rewriting a blocked TCP segment into a reset to its sender, in place, for XDP_TX.
//!
//! The new frame keeps the Ethernet header and VLAN tags (MACs swapped, so the reset leaves on
//! the same VLAN), then a fresh option-less IPv4/IPv6 header and a fresh 20-byte TCP header; the
//! tail is cut. Everything the new headers need is read before anything is written, and the new
//! headers are never longer than the old ones, so writing in place is safe. Fields are written
//! one by one and checksums summed from values: this function must stay small on the stack.
//!
//! Sequence numbers follow RFC 9293 §3.10.7.1 as Linux does: if the segment carried an ACK, the
//! reset uses that as its sequence number; otherwise it acknowledges the segment (SYN, FIN and
//! payload counted) with RST|ACK.

use aya_ebpf::{helpers::bpf_xdp_adjust_tail, programs::XdpContext};

use crate::{
    csum::fold,
    cursor::{read, write},
    maps::PACKET,
    parse::{IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
};

const TTL: u8 = 64;

#[inline(always)]
fn sum16(b: &[u8; 16]) -> u64 {
    let mut s = 0u64;
    let mut i = 0;
    while i < 16 {
        s += u16::from_be_bytes([b[i], b[i + 1]]) as u64;
        i += 2;
    }
    s
}

/// A separate BPF function, not inlined: its locals take stack only while it runs, instead of
/// adding to the frame of the main program that the loop callbacks sit on.
#[inline(never)]
#[target_feature(enable = "allows-misaligned-mem-access")]
pub fn rewrite_into_reset(ctx: &XdpContext) -> bool {
    let Some(p) = PACKET.get_ptr(0) else { return false };
    // SAFETY: per-CPU scratch the parser filled for this frame.
    let pkt = unsafe { &*p };
    let Some(l4) = pkt.tcp() else { return false };
    let l3 = pkt.l3();

    let (seq, ack, flags) = if l4.tcp_flags & TCP_ACK != 0 {
        (l4.ack, 0u32, TCP_RST)
    } else {
        let mut len = l4.payload_len;
        if l4.tcp_flags & TCP_SYN != 0 {
            len += 1;
        }
        if l4.tcp_flags & TCP_FIN != 0 {
            len += 1;
        }
        (0u32, l4.seq.wrapping_add(len), TCP_RST | TCP_ACK)
    };
    let (sport, dport) = (l4.dport, l4.sport);
    let off_flags = (5u16 << 12) | flags as u16;
    // TCP header words, checksum field zero.
    let tcp_sum = sport as u64
        + dport as u64
        + (seq >> 16) as u64
        + (seq & 0xffff) as u64
        + (ack >> 16) as u64
        + (ack & 0xffff) as u64
        + off_flags as u64;

    let Some(macs) = read::<[u8; 12]>(ctx, 0) else { return false };
    let tcp_off;
    if pkt.v6 != 0 {
        let (Some(src), Some(dst)) = (read::<[u8; 16]>(ctx, l3 + 8), read::<[u8; 16]>(ctx, l3 + 24)) else {
            return false;
        };
        let csum = fold(sum16(&src) + sum16(&dst) + IPPROTO_TCP as u64 + 20 + tcp_sum);
        let ok = write(ctx, l3, 0x6000_0000u32.to_be_bytes())
            && write(ctx, l3 + 4, 20u16.to_be_bytes())
            && write(ctx, l3 + 6, [IPPROTO_TCP, TTL])
            && write(ctx, l3 + 8, dst)
            && write(ctx, l3 + 24, src);
        if !ok {
            return false;
        }
        tcp_off = l3 + 40;
        if !write_tcp(ctx, tcp_off, sport, dport, seq, ack, off_flags, csum) {
            return false;
        }
    } else {
        let (Some(src), Some(dst)) = (read::<[u8; 4]>(ctx, l3 + 12), read::<[u8; 4]>(ctx, l3 + 16)) else {
            return false;
        };
        let addr_sum = u16::from_be_bytes([src[0], src[1]]) as u64
            + u16::from_be_bytes([src[2], src[3]]) as u64
            + u16::from_be_bytes([dst[0], dst[1]]) as u64
            + u16::from_be_bytes([dst[2], dst[3]]) as u64;
        // Version/IHL 0x45, total length 40, DF, TTL/protocol.
        let ip_csum = fold(0x4500 + 40 + 0x4000 + ((TTL as u64) << 8 | IPPROTO_TCP as u64) + addr_sum);
        let ok = write(ctx, l3, [0x45u8, 0])
            && write(ctx, l3 + 2, 40u16.to_be_bytes())
            && write(ctx, l3 + 4, [0u8, 0, 0x40, 0])
            && write(ctx, l3 + 8, [TTL, IPPROTO_TCP])
            && write(ctx, l3 + 10, ip_csum.to_be_bytes())
            && write(ctx, l3 + 12, dst)
            && write(ctx, l3 + 16, src);
        if !ok {
            return false;
        }
        let csum = fold(addr_sum + IPPROTO_TCP as u64 + 20 + tcp_sum);
        tcp_off = l3 + 20;
        if !write_tcp(ctx, tcp_off, sport, dport, seq, ack, off_flags, csum) {
            return false;
        }
    }

    let mut eth = [0u8; 12];
    eth[0..6].copy_from_slice(&macs[6..12]);
    eth[6..12].copy_from_slice(&macs[0..6]);
    if !write(ctx, 0, eth) {
        return false;
    }

    let new_len = tcp_off + 20;
    let old_len = ctx.data_end() - ctx.data();
    let delta = new_len as i64 - old_len as i64;
    if delta < 0 {
        // SAFETY: plain helper call; shrinking never fails for a frame longer than the headers.
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
            return false;
        }
    }
    true
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn write_tcp(ctx: &XdpContext, off: usize, sport: u16, dport: u16, seq: u32, ack: u32, off_flags: u16, csum: u16) -> bool {
    write(ctx, off, sport.to_be_bytes())
        && write(ctx, off + 2, dport.to_be_bytes())
        && write(ctx, off + 4, seq.to_be_bytes())
        && write(ctx, off + 8, ack.to_be_bytes())
        && write(ctx, off + 12, off_flags.to_be_bytes())
        // Window 0, checksum, urgent pointer 0.
        && write(ctx, off + 14, [0u8, 0])
        && write(ctx, off + 16, csum.to_be_bytes())
        && write(ctx, off + 18, [0u8, 0])
}
