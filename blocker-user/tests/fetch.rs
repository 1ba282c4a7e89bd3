//! List pulls against local HTTP/1.1 servers (127.0.0.1, ephemeral ports) and files, and their
//! minisign verification end to end.
//!
//! Each server is a thread that handles a fixed number of connections, one request each
//! (`Connection: close`), and gives up waiting for them after a few seconds, so no test can hang
//! on it. Servers that stream or stall stop as soon as the client hangs up.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use blocker_user::lists::{
    FetchError, FetchLimits, Fetched, SignatureError, Source, TrustedKey, USER_AGENT, Validators, fetch, fetch_signature, signature_source,
    verify_signature,
};

// The test signer of blocker-tests (which depends on blocker-user, so cannot be a dependency here).
#[allow(dead_code)]
#[path = "../../tests/src/signing.rs"]
mod signing;
use signing::TestSigner;

/// How long a server waits for its connections before it exits.
const SERVER_DEADLINE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    handle: JoinHandle<Vec<String>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn source(&self, path: &str) -> Source {
        Source::parse(&self.url(path))
    }
    /// The request heads it received (lower-cased), once it has handled all its connections.
    fn requests(self) -> Vec<String> {
        self.handle.join().expect("server thread")
    }
}

/// A server for `connections` connections: for each, reads the request head and hands it (and
/// the connection's index) to `handler`, which writes the response.
fn serve(connections: usize, handler: impl Fn(usize, &str, &mut TcpStream) + Send + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let handle = thread::spawn(move || {
        let deadline = Instant::now() + SERVER_DEADLINE;
        let mut heads = Vec::new();
        while heads.len() < connections && Instant::now() < deadline {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(e) => panic!("accept: {e}"),
            };
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            stream.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let head = read_head(&mut stream).to_ascii_lowercase();
            handler(heads.len(), &head, &mut stream);
            heads.push(head);
        }
        heads
    });
    Server { addr, handle }
}

fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A complete response with a Content-Length; write errors (the client gave up) are ignored.
fn respond(stream: &mut TcpStream, status: &str, headers: &[&str], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    let _ = stream.write_all(&out);
}

/// Waits (at most the read timeout) for the client to hang up.
fn until_hang_up(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

fn limits(max_bytes: u64, timeout_ms: u64) -> FetchLimits {
    FetchLimits { max_bytes, timeout: Duration::from_millis(timeout_ms) }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

const ETAG: &str = "\"v1-abc\"";
const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

#[test]
fn ok_with_validators_then_not_modified() {
    let server = serve(2, |i, head, stream| {
        let etag = ETAG.to_ascii_lowercase();
        let conditional = header(head, "if-none-match") == Some(etag.as_str())
            && header(head, "if-modified-since") == Some(LAST_MODIFIED.to_ascii_lowercase().as_str());
        match i {
            0 if !conditional => respond(
                stream,
                "200 OK",
                &[&format!("ETag: {ETAG}"), &format!("Last-Modified: {LAST_MODIFIED}")],
                b"192.0.2.0/24\nexample.com\n",
            ),
            1 if conditional => respond(stream, "304 Not Modified", &[&format!("ETag: {ETAG}")], b""),
            _ => respond(stream, "400 Bad Request", &[], b"unexpected request"),
        }
    });
    let source = server.source("/court.list");
    let first = fetch(&source, &Validators::default(), &FetchLimits::default()).unwrap();
    let Fetched::Body { bytes, validators } = first else { panic!("{first:?}") };
    assert_eq!(bytes, b"192.0.2.0/24\nexample.com\n");
    assert_eq!(validators, Validators { etag: Some(ETAG.into()), last_modified: Some(LAST_MODIFIED.into()) });

    let second = fetch(&source, &validators, &FetchLimits::default()).unwrap();
    assert_eq!(second, Fetched::NotModified);

    // The validators persist through serde, as the caller keeps them.
    let kept: Validators = serde_json::from_str(&serde_json::to_string(&validators).unwrap()).unwrap();
    assert_eq!(kept, validators);

    let heads = server.requests();
    assert_eq!(heads.len(), 2);
    assert!(heads[0].starts_with("get /court.list http/1.1\r\n"), "{}", heads[0]);
    assert_eq!(header(&heads[0], "user-agent"), Some(USER_AGENT.to_ascii_lowercase().as_str()), "{}", heads[0]);
    assert!(USER_AGENT.starts_with("blocker/"));
    assert_eq!(header(&heads[0], "if-none-match"), None, "{}", heads[0]);
    assert_eq!(header(&heads[0], "if-modified-since"), None, "{}", heads[0]);
    // No compression asked for: the size limit counts what the server sends.
    assert_eq!(header(&heads[0], "accept-encoding"), None, "{}", heads[0]);
}

#[test]
fn etag_alone_makes_the_request_conditional() {
    let server = serve(1, |_, head, stream| {
        if header(head, "if-none-match") == Some("w/\"7\"") && header(head, "if-modified-since").is_none() {
            respond(stream, "304 Not Modified", &[], b"");
        } else {
            respond(stream, "400 Bad Request", &[], b"");
        }
    });
    let previous = Validators { etag: Some("W/\"7\"".into()), last_modified: None };
    assert_eq!(fetch(&server.source("/l"), &previous, &FetchLimits::default()).unwrap(), Fetched::NotModified);
    server.requests();
}

#[test]
fn other_statuses_are_errors_naming_status_and_url() {
    for (status, code) in [("404 Not Found", 404u16), ("500 Internal Server Error", 500), ("204 No Content", 204)] {
        let server = serve(1, move |_, _, stream| respond(stream, status, &[], b"<html>secret page body</html>"));
        let url = server.url("/court.list");
        let err = fetch(&server.source("/court.list"), &Validators::default(), &FetchLimits::default()).unwrap_err();
        match &err {
            FetchError::Status { url: at, status } => {
                assert_eq!(*status, code);
                assert_eq!(at, &url);
            }
            other => panic!("{status}: {other}"),
        }
        let message = err.to_string();
        assert!(message.contains(&code.to_string()) && message.contains(&url), "{message}");
        assert!(!message.contains("secret"), "the body must not reach the error: {message}");
        server.requests();
    }
}

#[test]
fn unasked_for_not_modified_is_an_error() {
    let server = serve(1, |_, _, stream| respond(stream, "304 Not Modified", &[], b""));
    let err = fetch(&server.source("/l"), &Validators::default(), &FetchLimits::default()).unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 304, .. }), "{err}");
    server.requests();
}

