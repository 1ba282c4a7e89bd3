//! The scrape endpoint: a small HTTP/1.1 server on plain threads. One thread accepts; each
//! connection gets a thread of its own (at most `max_connections` at once; while all are busy,
//! new connections wait in the listen backlog), reads one request head within the header
//! timeout, answers it and closes. Nothing is logged per request.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::render::{CONTENT_TYPE, render};
use super::snapshot::{ProcessStats, Snapshot};

/// Builds the snapshot of one scrape. Called on the connection's thread, once per `GET /metrics`.
pub type SnapshotSource = Arc<dyn Fn() -> Snapshot + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("metrics: cannot start the server thread: {0}")]
    Spawn(io::Error),
}

/// Bounds on what one client can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsLimits {
    /// The whole request head must arrive within this time of the accept.
    pub header_timeout: Duration,
    /// Each write of the response must make progress within this time.
    pub write_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog (not accepted) until one
    /// ends, so a scrape queued behind stalled clients waits at most about `header_timeout`.
    pub max_connections: usize,
    /// Largest request head read (431 beyond).
    pub max_request_bytes: usize,
}

impl Default for MetricsLimits {
    fn default() -> Self {
        MetricsLimits {
            header_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_connections: 8,
            max_request_bytes: 8 * 1024,
        }
    }
}

/// A running metrics endpoint. Dropping it stops accepting and joins the accept thread;
/// connections already being served finish (each within its time limits).
pub struct MetricsServer {
    addr: SocketAddr,
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    source: SnapshotSource,
    limits: MetricsLimits,
    /// Connections being served.
    active: Mutex<usize>,
    /// Signalled when a connection ends, and on stop.
    freed: Condvar,
}

impl Shared {
    fn active(&self) -> MutexGuard<'_, usize> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Stack of a connection thread: rendering lives on the heap.
const CONNECTION_STACK: usize = 256 * 1024;
/// Pause after an accept error such as "out of descriptors", so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const INDEX: &str = "<!doctype html>\n<html><head><title>blocker metrics</title></head>\
<body><h1>blocker</h1><p>Prometheus metrics: <a href=\"/metrics\">/metrics</a></p></body></html>\n";

impl MetricsServer {
    /// Binds `addr` (an error is returned at once) and serves on a thread of its own with the
    /// default [`MetricsLimits`].
    pub fn start(addr: SocketAddr, source: SnapshotSource) -> Result<MetricsServer, MetricsError> {
        Self::start_with(addr, source, MetricsLimits::default())
    }

    pub fn start_with(
        addr: SocketAddr,
        source: SnapshotSource,
        limits: MetricsLimits,
    ) -> Result<MetricsServer, MetricsError> {
        let listener = TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| MetricsError::Bind { addr, source })?;
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let limits = MetricsLimits { max_connections: limits.max_connections.max(1), ..limits };
        let shared = Arc::new(Shared { source, limits, active: Mutex::new(0), freed: Condvar::new() });
        let thread = {
            let (listener, stop, shared) = (listener.clone(), stop.clone(), shared.clone());
            thread::Builder::new()
                .name("metrics".into())
                .spawn(move || accept_loop(&listener, &stop, &shared))
                .map_err(MetricsError::Spawn)?
        };
        log::info!("metrics: serving http://{local}/metrics");
        Ok(MetricsServer { addr: local, listener, stop, shared, thread: Some(thread) })
    }

