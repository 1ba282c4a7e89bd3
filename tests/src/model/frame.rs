//! Headers, read the way ARCHITECTURE.md ("Parser bounds", "Fail-open policy") says the program
//! reads them, written from the RFCs rather than from the kernel code.
//!
//! - Ethernet (IEEE 802.3): EtherType at byte 12; up to two VLAN tags (802.1Q 0x8100, 802.1ad
//!   0x88A8, or a pre-standard S-tag 0x9100 or 0x9200) in front of it; a third tag is
//!   `Unsupported`; a frame that ends before the EtherType is `Malformed`; an EtherType that is
//!   neither IPv4 nor IPv6 is `NotIp`.
//! - IPv4 (RFC 791): the 20-byte header and its options must be in the frame, version 4, IHL at
//!   least 5, Total Length at least the header; else `Malformed`. The checksum is not checked.
//!   A non-first fragment (offset ≠ 0) carries no transport header.
//! - IPv6 (RFC 8200): the 40-byte header must be in the frame, version 6. Extension headers
//!   (hop-by-hop 0, routing 43, fragment 44, AH 51, destination options 60, mobility 135) are
//!   walked up to [`MAX_V6_EXT`] of them; a chain that is longer, that runs out of the frame
//!   or that reaches a non-first fragment leaves the transport header unknown.
//! - The IP header's lengths say how long the transport segment is; the frame may be shorter
//!   (a cut frame: bytes past its end are missing, not zero) or longer (padding, ignored).
//! - TCP (RFC 9293): the 20-byte fixed header must be in the frame and its Data Offset
//!   consistent (at least 5 words, no longer than the segment the IP header declares); UDP
//!   (RFC 768): the 8-byte header must be in the frame. Otherwise the frame is judged by its
//!   addresses alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Extension headers the walk follows before it gives up on finding the transport header.
pub const MAX_V6_EXT: usize = 8;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const TCP_RST: u8 = 0x04;

/// Why a frame is not judged at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unjudged {
    NotIp,
    Malformed,
    Unsupported,
}

/// A stretch of the stream a transport header declares: `declared` bytes long, of which the
/// first `bytes.len()` are in the frame.
#[derive(Clone, Copy, Debug)]
pub struct Payload<'a> {
    pub bytes: &'a [u8],
    pub declared: usize,
}

/// A byte of the declared stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Byte(u8),
    /// Past the end the segment declares.
    End,
    /// Declared by the segment, not held by the frame.
    Missing,
}

impl Payload<'_> {
    pub fn at(&self, i: usize) -> At {
        if i >= self.declared {
            At::End
        } else {
            self.bytes.get(i).map_or(At::Missing, |&b| At::Byte(b))
        }
    }

    /// The whole declared stream is in the frame.
    pub fn complete(&self) -> Option<&[u8]> {
        (self.bytes.len() == self.declared).then_some(self.bytes)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Tcp { flags: u8 },
    Udp { length: u16 },
}

#[derive(Clone, Copy, Debug)]
pub struct L4<'a> {
    pub transport: Transport,
    pub sport: u16,
    pub dport: u16,
    pub payload: Payload<'a>,
}

#[derive(Clone, Debug)]
pub struct Parsed<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Final destinations of IPv6 routing headers with segments left among the extension
    /// headers walked, in header order.
    pub finals: Vec<Ipv6Addr>,
    pub l4: Option<L4<'a>>,
}

impl Parsed<'_> {
    pub fn tcp(&self) -> Option<(&L4<'_>, u8)> {
        match &self.l4 {
            Some(l4 @ L4 { transport: Transport::Tcp { flags }, .. }) => Some((l4, *flags)),
            _ => None,
        }
    }

    pub fn udp(&self) -> Option<(&L4<'_>, u16)> {
        match &self.l4 {
            Some(l4 @ L4 { transport: Transport::Udp { length }, .. }) => Some((l4, *length)),
            _ => None,
        }
    }
}

fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(f.get(at..at + 2)?.try_into().ok()?))
}

pub fn parse(f: &[u8]) -> Result<Parsed<'_>, Unjudged> {
    let mut at = 12;
    let mut tags = 0;
    let ethertype = loop {
        let t = be16(f, at).ok_or(Unjudged::Malformed)?;
        // 802.1Q, 802.1ad, and the pre-standard S-tags 0x9100 and 0x9200.
        if !matches!(t, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
            break t;
        }
        tags += 1;
        if tags > 2 {
            return Err(Unjudged::Unsupported);
        }
        at += 4;
    };
    let l3 = at + 2;
    match ethertype {
        0x0800 => ipv4(f, l3),
        0x86dd => ipv6(f, l3),
        _ => Err(Unjudged::NotIp),
    }
}

