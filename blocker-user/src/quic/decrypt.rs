//! Removing the protection of a client Initial packet (RFC 9001 §5.3–5.5).
//!
//! 1. Header protection (§5.4): AES-128-ECB with the `hp` key encrypts a 16-byte sample of the
//!    protected payload, taken 4 bytes after the start of the packet number (as if the packet
//!    number were 4 bytes long). The first 5 bytes of the result are the mask: the low 4 bits of
//!    the first byte (long header: reserved bits and packet number length) are XORed with
//!    `mask[0] & 0x0f`, the packet number bytes with `mask[1..]`.
//! 2. The packet number (1–4 bytes, §17.1 of RFC 9000) is expanded to its full value next to the
//!    largest one seen on the connection (RFC 9000 Appendix A.3).
//! 3. The payload is opened with AEAD_AES_128_GCM (§5.3): the nonce is the IV XORed with the
//!    packet number (left-padded to 12 bytes), the associated data the whole unprotected header up
//!    to and including the packet number.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead, Payload};
use thiserror::Error;

use super::keys::{InitialKeys, client_initial_keys};
use super::packet::{LongPacket, PacketType, Version};

/// Header protection samples 16 bytes, starting 4 bytes past the start of the packet number.
pub const SAMPLE_LEN: usize = 16;
/// The AEAD_AES_128_GCM tag.
pub const TAG_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecryptError {
    #[error("not an Initial packet")]
    NotInitial,
    #[error("packet of {0} bytes too short to hold a header protection sample")]
    TooShortForSample(usize),
    #[error("AEAD authentication failed (not this connection's Initial keys, or tampered)")]
    Authentication,
    #[error("reserved header bits set in an authenticated packet")]
    ReservedBits,
}

/// An opened Initial packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decrypted {
    /// The full packet number.
    pub packet_number: u64,
    /// The plaintext frames.
    pub payload: Vec<u8>,
}

/// Ready-keyed ciphers for one end's Initial packets.
pub struct InitialCipher {
    version: Version,
    aead: Aes128Gcm,
    hp: Aes128,
    iv: [u8; 12],
}

impl std::fmt::Debug for InitialCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialCipher").field("version", &self.version).finish_non_exhaustive()
    }
}

impl InitialCipher {
    pub fn new(keys: &InitialKeys) -> Self {
        InitialCipher {
            version: keys.version,
            aead: Aes128Gcm::new(GenericArray::from_slice(&keys.key)),
            hp: Aes128::new(GenericArray::from_slice(&keys.hp)),
            iv: keys.iv,
        }
    }

    /// The ciphers of the client's Initials of a connection whose first Initial had `dcid`.
    pub fn client(version: Version, dcid: &[u8]) -> Self {
        Self::new(&client_initial_keys(version, dcid))
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The 5-byte header protection mask of a sample.
    pub fn header_mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; 5] {
        let mut block = GenericArray::clone_from_slice(sample);
        self.hp.encrypt_block(&mut block);
        let mut mask = [0; 5];
        mask.copy_from_slice(&block[..5]);
        mask
    }

    fn nonce(&self, packet_number: u64) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, p) in nonce[4..].iter_mut().zip(packet_number.to_be_bytes()) {
            *n ^= p;
        }
        nonce
    }

    /// Opens an Initial packet of this cipher's version. `largest_pn` is the largest packet number
    /// opened on the connection so far (`None` before the first), to expand a truncated one.
    pub fn decrypt(&self, packet: &LongPacket<'_>, largest_pn: Option<u64>) -> Result<Decrypted, DecryptError> {
        if packet.packet_type != PacketType::Initial || packet.version != self.version {
            return Err(DecryptError::NotInitial);
        }
        let bytes = packet.bytes;
        let pn_offset = packet.pn_offset;
        let sample_at = pn_offset + 4;
        let Some(sample) = bytes.get(sample_at..sample_at + SAMPLE_LEN) else {
            return Err(DecryptError::TooShortForSample(bytes.len()));
        };
        let mask = self.header_mask(sample.try_into().expect("16 bytes"));
        let first = bytes[0] ^ (mask[0] & 0x0f);
        let pn_len = usize::from(first & 0x03) + 1;
        let mut header = bytes[..pn_offset + pn_len].to_vec();
        header[0] = first;
        let mut truncated = 0u64;
        for (i, b) in header[pn_offset..].iter_mut().enumerate() {
            *b ^= mask[1 + i];
            truncated = (truncated << 8) | u64::from(*b);
        }
        let packet_number = decode_packet_number(largest_pn, truncated, pn_len * 8);
        let payload = self
            .aead
            .decrypt(
                GenericArray::from_slice(&self.nonce(packet_number)),
                Payload { msg: &bytes[pn_offset + pn_len..], aad: &header },
            )
            .map_err(|_| DecryptError::Authentication)?;
        // Only now, with the header authenticated, do the reserved bits count (RFC 9000 §17.2).
        if first & 0x0c != 0 {
            return Err(DecryptError::ReservedBits);
        }
        Ok(Decrypted { packet_number, payload })
    }
}

