//! The TCP side of name blocking: flows already blocked, ClientHellos read to their server name
//! (tls.rs) and HTTP request heads read to their host (http.rs), across segments, judged by
//! names.rs.
//!
//! Out-of-order segments while a ClientHello is incomplete are dropped rather than buffered: the
//! client's TCP resends them in order after the gap is filled, which costs that rare connection
//! one retransmission timeout, while the program needs no reassembly memory. Retransmitted and
//! overlapping bytes already read are skipped: the first copy seen is the one judged, as the
//! server's TCP keeps the first copy too.
//!
//! Data that arrives before the segment holding a flow's first byte would pass as ordinary data
//! and the reader the first segment then starts would wait for bytes the server already holds:
//! a ClientHello sent in reverse order (an evasion) would never be judged. So a client's SYN
//! marks its flow's first data byte as awaited (flow.rs `head_seen`, one slot per filter
//! bucket), and until that byte has passed, data ahead of it is dropped (`*_out_of_order`):
//! the client's TCP resends it after the first segment, in order, and it is read. The wait is
//! bounded (HEAD_WAIT_NS), so a first segment that never comes past this box cannot stall the
//! flow for longer; a flow whose SYN was not seen (or whose slot another flow held) is read as
//! before. The allowed paths do not pay for this: a bare ACK pays one flag test, data pays the
//! slot's lookup only when its bucket is busy anyway.

use aya_ebpf::programs::XdpContext;
use blocker_common::{
    config::FLAG_STOP_PAGE,
    verdict::{Action, Reason},
};

use aya_ebpf::helpers::bpf_ktime_get_ns;

use crate::{
    decide::{Verdict, block_action},
    flow::{self, FlowKey, FlowState, HEAD_AHEAD, KIND_BLOCKED, PROTO_HTTP},
    http,
    maps::TLS_SCRATCH,
    names::{self, BUF, NameMatch, NameScratch},
    parse::Packet,
    reader::Outcome,
    tls,
    tls_quick::{self, Quick},
};

/// Segments of a flow dropped as ahead of a gap before its reader gives up: enough for ordinary
/// reordering and a retransmission, few enough that a gap nobody will fill costs the
/// connection two retransmission timeouts, not the connection.
const MAX_AHEAD_DROPS: u32 = 2;

#[inline(always)]
fn block(pkt: &Packet, flags: u32, reason: Reason, entry: u32) -> Verdict {
    Verdict { action: block_action(pkt, flags), reason, entry }
}

#[inline(always)]
fn pass(reason: Reason, entry: u32) -> Verdict {
    Verdict { action: Action::Pass, reason, entry }
}

/// Judges the server name a reader has finished.
#[inline(always)]
fn judge_name(st: &FlowState, slot: u32) -> NameMatch {
    let Some(s) = names::scratch() else { return NameMatch::NotListed };
    // Map memory to map memory (no room on the 512-byte BPF stack for a name), in 8-byte words
    // and only as many as the name needs: a plain slice copy becomes a byte-by-byte memcpy call.
    let words = ((st.name_len as usize) + 7) / 8;
    let src = st.name.as_ptr() as *const u64;
    let dst = s.bytes.as_mut_ptr() as *mut u64;
    let mut i = 0;
    while i < BUF / 8 {
        if i >= words {
            break;
        }
        // SAFETY: both buffers are 8-aligned (FlowState, NameScratch are align(8), the name
        // and the bytes at offsets divisible by 8) and hold at least BUF bytes; i < BUF / 8.
        unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
        i += 1;
    }
    s.len = st.name_len;
    judge_loaded(s, slot)
}

/// Judges the dotted name loaded into the scratch.
#[inline(always)]
fn judge_loaded(s: &mut NameScratch, slot: u32) -> NameMatch {
    if !names::split_dotted(s) {
        return NameMatch::Invalid;
    }
    names::match_labels(s, slot)
}

