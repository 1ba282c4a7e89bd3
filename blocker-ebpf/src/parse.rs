//! Header parsing: Ethernet, up to two VLAN tags, IPv4 (options, fragments), IPv6 (bounded
//! extension-header walk), TCP and UDP. Parsing only describes the frame; decide.rs judges it.
//!
//! The L3 header is required: without a destination there is nothing to judge and the frame
//! passes. The L4 header is optional: a non-first fragment, an unknown protocol or a truncated
//! L4 header leaves `l4` empty and the frame is judged by its addresses alone.

use aya_ebpf::programs::XdpContext;

use blocker_common::config::Config;

use crate::{
    cursor::{MAX_OFF, read, read_be16, read_pair, span},
    decide::Verdict,
    looping::{BREAK, CONTINUE, repeat},
    maps::EXT_WALK,
};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// Pre-standard S-tag TPIDs some switches still use for QinQ, read like 802.1ad.
const ETH_P_QINQ1: u16 = 0x9100;
const ETH_P_QINQ2: u16 = 0x9200;

/// A VLAN tag's TPID: 802.1Q, 802.1ad, or a pre-standard S-tag.
#[inline(always)]
fn is_tag(t: u16) -> bool {
    t == ETH_P_8021Q || t == ETH_P_8021AD || t == ETH_P_QINQ1 || t == ETH_P_QINQ2
}

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_DSTOPTS: u8 = 60;
const IPPROTO_MH: u8 = 135;

/// How many IPv6 extension headers we walk before giving up on finding L4.
pub const MAX_V6_EXT: usize = 8;
// `finals` is indexed with a mask.
const _: () = assert!(MAX_V6_EXT.is_power_of_two());

pub const TCP_FIN: u32 = 0x01;
pub const TCP_SYN: u32 = 0x02;
pub const TCP_RST: u32 = 0x04;
pub const TCP_PSH: u32 = 0x08;
pub const TCP_ACK: u32 = 0x10;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not IPv4 or IPv6.
    NotIp,
    /// A header is truncated or inconsistent.
    Malformed,
    /// A shape the parser does not follow (more than two VLAN tags).
    Unsupported,
}

/// The transport header, when there is one we could read.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct L4 {
    pub off: u32,
    /// Header length (TCP data offset; 8 for UDP): the payload starts at `off + hdr_len`.
    pub hdr_len: u32,
    pub sport: u16,
    pub dport: u16,
    /// TCP only (zero for UDP).
    pub tcp_flags: u32,
    pub seq: u32,
    pub ack: u32,
    /// Bytes of payload according to the IP lengths (not the frame length).
    pub payload_len: u32,
}

/// The description of a frame that parsing fills and deciding reads. It lives in a per-CPU
/// map (maps.rs PACKET), not on the 512-byte BPF stack, which the loop callbacks share.
#[repr(C, align(8))]
pub struct Packet {
    /// First and 8-aligned, so they are copied as words.
    pub dst6: [u8; 16],
    pub l3_off: u32,
    pub v6: u32,
    /// IPv4 destination in host order.
    pub dst4: u32,
    pub proto: u32,
    /// How many of `finals` hold a final destination.
    pub n_finals: u32,
    /// `l4` is valid.
    pub has_l4: u32,
    pub l4: L4,
    /// The final destinations of the IPv6 routing headers with segments left among the
    /// extension headers walked, in header order: each one a place the packet is delivered to.
    pub finals: [[u8; 16]; MAX_V6_EXT],
    /// What `blocker` hands `blocker_tcp` with a segment it tail-calls it for (decide.rs
    /// `Decision::Tcp`): the packet's configuration, so both programs judge one generation,
    /// and the verdict of a shadow prefix covering the destination (action Pass when none).
    pub cfg: Config,
    pub shadow: Verdict,
}

impl Packet {
    /// `dst6` as two 8-byte words (native order).
    #[inline(always)]
    pub fn dst6_words(&self) -> [u64; 2] {
        // SAFETY: dst6 is at offset 0 of an 8-aligned struct.
        unsafe { core::ptr::read(self.dst6.as_ptr() as *const [u64; 2]) }
    }

    #[inline(always)]
    pub fn l3(&self) -> usize {
        (self.l3_off as usize) & MAX_OFF
    }

    #[inline(always)]
    pub fn tcp(&self) -> Option<&L4> {
        if self.has_l4 != 0 && self.proto == IPPROTO_TCP as u32 { Some(&self.l4) } else { None }
    }

    #[inline(always)]
    pub fn udp(&self) -> Option<&L4> {
        if self.has_l4 != 0 && self.proto == IPPROTO_UDP as u32 { Some(&self.l4) } else { None }
    }
}

