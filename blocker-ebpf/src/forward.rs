//! Router mode's opt-in XDP forwarding (`FLAG_XDP_FORWARD`): an allowed frame is routed by the
//! program itself, with the kernel's own FIB and neighbour table (`bpf_fib_lookup`), and
//! redirected out of the egress port, so it never pays for an skb and the kernel's forwarding
//! path. That path is also what it skips: netfilter, tc and rp_filter do not see these frames,
//! which is why it is a switch and not the default.
//!
//! Only the plain case is taken: a unicast IPv4 (no options) or IPv6 (no hop-by-hop header)
//! frame sent to the port's own MAC, whose route the FIB resolves to a neighbour it knows, out
//! of a port the controller allowed (`FORWARD_PORTS`, checked to take redirected frames).
//! Everything else goes on into the kernel untouched, so the kernel does what it always does:
//! resolves neighbours, fragments or answers "fragmentation needed", answers "time exceeded",
//! delivers locally. The frame is rewritten (TTL, MACs) only after every check has passed.

use core::mem::{size_of, zeroed};

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup as FibParams, xdp_action},
    helpers::generated::bpf_fib_lookup,
    programs::XdpContext,
};
use blocker_common::forward::{FORWARDED, FRAG_NEEDED, NO_NEIGHBOUR, NOT_FORWARDED, PORT_NOT_ALLOWED, TTL_EXPIRED};

use crate::{
    cursor::{ptr_at_mut, read, read_pair},
    maps::{FORWARD_COUNTS, FORWARD_PORTS, PORT_MAC},
};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const L3: usize = 14;
/// Where the frame's TTL (IPv4) or hop limit (IPv6) is, and its IPv4 header checksum.
const V4_TTL: usize = L3 + 8;
const V4_CHECK: usize = L3 + 10;
const V6_HOP: usize = L3 + 7;

/// An allowed frame in router mode with the switch on: returns XDP_REDIRECT when the program
/// forwarded it, XDP_PASS when the kernel is to. Counted by outcome.
///
/// A separate BPF function: the lookup's 64-byte parameter block takes stack only while it
/// runs.
#[inline(never)]
pub fn route(ctx: &XdpContext) -> u32 {
    let (outcome, action) = match try_route(ctx) {
        Ok(action) => (FORWARDED, action),
        Err(outcome) => (outcome, xdp_action::XDP_PASS),
    };
    count(outcome);
    action
}

#[inline(always)]
fn try_route(ctx: &XdpContext) -> Result<u32, usize> {
    // Frames to another MAC reach the program only when the port listens to them (promiscuous
    // for a capture, a bridge): the kernel drops those, and so must forwarding.
    let own = PORT_MAC.get(0).ok_or(NOT_FORWARDED)?;
    let to: [u8; 6] = read(ctx, 0).ok_or(NOT_FORWARDED)?;
    if own.set == 0 || to != own.mac {
        return Err(NOT_FORWARDED);
    }
    let (t0, t1) = read_pair(ctx, 12).ok_or(NOT_FORWARDED)?;
    // SAFETY: plain data; the all-zero value is a valid parameter block.
    let mut p: FibParams = unsafe { zeroed() };
    let v6 = match u16::from_be_bytes([t0, t1]) {
        ETH_P_IP => {
            ipv4_params(ctx, &mut p)?;
            false
        }
        ETH_P_IPV6 => {
            ipv6_params(ctx, &mut p)?;
            true
        }
        // VLAN tags included: the route belongs to the VLAN's interface, not this port.
        _ => return Err(NOT_FORWARDED),
    };
    p.ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: the helper reads and writes `size_of::<FibParams>()` bytes of `p`, a local.
    let rc = unsafe { bpf_fib_lookup(ctx.ctx.cast(), &mut p, size_of::<FibParams>() as i32, 0) };
    match rc as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => {}
        BPF_FIB_LKUP_RET_NO_NEIGH => return Err(NO_NEIGHBOUR),
        BPF_FIB_LKUP_RET_FRAG_NEEDED => return Err(FRAG_NEEDED),
        _ => return Err(NOT_FORWARDED),
    }
    if FORWARD_PORTS.get(p.ifindex).is_none() {
        return Err(PORT_NOT_ALLOWED);
    }
    // From here on the frame is the forwarded one. (Should the controller take the port out of
    // FORWARD_PORTS between the check and the redirect, the kernel gets a frame addressed to
    // the next hop and drops it: one frame, once.)
    if v6 { decrement_hop_limit(ctx)? } else { decrement_ttl(ctx)? }
    let eth = ptr_at_mut::<[u8; 12]>(ctx, 0).ok_or(NOT_FORWARDED)?;
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&p.dmac);
    macs[6..].copy_from_slice(&p.smac);
    // SAFETY: ptr_at_mut checked that 12 bytes at offset 0 lie inside the frame.
    unsafe { eth.write_unaligned(macs) };
    Ok(match FORWARD_PORTS.redirect(p.ifindex, xdp_action::XDP_PASS as u64) {
        Ok(code) | Err(code) => code,
    })
}

