//! A streaming reader of an HTTP/1.x request head, to the host it names: the absolute-form
//! request target (`GET http://host/ HTTP/1.1`, or `https://`, either with a userinfo
//! `user:pw@` before the host, RFC 3986 §3.2) if there is one, else the `Host` header (name in
//! any case, optional whitespace, optional port, optional trailing dot). A bare LF ends a line
//! wherever it stands (RFC 9112 §2.2). It works byte by byte
//! across segments, keeping its place in `FlowState` like the ClientHello reader, so a request
//! head split anywhere is read the same. Plain HTTP is a small share of traffic; the byte loop
//! runs only for segments that start a request or continue one being read.

use aya_ebpf::programs::XdpContext;

use crate::{
    cursor::{read, read_u8},
    flow::{FlowState, PROTO_HTTP},
    looping::{BREAK, CONTINUE},
    reader::{self, FeedCtx, NAME, NO_NAME, Outcome, UNPARSED},
};

// Where the reader is.
/// Before the request line: empty lines are passed over (RFC 9112 §2.2: a server SHOULD
/// ignore at least one, and common servers ignore any number).
const H_START: u32 = 10;
const H_METHOD: u32 = 0;
const H_TARGET: u32 = 1;
const H_SCHEME: u32 = 2;
const H_ABS_HOST: u32 = 3;
const H_SKIP_LINE: u32 = 4;
const H_LINE_START: u32 = 5;
const H_HDR_NAME: u32 = 6;
const H_HOST_OWS: u32 = 7;
const H_HOST: u32 = 8;
const H_END_CR: u32 = 9;


/// Request heads longer than this are not read to the end (fail open).
const MAX_HEAD: u32 = 8192;
const MAX_METHOD: u32 = 16;

/// The absolute-form schemes that name the host (RFC 9112 §3.2.2): `http://` and `https://`,
/// compared together; they part at byte 4 (`:` or `s`).
const SCHEME: &[u8; 8] = b"https://";
const HOST: &[u8; 5] = b"host:";
/// A host is at most a 253-byte name and its trailing dot.
const MAX_HOST: u32 = 254;

// H_ABS_HOST's flags (in `skip`, unused by this reader otherwise) while it reads the authority
// `[userinfo@]host[:port]` (RFC 3986 §3.2) to its end: the host is what follows the last `@`.
/// A `:` was met: the port (or a userinfo's password) follows; its bytes are not the host.
const A_PORT: u32 = 1;
/// The host has more bytes than a host can have (a later `@` may still start another).
const A_LONG: u32 = 2;
/// The host starts with `[`: an IPv6 literal, which names no host.
const A_BRACKET: u32 = 4;
/// A byte of the authority was read (a `[` later than the first waits for the authority's end).
const A_SEEN: u32 = 8;
/// H_SCHEME: the scheme is `http://` (the `s` of `https` not met).
const S_PLAIN: u32 = 16;

/// Does the payload start like an HTTP/1.x request? Its first four bytes are compared with the
/// methods clients send. A first segment shorter than that is accepted on its first letter, so a
/// request split after any byte is still read; a false start only costs a reader that gives up.
/// A CR or LF first may be an empty line before the request line, which servers pass over:
/// read too, or a request behind one would pass unread.
#[inline(always)]
pub fn starts_request(ctx: &XdpContext, off: usize, len: u32) -> bool {
    if len >= 4 {
        let Some(w) = read::<[u8; 4]>(ctx, off) else { return false };
        return may_start_request(&w);
    }
    matches!(read_u8(ctx, off), Some(b'G' | b'H' | b'P' | b'D' | b'O' | b'\r' | b'\n'))
}

/// Whether a segment whose first four bytes are `w` starts a request (`starts_request`).
#[inline(always)]
pub fn may_start_request(w: &[u8; 4]) -> bool {
    matches!(w, b"GET " | b"HEAD" | b"POST" | b"PUT " | b"DELE" | b"OPTI" | b"PATC") || w[0] == b'\r' || w[0] == b'\n'
}

#[inline(always)]
pub fn reset(st: &mut FlowState, seq: u32) {
    reader::start(st, PROTO_HTTP, seq);
    st.step = H_START;
}

#[inline(always)]
fn lower(b: u8) -> u8 {
    if b.is_ascii_uppercase() { b + 32 } else { b }
}

/// Appends a byte of the host name; false when the host is too long to be one.
#[inline(always)]
fn push(st: &mut FlowState, b: u8) -> bool {
    if st.name_got >= MAX_HOST {
        return false;
    }
    let at = (st.name_got as usize) & 0xff;
    st.name[at] = b;
    st.name_got += 1;
    true
}

/// Bytes one iteration reads: fewer bpf_loop calls per head.
const STRIDE: u32 = 8;

extern "C" fn http_step(_i: u64, c: *mut FeedCtx) -> i64 {
    // SAFETY: bpf_loop hands back the context feed() passed in; both pointers outlive the loop.
    let c = unsafe { &mut *c };
    let mut j = 0;
    while j < STRIDE {
        if http_byte(c) == BREAK {
            return BREAK;
        }
        j += 1;
    }
    CONTINUE
}

