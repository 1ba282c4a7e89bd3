//! The ClientHello's common case, read in straight code: a segment that starts the stream and
//! holds the hello's first record up to the server name's last byte. The name goes straight
//! into the name scratch, where it is judged; the streaming reader (tls.rs), its state in map
//! memory and its per-field loop iterations are not needed.
//!
//! It takes only what the streaming reader would read to the same name: every field it reads
//! lies inside this segment and the first record (so no record header can sit between them),
//! and it applies the streaming reader's checks. Where the name does not lie whole in the
//! segment (a browser that puts its 1.2 KB post-quantum key share first sends it in the
//! next one), the extensions walked so far are not walked again: the streaming reader takes
//! over at the next extension header, in the state it would have reached itself; where the
//! segment's end cuts the name itself, the reader is set inside it with the bytes so far, as
//! the streaming reader would have left it (and flow.rs parks it with them). Anything
//! else (a field cut before the extensions, a length that does not add up, a hello without
//! extensions or server name) is left to the streaming reader from the segment's first byte.

use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};

use crate::{
    cursor::{read, read_be16, read_pair, span},
    flow::FlowState,
    names::NameScratch,
    tls::{self, CLIENT_HELLO, EXT_SERVER_NAME, HANDSHAKE, MAX_RECORD},
};

/// What the quick read found.
pub enum Quick {
    /// The server name is in the scratch.
    Name,
    /// The reader (reset for this stream) stands at the extension header at this packet
    /// offset, everything before it read: the streaming reader goes on from there.
    Resume(usize),
    /// Left to the streaming reader as it stands: from the segment's first byte.
    Start,
    /// The segment ends inside an extension before the name, which ends in this record with
    /// more extensions after it: the reader is set to pass over the rest of it and then read the
    /// next header, as the streaming reader would have left it at the segment's end. Nothing
    /// more to read here.
    Wait,
}

/// Extension headers walked before the server name at most. Browsers send 15–20 extensions
/// in a shuffled order; a hello whose name comes later goes to the streaming reader.
const QUICK_EXTS: usize = 24;

/// Record header (5), handshake type and length (4), legacy_version and random (34), the
/// session id's length (1): the fixed start every hello has.
const FIXED: usize = 5 + 4 + 34 + 1;

/// Reads a ClientHello starting at packet offset `off` (a segment of `len` payload bytes, the
/// stream's first) as far as this segment and the hello's first record allow: its server name
/// into `s` (`s.len` bytes at `s.bytes`), or the streaming reader `st` (reset for this stream)
/// to the extension header where it must go on.
#[inline(always)]
pub fn read_hello(ctx: &XdpContext, off: usize, len: u32, s: &mut NameScratch, st: &mut FlowState) -> Quick {
    let Some(h) = span::<FIXED>(ctx, off) else { return Quick::Start };
    if h.u8(0) != HANDSHAKE || h.u8(1) != 3 || h.u8(5) as u32 != CLIENT_HELLO {
        return Quick::Start;
    }
    let rec_len = h.be16(3) as usize;
    if rec_len == 0 || rec_len > MAX_RECORD as usize {
        return Quick::Start;
    }
    // Every byte read below lies before `lim`: in this segment and in the first record.
    let seg_end = off + len as usize;
    let rec_end = off + 5 + rec_len;
    let lim = if seg_end < rec_end { seg_end } else { rec_end };
    let hs_len = (h.u8(6) as usize) << 16 | h.be16(7) as usize;

    let sid = h.u8(FIXED - 1) as usize;
    if sid > 32 {
        return Quick::Start;
    }
    let mut p = off + FIXED + sid;
    if p + 2 > lim {
        return Quick::Start;
    }
    let Some(ciphers) = read_be16(ctx, p) else { return Quick::Start };
    p += 2 + ciphers as usize;
    if p + 1 > lim {
        return Quick::Start;
    }
    // The compression methods' length, paired with its first byte (a pair read is one the
    // verifier can bound; the method itself is skipped).
    let Some((comp, _)) = read_pair(ctx, p) else { return Quick::Start };
    p += 1 + comp as usize;
    // The fixed fields end where the handshake message says: no extensions field (the reader
    // decides: no name, or unparsed when the message is shorter still).
    let fixed = 34 + 1 + sid + 2 + ciphers as usize + 1 + comp as usize;
    if fixed >= hs_len || p + 2 > lim {
        return Quick::Start;
    }
    let Some(ext_total) = read_be16(ctx, p) else { return Quick::Start };
    let walked = walk(ctx, p + 2, lim, rec_end, ext_total as usize, s);
    let Some(walked) = in_name(ctx, st, walked, lim, rec_end) else { return Quick::Wait };
    match walked {
        Walk::Name => Quick::Name,
        Walk::At(p, ext_remaining) | Walk::AtName(p, ext_remaining, _) => {
            // Nothing past this segment or the first record was taken (p <= lim): the
            // streaming reader's state there.
            tls::at_extension_header(st, (rec_end - p) as u32, ext_remaining as u32);
            Quick::Resume(p)
        }
        Walk::Skipping(skip, ext_remaining) => {
            tls::at_extension_header(st, (rec_end - lim) as u32, ext_remaining as u32);
            st.skip = skip as u32;
            Quick::Wait
        }
        Walk::Irregular => Quick::Start,
    }
}

