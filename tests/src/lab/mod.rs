//! The namespace lab (design.md §1): `client ── veth ── appliance ── veth ── internet`, with
//! the appliance as a router (default) or as a bump in the wire (`LabOptions::inline`), built
//! fresh for each test in namespaces named `blk<pid % 100000>-<n>-<role>`, and removed when
//! the [`Lab`] is dropped (also when a test panics).
//!
//! ```no_run
//! use blocker_tests::lab::{ALLOWED_V4, HttpOutcome, Lab, LabOptions, Node};
//!
//! let mut lab = Lab::create(LabOptions { offloads: false, ..Default::default() })?;
//! lab.start_http_server()?;
//! assert_eq!(lab.http_get(Node::Client, ALLOWED_V4.into()), HttpOutcome::Status(200));
//! # anyhow::Ok(())
//! ```
//!
//! Nothing here touches the host's own interfaces: every device is created inside a lab
//! namespace, and every command runs with a deadline.

mod addr;
mod background;
mod blocker;
mod bpffs;
mod capture;
mod cert;
mod cmd;
mod headless;
mod http;
mod node;
mod probe;
mod server_log;
mod server_process;
mod topology;
mod workspace_bin;
mod xdp;

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

pub use addr::*;
pub use background::{Background, Stopped};
pub use bpffs::PrivateBpffs;
pub use blocker::{
    ATTACH_TIMEOUT, BLOCKER_BIN_ENV, Blocker, BlockerExit, Cell, Counters, STOP_TIMEOUT,
    blocker_binary,
};
pub use capture::{
    CAPTURE_TIMEOUT, Capture, CaptureFile, CapturedFrame, Direction, parse_pcap, read_pcap,
};
pub use cmd::DEFAULT_TIMEOUT;
pub use http::HTTP_BODY;
pub use node::Node;
pub use probe::{HttpOutcome, PingOutcome};
pub use xdp::{XdpAction, XdpLink};

use http::HttpServer;
use topology::{ip, must};

/// Deadline of one curl in [`Lab::http_get`] (connect and transfer).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabOptions {
    /// Keep the veths' default offloads (TSO, GSO, checksum; GRO is off by default on veth).
    /// `false` turns TSO, GSO, GRO and tx/rx checksum offload off on all four veth ends, so
    /// frames cross as they would on a real wire: at most one MTU, with finished checksums.
    /// Test both ways (design.md §2).
    pub offloads: bool,
    /// Attach `return XDP_PASS` to the outer ends `c0` and `i0`, so that frames an XDP program
    /// on the appliance sends back (XDP_TX: the blocker's resets) or across (redirect) are
    /// received at once; see `xdp.rs` for why GRO is not enough. Default on; turn it off only
    /// to show that failure mode. Side effect (kernel): a veth whose peer has an XDP program
    /// has TSO turned off, so `a0` and `a1` send no TSO super-packets to `c0` / `i0`.
    /// Inline mode needs it: a frame redirected out of `a0` or `a1` reaches `c0` or `i0` only
    /// when that end has an XDP program (a veth advertises XDP transmit only then).
    pub peer_xdp_pass: bool,
    /// Bump-in-the-wire topology (see `topology.rs`): `a0` and `a1` carry no addresses and the
    /// appliance does not forward, so only the blocker in inline mode
    /// ([`Lab::start_inline_blocker`]) joins the two sides; `i0` holds the client's gateway
    /// addresses (`APPLIANCE_CLIENT_V4`/`_V6`). With `offloads` on, tx checksum offload (and
    /// with it TSO) is still turned off on `c0` and `i0`: a redirected frame loses the skb that
    /// says its checksum is unfinished, so it must be finished by the sender, as on a real wire.
    /// Default off: the router topology.
    pub inline: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            offloads: true,
            peer_xdp_pass: true,
            inline: false,
        }
    }
}

/// A running lab. Dropping it kills every process left in its namespaces, deletes the
/// namespaces (and with them the veths) and removes its temporary directory.
pub struct Lab {
    options: LabOptions,
    /// Indexed by `Node::index`.
    names: [String; 3],
    /// The namespaces created so far: a half-built lab cleans up exactly these.
    created: Vec<String>,
    dir: PathBuf,
    http: Option<HttpServer>,
    /// The XDP_PASS programs on c0 and i0 (`LabOptions::peer_xdp_pass`).
    peer_programs: Vec<XdpLink>,
    torn_down: bool,
}

