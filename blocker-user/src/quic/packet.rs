//! QUIC long-header packets in a UDP datagram (RFC 9000 §17.2), coalesced one after another
//! (RFC 9000 §12.2).
//!
//! Only what the client's first flight needs is read: the invariant header (form bit, version,
//! connection IDs), then for versions 1 and 2 the packet type, the Initial token, and the Length
//! that says where the packet ends and the next coalesced one begins. The packet number and
//! payload stay protected here; [`decrypt`](super::decrypt) removes the protection.
//!
//! A datagram is walked packet by packet: Initial, 0-RTT and Handshake packets are returned, a
//! short-header packet ends the walk (it has no length and runs to the end of the datagram; so do
//! the zero bytes some clients pad datagrams with), and anything malformed is an error that ends
//! the walk too. No input panics.

use thiserror::Error;

use super::wire::Cursor;

/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369 §3.1).
pub const VERSION_2: u32 = 0x6b33_43cf;
/// The longest connection ID versions 1 and 2 allow (RFC 9000 §17.2).
pub const MAX_CID_LEN: usize = 20;
/// Clients pad every datagram that carries an Initial to at least this many bytes (RFC 9000
/// §14.1); servers drop shorter ones. The reader does not insist on it (test packets are smaller);
/// the kernel side may use it to pick datagrams worth copying.
pub const MIN_CLIENT_INITIAL_DATAGRAM: usize = 1200;

/// The QUIC versions whose Initial packets can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// 0x00000001, RFC 9000 and RFC 9001.
    V1,
    /// 0x6b3343cf, RFC 9369.
    V2,
}

impl Version {
    pub fn from_wire(version: u32) -> Option<Version> {
        match version {
            VERSION_1 => Some(Version::V1),
            VERSION_2 => Some(Version::V2),
            _ => None,
        }
    }

    pub fn wire(self) -> u32 {
        match self {
            Version::V1 => VERSION_1,
            Version::V2 => VERSION_2,
        }
    }

    /// The packet type the two type bits of the first byte (0x30) name. Version 2 moved every
    /// type up by one (RFC 9369 §3.2): its Initial is 0b01 where version 1's is 0b00.
    pub fn packet_type(self, bits: u8) -> PacketType {
        let v1_bits = match self {
            Version::V1 => bits & 0b11,
            Version::V2 => (bits & 0b11).wrapping_sub(1) & 0b11,
        };
        match v1_bits {
            0b00 => PacketType::Initial,
            0b01 => PacketType::ZeroRtt,
            0b10 => PacketType::Handshake,
            _ => PacketType::Retry,
        }
    }

    /// The two type bits of `ty` in this version (the inverse of [`packet_type`](Self::packet_type)).
    pub fn type_bits(self, ty: PacketType) -> u8 {
        let v1_bits = match ty {
            PacketType::Initial => 0b00,
            PacketType::ZeroRtt => 0b01,
            PacketType::Handshake => 0b10,
            PacketType::Retry => 0b11,
        };
        match self {
            Version::V1 => v1_bits,
            Version::V2 => (v1_bits + 1) & 0b11,
        }
    }
}

/// The long-header packet types (RFC 9000 §17.2, Table 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// One Initial, 0-RTT or Handshake packet of a datagram, its packet number and payload still
/// protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LongPacket<'a> {
    pub version: Version,
    pub packet_type: PacketType,
    /// The Destination Connection ID. In the client's first Initial it is the ID the Initial keys
    /// are derived from (RFC 9001 §5.2).
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    /// The Initial token (empty for the other types).
    pub token: &'a [u8],
    /// The whole packet: header, protected packet number, protected payload and tag.
    pub bytes: &'a [u8],
    /// Where the packet number starts in [`bytes`](Self::bytes).
    pub pn_offset: usize,
}

impl LongPacket<'_> {
    pub fn is_initial(&self) -> bool {
        self.packet_type == PacketType::Initial
    }
}

