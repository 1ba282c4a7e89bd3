//! The internet namespace's HTTPS server: python3 `ssl` + `http.server` on [::]:443, dual-stack,
//! so one process answers on every server address, for every lab name (`TLS_NAMES`) with one
//! self-signed certificate made in the lab directory.
//!
//! It logs every TLS handshake with the server name the ClientHello carried, and every request
//! with that name and the Host header, so a test can tell which names got through the
//! appliance (a blocked name must never show up as a completed handshake).
//!
//! ```no_run
//! use blocker_tests::lab::{Lab, LabOptions, TlsServer};
//!
//! let lab = Lab::create(LabOptions::default())?;
//! let tls = TlsServer::start(&lab)?;
//! // ... clients ...
//! assert_eq!(tls.handshakes_for("blocked.example"), 0);
//! # anyhow::Ok(())
//! ```

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};

use super::{
    Lab, Node,
    cert::make_certificate,
    server_log::{ServerLog, field},
    server_process::ServerProcess,
};

/// The names the certificate covers and the tests use. `xblocked.example` is the label-boundary
/// decoy of `blocked.example` (it must never be blocked by a `blocked.example` entry).
pub const TLS_NAMES: [&str; 4] = [
    "blocked.example",
    "www.blocked.example",
    "allowed.example",
    "xblocked.example",
];

/// The text of every page the server returns, followed by the request's host name:
/// `<p id="lab">blocker lab tls server allowed.example</p>`.
pub const TLS_BODY: &str = "blocker lab tls server";

/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The server. Handshakes run on the connection's own thread (a ClientHello that never
/// completes, because the appliance reset it, must not hold up the next connection). One log
/// line per event:
///
/// ```text
/// handshake client=192.0.2.2 server=203.0.113.10 sni=allowed.example version=TLSv1.3
/// handshake-failed client=192.0.2.2 server=203.0.113.10 sni=- error=ConnectionResetError
/// request client=192.0.2.2 server=203.0.113.10 sni=allowed.example host=allowed.example "GET / HTTP/1.1" 200
/// ```
const SERVER_PY: &str = r#"
import http.server, socket, ssl, sys, threading

cert, key, log_path, body_text = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
log = open(log_path, "a", buffering=1)
lock = threading.Lock()

def write(line):
    with lock:
        log.write(line + "\n")

def plain(addr):
    return addr[7:] if addr.startswith("::ffff:") else addr

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)

def remember_sni(sock, name, _ctx):
    sock.lab_sni = name or "-"

ctx.sni_callback = remember_sni

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def do_GET(self):
        host = self.headers.get("Host", "-")
        host = host.split("]")[0] + "]" if host.startswith("[") else host.split(":")[0]
        page = ('<!DOCTYPE html><html><head><title>lab</title></head><body><p id="lab">'
                + body_text + " " + host + "</p></body></html>\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(page)

    do_HEAD = do_GET

    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        sni = getattr(self.connection, "lab_sni", "-")
        host = self.headers.get("Host", "-") if self.headers else "-"
        server = plain(self.connection.getsockname()[0])
        client = plain(self.client_address[0])
        write(f'request client={client} server={server} sni={sni} host={host} "{self.requestline}" {code}')

    def log_error(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = 64

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def finish_request(self, request, client_address):
        request.settimeout(10)
        client = plain(client_address[0])
        server = plain(request.getsockname()[0])
        tls = None
        try:
            tls = ctx.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            tls.do_handshake()
        except Exception as e:
            sni = getattr(tls, "lab_sni", "-")
            write(f"handshake-failed client={client} server={server} sni={sni} error={type(e).__name__}")
            return
        write(f"handshake client={client} server={server} sni={getattr(tls, 'lab_sni', '-')} version={tls.version()}")
        self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request, client_address):
        pass

Server(("::", 443), Handler).serve_forever()
"#;

/// One line of the server's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvent {
    /// A handshake completed; `sni` is "-" when the ClientHello named no server.
    Handshake { client: String, sni: String },
    /// A handshake started but failed (reset, timeout, alert).
    HandshakeFailed {
        client: String,
        sni: String,
        error: String,
    },
    /// An HTTP request over a completed handshake.
    Request {
        client: String,
        sni: String,
        host: String,
        line: String,
        status: u16,
    },
}

