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
//!
//! With `FLAG_ROUTE_CACHE` the FIB's answers are reused per CPU while nothing in the kernel's
//! routing has changed (blocker-common route_cache.rs): a hit skips the lookup, the costliest
//! step; every other check is made for every frame.

use core::mem::{MaybeUninit, offset_of, size_of};

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup as FibParams, xdp_action, xdp_md},
    helpers::generated::{bpf_fib_lookup, bpf_ktime_get_coarse_ns},
    programs::XdpContext,
};
use blocker_common::{
    config::FLAG_ROUTE_CACHE,
    forward::{FORWARDED, FRAG_NEEDED, NO_NEIGHBOUR, NOT_FORWARDED, PORT_NOT_ALLOWED, ROUTE_CACHED, TTL_EXPIRED},
    route_cache::{self, KEY_WORD0_MASK, KEY_WORDS, MAX_AGE_NS, RouteCacheEntry},
};

use crate::{
    cursor::{load64, span, store16, store32},
    maps::{FORWARD_COUNTS, FORWARD_PORTS, PORT_MAC, ROUTE_CACHE, ROUTE_GEN},
};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const L3: usize = 14;

/// The lookup's parameter block, 8-aligned so that it is zeroed and read in words.
#[repr(C, align(8))]
struct Params(FibParams);

// The MACs the lookup returns are copied into the frame as 16- and 32-bit words from these
// offsets (smac 4-aligned, dmac 2-aligned).
const SMAC: usize = offset_of!(FibParams, smac);
const DMAC: usize = offset_of!(FibParams, dmac);
const _: () = assert!(size_of::<FibParams>() == 64 && SMAC == 52 && DMAC == 58);

/// Zeroes the parameter block in place, in eight word stores: `mem::zeroed` becomes a call to
/// a byte loop (the bpf target's memset), and so does a move of a block known to be zero.
#[inline(always)]
fn zero_params(p: &mut MaybeUninit<Params>) -> &mut Params {
    let words = p.as_mut_ptr() as *mut u64;
    let mut i = 0;
    while i < size_of::<Params>() / 8 {
        // SAFETY: inside the 8-aligned, 64-byte block; volatile so they are not merged back
        // into a memset.
        unsafe { words.add(i).write_volatile(0) };
        i += 1;
    }
    // SAFETY: every byte was written; all-zero is a valid parameter block (plain data).
    unsafe { p.assume_init_mut() }
}

/// An allowed frame in router mode with the switch on: returns XDP_REDIRECT when the program
/// forwarded it, XDP_PASS when the kernel is to. Counted by outcome.
///
/// A separate BPF function: the lookup's 64-byte parameter block takes stack only while it
/// runs.
///
/// It takes the raw context by value: a reference would make the main program keep a stack
/// slot for it, and the main program's frame is what the verifier's 512-byte limit on the
/// deepest call chain (main, stop page, reply) has no room left for.
#[inline(never)]
pub fn route(ctx: *mut xdp_md, flags: u32) -> u32 {
    let ctx = &XdpContext::new(ctx);
    let (outcome, cached, action) = match try_route(ctx, flags & FLAG_ROUTE_CACHE != 0) {
        Ok((action, cached)) => (FORWARDED, cached, action),
        Err(outcome) => (outcome, false, xdp_action::XDP_PASS),
    };
    count(outcome, cached);
    action
}

/// Where a frame goes: the egress port and the two MACs, as the words they are stored in.
struct NextHop {
    egress: u32,
    dmac_hi: u16,
    dmac_lo: u32,
    smac_hi: u32,
    smac_lo: u16,
}

impl NextHop {
    /// Reads the MACs at `dmac` and `smac` of the block at `base` (dmac 2 mod 4, smac 4-aligned).
    ///
    /// # Safety
    /// Both offsets plus six are inside the block.
    #[inline(always)]
    unsafe fn read(egress: u32, base: *const u8, dmac: usize, smac: usize) -> NextHop {
        unsafe {
            NextHop {
                egress,
                dmac_hi: *(base.add(dmac) as *const u16),
                dmac_lo: *(base.add(dmac + 2) as *const u32),
                smac_hi: *(base.add(smac) as *const u32),
                smac_lo: *(base.add(smac + 4) as *const u16),
            }
        }
    }
}

