//! `cargo xtask demo`: the release blocker in a fresh namespace lab, blocking one IPv4 range
//! and one IPv6 host while the neighbouring addresses keep working, seen by curl and ping.

use std::{
    fs,
    io::Read,
    net::IpAddr,
    path::Path,
    process::{Child, ExitStatus},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use blocker_tests::lab::{
    ALLOWED_V4, ALLOWED_V6, APPLIANCE_CLIENT_IF, BLOCKED_V4, BLOCKED_V6, HttpOutcome, Lab,
    LabOptions, Node, PingOutcome, http_url,
};

use crate::{
    process::{cargo, is_root, run as run_cmd, target_dir},
    setup::ensure_setup,
};

/// How long the blocker may take to load and attach.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to print its counters and detach after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The list the demo blocks with: a range around BLOCKED_V4 that leaves ALLOWED_V4 out, and
/// BLOCKED_V6 alone.
const DEMO_LIST: &str = "\
# blocker demo list: one IPv4/IPv6 address or CIDR per line; '#' starts a comment.

# 203.0.113.64-67, which holds the blocked server 203.0.113.66 but not 203.0.113.10
203.0.113.64/30

# one IPv6 server
2001:db8:f::66
";

pub fn run() -> Result<()> {
    if !is_root() {
        bail!("the demo needs root: it creates network namespaces and attaches an XDP program");
    }
    ensure_setup()?;
    run_cmd(cargo().args(["build", "--release", "-p", "blocker-user"]))?;
    let blocker = target_dir().join("release").join("blocker");
    if !blocker.is_file() {
        bail!(
            "{} was not built (is the `blocker` binary in blocker-user?)",
            blocker.display()
        );
    }

    // Offloads off: frames cross the lab as they would a real wire (design.md §2).
    let mut lab = Lab::create(LabOptions {
        offloads: false,
        ..Default::default()
    })?;
    lab.start_http_server()?;
    println!(
        "\nlab: {} (c0) ── (a0) {} (a1) ── (i0) {}, offloads off",
        lab.ns_name(Node::Client),
        lab.ns_name(Node::Appliance),
        lab.ns_name(Node::Internet)
    );
    let outcome = demo(&lab, &blocker);
    // Explicit teardown to report problems; drop would do it silently on the error paths.
    let teardown = lab.teardown();
    outcome?;
    teardown
}

fn demo(lab: &Lab, blocker: &Path) -> Result<()> {
    // Without the blocker every server answers: proves the lab before blaming the blocker.
    for addr in servers() {
        let seen = lab.http_get(Node::Client, addr);
        if seen != HttpOutcome::Status(200) {
            bail!(
                "the lab is broken: without the blocker, {} gave {seen}",
                http_url(addr)
            );
        }
    }
    let baseline_log_lines = lab.server_log().lines().count();
    println!("without the blocker: all four servers answer 200");

    let list = lab.dir().join("demo.list");
    fs::write(&list, DEMO_LIST).context("writing the demo list")?;
    println!("\nlist {}:\n{DEMO_LIST}", list.display());

    let (blocker_path, list_path) = (blocker.to_string_lossy(), list.to_string_lossy());
    let args = ["run", "--iface", APPLIANCE_CLIENT_IF, "--list", &*list_path];
    println!(
        "$ ip netns exec {} {blocker_path} {}",
        lab.ns_name(Node::Appliance),
        args.join(" ")
    );
    let mut argv = vec![&*blocker_path];
    argv.extend(args);
    let mut running = Running::new(lab.spawn(Node::Appliance, &argv)?);

    if let Err(e) = wait_attached(lab, &mut running) {
        let (status, output) = running.stop();
        println!("blocker ({status}) said:\n{output}");
        return Err(e);
    }
    println!("blocker attached to {APPLIANCE_CLIENT_IF}\n");

    let mut checks = Vec::new();
    for addr in servers() {
        let blocked = addr == IpAddr::from(BLOCKED_V4) || addr == IpAddr::from(BLOCKED_V6);
        let seen = lab.http_get(Node::Client, addr);
        checks.push(Check {
            probe: format!("curl {}", http_url(addr)),
            expected: if blocked {
                "blocked: connection reset"
            } else {
                "allowed: 200"
            }
            .into(),
            seen: match &seen {
                HttpOutcome::Status(200) => "allowed: 200".into(),
                HttpOutcome::Reset | HttpOutcome::Timeout => format!("blocked: {seen}"),
                other => format!("error: {other}"),
            },
        });
    }
    for addr in servers() {
        let blocked = addr == IpAddr::from(BLOCKED_V4) || addr == IpAddr::from(BLOCKED_V6);
        let seen = lab.ping(Node::Client, addr);
        checks.push(Check {
            probe: format!("ping {addr}"),
            expected: if blocked {
                "blocked: no reply"
            } else {
                "allowed: reply"
            }
            .into(),
            seen: match seen {
                PingOutcome::Replied => "allowed: reply".into(),
                PingOutcome::NoReply => "blocked: no reply".into(),
            },
        });
    }
    // The server's own view: no blocked request may have reached it.
    let log = lab.server_log();
    let after: Vec<&str> = log.lines().skip(baseline_log_lines).collect();
    for addr in [IpAddr::from(BLOCKED_V4), IpAddr::from(BLOCKED_V6)] {
        let needle = format!(" server={addr} ");
        let reached = after.iter().filter(|l| l.contains(&needle)).count();
        checks.push(Check {
            probe: format!("server log for {addr}"),
            expected: "no request".into(),
            seen: if reached == 0 {
                "no request".into()
            } else {
                format!("{reached} requests")
            },
        });
    }

    println!("\nstopping the blocker (SIGINT)");
    let (status, output) = running.stop();
    checks.push(Check {
        probe: "blocker exit after SIGINT".into(),
        expected: "exit status: 0".into(),
        seen: status.to_string(),
    });
    println!("blocker output:\n{}", output.trim_end());

    print_table(&checks);
    let failed = checks.iter().filter(|c| !c.ok()).count();
    if failed > 0 {
        bail!("{failed} of {} demo expectations failed", checks.len());
    }
    println!("\ndemo: all {} expectations met", checks.len());
    Ok(())
}

fn servers() -> [IpAddr; 4] {
    [
        ALLOWED_V4.into(),
        BLOCKED_V4.into(),
        ALLOWED_V6.into(),
        BLOCKED_V6.into(),
    ]
}

/// Polls for the attachment, failing early if the blocker exits first.
fn wait_attached(lab: &Lab, running: &mut Running) -> Result<()> {
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    loop {
        if let Some(status) = running.child.try_wait()? {
            bail!("blocker exited before attaching ({status})");
        }
        if lab
            .wait_for_xdp(Node::Appliance, APPLIANCE_CLIENT_IF, Duration::ZERO)
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("blocker did not attach to {APPLIANCE_CLIENT_IF} within {ATTACH_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

struct Check {
    probe: String,
    expected: String,
    seen: String,
}

impl Check {
    fn ok(&self) -> bool {
        self.expected == self.seen
    }
}

fn print_table(checks: &[Check]) {
    let w_probe = checks.iter().map(|c| c.probe.len()).max().unwrap_or(0);
    let w_expected = checks
        .iter()
        .map(|c| c.expected.len())
        .max()
        .unwrap_or(0)
        .max(8);
    println!(
        "\n{:<w_probe$}  {:<w_expected$}  {:<4}  seen",
        "probe", "expected", ""
    );
    for c in checks {
        let mark = if c.ok() { "ok" } else { "FAIL" };
        println!(
            "{:<w_probe$}  {:<w_expected$}  {mark:<4}  {}",
            c.probe, c.expected, c.seen
        );
    }
}

/// The blocker process with its output collected on threads, so a full pipe never stalls it.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: mpsc::Receiver<Vec<u8>>,
}

impl Running {
    fn new(mut child: Child) -> Self {
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// SIGINT (the blocker prints its counters and detaches), SIGKILL if it lingers; returns
    /// the exit status and everything it printed.
    fn stop(mut self) -> (ExitStatus, String) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut note = String::new();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                _ => {
                    note = format!("\n[no exit {STOP_TIMEOUT:?} after SIGINT: killed]");
                    let _ = self.child.kill();
                    break self.child.wait().expect("reaping the killed blocker");
                }
            }
        };
        let grace = Duration::from_secs(2);
        let out = self.stdout.recv_timeout(grace).unwrap_or_default();
        let err = self.stderr.recv_timeout(grace).unwrap_or_default();
        let text = format!(
            "{}{}{note}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
        (status, text)
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}