#[test]
fn declared_length_over_the_limit_is_refused_before_reading() {
    // Declares 10 MB and sends none of it: the client must not wait for the body.
    let server = serve(1, |_, _, stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n");
        until_hang_up(stream);
    });
    let started = Instant::now();
    let err = fetch(&server.source("/big"), &Validators::default(), &limits(1000, 5000)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    match &err {
        FetchError::DeclaredTooLarge { limit: 1000, declared: 10_000_000, .. } => {}
        other => panic!("{other}"),
    }
    let message = err.to_string();
    assert!(message.contains("larger than 1000 bytes") && message.contains(&server.url("/big")), "{message}");
    server.requests();
}

#[test]
fn body_at_the_limit_is_accepted() {
    let server = serve(1, |_, _, stream| respond(stream, "200 OK", &[], &[b'a'; 1000]));
    let fetched = fetch(&server.source("/l"), &Validators::default(), &limits(1000, 5000)).unwrap();
    assert!(matches!(fetched, Fetched::Body { ref bytes, .. } if bytes.len() == 1000), "{fetched:?}");
    server.requests();
}

/// Streams `chunk`-sized pieces (chunked or close-delimited) until the client hangs up or 8 MiB
/// went out.
fn endless(stream: &mut TcpStream, chunked: bool) {
    let head: &[u8] = if chunked {
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    };
    if stream.write_all(head).is_err() {
        return;
    }
    let piece = [b'x'; 4096];
    for _ in 0..2048 {
        let written = if chunked {
            stream.write_all(b"1000\r\n").and_then(|_| stream.write_all(&piece)).and_then(|_| stream.write_all(b"\r\n"))
        } else {
            stream.write_all(&piece)
        };
        if written.is_err() {
            return;
        }
    }
    if chunked {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
}

#[test]
fn chunked_body_over_the_limit_is_cut_off() {
    let server = serve(1, |_, _, stream| endless(stream, true));
    let err = fetch(&server.source("/endless"), &Validators::default(), &limits(64 * 1024, 10_000)).unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit: 65536, .. }), "{err}");
    assert!(err.to_string().contains("larger than 65536 bytes, cut off"), "{err}");
    server.requests();
}