#[inline(always)]
pub fn parse(ctx: &XdpContext, p: &mut Packet) -> Result<(), ParseError> {
    let mut off = 12usize;
    let mut ethertype = read_be16(ctx, off).ok_or(ParseError::Malformed)?;
    // Up to two tags: 802.1Q, or an S-tag (802.1ad 0x88A8, or pre-standard 0x9100/0x9200)
    // outer + 802.1Q inner (QinQ). An untagged IPv4 frame is known after one comparison.
    if ethertype != ETH_P_IP && is_tag(ethertype) {
        off += 4;
        ethertype = read_be16(ctx, off).ok_or(ParseError::Malformed)?;
        if is_tag(ethertype) {
            off += 4;
            ethertype = read_be16(ctx, off).ok_or(ParseError::Malformed)?;
            if is_tag(ethertype) {
                return Err(ParseError::Unsupported);
            }
        }
    }
    p.l3_off = off as u32 + 2;
    p.n_finals = 0;
    p.has_l4 = 0;
    match ethertype {
        ETH_P_IP => parse_v4(ctx, p),
        ETH_P_IPV6 => parse_v6(ctx, p),
        _ => Err(ParseError::NotIp),
    }
}

#[inline(always)]
fn parse_v4(ctx: &XdpContext, p: &mut Packet) -> Result<(), ParseError> {
    let l3 = p.l3();
    let h = span::<20>(ctx, l3).ok_or(ParseError::Malformed)?;
    let vihl = h.u8(0);
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Err(ParseError::Malformed);
    }
    let total_len = h.be16(2) as usize;
    let frag = h.be16(6);
    let proto = h.u8(9);
    let dst4 = h.be32(16);
    // The options must be present too, or the header is truncated.
    if ihl > 20 {
        read_be16(ctx, l3 + ihl - 2).ok_or(ParseError::Malformed)?;
    }
    if total_len < ihl {
        return Err(ParseError::Malformed);
    }
    p.v6 = 0;
    p.dst4 = dst4;
    p.proto = proto as u32;
    // A non-first fragment carries no L4 header.
    if frag & 0x1fff == 0 {
        parse_l4(ctx, p, l3 + ihl, (total_len - ihl) as u32);
    }
    Ok(())
}

#[inline(always)]
fn parse_v6(ctx: &XdpContext, p: &mut Packet) -> Result<(), ParseError> {
    let l3 = p.l3();
    let h = span::<40>(ctx, l3).ok_or(ParseError::Malformed)?;
    if h.u8(0) >> 4 != 6 {
        return Err(ParseError::Malformed);
    }
    let payload_len = h.be16(4) as u32;
    let next = h.u8(6);
    p.dst6 = h.bytes16(24);
    p.v6 = 1;
    p.proto = next as u32;
    if !is_extension(next) {
        parse_l4(ctx, p, l3 + 40, payload_len);
        return Ok(());
    }
    // Only packets that carry extension headers pay for the walk.
    let w = walk_extensions(ctx, l3 + 40, next, p)?;
    p.proto = w.next as u32;
    if w.l4_reachable && payload_len >= w.ext_len {
        parse_l4(ctx, p, w.off, payload_len - w.ext_len);
    }
    Ok(())
}

#[inline(always)]
fn is_extension(next: u8) -> bool {
    matches!(next, IPPROTO_HOPOPTS | IPPROTO_DSTOPTS | IPPROTO_ROUTING | IPPROTO_MH | IPPROTO_AH | IPPROTO_FRAGMENT)
}

/// Where the IPv6 extension walk stands. Kept in per-CPU map memory, not on the stack, so that
/// the verifier checks the walk's callback once rather than once per header it might meet.
#[repr(C, align(8))]
pub struct ExtWalk {
    off: u32,
    ext_len: u32,
    next: u32,
    /// WALKING, FOUND (reached a non-extension header) or UNREACHABLE (cut, non-first fragment).
    state: u32,
    reserved: u32,
}

struct WalkResult {
    off: usize,
    ext_len: u32,
    next: u8,
    l4_reachable: bool,
}

const WALKING: u32 = 0;
const FOUND: u32 = 1;
const UNREACHABLE: u32 = 2;

struct WalkCtx {
    xdp: *mut aya_ebpf::bindings::xdp_md,
    w: *mut ExtWalk,
    /// Where the walk writes routing headers' final destinations.
    pkt: *mut Packet,
}

