//! Pulling list sources: a local file or an HTTP(S) URL, within a size and a time limit.
//!
//! A URL is fetched with a conditional GET (`If-None-Match` / `If-Modified-Since` from the
//! validators the previous pull returned), so an unchanged list costs a 304 and no body. Every
//! pull is bounded: a declared `Content-Length` above the limit is refused before any of the body
//! is read, a body that keeps coming (chunked, close-delimited, or a server that lies) is cut off
//! at the limit, and one deadline covers the whole request (connect, redirects, headers, body), so
//! a server that drips a byte at a time cannot hold the caller past it.
//!
//! Nothing here parses or logs a body, nor puts one in an error: the caller verifies the detached
//! signature ([`fetch_signature`], `signature::verify`) before anything reads the list. Errors name
//! the source, with any password in a URL's user part masked.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Sent with every HTTP request.
pub const USER_AGENT: &str = concat!("blocker/", env!("CARGO_PKG_VERSION"));
/// Redirects followed before a pull fails.
pub const MAX_REDIRECTS: u32 = 5;
/// The size limit for a detached signature (a minisign signature is well under 1 KiB).
pub const SIGNATURE_MAX_BYTES: u64 = 64 * 1024;
/// The suffix a signature's location gets by default: `list.txt` is signed by `list.txt.minisig`.
pub const SIGNATURE_SUFFIX: &str = ".minisig";

/// Where a list (or its signature) comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    File(PathBuf),
    /// An `http://` or `https://` URL, as configured.
    Url(String),
}

impl Source {
    /// `http://…` and `https://…` (scheme in any case) are URLs; `file:///path` is the path
    /// `/path` (`file://localhost/path` too); anything else is a path, taken as it is.
    /// Surrounding whitespace is ignored.
    /// A source `parse` would take for a file path but that names a URL scheme the puller does
    /// not speak (`ftp://`, `sftp://`): the scheme, to be refused with a clear error rather
    /// than "no such file".
    pub fn unsupported_scheme(text: &str) -> Option<&str> {
        let (scheme, _) = text.trim().split_once("://")?;
        let is_scheme = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        let known = ["http", "https", "file"].iter().any(|k| scheme.eq_ignore_ascii_case(k));
        (is_scheme && !known).then_some(scheme)
    }

    pub fn parse(text: &str) -> Source {
        let text = text.trim();
        let scheme_is = |scheme: &str| text.get(..scheme.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme));
        if scheme_is("http://") || scheme_is("https://") {
            Source::Url(text.to_string())
        } else if scheme_is("file://") {
            let rest = &text["file://".len()..];
            let rest = match rest.get(.."localhost/".len()) {
                Some(host) if host.eq_ignore_ascii_case("localhost/") => &rest["localhost".len()..],
                _ => rest,
            };
            Source::File(PathBuf::from(rest))
        } else {
            Source::File(PathBuf::from(text))
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Url(url) => f.write_str(&redact(url)),
        }
    }
}

/// `url` with the user part of its authority (`user:password@`) masked as `***@`: operators may
/// put a token there, and errors and logs must not carry it.
fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// The HTTP cache validators of the last good pull, sent back to make the next one conditional.
/// The caller keeps them (they serialise) with the list they came with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// How much a pull may bring and how long it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// The largest body accepted, in bytes.
    pub max_bytes: u64,
    /// The whole request, from connecting to the last byte of the body, redirects included.
    /// HTTP only: a file read has no deadline.
    pub timeout: Duration,
}

impl Default for FetchLimits {
    /// 256 MiB and 60 seconds.
    fn default() -> Self {
        FetchLimits { max_bytes: 256 * 1024 * 1024, timeout: Duration::from_secs(60) }
    }
}

/// What a pull brought.
#[derive(Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The server answered 304 to the conditional request: the list is as it was.
    NotModified,
    /// The whole body, and the validators to send next time (empty for files, and for servers
    /// that send neither `ETag` nor `Last-Modified`).
    Body { bytes: Vec<u8>, validators: Validators },
}

impl fmt::Debug for Fetched {
    /// The body's size, never its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fetched::NotModified => f.write_str("NotModified"),
            Fetched::Body { bytes, validators } => {
                f.debug_struct("Body").field("bytes", &bytes.len()).field("validators", validators).finish()
            }
        }
    }
}

