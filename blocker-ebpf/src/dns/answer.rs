//! Rewriting a judged query (dns.rs found its name listed) into its answer, in place, for
//! XDP_TX.
//!
//! The frame keeps its Ethernet header and VLAN tags (MACs swapped, so the answer leaves on the
//! same VLAN), then a fresh option-less IPv4 or extension-less IPv6 header (addresses swapped),
//! then the UDP datagram: port 53 back to the client's port, the DNS header, the question as the
//! client sent it, the answer record, the OPT record.
//!
//! The new IP header and UDP datagram are assembled in the name scratch (map memory), whose name
//! is no longer needed, and stored into the frame with one helper call: the datagram may move
//! (IP options and extension headers are dropped) and the frame may grow. Addresses reach their
//! swapped places and the MACs trade places by copies through the scratch, and the kernel's
//! helper sums the checksums there. Keeping the bytes out of registers keeps this function's
//! stack small: the whole call chain shares 512 bytes.
//!
//! Layout of the scratch while an answer is built:
//!   0..40     the IP header: IPv6 in 0..40, IPv4 in 20..40, so the datagram always starts at 40
//!   40..      UDP header, DNS header, question, answer, OPT, zeros up to a multiple of 4
//!   MACS..    the query's destination and source MACs

use aya_ebpf::{
    helpers::generated::{bpf_csum_diff, bpf_xdp_load_bytes, bpf_xdp_store_bytes},
    programs::XdpContext,
};
use blocker_common::dns::{HAS_V4, HAS_V6, MODE_NXDOMAIN};

use super::{CLASS_IN, DNS_PORT, HEADER, TYPE_OPT, UDP_HEADER};
use crate::{
    csum::fold,
    cursor::{MAX_OFF, frame_len},
    maps::{DNS_CONFIG, PACKET},
    names::{self, BUF_ALLOC},
    parse::IPPROTO_UDP,
};

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

// Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for CD).
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
const CD: u16 = 0x0010;
const QR: u16 = 0x8000;
const RCODE_NXDOMAIN: u16 = 3;

/// The UDP payload size our OPT record advertises (the DNS flag day 2020 value).
const EDNS_UDP_SIZE: u16 = 1232;
const OPTION_EDE: u16 = 15;
/// An OPT record with one EDE option and no extra text.
const OPT_LEN: usize = 11 + 6;
const A_LEN: usize = 16;
const AAAA_LEN: usize = 28;
/// The longest question: a 255-byte QNAME (RFC 1035 §3.1), QTYPE, QCLASS.
const MAX_QUESTION: usize = 255 + 4;

const TTL: u8 = 64;

const UDP_AT: usize = 40;
const DNS_AT: usize = UDP_AT + UDP_HEADER;
const QUESTION_AT: usize = DNS_AT + HEADER;
const MACS: usize = 480;
// The longest datagram, padded, ends before the MACs, which end inside the buffer.
const _: () = assert!(QUESTION_AT + MAX_QUESTION + AAAA_LEN + OPT_LEN + 4 <= MACS && MACS + 12 <= BUF_ALLOC);

/// Copies `len` packet bytes at `off` into the scratch at `AT`. The checks keep the copy
/// provably inside the buffer for the verifier.
#[inline(always)]
fn load<const AT: usize>(ctx: &XdpContext, off: usize, m: &mut [u8; BUF_ALLOC], len: usize) -> bool {
    if len == 0 || len > BUF_ALLOC - AT {
        return false;
    }
    // SAFETY: AT + len <= BUF_ALLOC; the helper checks the packet bounds itself.
    unsafe { bpf_xdp_load_bytes(ctx.ctx, off as u32, m.as_mut_ptr().add(AT).cast(), len as u32) == 0 }
}

/// Copies `len` scratch bytes at `AT` into the packet at `off`.
#[inline(always)]
fn store<const AT: usize>(ctx: &XdpContext, off: usize, m: &mut [u8; BUF_ALLOC], len: usize) -> bool {
    if len == 0 || len > BUF_ALLOC - AT {
        return false;
    }
    // SAFETY: AT + len <= BUF_ALLOC; the helper checks the packet bounds itself.
    unsafe { bpf_xdp_store_bytes(ctx.ctx, off as u32, m.as_mut_ptr().add(AT).cast(), len as u32) == 0 }
}

