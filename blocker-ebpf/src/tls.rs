//! A streaming reader of the TLS ClientHello, from the first byte of the client's stream to the
//! server_name extension, across any number of TCP segments and TLS records.
//!
//! Real 2026 ClientHellos are 1.9–2.7 KB (post-quantum key shares) and often carry the SNI in the
//! second TCP segment, so the reader keeps its position in `FlowState` between segments instead
//! of needing the whole message in one packet. It never buffers the message: it keeps the field
//! it is in, the bytes it still has to skip, and the name bytes it has copied (≤ 253).
//!
//! Each bpf_loop iteration does one unit of work: a whole record header or field when its
//! bytes are contiguous in this segment and record (the common case), else one byte of it (a
//! field split across segments or records, however small the pieces), or one skip or one name
//! chunk copy. A ClientHello with 16 extensions takes about 40 iterations.

use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};

use crate::{
    cursor::{read, read_be16, read_pair, read_u8},
    flow::{FlowState, PROTO_TLS},
    looping::{BREAK, CONTINUE},
    reader::{self, FeedCtx, NAME, NEED_MORE, NO_NAME, Outcome, UNPARSED},
};

// Fields of the ClientHello, in order (RFC 8446 §4.1.2, §4.2; RFC 6066 §3).
const S_HS_TYPE: u32 = 0;
const S_HS_LEN: u32 = 1;
const S_SESSION_ID: u32 = 2;
const S_CIPHERS: u32 = 3;
const S_COMPRESSION: u32 = 4;
const S_EXTENSIONS: u32 = 5;
const S_EXT_HEADER: u32 = 6;
const S_SNI_LIST: u32 = 7;
const S_SNI_TYPE: u32 = 8;
const S_SNI_LEN: u32 = 9;
const S_SNI_NAME: u32 = 10;
/// The extensions ended without server_name.
const S_END: u32 = 11;
/// The handshake length ends the message before the extensions field (a hello without
/// extensions, or a length too short for its fixed fields): the last skip, then the verdict.
const S_NO_EXT: u32 = 12;
const S_SHORT: u32 = 13;

pub const HANDSHAKE: u8 = 0x16;
pub const CLIENT_HELLO: u32 = 1;
pub const EXT_SERVER_NAME: u32 = 0;
/// Largest record payload TLS allows (2^14) plus the expansion TLS 1.2 permits (2048).
pub const MAX_RECORD: u32 = 16384 + 2048;
/// Name bytes copied per iteration.
const CHUNK: u32 = 64;

/// Does this payload start like a TLS record carrying a ClientHello? Only the bytes present are
/// checked, so a ClientHello split after its first byte is still recognised.
#[inline(always)]
pub fn starts_client_hello(ctx: &XdpContext, off: usize, len: u32) -> bool {
    let Some((t, major)) = read_pair(ctx, off) else {
        // A one-byte first segment: the record type alone.
        return len == 1 && read_u8(ctx, off) == Some(HANDSHAKE);
    };
    if t != HANDSHAKE || (len >= 2 && major != 3) {
        return false;
    }
    if len >= 6 {
        if let Some((_, hs_type)) = read_pair(ctx, off + 4) {
            return hs_type as u32 == CLIENT_HELLO;
        }
    }
    true
}

/// A fresh reader positioned at the start of the stream whose first byte has sequence `seq`.
#[inline(always)]
pub fn reset(st: &mut FlowState, seq: u32) {
    reader::start(st, PROTO_TLS, seq);
    st.step = S_HS_TYPE;
    st.need = 1;
    reader::set(&mut st.rec_hdr, 0);
    reader::set(&mut st.rec_len, 0);
    reader::set(&mut st.rec_remaining, 0);
    reader::set(&mut st.ext_remaining, 0);
    reader::set(&mut st.ext_type, 0);
}

/// A reader reset for its stream, moved to the start of an extension header with all bytes
/// before it read (tls_quick.rs): `rec_remaining` bytes left in the first record,
/// `ext_remaining` in the extensions (> 0).
#[inline(always)]
pub fn at_extension_header(st: &mut FlowState, rec_remaining: u32, ext_remaining: u32) {
    st.rec_hdr = 5;
    st.rec_remaining = rec_remaining;
    st.ext_remaining = ext_remaining;
    enter(st, S_EXT_HEADER);
}

