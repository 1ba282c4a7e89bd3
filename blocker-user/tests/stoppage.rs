//! Stop-page service, end to end over loopback TCP (no root): the 451 page and its headers, language
//! choice, escaping of reflected hosts, and the bounds against malformed, huge, slow and numerous
//! clients. Real clients: hyper's HTTP/1.1 client for well-formed requests, raw sockets for the rest.
//! Waits are bounded by generous timeouts; nothing asserts speed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blocker_user::stoppage::{
    AppealContact, ListBody, LocalText, StopPage, StopPageConfig, StopPageError, StopPageStats, bind,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Bound on any single wait in these tests.
const WAIT: Duration = Duration::from_secs(10);
const LINK: &str = "<https://list-body.example/about?x=1>; rel=\"blocked-by\"";

fn config() -> StopPageConfig {
    let mut c = StopPageConfig::new(
        ListBody {
            name: LocalText::new("インターネットコンテンツセーフティ協会", "Internet Content Safety Association"),
            url: "https://list-body.example/about?x=1".into(),
        },
        AppealContact {
            name: None,
            url: Some("https://list-body.example/appeal".into()),
            email: Some("appeal@list-body.example".into()),
        },
    );
    c.reasons
        .insert("csam".into(), LocalText::new("児童の性的搾取に関わる内容のため。", "Child sexual abuse material."));
    c.listen = vec![];
    c
}

struct Server {
    addr: SocketAddr,
    stats: Arc<StopPageStats>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StopPageError>>,
}