#[inline(always)]
fn ipv4_params(ctx: &XdpContext, p: &mut FibParams) -> Result<(), usize> {
    let (ver_ihl, tos) = read_pair(ctx, L3).ok_or(NOT_FORWARDED)?;
    // Options (record route, source routing, router alert) are the kernel's to act on.
    if ver_ihl != 0x45 {
        return Err(NOT_FORWARDED);
    }
    let tot_len: [u8; 2] = read(ctx, L3 + 2).ok_or(NOT_FORWARDED)?;
    let (ttl, proto) = read_pair(ctx, V4_TTL).ok_or(NOT_FORWARDED)?;
    let src: [u8; 4] = read(ctx, L3 + 12).ok_or(NOT_FORWARDED)?;
    let dst: [u8; 4] = read(ctx, L3 + 16).ok_or(NOT_FORWARDED)?;
    // Multicast, broadcast and the martians (0/8, 127/8) the kernel checks in its own route
    // input, which the FIB lookup does not.
    if martian_v4(src[0]) || martian_v4(dst[0]) {
        return Err(NOT_FORWARDED);
    }
    if ttl <= 1 {
        return Err(TTL_EXPIRED);
    }
    p.family = AF_INET;
    p.l4_protocol = proto;
    p.__bindgen_anon_1.tot_len = u16::from_be_bytes(tot_len);
    p.__bindgen_anon_2.tos = tos;
    // Addresses stay in network order, as the helper takes them.
    p.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(src);
    p.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(dst);
    Ok(())
}

#[inline(always)]
fn martian_v4(first: u8) -> bool {
    first == 0 || first == 127 || first >= 224
}

#[inline(always)]
fn ipv6_params(ctx: &XdpContext, p: &mut FibParams) -> Result<(), usize> {
    let head: [u8; 4] = read(ctx, L3).ok_or(NOT_FORWARDED)?;
    let payload: [u8; 2] = read(ctx, L3 + 4).ok_or(NOT_FORWARDED)?;
    let (next, hop) = read_pair(ctx, V6_HOP - 1).ok_or(NOT_FORWARDED)?;
    let src: [u8; 16] = read(ctx, L3 + 8).ok_or(NOT_FORWARDED)?;
    let dst: [u8; 16] = read(ctx, L3 + 24).ok_or(NOT_FORWARDED)?;
    let payload = u16::from_be_bytes(payload);
    // Hop-by-hop options are for every router on the path to read; a zero payload length is
    // a jumbogram's.
    if head[0] >> 4 != 6 || next == 0 || payload == 0 {
        return Err(NOT_FORWARDED);
    }
    // Multicast and link-local addresses are never forwarded as unicast.
    if dst[0] == 0xff || link_local_v6(&src) || link_local_v6(&dst) {
        return Err(NOT_FORWARDED);
    }
    if hop <= 1 {
        return Err(TTL_EXPIRED);
    }
    p.family = AF_INET6;
    p.l4_protocol = next;
    p.__bindgen_anon_1.tot_len = payload.saturating_add(40);
    p.__bindgen_anon_2.flowinfo = u32::from_ne_bytes([head[0] & 0x0f, head[1], head[2], head[3]]);
    p.__bindgen_anon_3.ipv6_src = words(&src);
    p.__bindgen_anon_4.ipv6_dst = words(&dst);
    Ok(())
}

#[inline(always)]
fn link_local_v6(a: &[u8; 16]) -> bool {
    a[0] == 0xfe && a[1] & 0xc0 == 0x80
}

/// An address as the helper's four words, bytes kept in network order.
#[inline(always)]
fn words(a: &[u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([a[0], a[1], a[2], a[3]]),
        u32::from_ne_bytes([a[4], a[5], a[6], a[7]]),
        u32::from_ne_bytes([a[8], a[9], a[10], a[11]]),
        u32::from_ne_bytes([a[12], a[13], a[14], a[15]]),
    ]
}

/// TTL minus one, with the header checksum updated as the kernel's `ip_decrease_ttl` does
/// (RFC 1624: the TTL is the high byte of its 16-bit word).
#[inline(always)]
fn decrement_ttl(ctx: &XdpContext) -> Result<(), usize> {
    let ttl = ptr_at_mut::<[u8; 2]>(ctx, V4_TTL).ok_or(NOT_FORWARDED)?;
    let check = ptr_at_mut::<[u8; 2]>(ctx, V4_CHECK).ok_or(NOT_FORWARDED)?;
    // SAFETY: both 2-byte fields were bounds-checked by ptr_at_mut.
    unsafe {
        let [t, proto] = ttl.read_unaligned();
        ttl.write_unaligned([t.wrapping_sub(1), proto]);
        let sum = u16::from_be_bytes(check.read_unaligned()) as u32 + 0x0100;
        let sum = sum + (sum >= 0xffff) as u32;
        check.write_unaligned((sum as u16).to_be_bytes());
    }
    Ok(())
}

#[inline(always)]
fn decrement_hop_limit(ctx: &XdpContext) -> Result<(), usize> {
    let field = ptr_at_mut::<[u8; 2]>(ctx, V6_HOP - 1).ok_or(NOT_FORWARDED)?;
    // SAFETY: bounds-checked by ptr_at_mut; the hop limit is the second byte.
    unsafe {
        let [next, hop] = field.read_unaligned();
        field.write_unaligned([next, hop.wrapping_sub(1)]);
    }
    Ok(())
}

#[inline(always)]
fn count(outcome: usize) {
    if let Some(c) = FORWARD_COUNTS.get_ptr_mut(0) {
        // SAFETY: per-CPU value, only this CPU writes it while this program runs.
        unsafe {
            if let Some(n) = (*c).packets.get_mut(outcome) {
                *n += 1;
            }
        }
    }
}