const ENTRY_DMAC: usize = offset_of!(RouteCacheEntry, dmac);
const ENTRY_SMAC: usize = offset_of!(RouteCacheEntry, smac);

/// Ok: the action and whether the route came from the cache.
#[inline(always)]
fn try_route(ctx: &XdpContext, cache: bool) -> Result<(u32, bool), usize> {
    let eth = span::<14>(ctx, 0).ok_or(NOT_FORWARDED)?;
    // Frames to another MAC reach the program only when the port listens to them (promiscuous
    // for a capture, a bridge): the kernel drops those, and so must forwarding.
    let own = PORT_MAC.get_ptr(0).ok_or(NOT_FORWARDED)?;
    // SAFETY: an 8-byte map value (PortMac: the MAC's six bytes, then `set`).
    let own = unsafe { load64(own as *const u8) };
    if (own >> 48) as u8 == 0 || eth.raw32(0) != own as u32 || eth.be16(4).to_be() != (own >> 32) as u16 {
        return Err(NOT_FORWARDED);
    }
    let mut block = MaybeUninit::<Params>::uninit();
    let p = zero_params(&mut block);
    let v6 = match eth.be16(12) {
        ETH_P_IP => {
            ipv4_params(ctx, &mut p.0)?;
            false
        }
        ETH_P_IPV6 => {
            ipv6_params(ctx, &mut p.0)?;
            true
        }
        // VLAN tags included: the route belongs to the VLAN's interface, not this port.
        _ => return Err(NOT_FORWARDED),
    };
    p.0.ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: `tot_len` is what the params functions set in this union.
    let tot_len = unsafe { p.0.__bindgen_anon_1.tot_len };
    let (hop, cached) = match if cache { cached_hop(p, tot_len) } else { Lookup::Ask(None) } {
        Lookup::Hit(hop) => (hop, true),
        Lookup::Ask(slot) => (ask_fib(ctx, p, slot)?, false),
    };
    // The redirect only records the target (the frame leaves after the program returns), so it
    // doubles as the allowlist check: with the port not in FORWARD_PORTS it returns XDP_PASS and
    // the frame goes to the kernel untouched.
    let action = match FORWARD_PORTS.redirect(hop.egress, xdp_action::XDP_PASS as u64) {
        Ok(code) | Err(code) => code,
    };
    if action != xdp_action::XDP_REDIRECT {
        return Err(PORT_NOT_ALLOWED);
    }
    // From here on the frame is the forwarded one.
    if v6 { decrement_hop_limit(ctx)? } else { decrement_ttl(ctx)? }
    // The headers were read through spans of the same frame, so these stores cannot fail; if
    // one did, XDP_PASS hands the kernel a frame it drops (not its MAC), never a half-written
    // one sent on.
    if !(store16(ctx, 0, hop.dmac_hi) && store32(ctx, 2, hop.dmac_lo) && store32(ctx, 6, hop.smac_hi) && store16(ctx, 10, hop.smac_lo)) {
        return Err(NOT_FORWARDED);
    }
    Ok((action, cached))
}

enum Lookup {
    Hit(NextHop),
    /// Ask the FIB; the slot to keep its answer in, with the question and generation already
    /// written (and no answer: `egress` 0).
    Ask(Option<*mut RouteCacheEntry>),
}

