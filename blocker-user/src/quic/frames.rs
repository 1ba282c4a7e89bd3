//! The frames of a decrypted Initial payload (RFC 9000 §12.4, §19).
//!
//! Initial packets may carry only PADDING, PING, ACK (with or without ECN counts), CRYPTO and
//! CONNECTION_CLOSE of type 0x1c (RFC 9000 §12.4, Table 3). Those are read (ACK and
//! CONNECTION_CLOSE only to be skipped); any other frame type is an error, as it is for the
//! server, which closes the connection with PROTOCOL_VIOLATION.

use thiserror::Error;

use super::wire::{Cursor, VARINT_MAX};

pub const PADDING: u8 = 0x00;
pub const PING: u8 = 0x01;
pub const ACK: u8 = 0x02;
pub const ACK_ECN: u8 = 0x03;
pub const CRYPTO: u8 = 0x06;
pub const CONNECTION_CLOSE: u8 = 0x1c;

/// One frame of an Initial packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A run of PADDING frames (zero bytes), counted.
    Padding(usize),
    Ping,
    /// An ACK frame, skipped: what it acknowledges does not matter here.
    Ack,
    /// Part of the TLS handshake stream of the Initial space: `data` at `offset`.
    Crypto {
        offset: u64,
        data: &'a [u8],
    },
    /// The client gives up on the connection.
    ConnectionClose {
        error_code: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame type {0:#x} is not allowed in Initial packets")]
    NotAllowedInInitial(u64),
    #[error("payload ends inside a {0} frame")]
    Truncated(&'static str),
    #[error("CRYPTO frame ends beyond 2^62 - 1")]
    CryptoBeyondMax,
}

/// The frames of a decrypted Initial payload, in order; an error ends the walk.
pub fn frames(payload: &[u8]) -> Frames<'_> {
    Frames { c: Cursor::new(payload), done: false }
}

/// Iterator returned by [`frames`].
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    c: Cursor<'a>,
    done: bool,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.c.is_empty() {
            return None;
        }
        let frame = next_frame(&mut self.c);
        if frame.is_err() {
            self.done = true;
        }
        Some(frame)
    }
}

fn next_frame<'a>(c: &mut Cursor<'a>) -> Result<Frame<'a>, FrameError> {
    // Frame types are varints in their shortest form (RFC 9000 §12.4); every type allowed in
    // Initials fits one byte, so a longer encoding is refused whatever its value.
    let before = c.pos();
    let ty = c.varint().ok_or(FrameError::Truncated("frame type"))?;
    if c.pos() - before > 1 {
        return Err(FrameError::NotAllowedInInitial(ty));
    }
    match ty {
        0x00 => {
            let zeros = c.rest().iter().take_while(|&&b| b == PADDING).count();
            c.skip(zeros).expect("counted in what is left");
            Ok(Frame::Padding(zeros + 1))
        }
        0x01 => Ok(Frame::Ping),
        0x02 | 0x03 => {
            skip_ack(c, ty == 0x03).ok_or(FrameError::Truncated("ACK"))?;
            Ok(Frame::Ack)
        }
        0x06 => {
            let t = FrameError::Truncated("CRYPTO");
            let offset = c.varint().ok_or(t)?;
            let len = c.varint().ok_or(t)?;
            let data = c.bytes_u64(len).ok_or(t)?;
            if offset.checked_add(len).is_none_or(|end| end > VARINT_MAX) {
                return Err(FrameError::CryptoBeyondMax);
            }
            Ok(Frame::Crypto { offset, data })
        }
        0x1c => {
            let t = FrameError::Truncated("CONNECTION_CLOSE");
            let error_code = c.varint().ok_or(t)?;
            let _frame_type = c.varint().ok_or(t)?;
            let reason_len = c.varint().ok_or(t)?;
            c.bytes_u64(reason_len).ok_or(t)?;
            Ok(Frame::ConnectionClose { error_code })
        }
        other => Err(FrameError::NotAllowedInInitial(other)),
    }
}

