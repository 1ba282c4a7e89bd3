//! The lab's HTTP/3 server (issue 9): one page over HTTP/3 on UDP 443 and the same page over
//! HTTPS (HTTP/1.1) on TCP 443, dual-stack, for every name the certificate covers. Run in the
//! lab's internet namespace by `blocker_tests::lab::H3Server`, which also makes the certificate.
//!
//! ```text
//! h3_server --cert CERT.pem --key KEY.pem --log LOG --body TEXT --lifetime SECS
//! ```
//!
//! The page names the request's host and the protocol it came over, and every event is one
//! log line, so a test can tell from either side which names completed over QUIC:
//!
//! ```text
//! quic-handshake client=192.0.2.2 server=203.0.113.10 sni=allowed.example alpn=h3
//! quic-handshake-failed client=192.0.2.2 server=203.0.113.10 error=timed_out
//! tls-handshake client=192.0.2.2 server=203.0.113.10 sni=allowed.example alpn=http/1.1
//! request proto=h3 client=192.0.2.2 server=203.0.113.10 sni=allowed.example host=allowed.example "GET /" 200
//! ```
//!
//! The TCP answers carry `Alt-Svc: h3=":443"`, so a browser that was not told to use QUIC
//! learns it from its first page and moves to HTTP/3 for the next. The process exits after
//! `--lifetime` seconds whatever happens: nothing of the lab outlives its test for long.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// One connection's handshake plus request may take this long before it is dropped.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// A QUIC handshake not done after this is logged as failed (within `CONNECTION_TIMEOUT`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(8);
/// The largest request head the TCP side reads.
const MAX_HEAD: usize = 16 * 1024;

struct Args {
    cert: PathBuf,
    key: PathBuf,
    log: PathBuf,
    body: String,
    lifetime: Duration,
    port: u16,
}

fn parse_args() -> Result<Args> {
    let mut cert = None;
    let mut key = None;
    let mut log = None;
    let mut body = None;
    let mut lifetime = None;
    let mut port = 443;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--cert" => cert = Some(PathBuf::from(value)),
            "--key" => key = Some(PathBuf::from(value)),
            "--log" => log = Some(PathBuf::from(value)),
            "--body" => body = Some(value),
            "--lifetime" => lifetime = Some(Duration::from_secs(value.parse()?)),
            "--port" => port = value.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(Args {
        cert: cert.context("--cert is required")?,
        key: key.context("--key is required")?,
        log: log.context("--log is required")?,
        body: body.context("--body is required")?,
        lifetime: lifetime.context("--lifetime is required")?,
        port,
    })
}

/// The log file, shared by every connection's task; one `write` per line.
#[derive(Clone)]
struct Log(Arc<Mutex<File>>);

impl Log {
    fn line(&self, line: String) {
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// `192.0.2.2`, not `::ffff:192.0.2.2`: the dual-stack sockets report IPv4 peers mapped.
fn plain(addr: IpAddr) -> IpAddr {
    addr.to_canonical()
}

/// The host of a `Host` header or `:authority`, without the port.
fn host_only(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn page(body: &str, host: &str, proto: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>lab</title></head><body>\
         <p id=\"lab\">{body} {host} over {proto}</p></body></html>\n"
    )
}

fn tls_config(
    args: &Args,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&args.cert)
        .with_context(|| format!("reading {}", args.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the certificate")?;
    let key = PrivateKeyDer::from_pem_file(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.log)
            .with_context(|| format!("opening {}", args.log.display()))?;
        let log = Log(Arc::new(Mutex::new(file)));
        let any = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), args.port);

        let quic_tls = tls_config(&args, &[b"h3"], &[&rustls::version::TLS13])?;
        let quic_crypto = quinn::crypto::rustls::QuicServerConfig::try_from(quic_tls)?;
        let quic_config = quinn::ServerConfig::with_crypto(Arc::new(quic_crypto));
        // [::] with the kernel's default bindv6only=0: one socket for both families.
        let endpoint = quinn::Endpoint::server(quic_config, any).context("binding UDP 443")?;

        let tcp_tls = tls_config(
            &args,
            &[b"http/1.1"],
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tcp_tls));
        let listener = TcpListener::bind(any).await.context("binding TCP 443")?;

