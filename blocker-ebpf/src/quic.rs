//! QUIC: UDP datagrams from subscribers to port 443. The server name sits in the client's
//! Initial packets, encrypted with keys anyone can derive but far beyond what XDP can decrypt
//! per packet, so the work is split (blocker-user/src/quic, "Design notes for the kernel half"):
//!
//! - A flow with a verdict (QUIC_VERDICTS, written by the daemon): block drops the datagram
//!   (`quic`/drop), shadow passes it counted (`quic`/shadow), pass passes it (`no_match`). A
//!   verdict of another epoch than QUIC_CONFIG's was made against a list set that is no longer
//!   live: it is ignored, as if there were none.
//! - A flow without one: a client Initial datagram (long header, version 1 or 2, type Initial,
//!   at least 1200 bytes) is copied to QUIC_RING, within a per-CPU token bucket, and passes
//!   (`quic_pending`). If the bucket is empty or the ring full it passes uncopied
//!   (`quic_overload`, fail open). 0-RTT packets are not let through before the verdict
//!   (`quic_early`, drop): they may carry a request to a listed server, whose answer would come
//!   back unjudged. A datagram that starts with a 0-RTT packet is dropped; an Initial datagram
//!   with a 0-RTT packet coalesced after the Initial is copied, then cut after the Initial
//!   (IPv4: `quic_early`/pass) or, where it cannot be cut (IPv6, whose UDP checksum would have
//!   to be summed again), dropped: the client resends its Initial after its probe timeout, by
//!   when the verdict exists. Either way the client sends the 0-RTT data again in 1-RTT packets
//!   once the handshake is done. Everything else (Handshake packets,
//!   short headers, other versions, garbage) passes (`no_match`).
//! - The daemon's reader holds a lease (`QuicConfig::reader_alive_until_ns`) it renews while it
//!   runs. Once it has run out (the daemon killed, or stuck) Initials pass uncopied
//!   (`quic_overload`) and 0-RTT passes: nothing would judge them. Verdicts already written
//!   still hold.
//!
//! Cost: UDP to other ports pays nothing here; UDP to port 443 pays the QUIC_CONFIG array read
//! (inlined by the JIT) and, when QUIC is on, one LRU lookup; only client Initials of flows
//! without a verdict pay more (a few header reads, the bucket, the copy).

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use blocker_common::{
    quic::{
        COPY_CAP, MIN_INITIAL_DATAGRAM, QUIC_ENABLED, QUIC_PORT, QuicCopy, QuicFlow, VERDICT_BLOCK, VERDICT_PASS,
        VERDICT_SHADOW, VERSION_1, VERSION_2,
    },
    verdict::{Action, Reason},
};

use crate::{
    csum,
    cursor::{self, MAX_OFF, read, read_be16, read_u8, span},
    decide::Verdict,
    maps::{PACKET, QUIC_BUCKET, QUIC_CONFIG, QUIC_RING, QUIC_VERDICTS},
    parse::Packet,
};

const UDP_HEADER: usize = 8;
/// Connection IDs are at most 20 bytes in versions 1 and 2 (RFC 9000 §17.2).
const MAX_CID: usize = 20;

/// Judges a UDP datagram to port 443 when QUIC is on; None for anything else, which decide.rs
/// then judges as usual.
#[inline(always)]
pub fn judge(ctx: &XdpContext, pkt: &Packet) -> Option<Verdict> {
    if pkt.udp()?.dport != QUIC_PORT {
        return None;
    }
    if !QUIC_CONFIG.get(0).is_some_and(|c| c.flags & QUIC_ENABLED != 0) {
        return None;
    }
    Some(judge_datagram(ctx))
}

#[inline(always)]
fn pass() -> Verdict {
    Verdict::pass(Reason::NoMatch)
}