/// Writes `v` into the scratch at `off`.
#[inline(always)]
fn put<const N: usize>(m: &mut [u8; BUF_ALLOC], off: usize, v: [u8; N]) -> bool {
    if off > BUF_ALLOC - N {
        return false;
    }
    // SAFETY: off + N <= BUF_ALLOC.
    unsafe { core::ptr::write_unaligned(m.as_mut_ptr().add(off) as *mut [u8; N], v) };
    true
}

/// The big-endian u16 at `off` in the scratch.
#[inline(always)]
fn get16(m: &[u8; BUF_ALLOC], off: usize) -> Option<u16> {
    if off > BUF_ALLOC - 2 {
        return None;
    }
    // SAFETY: off + 2 <= BUF_ALLOC.
    Some(u16::from_be_bytes(unsafe { core::ptr::read_unaligned(m.as_ptr().add(off) as *const [u8; 2]) }))
}

/// The ones' complement sum of the big-endian 16-bit words of `len` (a multiple of 4) scratch
/// bytes at `AT`, not yet folded into a checksum. The helper sums words as the CPU loads them
/// (little endian); the byte-swapped fold of that is the big-endian sum (RFC 1071 §2 B).
#[inline(always)]
fn word_sum<const AT: usize>(m: &mut [u8; BUF_ALLOC], len: usize) -> Option<u64> {
    if len > BUF_ALLOC - AT {
        return None;
    }
    let len = (len as u32) & 0x1fc;
    // SAFETY: reads len <= BUF_ALLOC - AT bytes of the scratch; no `from` buffer.
    let partial = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, m.as_mut_ptr().add(AT).cast(), len, 0) };
    if partial < 0 {
        return None;
    }
    Some((!fold(partial as u32 as u64)).swap_bytes() as u64)
}

