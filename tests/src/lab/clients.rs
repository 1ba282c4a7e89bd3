//! Real clients in the client namespace, each bounded by a deadline, each classified into an
//! [`Outcome`] so tests compare outcomes rather than error strings: curl and `openssl s_client`
//! over TLS to a name at an address, headless Chromium, `dig` and the glibc resolver
//! (`getent`).
//!
//! A blocked TLS connection is reset by the appliance while the ClientHello crosses, so the
//! client sees "connection reset by peer" within milliseconds; [`Attempt::elapsed`] lets a test
//! tell such a reset from a slow failure.

use std::{
    fmt,
    net::IpAddr,
    process::Output,
    time::{Duration, Instant},
};

use anyhow::Result;

use super::{
    INTERNET_V4, Lab, Node, TLS_BODY,
    cmd::killed,
    headless::{Quic, run_headless},
};

/// Deadline of one curl or s_client run (connect and transfer); the process is killed a little
/// after it if it has not given up by itself.
pub const TLS_CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one headless Chromium page load, start-up included.
pub const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of one `dig` or `getent`.
pub const RESOLVER_TIMEOUT: Duration = Duration::from_secs(8);

/// What a client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// curl: the server answered with this HTTP status.
    Http(u16),
    /// openssl s_client: the TLS handshake completed.
    Handshake,
    /// Chromium: the page loaded and holds the lab server's text.
    Loaded,
    /// The connection was reset (a TCP RST reached the client).
    Reset,
    /// The connection was refused (the SYN was answered with a reset).
    Refused,
    /// The peer closed the connection without a reset (EOF during the handshake).
    Closed,
    /// Nothing came back within the deadline.
    Timeout,
    /// Anything else, with the client's own message.
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Http(code) => write!(f, "HTTP {code}"),
            Outcome::Handshake => f.write_str("handshake completed"),
            Outcome::Loaded => f.write_str("page loaded"),
            Outcome::Reset => f.write_str("connection reset"),
            Outcome::Refused => f.write_str("connection refused"),
            Outcome::Closed => f.write_str("connection closed"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

/// One client run: its outcome, how long it took, and a short trace for failure messages.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Outcome,
    pub elapsed: Duration,
    /// The client's last meaningful lines (error message, status), for assertions' messages.
    pub detail: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} after {:?} ({})",
            self.outcome,
            self.elapsed,
            self.detail.trim()
        )
    }
}

/// `203.0.113.10` or `[2001:db8:f::10]`: an address as URLs and `host:port` want it.
pub fn bracketed(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The last `n` non-empty lines of `s`, joined by " | ".
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// `curl -k --resolve <name>:443:<addr> https://<name>/` from the client namespace, within
/// [`TLS_CLIENT_TIMEOUT`].
pub fn curl_https(lab: &Lab, name: &str, addr: IpAddr) -> Attempt {
    let secs = TLS_CLIENT_TIMEOUT.as_secs().to_string();
    let resolve = format!("{name}:443:{}", bracketed(addr));
    let url = format!("https://{name}/");
    let args = [
        "curl",
        "-sS",
        "-v",
        "-k",
        "--noproxy",
        "*",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--connect-timeout",
        &secs,
        "--max-time",
        &secs,
        "--resolve",
        &resolve,
        &url,
    ];
    let started = Instant::now();
    let out = lab.exec_timeout(
        Node::Client,
        &args,
        TLS_CLIENT_TIMEOUT + Duration::from_secs(3),
    );
    let elapsed = started.elapsed();
    let (outcome, detail) = classify_curl(&out);
    Attempt {
        outcome,
        elapsed,
        detail,
    }
}

fn classify_curl(out: &Output) -> (Outcome, String) {
    let stderr = text(&out.stderr);
    let lower = stderr.to_ascii_lowercase();
    let summary = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("curl: "))
        .map(str::to_string)
        .unwrap_or_else(|| tail(&stderr, 2));
    let outcome = if killed(&out.status) {
        Outcome::Timeout
    } else {
        match out.status.code() {
            Some(0) => match text(&out.stdout).trim().parse() {
                Ok(code) => Outcome::Http(code),
                Err(_) => Outcome::Failed("no status code".into()),
            },
            Some(28) => Outcome::Timeout,
            _ if lower.contains("connection refused") => Outcome::Refused,
            _ if lower.contains("reset by peer") || lower.contains("connection reset") => {
                Outcome::Reset
            }
            _ if lower.contains("unexpected eof") || lower.contains("empty reply") => {
                Outcome::Closed
            }
            Some(code) => Outcome::Failed(format!("curl exit {code}: {summary}")),
            None => Outcome::Failed(format!("curl: {}", out.status)),
        }
    };
    (outcome, summary)
}

