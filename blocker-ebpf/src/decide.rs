//! Judging a parsed frame: bypass, then the destination against the block and allow prefixes
//! of the live generation, then the names a frame carries. Returns a `Verdict`, or for a TCP
//! segment whose names must be read, `Decision::Tcp`: `blocker` then tail-calls `blocker_tcp`,
//! which judges it with `judge_tcp` (tcp_names.rs). Nothing here touches the frame.
//!
//! A destination only a shadow prefix covers (`PREFIX_SHADOW`) is not blocked: the frame is
//! still judged by its names (an enforced name block wins), and otherwise passes counted as
//! `Action::Shadow` under `dst_v4`/`dst_v6`: what the shadow list would have blocked.

use aya_ebpf::{
    maps::{Array, lpm_trie::Key},
    programs::XdpContext,
};
use blocker_common::{
    coarse,
    config::{Config, FLAG_BYPASS, FLAG_STOP_PAGE, FLAG_TCP_RESET, FLAG_V6_ALL_EXACT},
    prefix::{PREFIX_SHADOW, PrefixValue},
    verdict::{Action, Reason},
};

use crate::{
    maps::{ALLOW_V4, ALLOW_V6, BLOCK_V4, BLOCK_V6, COARSE_V4, COARSE_V6, CONFIG, PACKET},
    parse::{self, MAX_V6_EXT, Packet, ParseError, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
    tcp_names,
};

#[derive(Clone, Copy)]
pub struct Verdict {
    pub action: Action,
    pub reason: Reason,
    /// The list entry behind the verdict (0: none), for per-entry counters.
    pub entry: u32,
}

impl Verdict {
    #[inline(always)]
    pub const fn pass(reason: Reason) -> Self {
        Verdict { action: Action::Pass, reason, entry: 0 }
    }
}

/// The run-time switches, read once per packet; `None` (the map could not be read) judges the
/// frame as `internal` and passes it.
#[inline(always)]
pub fn config() -> Option<Config> {
    CONFIG.get(0).copied()
}

/// What `judge` decided: a verdict, or that the frame is a TCP segment whose names only
/// `blocker_tcp` reads (its handoff in `Packet`).
pub enum Decision {
    Verdict(Verdict),
    Tcp,
}

impl From<Verdict> for Decision {
    #[inline(always)]
    fn from(v: Verdict) -> Self {
        Decision::Verdict(v)
    }
}

#[inline(always)]
pub fn judge(ctx: &XdpContext, cfg: Option<Config>) -> Decision {
    let Some(cfg) = cfg else {
        return Verdict::pass(Reason::Internal).into();
    };
    let flags = cfg.flags;
    let slot = (cfg.slot & 1) as u8;
    if flags & FLAG_BYPASS != 0 {
        return Verdict::pass(Reason::Bypass).into();
    }
    let Some(p) = PACKET.get_ptr_mut(0) else {
        return Verdict::pass(Reason::Internal).into();
    };
    // SAFETY: per-CPU scratch, used only by this program run on this CPU.
    let pkt = unsafe { &mut *p };
    match parse::parse(ctx, pkt) {
        Ok(()) => {}
        Err(ParseError::NotIp) => return Verdict::pass(Reason::NotIp).into(),
        Err(ParseError::Malformed) => return Verdict::pass(Reason::Malformed).into(),
        Err(ParseError::Unsupported) => return Verdict::pass(Reason::Unsupported).into(),
    }

    let mut shadow = Verdict::pass(Reason::NoMatch);
    match dst_verdict(pkt, slot, flags) {
        DstMatch::Blocked(reason, entry) => {
            // Plain HTTP to a listed address gets the stop page, answered without the server.
            let http = matches!(pkt.tcp(), Some(l4) if l4.dport == 80);
            let action = if http && flags & FLAG_STOP_PAGE != 0 { Action::StopPage } else { block_action(pkt, flags) };
            return Verdict { action, reason, entry }.into();
        }
        DstMatch::Allowed => return Verdict::pass(Reason::AllowList).into(),
        DstMatch::Shadow(reason, entry) => shadow = Verdict { action: Action::Shadow, reason, entry },
        DstMatch::NotListed => {}
    }
    let Some(v) = by_name(ctx, pkt, flags, slot) else {
        pkt.cfg = cfg;
        pkt.shadow = shadow;
        return Decision::Tcp;
    };
    with_shadow(v, shadow).into()
}

/// A destination only a shadow prefix covers is never blocked by it, nor sent the stop page:
/// a name may still block the frame for real; otherwise it passes counted as what the shadow
/// list would have blocked.
#[inline(always)]
fn with_shadow(v: Verdict, shadow: Verdict) -> Verdict {
    if shadow.action == Action::Shadow && v.action.passes() { shadow } else { v }
}

/// `blocker_tcp`'s judgement of the segment `blocker` handed it (`Decision::Tcp`), and the
/// configuration `blocker` judged the rest of the frame by.
#[inline(always)]
pub fn judge_tcp(ctx: &XdpContext) -> (Verdict, Option<Config>) {
    let Some(p) = PACKET.get_ptr_mut(0) else {
        return (Verdict::pass(Reason::Internal), None);
    };
    // SAFETY: per-CPU scratch, written by `blocker` in this same run of the frame (a tail call
    // keeps the CPU).
    let pkt = unsafe { &mut *p };
    let cfg = pkt.cfg;
    let v = tcp_names::judge(ctx, pkt, cfg.flags, cfg.slot & 1);
    (with_shadow(v, pkt.shadow), Some(cfg))
}

/// The verdict of the names the frame carries: a DNS question, a QUIC flow's server name (read
/// in user space, quic.rs); None for a TCP segment whose ClientHello server name or HTTP host
/// `blocker_tcp` must read (`tcp_names::judge`).
#[inline(always)]
fn by_name(ctx: &XdpContext, pkt: &Packet, flags: u32, slot: u8) -> Option<Verdict> {
    if let Some(v) = crate::dns::judge(ctx, pkt, slot as u32) {
        return Some(v);
    }
    if let Some(v) = crate::quic::judge(ctx, pkt) {
        return Some(v);
    }
    if let Some(l4) = pkt.tcp() {
        // Segments without payload carry no name: the common ACK skips the call. A client's
        // SYN marks its flow's first data byte as awaited, and a FIN may close a flow that was
        // answered in place of its server (tcp_names.rs).
        if l4.payload_len == 0 {
            if l4.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
                return Some(tcp_names::syn(ctx, pkt));
            }
            if l4.tcp_flags & TCP_FIN != 0 {
                return Some(tcp_names::fin(ctx, pkt, flags));
            }
            return Some(Verdict::pass(Reason::NoMatch));
        }
        // Most data segments are the middle of a flow nobody follows: answered here, without
        // the tail call.
        if !tcp_names::may_concern(ctx, pkt) {
            return Some(Verdict::pass(Reason::NoMatch));
        }
        return None;
    }
    Some(Verdict::pass(Reason::NoMatch))
}

