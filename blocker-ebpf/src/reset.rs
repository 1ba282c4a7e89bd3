//! Rewriting a blocked TCP segment into a reset to its sender, in place, for XDP_TX.
//!
//! The new frame keeps the Ethernet header and VLAN tags (MACs swapped, so the reset leaves on
//! the same VLAN), then a fresh option-less IPv4/IPv6 header and a fresh 20-byte TCP header; the
//! tail is cut. Everything the new headers need is read before anything is written, and the new
//! headers are never longer than the old ones, so writing in place is safe.
//!
//! Sequence numbers follow RFC 9293 §3.10.7.1 as Linux does: if the segment carried an ACK, the
//! reset uses that as its sequence number; otherwise it acknowledges the segment (SYN, FIN and
//! payload counted) with RST|ACK.

use aya_ebpf::{helpers::bpf_xdp_adjust_tail, programs::XdpContext};

use crate::{
    csum::{fold, sum_words},
    cursor::{read, write},
    parse::{IPPROTO_TCP, Packet, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
};

const TTL: u8 = 64;

#[inline(always)]
pub fn rewrite_into_reset(ctx: &XdpContext, pkt: &Packet) -> bool {
    let Some(l4) = pkt.l4 else { return false };
    let l3 = pkt.l3_off;

    let Some(macs) = read::<[u8; 12]>(ctx, 0) else { return false };

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
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&l4.dport.to_be_bytes());
    tcp[2..4].copy_from_slice(&l4.sport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;

    let new_len;
    if pkt.v6 {
        let Some(addrs) = read::<[u8; 32]>(ctx, l3 + 8) else { return false };
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&20u16.to_be_bytes());
        ip[6] = IPPROTO_TCP;
        ip[7] = TTL;
        ip[8..24].copy_from_slice(&addrs[16..32]);
        ip[24..40].copy_from_slice(&addrs[0..16]);
        let mut addr_sum = [0u8; 32];
        addr_sum.copy_from_slice(&ip[8..40]);
        let sum = sum_words(&addr_sum) + IPPROTO_TCP as u64 + 20 + sum_words(&tcp);
        tcp[16..18].copy_from_slice(&fold(sum).to_be_bytes());
        if !write(ctx, l3, ip) || !write(ctx, l3 + 40, tcp) {
            return false;
        }
        new_len = l3 + 60;
    } else {
        let Some(addrs) = read::<[u8; 8]>(ctx, l3 + 12) else { return false };
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = TTL;
        ip[9] = IPPROTO_TCP;
        ip[12..16].copy_from_slice(&addrs[4..8]);
        ip[16..20].copy_from_slice(&addrs[0..4]);
        let ip_sum = fold(sum_words(&ip));
        ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
        let mut pseudo = [0u8; 8];
        pseudo.copy_from_slice(&ip[12..20]);
        let sum = sum_words(&pseudo) + IPPROTO_TCP as u64 + 20 + sum_words(&tcp);
        tcp[16..18].copy_from_slice(&fold(sum).to_be_bytes());
        if !write(ctx, l3, ip) || !write(ctx, l3 + 20, tcp) {
            return false;
        }
        new_len = l3 + 40;
    }

    let mut eth = [0u8; 12];
    eth[0..6].copy_from_slice(&macs[6..12]);
    eth[6..12].copy_from_slice(&macs[0..6]);
    if !write(ctx, 0, eth) {
        return false;
    }

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