/// `openssl s_client -connect <addr>:443 -servername <name> -brief < /dev/null` from the client
/// namespace, within [`TLS_CLIENT_TIMEOUT`]: [`Outcome::Handshake`] when the handshake
/// completed.
pub fn openssl_s_client(lab: &Lab, name: &str, addr: IpAddr) -> Attempt {
    let connect = format!("{}:443", bracketed(addr));
    let args = [
        "openssl",
        "s_client",
        "-connect",
        &connect,
        "-servername",
        name,
        "-brief",
    ];
    let started = Instant::now();
    let out = lab.exec_timeout(Node::Client, &args, TLS_CLIENT_TIMEOUT);
    let elapsed = started.elapsed();
    let (outcome, detail) = classify_s_client(&out);
    Attempt {
        outcome,
        elapsed,
        detail,
    }
}

fn classify_s_client(out: &Output) -> (Outcome, String) {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let lower = all.to_ascii_lowercase();
    let detail = tail(&all, 3);
    // -brief prints "CONNECTION ESTABLISHED" once the handshake is done; errors name the
    // errno of the failed read or write (104: ECONNRESET).
    let outcome = if lower.contains("connection established") {
        Outcome::Handshake
    } else if killed(&out.status) {
        Outcome::Timeout
    } else if lower.contains("errno=104") || lower.contains("connection reset") {
        Outcome::Reset
    } else if lower.contains("errno=111") || lower.contains("connection refused") {
        Outcome::Refused
    } else if lower.contains("unexpected eof") || lower.contains("errno=0") {
        Outcome::Closed
    } else {
        Outcome::Failed(format!("s_client {}: {detail}", out.status))
    };
    (outcome, detail)
}

/// What headless Chromium made of one URL.
#[derive(Debug, Clone)]
pub struct ChromiumPage {
    /// `--dump-dom`'s output: the page's DOM, empty when the load failed.
    pub dom: String,
    /// The network error headless Chromium reported (`net::ERR_CONNECTION_RESET`), if any.
    pub net_error: Option<String>,
    pub elapsed: Duration,
    /// Whether it had to be killed at [`CHROMIUM_TIMEOUT`].
    pub killed: bool,
    /// Chromium's stderr minus its D-Bus noise, for failure messages.
    pub log: String,
}

impl ChromiumPage {
    /// Loaded when the DOM holds the lab server's page text ([`TLS_BODY`]); otherwise the
    /// network error Chromium reported.
    pub fn outcome(&self) -> Outcome {
        if self.dom.contains(TLS_BODY) {
            return Outcome::Loaded;
        }
        if self.killed {
            return Outcome::Timeout;
        }
        match self.net_error.as_deref() {
            Some("net::ERR_CONNECTION_RESET") => Outcome::Reset,
            Some("net::ERR_CONNECTION_REFUSED") => Outcome::Refused,
            Some("net::ERR_CONNECTION_CLOSED" | "net::ERR_EMPTY_RESPONSE") => Outcome::Closed,
            Some("net::ERR_TIMED_OUT" | "net::ERR_CONNECTION_TIMED_OUT") => Outcome::Timeout,
            Some(other) => Outcome::Failed(other.to_string()),
            None if self.dom.trim().is_empty() => {
                Outcome::Failed(format!("empty DOM, no net error: {}", tail(&self.log, 3)))
            }
            None => Outcome::Failed(format!(
                "a page without the lab's text: {}",
                self.dom.chars().take(200).collect::<String>()
            )),
        }
    }

