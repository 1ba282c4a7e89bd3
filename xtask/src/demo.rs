//! `cargo xtask demo`: the release blocker in a fresh namespace lab, blocking one IPv4 range,
//! one IPv6 host and one name while the neighbouring addresses and names keep working, seen by
//! curl, ping and dig.

use std::{fs, net::IpAddr, path::Path};

use anyhow::{Context, Result, bail};
use blocker_tests::lab::{
    ALLOWED_V4, ALLOWED_V6, APPLIANCE_CLIENT_IF, APPLIANCE_CLIENT_V4, BLOCKED_V4, BLOCKED_V6,
    DigReply, DnsServer, HttpOutcome, Lab, LabOptions, Node, Outcome, PingOutcome, TlsServer,
    curl_https, dig, http_url,
};

use crate::{
    process::{cargo, is_root, run as run_cmd, target_dir},
    setup::ensure_setup,
};

/// The list the demo blocks with: a range around BLOCKED_V4 that leaves ALLOWED_V4 out, and
/// BLOCKED_V6 alone.
const DEMO_LIST: &str = "\
# blocker demo list: one IPv4/IPv6 address or CIDR per line; '#' starts a comment.

# 203.0.113.64-67, which holds the blocked server 203.0.113.66 but not 203.0.113.10
203.0.113.64/30

# one IPv6 server
2001:db8:f::66

# a name and everything below it (www.blocked.example too), but not xblocked.example
blocked.example
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
    // HTTPS for the lab's names and an authoritative DNS server, in the internet namespace.
    let _tls = TlsServer::start(&lab)?;
    let _dns = DnsServer::start(&lab)?;
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

    let list_path = list.to_string_lossy();
    println!(
        "$ ip netns exec {} {} run --iface {APPLIANCE_CLIENT_IF} --list {list_path} --dns-v4 {APPLIANCE_CLIENT_V4} --no-pin",
        lab.ns_name(Node::Appliance),
        blocker.display(),
    );
    // Waits for the attachment; fails with the blocker's own output if it exits first.
    let stop_page = APPLIANCE_CLIENT_V4.to_string();
    let running = lab.start_blocker(blocker, APPLIANCE_CLIENT_IF, &["--list", &list_path, "--dns-v4", &stop_page])?;
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
    // Names: HTTPS is judged by the server name in the TLS ClientHello, whatever the address.
    for (name, blocked) in [("blocked.example", true), ("www.blocked.example", true), ("xblocked.example", false)] {
        let seen = curl_https(lab, name, ALLOWED_V4.into());
        checks.push(Check {
            probe: format!("curl https://{name}/ (at {ALLOWED_V4})"),
            expected: if blocked { "blocked: connection reset" } else { "allowed: HTTP 200" }.into(),
            seen: match seen.outcome {
                Outcome::Http(200) => "allowed: HTTP 200".into(),
                Outcome::Reset => "blocked: connection reset".into(),
                other => format!("error: {other}"),
            },
        });
    }
    // DNS: a query for a listed name is answered by the program with the stop-page address,
    // and an Extended DNS Error (RFC 8914) because dig sends EDNS.
    for (name, blocked) in [("www.blocked.example", true), ("allowed.example", false)] {
        let reply = DigReply::parse(&dig(lab, name, "A", &[]));
        let addrs: Vec<String> = reply.addresses.iter().map(|a| a.to_string()).collect();
        checks.push(Check {
            probe: format!("dig {name} A"),
            expected: if blocked {
                format!("{APPLIANCE_CLIENT_V4}, EDE 15 (Blocked)")
            } else {
                format!("{ALLOWED_V4}")
            },
            seen: match &reply.ede {
                Some(ede) => format!("{}, EDE {ede}", addrs.join(" ")),
                None => addrs.join(" "),
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
    let seen = match running.stop() {
        Ok(exit) => {
            println!("blocker output:\n{}", exit.stopped.output().trim_end());
            exit.stopped.status.to_string()
        }
        // Not a clean exit with a counter table: the error carries its status and output.
        Err(e) => {
            println!("{e:#}");
            "no clean exit (see above)".into()
        }
    };
    checks.push(Check {
        probe: "blocker exit after SIGINT".into(),
        expected: "exit status: 0".into(),
        seen,
    });

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
