//! The internet namespace's HTTP/3 server (issue 9): `src/bin/h3_server.rs` on UDP 443
//! (HTTP/3 over QUIC) and TCP 443 (HTTPS, HTTP/1.1, with `Alt-Svc: h3=":443"`), dual-stack,
//! one self-signed certificate for every lab name (`TLS_NAMES`, `*.example`).
//!
//! It logs every QUIC and TLS handshake with the server name the client sent, and every request
//! with the protocol it came over, so a test can tell which names completed over QUIC (a name
//! the appliance blocks must never show up with `proto=h3`). Its page names the host and the
//! protocol too (`blocker lab h3 server allowed.example over h3`), so the browser's side tells
//! the same story.
//!
//! The binary needs the crate's `h3-server` feature (the library's other users do not build a
//! QUIC stack): `$H3_SERVER_BIN` names a built one, otherwise [`h3_server_binary`] builds it.
//!
//! ```no_run
//! use blocker_tests::lab::{H3Server, Lab, LabOptions};
//!
//! let lab = Lab::create(LabOptions::default())?;
//! let h3 = H3Server::start(&lab)?;
//! // ... Chromium forced to QUIC ...
//! assert_eq!(h3.h3_requests_for("blocked.example"), 0);
//! # anyhow::Ok(())
//! ```

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;

use super::{
    Lab, Node,
    cert::{make_certificate, spki_sha256_base64},
    server_log::{ServerLog, field},
    server_process::ServerProcess,
    workspace_bin::{BinaryCache, WorkspaceBinary, workspace_binary},
};

/// Names a built `h3_server` to use instead of building one.
pub const H3_SERVER_BIN_ENV: &str = "H3_SERVER_BIN";
/// The text of every page, followed by the host and the protocol:
/// `<p id="lab">blocker lab h3 server allowed.example over h3</p>`.
pub const H3_BODY: &str = "blocker lab h3 server";
/// The server exits by itself after this long, should its test leave it behind.
pub const H3_SERVER_LIFETIME: Duration = Duration::from_secs(300);

/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of the nested `cargo build` (a cold one compiles the QUIC stack).
const BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The `h3_server` binary: `$H3_SERVER_BIN` if set, else what
/// `cargo build -p blocker-tests --features h3-server --bin h3_server` produces (once per
/// process).
pub fn h3_server_binary() -> Result<PathBuf> {
    static BINARY: BinaryCache = BinaryCache::new();
    workspace_binary(
        &BINARY,
        &WorkspaceBinary {
            env_var: H3_SERVER_BIN_ENV,
            package: "blocker-tests",
            bin: "h3_server",
            release: false,
            features: &["h3-server"],
            build_timeout: BUILD_TIMEOUT,
        },
    )
}

/// The protocol a request came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H3Proto {
    /// HTTP/3 over QUIC (UDP 443).
    H3,
    /// HTTP/1.1 over TLS over TCP 443.
    Http11,
}

/// One line of the server's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H3Event {
    /// A QUIC handshake completed; `sni` is "-" when the ClientHello named no server.
    QuicHandshake { client: String, sni: String },
    /// A QUIC connection was accepted but its handshake failed (timeout, close).
    QuicHandshakeFailed { client: String, error: String },
    /// A TLS handshake on TCP 443 completed.
    TlsHandshake { client: String, sni: String },
    /// A TLS handshake on TCP 443 failed (reset, EOF).
    TlsHandshakeFailed { client: String, error: String },
    /// A request answered (`status` is "200", or "unsent" when the answer could not be sent).
    Request {
        proto: H3Proto,
        client: String,
        sni: String,
        host: String,
        status: String,
    },
}

/// The running server; killed on drop (by its process).
pub struct H3Server {
    process: ServerProcess,
    log: ServerLog,
    cert: PathBuf,
    spki: String,
}

impl H3Server {
    /// Makes the certificate, finds (or builds) the binary, starts the server in the internet
    /// namespace for at most [`H3_SERVER_LIFETIME`] and returns once it listens on UDP and
    /// TCP 443.
    pub fn start(lab: &Lab) -> Result<Self> {
        let binary = h3_server_binary()?;
        let dir = lab.dir();
        let (cert, key) = make_certificate(dir, "h3", "blocker lab h3")?;
        let spki = spki_sha256_base64(&cert)?;
        let log = ServerLog::create(dir.join("h3_access.log"))?;
        let lifetime = H3_SERVER_LIFETIME.as_secs().to_string();
        let mut cmd = lab.command(Node::Internet, &[&*binary.to_string_lossy()]);
        cmd.arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--log")
            .arg(log.path())
            .args(["--body", H3_BODY, "--lifetime", &lifetime]);
        let mut process = ServerProcess::spawn(cmd, "h3 server", dir.join("h3_server.stderr"))?;
        // The binary writes `listening` once both sockets are bound.
        process.wait_serving(START_TIMEOUT, || {
            if log.text().lines().any(|l| l.starts_with("listening ")) {
                Ok(())
            } else {
                Err("not listening on 443".into())
            }
        })?;
        Ok(H3Server {
            process,
            log,
            cert,
            spki,
        })
    }

