//! Debian packages the lab, the tests and the demo call as programs.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::process::{is_root, run};

/// Everything the lab and the tests run. One list, so later additions (a browser, a DNS
/// server, ...) go here and nowhere else.
pub const PACKAGES: &[&str] = &[
    "iproute2",        // ip, ss: namespaces, veths, addresses, listening sockets
    "ethtool",         // offloads on the veths
    "curl",            // HTTP client in the lab
    "iputils-ping",    // ping
    "tcpdump",         // captures when a lab test needs to see the wire
    "nftables",        // benchmark baseline
    "ipset",           // benchmark baseline
    "iptables",        // benchmark baseline
    "dnsutils",        // dig
    "openssl",         // s_client, test certificates
    "python3",         // the lab's HTTP server, the TLS fixture capture script
    "chromium",        // headless browser in the lab (ClientHello fixtures, name blocking)
    "chromium-driver", // WebDriver for scripted Chromium runs
    "fonts-ipafont-gothic", // Japanese glyphs, so stop-page screenshots show text, not boxes
    "procps",          // sysctl
    "ca-certificates", // HTTPS to crates.io etc. from a minimal image
];

/// The packages of [`PACKAGES`] that dpkg does not report as installed.
pub fn missing() -> Result<Vec<&'static str>> {
    // One dpkg-query for all: unknown packages go to stderr and make it exit 1, which is
    // fine, we read the statuses it did print.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Status}\n"])
        .args(PACKAGES)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("cannot run dpkg-query (is this Debian?)")?;
    let listing = String::from_utf8_lossy(&out.stdout);
    Ok(PACKAGES
        .iter()
        .copied()
        .filter(|pkg| !listing.lines().any(|l| installed_line(l, pkg)))
        .collect())
}

/// `pkg install ok installed` (package names may carry `:arch`).
fn installed_line(line: &str, pkg: &str) -> bool {
    let Some((name, status)) = line.split_once(' ') else {
        return false;
    };
    let name = name.split(':').next().unwrap_or(name);
    name == pkg && status.trim() == "install ok installed"
}

pub fn ensure() -> Result<()> {
    let missing = missing()?;
    if missing.is_empty() {
        println!("ok: apt packages ({})", PACKAGES.len());
        return Ok(());
    }
    if !is_root() {
        bail!(
            "apt packages missing: {}; installing them needs root (run `cargo xtask setup` as \
             root, or `apt-get install {}`)",
            missing.join(" "),
            missing.join(" ")
        );
    }
    println!("installing: apt packages {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing))?;
    let still = self::missing()?;
    if !still.is_empty() {
        bail!(
            "apt-get finished but these are still not installed: {}",
            still.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::installed_line;

    #[test]
    fn reads_dpkg_status_lines() {
        assert!(installed_line("curl install ok installed", "curl"));
        assert!(installed_line("curl:amd64 install ok installed", "curl"));
        assert!(!installed_line("curl deinstall ok config-files", "curl"));
        assert!(!installed_line("curly install ok installed", "curl"));
    }
}