    /// The address bound (with the port chosen, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept thread if it waits for a free slot...
        drop(self.shared.active());
        self.shared.freed.notify_all();
        // ... and shutting a listening socket down wakes it in accept(2) on Linux (which then
        // returns EINVAL); the flag then ends the loop.
        // SAFETY: the descriptor belongs to the listener, which outlives this call.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, shared: &Arc<Shared>) {
    loop {
        // Wait for a free slot before accepting: meanwhile clients wait in the backlog.
        {
            let mut active = shared.active();
            while *active >= shared.limits.max_connections && !stop.load(Ordering::SeqCst) {
                active = shared.freed.wait(active).unwrap_or_else(|e| e.into_inner());
            }
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::ConnectionAborted => {
                continue;
            }
            Err(_) => {
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        *shared.active() += 1;
        let slot = Slot(shared.clone());
        let spawned =
            thread::Builder::new().name("metrics-conn".into()).stack_size(CONNECTION_STACK).spawn(move || {
                let _ = serve(stream, &slot.0);
                drop(slot);
            });
        if spawned.is_err() {
            // The closure was dropped unrun, and with it the slot and the stream.
            thread::sleep(ACCEPT_BACKOFF);
        }
    }
}

/// A connection's slot, given back when its thread ends, however it ends.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.active() -= 1;
        self.0.freed.notify_one();
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Request { head_only: bool, path: String },
    MethodNotAllowed,
    Bad,
}

fn serve(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let limits = shared.limits;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(limits.write_timeout))?;
    let deadline = Instant::now() + limits.header_timeout;
    let head = match read_head(&mut stream, deadline, limits.max_request_bytes)? {
        Head::Complete(h) => h,
        Head::TooLarge => {
            return respond(
                &mut stream,
                431,
                "Request Header Fields Too Large",
                "text/plain; charset=utf-8",
                b"request too large\n",
                false,
            );
        }
        Head::Closed | Head::TimedOut => return Ok(()),
    };
    match parse(&head) {
        Parsed::Bad => respond(&mut stream, 400, "Bad Request", "text/plain; charset=utf-8", b"bad request\n", false),
        Parsed::MethodNotAllowed => {
            respond(&mut stream, 405, "Method Not Allowed", "text/plain; charset=utf-8", b"only GET\n", false)
        }
        Parsed::Request { head_only, path } => match path.as_str() {
            "/metrics" => {
                let source = shared.source.clone();
                let body = catch_unwind(AssertUnwindSafe(|| {
                    let mut snapshot = source();
                    if snapshot.process.is_none() {
                        snapshot.process = ProcessStats::current();
                    }
                    render(&snapshot)
                }));
                match body {
                    Ok(text) => respond(&mut stream, 200, "OK", CONTENT_TYPE, text.as_bytes(), head_only),
                    Err(_) => respond(
                        &mut stream,
                        500,
                        "Internal Server Error",
                        "text/plain; charset=utf-8",
                        b"snapshot failed\n",
                        head_only,
                    ),
                }
            }
            "/" => respond(&mut stream, 200, "OK", "text/html; charset=utf-8", INDEX.as_bytes(), head_only),
            _ => respond(
                &mut stream,
                404,
                "Not Found",
                "text/plain; charset=utf-8",
                b"not found; metrics are at /metrics\n",
                head_only,
            ),
        },
    }
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    Closed,
    TimedOut,
}

/// Reads up to the blank line that ends a request head, within `deadline` and `max` bytes.
fn read_head(stream: &mut TcpStream, deadline: Instant, max: usize) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Head::TimedOut);
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(Head::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Ok(Head::TimedOut);
            }
            Err(e) => return Err(e),
        };
        // Look for the end only where it can newly appear.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&buf[from..]) {
            buf.truncate(from + end);
            return Ok(Head::Complete(buf));
        }
        if buf.len() >= max {
            return Ok(Head::TooLarge);
        }
    }
}

/// The length of the head up to and including its terminating blank line (CRLF CRLF, or bare
/// LF LF from lenient clients).
fn find_end(b: &[u8]) -> Option<usize> {
    (0..b.len()).find_map(|i| {
        if b[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if b[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

fn parse(head: &[u8]) -> Parsed {
    let Ok(text) = std::str::from_utf8(head) else { return Parsed::Bad };
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Bad;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Parsed::Bad;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Parsed::MethodNotAllowed,
    };
    // Origin form, or absolute form (`http://host:port/metrics`).
    let path = match target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None if target.starts_with('/') => target,
        None => return Parsed::Bad,
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    Parsed::Request { head_only, path: path.to_string() }
}

fn response_head(status: u16, reason: &str, content_type: &str, len: usize, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut h = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nCache-Control: no-store\r\nConnection: close\r\n"
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let extra: &[(&str, &str)] = if status == 405 { &[("Allow", "GET, HEAD")] } else { &[] };
    let mut out = response_head(status, reason, content_type, body.len(), extra);
    if !head_only {
        out.extend_from_slice(body);
    }
    stream.write_all(&out)?;
    stream.flush()?;
    // Let the client read everything before the close (a close with unread request bytes
    // would otherwise reset the connection and could discard the response).
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 512];
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, head_only: bool) -> Parsed {
        Parsed::Request { head_only, path: path.into() }
    }

    #[test]
    fn request_lines() {
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), req("/metrics", false));
        assert_eq!(parse(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"), req("/metrics", true));
        assert_eq!(parse(b"GET http://10.0.0.1:9100/metrics HTTP/1.1\r\n\r\n"), req("/metrics", false));
        assert_eq!(parse(b"GET http://10.0.0.1:9100 HTTP/1.1\r\n\r\n"), req("/", false));
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Parsed::MethodNotAllowed);
        assert_eq!(parse(b"DELETE / HTTP/1.1\r\n\r\n"), Parsed::MethodNotAllowed);
        assert_eq!(parse(b"GET /metrics\r\n\r\n"), Parsed::Bad);
        assert_eq!(parse(b"GET metrics HTTP/1.1\r\n\r\n"), Parsed::Bad);
        assert_eq!(parse(b"get /metrics HTTP/1.1\r\n\r\n"), Parsed::Bad);
        assert_eq!(parse(b"GET /metrics SPDY/3\r\n\r\n"), Parsed::Bad);
        assert_eq!(parse(b"\xff\xfe\r\n\r\n"), Parsed::Bad);
    }

    #[test]
    fn head_ends() {
        assert_eq!(find_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