/// Why a datagram (or the rest of one) is not a QUIC packet this reader can walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("empty datagram")]
    Empty,
    #[error("short header: not a long-header packet")]
    ShortHeader,
    #[error("fixed bit (0x40) clear")]
    FixedBitClear,
    #[error("version negotiation packet")]
    VersionNegotiation,
    #[error("unsupported QUIC version {0:#010x}")]
    UnsupportedVersion(u32),
    #[error("connection ID of {0} bytes (at most 20)")]
    ConnectionIdTooLong(usize),
    #[error("Retry packet (servers send those, clients do not)")]
    Retry,
    #[error("datagram ends inside the {0}")]
    Truncated(&'static str),
    #[error("packet length {length} beyond the {available} bytes left in the datagram")]
    LengthBeyondDatagram { length: u64, available: usize },
    #[error("packet length 0 leaves no room for a packet number")]
    NoPacketNumber,
}

/// Parses the long-header packet at the start of `buf`; returns it and the bytes after it.
pub fn parse_long_packet(buf: &[u8]) -> Result<(LongPacket<'_>, &[u8]), PacketError> {
    let mut c = Cursor::new(buf);
    let first = c.u8().ok_or(PacketError::Empty)?;
    if first & 0x80 == 0 {
        return Err(PacketError::ShortHeader);
    }
    let wire_version = c.u32().ok_or(PacketError::Truncated("version"))?;
    if wire_version == 0 {
        return Err(PacketError::VersionNegotiation);
    }
    let version = Version::from_wire(wire_version).ok_or(PacketError::UnsupportedVersion(wire_version))?;
    // Versions 1 and 2 set the fixed bit in every packet (RFC 9000 §17.2; clearing it in an Initial
    // needs a remembered grease_quic_bit, RFC 9287 §3.1, which such a client then fails open on).
    if first & 0x40 == 0 {
        return Err(PacketError::FixedBitClear);
    }
    let dcid = cid(&mut c, "destination connection ID")?;
    let scid = cid(&mut c, "source connection ID")?;
    let packet_type = version.packet_type((first >> 4) & 0b11);
    let token = match packet_type {
        PacketType::Retry => return Err(PacketError::Retry),
        PacketType::Initial => {
            let len = c.varint().ok_or(PacketError::Truncated("token length"))?;
            c.bytes_u64(len).ok_or(PacketError::Truncated("token"))?
        }
        PacketType::ZeroRtt | PacketType::Handshake => &[][..],
    };
    let length = c.varint().ok_or(PacketError::Truncated("length"))?;
    let available = c.remaining();
    let body = usize::try_from(length)
        .ok()
        .filter(|&l| l <= available)
        .ok_or(PacketError::LengthBeyondDatagram { length, available })?;
    if body == 0 {
        return Err(PacketError::NoPacketNumber);
    }
    let pn_offset = c.pos();
    let end = pn_offset + body;
    let packet = LongPacket { version, packet_type, dcid, scid, token, bytes: &buf[..end], pn_offset };
    Ok((packet, &buf[end..]))
}

fn cid<'a>(c: &mut Cursor<'a>, what: &'static str) -> Result<&'a [u8], PacketError> {
    let len = usize::from(c.u8().ok_or(PacketError::Truncated(what))?);
    if len > MAX_CID_LEN {
        return Err(PacketError::ConnectionIdTooLong(len));
    }
    c.bytes(len).ok_or(PacketError::Truncated(what))
}

/// The long-header packets of one datagram, in order. Ends at the end of the datagram or at a
/// short-header packet (which runs to the end); a malformed packet is returned as an error and
/// ends the walk. An empty datagram or one that starts with a short header is an error.
pub fn packets(datagram: &[u8]) -> Packets<'_> {
    Packets { rest: datagram, first: true, done: false }
}