/// Not inlined: its locals take stack only while it runs (see dns.rs). Returns a plain
/// `Verdict`: a BPF function's signature cannot carry a Rust `Option`.
#[inline(never)]
fn judge_datagram(ctx: &XdpContext) -> Verdict {
    let Some(p) = PACKET.get_ptr(0) else { return Verdict::pass(Reason::Internal) };
    // SAFETY: per-CPU scratch the parser filled for this frame.
    let pkt = unsafe { &*p };
    let Some(cfg) = QUIC_CONFIG.get(0) else { return Verdict::pass(Reason::Internal) };
    let (epoch, cost, burst, lease) = (cfg.epoch, cfg.cost_ns, cfg.burst_ns, cfg.reader_alive_until_ns);
    let Some(l4) = pkt.udp() else { return pass() };
    let Some(flow) = flow_of(ctx, pkt, l4.sport, l4.dport) else { return pass() };
    if let Some(v) = QUIC_VERDICTS.get_ptr(&flow) {
        // SAFETY: a valid map value; the daemon replaces values whole.
        let v = unsafe { *v };
        if v.epoch == epoch {
            match v.kind {
                VERDICT_BLOCK => return Verdict { action: Action::Drop, reason: Reason::Quic, entry: v.entry_id },
                VERDICT_SHADOW => return Verdict { action: Action::Shadow, reason: Reason::Quic, entry: v.entry_id },
                VERDICT_PASS => return pass(),
                _ => {}
            }
        }
    }
    let off = (l4.off as usize + UDP_HEADER) & MAX_OFF;
    let len = l4.payload_len;
    let Some(h) = span::<5>(ctx, off) else { return pass() };
    let b0 = h.u8(0);
    // A long header with the fixed bit set; short headers (1-RTT) and anything else pass.
    if b0 & 0xc0 != 0xc0 {
        return pass();
    }
    let version = h.be32(1);
    // Long packet types (RFC 9000 §17.2, RFC 9369 §3.2): version 2 moved them by one.
    let (initial, zero_rtt) = match version {
        VERSION_1 => (0u8, 1u8),
        VERSION_2 => (1, 2),
        _ => return pass(),
    };
    let ty = (b0 >> 4) & 3;
    if ty == zero_rtt {
        // Held back only while a reader will judge the flow; without one, nothing would.
        // SAFETY: a helper without arguments.
        if unsafe { bpf_ktime_get_ns() } > lease {
            return pass();
        }
        return Verdict { action: Action::Drop, reason: Reason::QuicEarly, entry: 0 };
    }
    if ty != initial || len < MIN_INITIAL_DATAGRAM {
        return pass();
    }
    let zero_rtt_at = coalesced_zero_rtt(ctx, off, len as usize, zero_rtt, version);
    match copy(ctx, &flow, off, len, epoch, cost, burst, lease) {
        Copy::Done if zero_rtt_at != 0 => {
            // The Initial may go on without the 0-RTT packet behind it: cut where it starts.
            if cut_ipv4(ctx, pkt, off, zero_rtt_at) {
                Verdict::pass(Reason::QuicEarly)
            } else {
                Verdict { action: Action::Drop, reason: Reason::QuicEarly, entry: 0 }
            }
        }
        Copy::Done => Verdict::pass(Reason::QuicPending),
        Copy::Overload => Verdict::pass(Reason::QuicOverload),
        // The IP lengths promise more than the frame holds.
        Copy::Short => Verdict::pass(Reason::Malformed),
    }
}

/// The flow's key, built as five 8-byte words (the byte layout of `QuicFlow` on bpfel), as
/// flow.rs builds the TCP flow key.
#[inline(always)]
fn flow_of(ctx: &XdpContext, pkt: &Packet, sport: u16, dport: u16) -> Option<QuicFlow> {
    let (s0, s1, d0, d1) = if pkt.v6 != 0 {
        let [s0, s1] = read::<[u64; 2]>(ctx, pkt.l3() + 8)?;
        let [d0, d1] = pkt.dst6_words();
        (s0, s1, d0, d1)
    } else {
        let s = read::<u32>(ctx, pkt.l3() + 12)?;
        (s as u64, 0, u32::from_ne_bytes(pkt.dst4.to_be_bytes()) as u64, 0)
    };
    let tail = sport as u64 | (dport as u64) << 16 | (pkt.v6 as u64) << 32;
    // SAFETY: QuicFlow is 40 bytes of plain integers, laid out as these five words on bpfel.
    Some(unsafe { core::mem::transmute::<[u64; 5], QuicFlow>([s0, s1, d0, d1, tail]) })
}

/// A QUIC variable-length integer of 1, 2 or 4 bytes at `off`: (value, bytes). Eight-byte ones
/// are far beyond any length inside a datagram: None.
#[inline(always)]
fn varint(ctx: &XdpContext, off: usize) -> Option<(usize, usize)> {
    let b = read_u8(ctx, off)?;
    let v = (b & 0x3f) as usize;
    match b >> 6 {
        0 => Some((v, 1)),
        1 => Some((v << 8 | read_u8(ctx, off + 1)? as usize, 2)),
        2 => {
            let [_, x, y, z] = read::<[u8; 4]>(ctx, off)?;
            Some((v << 24 | (x as usize) << 16 | (y as usize) << 8 | z as usize, 4))
        }
        _ => None,
    }
}

/// Where, in the UDP payload at `off` (`len` bytes), a 0-RTT packet of the same version follows
/// the Initial packet the payload starts with; 0 when none does.
#[inline(always)]
fn coalesced_zero_rtt(ctx: &XdpContext, off: usize, len: usize, zero_rtt: u8, version: u32) -> usize {
    let end = off + len;
    let mut p = off + 5;
    let Some(dcid) = read_u8(ctx, p) else { return 0 };
    if dcid as usize > MAX_CID {
        return 0;
    }
    p += 1 + dcid as usize;
    let Some(scid) = read_u8(ctx, p) else { return 0 };
    if scid as usize > MAX_CID {
        return 0;
    }
    p += 1 + scid as usize;
    let Some((token, n)) = varint(ctx, p) else { return 0 };
    if token > len {
        return 0;
    }
    p += n + token;
    let Some((length, n)) = varint(ctx, p) else { return 0 };
    if length > len {
        return 0;
    }
    p += n + length;
    if p + 5 > end {
        return 0;
    }
    let Some(h) = span::<5>(ctx, p) else { return 0 };
    if h.u8(0) & 0xf0 == 0xc0 | zero_rtt << 4 && h.be32(1) == version { p - off } else { 0 }
}