enum DstMatch {
    NotListed,
    Allowed,
    Blocked(Reason, u32),
    /// Only a shadow prefix covers the destination.
    Shadow(Reason, u32),
}

#[inline(always)]
fn is_shadow(v: &PrefixValue) -> bool {
    v.flags & PREFIX_SHADOW != 0
}

#[inline(always)]
fn dst_verdict(pkt: &Packet, slot: u8, flags: u32) -> DstMatch {
    if pkt.v6 != 0 {
        // Plain values, not Options: LLVM may compute on an Option's undefined payload, which
        // the verifier refuses when the register holds a pointer on that path.
        let mut v = v6_listed(slot, &pkt.dst6, flags);
        // The final destinations of routing headers too (parse.rs), until one is blocked for
        // real: an enforced match on any beats a shadow match on another.
        let n = pkt.n_finals as usize;
        let mut i = 0;
        while i < MAX_V6_EXT && i < n && (v.entry_id == 0 || is_shadow(&v)) {
            let f = v6_listed(slot, &pkt.finals[i], flags);
            if f.entry_id != 0 && (v.entry_id == 0 || !is_shadow(&f)) {
                v = f;
            }
            i += 1;
        }
        if v.entry_id == 0 {
            return DstMatch::NotListed;
        }
        // An allow entry for any of the addresses wins.
        let mut allowed = v6_allowed(slot, &pkt.dst6);
        let mut i = 0;
        while i < MAX_V6_EXT && i < n && !allowed {
            allowed = v6_allowed(slot, &pkt.finals[i]);
            i += 1;
        }
        if allowed {
            return DstMatch::Allowed;
        }
        if is_shadow(&v) { DstMatch::Shadow(Reason::DstV6, v.entry_id) } else { DstMatch::Blocked(Reason::DstV6, v.entry_id) }
    } else {
        if !coarse_hit(&COARSE_V4, slot, coarse::v4_bit(pkt.dst4)) {
            return DstMatch::NotListed;
        }
        let key = Key::new(32, pkt.dst4.to_be_bytes());
        let Some(both) = BLOCK_V4.get(&key) else { return DstMatch::NotListed };
        // The live slot's half (blocker-common prefix.rs); entry id 0: not in its generation.
        let v = both.slot[(slot & 1) as usize];
        if v.entry_id == 0 {
            return DstMatch::NotListed;
        }
        if ALLOW_V4.get(&key).is_some_and(|a| a.slot[(slot & 1) as usize].entry_id != 0) {
            return DstMatch::Allowed;
        }
        if is_shadow(&v) { DstMatch::Shadow(Reason::DstV4, v.entry_id) } else { DstMatch::Blocked(Reason::DstV4, v.entry_id) }
    }
}