/// Iterator returned by [`packets`].
#[derive(Clone, Debug)]
pub struct Packets<'a> {
    rest: &'a [u8],
    first: bool,
    done: bool,
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<LongPacket<'a>, PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let first = std::mem::replace(&mut self.first, false);
        if !first && (self.rest.is_empty() || self.rest[0] & 0x80 == 0) {
            self.done = true;
            return None;
        }
        match parse_long_packet(self.rest) {
            Ok((packet, rest)) => {
                self.rest = rest;
                Some(Ok(packet))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::wire::{hex, put_varint};

    /// The header of the RFC 9001 Appendix A.2 client Initial, protected, then 4 protected packet
    /// number bytes' worth of header and 1178 more bytes (payload and tag) to make up Length 1182.
    fn rfc9001_initial() -> Vec<u8> {
        let mut p = hex("c000000001088394c8f03e5157080000449e7b9aec34");
        p.resize(1200, 0xaa);
        p
    }

    /// A long header of `ty` for `version` with the given parts, then `body` (packet number and
    /// payload) whose length the Length field gives.
    fn long(version: Version, ty: PacketType, dcid: &[u8], scid: &[u8], token: &[u8], body: &[u8]) -> Vec<u8> {
        let mut p = vec![0xc0 | (version.type_bits(ty) << 4) | 0x03];
        p.extend_from_slice(&version.wire().to_be_bytes());
        p.push(dcid.len() as u8);
        p.extend_from_slice(dcid);
        p.push(scid.len() as u8);
        p.extend_from_slice(scid);
        if ty == PacketType::Initial {
            put_varint(&mut p, token.len() as u64);
            p.extend_from_slice(token);
        }
        put_varint(&mut p, body.len() as u64);
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn the_rfc_9001_client_initial_is_one_version_1_initial_packet() {
        let d = rfc9001_initial();
        let all: Vec<_> = packets(&d).collect();
        assert_eq!(all.len(), 1);
        let p = all[0].clone().unwrap();
        assert_eq!(p.version, Version::V1);
        assert_eq!(p.packet_type, PacketType::Initial);
        assert_eq!(p.dcid, hex("8394c8f03e515708"));
        assert!(p.scid.is_empty());
        assert!(p.token.is_empty());
        // First byte, version, DCID length and DCID, SCID length, token length, 2-byte Length.
        assert_eq!(p.pn_offset, 1 + 4 + 1 + 8 + 1 + 1 + 2);
        assert_eq!(p.bytes.len(), 1200);
    }

    #[test]
    fn type_bits_differ_between_versions() {
        // Version 1: Initial 0b00, 0-RTT 0b01, Handshake 0b10, Retry 0b11 (RFC 9000 §17.2).
        // Version 2: Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00 (RFC 9369 §3.2).
        use PacketType::*;
        assert_eq!([0, 1, 2, 3].map(|b| Version::V1.packet_type(b)), [Initial, ZeroRtt, Handshake, Retry]);
        assert_eq!([0, 1, 2, 3].map(|b| Version::V2.packet_type(b)), [Retry, Initial, ZeroRtt, Handshake]);
        for v in [Version::V1, Version::V2] {
            for ty in [Initial, ZeroRtt, Handshake, Retry] {
                assert_eq!(v.packet_type(v.type_bits(ty)), ty);
            }
        }
        // The RFC 9369 Appendix A.2 client Initial starts with 0xd3 (type bits 0b01).
        let mut d = hex("d36b3343cf088394c8f03e5157080000449e00000002");
        d.resize(1200, 0);
        let p = packets(&d).next().unwrap().unwrap();
        assert_eq!((p.version, p.packet_type), (Version::V2, Initial));
        // The same byte in version 1 would be a 0-RTT packet.
        assert_eq!(Version::V1.packet_type((0xd3 >> 4) & 3), ZeroRtt);
    }

    #[test]
    fn coalesced_packets_are_walked_by_their_length_and_a_short_header_ends_the_walk() {
        let dcid = [1, 2, 3, 4];
        let mut d = long(Version::V1, PacketType::Initial, &dcid, &[9], b"tok", &[0x11; 40]);
        d.extend(long(Version::V1, PacketType::ZeroRtt, &dcid, &[9], b"", &[0x22; 30]));
        d.extend(long(Version::V1, PacketType::Handshake, &dcid, &[9], b"", &[0x33; 25]));
        d.extend([0x40, 1, 2, 3, 4, 0x44, 0x44]); // a 1-RTT packet to the end
        let all: Vec<_> = packets(&d).map(Result::unwrap).collect();
        let kinds: Vec<_> = all.iter().map(|p| p.packet_type).collect();
        assert_eq!(kinds, [PacketType::Initial, PacketType::ZeroRtt, PacketType::Handshake]);
        assert_eq!(all[0].token, b"tok");
        assert_eq!(all[1].bytes[all[1].pn_offset..], [0x22; 30]);
        assert_eq!(all[2].bytes[all[2].pn_offset..], [0x33; 25]);

        // Zero padding after the last packet is a "short header" too: the walk just ends.
        let mut padded = long(Version::V2, PacketType::Initial, &dcid, &[], b"", &[0x11; 40]);
        padded.resize(1200, 0);
        assert_eq!(packets(&padded).count(), 1);
        assert!(packets(&padded).all(|p| p.is_ok()));
    }

    #[test]
    fn the_first_packet_must_be_a_long_header_of_version_1_or_2() {
        let first = |d: &[u8]| packets(d).next().unwrap().unwrap_err();
        assert_eq!(first(&[]), PacketError::Empty);
        assert_eq!(first(&[0x40, 1, 2, 3]), PacketError::ShortHeader);
        // Version negotiation: version 0 (RFC 9000 §17.2.1).
        assert_eq!(first(&hex("80 00000000 04 01020304 00 00000001")), PacketError::VersionNegotiation);
        // A draft version, a reserved (greasing) version, and version 1 with the fixed bit clear.
        let mut d = rfc9001_initial();
        d[1..5].copy_from_slice(&0xff00_001d_u32.to_be_bytes());
        assert_eq!(first(&d), PacketError::UnsupportedVersion(0xff00_001d));
        d[1..5].copy_from_slice(&0x1a2a_3a4a_u32.to_be_bytes());
        assert_eq!(first(&d), PacketError::UnsupportedVersion(0x1a2a_3a4a));
        let mut d = rfc9001_initial();
        d[0] &= !0x40;
        assert_eq!(first(&d), PacketError::FixedBitClear);
        // A Retry.
        let retry = hex("ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba");
        assert_eq!(first(&retry), PacketError::Retry);
    }

    #[test]
    fn lengths_beyond_the_datagram_are_refused() {
        // A connection ID of 21 bytes.
        let mut d = hex("c000000001 15");
        d.extend([0; 40]);
        assert_eq!(packets(&d).next().unwrap(), Err(PacketError::ConnectionIdTooLong(21)));
        // A token longer than the datagram.
        let d = hex("c000000001 04 01020304 00 4400 aabb");
        assert_eq!(packets(&d).next().unwrap(), Err(PacketError::Truncated("token")));
        // A Length one byte longer than what is left.
        let mut d = rfc9001_initial();
        d.truncate(1199);
        assert_eq!(
            packets(&d).next().unwrap(),
            Err(PacketError::LengthBeyondDatagram { length: 1182, available: 1181 })
        );
        // A Length of 2^62 - 1.
        let d = hex("c000000001 00 00 00 ffffffffffffffff 00");
        assert!(matches!(packets(&d).next().unwrap(), Err(PacketError::LengthBeyondDatagram { .. })));
        // A Length of 0.
        let d = hex("c000000001 00 00 00 00");
        assert_eq!(packets(&d).next().unwrap(), Err(PacketError::NoPacketNumber));
    }

    #[test]
    fn a_bad_coalesced_packet_is_an_error_after_the_good_ones() {
        let mut d = long(Version::V1, PacketType::Initial, &[7; 8], &[], b"", &[0x11; 40]);
        d.extend(hex("e0 00000001 08")); // a Handshake packet cut inside its DCID
        let all: Vec<_> = packets(&d).collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].is_ok());
        assert_eq!(all[1], Err(PacketError::Truncated("destination connection ID")));
    }

    #[test]
    fn every_prefix_of_a_packet_is_an_error_or_a_walk_without_panic() {
        let d = rfc9001_initial();
        for len in 0..d.len() {
            let all: Vec<_> = packets(&d[..len]).collect();
            assert_eq!(all.len(), 1, "prefix of {len} bytes");
            assert!(all[0].is_err(), "prefix of {len} bytes");
        }
    }
}
