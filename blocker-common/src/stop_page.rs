//! The HTTP response the program sends to a client whose request was blocked: a 451 that names
//! the list body (RFC 7725) and sends the browser on to the stop-page service. The controller
//! renders it; the program only inserts the requested host between `prefix` and `suffix`.

use crate::assert_size;

pub const PREFIX_MAX: usize = 1024;
pub const SUFFIX_MAX: usize = 512;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopPageTemplate {
    /// Bytes used of `prefix` (even, so the host starts on a 16-bit boundary) and `suffix`.
    pub prefix_len: u32,
    pub suffix_len: u32,
    /// One's-complement sums (RFC 1071, unfolded) of prefix and suffix as if each started on
    /// a 16-bit boundary: the program adds them to the host's sum for the TCP checksum.
    pub prefix_sum: u32,
    pub suffix_sum: u32,
    pub prefix: [u8; PREFIX_MAX],
    pub suffix: [u8; SUFFIX_MAX],
}
assert_size!(StopPageTemplate, 16 + PREFIX_MAX + SUFFIX_MAX);

impl Default for StopPageTemplate {
    fn default() -> Self {
        StopPageTemplate { prefix_len: 0, suffix_len: 0, prefix_sum: 0, suffix_sum: 0, prefix: [0; PREFIX_MAX], suffix: [0; SUFFIX_MAX] }
    }
}

/// One's-complement sum of `data` read as big-endian 16-bit words from an even offset,
/// folded to 16 bits (without the final inversion).
pub fn ones_sum(data: &[u8]) -> u32 {
    let mut s: u64 = 0;
    for c in data.chunks(2) {
        s += (u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])) as u64;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u32
}
