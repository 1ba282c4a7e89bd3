//! The client's CRYPTO stream of the Initial space, put back together, and the server name read
//! from the ClientHello it carries.
//!
//! A client's Initial packets carry one TLS message, the ClientHello, cut into CRYPTO frames
//! (RFC 9001 §4). A large ClientHello (post-quantum key shares: X25519MLKEM768 adds 1184 bytes)
//! spans two or more Initial packets, and clients cut and reorder the frames on purpose too
//! (Chromium's "chaos protection" scatters a ClientHello over several out-of-order CRYPTO frames
//! with PING and PADDING between them). So the frames are collected by offset, in any order,
//! overlapping or repeated, until the bytes from offset 0 hold a whole handshake message.
//!
//! **Bounded**: one buffer never holds more than its limit (16 KiB by default, far above the
//! 1.5–3 KiB ClientHellos browsers send); bytes at or beyond the limit are dropped, and a
//! ClientHello whose header announces more than the limit is an error (fail open: the flow
//! passes unread). Memory is the data received so far plus one bit per byte.
//!
//! **First copy wins**: a byte received twice keeps its first value, as the server's TLS stack
//! keeps the first copy (RFC 9000 §2.2 lets it assume retransmissions are identical); the TCP
//! reader in the kernel does the same.

use thiserror::Error;

use super::wire::Cursor;

/// Default bound on one ClientHello.
pub const DEFAULT_LIMIT: usize = 16 * 1024;
/// Handshake message type of a ClientHello (RFC 8446 §4).
pub const CLIENT_HELLO: u8 = 1;
/// Extension type of server_name (RFC 6066 §3).
pub const SERVER_NAME: u16 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ReassemblyError {
    #[error("the CRYPTO stream starts with handshake message type {0}, not a ClientHello")]
    NotClientHello(u8),
    #[error("a ClientHello of {length} bytes is beyond the limit of {limit}")]
    TooLarge { length: usize, limit: usize },
}

/// The CRYPTO stream of one connection's Initial space, as far as it has arrived.
#[derive(Clone, Debug)]
pub struct CryptoBuffer {
    limit: usize,
    data: Vec<u8>,
    /// One bit per byte of `data`: received.
    have: Vec<u64>,
    /// Bytes from offset 0 all received.
    contiguous: usize,
}

impl CryptoBuffer {
    /// A buffer that keeps at most `limit` bytes of the stream.
    pub fn new(limit: usize) -> Self {
        CryptoBuffer { limit, data: Vec::new(), have: Vec::new(), contiguous: 0 }
    }

    /// Adds the bytes of one CRYPTO frame. Bytes already received keep their first value; bytes at
    /// or beyond the limit are dropped.
    pub fn insert(&mut self, offset: u64, bytes: &[u8]) {
        let Ok(start) = usize::try_from(offset) else { return };
        if start >= self.limit || bytes.is_empty() {
            return;
        }
        let end = start.saturating_add(bytes.len()).min(self.limit);
        if end > self.data.len() {
            self.data.resize(end, 0);
            self.have.resize(end.div_ceil(64), 0);
        }
        for (i, &b) in (start..end).zip(bytes) {
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            if self.have[word] & bit == 0 {
                self.have[word] |= bit;
                self.data[i] = b;
            }
        }
        while self.contiguous < self.data.len() && self.has(self.contiguous) {
            self.contiguous += 1;
        }
    }

    fn has(&self, i: usize) -> bool {
        self.have[i / 64] & (1 << (i % 64)) != 0
    }

    /// Bytes received from offset 0 without a gap.
    pub fn contiguous(&self) -> usize {
        self.contiguous
    }

    /// Heap bytes this buffer holds.
    pub fn memory(&self) -> usize {
        self.data.capacity() + self.have.capacity() * 8
    }

