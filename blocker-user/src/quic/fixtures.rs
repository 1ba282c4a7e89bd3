//! Real client Initials for tests here and in the privileged tables (tests/tests/quic_table.rs):
//! the one-packet Initials of RFC 9001 and RFC 9369 (Appendix A.2 of each, a ClientHello for
//! `example.com`), and Chromium 156's two-packet first flights (`testdata/`, a ClientHello for
//! `quic.example.test` cut across two 1250-byte Initials).

use super::{vectors, wire::hex};

/// The server name of the RFC vectors.
pub const RFC_NAME: &str = "example.com";
/// The server name of the Chromium captures.
pub const CHROMIUM_NAME: &str = "quic.example.test";

/// The client Initial of RFC 9001 Appendix A.2: QUIC version 1, 1200 bytes, one packet.
pub fn rfc9001_initial() -> Vec<u8> {
    vectors::v1_packet()
}

/// The client Initial of RFC 9369 Appendix A.2: QUIC version 2, 1200 bytes, one packet.
pub fn rfc9369_initial() -> Vec<u8> {
    vectors::v2_packet()
}

/// One captured datagram: the connection it belongs to ('A', 'B'), the packet number of its
/// Initial, the UDP payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    pub conn: char,
    pub pn: u64,
    pub payload: Vec<u8>,
}

const CHROMIUM_V1: &str = include_str!("testdata/chromium-156-v1.txt");
const CHROMIUM_V2: &str = include_str!("testdata/chromium-156-v2.txt");

fn capture(text: &str) -> Vec<Captured> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let conn = f.next()?.chars().next()?;
            let pn = f.next()?.parse().ok()?;
            Some(Captured { conn, pn, payload: hex(f.next()?) })
        })
        .collect()
}

/// Chromium 156's client Initials, QUIC version 1: connections A and B.
pub fn chromium_v1() -> Vec<Captured> {
    capture(CHROMIUM_V1)
}

/// Chromium 156's client Initials, QUIC version 2 (`--quic-version=RFCv2`): connection A.
pub fn chromium_v2() -> Vec<Captured> {
    capture(CHROMIUM_V2)
}

/// The first flight of connection A: the two Initials that together carry the ClientHello.
pub fn chromium_first_flight(v2: bool) -> [Vec<u8>; 2] {
    let c = if v2 { chromium_v2() } else { chromium_v1() };
    let get = |pn| c.iter().find(|d| d.conn == 'A' && d.pn == pn).map(|d| d.payload.clone()).unwrap_or_default();
    [get(1), get(2)]
}

/// A 0-RTT long-header packet of `version` (1 or 2) with `dcid` and `len` bytes of (opaque)
/// protected payload: what a resuming client coalesces after its Initial or sends alone. Nobody
/// without the resumption secret can open it; the program only reads its header.
pub fn zero_rtt_packet(version: u32, dcid: &[u8], len: usize) -> Vec<u8> {
    let ty = if version == 2 { 0b10 } else { 0b01 };
    let wire_version: u32 = if version == 2 { 0x6b33_43cf } else { 1 };
    let mut p = vec![0xc0 | ty << 4 | 0x01];
    p.extend_from_slice(&wire_version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(0);
    // Length: a 2-byte varint, then a 2-byte packet number and the payload.
    let length = 2 + len;
    p.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
    p.extend_from_slice(&[0, 7]);
    p.extend(std::iter::repeat_n(0x5a, len));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::{Progress, Reader, packet};

    #[test]
    fn the_fixtures_read_to_their_names() {
        assert_eq!(Reader::default().feed(&rfc9001_initial()), Progress::Sni(RFC_NAME.into()));
        assert_eq!(Reader::default().feed(&rfc9369_initial()), Progress::Sni(RFC_NAME.into()));
        for v2 in [false, true] {
            let [a, b] = chromium_first_flight(v2);
            let mut r = Reader::default();
            assert_eq!((r.feed(&a), r.feed(&b)), (Progress::NeedMore, Progress::Sni(CHROMIUM_NAME.into())));
        }
    }

    #[test]
    fn a_zero_rtt_packet_coalesced_after_an_initial_is_walked_and_skipped() {
        let mut d = rfc9001_initial();
        d.extend(zero_rtt_packet(1, &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08], 100));
        let types: Vec<_> = packet::packets(&d).map(|p| p.unwrap().packet_type).collect();
        assert_eq!(types, [packet::PacketType::Initial, packet::PacketType::ZeroRtt]);
        assert_eq!(Reader::default().feed(&d), Progress::Sni(RFC_NAME.into()));
        assert_eq!(Reader::default().feed(&zero_rtt_packet(2, &[1; 8], 1200)), Progress::NotQuic);
    }
}