/// A waiting reader's next segment: its `len` new bytes at packet offset `off`. Where the
/// reader stands at an extension header (after skipping the rest of the extension before it)
/// or inside the server name, the extensions in this segment and record are walked and the
/// name loaded as in the first segment, the bytes already read taken from the reader. Resume:
/// the reader has been moved to the extension header at that offset.
#[inline(always)]
pub fn continue_hello(ctx: &XdpContext, st: &mut FlowState, off: usize, len: u32, s: &mut NameScratch) -> Quick {
    if st.rec_hdr != 5 || st.rec_remaining == 0 {
        return Quick::Start;
    }
    let seg_end = off + len as usize;
    let rec_end = off + st.rec_remaining as usize;
    let lim = if seg_end < rec_end { seg_end } else { rec_end };
    if tls::at_name(st) {
        return if rest_of_name(ctx, st, off, lim, s) { Quick::Name } else { Quick::Start };
    }
    if !tls::before_extension_header(st) || st.ext_remaining == 0 {
        return Quick::Start;
    }
    let p = off + st.skip as usize;
    if p > lim {
        return Quick::Start;
    }
    let walked = walk(ctx, p, lim, rec_end, st.ext_remaining as usize, s);
    let Some(walked) = in_name(ctx, st, walked, lim, rec_end) else { return Quick::Wait };
    match walked {
        Walk::Name => Quick::Name,
        Walk::At(p, ext_remaining) | Walk::AtName(p, ext_remaining, _) => {
            st.skip = 0;
            st.rec_remaining = (rec_end - p) as u32;
            st.ext_remaining = ext_remaining as u32;
            Quick::Resume(p)
        }
        Walk::Skipping(skip, ext_remaining) => {
            st.skip = skip as u32;
            st.rec_remaining = (rec_end - lim) as u32;
            st.ext_remaining = ext_remaining as u32;
            Quick::Wait
        }
        Walk::Irregular => Quick::Start,
    }
}

/// A walk that stopped at the server name's header, the name cut by the segment's end after its
/// first byte: the reader set inside the name (`begin_name`), None (it waits). Any other walk
/// as it is (`AtName` then stands for `At`).
#[inline(always)]
fn in_name(ctx: &XdpContext, st: &mut FlowState, w: Walk, lim: usize, rec_end: usize) -> Option<Walk> {
    let Walk::AtName(p, _, ext_after) = w else { return Some(w) };
    if let Some((name_len, got)) = cut_name(ctx, p + 4, lim, rec_end) {
        if begin_name(ctx, st, p + 9, name_len, got, rec_end - lim, ext_after) {
            return None;
        }
    }
    Some(w)
}

/// The reader inside a server name the segment's end cut: the name's first `got` bytes (at
/// packet offset `at`) into `st.name` and `st` where the streaming reader would stand at the
/// segment's end (`rec_remaining` bytes left in the record, `ext_remaining` in the extensions
/// after the name's): nothing more to read in this segment. False: left as it was.
#[inline(always)]
fn begin_name(ctx: &XdpContext, st: &mut FlowState, at: usize, name_len: usize, got: usize, rec_remaining: usize, ext_remaining: usize) -> bool {
    let k = (crate::cursor::opaque(got) & 0xff) as u32;
    if k == 0 {
        return false;
    }
    // SAFETY: the helper copies k (1..=255) bytes into a buffer of NAME_ROOM (> 255) bytes.
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, (at & crate::cursor::MAX_OFF) as u32, st.name.as_mut_ptr().cast(), k) } != 0 {
        return false;
    }
    tls::in_name(st, rec_remaining as u32, ext_remaining as u32, name_len as u32, k);
    true
}

/// What a walk over extension headers found.
enum Walk {
    /// The server name is in the scratch.
    Name,
    /// At the extension header at this offset, with this many extension bytes left: the
    /// segment or record ends first, or the name does not lie whole before its end.
    At(usize, usize),
    /// The segment (`lim`) ends inside an extension that is not the name and ends in this
    /// record, with extensions after it: this many of its bytes still to pass over, this many
    /// extension bytes after it.
    Skipping(usize, usize),
    /// As `At`, at the server name's extension header, the name not whole before `lim`; then
    /// the extension bytes after the server name's extension.
    AtName(usize, usize, usize),
    /// Something the streaming reader decides: no server name, a length that does not add up.
    Irregular,
}