/// A reader reset for its stream, moved inside the server name as the streaming reader leaves
/// it at a segment's end (flow.rs `unpark`): `name_got` of the name's `name_len` bytes read
/// (already in `st.name`), `rec_remaining` bytes left in the record, `ext_remaining` in the
/// extensions after the server name's.
#[inline(always)]
pub fn in_name(st: &mut FlowState, rec_remaining: u32, ext_remaining: u32, name_len: u32, name_got: u32) {
    st.rec_hdr = 5;
    st.rec_remaining = rec_remaining;
    st.ext_remaining = ext_remaining;
    st.ext_type = EXT_SERVER_NAME;
    st.name_len = name_len;
    st.name_got = name_got;
    enter(st, S_SNI_NAME);
}

/// The reader is copying the server name (tls_quick.rs).
#[inline(always)]
pub fn at_name(st: &FlowState) -> bool {
    st.step == S_SNI_NAME
}

/// The reader's next field is an extension header not yet begun, once `skip` bytes (the rest
/// of the extension before it) are passed over (tls_quick.rs).
#[inline(always)]
pub fn before_extension_header(st: &FlowState) -> bool {
    st.step == S_EXT_HEADER && st.need == 4
}

#[inline(always)]
fn field_size(step: u32) -> u32 {
    match step {
        S_HS_TYPE | S_SESSION_ID | S_COMPRESSION | S_SNI_TYPE => 1,
        S_CIPHERS | S_EXTENSIONS | S_SNI_LIST | S_SNI_LEN => 2,
        S_HS_LEN => 3,
        S_EXT_HEADER => 4,
        _ => 0,
    }
}

#[inline(always)]
fn enter(st: &mut FlowState, step: u32) {
    st.step = step;
    st.need = field_size(step);
    st.acc = 0;
}

/// A field is complete: act on its value and move to the next. Returns a final result code, or
/// NEED_MORE to go on.
#[inline(always)]
fn complete(st: &mut FlowState, v: u32) -> u32 {
    match st.step {
        S_HS_TYPE => {
            if v != CLIENT_HELLO {
                return UNPARSED;
            }
            enter(st, S_HS_LEN);
        }
        S_HS_LEN => {
            // legacy_version (2) + random (32) precede the session id. Until the extensions,
            // `ext_remaining` holds the handshake length and `ext_type` the bytes of the fixed
            // fields so far, to tell whether the message has an extensions field at all.
            st.skip = 34;
            st.ext_remaining = v;
            st.ext_type = 34;
            enter(st, S_SESSION_ID);
        }
        S_SESSION_ID => {
            if v > 32 {
                return UNPARSED;
            }
            st.skip = v;
            st.ext_type += 1 + v;
            enter(st, S_CIPHERS);
        }
        S_CIPHERS => {
            st.skip = v;
            st.ext_type += 2 + v;
            enter(st, S_COMPRESSION);
        }
        S_COMPRESSION => {
            st.skip = v;
            let fixed = st.ext_type + 1 + v;
            // RFC 8446 §4.1.2 / RFC 5246 §7.4.1.2: the extensions field is present only when
            // bytes follow the compression methods; a TLS 1.2 hello may end there (no name).
            // The next bytes of the stream are then not extensions and are never read as such.
            if fixed == st.ext_remaining {
                enter(st, S_NO_EXT);
            } else if fixed > st.ext_remaining {
                enter(st, S_SHORT);
            } else {
                enter(st, S_EXTENSIONS);
            }
        }
        S_EXTENSIONS => {
            if v == 0 {
                return NO_NAME;
            }
            st.ext_remaining = v;
            enter(st, S_EXT_HEADER);
        }
        S_EXT_HEADER => {
            let ext_type = v >> 16;
            let ext_len = v & 0xffff;
            if st.ext_remaining < 4 + ext_len {
                return UNPARSED;
            }
            st.ext_remaining -= 4 + ext_len;
            st.ext_type = ext_type;
            if ext_type == EXT_SERVER_NAME {
                enter(st, S_SNI_LIST);
            } else {
                st.skip = ext_len;
                if st.ext_remaining == 0 {
                    enter(st, S_END);
                } else {
                    enter(st, S_EXT_HEADER);
                }
            }
        }
        S_SNI_LIST => enter(st, S_SNI_TYPE),
        S_SNI_TYPE => {
            // host_name(0) is the only name type defined.
            if v != 0 {
                return UNPARSED;
            }
            enter(st, S_SNI_LEN);
        }
        S_SNI_LEN => {
            if v == 0 || v > 253 {
                return UNPARSED;
            }
            st.name_len = v;
            st.name_got = 0;
            enter(st, S_SNI_NAME);
        }
        _ => return UNPARSED,
    }
    NEED_MORE
}

