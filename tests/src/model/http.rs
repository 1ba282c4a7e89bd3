//! The host an HTTP/1.x request head names, from RFC 9112 §3 (request line), §3.2 (request
//! target, Host) and §5 (field lines), plus the program's documented bounds (ARCHITECTURE.md,
//! "HTTP"): a head longer than 8 KiB is not read to its end.
//!
//! - A segment starts a request when its first four bytes are those of a method clients send
//!   (`GET `, `HEAD`, `POST`, `PUT `, `DELE`, `OPTI`, `PATC`), or, when it declares fewer than
//!   four, its first byte is the first letter of one; or when its first byte is a CR or LF:
//!   empty lines before the request line are passed over (RFC 9112 §2.2), any number of them.
//! - The method is 1 to 16 uppercase letters, then one space (the program's bound; registered
//!   methods are uppercase letters).
//! - An absolute-form target (`http://host[:port]/...`, RFC 9112 §3.2.2) names the host, and
//!   wins over any Host field. A host that is an IPv6 literal (`[...]`) names no host.
//! - Otherwise the first `Host:` field line (name in any case, RFC 9110 §5.1) names it: after
//!   optional whitespace, the host runs to a port (`:`), whitespace or the end of the line. An
//!   empty Host is not readable; `[...]` names no host.
//! - The head ends at an empty line (CRLF, or a bare LF, which RFC 9112 §2.2 lets a recipient
//!   accept); then there is no host. A CR at a line start not followed by LF is not readable.
//! - The host is a name to judge when name.rs can normalise it; an IPv4 literal names no host.
//!
//! Outcomes as for the ClientHello (tls.rs): a name, no name, not readable, pending.

use super::{
    frame::{At, Payload},
    name::MAX_NAME,
};

/// Bytes of a head read at most.
pub const MAX_HEAD: usize = 8192;
const MAX_METHOD: usize = 16;
const METHODS: [&[u8; 4]; 7] = [b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    Pending,
    NoName,
    Unparsed,
    /// The host as sent (not yet normalised).
    Name(Vec<u8>),
}

pub fn starts_request(p: &Payload) -> bool {
    // An empty line may come before the request line (RFC 9112 §2.2).
    if p.bytes.first().is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        return true;
    }
    if p.declared >= 4 {
        return p.bytes.get(..4).is_some_and(|w| METHODS.iter().any(|m| &m[..] == w));
    }
    p.bytes.first().is_some_and(|b| METHODS.iter().any(|m| m[0] == *b))
}

enum Stop {
    End,
    Unparsed,
}

struct Cursor<'a> {
    p: Payload<'a>,
    pos: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Result<u8, Stop> {
        match self.p.at(self.pos) {
            At::End => Err(Stop::End),
            _ if self.pos >= MAX_HEAD => Err(Stop::Unparsed),
            At::Byte(b) => {
                self.pos += 1;
                Ok(b)
            }
            At::Missing => Err(Stop::Unparsed),
        }
    }

    /// Bytes up to and including the next LF.
    fn rest_of_line(&mut self) -> Result<(), Stop> {
        while self.next()? != b'\n' {}
        Ok(())
    }
}

/// Reads the request head at the start of the segment to the host it names.
pub fn read_request_head(p: &Payload) -> Head {
    let mut c = Cursor { p: *p, pos: 0 };
    match head(&mut c) {
        Ok(h) => h,
        Err(Stop::End) => Head::Pending,
        Err(Stop::Unparsed) => Head::Unparsed,
    }
}