/// Decrypts a client Initial with the keys of its own Destination Connection ID: right for the
/// client's first Initials (RFC 9001 §5.2).
pub fn decrypt_client_initial(packet: &LongPacket<'_>) -> Result<Decrypted, DecryptError> {
    if packet.packet_type != PacketType::Initial {
        return Err(DecryptError::NotInitial);
    }
    InitialCipher::client(packet.version, packet.dcid).decrypt(packet, None)
}

/// The full packet number a truncated one of `pn_nbits` bits stands for: the one closest to the
/// next expected (RFC 9000 Appendix A.3).
pub fn decode_packet_number(largest_pn: Option<u64>, truncated_pn: u64, pn_nbits: usize) -> u64 {
    let expected = largest_pn.map_or(0, |l| l + 1);
    let win = 1u64 << pn_nbits;
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated_pn;
    if expected >= hwin && candidate <= expected - hwin && candidate < (1 << 62) - win {
        candidate + win
    } else if candidate > expected + hwin && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

/// What a test needs to build a protected long-header packet.
#[cfg(test)]
#[derive(Clone, Debug)]
pub(crate) struct Plain<'a> {
    pub packet_type: PacketType,
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    pub token: &'a [u8],
    pub packet_number: u64,
    /// 1 to 4.
    pub pn_len: usize,
    pub payload: &'a [u8],
}

#[cfg(test)]
impl<'a> Plain<'a> {
    /// A client Initial with an empty SCID and token and a 4-byte packet number.
    pub(crate) fn initial(dcid: &'a [u8], packet_number: u64, payload: &'a [u8]) -> Self {
        Plain { packet_type: PacketType::Initial, dcid, scid: &[], token: &[], packet_number, pn_len: 4, payload }
    }
}

#[cfg(test)]
impl InitialCipher {
    /// The unprotected header of `p`, packet number included.
    pub(crate) fn header(&self, p: &Plain<'_>) -> Vec<u8> {
        use super::wire::put_varint;
        assert!((1..=4).contains(&p.pn_len));
        let mut h = vec![0xc0 | (self.version.type_bits(p.packet_type) << 4) | (p.pn_len as u8 - 1)];
        h.extend_from_slice(&self.version.wire().to_be_bytes());
        h.push(p.dcid.len() as u8);
        h.extend_from_slice(p.dcid);
        h.push(p.scid.len() as u8);
        h.extend_from_slice(p.scid);
        if p.packet_type == PacketType::Initial {
            put_varint(&mut h, p.token.len() as u64);
            h.extend_from_slice(p.token);
        }
        put_varint(&mut h, (p.pn_len + p.payload.len() + TAG_LEN) as u64);
        h.extend_from_slice(&p.packet_number.to_be_bytes()[8 - p.pn_len..]);
        h
    }

    /// Protects `p` the way a client does (RFC 9001 §5.3, §5.4): the inverse of
    /// [`decrypt`](Self::decrypt).
    pub(crate) fn protect(&self, p: &Plain<'_>) -> Vec<u8> {
        assert!(p.pn_len + p.payload.len() >= 4, "too short to sample");
        let header = self.header(p);
        let pn_offset = header.len() - p.pn_len;
        let sealed = self
            .aead
            .encrypt(GenericArray::from_slice(&self.nonce(p.packet_number)), Payload { msg: p.payload, aad: &header })
            .unwrap();
        let mut packet = header;
        packet.extend_from_slice(&sealed);
        let sample: [u8; SAMPLE_LEN] = packet[pn_offset + 4..pn_offset + 4 + SAMPLE_LEN].try_into().unwrap();
        let mask = self.header_mask(&sample);
        packet[0] ^= mask[0] & 0x0f;
        for i in 0..p.pn_len {
            packet[pn_offset + i] ^= mask[1 + i];
        }
        packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::packet::{PacketError, packets, parse_long_packet};
    use crate::quic::vectors;
    use crate::quic::wire::hex;

    fn first_packet(d: &[u8]) -> LongPacket<'_> {
        parse_long_packet(d).unwrap().0
    }

