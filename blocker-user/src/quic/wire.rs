//! Bounds-checked reading of the big-endian integers and variable-length integers (RFC 9000 §16)
//! that QUIC and TLS headers are made of. Every read returns `None` past the end instead of
//! panicking, so the parsers above it can treat any input.

/// A read position in a byte slice.
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not read yet (the cursor does not move).
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.remaining() {
            return None;
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Some(out)
    }

    /// Like [`bytes`](Self::bytes) with a length that came off the wire as a `u64`.
    pub(crate) fn bytes_u64(&mut self, n: u64) -> Option<&'a [u8]> {
        self.bytes(usize::try_from(n).ok()?)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u24(&mut self) -> Option<u32> {
        self.bytes(3).map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.bytes(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A QUIC variable-length integer: the two high bits of the first byte give its length (1, 2,
    /// 4 or 8 bytes), the remaining bits the value, big-endian (RFC 9000 §16).
    pub(crate) fn varint(&mut self) -> Option<u64> {
        let first = *self.buf.get(self.pos)?;
        let len = 1usize << (first >> 6);
        let bytes = self.bytes(len)?;
        let mut value = u64::from(first & 0x3f);
        for &b in &bytes[1..] {
            value = (value << 8) | u64::from(b);
        }
        Some(value)
    }

    /// A TLS vector with a one-byte length prefix.
    pub(crate) fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.bytes(usize::from(n))
    }

    /// A TLS vector with a two-byte length prefix.
    pub(crate) fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }
}

/// The largest value a variable-length integer holds: 2^62 - 1.
pub(crate) const VARINT_MAX: u64 = (1 << 62) - 1;

/// Appends `value` as a variable-length integer in its shortest form (tests build packets with it).
#[cfg(test)]
pub(crate) fn put_varint(out: &mut Vec<u8>, value: u64) {
    assert!(value <= VARINT_MAX);
    if value < 1 << 6 {
        out.push(value as u8);
    } else if value < 1 << 14 {
        out.extend_from_slice(&(0x4000 | value as u16).to_be_bytes());
    } else if value < 1 << 30 {
        out.extend_from_slice(&(0x8000_0000 | value as u32).to_be_bytes());
    } else {
        out.extend_from_slice(&(0xc000_0000_0000_0000 | value).to_be_bytes());
    }
}

/// Bytes from hex digits (whitespace ignored): the fixtures and the tests.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_the_rfc_9000_appendix_a_1_examples() {
        for (bytes, value) in [
            ("c2197c5eff14e88c", 151_288_809_941_952_652),
            ("9d7f3e7d", 494_878_333),
            ("7bbd", 15_293),
            ("25", 37),
            ("4025", 37),
        ] {
            let b = hex(bytes);
            let mut c = Cursor::new(&b);
            assert_eq!(c.varint(), Some(value), "{bytes}");
            assert!(c.is_empty());
        }
    }

    #[test]
    fn varints_round_trip_in_their_shortest_form() {
        for value in [0, 63, 64, 16_383, 16_384, (1 << 30) - 1, 1 << 30, VARINT_MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(Cursor::new(&out).varint(), Some(value));
        }
    }

    #[test]
    fn reads_past_the_end_are_none_and_do_not_move() {
        let b = hex("c2197c");
        let mut c = Cursor::new(&b);
        assert_eq!(c.varint(), None);
        assert_eq!(c.pos(), 0);
        assert_eq!(c.u32(), None);
        assert_eq!(c.u24(), Some(0xc2197c));
        assert_eq!(c.u8(), None);
        assert_eq!(c.bytes_u64(u64::MAX), None);
    }
}
