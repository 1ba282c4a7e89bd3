//! Judging a parsed frame: bypass, then the destination against the block and allow prefixes
//! of the live generation. Returns a `Verdict`; nothing here touches the frame.

use aya_ebpf::{
    maps::{Array, lpm_trie::Key},
    programs::XdpContext,
};
use blocker_common::{
    coarse,
    config::{FLAG_BYPASS, FLAG_TCP_RESET, FLAG_V6_ALL_EXACT},
    prefix::{SLOT_BITS, v4_key_data, v6_key_data},
    verdict::{Action, Reason},
};

use crate::{
    maps::{ALLOW_V4, ALLOW_V6, BLOCK_V4, BLOCK_V6, COARSE_V4, COARSE_V6, CONFIG},
    parse::{self, IPPROTO_TCP, Packet, ParseError, TCP_RST},
};

#[derive(Clone, Copy)]
pub struct Verdict {
    pub action: Action,
    pub reason: Reason,
    /// The parsed frame, present when the action needs to rewrite it.
    pub packet: Option<Packet>,
}

impl Verdict {
    #[inline(always)]
    const fn pass(reason: Reason) -> Self {
        Verdict { action: Action::Pass, reason, packet: None }
    }
}

#[inline(always)]
pub fn judge(ctx: &XdpContext) -> Verdict {
    let Some(cfg) = CONFIG.get(0) else {
        return Verdict::pass(Reason::Internal);
    };
    let flags = cfg.flags;
    let slot = (cfg.slot & 1) as u8;
    if flags & FLAG_BYPASS != 0 {
        return Verdict::pass(Reason::Bypass);
    }
    let pkt = match parse::parse(ctx) {
        Ok(p) => p,
        Err(ParseError::NotIp) => return Verdict::pass(Reason::NotIp),
        Err(ParseError::Malformed) => return Verdict::pass(Reason::Malformed),
        Err(ParseError::Unsupported) => return Verdict::pass(Reason::Unsupported),
    };

    let reason = if pkt.v6 {
        let listed = v6_listed(slot, &pkt.dst6, flags)
            || matches!(pkt.final6, Some(f) if v6_listed(slot, &f, flags));
        if !listed {
            return Verdict::pass(Reason::NoMatch);
        }
        if v6_allowed(slot, &pkt.dst6) || matches!(pkt.final6, Some(f) if v6_allowed(slot, &f)) {
            return Verdict::pass(Reason::AllowList);
        }
        Reason::DstV6
    } else {
        if !coarse_hit(&COARSE_V4, slot, coarse::v4_bit(pkt.dst4)) {
            return Verdict::pass(Reason::NoMatch);
        }
        let key = Key::new(SLOT_BITS + 32, v4_key_data(slot, pkt.dst4.to_be_bytes()));
        if BLOCK_V4.get(&key).is_none() {
            return Verdict::pass(Reason::NoMatch);
        }
        if ALLOW_V4.get(&key).is_some() {
            return Verdict::pass(Reason::AllowList);
        }
        Reason::DstV4
    };
    Verdict { action: block_action(&pkt, flags), reason, packet: Some(pkt) }
}

/// A blocked TCP segment is answered with a reset when configured and when we can build one
/// (its TCP header was parsed and it is not itself a reset); everything else is dropped.
#[inline(always)]
fn block_action(pkt: &Packet, flags: u32) -> Action {
    match pkt.l4 {
        Some(l4)
            if flags & FLAG_TCP_RESET != 0
                && pkt.proto == IPPROTO_TCP
                && l4.tcp_flags & TCP_RST == 0 =>
        {
            Action::TcpReset
        }
        _ => Action::Drop,
    }
}

#[inline(always)]
fn v6_listed(slot: u8, dst: &[u8; 16], flags: u32) -> bool {
    if flags & FLAG_V6_ALL_EXACT == 0 {
        let top32 = u32::from_be_bytes([dst[0], dst[1], dst[2], dst[3]]);
        if !coarse_hit(&COARSE_V6, slot, coarse::v6_bit(top32)) {
            return false;
        }
    }
    BLOCK_V6.get(Key::new(SLOT_BITS + 128, v6_key_data(slot, dst))).is_some()
}

#[inline(always)]
fn v6_allowed(slot: u8, dst: &[u8; 16]) -> bool {
    ALLOW_V6.get(Key::new(SLOT_BITS + 128, v6_key_data(slot, dst))).is_some()
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