/// What a finished name means for the flow and this segment.
#[inline(always)]
fn conclude(key: &FlowKey, st: &mut FlowState, stored: bool, pkt: &Packet, flags: u32, slot: u32) -> Verdict {
    let m = judge_name(st, slot);
    conclude_match(key, st, stored, pkt, flags, m)
}

/// What the judgement `m` of a finished name means for the flow and this segment.
#[inline(always)]
fn conclude_match(key: &FlowKey, st: &mut FlowState, stored: bool, pkt: &Packet, flags: u32, m: NameMatch) -> Verdict {
    let reason = if st.proto == PROTO_HTTP { Reason::HttpHost } else { Reason::Sni };
    match m {
        NameMatch::Blocked(id) => {
            st.kind = KIND_BLOCKED;
            st.entry_id = id;
            if !stored {
                flow::insert(key, st);
            }
            if reason == Reason::HttpHost && flags & FLAG_STOP_PAGE != 0 {
                Verdict { action: Action::StopPage, reason, entry: id }
            } else {
                block(pkt, flags, reason, id)
            }
        }
        m => {
            if stored {
                flow::remove(key);
            }
            match m {
                NameMatch::Allowed(id) => pass(Reason::AllowList, id),
                // Only a shadow list has the name: the flow goes on as if it were not listed
                // (never remembered as blocked); this segment counts what a block would be.
                NameMatch::Shadow(id) => Verdict { action: Action::Shadow, reason, entry: id },
                NameMatch::Invalid => pass(unparsed(st), 0),
                _ => pass(Reason::NoMatch, 0),
            }
        }
    }
}

#[inline(always)]
fn pending(st: &FlowState) -> Reason {
    if st.proto == PROTO_HTTP { Reason::HttpPending } else { Reason::TlsPending }
}

#[inline(always)]
fn unparsed(st: &FlowState) -> Reason {
    if st.proto == PROTO_HTTP { Reason::HttpUnparsed } else { Reason::TlsUnparsed }
}

#[inline(always)]
fn feed(ctx: &XdpContext, st: &mut FlowState, off: usize, len: u32) -> Outcome {
    if st.proto == PROTO_HTTP { http::feed(ctx, st, off, len) } else { tls::feed(ctx, st, off, len) }
}

/// A reader in the scratch that needs the next segment: parked if it waits at an extension
/// header, else in FLOWS.
#[inline(always)]
fn wait(key: &FlowKey, st: &FlowState) -> Verdict {
    if !flow::park(key, st) {
        flow::insert(key, st);
    }
    pass(pending(st), 0)
}

/// A client's SYN (no ACK, no payload): a new connection, so whatever was kept for an earlier
/// one on the same ports goes, and its first data byte is awaited from now on. A separate BPF
/// function, like `judge`, off the path of every other packet.
#[inline(never)]
pub fn syn(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    let not_judged = pass(Reason::NoMatch, 0);
    let Some(l4) = pkt.tcp() else { return not_judged };
    let Some(key) = flow::key_of(ctx, pkt, l4.sport, l4.dport) else { return not_judged };
    flow::forget_earlier(&key);
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    flow::head_seen(&key, l4.seq.wrapping_add(1), now);
    not_judged
}

/// A client's FIN without payload. On a flow remembered as blocked it is answered with a reset
/// and not passed: after the 451 that stood in for the server (a listed Host), the server never
/// got the request, and the FIN, acknowledging data the server never sent, would only start an
/// exchange of ACKs and retransmitted FINs with it while the client's side waits to close (the
/// server's side waits for its own timeout either way: ARCHITECTURE.md, known limit). Any other
/// FIN passes. A separate BPF function, off the path of every other packet.
#[inline(never)]
pub fn fin(ctx: &XdpContext, pkt: &Packet, flags: u32) -> Verdict {
    let not_judged = pass(Reason::NoMatch, 0);
    let Some(l4) = pkt.tcp() else { return not_judged };
    let Some(key) = flow::key_of(ctx, pkt, l4.sport, l4.dport) else { return not_judged };
    let (Some(p), _) = flow::lookup(&key) else { return not_judged };
    // SAFETY: a valid LRU value pointer for the duration of this program run.
    let st = unsafe { &*p };
    if st.kind == KIND_BLOCKED { block(pkt, flags, Reason::FlowBlocked, st.entry_id) } else { not_judged }
}

