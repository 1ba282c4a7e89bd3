//! The HTTP/1.1 server: listeners, the accept loop with its connection cap, one hyper connection per
//! client under a watchdog that enforces the time limits, and the response itself.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

use super::StopPageError;
use super::config::{StopPageConfig, StopPageLimits};
use super::lang::negotiate_language;
use super::page::{PageInput, PageQuery, render, sanitize_host};

/// `listen(2)` backlog of the sockets [`bind`] makes.
const BACKLOG: i32 = 1024;
/// Pause after an accept error that means "out of descriptors or memory", so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// Counters for metrics; all only grow. Read them with [`StopPageStats::snapshot`].
#[derive(Debug, Default)]
pub struct StopPageStats {
    /// 451 responses (GET and HEAD).
    pub served: AtomicU64,
    /// 405 responses (any other method).
    pub method_not_allowed: AtomicU64,
    /// Request heads over `max_header_bytes` or `max_headers` (431, connection closed).
    pub rejected_oversize: AtomicU64,
    /// Malformed request heads (400 or plain close).
    pub bad_requests: AtomicU64,
    /// Connections cut off because a started request head or a response took too long. Idle
    /// keep-alive closes and connections that never sent a byte (browsers' spare connections) are
    /// closed on the same deadlines but not counted.
    pub timeouts: AtomicU64,
    /// Connections closed on accept because `max_connections` were open.
    pub rejected_busy: AtomicU64,
    /// Connections accepted (including those then rejected as busy).
    pub connections: AtomicU64,
}

/// A plain copy of [`StopPageStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StopPageStatsSnapshot {
    pub served: u64,
    pub method_not_allowed: u64,
    pub rejected_oversize: u64,
    pub bad_requests: u64,
    pub timeouts: u64,
    pub rejected_busy: u64,
    pub connections: u64,
}

impl StopPageStats {
    pub fn snapshot(&self) -> StopPageStatsSnapshot {
        StopPageStatsSnapshot {
            served: self.served.load(Relaxed),
            method_not_allowed: self.method_not_allowed.load(Relaxed),
            rejected_oversize: self.rejected_oversize.load(Relaxed),
            bad_requests: self.bad_requests.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            rejected_busy: self.rejected_busy.load(Relaxed),
            connections: self.connections.load(Relaxed),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Binds every address of `config.listen`: `SO_REUSEADDR`, IPv6 sockets IPv6-only (so `0.0.0.0:80`
/// and `[::]:80` bind side by side), `IP_FREEBIND`/`IPV6_FREEBIND` if `config.freebind`, backlog 1024.
/// Must be called inside a tokio runtime. Port 80 needs `CAP_NET_BIND_SERVICE` (the controller runs
/// as root for XDP anyway).
pub fn bind(config: &StopPageConfig) -> Result<Vec<TcpListener>, StopPageError> {
    if config.listen.is_empty() {
        return Err(StopPageError::Config("listen: no address to bind".into()));
    }
    config
        .listen
        .iter()
        .map(|&addr| bind_one(addr, config.freebind).map_err(|source| StopPageError::Bind { addr, source }))
        .collect()
}

fn bind_one(addr: SocketAddr, freebind: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        if freebind {
            socket.set_freebind_v6(true)?;
        }
    } else if freebind {
        socket.set_freebind_v4(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Validates `config` and serves on `listeners` until `shutdown` completes; see [`StopPage::serve`].
pub async fn serve<F: Future>(
    config: Arc<StopPageConfig>,
    listeners: Vec<TcpListener>,
    shutdown: F,
) -> Result<(), StopPageError> {
    StopPage::new(config)?.serve(listeners, shutdown).await
}

/// A validated stop page, ready to serve.
pub struct StopPage {
    shared: Arc<Shared>,
}

struct Shared {
    config: Arc<StopPageConfig>,
    stats: Arc<StopPageStats>,
    /// `<url>; rel="blocked-by"`.
    link: HeaderValue,
}

impl StopPage {
    /// Checks the configuration ([`StopPageConfig::validate`]) and prepares the fixed headers.
    pub fn new(config: Arc<StopPageConfig>) -> Result<Self, StopPageError> {
        config.validate()?;
        let link = HeaderValue::from_str(&format!("<{}>; rel=\"blocked-by\"", config.blocked_by_url()))
            .map_err(|_| StopPageError::Config("the blocked-by URL is not usable in a header".into()))?;
        Ok(StopPage { shared: Arc::new(Shared { config, stats: Arc::default(), link }) })
    }

    /// The counters, shared with the running server.
    pub fn stats(&self) -> Arc<StopPageStats> {
        self.shared.stats.clone()
    }

    /// Serves on all `listeners` until `shutdown` completes. Then it stops accepting, lets open
    /// connections finish the request they are in (idle ones close at once) for at most the longer of
    /// the header and request timeouts, drops the rest and returns. Per-connection failures are
    /// counted, never returned. Dropping this future closes the listeners and every connection.
    pub async fn serve<F: Future>(self, listeners: Vec<TcpListener>, shutdown: F) -> Result<(), StopPageError> {
        if listeners.is_empty() {
            return Err(StopPageError::NoListeners);
        }
        let shared = self.shared;
        let limits = &shared.config.limits;
        for l in &listeners {
            if let Ok(a) = l.local_addr() {
                log::info!("stop page: listening on {a}");
            }
        }
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        let mut next = 0usize;
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.as_mut() => break,
                Some(done) = conns.join_next(), if !conns.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        log::error!("stop page: a connection task panicked");
                    }
                }
                accepted = poll_fn(|cx| poll_accept_any(&listeners, &mut next, cx)) => match accepted {
                    Ok((stream, peer)) => {
                        bump(&shared.stats.connections);
                        match slots.clone().try_acquire_owned() {
                            Ok(permit) => {
                                conns.spawn(connection(shared.clone(), stream, peer, stop_rx.clone(), permit));
                            }
                            Err(_) => {
                                bump(&shared.stats.rejected_busy);
                                drop(stream);
                            }
                        }
                    }
                    Err(e) => {
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                        ) {
                            log::warn!("stop page: accept failed: {e}; pausing");
                            sleep(ACCEPT_BACKOFF).await;
                        } else {
                            log::debug!("stop page: accept failed: {e}");
                        }
                    }
                },
            }
        }
        drop(listeners);
        let _ = stop_tx.send(true);
        let grace = Duration::from_millis(limits.header_read_timeout_ms.max(limits.request_timeout_ms));
        let _ = tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
        conns.abort_all();
        log::info!("stop page: stopped");
        Ok(())
    }
}

/// Accepts from whichever listener is ready, starting with a different one each time so that a flood
/// on one does not starve the others.
fn poll_accept_any(
    listeners: &[TcpListener],
    next: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
    let n = listeners.len();
    for i in 0..n {
        let idx = (*next + i) % n;
        if let Poll::Ready(r) = listeners[idx].poll_accept(cx) {
            *next = (idx + 1) % n;
            return Poll::Ready(r);
        }
    }
    Poll::Pending
}

// ---------------------------------------------------------------------------------------------------
// One connection.

/// Where a connection is, for the watchdog.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Reading a request head that started at `since`.
    Head { since: Instant },
    /// The handler answered a request that started at `since`; the response is being written.
    Responding { since: Instant, close: bool },
    /// The response was flushed at `since`. `close`: it was the last one (hyper is closing).
    Idle { since: Instant, close: bool },
}

