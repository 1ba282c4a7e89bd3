//! Header parsing: Ethernet, up to two VLAN tags, IPv4 (options, fragments), IPv6 (bounded
//! extension-header walk), TCP and UDP. Parsing only describes the frame; decide.rs judges it.
//!
//! The L3 header is required: without a destination there is nothing to judge and the frame
//! passes. The L4 header is optional: a non-first fragment, an unknown protocol or a truncated
//! L4 header leaves `l4` empty and the frame is judged by its addresses alone.

use aya_ebpf::programs::XdpContext;

use crate::cursor::{read, read_be16, read_be32, read_pair};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;

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

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not IPv4 or IPv6.
    NotIp,
    /// A header is truncated or inconsistent.
    Malformed,
    /// A shape the parser does not follow (more than two VLAN tags).
    Unsupported,
}

#[derive(Clone, Copy)]
pub struct L4 {
    #[allow(dead_code, reason = "the payload parsers (SNI, DNS, HTTP) start here")]
    pub off: usize,
    pub sport: u16,
    pub dport: u16,
    /// TCP only (zero for UDP).
    pub tcp_flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// Bytes of TCP payload according to the IP lengths (not the frame length).
    pub payload_len: u32,
}

#[derive(Clone, Copy)]
pub struct Packet {
    pub l3_off: usize,
    pub v6: bool,
    /// IPv4 destination in host order.
    pub dst4: u32,
    pub dst6: [u8; 16],
    /// IPv6 final destination named by a routing header, when one is in flight.
    pub final6: Option<[u8; 16]>,
    pub proto: u8,
    pub l4: Option<L4>,
}

#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Packet, ParseError> {
    let mut off = 12usize;
    let mut ethertype = read_be16(ctx, off).ok_or(ParseError::Malformed)?;
    // Up to two tags: 802.1Q, or 802.1ad outer + 802.1Q inner (QinQ).
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        off += 4;
        ethertype = read_be16(ctx, off).ok_or(ParseError::Malformed)?;
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            off += 4;
            ethertype = read_be16(ctx, off).ok_or(ParseError::Malformed)?;
            if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
                return Err(ParseError::Unsupported);
            }
        }
    }
    let l3_off = off + 2;
    match ethertype {
        ETH_P_IP => parse_v4(ctx, l3_off),
        ETH_P_IPV6 => parse_v6(ctx, l3_off),
        _ => Err(ParseError::NotIp),
    }
}

#[inline(always)]
fn parse_v4(ctx: &XdpContext, l3: usize) -> Result<Packet, ParseError> {
    let (vihl, _tos) = read_pair(ctx, l3).ok_or(ParseError::Malformed)?;
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Err(ParseError::Malformed);
    }
    let total_len = read_be16(ctx, l3 + 2).ok_or(ParseError::Malformed)? as usize;
    let frag = read_be16(ctx, l3 + 6).ok_or(ParseError::Malformed)?;
    let (_ttl, proto) = read_pair(ctx, l3 + 8).ok_or(ParseError::Malformed)?;
    let dst4 = read_be32(ctx, l3 + 16).ok_or(ParseError::Malformed)?;
    // The options must be present too, or the header is truncated.
    read_be16(ctx, l3 + ihl - 2).ok_or(ParseError::Malformed)?;
    if total_len < ihl {
        return Err(ParseError::Malformed);
    }
    let non_first_fragment = frag & 0x1fff != 0;
    let l4 = if non_first_fragment {
        None
    } else {
        parse_l4(ctx, proto, l3 + ihl, (total_len - ihl) as u32)
    };
    Ok(Packet { l3_off: l3, v6: false, dst4, dst6: [0; 16], final6: None, proto, l4 })
}