/// Walks the extension headers from `p` (`ext_remaining` bytes of extensions left), never
/// reading at or past `lim` (the segment's or the record's end, `rec_end`), to the server name.
#[inline(always)]
fn walk(ctx: &XdpContext, mut p: usize, lim: usize, rec_end: usize, ext_remaining: usize, s: &mut NameScratch) -> Walk {
    // Where the extensions end: each header and body passed moves `p` towards it, so the
    // bytes left are `ext_end - p` (one value less to keep through the loop).
    let ext_end = p + ext_remaining;
    let mut n = 0;
    while n < QUICK_EXTS {
        if p >= ext_end {
            // No server name (the reader says so).
            return Walk::Irregular;
        }
        if p + 4 > lim {
            break;
        }
        let Some(eh) = read::<[u8; 4]>(ctx, p).map(u32::from_be_bytes) else { return Walk::Irregular };
        let (ext_type, next) = (eh >> 16, p + 4 + (eh & 0xffff) as usize);
        if next > ext_end {
            return Walk::Irregular;
        }
        if ext_type == EXT_SERVER_NAME {
            if server_name(ctx, p + 4, lim, s) {
                return Walk::Name;
            }
            // Perhaps cut by the segment's end: looked at once, after the loop (`in_name`; each
            // copy of the loop's body is more code for the CPU to fetch).
            return Walk::AtName(p, ext_end - p, ext_end - next);
        }
        if next > lim {
            // Its body goes on past the segment: passed over in the next one, if it ends in
            // this record and others follow (the key share a browser sends first). Else (it
            // crosses the record, or is the last) the streaming reader skips it.
            if lim < rec_end && next <= rec_end && ext_end > next {
                return Walk::Skipping(next - lim, ext_end - next);
            }
            break;
        }
        p = next;
        n += 1;
    }
    Walk::At(p, ext_end - p)
}

/// A reader inside the server name: the bytes it holds and the rest from this segment, when the
/// rest lies before `lim`, into the scratch.
#[inline(always)]
fn rest_of_name(ctx: &XdpContext, st: &FlowState, off: usize, lim: usize, s: &mut NameScratch) -> bool {
    let (got, name_len) = (st.name_got as usize, st.name_len as usize);
    if got == 0 || got >= name_len || name_len > 253 || off + (name_len - got) > lim {
        return false;
    }
    // The bytes read so far (both buffers 8-aligned, at least 256 bytes).
    crate::flow::copy_name(s.bytes.as_mut_ptr() as *mut u64, st.name.as_ptr() as *const u64, got);
    let k = crate::cursor::opaque(name_len - got) & 0xff;
    if k == 0 {
        return false;
    }
    // SAFETY: the helper copies k (1..=255) bytes to offset got (< 256) of a buffer of
    // BUF_ALLOC (>= 512) bytes.
    let at = got & 0xff;
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, (off & crate::cursor::MAX_OFF) as u32, s.bytes.as_mut_ptr().add(at).cast(), k as u32) } != 0 {
        return false;
    }
    s.len = name_len as u32;
    true
}

/// The server_name extension's body at `p`, where its name is cut by the segment's end `lim`
/// (before the record's end `rec_end`) after at least its first byte: the name's length and the
/// bytes of it before `lim`. The same checks as `server_name`.
#[inline(always)]
fn cut_name(ctx: &XdpContext, p: usize, lim: usize, rec_end: usize) -> Option<(usize, usize)> {
    if lim >= rec_end || p + 6 > lim {
        return None;
    }
    let b = span::<5>(ctx, p)?;
    let name_len = b.be16(3) as usize;
    if b.u8(2) != 0 || name_len == 0 || name_len > 253 || p + 5 + name_len <= lim || p + 5 + name_len > rec_end {
        return None;
    }
    Some((name_len, lim - (p + 5)))
}

/// The server_name extension's body at `p`: the list's length (not checked, as the streaming
/// reader does not), the name type (host_name) and the name.
#[inline(always)]
fn server_name(ctx: &XdpContext, p: usize, lim: usize, s: &mut NameScratch) -> bool {
    if p + 5 > lim {
        return false;
    }
    let Some(b) = span::<5>(ctx, p) else { return false };
    let name_len = b.be16(3) as usize;
    if b.u8(2) != 0 || name_len == 0 || name_len > 253 || p + 5 + name_len > lim {
        return false;
    }
    let k = (crate::cursor::opaque(name_len) & 0xff) as u32;
    if k == 0 {
        return false;
    }
    // SAFETY: the helper copies k (1..=255) bytes into a buffer of BUF_ALLOC (> 255) bytes.
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, ((p + 5) & crate::cursor::MAX_OFF) as u32, s.bytes.as_mut_ptr().cast(), k) } != 0 {
        return false;
    }
    s.len = k;
    true
}