impl Server {
    async fn start(config: StopPageConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let page = StopPage::new(Arc::new(config)).unwrap();
        let stats = page.stats();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(page.serve(vec![listener], async move {
            let _ = rx.await;
        }));
        Server { addr, stats, stop: Some(tx), task }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(WAIT * 2, self.task).await.expect("serve returns after shutdown").unwrap().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------------
// Clients.

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// One GET with hyper's client; `headers` are added to the request.
async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Resp {
    request(addr, "GET", target, headers).await
}

async fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder().method(method).uri(target);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        b = b.header("host", "blocked.example");
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let req = b.body(Empty::<Bytes>::new()).unwrap();
    let resp = timeout(WAIT, sender.send_request(req)).await.expect("response in time").unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = timeout(WAIT, resp.into_body().collect()).await.unwrap().unwrap().to_bytes().to_vec();
    Resp { status, headers, body }
}

/// A raw client connection, buffered so that pipelined responses can be read one by one.
type Raw = BufReader<TcpStream>;

async fn connect(addr: SocketAddr) -> Raw {
    BufReader::new(TcpStream::connect(addr).await.unwrap())
}

/// Reads one response from a raw connection: the head, then `Content-Length` bytes (none for HEAD).
/// `None` if the server closed (or reset) the connection before a complete head.
async fn read_response(s: &mut Raw, head_only: bool) -> Option<Resp> {
    let mut line = Vec::new();
    let mut status = None;
    let mut headers = Vec::new();
    loop {
        line.clear();
        match timeout(WAIT, s.read_until(b'\n', &mut line)).await.expect("server answers or closes in time") {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            return None; // closed mid-line
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if status.is_none() {
            status = Some(text.split(' ').nth(1).unwrap().parse::<u16>().unwrap());
        } else if text.is_empty() {
            break;
        } else {
            let (n, v) = text.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = if head_only {
        0
    } else {
        headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0)
    };
    let mut body = vec![0u8; len];
    timeout(WAIT, s.read_exact(&mut body)).await.unwrap().expect("complete body");
    Some(Resp { status: status.unwrap(), headers, body })
}

/// Sends raw bytes, then reads one response (or `None` if the connection was closed instead).
async fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<Resp> {
    let mut s = connect(addr).await;
    // The server may close before reading everything; a failed write is then expected.
    let _ = s.write_all(bytes).await;
    read_response(&mut s, bytes.starts_with(b"HEAD")).await
}

/// Completes when the server has closed `s` (EOF or reset), failing after `WAIT`.
async fn wait_closed(s: &mut Raw) {
    let mut buf = [0u8; 1024];
    loop {
        match timeout(WAIT, s.read(&mut buf)).await.expect("connection closed in time") {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Polls `cond` until it holds, failing after `WAIT`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

fn assert_stop_page_headers(r: &Resp) {
    assert_eq!(r.status, 451);
    assert_eq!(r.header("link"), Some(LINK));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("vary"), Some("Accept-Language"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(csp.starts_with("default-src 'none'; style-src 'unsafe-inline'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
}

// ---------------------------------------------------------------------------------------------------
// The page.

#[tokio::test]
async fn get_is_451_with_link_no_store_and_csp() {
    let srv = Server::start(config()).await;
    let r = get(srv.addr, "/some/path?q=1", &[]).await;
    assert_stop_page_headers(&r);
    assert_eq!(r.header("content-language"), Some("ja"));
    assert_eq!(r.header("content-length").unwrap().parse::<usize>().unwrap(), r.body.len());
    let html = r.text();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<html lang=\"ja\">"));
    assert!(html.contains("<title>"));
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains("<bdi>blocked.example</bdi>"));
    assert!(html.contains("インターネットコンテンツセーフティ協会"));
    assert!(html.contains("href=\"https://list-body.example/about?x=1\""));
    assert!(html.contains("mailto:appeal@list-body.example"));
    assert!(html.contains("https://list-body.example/appeal"));
    assert!(html.contains("href=\"?lang=en\""), "link to the English page");
    assert!(!html.contains("<script"));
    assert!(!html.contains("some/path"), "the path is never echoed");
    assert_eq!(srv.stats.snapshot().served, 1);
    srv.stop().await;
}

#[tokio::test]
async fn the_blocked_by_link_names_the_operator_when_one_is_given() {
    let mut c = config();
    c.operator_url = Some("https://isp.example/blocking".into());
    let srv = Server::start(c).await;
    let r = get(srv.addr, "/", &[]).await;
    assert_eq!(r.header("link"), Some("<https://isp.example/blocking>; rel=\"blocked-by\""));
    assert!(r.text().contains("href=\"https://list-body.example/about?x=1\""), "the page still names the list body");
    srv.stop().await;
    let mut bad = config();
    bad.operator_url = Some("isp.example".into());
    assert!(bad.validate().is_err(), "not an absolute http(s) URL");
}

#[tokio::test]
async fn head_has_the_headers_and_no_body() {
    let srv = Server::start(config()).await;
    let get_len = get(srv.addr, "/", &[]).await.body.len();
    let mut s = connect(srv.addr).await;
    s.write_all(b"HEAD /x HTTP/1.1\r\nHost: blocked.example\r\nConnection: close\r\n\r\n").await.unwrap();
    let r = read_response(&mut s, true).await.expect("a response");
    assert_stop_page_headers(&r);
    assert_eq!(r.header("content-length").and_then(|v| v.parse::<usize>().ok()), Some(get_len));
    // Nothing follows the head: the server closes (Connection: close) without sending a body.
    let mut rest = Vec::new();
    timeout(WAIT, s.read_to_end(&mut rest)).await.unwrap().unwrap();
    assert!(r.body.is_empty() && rest.is_empty(), "HEAD sent {} body bytes", r.body.len() + rest.len());
    srv.stop().await;
}

#[tokio::test]
async fn accept_language_selects_ja_or_en() {
    let srv = Server::start(config()).await;
    let cases: &[(Option<&str>, &str)] = &[
        (None, "ja"),
        (Some("en"), "en"),
        (Some("ja-JP"), "ja"),
        (Some("en-US,en;q=0.9"), "en"),
        (Some("en;q=0.9, ja;q=0.8"), "en"),
        (Some("ja;q=0.8, en;q=0.9"), "en"),
        (Some("ja,en-US;q=0.9,en;q=0.8"), "ja"),
        (Some("fr-FR, fr;q=0.9"), "ja"),
        (Some("fr, en;q=0.5"), "en"),
        (Some("*"), "ja"),
        (Some("ja;q=0"), "en"),
        (Some("en;q=bogus, ja;q=0.1"), "ja"),
    ];
    for (header, want) in cases {
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("accept-language", *h)).collect();
        let r = get(srv.addr, "/", &headers).await;
        assert_eq!(r.header("content-language"), Some(*want), "Accept-Language: {header:?}");
        assert!(r.text().contains(&format!("<html lang=\"{want}\">")), "Accept-Language: {header:?}");
    }
    let en = get(srv.addr, "/", &[("accept-language", "en")]).await.text();
    assert!(en.contains("Internet Content Safety Association"));
    assert!(en.contains("href=\"?lang=ja\""), "link to the Japanese page");
    srv.stop().await;
}

#[tokio::test]
async fn lang_query_overrides_the_header() {
    let srv = Server::start(config()).await;
    let r = get(srv.addr, "/?lang=en", &[("accept-language", "ja")]).await;
    assert_eq!(r.header("content-language"), Some("en"));
    let r = get(srv.addr, "/?lang=ja", &[("accept-language", "en")]).await;
    assert_eq!(r.header("content-language"), Some("ja"));
    let r = get(srv.addr, "/?lang=EN-gb", &[]).await;
    assert_eq!(r.header("content-language"), Some("en"));
    // An unknown value is ignored: the header decides.
    let r = get(srv.addr, "/?lang=fr", &[("accept-language", "en")]).await;
    assert_eq!(r.header("content-language"), Some("en"));
    srv.stop().await;
}

#[tokio::test]
async fn reason_comes_from_the_list_parameter() {
    let srv = Server::start(config()).await;
    let r = get(srv.addr, "/?list=csam&lang=en", &[]).await.text();
    assert!(r.contains("Child sexual abuse material."));
    assert!(r.contains("href=\"?lang=ja&amp;list=csam\""));
    let r = get(srv.addr, "/?list=csam", &[]).await.text();
    assert!(r.contains("児童の性的搾取に関わる内容のため。"));
    // Unknown ids fall back to the default reason and are not echoed.
    let r = get(srv.addr, "/?list=nosuchlist&lang=en", &[]).await.text();
    assert!(r.contains(&config().default_reason.en));
    assert!(!r.contains("nosuchlist"));
    srv.stop().await;
}

#[tokio::test]
async fn absolute_form_target_names_the_host() {
    let srv = Server::start(config()).await;
    let r =
        raw(srv.addr, b"GET http://absolute.example/x HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
    assert_eq!(r.status, 451);
    assert!(r.text().contains("<bdi>absolute.example</bdi>"));
    srv.stop().await;
}

// ---------------------------------------------------------------------------------------------------
// Reflected input.

/// The body must not contain live markup from the request: it has the same markup characters as
/// the page for a harmless host (`baseline`), so every `<`, `>`, `"` and `'` of the input was escaped.
fn assert_inert(html: &str, baseline: &str, what: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in ["<script", "<img", "<svg"] {
        assert!(!lower.contains(bad), "{what}: body contains {bad:?}:\n{html}");
    }
    for c in ['<', '>', '"', '\''] {
        assert_eq!(html.matches(c).count(), baseline.matches(c).count(), "{what}: count of {c:?} differs:\n{html}");
    }
}

#[tokio::test]
async fn hostile_host_headers_are_escaped() {
    let srv = Server::start(config()).await;
    let baseline = get(srv.addr, "/", &[("host", "plain.example")]).await.text();
    let hosts: &[(&str, &str)] = &[
        ("<script>alert(1)</script>.example", "&lt;script&gt;alert(1)&lt;/script&gt;.example"),
        ("\"><img src=x onerror=alert(1)>", "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
        ("'><svg onload=alert(1)>", "&#39;&gt;&lt;svg onload=alert(1)&gt;"),
        ("javascript:alert(document.cookie)", "javascript:alert(document.cookie)"),
        ("a&b.example", "a&amp;b.example"),
    ];
    for (host, shown) in hosts {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let r = raw(srv.addr, req.as_bytes()).await.expect("a response");
        assert_eq!(r.status, 451, "Host: {host}");
        let html = r.text();
        assert_inert(&html, &baseline, host);
        assert!(html.contains(&format!("<bdi>{shown}</bdi>")), "Host: {host}\n{html}");
    }
    // obs-text (non-UTF-8 bytes) in Host is accepted by the parser; it must not break the page.
    let r = raw(srv.addr, b"GET / HTTP/1.1\r\nHost: \xff\xfe<b>\r\nConnection: close\r\n\r\n").await.unwrap();
    assert_eq!(r.status, 451);
    assert_inert(&r.text(), &baseline, "obs-text");
    // A very long Host is cut to 253 characters.
    let long = "a".repeat(1000);
    let r = get(srv.addr, "/", &[("host", &long)]).await.text();
    assert!(r.contains(&format!("<bdi>{}</bdi>", "a".repeat(253))));
    assert!(!r.contains(&"a".repeat(254)));
    srv.stop().await;
}

#[tokio::test]
async fn hostile_host_parameters_are_escaped() {
    let srv = Server::start(config()).await;
    let baseline = get(srv.addr, "/?host=plain.example&lang=en", &[]).await.text();
    let cases: &[(&str, &str)] = &[
        ("%3Cscript%3Ealert(1)%3C/script%3E.example", "&lt;script&gt;alert(1)&lt;/script&gt;.example"),
        ("%22%3E%3Csvg%20onload%3Dalert(1)%3E", "&quot;&gt;&lt;svg onload=alert(1)&gt;"),
        ("javascript:alert(1)", "javascript:alert(1)"),
        ("evil%0D%0ASet-Cookie:%20x%3D1", "evilSet-Cookie: x=1"),
        ("%E2%80%AEmoc.elgoog", "moc.elgoog"),
        ("%E4%BE%8B%E3%81%88.jp", "例え.jp"),
    ];
    for (param, shown) in cases {
        let r = get(srv.addr, &format!("/?host={param}&lang=en"), &[("host", "stop.example")]).await;
        assert_eq!(r.status, 451);
        let html = r.text();
        assert_inert(&html, &baseline, param);
        assert!(html.contains(&format!("<bdi>{shown}</bdi>")), "?host={param}\n{html}");
        // The link to the other language carries the host percent-encoded, never raw.
        let link = html.split("href=\"?lang=ja").nth(1).unwrap().split('"').next().unwrap();
        assert!(link.starts_with("&amp;host="), "{link}");
        assert!(link.bytes().all(|b| b.is_ascii_alphanumeric() || b"&;=%-._~".contains(&b)), "{link}");
        assert!(r.headers.iter().all(|(n, _)| n != "set-cookie"));
    }
    srv.stop().await;
}

// ---------------------------------------------------------------------------------------------------
// Bad input and bounds.

#[tokio::test]
async fn malformed_requests_get_400_or_close() {
    let mut c = config();
    // Inputs the parser cannot reject yet (it waits for more) are closed by the header timeout.
    c.limits.header_read_timeout_ms = 1000;
    let srv = Server::start(c).await;
    let inputs: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET / FTP/1.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET / HTTP/1.1\r\n: novalue\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\r\n\r\n\r\n\r\n",
    ];
    for input in inputs {
        if let Some(r) = raw(srv.addr, input).await {
            assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(input));
        }
    }
    // Still serving.
    assert_eq!(get(srv.addr, "/", &[]).await.status, 451);
    let stats = srv.stats.snapshot();
    assert!(stats.bad_requests >= 5, "{stats:?}");
    srv.stop().await;
}

#[tokio::test]
async fn oversized_heads_get_431_or_close() {
    let mut c = config();
    c.limits.max_header_bytes = 8 * 1024;
    let srv = Server::start(c).await;
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(100 * 1024));
    let started = Instant::now();
    if let Some(r) = raw(srv.addr, big.as_bytes()).await {
        assert_eq!(r.status, 431);
    }
    assert!(started.elapsed() < WAIT);
    // A huge request line.
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "b".repeat(100 * 1024));
    if let Some(r) = raw(srv.addr, long_uri.as_bytes()).await {
        assert!(r.status == 431 || r.status == 414, "{}", r.status);
    }
    // Too many fields, each small.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    if let Some(r) = raw(srv.addr, many.as_bytes()).await {
        assert_eq!(r.status, 431);
    }
    assert!(srv.stats.snapshot().rejected_oversize >= 2, "{:?}", srv.stats.snapshot());
    // Heads just under the limit are fine (cookies of the blocked site).
    let r = get(srv.addr, "/", &[("cookie", &"c".repeat(6 * 1024))]).await;
    assert_eq!(r.status, 451);
    srv.stop().await;
}

#[tokio::test]
async fn slow_client_is_cut_off_after_the_header_timeout() {
    let mut c = config();
    c.limits.header_read_timeout_ms = 500;
    let srv = Server::start(c).await;
    let stream = TcpStream::connect(srv.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let request = b"GET / HTTP/1.1\r\nHost: slow.example\r\nUser-Agent: slowloris\r\n\r\n";
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for b in request {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            sleep(Duration::from_millis(200)).await;
        }
    });
    let mut buf = Vec::new();
    let read = timeout(WAIT, rd.read_to_end(&mut buf)).await.expect("the server closes the connection");
    let elapsed = started.elapsed();
    writer.abort();
    // Cut off (EOF or reset) long before the ~13 s the whole head would take, with no page served.
    assert!(read.is_err() || buf.is_empty(), "got {:?}", String::from_utf8_lossy(&buf));
    assert!(elapsed >= Duration::from_millis(400), "closed before the timeout: {elapsed:?}");
    assert_eq!(srv.stats.snapshot().served, 0);
    assert_eq!(srv.stats.snapshot().timeouts, 1);
    srv.stop().await;
}

#[tokio::test]
async fn silent_connections_are_closed_but_not_counted() {
    let mut c = config();
    c.limits.header_read_timeout_ms = 300;
    let srv = Server::start(c).await;
    let mut s = connect(srv.addr).await;
    wait_closed(&mut s).await;
    assert_eq!(srv.stats.snapshot().timeouts, 0);
    srv.stop().await;
}

#[tokio::test]
async fn declared_request_bodies_are_not_waited_for() {
    let srv = Server::start(config()).await;
    // A GET announcing a huge body, which never comes: answered, then closed (the body is not read).
    let mut s = connect(srv.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\npartial").await.unwrap();
    assert_eq!(read_response(&mut s, false).await.unwrap().status, 451);
    wait_closed(&mut s).await;
    // Chunked, likewise.
    let mut s = connect(srv.addr).await;
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffff\r\nabc").await.unwrap();
    assert_eq!(read_response(&mut s, false).await.unwrap().status, 405);
    wait_closed(&mut s).await;
    srv.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let mut c = config();
    c.limits.keep_alive_timeout_ms = 300;
    c.limits.max_requests_per_connection = 2;
    let srv = Server::start(c).await;
    let mut s = connect(srv.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n").await.unwrap();
    let r = read_response(&mut s, false).await.unwrap();
    assert_eq!(r.status, 451);
    assert_eq!(r.header("connection"), None, "first response keeps the connection");
    wait_closed(&mut s).await;
    assert_eq!(srv.stats.snapshot().timeouts, 0, "an idle close is not a timeout");

    // Pipelined: both answered; the second is the last allowed and says so.
    let mut s = connect(srv.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\nHEAD / HTTP/1.1\r\nHost: b.example\r\n\r\n").await.unwrap();
    let first = read_response(&mut s, false).await.unwrap();
    assert!(first.text().contains("a.example"));
    let second = read_response(&mut s, true).await.unwrap();
    assert_eq!(second.status, 451);
    assert_eq!(second.header("connection"), Some("close"));
    wait_closed(&mut s).await;
    srv.stop().await;
}

#[tokio::test]
async fn keep_alive_can_be_disabled() {
    let mut c = config();
    c.limits.keep_alive_timeout_ms = 0;
    let srv = Server::start(c).await;
    let mut s = connect(srv.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n").await.unwrap();
    let r = read_response(&mut s, false).await.unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    wait_closed(&mut s).await;
    srv.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed() {
    let mut c = config();
    c.limits.max_connections = 2;
    let srv = Server::start(c).await;
    // Two clients hold their slots with an unfinished head.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(srv.addr).await;
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    eventually("two connections accepted", || srv.stats.snapshot().connections == 2).await;
    // The third is closed without a response.
    let mut extra = connect(srv.addr).await;
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(read_response(&mut extra, false).await.is_none(), "over the cap yet answered");
    assert_eq!(srv.stats.snapshot().rejected_busy, 1);
    // The held ones are still served.
    held[0].write_all(b"Host: held.example\r\nConnection: close\r\n\r\n").await.unwrap();
    let r = read_response(&mut held[0], false).await.expect("held connection served");
    assert_eq!(r.status, 451);
    // Once a slot is free, new clients are served again.
    drop(held);
    let started = Instant::now();
    loop {
        let mut s = connect(srv.addr).await;
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        if let Some(r) = read_response(&mut s, false).await {
            assert_eq!(r.status, 451);
            break;
        }
        assert!(started.elapsed() < WAIT, "slots never freed");
        sleep(Duration::from_millis(20)).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let srv = Server::start(config()).await;
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let r = request(srv.addr, method, "/", &[]).await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{method}");
        assert_eq!(r.header("connection"), Some("close"), "{method}");
    }
    // With a body, which is never read.
    let r = raw(srv.addr, b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nuser=secret").await.unwrap();
    assert_eq!(r.status, 405);
    assert!(!r.text().contains("secret"));
    assert_eq!(srv.stats.snapshot().method_not_allowed, 6);
    assert_eq!(srv.stats.snapshot().served, 0);
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_returns_with_idle_connections_open() {
    let srv = Server::start(config()).await;
    let mut idle = connect(srv.addr).await;
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    read_response(&mut idle, false).await.unwrap();
    let addr = srv.addr;
    srv.stop().await;
    wait_closed(&mut idle).await;
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

// ---------------------------------------------------------------------------------------------------
// Configuration and binding.

#[tokio::test]
async fn bind_listens_on_the_configured_addresses() {
    let mut c = config();
    c.listen = vec!["127.0.0.1:0".parse().unwrap()];
    let listeners = bind(&c).unwrap();
    assert_eq!(listeners.len(), 1);
    assert!(listeners[0].local_addr().unwrap().ip().is_loopback());

    // An address not configured here (TEST-NET-1): refused unless freebind.
    c.listen = vec!["192.0.2.123:0".parse().unwrap()];
    assert!(matches!(bind(&c), Err(StopPageError::Bind { .. })));
    c.freebind = true;
    assert_eq!(bind(&c).unwrap().len(), 1);

    c.listen.clear();
    assert!(matches!(bind(&c), Err(StopPageError::Config(_))));
}

#[tokio::test]
async fn invalid_configuration_is_refused() {
    let mut c = config();
    c.list_body.url = "javascript:alert(1)".into();
    assert!(matches!(StopPage::new(Arc::new(c)), Err(StopPageError::Config(_))));
    let mut c = config();
    c.appeal = AppealContact::default();
    assert!(matches!(StopPage::new(Arc::new(c)), Err(StopPageError::Config(_))));
    let page = StopPage::new(Arc::new(config())).unwrap();
    assert!(matches!(page.serve(vec![], std::future::pending::<()>()).await, Err(StopPageError::NoListeners)));
}

/// The data plane sends browsers here with `?host=` empty when it blocked an address rather
/// than a name: the page must speak of "the site you requested", never of this service's own
/// address (which is what the browser's Host header now says).
#[tokio::test]
async fn an_empty_host_parameter_never_shows_the_services_own_address() {
    let srv = Server::start(config()).await;
    let r = get(srv.addr, "/?host=", &[("host", "192.0.2.1")]).await;
    assert_eq!(r.status, 451);
    let html = r.text();
    assert!(!html.contains("192.0.2.1"), "{html}");
    let r = get(srv.addr, "/?host=&lang=en", &[("host", "192.0.2.1")]).await;
    assert!(!r.text().contains("192.0.2.1"));
    srv.stop().await;
}