#[inline(always)]
fn parse_v6(ctx: &XdpContext, l3: usize) -> Result<Packet, ParseError> {
    let (vtc, _) = read_pair(ctx, l3).ok_or(ParseError::Malformed)?;
    if vtc >> 4 != 6 {
        return Err(ParseError::Malformed);
    }
    let payload_len = read_be16(ctx, l3 + 4).ok_or(ParseError::Malformed)? as u32;
    let (mut next, _hop_limit) = read_pair(ctx, l3 + 6).ok_or(ParseError::Malformed)?;
    let dst6 = read::<[u8; 16]>(ctx, l3 + 24).ok_or(ParseError::Malformed)?;

    let mut off = l3 + 40;
    let mut ext_len = 0u32;
    let mut final6 = None;
    let mut l4_reachable = true;
    let mut found = false;
    for _ in 0..MAX_V6_EXT {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_DSTOPTS | IPPROTO_ROUTING | IPPROTO_MH => {
                let Some((nh, hlen)) = read_pair(ctx, off) else { l4_reachable = false; break };
                let len = (hlen as usize + 1) * 8;
                if next == IPPROTO_ROUTING {
                    final6 = routing_final_destination(ctx, off, hlen).or(final6);
                }
                next = nh;
                off += len;
                ext_len += len as u32;
            }
            IPPROTO_AH => {
                let Some((nh, hlen)) = read_pair(ctx, off) else { l4_reachable = false; break };
                let len = (hlen as usize + 2) * 4;
                next = nh;
                off += len;
                ext_len += len as u32;
            }
            IPPROTO_FRAGMENT => {
                let Some((nh, _)) = read_pair(ctx, off) else { l4_reachable = false; break };
                let Some(frag) = read_be16(ctx, off + 2) else { l4_reachable = false; break };
                next = nh;
                off += 8;
                ext_len += 8;
                if frag & 0xfff8 != 0 {
                    // A non-first fragment carries no L4 header.
                    l4_reachable = false;
                    break;
                }
            }
            _ => {
                found = true;
                break;
            }
        }
    }
    let l4 = if found && l4_reachable && payload_len >= ext_len {
        parse_l4(ctx, next, off, payload_len - ext_len)
    } else {
        None
    };
    Ok(Packet { l3_off: l3, v6: true, dst4: 0, dst6, final6, proto: next, l4 })
}

/// The final destination of a routing header that still has segments to visit: the last
/// address for type 0 and 2, segment 0 for type 4 (SRv6). Lets a listed host be matched even
/// when the packet is source-routed through an unlisted waypoint.
#[inline(always)]
fn routing_final_destination(ctx: &XdpContext, off: usize, hlen: u8) -> Option<[u8; 16]> {
    let (rtype, segments_left) = read_pair(ctx, off + 2)?;
    if segments_left == 0 || hlen < 2 {
        return None;
    }
    let addr_off = match rtype {
        0 | 2 => off + (hlen as usize) * 8 - 8,
        4 => off + 8,
        _ => return None,
    };
    read::<[u8; 16]>(ctx, addr_off)
}

#[inline(always)]
fn parse_l4(ctx: &XdpContext, proto: u8, off: usize, l4_len: u32) -> Option<L4> {
    match proto {
        IPPROTO_TCP => {
            let sport = read_be16(ctx, off)?;
            let dport = read_be16(ctx, off + 2)?;
            let seq = read_be32(ctx, off + 4)?;
            let ack = read_be32(ctx, off + 8)?;
            let (doff_byte, tcp_flags) = read_pair(ctx, off + 12)?;
            let doff = ((doff_byte >> 4) as u32) * 4;
            // The rest of the fixed header must be there too.
            read_be16(ctx, off + 18)?;
            if doff < 20 || doff > l4_len {
                return None;
            }
            Some(L4 { off, sport, dport, tcp_flags, seq, ack, payload_len: l4_len - doff })
        }
        IPPROTO_UDP => {
            let sport = read_be16(ctx, off)?;
            let dport = read_be16(ctx, off + 2)?;
            read_be16(ctx, off + 6)?;
            Some(L4 { off, sport, dport, tcp_flags: 0, seq: 0, ack: 0, payload_len: l4_len.saturating_sub(8) })
        }
        _ => None,
    }
}