impl Lab {
    /// Builds the three namespaces, the two veth pairs, addresses, routes and forwarding, and
    /// waits until the links are up. Needs root.
    pub fn create(options: LabOptions) -> Result<Lab> {
        let prefix = topology::pick_prefix()?;
        let names = Node::ALL.map(|n| topology::ns_name(&prefix, n));
        let dir = std::env::temp_dir().join(format!("{prefix}-lab"));
        let mut lab = Lab {
            options,
            names,
            created: Vec::new(),
            dir,
            http: None,
            peer_programs: Vec::new(),
            torn_down: false,
        };

        // From here on, an early return drops `lab`, which removes whatever exists so far.
        if lab.dir.exists() {
            fs::remove_dir_all(&lab.dir)
                .with_context(|| format!("removing stale {}", lab.dir.display()))?;
        }
        fs::create_dir_all(&lab.dir).with_context(|| format!("creating {}", lab.dir.display()))?;
        for name in lab.names.clone() {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "add", &name]);
            must(cmd).context("creating the lab's namespaces (needs root)")?;
            lab.created.push(name);
        }
        topology::build(&lab.names, &lab.options).context("building the lab")?;
        if lab.options.peer_xdp_pass {
            for (node, dev) in [(Node::Client, CLIENT_IF), (Node::Internet, INTERNET_IF)] {
                let link = lab.attach_constant_xdp(node, dev, XdpAction::Pass)?;
                lab.peer_programs.push(link);
            }
        }
        Ok(lab)
    }

    pub fn options(&self) -> &LabOptions {
        &self.options
    }

    /// The namespace's name, for `ip netns exec` / `ip -n` of your own.
    pub fn ns_name(&self, node: Node) -> &str {
        &self.names[node.index()]
    }

    /// A directory private to this lab (list files, captures, logs); removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ip netns exec <ns> args...`, not started: set stdio or env and spawn it yourself.
    /// stdin is null. Processes still running in the lab at drop are killed.
    pub fn command(&self, node: Node, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns_name(node)])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `args` in `node` to completion, killing it after [`DEFAULT_TIMEOUT`]. A command
    /// that cannot start has exit status 127; a killed one, the SIGKILL status.
    pub fn exec(&self, node: Node, args: &[&str]) -> Output {
        self.exec_timeout(node, args, DEFAULT_TIMEOUT)
    }

    /// [`Lab::exec`] with your own deadline.
    pub fn exec_timeout(&self, node: Node, args: &[&str], timeout: Duration) -> Output {
        cmd::run_bounded(self.command(node, args), timeout)
    }

    /// [`Lab::exec`] that must succeed: returns stdout, or an error with the status and stderr.
    pub fn exec_ok(&self, node: Node, args: &[&str]) -> Result<String> {
        let out = self.exec(node, args);
        if !out.status.success() {
            bail!(
                "`{}` in {node} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts `args` in `node` in the background, stdout and stderr piped (read them, or a
    /// chatty process blocks on a full pipe). Killed at drop if still running.
    pub fn spawn(&self, node: Node, args: &[&str]) -> Result<Child> {
        self.command(node, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{}` in {node}", args.join(" ")))
    }

    /// Starts the HTTP server on port 80 of every address of the internet namespace
    /// (`SERVER_ADDRS`); it answers every GET with 200 and [`HTTP_BODY`]. Idempotent.
    pub fn start_http_server(&mut self) -> Result<()> {
        if self.http.is_none() {
            self.http = Some(HttpServer::start(self.ns_name(Node::Internet), &self.dir)?);
        }
        Ok(())
    }

    /// The server's access log so far, one line per request:
    /// `client=192.0.2.2 server=203.0.113.10 host=203.0.113.10 "GET / HTTP/1.1" 200`.
    /// Empty when the server was not started.
    pub fn server_log(&self) -> String {
        self.http.as_ref().map(HttpServer::log).unwrap_or_default()
    }

    /// Whether any request reached the server on `addr`.
    pub fn server_saw(&self, addr: IpAddr) -> bool {
        let needle = format!(" server={addr} ");
        self.server_log().lines().any(|l| l.contains(&needle))
    }

    /// `GET http://<addr>/` with curl from `from`, within [`HTTP_TIMEOUT`].
    pub fn http_get(&self, from: Node, addr: IpAddr) -> HttpOutcome {
        let secs = HTTP_TIMEOUT.as_secs().to_string();
        let url = http_url(addr);
        let args = [
            "curl",
            "-sS",
            "-v",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--connect-timeout",
            &secs,
            "--max-time",
            &secs,
            &url,
        ];
        HttpOutcome::from_curl(&self.exec_timeout(
            from,
            &args,
            HTTP_TIMEOUT + Duration::from_secs(2),
        ))
    }

    /// Two pings from `from` to `addr`, at most 3 s in all.
    pub fn ping(&self, from: Node, addr: IpAddr) -> PingOutcome {
        let addr = addr.to_string();
        let args = [
            "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-w", "3", &addr,
        ];
        PingOutcome::from_ping(&self.exec_timeout(from, &args, Duration::from_secs(5)))
    }

    /// Attaches `return <action>` to `dev` in `node` (native mode), for as long as the
    /// returned link lives. For lab plumbing and baselines, not for the blocker itself.
    pub fn attach_constant_xdp(&self, node: Node, dev: &str, action: XdpAction) -> Result<XdpLink> {
        xdp::attach_constant(self.ns_name(node), dev, action)
    }

    /// Waits until `dev` in `node` shows an attached XDP program (`ip link` prints `xdp`,
    /// `xdpgeneric` or `xdpoffload` with a `prog/xdp id`).
    pub fn wait_for_xdp(&self, node: Node, dev: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let link = ip(self.ns_name(node), &["link", "show", "dev", dev])?;
            if link.contains("prog/xdp") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("no XDP program on {node}/{dev} after {timeout:?}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Tears the lab down now and reports what could not be removed (drop does the same
    /// silently, printing problems to stderr).
    pub fn teardown(mut self) -> Result<()> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        if let Some(mut server) = self.http.take() {
            server.stop();
        }
        self.peer_programs.clear();
        // Deleting a namespace's name does not end the processes inside it, and they would
        // keep the namespace, its veths and any XDP program alive: kill them first.
        for name in &self.created {
            if let Err(e) = kill_processes_in(name) {
                problems.push(format!("{e:#}"));
            }
        }
        for name in self.created.drain(..).rev() {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "del", &name]);
            if let Err(e) = must(cmd) {
                problems.push(format!("{e:#}"));
            }
        }
        if self.dir.exists()
            && let Err(e) = fs::remove_dir_all(&self.dir)
        {
            problems.push(format!("removing {}: {e}", self.dir.display()));
        }
        if !problems.is_empty() {
            bail!("lab teardown: {}", problems.join("; "));
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!("warning: {e:#}");
        }
    }
}

/// SIGKILLs every process whose network namespace is `ns` and waits (bounded) until none is
/// left. They are all ours: only the lab starts processes in its namespaces.
fn kill_processes_in(ns: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "pids", ns]);
        let pids: Vec<i32> = must(cmd)?
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("processes {pids:?} in {ns} survived SIGKILL");
        }
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// Servers and real clients for the name tests (TLS, DNS, Chromium).
pub mod clients;
pub mod dns_server;
pub mod tls_server;
pub use clients::{
    Attempt, CHROMIUM_TIMEOUT, ChromiumPage, DigReply, Outcome, RESOLVER_TIMEOUT,
    TLS_CLIENT_TIMEOUT, chromium_fetch, curl_https, dig, getent, getent_hosts, openssl_s_client,
};
pub use dns_server::{DNS_SERVER_TTL, DnsQuery, DnsServer, lab_records};
pub use tls_server::{TLS_BODY, TLS_NAMES, TlsEvent, TlsServer};

// Plain-HTTP clients for the stop-page tests (curl with the whole response, Chromium).
pub mod http_lab;

// QUIC (issue 9): the HTTP/3 server and headless Chromium forced to QUIC.
pub mod chromium;
pub mod h3_server;
pub use chromium::{QUIC_CHROMIUM_TIMEOUT, QuicLoad, QuicPage, chromium_quic};
pub use h3_server::{
    H3_BODY, H3_SERVER_BIN_ENV, H3_SERVER_LIFETIME, H3Event, H3Proto, H3Server, h3_server_binary,
};