        let body: Arc<str> = args.body.into();
        let (l, b) = (log.clone(), body.clone());
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let (l, b) = (l.clone(), b.clone());
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(CONNECTION_TIMEOUT, serve_quic(incoming, l, b)).await;
                });
            }
        });
        let (l, b) = (log.clone(), body.clone());
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let (l, b, acceptor) = (l.clone(), b.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        CONNECTION_TIMEOUT,
                        serve_tcp(stream, peer, acceptor, l, b),
                    )
                    .await;
                });
            }
        });
        log.line(format!("listening port={}", args.port));
        tokio::time::sleep(args.lifetime).await;
        anyhow::Ok(())
    })
}

async fn serve_quic(incoming: quinn::Incoming, log: Log, body: Arc<str>) {
    let client = plain(incoming.remote_address().ip());
    let server = incoming
        .local_ip()
        .map(|a| plain(a).to_string())
        .unwrap_or_else(|| "-".into());
    // A handshake the client never finishes (its datagrams after the first Initial dropped on
    // the way) is logged as such before the connection's deadline ends the task.
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
        Ok(Ok(conn)) => conn,
        Err(_) => {
            log.line(format!(
                "quic-handshake-failed client={client} server={server} error=timeout"
            ));
            return;
        }
        Ok(Err(e)) => {
            let error = e.to_string().replace(' ', "_");
            log.line(format!(
                "quic-handshake-failed client={client} server={server} error={error}"
            ));
            return;
        }
    };
    let (sni, alpn) = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .map(|d| {
            (
                d.server_name.unwrap_or_else(|| "-".into()),
                d.protocol
                    .map(|p| String::from_utf8_lossy(&p).into_owned())
                    .unwrap_or_else(|| "-".into()),
            )
        })
        .unwrap_or_else(|| ("-".into(), "-".into()));
    log.line(format!(
        "quic-handshake client={client} server={server} sni={sni} alpn={alpn}"
    ));
    let Ok(mut h3_conn) =
        h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(conn)).await
    else {
        return;
    };
    // Requests one after the other: a page load is one or two of them.
    while let Ok(Some(resolver)) = h3_conn.accept().await {
        let Ok((request, mut stream)) = resolver.resolve_request().await else {
            continue;
        };
        let host = request
            .uri()
            .authority()
            .map(|a| host_only(a.as_str()).to_string())
            .unwrap_or_else(|| "-".into());
        let line = format!("{} {}", request.method(), request.uri().path());
        let text = page(&body, &host, "h3");
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "text/html; charset=utf-8")
            .header("content-length", text.len())
            .body(())
            .expect("a static response is valid");
        let sent = async {
            stream.send_response(response).await?;
            if request.method() != http::Method::HEAD {
                stream.send_data(Bytes::from(text)).await?;
            }
            stream.finish().await
        }
        .await;
        let status = if sent.is_ok() { "200" } else { "unsent" };
        log.line(format!(
            "request proto=h3 client={client} server={server} sni={sni} host={host} \"{line}\" {status}"
        ));
    }
}

async fn serve_tcp(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    log: Log,
    body: Arc<str>,
) {
    let client = plain(peer.ip());
    let server = stream
        .local_addr()
        .map(|a| plain(a.ip()).to_string())
        .unwrap_or_else(|_| "-".into());
    let mut tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(e) => {
            let error = format!("{:?}", e.kind());
            log.line(format!(
                "tls-handshake-failed client={client} server={server} error={error}"
            ));
            return;
        }
    };
    let (_, session) = tls.get_ref();
    let sni = session.server_name().unwrap_or("-").to_string();
    let alpn = session
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "-".into());
    log.line(format!(
        "tls-handshake client={client} server={server} sni={sni} alpn={alpn}"
    ));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or("");
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("-");
    let path = words.next().unwrap_or("-");
    let host = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("host")
                .then(|| host_only(value.trim()).to_string())
        })
        .unwrap_or_else(|| "-".into());
    let text = page(&body, &host, "http/1.1");
    // One request per connection keeps the server simple; the browser opens another.
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         alt-svc: h3=\":{}\"; ma=60\r\nconnection: close\r\n\r\n",
        text.len(),
        server_port(&tls),
    );
    if method != "HEAD" {
        response.push_str(&text);
    }
    let status = match tls.write_all(response.as_bytes()).await {
        Ok(()) => "200",
        Err(_) => "unsent",
    };
    let _ = tls.shutdown().await;
    log.line(format!(
        "request proto=http/1.1 client={client} server={server} sni={sni} host={host} \"{method} {path}\" {status}"
    ));
}

fn server_port(tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> u16 {
    tls.get_ref()
        .0
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(443)
}