fn head(c: &mut Cursor) -> Result<Head, Stop> {
    // Empty lines before the request line are passed over (RFC 9112 §2.2: a server SHOULD
    // ignore at least one; common servers ignore any number, CR and LF alike).
    let mut b = c.next()?;
    while b == b'\r' || b == b'\n' {
        b = c.next()?;
    }
    // Method.
    let mut n = 0;
    loop {
        if b == b' ' {
            break;
        }
        n += 1;
        if n > MAX_METHOD || !b.is_ascii_uppercase() {
            return Ok(Head::Unparsed);
        }
        b = c.next()?;
    }
    // Request target: absolute form, or anything else up to the end of the line.
    if let Some(h) = target(c)? {
        return Ok(h);
    }
    // Field lines.
    'line: loop {
        let b = c.next()?;
        match b {
            b'\r' => return Ok(if c.next()? == b'\n' { Head::NoName } else { Head::Unparsed }),
            b'\n' => return Ok(Head::NoName),
            _ => {}
        }
        let mut got = b;
        for want in *b"host:" {
            if got.to_ascii_lowercase() != want {
                if got != b'\n' {
                    c.rest_of_line()?;
                }
                continue 'line;
            }
            if want != b':' {
                got = c.next()?;
            }
        }
        // The Host field's value.
        let first = loop {
            match c.next()? {
                b' ' | b'\t' => {}
                b'\r' | b'\n' => return Ok(Head::Unparsed),
                b'[' => return Ok(Head::NoName),
                b => break b,
            }
        };
        let mut host = vec![first];
        loop {
            match c.next()? {
                b':' | b' ' | b'\t' | b'\r' | b'\n' => return Ok(named(host)),
                b => push(&mut host, b)?,
            }
        }
    }
}

/// One more byte of a host: at most a 253-byte name and its trailing dot.
fn push(host: &mut Vec<u8>, b: u8) -> Result<(), Stop> {
    if host.len() > MAX_NAME {
        return Err(Stop::Unparsed);
    }
    host.push(b);
    Ok(())
}

fn named(host: Vec<u8>) -> Head {
    let parts: Vec<&[u8]> = host.split(|&b| b == b'.').collect();
    let literal = parts.len() == 4 && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.iter().all(u8::is_ascii_digit));
    if literal { Head::NoName } else { Head::Name(host) }
}

/// Reads the request target. `Some`: the absolute form decided the outcome; `None`: the line
/// was passed over and the field lines follow.
fn target(c: &mut Cursor) -> Result<Option<Head>, Stop> {
    // The scheme, compared case-insensitively byte by byte: an absolute-form target of either
    // `http://` or `https://` names the host (RFC 9112 §3.2.2).
    let mut seen = Vec::new();
    loop {
        let b = c.next()?;
        seen.push(b.to_ascii_lowercase());
        if seen == b"http://" || seen == b"https://" {
            return authority(c).map(Some);
        }
        if b"http://".starts_with(&seen) || b"https://".starts_with(&seen) {
            continue;
        }
        // Not an absolute-form target: pass over the rest of the line, unless this byte
        // ended it.
        if b != b'\n' {
            c.rest_of_line()?;
        }
        return Ok(None);
    }
}