/// Whether a segment with payload may concern `judge`: its flow's bucket may hold state, or
/// its first bytes may start a ClientHello or an HTTP request (looser tests than `judge`'s,
/// which decides). Most data segments are the middle of a flow nobody follows: `blocker`
/// answers them itself, and tail-calls `blocker_tcp` (`judge`) only for the others.
#[inline(always)]
pub fn may_concern(ctx: &XdpContext, pkt: &Packet) -> bool {
    let Some(l4) = pkt.tcp() else { return true };
    let Some(key) = flow::key_of(ctx, pkt, l4.sport, l4.dport) else { return true };
    if flow::bucket_busy(&key) || l4.payload_len < 4 {
        // A shorter segment goes to `judge` as well: the four bytes read below could be the
        // frame's padding.
        return true;
    }
    let Some(w) = crate::cursor::read::<[u8; 4]>(ctx, (l4.off + l4.hdr_len) as usize) else { return true };
    (w[0] == tls::HANDSHAKE && w[1] == 3) || http::may_start_request(&w)
}

/// Judges a TCP segment that belongs to a followed flow or starts a ClientHello or an HTTP
/// request; anything else passes as not listed. `blocker_tcp` runs it for the segments
/// `may_concern` lets through. (Returns a plain `Verdict`: a BPF function's BTF signature
/// cannot carry a Rust `Option`.) A separate BPF function: inlined, the program's frame and
/// those of the loop callbacks below it would exceed the 512 bytes of stack a call chain may
/// use.
#[inline(never)]
pub fn judge(ctx: &XdpContext, pkt: &Packet, flags: u32, slot: u32) -> Verdict {
    let not_judged = pass(Reason::NoMatch, 0);
    let Some(l4) = pkt.tcp() else { return not_judged };
    // Segments without payload carry no name and cannot complete a request; a blocked flow's
    // bare ACKs may pass (its data does not), which keeps the common ACK at its lowest cost.
    if l4.payload_len == 0 {
        return not_judged;
    }
    let Some(key) = flow::key_of(ctx, pkt, l4.sport, l4.dport) else { return not_judged };
    let payload_off = (l4.off + l4.hdr_len) as usize;
    let len = l4.payload_len;

    let n = flow::count(&key);
    // A reader parked at an extension header (flow.rs `park`), taken out into the scratch: the
    // segment it waits for is read on below, as a first segment is, without a FLOWS entry.
    let Some(scratch) = TLS_SCRATCH.get_ptr_mut(0) else { return not_judged };
    // SAFETY: per-CPU scratch, used only by this program run on this CPU.
    let parked = flow::may_be_parked(n) && flow::unpark(&key, unsafe { &mut *scratch });
    // SAFETY: as above; the reference ends before the scratch is borrowed again.
    if parked && l4.seq != unsafe { (*scratch).next_seq } {
        // Out of order, or a retransmission: the general path, from FLOWS.
        flow::insert(&key, unsafe { &*scratch });
    }
    let parked = parked && l4.seq == unsafe { (*scratch).next_seq };
    // A FLOWS entry or an awaited head may be this flow's.
    let busy = !parked && n != 0;
    let state = if busy { flow::get(&key) } else { None };
    if let Some(p) = state {
        // SAFETY: a valid LRU value pointer for the duration of this program run.
        let st = unsafe { &mut *p };
        if st.kind == KIND_BLOCKED {
            return block(pkt, flags, Reason::FlowBlocked, st.entry_id);
        }
        let ahead = l4.seq.wrapping_sub(st.next_seq) as i32;
        if ahead > 0 {
            // A segment ahead of a gap: dropped so the client resends in order. Unless the
            // server already holds the gap's bytes (they passed before this reader started,
            // e.g. a hello's second segment arriving first): then the client never resends
            // them, so after a few drops the reader gives up and the flow passes (fail open).
            if st.ahead_drops >= MAX_AHEAD_DROPS {
                flow::remove(&key);
                return pass(unparsed(st), 0);
            }
            st.ahead_drops += 1;
            let reason = if st.proto == PROTO_HTTP { Reason::HttpOutOfOrder } else { Reason::TlsOutOfOrder };
            return Verdict { action: Action::Drop, reason, entry: 0 };
        }
        let seen = (-ahead) as u32;
        if seen >= len {
            // Entirely a retransmission of bytes already read.
            return pass(pending(st), 0);
        }
        st.next_seq = l4.seq.wrapping_add(len);
        let from = payload_off + seen as usize;
        let mut at = from;
        // The rest of the hello up to the name in this segment: read as in the first.
        if let (true, Some(s)) = (st.proto != PROTO_HTTP, names::scratch()) {
            match tls_quick::continue_hello(ctx, st, from, len - seen, s) {
                Quick::Name => {
                    let m = judge_loaded(s, slot);
                    return conclude_match(&key, st, true, pkt, flags, m);
                }
                Quick::Resume(p) => at = p,
                // The reader (its FLOWS entry) waits for the next segment.
                Quick::Wait => return pass(pending(st), 0),
                Quick::Start => {}
            }
        }
        return match feed(ctx, st, at, len - seen - (at - from) as u32) {
            Outcome::NeedMore => pass(pending(st), 0),
            Outcome::Name => conclude(&key, st, true, pkt, flags, slot),
            // No name at all (no SNI, no Host, an address literal): nothing to judge by name.
            Outcome::NoName => {
                flow::remove(&key);
                pass(Reason::NoMatch, 0)
            }
            Outcome::Unparsed => {
                flow::remove(&key);
                pass(unparsed(st), 0)
            }
        };
    }

    if busy {
        // SAFETY: a plain helper call.
        let now = unsafe { bpf_ktime_get_ns() };
        if flow::head_check(&key, l4.seq, now) == HEAD_AHEAD {
            // Data ahead of the flow's first byte, which has not passed: whatever it holds, it
            // is not read before the start of the stream is (the client resends it in order).
            let reason = if l4.dport == 80 { Reason::HttpOutOfOrder } else { Reason::TlsOutOfOrder };
            return Verdict { action: Action::Drop, reason, entry: 0 };
        }
    }

    // SAFETY: per-CPU scratch, used only by this program run on this CPU.
    let st = unsafe { &mut *scratch };
    let Some(s) = names::scratch() else { return not_judged };
    // A parked reader goes on where it stopped; a ClientHello's first segment is read up to its
    // server name in straight code first (the common case). Then, where the name did not come,
    // the streaming reader from where that read stopped.
    let quick = if parked {
        st.next_seq = l4.seq.wrapping_add(len);
        tls_quick::continue_hello(ctx, st, payload_off, len, s)
    } else if tls::starts_client_hello(ctx, payload_off, len) {
        tls::reset(st, l4.seq);
        st.next_seq = l4.seq.wrapping_add(len);
        tls_quick::read_hello(ctx, payload_off, len, s, st)
    } else if http::starts_request(ctx, payload_off, len) {
        http::reset(st, l4.seq);
        st.next_seq = l4.seq.wrapping_add(len);
        Quick::Start
    } else {
        return not_judged;
    };
    // Where in the segment the streaming reader starts.
    let mut from = payload_off;
    match quick {
        Quick::Name => {
            let m = judge_loaded(s, slot);
            return conclude_match(&key, st, false, pkt, flags, m);
        }
        Quick::Resume(at) => from = at,
        Quick::Wait => return wait(&key, st),
        Quick::Start => {}
    }
    let left = len - (from - payload_off) as u32;
    match feed(ctx, st, from, left) {
        Outcome::NeedMore => wait(&key, st),
        Outcome::Name => conclude(&key, st, false, pkt, flags, slot),
        Outcome::NoName => pass(Reason::NoMatch, 0),
        Outcome::Unparsed => pass(unparsed(st), 0),
    }
}
