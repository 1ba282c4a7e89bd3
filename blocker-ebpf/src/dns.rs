//! DNS: a standard query to UDP port 53 for a listed name is rewritten in place into its answer
//! and sent back to the client (XDP_TX), as a resolver would answer it: same ID, RD and CD
//! echoed, the question echoed byte for byte (so DNS 0x20 case randomisation round-trips), then
//! A/AAAA pointing at the stop page, NODATA for other types, or NXDOMAIN, by configuration; an
//! Extended DNS Error (RFC 8914) when the query carried EDNS.
//!
//! Only a query we fully understand is answered: one question, no answer or authority records,
//! at most one additional record which must be OPT, lengths that agree to the byte, a name
//! without compression pointers. Anything else passes untouched (`DnsUnparsed`): a wrong answer
//! is worse than none, and the resolver behind us still answers. An unlisted name passes
//! untouched too, with nothing written, and so does a name only a list in shadow mode has
//! (counted as `shadow`).
//!
//! Judging (here, called by decide.rs) only reads; the rewrite (answer.rs, called by
//! verdict.rs) writes. Between the two, the name scratch (names.rs) holds the question's name:
//! the rewrite takes its wire length from there.

mod answer;

use aya_ebpf::programs::XdpContext;
use blocker_common::{
    dns::ENABLED,
    verdict::{Action, Reason},
};

pub use answer::rewrite_into_answer;

use crate::{
    cursor::{MAX_OFF, frame_len, read, read_be16},
    decide::Verdict,
    maps::{DNS_CONFIG, PACKET},
    names::{self, NameMatch},
    parse::Packet,
};

pub const DNS_PORT: u16 = 53;

const HEADER: usize = 12;
const UDP_HEADER: usize = 8;
/// Longest query we judge. Plain DNS queries are far shorter; the bound keeps every offset we
/// compute small. A longer one passes as unparsed.
const MAX_QUERY: u32 = 4096;

const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

// Header flag bits (RFC 1035 §4.1.1).
const QR: u16 = 0x8000;
const OPCODE: u16 = 0x7800;
const TC: u16 = 0x0200;

/// Judges a UDP datagram to port 53 when answering is enabled; None for anything else, which
/// decide.rs then judges as usual.
#[inline(always)]
pub fn judge(ctx: &XdpContext, pkt: &Packet, slot: u32) -> Option<Verdict> {
    if pkt.udp()?.dport != DNS_PORT {
        return None;
    }
    if !DNS_CONFIG.get(0).is_some_and(|c| c.flags & ENABLED != 0) {
        return None;
    }
    Some(judge_query(ctx, slot))
}

#[inline(always)]
fn unparsed() -> Verdict {
    Verdict::pass(Reason::DnsUnparsed)
}

/// Judges the query in the datagram. Not inlined: its locals then take stack only while it
/// runs, not in the frame that every packet's path and every loop callback sits on. (Returns a
/// plain `Verdict`: a BPF function's signature cannot carry a Rust `Option`.)
#[inline(never)]
fn judge_query(ctx: &XdpContext, slot: u32) -> Verdict {
    let Some(p) = PACKET.get_ptr(0) else { return Verdict::pass(Reason::Internal) };
    // SAFETY: per-CPU scratch the parser filled for this frame.
    let pkt = unsafe { &*p };
    let Some(l4) = pkt.udp() else { return unparsed() };
    let dns = (l4.off as usize + UDP_HEADER) & MAX_OFF;
    let len = l4.payload_len;
    if len < (HEADER + 1 + 4) as u32 || len > MAX_QUERY {
        return unparsed();
    }
    // The UDP length must agree with the IP length (a first fragment, a padded or cut
    // datagram does not), and the whole message must be in the frame.
    if read_be16(ctx, l4.off as usize + 4) != Some(len as u16 + UDP_HEADER as u16) {
        return unparsed();
    }
    let end = dns + len as usize;
    if end as u64 > frame_len(ctx) {
        return unparsed();
    }
    let Some(h) = read::<[u8; HEADER]>(ctx, dns) else { return unparsed() };
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let qdcount = u16::from_be_bytes([h[4], h[5]]);
    let ancount = u16::from_be_bytes([h[6], h[7]]);
    let nscount = u16::from_be_bytes([h[8], h[9]]);
    let arcount = u16::from_be_bytes([h[10], h[11]]);
    // A standard query, not truncated, with exactly one question and nothing but an optional
    // OPT record after it.
    if flags & (QR | OPCODE | TC) != 0 || qdcount != 1 || ancount != 0 || nscount != 0 || arcount > 1 {
        return unparsed();
    }

    let Some(s) = names::scratch() else { return Verdict::pass(Reason::Internal) };
    if !names::load_wire_name(ctx, s, dns + HEADER, len - HEADER as u32) {
        return unparsed();
    }
    let qend = dns + HEADER + s.len as usize;
    if qend + 4 > end {
        return unparsed();
    }
    let Some(qclass) = read_be16(ctx, qend + 2) else { return unparsed() };
    if qclass != CLASS_IN {
        return unparsed();
    }
    let rest = end - (qend + 4);
    if arcount == 0 {
        if rest != 0 {
            return unparsed();
        }
    } else {
        // OPT: root name, TYPE 41, CLASS = payload size, TTL = ext-rcode, version, flags;
        // RDLENGTH covers the options, which must end where the message ends.
        let Some(opt) = read::<[u8; 11]>(ctx, qend + 4) else { return unparsed() };
        let rtype = u16::from_be_bytes([opt[1], opt[2]]);
        let rdlen = u16::from_be_bytes([opt[9], opt[10]]) as usize;
        if opt[0] != 0 || rtype != TYPE_OPT || opt[6] != 0 || 11 + rdlen != rest {
            return unparsed();
        }
    }

    if s.nlabels == 0 {
        // A query for the root name: valid, and never listed.
        return Verdict::pass(Reason::NoMatch);
    }
    match names::match_labels(s, slot) {
        NameMatch::Blocked(entry) => Verdict { action: Action::DnsAnswer, reason: Reason::DnsName, entry },
        // Would be answered, were its list enforced: the query passes untouched, counted.
        NameMatch::Shadow(entry) => Verdict { action: Action::Shadow, reason: Reason::DnsName, entry },
        NameMatch::Allowed(entry) => Verdict { action: Action::Pass, reason: Reason::AllowList, entry },
        NameMatch::NotListed => Verdict::pass(Reason::NoMatch),
        NameMatch::Invalid => unparsed(),
    }
}