/// ACK frame (RFC 9000 §19.3): Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range,
/// then Range Count pairs of Gap and ACK Range Length, then with ECN the ECT0, ECT1 and ECN-CE
/// counts. All varints. The loop ends when the payload does, whatever the Range Count claims.
fn skip_ack(c: &mut Cursor<'_>, ecn: bool) -> Option<()> {
    let _largest = c.varint()?;
    let _delay = c.varint()?;
    let ranges = c.varint()?;
    let _first_range = c.varint()?;
    for _ in 0..ranges {
        let _gap = c.varint()?;
        let _len = c.varint()?;
    }
    if ecn {
        for _ in 0..3 {
            c.varint()?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::vectors;
    use crate::quic::wire::{hex, put_varint};

    fn all(payload: &[u8]) -> Vec<Result<Frame<'_>, FrameError>> {
        frames(payload).collect()
    }

    #[test]
    fn the_rfc_client_initial_payload_is_one_crypto_frame_and_padding() {
        let payload = vectors::payload();
        let f = all(&payload);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0], Ok(Frame::Crypto { offset: 0, data: &vectors::client_hello()[..] }));
        assert_eq!(f[1], Ok(Frame::Padding(1162 - (4 + 0xf1))));
    }

    #[test]
    fn the_rfc_server_initial_payload_is_an_ack_then_a_crypto_frame() {
        // RFC 9001 Appendix A.3: ACK of packet 0, then a 90-byte ServerHello at offset 0.
        let payload = hex("02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf73988cfc79825df566dc5430b\
             9a045a1200130100002e00330024001d00209d3c940d89690b84d08a60993c144eca684d1081287c834d53\
             11bcf32bb9da1a002b00020304");
        let f = all(&payload);
        assert_eq!(f[0], Ok(Frame::Ack));
        match f[1] {
            Ok(Frame::Crypto { offset: 0, data }) => assert_eq!((data.len(), data[0]), (0x5a, 0x02)),
            ref other => panic!("{other:?}"),
        }
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn ack_frames_with_ranges_and_ecn_counts_are_skipped_whole() {
        let mut p = Vec::new();
        // ACK_ECN: largest 1000, delay 20, 2 ranges, first range 3, (gap 1, len 2) x2, 3 counts.
        p.push(ACK_ECN);
        for v in [1000, 20, 2, 3, 1, 2, 1, 2, 7, 8, 70_000] {
            put_varint(&mut p, v);
        }
        p.push(PING);
        p.extend([CRYPTO, 0x44, 0x00, 0x03, b'a', b'b', b'c']); // offset 1024, 3 bytes
        p.extend([CONNECTION_CLOSE, 0x0a, 0x06, 0x02, b'n', b'o']);
        p.extend([0, 0, 0]);
        assert_eq!(
            all(&p),
            [
                Ok(Frame::Ack),
                Ok(Frame::Ping),
                Ok(Frame::Crypto { offset: 1024, data: b"abc" }),
                Ok(Frame::ConnectionClose { error_code: 10 }),
                Ok(Frame::Padding(3)),
            ]
        );
        // Without the ECN counts the same bytes read differently: a plain ACK consumes less.
        p[0] = ACK;
        assert_ne!(all(&p)[1], Ok(Frame::Ping));
    }

    #[test]
    fn frames_not_allowed_in_initials_are_errors_that_end_the_walk() {
        for (bytes, ty) in [
            (&[0x08, 0, 1, 2][..], 0x08), // STREAM
            (&[0x1d, 0, 0, 0][..], 0x1d), // CONNECTION_CLOSE of the application
            (&[0x1e][..], 0x1e),          // HANDSHAKE_DONE
            (&[0x18, 0, 0][..], 0x18),    // NEW_CONNECTION_ID
            (&[0x40, 0x01][..], 0x01),    // PING in two bytes: not the shortest form
            (&[0x7f, 0xff][..], 0x3fff),
        ] {
            let mut p = vec![PING];
            p.extend_from_slice(bytes);
            p.push(PING);
            assert_eq!(all(&p), [Ok(Frame::Ping), Err(FrameError::NotAllowedInInitial(ty))], "{bytes:02x?}");
        }
    }

    #[test]
    fn truncated_frames_and_crypto_beyond_2_62_are_errors() {
        assert_eq!(all(&[CRYPTO, 0x00, 0x05, 1, 2]), [Err(FrameError::Truncated("CRYPTO"))]);
        assert_eq!(all(&[CRYPTO, 0x00]), [Err(FrameError::Truncated("CRYPTO"))]);
        assert_eq!(all(&[ACK, 0x01, 0x00, 0x3f, 0x00, 0x00]), [Err(FrameError::Truncated("ACK"))]);
        assert_eq!(all(&[CONNECTION_CLOSE, 0x01, 0x00, 0x05, b'x']), [Err(FrameError::Truncated("CONNECTION_CLOSE"))]);
        let mut p = vec![CRYPTO];
        put_varint(&mut p, VARINT_MAX);
        put_varint(&mut p, 1);
        p.push(b'x');
        assert_eq!(all(&p), [Err(FrameError::CryptoBeyondMax)]);
        // An ACK claiming 2^62 - 1 ranges ends with the payload, at once.
        let mut p = vec![ACK, 0, 0];
        put_varint(&mut p, VARINT_MAX);
        p.extend([0; 64]);
        assert_eq!(all(&p), [Err(FrameError::Truncated("ACK"))]);
    }

    #[test]
    fn every_truncation_of_the_rfc_payload_walks_without_panic() {
        let payload = vectors::payload();
        for len in 0..payload.len() {
            let f = all(&payload[..len]);
            if len == 0 {
                assert!(f.is_empty());
            } else if len < 4 + 0xf1 {
                assert_eq!(f, [Err(FrameError::Truncated("CRYPTO"))], "{len}");
            } else {
                assert!(f.iter().all(Result::is_ok), "{len}");
            }
        }
    }
}