    #[test]
    fn the_rfc_9001_client_initial_opens_to_its_crypto_frame_and_padding() {
        let d = vectors::v1_packet();
        let p = first_packet(&d);
        let opened = decrypt_client_initial(&p).unwrap();
        assert_eq!(opened.packet_number, 2);
        assert_eq!(opened.payload, vectors::payload());
        assert_eq!(opened.payload[..4 + 0xf1], hex(vectors::CRYPTO_FRAME));
    }

    #[test]
    fn the_rfc_9369_version_2_client_initial_opens_to_the_same_payload() {
        let d = vectors::v2_packet();
        let p = first_packet(&d);
        assert_eq!(p.version, Version::V2);
        let opened = decrypt_client_initial(&p).unwrap();
        assert_eq!(opened.packet_number, 2);
        assert_eq!(opened.payload, vectors::payload());
    }

    #[test]
    fn header_protection_masks_are_those_of_the_rfcs() {
        for (version, sample, mask) in
            [(Version::V1, vectors::V1_SAMPLE, vectors::V1_MASK), (Version::V2, vectors::V2_SAMPLE, vectors::V2_MASK)]
        {
            let cipher = InitialCipher::client(version, &vectors::dcid());
            let sample: [u8; 16] = hex(sample).try_into().unwrap();
            assert_eq!(cipher.header_mask(&sample).to_vec(), hex(mask), "{version:?}");
        }
    }

    #[test]
    fn protecting_the_rfc_payload_gives_the_rfc_packets_byte_for_byte() {
        let payload = vectors::payload();
        let dcid = vectors::dcid();
        for (version, header, packet) in [
            (Version::V1, vectors::V1_HEADER, vectors::v1_packet()),
            (Version::V2, vectors::V2_HEADER, vectors::v2_packet()),
        ] {
            let cipher = InitialCipher::client(version, &dcid);
            let plain = Plain::initial(&dcid, 2, &payload);
            assert_eq!(cipher.header(&plain), hex(header), "{version:?}");
            assert_eq!(cipher.protect(&plain), packet, "{version:?}");
        }
    }

    #[test]
    fn packet_numbers_of_every_length_round_trip() {
        let dcid = [0x5a; 12];
        let cipher = InitialCipher::client(Version::V1, &dcid);
        let payload = [0x01; 30]; // PINGs
        for (pn, pn_len) in [(0, 1), (255, 1), (258, 2), (70_000, 3), (0x0123_4567, 4)] {
            let plain = Plain { pn_len, ..Plain::initial(&dcid, pn, &payload) };
            let d = cipher.protect(&plain);
            let opened = cipher.decrypt(&first_packet(&d), None).unwrap();
            assert_eq!(opened, Decrypted { packet_number: pn, payload: payload.to_vec() }, "pn {pn} in {pn_len}");
        }
        // A 1-byte packet number 0x05 after packet 300 is 261 (the closest one ending in 0x05).
        let d = cipher.protect(&Plain { pn_len: 1, ..Plain::initial(&dcid, 261, &payload) });
        assert_eq!(cipher.decrypt(&first_packet(&d), Some(300)).unwrap().packet_number, 261);
    }

    #[test]
    fn packet_numbers_expand_as_in_rfc_9000_appendix_a_3() {
        assert_eq!(decode_packet_number(Some(0xa82f_30ea), 0x9b32, 16), 0xa82f_9b32);
        assert_eq!(decode_packet_number(None, 2, 32), 2);
        assert_eq!(decode_packet_number(None, 0xff, 8), 0xff);
        assert_eq!(decode_packet_number(Some(0xff), 0x01, 8), 0x101);
        assert_eq!(decode_packet_number(Some(0x101), 0xfe, 8), 0xfe);
    }

