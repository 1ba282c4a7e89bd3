//! Building the lab's namespaces, links, addresses and routes (design.md §1):
//!
//! ```text
//! client ns            appliance ns                     internet ns
//!   c0 ─────── veth ─────── a0   (forwarding)   a1 ─────── veth ─────── i0
//!   192.0.2.2/24            192.0.2.1/24        198.51.100.1/24         198.51.100.2/24
//!   2001:db8:c::2/64        2001:db8:c::1/64    2001:db8:e::1/64        2001:db8:e::2/64
//!                                                                       lo: 203.0.113.{10,66}
//!                                                                           2001:db8:f::{10,66}
//! ```
//!
//! Inline (`LabOptions::inline`): the appliance is a bump in the wire. `a0` and `a1` carry no
//! addresses (not even link-local ones) and the appliance does not forward, so nothing crosses
//! it unless an XDP program forwards it (`blocker run --internet-iface a1`). Client and internet
//! share the client subnet: `i0` takes the gateway addresses the client already routes through,
//! so the client's configuration is the same in both topologies.
//!
//! ```text
//! client ns            appliance ns                     internet ns
//!   c0 ─────── veth ─────── a0   (no forwarding)  a1 ─────── veth ─────── i0
//!   192.0.2.2/24            -                     -                       192.0.2.1/24
//!   2001:db8:c::2/64                                                      2001:db8:c::1/64
//!                                                                       lo: 203.0.113.{10,66}
//!                                                                           2001:db8:f::{10,66}
//!                                                                           198.51.100.2, 2001:db8:e::2
//! ```
//! (`INTERNET_V4`/`INTERNET_V6` stay on the internet namespace's `lo`, so the DNS server and
//! the clients that name it work unchanged.)