/// IPv4: cuts the frame where the UDP payload at `off` reaches `keep` bytes, so the Initial
/// passes without what was coalesced after it. The IP total length and header checksum
/// (RFC 1624) and the UDP length are fixed; the UDP checksum is cleared (RFC 768: a datagram
/// without one), which spares summing the payload. False (the frame unchanged) for IPv6, where
/// UDP needs its checksum, and for a frame with bytes past its IP packet.
#[inline(always)]
fn cut_ipv4(ctx: &XdpContext, pkt: &Packet, off: usize, keep: usize) -> bool {
    if pkt.v6 != 0 || keep == 0 {
        return false;
    }
    let l3 = pkt.l3();
    let Some(total) = read_be16(ctx, l3 + 2) else { return false };
    let Some(ip_sum) = read_be16(ctx, l3 + 10) else { return false };
    let frame = cursor::frame_len(ctx) as usize;
    let new_end = off + keep;
    if l3 + total as usize != frame || new_end >= frame || new_end <= l3 + 28 {
        return false;
    }
    let new_total = (new_end - l3) as u16;
    let new_udp = (new_end - (off - UDP_HEADER)) as u16;
    // SAFETY: a helper that leaves the frame unchanged when it fails; packet reads and writes
    // after it go through the cursor, which takes the frame's bounds afresh.
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, -((frame - new_end) as i32)) } != 0 {
        return false;
    }
    // HC' = ~(~HC + ~m + m'), RFC 1624 eqn. 3.
    let sum = (!ip_sum) as u64 + (!total) as u64 + new_total as u64;
    cursor::write(ctx, l3 + 2, new_total.to_be_bytes())
        && cursor::write(ctx, l3 + 10, csum::fold(sum).to_be_bytes())
        && cursor::write(ctx, off - UDP_HEADER + 4, new_udp.to_be_bytes())
        && cursor::write(ctx, off - UDP_HEADER + 6, [0u8; 2])
}

enum Copy {
    Done,
    /// No token, or no room in the ring.
    Overload,
    /// The frame ends before the payload the IP lengths announce.
    Short,
}

/// Copies the datagram's UDP payload (up to COPY_CAP bytes) with its flow to QUIC_RING.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn copy(ctx: &XdpContext, flow: &QuicFlow, off: usize, len: u32, epoch: u32, cost: u64, burst: u64, lease: u64) -> Copy {
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    // No reader (the daemon's lease ran out): a copy would only fill the ring.
    if now > lease || !take_token(now, cost, burst) {
        return Copy::Overload;
    }
    let Some(mut entry) = QUIC_RING.reserve::<QuicCopy>(0) else { return Copy::Overload };
    let n = if len as usize > COPY_CAP { COPY_CAP as u32 } else { len };
    let rec = entry.as_mut_ptr();
    // SAFETY: the reservation holds a whole QuicCopy; fields are written before submit.
    unsafe {
        (*rec).flow = *flow;
        (*rec).len = n;
        (*rec).wire_len = len;
        (*rec).epoch = epoch;
    }
    // (Checked again in this form so the verifier sees 1 ≤ n ≤ COPY_CAP at the helper call.)
    if n == 0 || n as usize > COPY_CAP {
        entry.discard(0);
        return Copy::Short;
    }
    // SAFETY: payload is COPY_CAP bytes of the reservation and n ≤ COPY_CAP.
    let dst = unsafe { (*rec).payload.as_mut_ptr() };
    if !cursor::load_bytes(ctx, off, dst, n) {
        entry.discard(0);
        return Copy::Short;
    }
    entry.submit(0);
    Copy::Done
}

/// Takes one copy's credit from this CPU's bucket, refilled by the time elapsed since its last
/// use and capped at `burst`.
#[inline(always)]
fn take_token(now: u64, cost: u64, burst: u64) -> bool {
    let Some(b) = QUIC_BUCKET.get_ptr_mut(0) else { return false };
    // SAFETY: per-CPU value, only this CPU writes it while this program runs.
    let b = unsafe { &mut *b };
    let elapsed = now.wrapping_sub(b.last_ns);
    let mut credit = if elapsed > burst { burst } else { b.credit_ns + elapsed };
    if credit > burst {
        credit = burst;
    }
    b.last_ns = now;
    if credit < cost {
        b.credit_ns = credit;
        return false;
    }
    b.credit_ns = credit - cost;
    true
}