#[test]
fn close_delimited_body_over_the_limit_is_cut_off() {
    let server = serve(1, |_, _, stream| endless(stream, false));
    let err = fetch(&server.source("/endless"), &Validators::default(), &limits(64 * 1024, 10_000)).unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    server.requests();
}

#[test]
fn slow_drip_body_hits_the_timeout() {
    // A byte every 50 ms of a 1000-byte body would take 50 s.
    let server = serve(1, |_, _, stream| {
        if stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n").is_err() {
            return;
        }
        for _ in 0..100 {
            thread::sleep(Duration::from_millis(50));
            if stream.write_all(b"x").is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let err = fetch(&server.source("/drip"), &Validators::default(), &limits(1 << 20, 1000)).unwrap_err();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("timed out after 1 s") && message.contains(&server.url("/drip")), "{message}");
    server.requests();
}

#[test]
fn silent_server_hits_the_timeout() {
    let server = serve(1, |_, _, stream| until_hang_up(stream));
    let started = Instant::now();
    let err = fetch(&server.source("/silent"), &Validators::default(), &limits(1 << 20, 800)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("timed out after 0.8 s"), "{err}");
    server.requests();
}

#[test]
fn connection_refused_is_named() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/court.list");
    let err = fetch(&Source::parse(&url), &Validators::default(), &limits(1000, 2000)).unwrap_err();
    assert!(matches!(err, FetchError::ConnectionRefused { .. }), "{err}");
    assert_eq!(err.to_string(), format!("{url}: connection refused"));
}

#[test]
fn redirects_are_followed() {
    let server = serve(2, |i, head, stream| match i {
        0 => respond(stream, "302 Found", &["Location: /moved/court.list"], b""),
        _ if head.starts_with("get /moved/court.list ") => respond(stream, "200 OK", &["ETag: \"m\""], b"example.com\n"),
        _ => respond(stream, "400 Bad Request", &[], b""),
    });
    let fetched = fetch(&server.source("/court.list"), &Validators::default(), &FetchLimits::default()).unwrap();
    assert_eq!(
        fetched,
        Fetched::Body { bytes: b"example.com\n".to_vec(), validators: Validators { etag: Some("\"m\"".into()), last_modified: None } }
    );
    let heads = server.requests();
    assert!(heads[1].starts_with("get /moved/court.list "), "{}", heads[1]);
}

#[test]
fn redirect_loops_stop_at_the_limit() {
    // The first request and five redirects; the sixth redirect is refused.
    let server = serve(6, |i, _, stream| respond(stream, "302 Found", &[&format!("Location: /loop{i}")], b""));
    let err = fetch(&server.source("/start"), &Validators::default(), &FetchLimits::default()).unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects { max: 5, .. }), "{err}");
    assert!(err.to_string().contains(&server.url("/start")), "{err}");
    assert_eq!(server.requests().len(), 6);
}