/// A blocked TCP segment is answered with a reset when configured and when we can build one
/// (its TCP header was parsed and it is not itself a reset); everything else is dropped.
#[inline(always)]
pub fn block_action(pkt: &Packet, flags: u32) -> Action {
    match pkt.tcp() {
        Some(l4) if flags & FLAG_TCP_RESET != 0 && l4.tcp_flags & TCP_RST == 0 => Action::TcpReset,
        _ => Action::Drop,
    }
}

/// The value of the block prefix covering `dst`; entry id 0 (ids start at 1) when none does.
#[inline(always)]
fn v6_listed(slot: u8, dst: &[u8; 16], flags: u32) -> PrefixValue {
    const NONE: PrefixValue = PrefixValue { entry_id: 0, flags: 0 };
    if flags & FLAG_V6_ALL_EXACT == 0 {
        // A listed host or /64 marks its /48, a shorter prefix its /32s (blocker-common
        // coarse.rs): neither set proves "not listed".
        let top32 = u32::from_be_bytes([dst[0], dst[1], dst[2], dst[3]]);
        if !coarse_hit(&COARSE_V6, slot, coarse::v6_site_bit(coarse::v6_top48(dst))) && !coarse_hit(&COARSE_V6, slot, coarse::v6_bit(top32)) {
            return NONE;
        }
    }
    match BLOCK_V6.get(Key::new(128, *dst)) {
        Some(both) => both.slot[(slot & 1) as usize],
        None => NONE,
    }
}

#[inline(always)]
fn v6_allowed(slot: u8, dst: &[u8; 16]) -> bool {
    ALLOW_V6.get(Key::new(128, *dst)).is_some_and(|a| a.slot[(slot & 1) as usize].entry_id != 0)
}

#[inline(always)]
fn coarse_hit(map: &Array<u64>, slot: u8, bit: u32) -> bool {
    let (word, mask) = coarse::word_and_mask(bit);
    match map.get(coarse::map_index(slot as u32, word)) {
        Some(w) => *w & mask != 0,
        // Indices are always < MAP_WORDS, so this cannot happen; if it did, let the exact
        // path decide rather than skip a listed destination.
        None => true,
    }
}