/// Why the watchdog ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    Header,
    Request,
    Idle,
}

struct WatchState {
    phase: Phase,
    requests: u32,
    draining: bool,
    /// Whether the client ever sent a byte.
    spoke: bool,
}

/// Shared between the IO wrapper (bytes read, output flushed), the handler (request seen) and the
/// watchdog (deadlines).
struct ConnWatch {
    state: Mutex<WatchState>,
    notify: Notify,
    header_timeout: Duration,
    request_timeout: Duration,
    idle_timeout: Duration,
    max_requests: u32,
    keep_alive: bool,
}

impl ConnWatch {
    fn new(limits: &StopPageLimits, now: Instant) -> Self {
        ConnWatch {
            state: Mutex::new(WatchState {
                phase: Phase::Head { since: now },
                requests: 0,
                draining: false,
                spoke: false,
            }),
            notify: Notify::new(),
            header_timeout: Duration::from_millis(limits.header_read_timeout_ms),
            request_timeout: Duration::from_millis(limits.request_timeout_ms),
            idle_timeout: Duration::from_millis(limits.keep_alive_timeout_ms),
            max_requests: limits.max_requests_per_connection,
            keep_alive: limits.keep_alive_timeout_ms > 0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes arrived: an idle kept-alive connection starts a new request head.
    fn on_read(&self) {
        let mut s = self.lock();
        s.spoke = true;
        if let Phase::Idle { close: false, .. } = s.phase {
            s.phase = Phase::Head { since: Instant::now() };
            drop(s);
            self.notify.notify_one();
        }
    }

    /// A request head is complete and is being answered. Returns whether this is the connection's
    /// last response.
    fn on_request(&self) -> bool {
        let mut s = self.lock();
        let since = match s.phase {
            Phase::Head { since } => since,
            // A pipelined request, parsed from bytes already buffered.
            Phase::Responding { .. } | Phase::Idle { .. } => Instant::now(),
        };
        s.requests = s.requests.saturating_add(1);
        let close = !self.keep_alive || s.draining || s.requests >= self.max_requests;
        s.phase = Phase::Responding { since, close };
        drop(s);
        self.notify.notify_one();
        close
    }

    /// hyper flushed its output: a response being written is out.
    fn on_flushed(&self) {
        let mut s = self.lock();
        if let Phase::Responding { close, .. } = s.phase {
            s.phase = Phase::Idle { since: Instant::now(), close };
            drop(s);
            self.notify.notify_one();
        }
    }

    fn set_draining(&self) {
        self.lock().draining = true;
    }

    fn deadline(&self) -> (Instant, Expiry) {
        let s = self.lock();
        match s.phase {
            Phase::Head { since } => {
                // A connection that never sent a byte is not counted as a timeout: browsers open
                // spare connections they may never use.
                let kind = if s.spoke { Expiry::Header } else { Expiry::Idle };
                (since + self.header_timeout.min(self.request_timeout), kind)
            }
            Phase::Responding { since, .. } => (since + self.request_timeout, Expiry::Request),
            Phase::Idle { since, close: false } => (since + self.idle_timeout, Expiry::Idle),
            // hyper shuts the connection down by itself; this only bounds a stuck close.
            Phase::Idle { since, close: true } => (since + self.request_timeout, Expiry::Idle),
        }
    }

    /// Completes when the current phase's deadline passes.
    async fn expired(&self) -> Expiry {
        loop {
            let changed = self.notify.notified();
            let (deadline, kind) = self.deadline();
            if Instant::now() >= deadline {
                return kind;
            }
            tokio::select! {
                _ = sleep_until(deadline) => {}
                _ = changed => {}
            }
        }
    }
}

/// The client socket, reporting reads and flushes to the connection's watch.
struct Tracked {
    inner: TcpStream,
    watch: Arc<ConnWatch>,
}

impl AsyncRead for Tracked {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r
            && buf.filled().len() > before
        {
            this.watch.on_read();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// hyper flushes once its write buffer is empty, i.e. after the whole response went out.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            this.watch.on_flushed();
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let limits = &shared.config.limits;
    let conn_watch = Arc::new(ConnWatch::new(limits, Instant::now()));
    let io = TokioIo::new(Tracked { inner: stream, watch: conn_watch.clone() });
    let service = {
        let shared = shared.clone();
        let conn_watch = conn_watch.clone();
        service_fn(move |req: Request<Incoming>| {
            let close = conn_watch.on_request();
            let response = shared.respond(&req, peer, close);
            std::future::ready(Ok::<_, Infallible>(response))
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(limits.keep_alive_timeout_ms > 0)
        .half_close(false)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192))
        // The watchdog does all timing; hyper needs no timer.
        .header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_parse_too_large() {
                        bump(&shared.stats.rejected_oversize);
                    } else if e.is_parse() {
                        bump(&shared.stats.bad_requests);
                    }
                    log::debug!("stop page: connection ended: {e}");
                }
                return;
            }
            expiry = conn_watch.expired() => {
                if expiry != Expiry::Idle {
                    bump(&shared.stats.timeouts);
                }
                return;
            }
            _ = stop.changed(), if !draining => {
                draining = true;
                conn_watch.set_draining();
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Responses.

impl Shared {
    fn respond(&self, req: &Request<Incoming>, peer: SocketAddr, close: bool) -> Response<Full<Bytes>> {
        let method = req.method();
        let response = if method == Method::GET || method == Method::HEAD {
            bump(&self.stats.served);
            self.page(req, close)
        } else {
            bump(&self.stats.method_not_allowed);
            method_not_allowed()
        };
        if self.config.log_clients {
            let host = req.headers().get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()));
            let path: String = req.uri().path().chars().take(256).collect();
            log::info!(
                "stop page: {peer} {method} host={:?} path={path:?} -> {}",
                host.as_deref().unwrap_or(""),
                response.status().as_u16()
            );
        }
        response
    }

    fn page(&self, req: &Request<Incoming>, close: bool) -> Response<Full<Bytes>> {
        let config = &*self.config;
        let query = PageQuery::parse(req.uri().query(), config);
        let accept = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        let lang = query.lang.unwrap_or_else(|| negotiate_language(accept, config.default_language));
        let (host, host_from_query) = match query.host {
            Some(h) => (Some(h), true),
            // The data plane names no host for a blocked address: say "the site you requested",
            // never this service's own address.
            None if query.host_given => (None, true),
            None => {
                // An absolute-form target's authority wins over Host (RFC 9112 §3.2.2); drop userinfo.
                let raw = match req.uri().authority() {
                    Some(a) => Some(a.as_str().rsplit('@').next().unwrap_or("").to_string()),
                    None => req.headers().get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()),
                };
                (raw.as_deref().and_then(sanitize_host), false)
            }
        };
        let html =
            render(config, &PageInput { lang, list: query.list.as_deref(), host: host.as_deref(), host_from_query });
        let mut response = Response::new(Full::new(Bytes::from(html)));
        *response.status_mut() = StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS;
        let h = response.headers_mut();
        h.insert(header::LINK, self.link.clone());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
        h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
        common_headers(h);
        if close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"405 Method Not Allowed: use GET or HEAD\n")));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    let h = response.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    common_headers(h);
    // A body may follow the head; it is never read, so the connection cannot be reused.
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn common_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}
