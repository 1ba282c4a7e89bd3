//! The server name of a TLS ClientHello at the start of a TCP stream, from RFC 8446 §5.1
//! (records), §4.1.2 (ClientHello), §4.2 (extensions) and RFC 6066 §3 (server_name).
//!
//! The stream is a sequence of handshake records (type 22, version major 3, length 1 to 2^14 +
//! 2048); their payloads concatenated are the handshake message: type 1 (client_hello), a
//! 3-byte length, then legacy_version (2), random (32), legacy_session_id (≤ 32 bytes),
//! cipher_suites, legacy_compression_methods, extensions. The first server_name extension's
//! first entry must be a host_name (type 0) of 1 to 253 bytes. The name is judged as soon as
//! its last byte is read: no more of the message is needed.
//!
//! Outcomes: a name; no name (the extensions end without server_name, or there are none); not
//! readable (`tls_unparsed`: a field out of range, a record that is not a handshake record, a
//! needed byte the segment declares but the frame does not hold); or pending (the segment ends
//! first). Bytes that are only skipped need not be in the frame.
//!
//! Leniencies the model shares with the program (both judge by the name they find; a server
//! refuses such a hello anyway): the server_name list and extension lengths around the first
//! name are not cross-checked, and the extensions are bounded by their own length, not the
//! handshake message's. The handshake length only says whether there are extensions at all
//! (RFC 8446 §4.1.2 allows their absence in TLS 1.2 hellos): a hello whose length ends right
//! after the compression methods has no name, one whose length is shorter is not readable.

use super::{
    frame::{At, Payload},
    name::MAX_NAME,
};

/// Largest record payload (RFC 8446 §5.2: 2^14 plus 2048 of TLS 1.2 expansion).
pub const MAX_RECORD: usize = 16384 + 2048;
const HANDSHAKE: u8 = 22;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hello {
    Pending,
    NoName,
    Unparsed,
    /// The host_name's bytes as sent (not yet normalised).
    Name(Vec<u8>),
}

/// Does the segment start like a handshake record with a ClientHello? The program checks only
/// the bytes a first segment must have (ARCHITECTURE.md: a ClientHello split after its first
/// byte is still recognised): the record type, the version's major byte when the segment
/// declares two bytes (and holds them), the handshake type when the frame holds it.
pub fn starts_client_hello(p: &Payload) -> bool {
    let b = p.bytes;
    if p.declared == 1 {
        return b.first() == Some(&HANDSHAKE);
    }
    let [t, major, ..] = *b else { return false };
    t == HANDSHAKE && major == 3 && (p.declared < 6 || b.len() < 6 || b[5] == 1)
}

enum Stop {
    /// The segment ends: the rest comes in later segments.
    End,
    Unparsed,
}

struct Reader<'a> {
    p: Payload<'a>,
    /// Next stream byte.
    pos: usize,
    /// Bytes left in the current record (0: a record header comes next).
    in_record: usize,
}

impl Reader<'_> {
    fn raw(&mut self) -> Result<u8, Stop> {
        match self.p.at(self.pos) {
            At::Byte(b) => {
                self.pos += 1;
                Ok(b)
            }
            At::End => Err(Stop::End),
            At::Missing => Err(Stop::Unparsed),
        }
    }

    fn record(&mut self) -> Result<(), Stop> {
        if self.raw()? != HANDSHAKE || self.raw()? != 3 {
            return Err(Stop::Unparsed);
        }
        let _minor = self.raw()?;
        let len = usize::from(self.raw()?) << 8 | usize::from(self.raw()?);
        if len == 0 || len > MAX_RECORD {
            return Err(Stop::Unparsed);
        }
        self.in_record = len;
        Ok(())
    }

    /// The next byte of the handshake message.
    fn byte(&mut self) -> Result<u8, Stop> {
        if self.in_record == 0 {
            self.record()?;
        }
        let b = self.raw()?;
        self.in_record -= 1;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> Result<usize, Stop> {
        let mut v = 0;
        for _ in 0..n {
            v = v << 8 | usize::from(self.byte()?);
        }
        Ok(v)
    }

    /// Passes over `n` message bytes without reading them.
    fn skip(&mut self, mut n: usize) -> Result<(), Stop> {
        while n > 0 {
            if self.in_record == 0 {
                self.record()?;
            }
            let left = self.p.declared - self.pos;
            if left == 0 {
                return Err(Stop::End);
            }
            let k = n.min(self.in_record).min(left);
            self.pos += k;
            self.in_record -= k;
            n -= k;
        }
        Ok(())
    }
}