    pub fn attempt(&self) -> Attempt {
        Attempt {
            outcome: self.outcome(),
            elapsed: self.elapsed,
            detail: self
                .net_error
                .clone()
                .unwrap_or_else(|| self.dom.chars().take(120).collect()),
        }
    }
}

/// Loads `url` in Debian's headless Chromium in the client namespace and returns its DOM.
/// `resolver_rules` is Chromium's `--host-resolver-rules` (e.g.
/// `MAP blocked.example 203.0.113.10, MAP allowed.example 203.0.113.10`), so no DNS is needed.
/// A fresh profile each time (`headless.rs`), QUIC off; certificate errors ignored (the lab's
/// certificate is self-signed).
pub fn chromium_fetch(lab: &Lab, url: &str, resolver_rules: &str) -> Result<ChromiumPage> {
    let rules = format!("--host-resolver-rules={resolver_rules}");
    let args = ["--ignore-certificate-errors", &rules, "--dump-dom", url];
    let run = run_headless(lab, Quic::Off, &args, CHROMIUM_TIMEOUT)?;
    Ok(ChromiumPage {
        net_error: run.page_load_error(),
        killed: run.killed(),
        log: run.log(),
        elapsed: run.elapsed,
        dom: run.stdout,
    })
}

/// `dig` in the client namespace: `dig @198.51.100.2 +time=1 +tries=2 <extra...> <name> <type>`
/// (the server is the lab's unless `extra` names one with `@`). Returns dig's full output.
pub fn dig(lab: &Lab, name: &str, qtype: &str, extra: &[&str]) -> String {
    let server = format!("@{INTERNET_V4}");
    let mut args = vec!["dig"];
    if !extra.iter().any(|a| a.starts_with('@')) {
        args.push(&server);
    }
    args.extend_from_slice(&["+time=1", "+tries=2"]);
    args.extend_from_slice(extra);
    args.extend_from_slice(&[name, qtype]);
    let out = lab.exec_timeout(Node::Client, &args, RESOLVER_TIMEOUT);
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The parts of dig's output tests look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigReply {
    /// `NOERROR`, `NXDOMAIN`, ...; None when no reply came.
    pub status: Option<String>,
    /// The header flags (`qr rd ra aa ...`).
    pub flags: Vec<String>,
    /// Addresses of the A/AAAA records of the answer section.
    pub addresses: Vec<IpAddr>,
    /// TTLs of the answer section's records.
    pub ttls: Vec<u32>,
    /// The extended error line (`15 (Blocked)`), if the OPT pseudo-section had one.
    pub ede: Option<String>,
    /// Whether the reply carried an OPT record.
    pub edns: bool,
}

impl DigReply {
    pub fn parse(out: &str) -> DigReply {
        let mut reply = DigReply::default();
        let mut section = "";
        for line in out.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix(";; ->>HEADER<<-") {
                reply.status = rest
                    .split(',')
                    .find_map(|p| p.trim().strip_prefix("status: "))
                    .map(str::to_string);
                continue;
            }
            if let Some(rest) = t.strip_prefix(";; flags: ") {
                reply.flags = rest
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                continue;
            }
            if t.starts_with(";; OPT PSEUDOSECTION") {
                reply.edns = true;
            }
            if let Some(rest) = t.strip_prefix("; EDE: ") {
                reply.ede = Some(rest.to_string());
                continue;
            }
            if t.starts_with(";; ") && t.ends_with("SECTION:") {
                section = if t.contains("ANSWER") {
                    "answer"
                } else {
                    "other"
                };
                continue;
            }
            if t.is_empty() {
                section = "";
                continue;
            }
            if section == "answer" && !t.starts_with(';') {
                let words: Vec<&str> = t.split_whitespace().collect();
                if let [_, ttl, _, rtype, data, ..] = words[..] {
                    if let Ok(ttl) = ttl.parse() {
                        reply.ttls.push(ttl);
                    }
                    if (rtype == "A" || rtype == "AAAA")
                        && let Ok(addr) = data.parse()
                    {
                        reply.addresses.push(addr);
                    }
                }
            }
        }
        reply
    }
}

