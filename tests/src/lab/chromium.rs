//! Headless Chromium over QUIC (issue 9): one page load in the client namespace with QUIC on,
//! optionally forced for the page's origin (`--origin-to-force-quic-on`), trusting the lab's
//! [`H3Server`](super::H3Server) certificate by its SPKI pin.
//!
//! What this Chromium (156) does, found in the lab:
//! - Forced to QUIC, it never falls back to TCP: when the server does not answer the Initial,
//!   the load fails with `net::ERR_QUIC_PROTOCOL_ERROR` after about 4 s (its handshake
//!   timeout); when it answers, the page comes over h3 in about a second (a few with four
//!   browsers on two busy cores).
//! - When the server's first flight gets back but nothing of the client's after its first
//!   Initial reaches the server (the blocker passes a flow's first Initial while it reads the
//!   name, then drops the flow), the client has finished its side of the handshake and waits
//!   for an answer that never comes: the load ends only at [`QUIC_CHROMIUM_TIMEOUT`].
//! - `--ignore-certificate-errors-spki-list` is what makes it accept a self-signed certificate
//!   over QUIC, for a forced origin. Not forced, it does try h3 after the server's `Alt-Svc`,
//!   but that handshake fails (`CERTIFICATE_VERIFY_FAILED`: QUIC to an alternative service
//!   wants a publicly trusted root, which the SPKI list does not stand in for) and the page
//!   stays on TCP; so the lab shows h3 only with the origin forced.
//!
//! Every run gets a fresh profile (no cached QUIC state, no 0-RTT), is killed at
//! [`QUIC_CHROMIUM_TIMEOUT`] and its profile is removed afterwards.

use std::{net::IpAddr, time::Duration};

use anyhow::Result;

use super::{
    H3_BODY, Lab,
    clients::bracketed,
    headless::{Quic, run_headless},
};

/// Hard deadline of one run, start-up included: an allowed load takes one to a few seconds, a
/// blocked one waits for this.
pub const QUIC_CHROMIUM_TIMEOUT: Duration = Duration::from_secs(20);

/// How to load the page.
#[derive(Debug, Clone)]
pub struct QuicLoad<'a> {
    /// The host of `https://<name>/`.
    pub name: &'a str,
    /// Where the name resolves (`--host-resolver-rules=MAP <name> <addr>`): no DNS needed.
    pub addr: IpAddr,
    /// `--origin-to-force-quic-on=<name>:443`: QUIC from the first request, no TCP at all.
    pub force_quic: bool,
    /// base64 SHA-256 of the server's SPKI ([`H3Server::spki_sha256`](super::H3Server)).
    pub spki: &'a str,
}

/// What one run saw.
#[derive(Debug, Clone)]
pub struct QuicPage {
    /// `--dump-dom`'s output: the page's DOM, empty when the load failed.
    pub dom: String,
    /// The network error headless Chromium reported (`net::ERR_QUIC_PROTOCOL_ERROR`), if any.
    pub net_error: Option<String>,
    pub elapsed: Duration,
    /// Whether it had to be killed at [`QUIC_CHROMIUM_TIMEOUT`].
    pub killed: bool,
    /// Chromium's stderr minus its D-Bus noise, for failure messages.
    pub log: String,
}

impl QuicPage {
    /// The protocol the lab page says it came over (`h3`, `http/1.1`); None when no lab page
    /// loaded.
    pub fn protocol(&self) -> Option<&str> {
        let start = self.dom.find(H3_BODY)?;
        let text = &self.dom[start..];
        let text = &text[..text.find('<').unwrap_or(text.len())];
        let at = text.rfind(" over ")? + " over ".len();
        Some(text[at..].trim())
    }

    /// Whether the lab page for `name` loaded over HTTP/3.
    pub fn loaded_over_h3(&self, name: &str) -> bool {
        self.protocol() == Some("h3") && self.dom.contains(&format!("{H3_BODY} {name} over h3"))
    }
}

impl std::fmt::Display for QuicPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.protocol(), &self.net_error) {
            (Some(p), _) => write!(f, "loaded over {p}")?,
            (None, Some(e)) => write!(f, "failed: {e}")?,
            (None, None) if self.killed => f.write_str("killed at the deadline")?,
            (None, None) => write!(
                f,
                "no lab page: {}",
                self.dom.chars().take(120).collect::<String>()
            )?,
        }
        write!(f, " after {:?}", self.elapsed)
    }
}

/// Loads `https://<name>/` in headless Chromium in the client namespace (`headless.rs`), QUIC
/// on, as [`QuicLoad`] says.
pub fn chromium_quic(lab: &Lab, load: &QuicLoad) -> Result<QuicPage> {
    let rules = format!(
        "--host-resolver-rules=MAP {} {}",
        load.name,
        bracketed(load.addr)
    );
    let force = format!("--origin-to-force-quic-on={}:443", load.name);
    let spki = format!("--ignore-certificate-errors-spki-list={}", load.spki);
    let url = format!("https://{}/", load.name);
    let mut args = vec![&*rules, &spki];
    if load.force_quic {
        args.push(&force);
    }
    args.extend_from_slice(&["--dump-dom", &url]);
    let run = run_headless(lab, Quic::On, &args, QUIC_CHROMIUM_TIMEOUT)?;
    Ok(QuicPage {
        net_error: run.page_load_error(),
        killed: run.killed(),
        log: run.log(),
        elapsed: run.elapsed,
        dom: run.stdout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(dom: &str) -> QuicPage {
        QuicPage {
            dom: dom.into(),
            net_error: None,
            elapsed: Duration::ZERO,
            killed: false,
            log: String::new(),
        }
    }

    #[test]
    fn reads_the_protocol_from_the_page() {
        let h3 = page(
            "<html><head><title>lab</title></head><body><p id=\"lab\">blocker lab h3 server allowed.example over h3</p>\n</body></html>",
        );
        assert_eq!(h3.protocol(), Some("h3"));
        assert!(h3.loaded_over_h3("allowed.example"));
        assert!(!h3.loaded_over_h3("blocked.example"));
        let tcp = page("<p id=\"lab\">blocker lab h3 server allowed.example over http/1.1</p>");
        assert_eq!(tcp.protocol(), Some("http/1.1"));
        assert!(!tcp.loaded_over_h3("allowed.example"));
        assert_eq!(page("").protocol(), None);
    }
}