extern "C" fn feed_step(_i: u64, c: *mut FeedCtx) -> i64 {
    // SAFETY: bpf_loop hands back the context feed() passed in; both pointers outlive the loop.
    let c = unsafe { &mut *c };
    let st = unsafe { &mut *c.st };
    let ctx = XdpContext::new(c.xdp);
    if (st.step == S_END || st.step == S_NO_EXT) && st.skip == 0 {
        st.result = NO_NAME;
        return BREAK;
    }
    if st.step == S_SHORT && st.skip == 0 {
        st.result = UNPARSED;
        return BREAK;
    }
    if st.cur_off >= st.cur_end {
        return BREAK;
    }
    let off = st.cur_off as usize;
    let left = st.cur_end - st.cur_off;

    // Record layer: a 5-byte header before every record's payload.
    if st.rec_hdr < 5 {
        if st.rec_hdr == 0 && left >= 5 {
            let (Some((t, major)), Some(len)) = (read_pair(&ctx, off), read_be16(&ctx, off + 3)) else {
                st.result = UNPARSED;
                return BREAK;
            };
            if t != HANDSHAKE || major != 3 || len == 0 || len as u32 > MAX_RECORD {
                st.result = UNPARSED;
                return BREAK;
            }
            st.rec_hdr = 5;
            st.rec_remaining = len as u32;
            st.cur_off += 5;
            return CONTINUE;
        }
        let Some(b) = read_u8(&ctx, off) else {
            st.result = UNPARSED;
            return BREAK;
        };
        let ok = match st.rec_hdr {
            0 => b == HANDSHAKE,
            1 => b == 3,
            3 => {
                st.rec_len = (b as u32) << 8;
                true
            }
            4 => {
                st.rec_len |= b as u32;
                st.rec_remaining = st.rec_len;
                st.rec_len != 0 && st.rec_len <= MAX_RECORD
            }
            _ => true,
        };
        if !ok {
            st.result = UNPARSED;
            return BREAK;
        }
        st.rec_hdr += 1;
        st.cur_off += 1;
        return CONTINUE;
    }
    if st.rec_remaining == 0 {
        st.rec_hdr = 0;
        return CONTINUE;
    }
    let avail = if left < st.rec_remaining { left } else { st.rec_remaining };

    if st.skip > 0 {
        let k = if avail < st.skip { avail } else { st.skip };
        st.skip -= k;
        st.rec_remaining -= k;
        st.cur_off += k;
        return CONTINUE;
    }

    if st.step == S_SNI_NAME {
        let want = st.name_len - st.name_got;
        let mut k = if avail < want { avail } else { want };
        if k > CHUNK {
            k = CHUNK;
        }
        let k = k & (CHUNK * 2 - 1);
        if k == 0 {
            st.result = UNPARSED;
            return BREAK;
        }
        let at = (st.name_got as usize) & 0xff;
        // SAFETY: at < 256 and k <= 127 (at most CHUNK by the clamp; the mask is for the
        // verifier), and the buffer holds 256 + 128 bytes.
        let r = unsafe { bpf_xdp_load_bytes(c.xdp, st.cur_off, st.name.as_mut_ptr().add(at).cast(), k) };
        if r != 0 {
            st.result = UNPARSED;
            return BREAK;
        }
        st.name_got += k;
        st.rec_remaining -= k;
        st.cur_off += k;
        if st.name_got >= st.name_len {
            st.result = NAME;
            return BREAK;
        }
        return CONTINUE;
    }

    if skip_extensions(&ctx, st) {
        return CONTINUE;
    }
    // Runs of skips and whole fields in this segment and record: several per iteration.
    let mut n = 0;
    while n < FAST_STEPS {
        match fast_step(&ctx, st) {
            FAST_GO => n += 1,
            FAST_DONE => return BREAK,
            _ => break,
        }
    }
    if n > 0 {
        return CONTINUE;
    }

    let size = field_size(st.step);
    if size == 0 {
        st.result = UNPARSED;
        return BREAK;
    }
    if st.need == size && avail >= size {
        // The whole field is here: one read.
        let v = match size {
            1 => read_u8(&ctx, off).map(|b| b as u32),
            2 => read_be16(&ctx, off).map(|w| w as u32),
            3 => read::<[u8; 3]>(&ctx, off).map(|b| (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32),
            _ => read::<[u8; 4]>(&ctx, off).map(u32::from_be_bytes),
        };
        let Some(v) = v else {
            st.result = UNPARSED;
            return BREAK;
        };
        st.need = 0;
        st.acc = v;
        st.rec_remaining -= size;
        st.cur_off += size;
    } else {
        // The field is split across segments or records: take one byte.
        let Some(b) = read_u8(&ctx, off) else {
            st.result = UNPARSED;
            return BREAK;
        };
        st.acc = (st.acc << 8) | b as u32;
        st.need -= 1;
        st.rec_remaining -= 1;
        st.cur_off += 1;
    }
    if st.need == 0 {
        let acc = st.acc;
        let r = complete(st, acc);
        if r != NEED_MORE {
            st.result = r;
            return BREAK;
        }
    }
    CONTINUE
}

/// Skips and whole fields handled per iteration at most (fast_step).
const FAST_STEPS: u32 = 6;
const FAST_GO: u32 = 0;
const FAST_STOP: u32 = 1;
const FAST_DONE: u32 = 2;

/// One skip that ends in this segment and record, or one whole field lying in it: FAST_GO when
/// done (the next may follow in the same iteration), FAST_DONE when the reader finished (result
/// set), FAST_STOP when this needs the general path (a record boundary, a split field, a
/// partial skip, the name, the end of the extensions).
#[inline(always)]
fn fast_step(ctx: &XdpContext, st: &mut FlowState) -> u32 {
    if st.cur_off >= st.cur_end || st.rec_hdr < 5 || st.rec_remaining == 0 || st.step >= S_SNI_NAME {
        return FAST_STOP;
    }
    let left = st.cur_end - st.cur_off;
    let avail = if left < st.rec_remaining { left } else { st.rec_remaining };
    if st.skip > 0 {
        let k = st.skip;
        if avail < k {
            return FAST_STOP;
        }
        st.skip = 0;
        st.rec_remaining -= k;
        st.cur_off += k;
        return FAST_GO;
    }
    let size = field_size(st.step);
    if size == 0 || st.need != size || avail < size {
        return FAST_STOP;
    }
    let off = st.cur_off as usize;
    let v = match size {
        1 => read_u8(ctx, off).map(|b| b as u32),
        2 => read_be16(ctx, off).map(|w| w as u32),
        3 => read::<[u8; 3]>(ctx, off).map(|b| (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32),
        _ => read::<[u8; 4]>(ctx, off).map(u32::from_be_bytes),
    };
    let Some(v) = v else { return FAST_STOP };
    st.need = 0;
    st.acc = v;
    st.rec_remaining -= size;
    st.cur_off += size;
    let r = complete(st, v);
    if r != NEED_MORE {
        st.result = r;
        return FAST_DONE;
    }
    FAST_GO
}

/// Extensions skipped per iteration at most.
const EXT_BATCH: u32 = 8;

/// At the start of an extension header: skips up to EXT_BATCH whole extensions (header and
/// body) that lie entirely in this segment and record and are not server_name, one header read
/// each. Anything else (server_name, an extension split across segments or records, a length
/// that does not add up) is left to the field-by-field path. True when it consumed any.
#[inline(always)]
fn skip_extensions(ctx: &XdpContext, st: &mut FlowState) -> bool {
    let mut n = 0;
    while n < EXT_BATCH {
        if st.step != S_EXT_HEADER || st.need != 4 || st.skip != 0 || st.cur_off >= st.cur_end {
            break;
        }
        let left = st.cur_end - st.cur_off;
        let avail = if left < st.rec_remaining { left } else { st.rec_remaining };
        if avail < 4 {
            break;
        }
        let Some(h) = read::<[u8; 4]>(ctx, st.cur_off as usize).map(u32::from_be_bytes) else { break };
        let (ext_type, ext_len) = (h >> 16, h & 0xffff);
        let whole = 4 + ext_len;
        if ext_type == EXT_SERVER_NAME || whole > avail || st.ext_remaining < whole {
            break;
        }
        st.ext_remaining -= whole;
        st.rec_remaining -= whole;
        st.cur_off += whole;
        n += 1;
        if st.ext_remaining == 0 {
            st.ext_type = ext_type;
            enter(st, S_END);
            break;
        }
    }
    n > 0
}

/// Feeds `len` stream bytes at packet offset `off` to the reader.
#[inline(always)]
pub fn feed(ctx: &XdpContext, st: &mut FlowState, off: usize, len: u32) -> Outcome {
    // Every iteration consumes at least one byte, except the one that starts a new record.
    reader::feed(ctx, st, off, len, 2 * len + 8, feed_step)
}