/// `getent <database> <name>` in the client namespace (the glibc resolver, configured by
/// [`DnsServer`](super::DnsServer)); the addresses of its lines, in order.
pub fn getent(lab: &Lab, database: &str, name: &str) -> Vec<IpAddr> {
    let out = lab.exec_timeout(Node::Client, &["getent", database, name], RESOLVER_TIMEOUT);
    let mut addrs = Vec::new();
    for line in text(&out.stdout).lines() {
        if let Some(Ok(addr)) = line.split_whitespace().next().map(str::parse::<IpAddr>)
            && !addrs.contains(&addr)
        {
            addrs.push(addr);
        }
    }
    addrs
}

/// `getent hosts <name>`: the first address, None when the name did not resolve.
pub fn getent_hosts(lab: &Lab, name: &str) -> Option<IpAddr> {
    getent(lab, "hosts", name).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn output(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn classifies_curl_over_tls() {
        assert_eq!(classify_curl(&output(0, "200", "")).0, Outcome::Http(200));
        let reset = "* OpenSSL SSL_connect: Connection reset by peer in connection to blocked.example:443\n\
            curl: (35) OpenSSL SSL_connect: Connection reset by peer in connection to blocked.example:443\n";
        assert_eq!(classify_curl(&output(35, "000", reset)).0, Outcome::Reset);
        assert_eq!(
            classify_curl(&output(28, "000", "curl: (28) Operation timed out")).0,
            Outcome::Timeout
        );
        assert!(matches!(
            classify_curl(&output(6, "000", "curl: (6) Could not resolve host")).0,
            Outcome::Failed(_)
        ));
    }

    #[test]
    fn classifies_s_client() {
        let ok = "CONNECTION ESTABLISHED\nProtocol version: TLSv1.3\n";
        assert_eq!(classify_s_client(&output(0, "", ok)).0, Outcome::Handshake);
        let reset = "40F7:error:8000006B:system library:BIO_connect:Connection reset by peer\n\
            write:errno=104\n";
        assert_eq!(classify_s_client(&output(1, "", reset)).0, Outcome::Reset);
    }

    #[test]
    fn parses_dig() {
        let out = "\n; <<>> DiG 9.18.49 <<>> @198.51.100.2 blocked.example A\n\
;; global options: +cmd\n\
;; Got answer:\n\
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242\n\
;; flags: qr aa rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n\
\n\
;; OPT PSEUDOSECTION:\n\
; EDNS: version: 0, flags:; udp: 1232\n\
; EDE: 15 (Blocked)\n\
;; QUESTION SECTION:\n\
;blocked.example.\t\tIN\tA\n\
\n\
;; ANSWER SECTION:\n\
blocked.example.\t60\tIN\tA\t192.0.2.1\n\
\n\
;; Query time: 0 msec\n";
        let r = DigReply::parse(out);
        assert_eq!(r.status.as_deref(), Some("NOERROR"));
        assert_eq!(r.flags, ["qr", "aa", "rd", "ra"]);
        assert_eq!(r.addresses, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.ttls, [60]);
        assert_eq!(r.ede.as_deref(), Some("15 (Blocked)"));
        assert!(r.edns);
        assert_eq!(
            DigReply::parse(";; connection timed out; no servers could be reached\n").status,
            None
        );
    }
}