use std::{
    path::Path,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use super::{LabOptions, Node, addr::*, cmd::run_checked};

/// Deadline of one set-up command (`ip`, `sysctl`, `ethtool`).
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long links may take to come up and addresses to become usable.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The namespace names of one lab: `blk<pid % 100000>-<n>-<role>`. The pid keeps parallel
/// test processes apart, `n` the labs of one process (tests run on threads).
pub(crate) fn pick_prefix() -> Result<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id() % 100_000;
    for _ in 0..1000 {
        let prefix = format!("blk{pid}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        // A leftover of a killed run that had the same pid: skip it rather than delete it
        // (it could also belong to a live run whose pid only matches modulo 100000).
        let taken = Node::ALL
            .iter()
            .any(|n| Path::new("/run/netns").join(ns_name(&prefix, *n)).exists());
        if !taken {
            return Ok(prefix);
        }
    }
    bail!("no free lab name for pid {pid} after 1000 tries: stale blk{pid}-* namespaces?")
}

pub(crate) fn ns_name(prefix: &str, node: Node) -> String {
    format!("{prefix}-{}", node.role())
}

/// Runs a set-up command; its failure is an error carrying its stderr.
pub(crate) fn must(cmd: Command) -> Result<String> {
    let stdout = run_checked(cmd, STEP_TIMEOUT)?;
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// `ip -n <ns> args...`: no fork into the namespace needed for iproute2 itself.
pub(crate) fn ip(ns: &str, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["-n", ns]).args(args);
    must(cmd)
}

/// `ip netns exec <ns> args...`.
pub(crate) fn in_ns(ns: &str, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(args);
    must(cmd)
}

fn sysctl(ns: &str, settings: &[&str]) -> Result<()> {
    let mut args = vec!["sysctl", "-q", "-w"];
    args.extend_from_slice(settings);
    in_ns(ns, &args).map(drop)
}

fn ethtool_k(ns: &str, dev: &str, features: &[&str]) -> Result<()> {
    let mut args = vec!["ethtool", "-K", dev];
    args.extend_from_slice(features);
    in_ns(ns, &args).map(drop)
}

/// Everything after the namespaces exist. `ns` is indexed by `Node::index`.
pub(crate) fn build(ns: &[String; 3], options: &LabOptions) -> Result<()> {
    let [client, appliance, internet] = [&ns[0], &ns[1], &ns[2]].map(String::as_str);

    for name in [client, appliance, internet] {
        // Before any device exists, so veths inherit `default`: no duplicate address detection,
        // IPv6 (link-local too) is usable the moment the link is up.
        sysctl(
            name,
            &[
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ],
        )?;
        ip(name, &["link", "set", "lo", "up"])?;
    }
    if !options.inline {
        sysctl(
            appliance,
            &["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"],
        )?;
    }

    // Each veth is created inside a lab namespace with its peer put straight into the other,
    // so no device ever appears in the host's namespace.
    ip(
        client,
        &[
            "link",
            "add",
            CLIENT_IF,
            "type",
            "veth",
            "peer",
            "name",
            APPLIANCE_CLIENT_IF,
            "netns",
            appliance,
        ],
    )?;
    ip(
        appliance,
        &[
            "link",
            "add",
            APPLIANCE_INTERNET_IF,
            "type",
            "veth",
            "peer",
            "name",
            INTERNET_IF,
            "netns",
            internet,
        ],
    )?;

    let v4 = |a: std::net::Ipv4Addr, len: u8| format!("{a}/{len}");
    let v6 = |a: std::net::Ipv6Addr, len: u8| format!("{a}/{len}");
    let links = [
        (client, CLIENT_IF),
        (appliance, APPLIANCE_CLIENT_IF),
        (appliance, APPLIANCE_INTERNET_IF),
        (internet, INTERNET_IF),
    ];
    let mut addresses: Vec<(&str, &str, String, String)> = vec![(
        client,
        CLIENT_IF,
        v4(CLIENT_V4, CLIENT_PREFIX_LEN_V4),
        v6(CLIENT_V6, CLIENT_PREFIX_LEN_V6),
    )];
    if options.inline {
        // The far side of the wire is the client's gateway.
        addresses.push((
            internet,
            INTERNET_IF,
            v4(APPLIANCE_CLIENT_V4, CLIENT_PREFIX_LEN_V4),
            v6(APPLIANCE_CLIENT_V6, CLIENT_PREFIX_LEN_V6),
        ));
    } else {
        addresses.extend([
            (
                appliance,
                APPLIANCE_CLIENT_IF,
                v4(APPLIANCE_CLIENT_V4, CLIENT_PREFIX_LEN_V4),
                v6(APPLIANCE_CLIENT_V6, CLIENT_PREFIX_LEN_V6),
            ),
            (
                appliance,
                APPLIANCE_INTERNET_IF,
                v4(APPLIANCE_INTERNET_V4, UPSTREAM_PREFIX_LEN_V4),
                v6(APPLIANCE_INTERNET_V6, UPSTREAM_PREFIX_LEN_V6),
            ),
            (
                internet,
                INTERNET_IF,
                v4(INTERNET_V4, UPSTREAM_PREFIX_LEN_V4),
                v6(INTERNET_V6, UPSTREAM_PREFIX_LEN_V6),
            ),
        ]);
    }
    for (name, dev, a4, a6) in &addresses {
        ip(name, &["addr", "add", a4, "dev", dev])?;
        ip(name, &["-6", "addr", "add", a6, "dev", dev, "nodad"])?;
    }
    let mut lo_addrs = SERVER_ADDRS.to_vec();
    if options.inline {
        lo_addrs.extend([
            std::net::IpAddr::V4(INTERNET_V4),
            std::net::IpAddr::V6(INTERNET_V6),
        ]);
    }
    for server in lo_addrs {
        let (addr, extra): (String, &[&str]) = match server {
            std::net::IpAddr::V4(a) => (format!("{a}/32"), &[]),
            std::net::IpAddr::V6(a) => (format!("{a}/128"), &["nodad"]),
        };
        let mut args = vec!["addr", "add", addr.as_str(), "dev", "lo"];
        args.extend_from_slice(extra);
        ip(internet, &args)?;
    }

    set_offloads(client, appliance, internet, options)?;

    if options.inline {
        // A wire has no addresses: not even the IPv6 link-local ones the kernel would add (and
        // send router solicitations and MLD reports from) when the link comes up.
        for dev in [APPLIANCE_CLIENT_IF, APPLIANCE_INTERNET_IF] {
            ip(
                appliance,
                &["link", "set", "dev", dev, "addrgenmode", "none"],
            )?;
        }
    }
    for (name, dev) in &links {
        ip(name, &["link", "set", dev, "up"])?;
    }

    let (gw4, gw6) = (
        APPLIANCE_CLIENT_V4.to_string(),
        APPLIANCE_CLIENT_V6.to_string(),
    );
    ip(client, &["route", "add", "default", "via", &gw4])?;
    ip(client, &["-6", "route", "add", "default", "via", &gw6])?;
    if !options.inline {
        // Inline, the internet namespace reaches the client subnet directly on i0.
        let (up4, up6) = (INTERNET_V4.to_string(), INTERNET_V6.to_string());
        ip(appliance, &["route", "add", SERVERS_V4, "via", &up4])?;
        ip(appliance, &["-6", "route", "add", SERVERS_V6, "via", &up6])?;
        let (back4, back6) = (
            APPLIANCE_INTERNET_V4.to_string(),
            APPLIANCE_INTERNET_V6.to_string(),
        );
        ip(internet, &["route", "add", "default", "via", &back4])?;
        ip(internet, &["-6", "route", "add", "default", "via", &back6])?;
    }

    wait_ready(&links)
}

/// Offloads off models a real wire: a veth with TSO/GSO hands whole 64 KB "super-packets" to
/// the peer (the XDP program would see one 2 KB ClientHello where a wire carries two
/// segments, design.md §2), and with checksum offload the L4 checksum is left unfinished
/// (CHECKSUM_PARTIAL) instead of being the real one a wire carries.
/// (The XDP_PASS programs on c0 and i0, `LabOptions::peer_xdp_pass`, are attached later by
/// `Lab::create`; note that attaching XDP to a veth makes the kernel turn TSO off on its peer.)
fn set_offloads(client: &str, appliance: &str, internet: &str, options: &LabOptions) -> Result<()> {
    let ends = [
        (client, CLIENT_IF),
        (appliance, APPLIANCE_CLIENT_IF),
        (appliance, APPLIANCE_INTERNET_IF),
        (internet, INTERNET_IF),
    ];
    if options.inline && options.offloads {
        // A frame redirected port to port (inline mode) leaves its skb, and with it the
        // "checksum not finished yet" mark of tx checksum offload, behind: it would reach the
        // far end with a partial TCP/UDP checksum and be dropped there. A frame from a real
        // wire always carries its finished checksum, so the outer ends (the hosts) finish
        // theirs; segmentation offloads stay as they are. (Turning tx checksumming off also
        // turns TSO off on those two ends.)
        for (name, dev) in [(client, CLIENT_IF), (internet, INTERNET_IF)] {
            ethtool_k(name, dev, &["tx", "off"])?;
        }
    }
    if !options.offloads {
        for (name, dev) in ends {
            ethtool_k(
                name,
                dev,
                &[
                    "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off",
                ],
            )?;
        }
    }
    Ok(())
}

/// Waits until every veth end is UP and no address is still tentative.
fn wait_ready(links: &[(&str, &str)]) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let mut pending = Vec::new();
        for (name, dev) in links {
            let link = ip(name, &["-o", "link", "show", "dev", dev])?;
            if !link.contains("state UP") {
                pending.push(format!("{name}/{dev} not up"));
            }
            let tentative = ip(name, &["-o", "addr", "show", "dev", dev, "tentative"])?;
            if !tentative.trim().is_empty() {
                pending.push(format!("{name}/{dev} has tentative addresses"));
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "lab links not ready after {READY_TIMEOUT:?}: {}",
                pending.join(", ")
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}