/// Rewrites the query into its answer. False if it cannot; the caller then drops the query, so
/// the name stays blocked and the client's resolver retries. Not inlined, so that its locals
/// take stack only while it runs. Values go into the scratch as soon as they are known, so that
/// few are held in registers across helper calls (each such value costs a stack slot).
#[inline(never)]
pub fn rewrite_into_answer(ctx: &XdpContext) -> bool {
    let Some(p) = PACKET.get_ptr(0) else { return false };
    // SAFETY: per-CPU scratch the parser filled for this frame.
    let pkt = unsafe { &*p };
    let Some(l4) = pkt.udp() else { return false };
    let Some(cfg) = DNS_CONFIG.get(0) else { return false };
    let Some(s) = names::scratch() else { return false };
    let l3 = pkt.l3();
    let v6 = pkt.v6 != 0;
    let dns = (l4.off as usize + UDP_HEADER) & MAX_OFF;

    // The query's header and question (and the fixed part of its OPT record) go straight into
    // their places in the answer; what the answer depends on is read back from there. Nothing
    // in the frame is written before everything is read. judge_query() checked all of it; the
    // name scratch still holds the QNAME's wire length.
    let qname = s.len as usize;
    let question = qname + 4;
    if question < 5 || question > MAX_QUESTION {
        return false;
    }
    let m = &mut s.bytes;
    if !load::<DNS_AT>(ctx, dns, m, HEADER) {
        return false;
    }
    let edns = m[DNS_AT + 11] != 0;
    if !load::<QUESTION_AT>(ctx, dns + HEADER, m, question + if edns { 11 } else { 0 }) {
        return false;
    }
    let (Some(qtype), Some(opt_flags)) = (get16(m, QUESTION_AT + qname), get16(m, QUESTION_AT + question + 7)) else {
        return false;
    };
    // The OPT record's flags: DO is the top bit (RFC 6891 §6.1.4).
    let do_bit = if edns { (opt_flags >> 8) as u8 & 0x80 } else { 0 };
    let qflags = u16::from_be_bytes([m[DNS_AT + 2], m[DNS_AT + 3]]);
    let nxdomain = cfg.mode == MODE_NXDOMAIN;
    let answer = if nxdomain {
        0
    } else if qtype == TYPE_A && cfg.flags & HAS_V4 != 0 {
        A_LEN
    } else if qtype == TYPE_AAAA && cfg.flags & HAS_V6 != 0 {
        AAAA_LEN
    } else {
        0
    };

    // UDP: ports (length and checksum below). DNS: the query's ID, then flags, QDCOUNT 1,
    // ANCOUNT, NSCOUNT 0, ARCOUNT.
    let port = DNS_PORT.to_be_bytes();
    let client = l4.sport.to_be_bytes();
    let rflags = (QR | (qflags & (RD | CD)) | RA | if nxdomain { RCODE_NXDOMAIN } else { 0 }).to_be_bytes();
    let ancount = (answer != 0) as u8;
    let udp = [port[0], port[1], client[0], client[1], 0, 0, 0, 0];
    let dns_rest = [rflags[0], rflags[1], 0, 1, 0, ancount, 0, 0, 0, edns as u8];
    if !put(m, UDP_AT, udp) || !put(m, DNS_AT + 2, dns_rest) {
        return false;
    }
    let mut end = QUESTION_AT + question;
    let ttl = cfg.ttl.to_be_bytes();
    if answer == A_LEN {
        // NAME: a pointer to the question's name at offset 12 of the message.
        let a = cfg.v4;
        let rr = [0xc0, 0x0c, 0, TYPE_A as u8, 0, CLASS_IN as u8, ttl[0], ttl[1], ttl[2], ttl[3], 0, 4, a[0], a[1], a[2], a[3]];
        if !put(m, end, rr) {
            return false;
        }
    } else if answer == AAAA_LEN {
        let rr = [0xc0, 0x0c, 0, TYPE_AAAA as u8, 0, CLASS_IN as u8, ttl[0], ttl[1], ttl[2], ttl[3], 0, 16];
        if !put(m, end, rr) || !put(m, end + 12, cfg.v6) {
            return false;
        }
    }
    end += answer;
    if edns {
        let size = EDNS_UDP_SIZE.to_be_bytes();
        let ede = cfg.ede_code.to_be_bytes();
        // Root name, TYPE OPT, CLASS = our payload size, ext-rcode 0, version 0, DO as asked,
        // RDLENGTH 6: OPTION-CODE 15, OPTION-LENGTH 2, INFO-CODE.
        let opt = [0, 0, TYPE_OPT as u8, size[0], size[1], 0, 0, do_bit, 0, 0, 6, 0, OPTION_EDE as u8, 0, 2, ede[0], ede[1]];
        if !put(m, end, opt) {
            return false;
        }
        end += OPT_LEN;
    }
    let udp_len = (end - UDP_AT) as u16;
    // Zeros for the checksum's last word.
    if !put(m, end, [0u8; 4]) || !put(m, UDP_AT + 4, udp_len.to_be_bytes()) {
        return false;
    }

    // The IP header, with the query's addresses copied straight into their swapped places, and
    // the UDP checksum over the pseudo-header's addresses and the datagram.
    let (ip_at, addr_sum) = if v6 {
        let h = [0x60, 0, 0, 0, (udp_len >> 8) as u8, udp_len as u8, IPPROTO_UDP, TTL];
        if !put(m, 0, h) || !load::<24>(ctx, l3 + 8, m, 16) || !load::<8>(ctx, l3 + 24, m, 16) {
            return false;
        }
        (0, word_sum::<8>(m, 32))
    } else {
        let total = (20 + udp_len).to_be_bytes();
        // Version/IHL 0x45 (options dropped), identification 0, DF, TTL, protocol, checksum 0.
        let h = [0x45, 0, total[0], total[1], 0, 0, 0x40, 0, TTL, IPPROTO_UDP, 0, 0];
        if !put(m, 20, h) || !load::<36>(ctx, l3 + 12, m, 4) || !load::<32>(ctx, l3 + 16, m, 4) {
            return false;
        }
        let Some(ip_sum) = word_sum::<20>(m, 20) else { return false };
        if !put(m, 30, fold(ip_sum).to_be_bytes()) {
            return false;
        }
        (20, word_sum::<32>(m, 8))
    };
    let (Some(addr_sum), Some(dgram_sum)) = (addr_sum, word_sum::<UDP_AT>(m, (end - UDP_AT + 3) & !3)) else {
        return false;
    };
    let csum = fold(addr_sum + IPPROTO_UDP as u64 + udp_len as u64 + dgram_sum);
    // A computed checksum of zero is sent as all ones (RFC 768; mandatory over IPv6).
    let csum = if csum == 0 { 0xffff } else { csum };
    if !put(m, UDP_AT + 6, csum.to_be_bytes()) || !load::<MACS>(ctx, 0, m, 12) {
        return false;
    }

    let delta = (l3 + end - ip_at) as i64 - frame_len(ctx) as i64;
    // Everything after the link-layer header was saved above; every access below derives
    // its pointer from ctx afresh.
    if !crate::resize::resize(ctx, l3, delta) {
        return false;
    }
    let ok = store::<{ MACS + 6 }>(ctx, 0, m, 6) && store::<MACS>(ctx, 6, m, 6);
    ok && if v6 { store::<0>(ctx, l3, m, end) } else { store::<20>(ctx, l3, m, end - 20) }
}