/// The running server; stopped on drop (by its process).
pub struct TlsServer {
    process: ServerProcess,
    log: ServerLog,
    cert: PathBuf,
}

impl TlsServer {
    /// Makes the certificate (once per lab directory) and starts the server in the internet
    /// namespace; returns once it listens on :443.
    pub fn start(lab: &Lab) -> Result<Self> {
        let dir = lab.dir();
        let (cert, key) = make_certificate(dir, "tls", "blocker lab")?;
        let script = dir.join("tls_server.py");
        let log = ServerLog::create(dir.join("tls_access.log"))?;
        fs::write(&script, SERVER_PY).context("writing the TLS server script")?;
        let mut cmd = lab.command(Node::Internet, &["python3", "-u"]);
        cmd.arg(&script)
            .arg(&cert)
            .arg(&key)
            .arg(log.path())
            .arg(TLS_BODY);
        let mut process = ServerProcess::spawn(cmd, "TLS server", dir.join("tls_server.stderr"))?;
        process.wait_serving(START_TIMEOUT, || {
            let out = lab.exec_timeout(
                Node::Internet,
                &["ss", "-Hltn", "sport = :443"],
                Duration::from_secs(5),
            );
            match String::from_utf8_lossy(&out.stdout).trim() {
                "" => Err("not listening on :443".into()),
                _ => Ok(()),
            }
        })?;
        Ok(TlsServer { process, log, cert })
    }

    /// The certificate (PEM) the server presents.
    pub fn certificate(&self) -> &Path {
        &self.cert
    }

    /// The raw log so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// The log so far, parsed (unknown lines are skipped).
    pub fn events(&self) -> Vec<TlsEvent> {
        self.log.events(parse_event)
    }

    /// Completed handshakes whose ClientHello named `sni`.
    pub fn handshakes_for(&self, sni: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, TlsEvent::Handshake { sni: s, .. } if s == sni))
            .count()
    }

    /// Requests answered on connections whose ClientHello named `sni`.
    pub fn requests_for(&self, sni: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, TlsEvent::Request { sni: s, .. } if s == sni))
            .count()
    }

    /// The number of log lines so far: pass it to [`TlsServer::events_since`] to see only what
    /// one attempt caused.
    pub fn mark(&self) -> usize {
        self.log.mark()
    }

    /// The events logged after `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<TlsEvent> {
        self.log.events_since(mark, parse_event)
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }
}

fn parse_event(line: &str) -> Option<TlsEvent> {
    let (kind, _) = line.split_once(' ')?;
    let client = field(line, "client")?.to_string();
    let sni = field(line, "sni")?.to_string();
    match kind {
        "handshake" => Some(TlsEvent::Handshake { client, sni }),
        "handshake-failed" => Some(TlsEvent::HandshakeFailed {
            client,
            sni,
            error: field(line, "error").unwrap_or("-").to_string(),
        }),
        "request" => {
            let host = field(line, "host")?.to_string();
            let open = line.find('"')?;
            let close = line.rfind('"')?;
            let status = line[close + 1..].trim().parse().ok()?;
            Some(TlsEvent::Request {
                client,
                sni,
                host,
                line: line.get(open + 1..close)?.to_string(),
                status,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_lines() {
        assert_eq!(
            parse_event(
                "handshake client=192.0.2.2 server=203.0.113.10 sni=allowed.example version=TLSv1.3"
            ),
            Some(TlsEvent::Handshake {
                client: "192.0.2.2".into(),
                sni: "allowed.example".into()
            })
        );
        assert_eq!(
            parse_event(
                "handshake-failed client=2001:db8:c::2 server=2001:db8:f::10 sni=- error=ConnectionResetError"
            ),
            Some(TlsEvent::HandshakeFailed {
                client: "2001:db8:c::2".into(),
                sni: "-".into(),
                error: "ConnectionResetError".into()
            })
        );
        assert_eq!(
            parse_event(
                "request client=192.0.2.2 server=203.0.113.10 sni=allowed.example host=allowed.example \"GET / HTTP/1.1\" 200"
            ),
            Some(TlsEvent::Request {
                client: "192.0.2.2".into(),
                sni: "allowed.example".into(),
                host: "allowed.example".into(),
                line: "GET / HTTP/1.1".into(),
                status: 200
            })
        );
        assert_eq!(parse_event("garbage"), None);
    }
}