/// The cached answer to the question in `p`, if its slot holds one that may still be used
/// (route_cache.rs); otherwise the slot, made ready for the FIB's answer.
#[inline(always)]
fn cached_hop(p: &Params, tot_len: u16) -> Lookup {
    let words = p as *const Params as *const u64;
    let mut key = [0u64; KEY_WORDS];
    let mut i = 0;
    while i < KEY_WORDS {
        // SAFETY: the first 48 of the block's 64 bytes, 8-aligned.
        key[i] = unsafe { words.add(i).read() };
        i += 1;
    }
    key[0] &= KEY_WORD0_MASK;
    let Some(entry) = ROUTE_CACHE.get_ptr_mut(route_cache::slot(&key)) else { return Lookup::Ask(None) };
    let Some(generation) = ROUTE_GEN.get(0).copied() else { return Lookup::Ask(None) };
    // SAFETY: a helper without arguments that cannot fail.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    // SAFETY: a per-CPU map value: only this CPU uses it, and only while this program runs.
    let e = unsafe { &mut *entry };
    if e.egress != 0 && e.generation == generation && now.wrapping_sub(e.filled_ns) < MAX_AGE_NS && tot_len <= e.mtu && same_key(&e.key, &key) {
        // SAFETY: both MACs are inside the entry (offsets asserted in route_cache.rs).
        return Lookup::Hit(unsafe { NextHop::read(e.egress, e as *const RouteCacheEntry as *const u8, ENTRY_DMAC, ENTRY_SMAC) });
    }
    e.egress = 0;
    e.key = key;
    e.generation = generation;
    e.filled_ns = now;
    Lookup::Ask(Some(entry))
}

/// Word by word, without branches: `==` on the arrays becomes a call to the bpf target's
/// byte-at-a-time `bcmp`, 48 rounds of a loop.
#[inline(always)]
fn same_key(a: &[u64; KEY_WORDS], b: &[u64; KEY_WORDS]) -> bool {
    let mut diff = 0;
    let mut i = 0;
    while i < KEY_WORDS {
        diff |= a[i] ^ b[i];
        i += 1;
    }
    diff == 0
}

/// Asks the kernel's FIB; keeps a forwardable answer in `slot`.
#[inline(always)]
fn ask_fib(ctx: &XdpContext, p: &mut Params, slot: Option<*mut RouteCacheEntry>) -> Result<NextHop, usize> {
    // SAFETY: the helper reads and writes `size_of::<FibParams>()` bytes of `p`, a local.
    let rc = unsafe { bpf_fib_lookup(ctx.ctx.cast(), &mut p.0, size_of::<FibParams>() as i32, 0) };
    match rc as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => {}
        BPF_FIB_LKUP_RET_NO_NEIGH => return Err(NO_NEIGHBOUR),
        BPF_FIB_LKUP_RET_FRAG_NEEDED => return Err(FRAG_NEEDED),
        _ => return Err(NOT_FORWARDED),
    }
    // SAFETY: offsets inside `p`, aligned for these widths (asserted above; `p` is 8-aligned).
    let hop = unsafe { NextHop::read(p.0.ifindex, p as *const Params as *const u8, DMAC, SMAC) };
    if let Some(entry) = slot {
        // SAFETY: the per-CPU slot cached_hop prepared; only this CPU uses it.
        let e = unsafe { &mut *entry };
        // On success the lookup leaves the route's MTU where the length was.
        e.mtu = unsafe { p.0.__bindgen_anon_1.mtu_result };
        e.dmac = p.0.dmac;
        e.smac = p.0.smac;
        e.egress = hop.egress;
    }
    Ok(hop)
}

#[inline(always)]
fn ipv4_params(ctx: &XdpContext, p: &mut FibParams) -> Result<(), usize> {
    let h = span::<20>(ctx, L3).ok_or(NOT_FORWARDED)?;
    // Options (record route, source routing, router alert) are the kernel's to act on.
    if h.u8(0) != 0x45 {
        return Err(NOT_FORWARDED);
    }
    // Multicast, broadcast and the martians (0/8, 127/8) the kernel checks in its own route
    // input, which the FIB lookup does not.
    if martian_v4(h.u8(12)) || martian_v4(h.u8(16)) {
        return Err(NOT_FORWARDED);
    }
    if h.u8(8) <= 1 {
        return Err(TTL_EXPIRED);
    }
    p.family = AF_INET;
    p.l4_protocol = h.u8(9);
    p.__bindgen_anon_1.tot_len = h.be16(2);
    p.__bindgen_anon_2.tos = h.u8(1);
    // Addresses stay in network order, as the helper takes them.
    p.__bindgen_anon_3.ipv4_src = h.raw32(12);
    p.__bindgen_anon_4.ipv4_dst = h.raw32(16);
    Ok(())
}

#[inline(always)]
fn martian_v4(first: u8) -> bool {
    first == 0 || first == 127 || first >= 224
}