/// The host of an absolute-form target's authority (RFC 3986 §3.2: `[userinfo@]host[:port]`).
fn authority(c: &mut Cursor) -> Result<Head, Stop> {
    // The whole authority first, then the host after the last `@`, up to the port.
    let mut auth: Vec<u8> = Vec::new();
    loop {
        let b = c.next()?;
        if b == b'[' && auth.is_empty() {
            return Ok(Head::NoName);
        }
        if matches!(b, b'/' | b' ' | b'?' | b'#' | b'\r' | b'\n') {
            break;
        }
        auth.push(b);
    }
    let host_port = match auth.iter().rposition(|&b| b == b'@') {
        Some(at) => &auth[at + 1..],
        None => &auth[..],
    };
    if host_port.first() == Some(&b'[') {
        return Ok(Head::NoName);
    }
    let host = host_port.split(|&b| b == b':').next().unwrap_or(&[]);
    if host.is_empty() {
        return Ok(Head::Unparsed);
    }
    if host.len() > MAX_NAME + 1 {
        return Ok(Head::Unparsed);
    }
    Ok(named(host.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Head {
        let p = Payload { bytes: s.as_bytes(), declared: s.len() };
        assert!(starts_request(&p), "{s:?}");
        read_request_head(&p)
    }

    fn name(s: &str) -> Head {
        Head::Name(s.as_bytes().to_vec())
    }

    #[test]
    fn host_field_and_absolute_form() {
        assert_eq!(read("GET / HTTP/1.1\r\nUser-Agent: x\r\nHOST:\tBlocked.Example:8080\r\n\r\n"), name("Blocked.Example"));
        assert_eq!(read("GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n"), name("a.example"));
        assert_eq!(read("GET HTTP://a.example:81 HTTP/1.1\r\n\r\n"), name("a.example"));
        assert_eq!(read("GET http://u:p@a.example/ HTTP/1.1\r\n\r\n"), name("a.example"));
        assert_eq!(read("GET https://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n"), name("a.example"));
        assert_eq!(read("OPTIONS * HTTP/1.1\nhost: a.example\n\n"), name("a.example"));
    }

    #[test]
    fn no_host_literals_and_incomplete_heads() {
        assert_eq!(read("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), Head::NoName);
        assert_eq!(read("GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n"), Head::NoName);
        assert_eq!(read("GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n"), Head::NoName);
        assert_eq!(read("GET http://[2001:db8::1]/ HTTP/1.1\r\n\r\n"), Head::NoName);
        assert_eq!(read("GET / HTTP/1.1\r\nHost: \r\n\r\n"), Head::Unparsed);
        assert_eq!(read("GET / HTTP/1.1\r\nHost: blocked.exa"), Head::Pending);
        assert_eq!(read("GET / HTTP/1.1\r\nHo"), Head::Pending);
        assert_eq!(read("G"), Head::Pending);
        assert_eq!(read("GET / HTTP/1.1\r\n\rX"), Head::Unparsed);
        assert_eq!(read("DELETe / HTTP/1.1\r\n\r\n"), Head::Unparsed);
        assert_eq!(read("\r\n\r\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n"), name("a.example"));
        assert_eq!(read("\n\rGET / HTTP/1.1\nHost: a.example\n\n"), name("a.example"));
        assert_eq!(read("\r\n"), Head::Pending);
        assert_eq!(read("\r\nxyz / HTTP/1.1\r\n\r\n"), Head::Unparsed);
    }

    #[test]
    fn userinfo_https_bare_lf_and_long_hosts() {
        assert_eq!(read("GET http://u@a.example/ HTTP/1.1\r\n\r\n"), name("a.example"));
        assert_eq!(read("GET http://u:p@x@a.example:81/ HTTP/1.1\r\n\r\n"), name("a.example"));
        assert_eq!(read("GET http://u@[2001:db8::1]/ HTTP/1.1\r\n\r\n"), Head::NoName);
        assert_eq!(read("GET http://u@/ HTTP/1.1\r\n\r\n"), Head::Unparsed);
        assert_eq!(read("GET h\nHost: a.example\n\n"), name("a.example"));
        assert_eq!(read("GET http:\nHost: a.example\n\n"), name("a.example"));
        let long = format!("{}.example", "a".repeat(245));
        assert_eq!(long.len(), 253);
        assert_eq!(read(&format!("GET / HTTP/1.1\r\nHost: {long}.\r\n\r\n")), Head::Name(format!("{long}.").into_bytes()));
        assert_eq!(read(&format!("GET / HTTP/1.1\r\nHost: {long}..\r\n\r\n")), Head::Unparsed);
        assert_eq!(read(&format!("GET http://{long}./ HTTP/1.1\r\n\r\n")), Head::Name(format!("{long}.").into_bytes()));
        // A userinfo longer than any host is no reason not to read the host after it.
        assert_eq!(read(&format!("GET http://{long}{long}@a.example/ HTTP/1.1\r\n\r\n")), name("a.example"));
    }
}