/// Reads the ClientHello at the start of the segment to its server name.
pub fn read_client_hello(p: &Payload) -> Hello {
    let mut r = Reader { p: *p, pos: 0, in_record: 0 };
    match hello(&mut r) {
        Ok(h) => h,
        Err(Stop::End) => Hello::Pending,
        Err(Stop::Unparsed) => Hello::Unparsed,
    }
}

fn hello(r: &mut Reader) -> Result<Hello, Stop> {
    if r.byte()? != 1 {
        return Ok(Hello::Unparsed);
    }
    let length = r.uint(3)?;
    r.skip(2 + 32)?;
    let session_id = r.uint(1)?;
    if session_id > 32 {
        return Ok(Hello::Unparsed);
    }
    r.skip(session_id)?;
    let suites = r.uint(2)?;
    r.skip(suites)?;
    let compression = r.uint(1)?;
    r.skip(compression)?;
    let fixed = 2 + 32 + 1 + session_id + 2 + suites + 1 + compression;
    if fixed >= length {
        // No extensions field (RFC 5246 §7.4.1.2: a hello may end after the compression
        // methods), or a length too short for the fixed fields.
        return Ok(if fixed == length { Hello::NoName } else { Hello::Unparsed });
    }
    let mut left = r.uint(2)?;
    if left == 0 {
        return Ok(Hello::NoName);
    }
    loop {
        let ty = r.uint(2)?;
        let len = r.uint(2)?;
        if left < 4 + len {
            return Ok(Hello::Unparsed);
        }
        left -= 4 + len;
        if ty == 0 {
            let _list = r.uint(2)?;
            if r.uint(1)? != 0 {
                return Ok(Hello::Unparsed);
            }
            let n = r.uint(2)?;
            if n == 0 || n > MAX_NAME {
                return Ok(Hello::Unparsed);
            }
            let name = (0..n).map(|_| r.byte()).collect::<Result<Vec<u8>, Stop>>()?;
            return Ok(Hello::Name(name));
        }
        r.skip(len)?;
        if left == 0 {
            return Ok(Hello::NoName);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packets::tls::{self, Hello as Build};

    fn read(stream: &[u8]) -> Hello {
        read_client_hello(&Payload { bytes: stream, declared: stream.len() })
    }

    #[test]
    fn finds_the_name_wherever_the_records_split_the_message() {
        for before in [0, 3, 8] {
            let msg = tls::client_hello(&Build { sni: Some("Blocked.Example"), before, key_share: 1248 });
            for max in [1, 2, 5, 77, 16384] {
                let s = tls::records(&msg, max);
                assert_eq!(read(&s), Hello::Name(b"Blocked.Example".to_vec()), "before {before}, records of {max}");
                assert!(starts_client_hello(&Payload { bytes: &s, declared: s.len() }));
            }
        }
    }

    #[test]
    fn a_cut_stream_is_pending_and_a_missing_byte_is_unparsed() {
        let s = tls::stream(&Build::default());
        let at = tls::sni_offset(&s, "blocked.example");
        for cut in [1, 5, 6, 40, at, at + 3] {
            assert_eq!(read(&s[..cut]), Hello::Pending, "cut at {cut}");
            let p = Payload { bytes: &s[..cut], declared: s.len() };
            assert_eq!(read_client_hello(&p), Hello::Unparsed, "frame cut at {cut}");
        }
    }

    #[test]
    fn without_server_name_there_is_no_name() {
        let s = tls::stream(&Build { sni: None, ..Default::default() });
        assert_eq!(read(&s), Hello::NoName);
        let mut not_hello = s.clone();
        not_hello[5] = 2;
        assert_eq!(read(&not_hello), Hello::Unparsed);
        assert!(!starts_client_hello(&Payload { bytes: &not_hello, declared: not_hello.len() }));
    }
}