    #[test]
    fn a_tampered_tag_payload_or_header_fails_authentication() {
        let good = vectors::v1_packet();
        let mut tag = good.clone();
        *tag.last_mut().unwrap() ^= 1;
        let mut payload = good.clone();
        payload[600] ^= 0x80;
        let mut header = good.clone();
        header[0] ^= 0x08; // a reserved bit: header protection hides it, the AEAD does not
        for (what, d) in [("tag", tag), ("payload", payload), ("header", header)] {
            assert_eq!(decrypt_client_initial(&first_packet(&d)), Err(DecryptError::Authentication), "{what}");
        }
        // Another Destination Connection ID derives other keys.
        let mut dcid = good.clone();
        dcid[6] ^= 1;
        assert_eq!(decrypt_client_initial(&first_packet(&dcid)), Err(DecryptError::Authentication));
    }

    #[test]
    fn version_1_keys_do_not_open_version_2_packets() {
        let d = vectors::v2_packet();
        let v1 = InitialCipher::client(Version::V1, &vectors::dcid());
        assert_eq!(v1.decrypt(&first_packet(&d), None), Err(DecryptError::NotInitial));
        // Not even if the version field is rewritten to 1 (and the type bits with it).
        let mut rewritten = d.clone();
        rewritten[0] = (rewritten[0] & !0x30) | (Version::V1.type_bits(PacketType::Initial) << 4);
        rewritten[1..5].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(v1.decrypt(&first_packet(&rewritten), None), Err(DecryptError::Authentication));
    }

    #[test]
    fn reserved_bits_set_under_protection_are_refused_after_authentication() {
        let dcid = [1; 8];
        let cipher = InitialCipher::client(Version::V1, &dcid);
        let payload = [0x01; 30];
        let plain = Plain::initial(&dcid, 0, &payload);
        // Build the header by hand with a reserved bit set, then protect it like protect() does.
        let mut header = cipher.header(&plain);
        header[0] |= 0x04;
        let sealed = cipher
            .aead
            .encrypt(GenericArray::from_slice(&cipher.nonce(0)), Payload { msg: &payload, aad: &header })
            .unwrap();
        let pn_offset = header.len() - 4;
        let mut d = header;
        d.extend(sealed);
        let mask = cipher.header_mask(d[pn_offset + 4..pn_offset + 20].try_into().unwrap());
        d[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            d[pn_offset + i] ^= mask[1 + i];
        }
        assert_eq!(cipher.decrypt(&first_packet(&d), None), Err(DecryptError::ReservedBits));
    }

    #[test]
    fn packets_too_short_to_sample_are_refused_and_handshake_packets_are_not_opened() {
        // Length 19: a 4-byte packet number and 15 bytes, one short of a sample.
        let mut d = hex("c000000001 04 01020304 00 00 13");
        d.extend([0; 19]);
        assert_eq!(decrypt_client_initial(&first_packet(&d)), Err(DecryptError::TooShortForSample(d.len())));
        let mut hs = hex("e000000001 04 01020304 00 40 20");
        hs.extend([0; 32]);
        assert_eq!(decrypt_client_initial(&first_packet(&hs)), Err(DecryptError::NotInitial));
    }

    #[test]
    fn every_truncation_of_the_rfc_packet_is_an_error_never_a_panic() {
        let d = vectors::v1_packet();
        for len in 0..d.len() {
            match packets(&d[..len]).next().unwrap() {
                Err(PacketError::Empty | PacketError::Truncated(_) | PacketError::LengthBeyondDatagram { .. }) => {}
                other => panic!("prefix of {len}: {other:?}"),
            }
        }
        // Shortening the Length field with the datagram keeps the header valid; the AEAD refuses.
        for cut in [1usize, 15, 16, 17, 600, 1160] {
            let mut short = d[..d.len() - cut].to_vec();
            let length = 1182 - cut;
            short[16..18].copy_from_slice(&(0x4000 | length as u16).to_be_bytes());
            let opened = decrypt_client_initial(&first_packet(&short));
            assert!(
                matches!(opened, Err(DecryptError::Authentication | DecryptError::TooShortForSample(_))),
                "cut {cut}: {opened:?}"
            );
        }
    }
}