#[test]
fn passwords_in_urls_stay_out_of_errors() {
    let server = serve(1, |_, _, stream| respond(stream, "403 Forbidden", &[], b""));
    let url = format!("http://operator:hunter2@{}/court.list", server.addr);
    let err = fetch(&Source::parse(&url), &Validators::default(), &FetchLimits::default()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("403") && message.contains("http://***@127.0.0.1"), "{message}");
    assert!(!message.contains("hunter2") && !format!("{err:?}").contains("hunter2"), "{message}");
    server.requests();
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("blocker-fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn files_are_read_within_the_limit() {
    let dir = temp_dir("files");
    let path = dir.join("court.list");
    std::fs::write(&path, [b'a'; 100]).unwrap();

    for source in [Source::File(path.clone()), Source::parse(&format!("file://{}", path.display()))] {
        let fetched = fetch(&source, &Validators::default(), &limits(100, 1000)).unwrap();
        assert_eq!(fetched, Fetched::Body { bytes: vec![b'a'; 100], validators: Validators::default() });
    }
    // Validators mean nothing to a file: it is read again.
    let previous = Validators { etag: Some("\"x\"".into()), last_modified: None };
    assert!(matches!(fetch(&Source::File(path.clone()), &previous, &limits(100, 1000)).unwrap(), Fetched::Body { .. }));

    let err = fetch(&Source::File(path.clone()), &Validators::default(), &limits(99, 1000)).unwrap_err();
    assert!(matches!(err, FetchError::DeclaredTooLarge { limit: 99, declared: 100, .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");

    // A device that never ends is cut off while reading.
    let err = fetch(&Source::parse("/dev/zero"), &Validators::default(), &limits(4096, 1000)).unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit: 4096, .. }), "{err}");

    let missing = dir.join("missing.list");
    let err = fetch(&Source::File(missing.clone()), &Validators::default(), &FetchLimits::default()).unwrap_err();
    assert!(matches!(err, FetchError::Io { .. }), "{err}");
    assert!(err.to_string().contains(&missing.display().to_string()), "{err}");

    let err = fetch(&Source::File(dir.clone()), &Validators::default(), &FetchLimits::default()).unwrap_err();
    assert!(matches!(err, FetchError::Io { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_signatures_say_so() {
    let server = serve(2, |i, _, stream| match i {
        0 => respond(stream, "404 Not Found", &[], b"not here"),
        _ => respond(stream, "200 OK", &[], &[b's'; 70 * 1024]),
    });
    let list = server.source("/court.list");
    let sig = signature_source(&list, None);
    assert_eq!(sig, server.source("/court.list.minisig"));
    let err = fetch_signature(&sig, &FetchLimits::default()).unwrap_err();
    assert!(matches!(err, FetchError::NoSignature { .. }), "{err}");
    assert_eq!(err.to_string(), format!("no signature at {}", server.url("/court.list.minisig")));
    // A signature is small: 70 KiB is refused whatever the list limit.
    let err = fetch_signature(&sig, &FetchLimits::default()).unwrap_err();
    assert!(matches!(err, FetchError::DeclaredTooLarge { limit: 65536, .. }), "{err}");
    server.requests();

    let dir = temp_dir("nosig");
    let list = Source::File(dir.join("court.list"));
    let sig = signature_source(&list, None);
    let err = fetch_signature(&sig, &FetchLimits::default()).unwrap_err();
    assert_eq!(err.to_string(), format!("no signature at {}", dir.join("court.list.minisig").display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pulled_list_verifies_against_its_signature() {
    let signer = TestSigner::new();
    let body = b"192.0.2.0/24\nexample.com\n".to_vec();
    let signature = signer.sign(&body, "timestamp:1700000000\tfile:court.list");
    let tampered = b"192.0.2.0/24\nexample.org\n".to_vec();
    let (good, sig) = (body.clone(), signature.clone());
    let server = serve(4, move |i, head, stream| {
        let list = if i < 2 { &good } else { &tampered };
        if head.starts_with("get /court.list.minisig ") {
            respond(stream, "200 OK", &[], &sig);
        } else if head.starts_with("get /court.list ") {
            respond(stream, "200 OK", &[], list);
        } else {
            respond(stream, "404 Not Found", &[], b"");
        }
    });
    let key = TrustedKey::parse(&signer.public_key_file()).unwrap();
    assert_eq!(key.key_id(), TrustedKey::parse(&signer.public_key_base64()).unwrap().key_id());
    assert_eq!(key.key_id(), signer.key_id_hex());
    let list = server.source("/court.list");
    let pull = || {
        let Fetched::Body { bytes, .. } = fetch(&list, &Validators::default(), &FetchLimits::default()).unwrap() else {
            panic!("not modified")
        };
        let sig = fetch_signature(&signature_source(&list, None), &FetchLimits::default()).unwrap();
        verify_signature(&key, &bytes, &sig)
    };
    let verified = pull().unwrap();
    assert_eq!(verified.trusted_comment, "timestamp:1700000000\tfile:court.list");
    assert_eq!(verified.key_id, signer.key_id_hex());
    // The server now serves an altered list under the old signature.
    let err = pull().unwrap_err();
    assert!(matches!(err, SignatureError::Mismatch { .. }), "{err}");
    server.requests();

    // A list signed by someone else.
    let other = TestSigner::new();
    let err = verify_signature(&key, &body, &other.sign(&body, "c")).unwrap_err();
    assert!(matches!(err, SignatureError::OtherKey { .. }), "{err}");
    assert!(err.to_string().contains(&other.key_id_hex()) && err.to_string().contains(&signer.key_id_hex()), "{err}");
    // Garbage where the signature should be (an HTML error page served with 200).
    let err = verify_signature(&key, &body, b"<html><body>maintenance</body></html>").unwrap_err();
    assert!(matches!(err, SignatureError::NotMinisign { .. }), "{err}");
    let err = verify_signature(&key, &body, b"").unwrap_err();
    assert!(matches!(err, SignatureError::Empty), "{err}");
}