    /// The whole ClientHello (4-byte handshake header included) once it has arrived; `None` while
    /// bytes are missing. An error as soon as the header shows the stream cannot be read.
    pub fn client_hello(&self) -> Result<Option<&[u8]>, ReassemblyError> {
        if self.contiguous < 4 {
            return Ok(None);
        }
        let head = &self.data[..4];
        if head[0] != CLIENT_HELLO {
            return Err(ReassemblyError::NotClientHello(head[0]));
        }
        let length = 4 + (usize::from(head[1]) << 16 | usize::from(head[2]) << 8 | usize::from(head[3]));
        if length > self.limit {
            return Err(ReassemblyError::TooLarge { length, limit: self.limit });
        }
        Ok((self.contiguous >= length).then(|| &self.data[..length]))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ClientHelloError {
    #[error("not a ClientHello message")]
    NotClientHello,
    #[error("ClientHello ends inside its {0}")]
    Truncated(&'static str),
    #[error("server_name holds a host name that is empty or not printable ASCII")]
    BadServerName,
}

/// The host name of the server_name extension (RFC 6066 §3) of a ClientHello (`message`: the
/// handshake message, 4-byte header included), as sent; `None` if it has no such extension.
///
/// ```text
/// ClientHello: legacy_version(2) random(32) legacy_session_id<0..32>
///              cipher_suites<2..2^16-2> legacy_compression_methods<1..2^8-1>
///              extensions<8..2^16-1>: { type(2) data<0..2^16-1> }*
/// server_name: server_name_list<1..2^16-1>: { name_type(1), host_name<1..2^16-1> if type 0 }*
/// ```
///
/// The first host name of the first server_name extension counts. With Encrypted Client Hello,
/// that is the outer ClientHello's name: the client-facing server's, which is what the network
/// sees. The name is not normalised (case, trailing dot): list matching does that.
pub fn server_name(message: &[u8]) -> Result<Option<String>, ClientHelloError> {
    let mut m = Cursor::new(message);
    if m.u8() != Some(CLIENT_HELLO) {
        return Err(ClientHelloError::NotClientHello);
    }
    let len = m.u24().ok_or(ClientHelloError::Truncated("header"))?;
    let body = m.bytes(len as usize).ok_or(ClientHelloError::Truncated("header"))?;
    let mut c = Cursor::new(body);
    let t = ClientHelloError::Truncated;
    c.skip(2 + 32).ok_or(t("version and random"))?;
    c.vec8().ok_or(t("session id"))?;
    c.vec16().ok_or(t("cipher suites"))?;
    c.vec8().ok_or(t("compression methods"))?;
    if c.is_empty() {
        return Ok(None); // no extensions at all (not TLS 1.3, but well-formed)
    }
    let mut exts = Cursor::new(c.vec16().ok_or(t("extensions"))?);
    while !exts.is_empty() {
        let ty = exts.u16().ok_or(t("extensions"))?;
        let data = exts.vec16().ok_or(t("extensions"))?;
        if ty != SERVER_NAME {
            continue;
        }
        let mut list = Cursor::new(Cursor::new(data).vec16().ok_or(t("server_name"))?);
        while !list.is_empty() {
            let name_type = list.u8().ok_or(t("server_name"))?;
            let name = list.vec16().ok_or(t("server_name"))?;
            if name_type == 0 {
                if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
                    return Err(ClientHelloError::BadServerName);
                }
                return Ok(Some(String::from_utf8(name.to_vec()).expect("ASCII")));
            }
        }
        return Ok(None);
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::quic::vectors;

    /// A ClientHello for `name` (or none) whose extensions add up to at least `size` bytes: a
    /// key_share-like filler extension stands in for a post-quantum key share.
    pub(crate) fn client_hello(name: Option<&str>, size: usize) -> Vec<u8> {
        let mut exts = Vec::new();
        let mut ext = |ty: u16, data: &[u8]| {
            exts.extend_from_slice(&ty.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        };
        ext(0x002b, &[0x02, 0x03, 0x04]); // supported_versions: TLS 1.3
        if let Some(name) = name {
            let mut sni = Vec::new();
            sni.extend_from_slice(&(name.len() as u16 + 3).to_be_bytes());
            sni.push(0);
            sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
            sni.extend_from_slice(name.as_bytes());
            ext(SERVER_NAME, &sni);
        }
        ext(0x0033, &vec![0x4d; size.saturating_sub(200)]);
        let mut body = vec![0x03, 0x03];
        body.extend([0x11; 32]);
        body.push(32);
        body.extend([0x22; 32]);
        body.extend([0x00, 0x06, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03]);
        body.extend([0x01, 0x00]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut m = vec![CLIENT_HELLO];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend(body);
        m
    }

    #[test]
    fn the_rfc_client_hello_names_example_com() {
        assert_eq!(server_name(&vectors::client_hello()), Ok(Some("example.com".into())));
    }

    #[test]
    fn the_stream_is_complete_when_the_handshake_header_length_has_arrived() {
        let hello = vectors::client_hello();
        let mut b = CryptoBuffer::new(DEFAULT_LIMIT);
        assert_eq!(b.client_hello(), Ok(None));
        b.insert(0, &hello[..3]);
        assert_eq!(b.client_hello(), Ok(None), "header incomplete");
        b.insert(3, &hello[3..hello.len() - 1]);
        assert_eq!(b.client_hello(), Ok(None), "one byte missing");
        b.insert(hello.len() as u64 - 1, &hello[hello.len() - 1..]);
        assert_eq!(b.client_hello(), Ok(Some(&hello[..])));
    }

    #[test]
    fn frames_arrive_in_any_order_overlapping_and_the_first_copy_wins() {
        let hello = vectors::client_hello();
        let n = hello.len();
        let mut b = CryptoBuffer::new(DEFAULT_LIMIT);
        b.insert(100, &hello[100..]); // the second half first
        assert_eq!((b.contiguous(), b.client_hello()), (0, Ok(None)));
        // A retransmission of 50..150 with other contents: its overlap with 100.. is ignored.
        let mut forged = hello[50..150].to_vec();
        forged.iter_mut().for_each(|x| *x ^= 0xff);
        b.insert(50, &forged);
        assert_eq!(b.contiguous(), 0);
        b.insert(0, &hello[..60]); // overlaps the forged 50..60: the forged copy came first
        assert_eq!(b.contiguous(), n);
        let got = b.client_hello().unwrap().unwrap();
        assert_eq!(got[..50], hello[..50]);
        assert_eq!(got[50..100], forged[..50]);
        assert_eq!(got[100..], hello[100..]);
    }

    #[test]
    fn one_byte_frames_in_reverse_order_reassemble() {
        let hello = client_hello(Some("www.example.org"), 3000);
        let mut b = CryptoBuffer::new(DEFAULT_LIMIT);
        for i in (0..hello.len()).rev() {
            assert_eq!(b.client_hello(), Ok(None));
            b.insert(i as u64, &hello[i..=i]);
        }
        let got = b.client_hello().unwrap().unwrap();
        assert_eq!(server_name(got), Ok(Some("www.example.org".into())));
    }

    #[test]
    fn memory_is_bounded_by_the_limit_and_large_hellos_are_refused() {
        let mut b = CryptoBuffer::new(4096);
        b.insert(4000, &[7; 1000]);
        b.insert(u64::MAX - 3, &[7; 100]);
        b.insert(1 << 40, &[7; 100]);
        assert!(b.memory() <= 4096 + 4096 / 8 + 64, "{}", b.memory());
        let big = client_hello(Some("a.example"), 5000);
        let mut b = CryptoBuffer::new(4096);
        b.insert(0, &big);
        assert_eq!(b.client_hello(), Err(ReassemblyError::TooLarge { length: big.len(), limit: 4096 }));
        // A stream that starts with another handshake message.
        let mut b = CryptoBuffer::new(4096);
        b.insert(0, &[2, 0, 0, 4, 0, 0, 0, 0]);
        assert_eq!(b.client_hello(), Err(ReassemblyError::NotClientHello(2)));
    }

    #[test]
    fn hellos_without_a_name_or_without_extensions_have_no_server_name() {
        assert_eq!(server_name(&client_hello(None, 0)), Ok(None));
        // Only the fields up to the compression methods.
        let mut bare = vec![CLIENT_HELLO, 0, 0, 2 + 32 + 1 + 4 + 2];
        bare.extend([3, 3]);
        bare.extend([0; 32]);
        bare.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
        assert_eq!(server_name(&bare), Ok(None));
        // A server_name list with only an unknown name type.
        let mut odd = client_hello(None, 0);
        let ext = [0x00, 0x00, 0x00, 0x06, 0x00, 0x04, 0x07, 0x00, 0x01, b'x'];
        let at = odd.len();
        odd.extend(ext);
        bump_lengths(&mut odd, at, ext.len());
        assert_eq!(server_name(&odd), Ok(None));
    }

    /// Grows the handshake, body and extensions lengths of `hello` by `n` (bytes appended at the end
    /// of the extensions, which end at `at`).
    fn bump_lengths(hello: &mut [u8], at: usize, n: usize) {
        let len = u32::from_be_bytes([0, hello[1], hello[2], hello[3]]) as usize + n;
        hello[1..4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        let exts_at = 4 + 2 + 32 + 1 + 32 + 8 + 2;
        let exts = u16::from_be_bytes([hello[exts_at], hello[exts_at + 1]]) as usize + n;
        hello[exts_at..exts_at + 2].copy_from_slice(&(exts as u16).to_be_bytes());
        assert_eq!(exts_at + 2 + exts, at + n);
    }

    #[test]
    fn names_that_are_not_printable_ascii_are_refused() {
        for bad in ["", "exa mple.com", "bücher.example", "a\0b"] {
            let h = client_hello(Some(bad), 0);
            assert_eq!(server_name(&h), Err(ClientHelloError::BadServerName), "{bad:?}");
        }
    }

    #[test]
    fn every_truncation_of_a_client_hello_is_an_error_or_no_name_never_a_panic() {
        let hello = vectors::client_hello();
        for len in 0..hello.len() {
            let mut cut = hello[..len].to_vec();
            // Keep the header's length consistent with the cut, so the inner fields are what break.
            if len >= 4 {
                cut[1..4].copy_from_slice(&((len - 4) as u32).to_be_bytes()[1..]);
            }
            match server_name(&cut) {
                Err(_) | Ok(None) => {}
                Ok(Some(name)) => assert!("example.com".starts_with(&name), "{len}: {name}"),
            }
        }
    }
}