extern "C" fn ext_step(i: u64, c: *mut WalkCtx) -> i64 {
    // SAFETY: bpf_loop hands back the context walk_extensions() passed; the map value outlives it.
    let c = unsafe { &mut *c };
    let w = unsafe { &mut *c.w };
    let ctx = XdpContext::new(c.xdp);
    let off = (w.off as usize) & MAX_OFF;
    let next = w.next as u8;
    if !is_extension(next) {
        w.state = FOUND;
        return BREAK;
    }
    // The walk's bound: the (MAX_V6_EXT + 1)th iteration only looks whether the chain ended;
    // a header there is not read (not even a routing header's final destination).
    if i >= MAX_V6_EXT as u64 {
        return BREAK;
    }
    let Some((nh, hlen)) = read_pair(&ctx, off) else {
        w.state = UNREACHABLE;
        return BREAK;
    };
    let len = match next {
        IPPROTO_AH => (hlen as u32 + 2) * 4,
        IPPROTO_FRAGMENT => {
            let Some(frag) = read_be16(&ctx, off + 2) else {
                w.state = UNREACHABLE;
                return BREAK;
            };
            if frag & 0xfff8 != 0 {
                // A non-first fragment carries no L4 header.
                w.next = nh as u32;
                w.state = UNREACHABLE;
                return BREAK;
            }
            8
        }
        _ => (hlen as u32 + 1) * 8,
    };
    if next == IPPROTO_ROUTING {
        // SAFETY: the Packet (per-CPU map value) outlives the walk.
        let pkt = unsafe { &mut *c.pkt };
        let n = pkt.n_finals;
        // n < MAX_V6_EXT always (one per header walked); the mask is for the verifier.
        if n < MAX_V6_EXT as u32 && routing_final_destination(&ctx, off, hlen, &mut pkt.finals[(n as usize) & (MAX_V6_EXT - 1)]) {
            pkt.n_finals = n + 1;
        }
    }
    w.next = nh as u32;
    w.off += len;
    w.ext_len += len;
    CONTINUE
}

/// Walks up to MAX_V6_EXT extension headers starting at `off` with next-header `next`.
#[inline(always)]
fn walk_extensions(ctx: &XdpContext, off: usize, next: u8, pkt: &mut Packet) -> Result<WalkResult, ParseError> {
    let p = EXT_WALK.get_ptr_mut(0).ok_or(ParseError::Unsupported)?;
    // SAFETY: per-CPU scratch used by this program run only.
    let w = unsafe { &mut *p };
    w.off = off as u32;
    w.ext_len = 0;
    w.next = next as u32;
    w.state = WALKING;
    let mut c = WalkCtx { xdp: ctx.ctx, w: p, pkt: pkt as *mut Packet };
    repeat(MAX_V6_EXT as u32 + 1, ext_step, &mut c);
    Ok(WalkResult {
        off: (w.off as usize) & MAX_OFF,
        ext_len: w.ext_len,
        next: w.next as u8,
        // A chain longer than the walk goes is judged by its addresses alone.
        l4_reachable: w.state == FOUND,
    })
}

/// The final destination of a routing header that still has segments to visit: the last
/// address for type 0 and 2, segment 0 for type 4 (SRv6). Lets a listed host be matched even
/// when the packet is source-routed through an unlisted waypoint. Every routing header in the
/// walk counts (RFC 8200 asks for one, but a packet with several visits each one's final
/// destination); one beyond the walk's bound is not read, like the transport header there.
#[inline(always)]
fn routing_final_destination(ctx: &XdpContext, off: usize, hlen: u8, out: &mut [u8; 16]) -> bool {
    let Some((rtype, segments_left)) = read_pair(ctx, off + 2) else { return false };
    if segments_left == 0 || hlen < 2 {
        return false;
    }
    let addr_off = match rtype {
        0 | 2 => off + (hlen as usize) * 8 - 8,
        4 => off + 8,
        _ => return false,
    };
    match read::<[u8; 16]>(ctx, addr_off) {
        Some(a) => {
            *out = a;
            true
        }
        None => false,
    }
}

#[inline(always)]
fn parse_l4(ctx: &XdpContext, p: &mut Packet, off: usize, l4_len: u32) {
    let off = off & MAX_OFF;
    let l4 = match p.proto as u8 {
        IPPROTO_TCP => tcp_header(ctx, off, l4_len),
        IPPROTO_UDP => udp_header(ctx, off, l4_len),
        _ => None,
    };
    if let Some(l4) = l4 {
        p.l4 = l4;
        p.has_l4 = 1;
    }
}

// Sequential reads with early returns: evaluating them as one tuple lets LLVM merge register
// uses across paths in a way the verifier rejects ("pointer arithmetic on pkt_end").
#[inline(always)]
fn tcp_header(ctx: &XdpContext, off: usize, l4_len: u32) -> Option<L4> {
    let h = span::<20>(ctx, off)?;
    let (sport, dport, seq, ack) = (h.be16(0), h.be16(2), h.be32(4), h.be32(8));
    let tcp_flags = h.u8(13);
    let doff = ((h.u8(12) >> 4) as u32) * 4;
    if doff < 20 || doff > l4_len {
        return None;
    }
    Some(L4 { off: off as u32, hdr_len: doff, sport, dport, tcp_flags: tcp_flags as u32, seq, ack, payload_len: l4_len - doff })
}

#[inline(always)]
fn udp_header(ctx: &XdpContext, off: usize, l4_len: u32) -> Option<L4> {
    let h = span::<8>(ctx, off)?;
    let (sport, dport) = (h.be16(0), h.be16(2));
    Some(L4 { off: off as u32, hdr_len: 8, sport, dport, tcp_flags: 0, seq: 0, ack: 0, payload_len: l4_len.saturating_sub(8) })
}