/// Why a pull failed. Each message names the source (a path, or a URL with any password masked).
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("{url}: connection refused")]
    ConnectionRefused { url: String },
    #[error("{url}: cannot connect: {cause}")]
    Connect { url: String, cause: String },
    #[error("{url}: timed out after {} s", after.as_secs_f64())]
    Timeout { url: String, after: Duration },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{at}: body larger than {limit} bytes ({declared} declared), refused before reading it")]
    DeclaredTooLarge { at: String, limit: u64, declared: u64 },
    #[error("{at}: body larger than {limit} bytes, cut off")]
    TooLarge { at: String, limit: u64 },
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: u32 },
    #[error("no signature at {at}")]
    NoSignature { at: String },
    #[error("{url}: {cause}")]
    Http { url: String, cause: String },
    #[error("reading {at}: {error}")]
    Io {
        at: String,
        #[source]
        error: io::Error,
    },
}

/// Pulls `source`. For a URL, `previous` makes the request conditional and a 304 comes back as
/// [`Fetched::NotModified`]; a 200 brings the body and its new validators; any other status, a
/// body over `limits.max_bytes`, or a request past `limits.timeout` is an error. A file is read
/// whole within the same size limit (never `NotModified`: the caller compares digests).
pub fn fetch(source: &Source, previous: &Validators, limits: &FetchLimits) -> Result<Fetched, FetchError> {
    match source {
        Source::File(path) => Ok(Fetched::Body { bytes: read_file(path, limits.max_bytes)?, validators: Validators::default() }),
        Source::Url(url) => fetch_url(url, previous, limits.max_bytes, limits.timeout),
    }
}

/// Where the signature of `list` is: `configured` when given (parsed like any source), else the
/// list's own location with [`SIGNATURE_SUFFIX`] appended (to a URL's path, before any
/// `?query` or `#fragment`).
pub fn signature_source(list: &Source, configured: Option<&str>) -> Source {
    if let Some(configured) = configured {
        return Source::parse(configured);
    }
    match list {
        Source::File(path) => {
            let mut path = path.clone().into_os_string();
            path.push(SIGNATURE_SUFFIX);
            Source::File(path.into())
        }
        Source::Url(url) => {
            let path_end = url.find(['?', '#']).unwrap_or(url.len());
            Source::Url(format!("{}{SIGNATURE_SUFFIX}{}", &url[..path_end], &url[path_end..]))
        }
    }
}

/// Pulls a detached signature: unconditionally, with `limits.timeout` but at most
/// [`SIGNATURE_MAX_BYTES`]. A 404 or 410, or a missing file, is [`FetchError::NoSignature`].
/// An empty signature comes back as it is (verification refuses it).
pub fn fetch_signature(source: &Source, limits: &FetchLimits) -> Result<Vec<u8>, FetchError> {
    let max_bytes = limits.max_bytes.min(SIGNATURE_MAX_BYTES);
    let result = match source {
        Source::File(path) => read_file(path, max_bytes),
        Source::Url(url) => fetch_url(url, &Validators::default(), max_bytes, limits.timeout).map(|fetched| match fetched {
            Fetched::Body { bytes, .. } => bytes,
            // Unreachable: no validators were sent, and an unasked-for 304 is an error.
            Fetched::NotModified => Vec::new(),
        }),
    };
    result.map_err(|error| match error {
        FetchError::Status { status: 404 | 410, .. } => FetchError::NoSignature { at: source.to_string() },
        FetchError::Io { error, .. } if error.kind() == io::ErrorKind::NotFound && matches!(source, Source::File(_)) => {
            FetchError::NoSignature { at: source.to_string() }
        }
        other => other,
    })
}

fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
    let at = || path.display().to_string();
    let io_error = |error| FetchError::Io { at: at(), error };
    let file = File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if metadata.is_dir() {
        return Err(io_error(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")));
    }
    // Regular files say their size; a pipe or device says 0 and is cut off while reading.
    if metadata.len() > max_bytes {
        return Err(FetchError::DeclaredTooLarge { at: at(), limit: max_bytes, declared: metadata.len() });
    }
    read_limited(file, max_bytes, metadata.len()).map_err(|error| match error {
        Limited::TooLarge => FetchError::TooLarge { at: at(), limit: max_bytes },
        Limited::Io(error) => io_error(error),
    })
}

enum Limited {
    TooLarge,
    Io(io::Error),
}

/// Reads `reader` to its end, failing as soon as it has given more than `max_bytes`.
/// `expected` (a declared size, at most `max_bytes`) only sizes the first allocation.
fn read_limited(reader: impl Read, max_bytes: u64, expected: u64) -> Result<Vec<u8>, Limited> {
    const FIRST_ALLOCATION_MAX: u64 = 16 * 1024 * 1024;
    let mut bytes = Vec::with_capacity(expected.min(max_bytes).min(FIRST_ALLOCATION_MAX) as usize);
    reader.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes).map_err(Limited::Io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Limited::TooLarge);
    }
    Ok(bytes)
}

fn fetch_url(url: &str, previous: &Validators, max_bytes: u64, timeout: Duration) -> Result<Fetched, FetchError> {
    let shown = redact(url);
    // One agent per pull: pulls are minutes apart, so pooling buys nothing, and no connection
    // outlives the call.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(MAX_REDIRECTS)
        .max_redirects_will_error(true)
        .user_agent(USER_AGENT)
        .timeout_global(Some(timeout))
        .max_idle_connections(0)
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(etag) = &previous.etag {
        request = request.header("If-None-Match", etag);
    }
    if let Some(last_modified) = &previous.last_modified {
        request = request.header("If-Modified-Since", last_modified);
    }
    let mut response = request.call().map_err(|error| map_ureq_error(error, &shown, timeout))?;

    let status = response.status().as_u16();
    if status == 304 && !previous.is_empty() {
        return Ok(Fetched::NotModified);
    }
    if status != 200 {
        return Err(FetchError::Status { url: shown, status });
    }
    let header = |name: &str| response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_string);
    let validators = Validators { etag: header("etag"), last_modified: header("last-modified") };

    let declared = response.body().content_length();
    if let Some(declared) = declared.filter(|&declared| declared > max_bytes) {
        return Err(FetchError::DeclaredTooLarge { at: shown, limit: max_bytes, declared });
    }
    let bytes = read_limited(response.body_mut().as_reader(), max_bytes, declared.unwrap_or(0)).map_err(|error| match error {
        Limited::TooLarge => FetchError::TooLarge { at: shown.clone(), limit: max_bytes },
        Limited::Io(error) => map_ureq_error(ureq::Error::from(error), &shown, timeout),
    })?;
    Ok(Fetched::Body { bytes, validators })
}

