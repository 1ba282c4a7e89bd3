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
    env, fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use super::{
    Lab, Node, TLS_NAMES,
    cmd::{describe, run_bounded},
};

/// Names a built `h3_server` to use instead of building one.
pub const H3_SERVER_BIN_ENV: &str = "H3_SERVER_BIN";
/// The text of every page, followed by the host and the protocol:
/// `<p id="lab">blocker lab h3 server allowed.example over h3</p>`.
pub const H3_BODY: &str = "blocker lab h3 server";
/// The server exits by itself after this long, should its test leave it behind.
pub const H3_SERVER_LIFETIME: Duration = Duration::from_secs(300);

/// How long the server may take to listen; how long one `openssl` step may take.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of the nested `cargo build` (a cold one compiles the QUIC stack).
const BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The `h3_server` binary: `$H3_SERVER_BIN` if set, else what
/// `cargo build -p blocker-tests --features h3-server --bin h3_server` produces (once per
/// process).
pub fn h3_server_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| locate_or_build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn locate_or_build() -> Result<PathBuf> {
    if let Some(bin) = env::var_os(H3_SERVER_BIN_ENV) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!(
                "${H3_SERVER_BIN_ENV} names {}, which is not a file",
                bin.display()
            );
        }
        return Ok(bin);
    }
    // The cargo running these tests, so the nested build uses the same toolchain.
    let cargo = env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "-p",
        "blocker-tests",
        "--features",
        "h3-server",
        "--bin",
        "h3_server",
        "--message-format=json-render-diagnostics",
    ]);
    let what = describe(&cmd);
    let out = run_bounded(cmd, BUILD_TIMEOUT);
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // The artifact message of the binary carries `"executable":"/path/to/h3_server"`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .find_map(|l| {
            let rest = &l[l.find("\"executable\":\"")? + "\"executable\":\"".len()..];
            let path = PathBuf::from(&rest[..rest.find('"')?]);
            (path.file_name()? == "h3_server").then_some(path)
        })
        .with_context(|| format!("`{what}` named no `h3_server` executable"))
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

/// The running server; killed on drop.
pub struct H3Server {
    child: Child,
    log: PathBuf,
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
        let (cert, key) = make_certificate(dir)?;
        let spki = spki_sha256_base64(dir, &cert)?;
        let log = dir.join("h3_access.log");
        let errors = dir.join("h3_server.stderr");
        fs::write(&log, "").context("creating the h3 access log")?;
        let lifetime = H3_SERVER_LIFETIME.as_secs().to_string();
        let child = lab
            .command(Node::Internet, &[&*binary.to_string_lossy()])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--log")
            .arg(&log)
            .args(["--body", H3_BODY, "--lifetime", &lifetime])
            .stdout(Stdio::null())
            .stderr(fs::File::create(&errors).context("creating the h3 server's stderr file")?)
            .spawn()
            .context("starting the h3 server")?;
        let mut server = H3Server {
            child,
            log,
            cert,
            spki,
        };

        // The binary writes `listening` once both sockets are bound.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait()? {
                let stderr = fs::read_to_string(&errors).unwrap_or_default();
                bail!("h3 server exited at start ({status}): {}", stderr.trim());
            }
            if server.log().lines().any(|l| l.starts_with("listening ")) {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                server.stop();
                bail!("h3 server not listening on 443 after {START_TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
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
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log so far, parsed (other lines are skipped).
    pub fn events(&self) -> Vec<H3Event> {
        self.log().lines().filter_map(parse_event).collect()
    }

    /// The number of log lines so far: pass it to [`H3Server::events_since`] to see only what
    /// one attempt caused.
    pub fn mark(&self) -> usize {
        self.log().lines().count()
    }

    /// The events logged after `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<H3Event> {
        self.log()
            .lines()
            .skip(mark)
            .filter_map(parse_event)
            .collect()
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for H3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn count(events: &[H3Event], f: impl Fn(&H3Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// A self-signed P-256 certificate for every name in [`TLS_NAMES`] and `*.example`, in `dir`
/// (files of its own: the TLS server's may exist next to it).
fn make_certificate(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let cert = dir.join("h3_cert.pem");
    let key = dir.join("h3_key.pem");
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let san = std::iter::once("DNS:*.example".to_string())
        .chain(TLS_NAMES.iter().map(|n| format!("DNS:{n}")))
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
    ])
    .args(["-nodes", "-days", "30", "-subj", "/CN=blocker lab h3"])
    .arg("-keyout")
    .arg(&key)
    .arg("-out")
    .arg(&cert)
    .args(["-addext", &format!("subjectAltName={san}")]);
    openssl(cmd, "openssl req (the h3 server's certificate)")?;
    Ok((cert, key))
}

/// `openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary`,
/// base64: the SPKI pin of `cert`.
fn spki_sha256_base64(dir: &Path, cert: &Path) -> Result<String> {
    let public = dir.join("h3_pub.pem");
    let der = dir.join("h3_pub.der");
    let mut cmd = Command::new("openssl");
    cmd.args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert)
        .arg("-out")
        .arg(&public);
    openssl(cmd, "openssl x509 -pubkey")?;
    let mut cmd = Command::new("openssl");
    cmd.args(["pkey", "-pubin", "-outform", "der", "-in"])
        .arg(&public)
        .arg("-out")
        .arg(&der);
    openssl(cmd, "openssl pkey -outform der")?;
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", "-sha256", "-binary"]).arg(&der);
    let digest = openssl(cmd, "openssl dgst -sha256")?;
    if digest.len() != 32 {
        bail!("openssl dgst -sha256 -binary gave {} bytes", digest.len());
    }
    Ok(base64(&digest))
}

fn openssl(cmd: Command, what: &str) -> Result<Vec<u8>> {
    let out = run_bounded(cmd, START_TIMEOUT);
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `key=value` of a log line (values have no spaces, except the quoted request line).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!(" {key}=");
    let start = line.find(&needle)? + needle.len();
    let rest = &line[start..];
    Some(rest.split(' ').next().unwrap_or(rest))
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

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
