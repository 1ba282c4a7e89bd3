//! One headless Chromium run in the client namespace, as every lab test that uses a browser
//! starts it (the TLS name tests, the stop-page tests, the QUIC tests): the fixed flags, a fresh
//! profile, a deadline, and what its stderr says. The callers add the page, the flags of their
//! own and the reading of the result.
//!
//! A fresh profile for each run means no session resumption, no cached connections or QUIC
//! state, no HSTS: each run is a first visit. It is removed when the run ends.

use std::{
    fs,
    process::ExitStatus,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::{
    Lab, Node,
    cmd::{killed, run_bounded},
};

/// Flags of every run: as root (so `--no-sandbox`), no GPU, no first-run prompts; background
/// traffic, component updates, sync, extensions, proxies and DNS prefetching off (the lab has no
/// network to reach, and Chromium retries what it cannot reach).
const HEADLESS: [&str; 12] = [
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-proxy-server",
    "--dns-prefetch-disable",
];

/// Whether the run may use QUIC. Off for the TCP tests: a browser that tried HTTP/3 first would
/// cross the appliance on a path those tests do not look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quic {
    Off,
    On,
}

/// What one run left.
#[derive(Debug, Clone)]
pub(crate) struct HeadlessRun {
    /// Its stdout (`--dump-dom`: the DOM).
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
    pub elapsed: Duration,
}

impl HeadlessRun {
    /// Whether it had to be killed at the deadline.
    pub fn killed(&self) -> bool {
        killed(&self.status)
    }

    /// The network error of a failed load (`net::ERR_CONNECTION_RESET`), as
    /// headless_command_handler.cc reports it: "Page load failed: net::ERR_CONNECTION_RESET".
    pub fn page_load_error(&self) -> Option<String> {
        page_load_error(&self.stderr)
    }

    /// Its stderr less the noise of a machine without a session bus (D-Bus errors, and the
    /// `unexpected operator` of Debian's launcher script), for failure messages.
    pub fn log(&self) -> String {
        quiet_log(&self.stderr)
    }
}

/// Runs `chromium <fixed flags> <QUIC flag> --user-data-dir=<fresh profile> <args...>` in the
/// client namespace, killed at `timeout`. `args` ends with the URL. Fails only when the profile
/// cannot be made; how the load went is in the returned run.
pub(crate) fn run_headless(
    lab: &Lab,
    quic: Quic,
    args: &[&str],
    timeout: Duration,
) -> Result<HeadlessRun> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let profile = lab
        .dir()
        .join(format!("chromium-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    fs::create_dir_all(&profile)
        .with_context(|| format!("creating Chromium profile {}", profile.display()))?;
    let user_data = format!("--user-data-dir={}", profile.display());
    let mut argv: Vec<&str> = HEADLESS.to_vec();
    argv.push(match quic {
        Quic::Off => "--disable-quic",
        Quic::On => "--enable-quic",
    });
    argv.push(&user_data);
    argv.extend_from_slice(args);
    let mut cmd = lab.command(Node::Client, &argv);
    // Chromium wants a writable home for caches and crash reports; the profile serves.
    cmd.env("HOME", &profile);
    let started = Instant::now();
    let out = run_bounded(cmd, timeout);
    let elapsed = started.elapsed();
    let _ = fs::remove_dir_all(&profile);
    Ok(HeadlessRun {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status,
        elapsed,
    })
}

fn page_load_error(stderr: &str) -> Option<String> {
    const FAILED: &str = "Page load failed: ";
    stderr.lines().find_map(|l| {
        let at = l.find(FAILED)? + FAILED.len();
        Some(l[at..].split_whitespace().next()?.to_string())
    })
}

fn quiet_log(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| {
            !l.contains("dbus")
                && !l.contains("D-Bus")
                && !l.contains("unexpected operator")
                && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STDERR: &str = "[1:2:ERROR:dbus/bus.cc(407)] Failed to connect to the bus: Could not parse server address: Unknown address type (examples of valid types are \"tcp\" and on UNIX \"unix\")\n\
        /usr/bin/chromium: 1: [: unexpected operator\n\
        \n\
        [1:9:INFO:headless_command_handler.cc(146)] Page load failed: net::ERR_CONNECTION_RESET\n\
        [1:3:ERROR:object_proxy.cc(576)] Failed to call method: org.freedesktop.DBus.Properties.Get: D-Bus\n";

    #[test]
    fn reads_the_page_load_error() {
        assert_eq!(
            page_load_error(STDERR).as_deref(),
            Some("net::ERR_CONNECTION_RESET")
        );
        assert_eq!(page_load_error("[1:2:INFO] loaded\n"), None);
    }

    #[test]
    fn the_log_leaves_out_the_session_bus_noise() {
        assert_eq!(
            quiet_log(STDERR),
            "[1:9:INFO:headless_command_handler.cc(146)] Page load failed: net::ERR_CONNECTION_RESET"
        );
    }
}