/// Reads one byte of the head.
#[inline(always)]
fn http_byte(c: &mut FeedCtx) -> i64 {
    // SAFETY: the FlowState outlives the loop.
    let st = unsafe { &mut *c.st };
    if st.cur_off >= st.cur_end {
        return BREAK;
    }
    // `acc` counts the bytes of the head read so far.
    if st.acc >= MAX_HEAD {
        st.result = UNPARSED;
        return BREAK;
    }
    let ctx = XdpContext::new(c.xdp);
    let Some(b) = read_u8(&ctx, st.cur_off as usize) else {
        st.result = UNPARSED;
        return BREAK;
    };
    st.cur_off += 1;
    st.acc += 1;
    // Before the method: `need` counts the method's bytes.
    if st.step == H_START {
        if b == b'\r' || b == b'\n' {
            return CONTINUE;
        }
        st.step = H_METHOD;
    }
    match st.step {
        H_METHOD => {
            if b == b' ' {
                st.step = H_TARGET;
            } else {
                st.need += 1;
                if st.need > MAX_METHOD || !b.is_ascii_uppercase() {
                    st.result = UNPARSED;
                    return BREAK;
                }
            }
        }
        H_TARGET => {
            if lower(b) == b'h' {
                st.step = H_SCHEME;
                st.need = 1;
                st.skip = 0;
            } else if b == b'\n' {
                // The line ended (a bare LF ends it too, RFC 9112 §2.2): field lines follow.
                st.step = H_LINE_START;
            } else {
                st.step = H_SKIP_LINE;
            }
        }
        H_SCHEME => {
            // `need`: scheme bytes matched; S_PLAIN once `http:` took the short way.
            let i = (st.need as usize) & 7;
            let l = lower(b);
            let ok = if st.skip & S_PLAIN != 0 {
                // After `http:`, the rest of `http://` is the rest of `https://` shifted by one.
                i + 1 < 8 && l == SCHEME[(i + 1) & 7]
            } else if i == 4 && l == b':' {
                st.skip |= S_PLAIN;
                true
            } else {
                l == SCHEME[i]
            };
            if ok {
                st.need += 1;
                let done = if st.skip & S_PLAIN != 0 { 7 } else { 8 };
                if st.need == done {
                    st.step = H_ABS_HOST;
                    st.skip = 0;
                }
            } else if b == b'\n' {
                st.step = H_LINE_START;
            } else {
                st.step = H_SKIP_LINE;
            }
        }
        H_ABS_HOST => match b {
            // An IPv6 literal names no host: known at once when the authority starts with it,
            // else when the authority ends.
            b'[' if st.name_got == 0 && st.skip & A_PORT == 0 => {
                if st.skip & A_SEEN == 0 {
                    st.result = NO_NAME;
                    return BREAK;
                }
                st.skip |= A_BRACKET | A_SEEN;
            }
            // The end of the authority.
            b'/' | b' ' | b'?' | b'#' | b'\r' | b'\n' => {
                st.name_len = st.name_got;
                st.result = if st.skip & A_BRACKET != 0 {
                    NO_NAME
                } else if st.name_got == 0 || st.skip & A_LONG != 0 {
                    UNPARSED
                } else {
                    NAME
                };
                return BREAK;
            }
            // What came before was a userinfo: the host starts again.
            b'@' => {
                st.name_got = 0;
                st.skip = A_SEEN;
            }
            b':' => st.skip |= A_PORT | A_SEEN,
            _ => {
                if st.skip & (A_PORT | A_LONG | A_BRACKET) == 0 && !push(st, b) {
                    st.skip |= A_LONG;
                }
                st.skip |= A_SEEN;
            }
        },
        H_SKIP_LINE => {
            if b == b'\n' {
                st.step = H_LINE_START;
            }
        }
        H_LINE_START => match b {
            b'\r' => st.step = H_END_CR,
            b'\n' => {
                st.result = NO_NAME;
                return BREAK;
            }
            _ => {
                if lower(b) == HOST[0] {
                    st.step = H_HDR_NAME;
                    st.need = 1;
                } else {
                    st.step = H_SKIP_LINE;
                }
            }
        },
        H_HDR_NAME => {
            let i = (st.need as usize) & 7;
            if i < 5 && lower(b) == HOST[i] {
                st.need += 1;
                if st.need == 5 {
                    st.step = H_HOST_OWS;
                }
            } else if b == b'\n' {
                st.step = H_LINE_START;
            } else {
                st.step = H_SKIP_LINE;
            }
        }
        H_HOST_OWS => match b {
            b' ' | b'\t' => {}
            b'\r' | b'\n' => {
                st.result = UNPARSED;
                return BREAK;
            }
            // An IPv6 literal (`[2001:db8::1]:80`) names no host: nothing to judge by name.
            b'[' => {
                st.result = NO_NAME;
                return BREAK;
            }
            _ => {
                st.step = H_HOST;
                if !push(st, b) {
                    st.result = UNPARSED;
                    return BREAK;
                }
            }
        },
        H_HOST => match b {
            b':' | b' ' | b'\t' | b'\r' | b'\n' => {
                st.name_len = st.name_got;
                st.result = NAME;
                return BREAK;
            }
            _ => {
                if !push(st, b) {
                    st.result = UNPARSED;
                    return BREAK;
                }
            }
        },
        H_END_CR => {
            // The empty line that ends the head: no Host at all.
            st.result = if b == b'\n' { NO_NAME } else { UNPARSED };
            return BREAK;
        }
        _ => {
            st.result = UNPARSED;
            return BREAK;
        }
    }
    CONTINUE
}

/// Feeds `len` stream bytes at packet offset `off` to the reader (STRIDE bytes per iteration).
#[inline(always)]
pub fn feed(ctx: &XdpContext, st: &mut FlowState, off: usize, len: u32) -> Outcome {
    reader::feed(ctx, st, off, len, len / STRIDE + 1, http_step)
}