fn ipv4(f: &[u8], l3: usize) -> Result<Parsed<'_>, Unjudged> {
    let h = f.get(l3..l3 + 20).ok_or(Unjudged::Malformed)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || ihl < 20 || f.len() < l3 + ihl {
        return Err(Unjudged::Malformed);
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total < ihl {
        return Err(Unjudged::Malformed);
    }
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    let l4 = if offset == 0 { transport(f, h[9], l3 + ihl, total - ihl) } else { None };
    Ok(Parsed { src, dst, finals: Vec::new(), l4 })
}

fn is_extension(next: u8) -> bool {
    matches!(next, 0 | 43 | 44 | 51 | 60 | 135)
}

fn ipv6(f: &[u8], l3: usize) -> Result<Parsed<'_>, Unjudged> {
    let h = f.get(l3..l3 + 40).ok_or(Unjudged::Malformed)?;
    if h[0] >> 4 != 6 {
        return Err(Unjudged::Malformed);
    }
    let addr = |i: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&h[i..i + 16]).expect("16 bytes"));
    let (src, dst) = (IpAddr::V6(addr(8)), IpAddr::V6(addr(24)));
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut next = h[6];
    let mut at = l3 + 40;
    let mut finals = Vec::new();
    let mut reachable = true;
    let mut walked = 0;
    while is_extension(next) {
        if walked == MAX_V6_EXT {
            // The walk ends here: a header in this place is not read, not even a routing
            // header's final destination.
            reachable = false;
            break;
        }
        let Some(&[nh, hlen]) = f.get(at..at + 2) else {
            reachable = false;
            break;
        };
        let len = match next {
            // RFC 4302 §2.2: AH length is in 4-byte units, minus 2.
            51 => (usize::from(hlen) + 2) * 4,
            44 => {
                let Some(frag) = be16(f, at + 2) else {
                    reachable = false;
                    break;
                };
                if frag >> 3 != 0 {
                    // A non-first fragment: what follows is the middle of a datagram.
                    reachable = false;
                    break;
                }
                8
            }
            _ => (usize::from(hlen) + 1) * 8,
        };
        if next == 43 && let Some(fin) = routing_final(f, at) {
            finals.push(fin);
        }
        walked += 1;
        next = nh;
        at += len;
    }
    let ext_len = at - (l3 + 40);
    let l4 = if reachable && payload_len >= ext_len { transport(f, next, at, payload_len - ext_len) } else { None };
    Ok(Parsed { src, dst, finals, l4 })
}

/// The address a routing header (RFC 8200 §4.4) with segments left finally delivers to: the
/// last address of a type 0 (RFC 2460) or type 2 (RFC 6275) header, segment 0 of a type 4
/// Segment Routing Header (RFC 8754 §2). A header too short to hold an address (length < 2),
/// with no segments left, of another type, or whose address is not in the frame, has none.
fn routing_final(f: &[u8], at: usize) -> Option<Ipv6Addr> {
    let h = f.get(at..at + 4)?;
    let (hlen, rtype, left) = (usize::from(h[1]), h[2], h[3]);
    if left == 0 || hlen < 2 {
        return None;
    }
    let end = at + (hlen + 1) * 8;
    let a = match rtype {
        0 | 2 => end - 16,
        4 => at + 8,
        _ => return None,
    };
    Some(Ipv6Addr::from(<[u8; 16]>::try_from(f.get(a..a + 16)?).ok()?))
}

fn transport(f: &[u8], proto: u8, at: usize, len: usize) -> Option<L4<'_>> {
    let payload = |start: usize, declared: usize| Payload { bytes: f.get(start..).map_or(&[][..], |b| &b[..b.len().min(declared)]), declared };
    match proto {
        TCP => {
            let h = f.get(at..at + 20)?;
            let doff = usize::from(h[12] >> 4) * 4;
            if doff < 20 || doff > len {
                return None;
            }
            Some(L4 {
                transport: Transport::Tcp { flags: h[13] },
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
                payload: payload(at + doff, len - doff),
            })
        }
        UDP => {
            let h = f.get(at..at + 8)?;
            Some(L4 {
                transport: Transport::Udp { length: u16::from_be_bytes([h[4], h[5]]) },
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
                payload: payload(at + 8, len.saturating_sub(8)),
            })
        }
        _ => None,
    }
}