    /// The certificate (PEM) the server presents on both ports.
    pub fn certificate(&self) -> &Path {
        &self.cert
    }

    /// base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes to trust it.
    pub fn spki_sha256(&self) -> &str {
        &self.spki
    }

    /// The raw log so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// The log so far, parsed (other lines are skipped).
    pub fn events(&self) -> Vec<H3Event> {
        self.log.events(parse_event)
    }

    /// The number of log lines so far: pass it to [`H3Server::events_since`] to see only what
    /// one attempt caused.
    pub fn mark(&self) -> usize {
        self.log.mark()
    }

    /// The events logged after `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<H3Event> {
        self.log.events_since(mark, parse_event)
    }

    /// Completed QUIC handshakes whose ClientHello named `sni`.
    pub fn quic_handshakes_for(&self, sni: &str) -> usize {
        count(
            &self.events(),
            |e| matches!(e, H3Event::QuicHandshake { sni: s, .. } if s == sni),
        )
    }

    /// Requests answered over HTTP/3 on connections whose ClientHello named `sni`.
    pub fn h3_requests_for(&self, sni: &str) -> usize {
        self.requests_for(H3Proto::H3, sni)
    }

    /// Requests answered over `proto` on connections whose ClientHello named `sni`.
    pub fn requests_for(&self, proto: H3Proto, sni: &str) -> usize {
        count(
            &self.events(),
            |e| matches!(e, H3Event::Request { proto: p, sni: s, .. } if *p == proto && s == sni),
        )
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }
}

fn count(events: &[H3Event], f: impl Fn(&H3Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

fn parse_event(line: &str) -> Option<H3Event> {
    let (kind, _) = line.split_once(' ')?;
    let client = field(line, "client")?.to_string();
    let text = |key| field(line, key).unwrap_or("-").to_string();
    match kind {
        "quic-handshake" => Some(H3Event::QuicHandshake {
            client,
            sni: text("sni"),
        }),
        "quic-handshake-failed" => Some(H3Event::QuicHandshakeFailed {
            client,
            error: text("error"),
        }),
        "tls-handshake" => Some(H3Event::TlsHandshake {
            client,
            sni: text("sni"),
        }),
        "tls-handshake-failed" => Some(H3Event::TlsHandshakeFailed {
            client,
            error: text("error"),
        }),
        "request" => Some(H3Event::Request {
            proto: match field(line, "proto")? {
                "h3" => H3Proto::H3,
                "http/1.1" => H3Proto::Http11,
                _ => return None,
            },
            client,
            sni: text("sni"),
            host: text("host"),
            status: line.rsplit(' ').next()?.to_string(),
        }),
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
                "quic-handshake client=192.0.2.2 server=203.0.113.10 sni=allowed.example alpn=h3"
            ),
            Some(H3Event::QuicHandshake {
                client: "192.0.2.2".into(),
                sni: "allowed.example".into()
            })
        );
        assert_eq!(
            parse_event(
                "request proto=h3 client=2001:db8:c::2 server=2001:db8:f::10 sni=allowed.example host=allowed.example \"GET /\" 200"
            ),
            Some(H3Event::Request {
                proto: H3Proto::H3,
                client: "2001:db8:c::2".into(),
                sni: "allowed.example".into(),
                host: "allowed.example".into(),
                status: "200".into()
            })
        );
        assert_eq!(
            parse_event(
                "request proto=http/1.1 client=192.0.2.2 server=203.0.113.10 sni=- host=- \"GET /x\" unsent"
            ),
            Some(H3Event::Request {
                proto: H3Proto::Http11,
                client: "192.0.2.2".into(),
                sni: "-".into(),
                host: "-".into(),
                status: "unsent".into()
            })
        );
        assert_eq!(
            parse_event(
                "tls-handshake-failed client=192.0.2.2 server=203.0.113.10 error=ConnectionReset"
            ),
            Some(H3Event::TlsHandshakeFailed {
                client: "192.0.2.2".into(),
                error: "ConnectionReset".into()
            })
        );
        assert_eq!(parse_event("listening port=443"), None);
    }
}