fn map_ureq_error(error: ureq::Error, url: &str, timeout: Duration) -> FetchError {
    let url = url.to_string();
    match error {
        ureq::Error::Timeout(_) => FetchError::Timeout { url, after: timeout },
        ureq::Error::Io(error) => match error.kind() {
            io::ErrorKind::ConnectionRefused => FetchError::ConnectionRefused { url },
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FetchError::Timeout { url, after: timeout },
            _ => FetchError::Io { at: url, error },
        },
        ureq::Error::HostNotFound => FetchError::Connect { url, cause: "host not found".into() },
        ureq::Error::ConnectionFailed => FetchError::Connect { url, cause: "connection failed".into() },
        ureq::Error::TooManyRedirects => FetchError::TooManyRedirects { url, max: MAX_REDIRECTS },
        ureq::Error::StatusCode(status) => FetchError::Status { url, status },
        // The URL as given may hold a password: say what is wrong without echoing it.
        ureq::Error::BadUri(_) => FetchError::Http { url, cause: "not a valid URL".into() },
        error @ (ureq::Error::Tls(_) | ureq::Error::Pem(_) | ureq::Error::Rustls(_)) => {
            FetchError::Connect { url, cause: format!("TLS: {error}") }
        }
        error => FetchError::Http { url, cause: error.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(Source::parse("https://lists.example/court.list"), Source::Url("https://lists.example/court.list".into()));
        assert_eq!(Source::parse(" HTTP://lists.example/a "), Source::Url("HTTP://lists.example/a".into()));
        assert_eq!(Source::parse("file:///etc/blocker/a.list"), Source::File("/etc/blocker/a.list".into()));
        assert_eq!(Source::parse("file://localhost/etc/a.list"), Source::File("/etc/a.list".into()));
        assert_eq!(Source::parse("/etc/blocker/a.list"), Source::File("/etc/blocker/a.list".into()));
        assert_eq!(Source::parse("relative/a.list"), Source::File("relative/a.list".into()));
        assert_eq!(Source::parse("http:/x"), Source::File("http:/x".into()));
        assert_eq!(Source::unsupported_scheme("ftp://lists.example/a.list"), Some("ftp"));
        assert_eq!(Source::unsupported_scheme("SFTP://lists.example/a.list"), Some("SFTP"));
        for fine in ["https://lists.example/a", "HTTP://lists.example/a", "file:///etc/a.list", "/etc/a.list", "a b://x"] {
            assert_eq!(Source::unsupported_scheme(fine), None, "{fine}");
        }
        assert_eq!(Source::parse("http://"), Source::Url("http://".into()));
        assert_eq!(Source::parse("é"), Source::File("é".into()));
    }

    #[test]
    fn display_masks_credentials() {
        assert_eq!(Source::parse("https://user:secret@h.example/l?x=a@b").to_string(), "https://***@h.example/l?x=a@b");
        assert_eq!(Source::parse("https://token@h.example/").to_string(), "https://***@h.example/");
        assert_eq!(Source::parse("https://h.example/a@b").to_string(), "https://h.example/a@b");
        assert_eq!(Source::parse("/etc/a.list").to_string(), "/etc/a.list");
    }

    #[test]
    fn signature_sources() {
        let url = Source::parse("https://h.example/court.list");
        assert_eq!(signature_source(&url, None), Source::Url("https://h.example/court.list.minisig".into()));
        let query = Source::parse("https://h.example/get?list=court#x");
        assert_eq!(signature_source(&query, None), Source::Url("https://h.example/get.minisig?list=court#x".into()));
        let file = Source::parse("/etc/blocker/court.list");
        assert_eq!(signature_source(&file, None), Source::File("/etc/blocker/court.list.minisig".into()));
        assert_eq!(
            signature_source(&file, Some("https://h.example/sigs/court.sig")),
            Source::Url("https://h.example/sigs/court.sig".into())
        );
        assert_eq!(signature_source(&url, Some("/etc/blocker/court.sig")), Source::File("/etc/blocker/court.sig".into()));
    }

    #[test]
    fn validators_round_trip_and_skip_absent_fields() {
        let both = Validators { etag: Some("\"v1\"".into()), last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()) };
        let json = serde_json::to_string(&both).unwrap();
        assert_eq!(serde_json::from_str::<Validators>(&json).unwrap(), both);
        assert_eq!(serde_json::to_string(&Validators::default()).unwrap(), "{}");
        assert_eq!(serde_json::from_str::<Validators>("{}").unwrap(), Validators::default());
        assert!(Validators::default().is_empty() && !both.is_empty());
    }

    #[test]
    fn limits_default() {
        let limits = FetchLimits::default();
        assert_eq!(limits.max_bytes, 256 << 20);
        assert_eq!(limits.timeout, Duration::from_secs(60));
    }

    #[test]
    fn debug_never_shows_the_body() {
        let fetched = Fetched::Body { bytes: b"secret list".to_vec(), validators: Validators::default() };
        let shown = format!("{fetched:?}");
        assert!(!shown.contains("secret") && shown.contains("11"), "{shown}");
    }

    #[test]
    fn error_messages_name_source_and_cause() {
        let timeout = FetchError::Timeout { url: "http://h/l".into(), after: Duration::from_millis(1500) };
        assert_eq!(timeout.to_string(), "http://h/l: timed out after 1.5 s");
        let status = FetchError::Status { url: "http://h/l".into(), status: 503 };
        assert_eq!(status.to_string(), "http://h/l: HTTP status 503");
        let none = FetchError::NoSignature { at: "http://h/l.minisig".into() };
        assert_eq!(none.to_string(), "no signature at http://h/l.minisig");
    }
}