#[inline(always)]
fn ipv6_params(ctx: &XdpContext, p: &mut FibParams) -> Result<(), usize> {
    let h = span::<40>(ctx, L3).ok_or(NOT_FORWARDED)?;
    let payload = h.be16(4);
    let next = h.u8(6);
    // Hop-by-hop options are for every router on the path to read; a zero payload length is
    // a jumbogram's.
    if h.u8(0) >> 4 != 6 || next == 0 || payload == 0 {
        return Err(NOT_FORWARDED);
    }
    // Multicast, link-local, loopback, unspecified and IPv4-mapped addresses: never forwarded as
    // unicast, and the kernel's own receive path drops several of them.
    let (src, dst) = (h.raw128(8), h.raw128(24));
    if not_unicast_v6(src) || not_unicast_v6(dst) {
        return Err(NOT_FORWARDED);
    }
    if h.u8(7) <= 1 {
        return Err(TTL_EXPIRED);
    }
    p.family = AF_INET6;
    p.l4_protocol = next;
    p.__bindgen_anon_1.tot_len = payload.saturating_add(40);
    // The flow label: the low 20 bits of the first word, kept in network order.
    p.__bindgen_anon_2.flowinfo = h.raw32(0) & u32::from_ne_bytes([0x0f, 0xff, 0xff, 0xff]);
    // SAFETY: both unions are 16 bytes at 8-aligned offsets (16, 32) of an 8-aligned block.
    unsafe {
        (core::ptr::addr_of_mut!(p.__bindgen_anon_3) as *mut [u64; 2]).write(src);
        (core::ptr::addr_of_mut!(p.__bindgen_anon_4) as *mut [u64; 2]).write(dst);
    }
    Ok(())
}

/// An IPv6 address (two words in memory order) that is not a global unicast one: ff00::/8,
/// fe80::/10, ::, ::1 or ::ffff:0:0/96.
#[inline(always)]
fn not_unicast_v6([hi, lo]: [u64; 2]) -> bool {
    let [b0, b1, ..] = hi.to_ne_bytes();
    let lo_bytes = lo.to_ne_bytes();
    b0 == 0xff
        || (b0 == 0xfe && b1 & 0xc0 == 0x80)
        || (hi == 0 && (lo == 0 || lo == u64::from_ne_bytes([0, 0, 0, 0, 0, 0, 0, 1]) || lo_bytes[..4] == [0, 0, 0xff, 0xff]))
}

/// TTL minus one, with the header checksum updated as the kernel's `ip_decrease_ttl` does
/// (RFC 1624: the TTL is the high byte of its 16-bit word).
#[inline(always)]
fn decrement_ttl(ctx: &XdpContext) -> Result<(), usize> {
    let h = span::<12>(ctx, L3).ok_or(NOT_FORWARDED)?;
    let sum = h.be16(10) as u32 + 0x0100;
    let sum = sum + (sum >= 0xffff) as u32;
    let ttl_proto = u16::from_ne_bytes([h.u8(8).wrapping_sub(1), h.u8(9)]);
    if store16(ctx, L3 + 8, ttl_proto) && store16(ctx, L3 + 10, (sum as u16).to_be()) { Ok(()) } else { Err(NOT_FORWARDED) }
}

#[inline(always)]
fn decrement_hop_limit(ctx: &XdpContext) -> Result<(), usize> {
    let h = span::<8>(ctx, L3).ok_or(NOT_FORWARDED)?;
    let next_hop = u16::from_ne_bytes([h.u8(6), h.u8(7).wrapping_sub(1)]);
    if store16(ctx, L3 + 6, next_hop) { Ok(()) } else { Err(NOT_FORWARDED) }
}

#[inline(always)]
fn count(outcome: usize, cached: bool) {
    if let Some(c) = FORWARD_COUNTS.get_ptr_mut(0) {
        // SAFETY: per-CPU value, only this CPU writes it while this program runs.
        unsafe {
            if let Some(n) = (*c).packets.get_mut(outcome) {
                *n += 1;
            }
            if cached {
                (*c).packets[ROUTE_CACHED] += 1;
            }
        }
    }
}
