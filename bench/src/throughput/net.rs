//! The benchmark's network: namespaces it creates and always removes (a guard), veth pairs,
//! addresses and routes, all inside those namespaces and on documentation addresses; threaded
//! NAPI and CPU pinning of the veths' receive work.
//!
//! ```text
//!  gen ns            dut ns of variant i                             sink ns
//!  tg<i> ─veth─ ti<i> [variant here] ─route─ to<i> [tc egress / devmap program: count, drop] ─veth─ ts<i> [XDP: count, drop]
//!  192.0.2.0/25      .1/25  ...  192.0.2.129/30 ── next hop 192.0.2.130
//!  2001:db8:c::/64   ::1/64 ...  2001:db8:f::1/64 ── next hop 2001:db8:f::2
//! ```
//!
//! Three ways through the DUT ([`Forwarding`]): routed (router mode: addresses, routes, static
//! neighbours), bridged (a Linux bridge joins `ti<i>` and `to<i>`, no addresses, br_netfilter's
//! calls into the IP hooks off) and wire (no addresses and nothing joining the ports: the
//! blocker's inline mode, or the plain XDP redirect, forwards them itself with a devmap
//! redirect).
//!
//! A frame leaves the DUT in one of two ways, and each is counted (by length) and dropped on the
//! DUT's CPU where a NIC driver would take it, into one count map:
//! - as an skb through `to<i>`'s transmit path (routing, a bridge): a tc egress program on
//!   `to<i>` counts and drops it. The DUT pays for routing or bridging and the transmit path up
//!   to the driver and frees the packet, as after sending it.
//! - as an XDP frame the blocker's inline mode redirects to `to<i>` through its `PORTS` devmap:
//!   that skips tc, so the same count-and-drop runs as a devmap program on `to<i>`'s entry of
//!   `PORTS` (throughput.rs sets it after the blocker has attached), which the kernel runs on
//!   each redirected frame just before it would call `to<i>`'s `ndo_xdp_xmit`. The DUT pays for
//!   the redirect and its batching up to the driver and frees the frame: the counterpart of the
//!   tc sink.
//!
//! A counting XDP program on `ts<i>` (threaded NAPI on the generator's CPU, above the
//! generator) catches anything that still reaches the sink's veth. It was tried as the sink of
//! the redirected frames and rejected: `ts<i>`'s receive (the veth ring, waking its thread on the
//! other CPU, the program, freeing the frame) cost about 200 ns per frame on the generator's
//! CPU, so at 2.2 Mpps forwarded the generator shared its CPU with 45% of sink work and no longer
//! kept the DUT's ring full (the DUT's thread was idle part of the round); on the DUT's CPU it
//! would have charged the blocker a whole veth receive per frame that no variant sent as an skb
//! pays. Frames `ts<i>`'s ring refused are counted (`to<i>`'s XDP transmit errors); there must be
//! none. (Earlier, before threaded NAPI, a veth sink with an XDP program ran its receive work in
//! softirq on the generator's CPU, which paused in bursts and left the DUT idle. No dummy device
//! in this kernel.)
//!
//! One DUT namespace per variant, each loaded once: switching a variant in is choosing which
//! veth the generator sends on, and nothing of one variant (a netfilter hook, a set) can slow
//! another.

use std::{
    fs,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

pub const GEN_MAC: &str = "02:00:5e:10:00:01";
pub const DUT_IN_MAC: &str = "02:00:5e:10:00:02";
pub const DUT_OUT_MAC: &str = "02:00:5e:10:00:03";
pub const SINK_MAC: &str = "02:00:5e:10:00:04";
/// `ti<i>`'s own address when the DUT is a bridge or a wire: the generator's frames still go to
/// [`DUT_IN_MAC`], which then belongs to no port of the DUT, so a bridge forwards them (to the
/// port its static entry names) instead of taking them for itself.
pub const DUT_WIRE_MAC: &str = "02:00:5e:10:00:05";

/// How the DUT takes frames from `ti<i>` to `to<i>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// IP forwarding: addresses on both veths, default routes to the sink, static neighbours.
    Routed,
    /// A Linux bridge `br0` with both veths as ports and a static entry sending [`DUT_IN_MAC`]
    /// out of `to<i>`; no addresses.
    Bridged,
    /// Nothing: the blocker's inline mode redirects between the ports; no addresses.
    Wire,
}

pub fn mac_bytes(mac: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(mac.split(':')) {
        *o = u8::from_str_radix(p, 16).expect("a MAC address");
    }
    out
}

/// Runs `cmd` to completion within `timeout` (killed after it); returns stdout, or an error
/// with the status and stderr.
pub fn run(mut cmd: Command, timeout: Duration) -> Result<String> {
    let what = format!("{:?}", cmd);
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| format!("starting {what}"))?;
    let deadline = Instant::now() + timeout;
    let out = loop {
        if child.try_wait()?.is_some() {
            break child.wait_with_output()?;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip netns exec <ns> args...`, bounded.
pub fn exec(ns: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(args);
    run(cmd, timeout)
}

fn ip(ns: &str, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["-n", ns]).args(args);
    run(cmd, Duration::from_secs(20))
}

/// The namespaces of one run. Dropping it deletes them (and so every veth and every XDP
/// attachment in them), also when the benchmark fails or panics.
pub struct Namespaces {
    prefix: String,
    created: Vec<String>,
}

impl Namespaces {
    pub fn new() -> Namespaces {
        Namespaces { prefix: format!("tput{}", std::process::id() % 100_000), created: Vec::new() }
    }

    /// Creates namespace `<prefix>-<role>` and returns its name.
    pub fn add(&mut self, role: &str) -> Result<String> {
        let name = format!("{}-{role}", self.prefix);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "add", &name]);
        run(cmd, Duration::from_secs(20)).context("creating a network namespace (needs root)")?;
        self.created.push(name.clone());
        ip(&name, &["link", "set", "lo", "up"])?;
        Ok(name)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.created.drain(..).rev() {
            // Only this process works in these namespaces, and its commands are all bounded
            // and finished by now: nothing else keeps them alive.
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "del", &name]);
            if let Err(e) = run(cmd, Duration::from_secs(20)) {
                eprintln!("warning: removing namespace {name}: {e:#}");
            }
        }
    }
}

/// The three namespaces' ends of variant `i`'s path.
pub struct Path {
    pub gen_dev: String,
    pub dut: String,
    pub dut_in: String,
    pub dut_out: String,
    pub sink_dev: String,
}

/// Builds variant `i`'s path: `tg<i>` (gen) ↔ `ti<i>` (dut), `to<i>` (dut) ↔ `ts<i>` (sink), and
/// the DUT's forwarding between them (see [`Forwarding`]). Routed: addresses, routes and static
/// neighbours (no ARP or ND during the run). Bridged and wire: no addresses, and IPv6 off in the
/// DUT's namespace, so it sends nothing of its own (no neighbour discovery, no MLD).
pub fn build_path(gen_ns: &str, dut: &str, sink_ns: &str, i: usize, how: Forwarding) -> Result<Path> {
    let p = Path { gen_dev: format!("tg{i}"), dut: dut.to_string(), dut_in: format!("ti{i}"), dut_out: format!("to{i}"), sink_dev: format!("ts{i}") };
    if how != Forwarding::Routed {
        // Before the veths exist, so they are made without IPv6.
        for sysctl in ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"] {
            exec(dut, &["sysctl", "-qw", sysctl], Duration::from_secs(10))?;
        }
    }
    let in_mac = if how == Forwarding::Routed { DUT_IN_MAC } else { DUT_WIRE_MAC };
    ip(gen_ns, &["link", "add", &p.gen_dev, "address", GEN_MAC, "type", "veth", "peer", "name", &p.dut_in, "address", in_mac, "netns", dut])?;
    ip(dut, &["link", "add", &p.dut_out, "address", DUT_OUT_MAC, "type", "veth", "peer", "name", &p.sink_dev, "address", SINK_MAC, "netns", sink_ns])?;
    ip(gen_ns, &["link", "set", &p.gen_dev, "up"])?;
    ip(sink_ns, &["link", "set", &p.sink_dev, "up"])?;
    match how {
        Forwarding::Routed => route(dut, &p)?,
        Forwarding::Bridged => {
            // This kernel has br_netfilter built in, and a new namespace starts with it on: every
            // bridged IPv4/IPv6 frame would also go through the IP family's netfilter hooks (an
            // skb extension, header checks, three more hook points). A bridge filtered with
            // nftables' netdev or bridge family needs none of that, and operators turn it off.
            for sysctl in ["net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0", "net.bridge.bridge-nf-call-arptables=0"] {
                exec(dut, &["sysctl", "-qw", sysctl], Duration::from_secs(10))?;
            }
            ip(dut, &["link", "add", "br0", "type", "bridge", "stp_state", "0"])?;
            ip(dut, &["link", "set", &p.dut_in, "master", "br0"])?;
            ip(dut, &["link", "set", &p.dut_out, "master", "br0"])?;
            ip(dut, &["link", "set", "br0", "up"])?;
            ip(dut, &["link", "set", &p.dut_in, "up"])?;
            ip(dut, &["link", "set", &p.dut_out, "up"])?;
            // A known destination, as in a bridge that has learnt its neighbours: forwarded out
            // of one port, not flooded.
            let mut cmd = Command::new("bridge");
            cmd.args(["-n", dut, "fdb", "replace", DUT_IN_MAC, "dev", &p.dut_out, "master", "static"]);
            run(cmd, Duration::from_secs(20))?;
        }
        Forwarding::Wire => {
            ip(dut, &["link", "set", &p.dut_in, "up"])?;
            ip(dut, &["link", "set", &p.dut_out, "up"])?;
        }
    }
    Ok(p)
}

/// Router mode: forwarding on, addresses, default routes to the sink, static neighbours.
fn route(dut: &str, p: &Path) -> Result<()> {
    for sysctl in [
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
    ] {
        exec(dut, &["sysctl", "-qw", sysctl], Duration::from_secs(10))?;
    }
    ip(dut, &["addr", "add", "192.0.2.1/25", "dev", &p.dut_in])?;
    ip(dut, &["addr", "add", "2001:db8:c::1/64", "dev", &p.dut_in, "nodad"])?;
    ip(dut, &["addr", "add", "192.0.2.129/30", "dev", &p.dut_out])?;
    ip(dut, &["addr", "add", "2001:db8:f::1/64", "dev", &p.dut_out, "nodad"])?;
    ip(dut, &["link", "set", &p.dut_in, "up"])?;
    ip(dut, &["link", "set", &p.dut_out, "up"])?;
    ip(dut, &["neigh", "replace", "192.0.2.130", "lladdr", SINK_MAC, "dev", &p.dut_out, "nud", "permanent"])?;
    ip(dut, &["neigh", "replace", "2001:db8:f::2", "lladdr", SINK_MAC, "dev", &p.dut_out, "nud", "permanent"])?;
    ip(dut, &["route", "add", "default", "via", "192.0.2.130", "dev", &p.dut_out])?;
    ip(dut, &["-6", "route", "add", "default", "via", "2001:db8:f::2", "dev", &p.dut_out])?;
    Ok(())
}

/// Turns on threaded NAPI for `dev` (which must have NAPI already: an XDP program) and pins its
/// kernel thread `napi/<dev>-<id>` to `cpu`, real-time at `prio`. Returns the thread's pid.
pub fn thread_napi(ns: &str, dev: &str, cpu: usize, prio: i32) -> Result<i32> {
    exec(ns, &["sh", "-c", &format!("echo 1 > /sys/class/net/{dev}/threaded")], Duration::from_secs(10))
        .with_context(|| format!("threaded NAPI for {ns}/{dev}"))?;
    let want = format!("napi/{dev}-");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc")?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            if fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim_end().starts_with(&want)) {
                found.push(pid);
            }
        }
        match found.as_slice() {
            [pid] => {
                super::bpf::pin(*pid, cpu)?;
                super::bpf::realtime(*pid, prio)?;
                return Ok(*pid);
            }
            [] if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            [] => bail!("no NAPI thread {want}* appeared"),
            more => bail!("several NAPI threads named {want}*: {more:?} (another run with the same device names?)"),
        }
    }
}

/// A veth's ethtool statistics by name.
pub fn ethtool_stats(ns: &str, dev: &str) -> Result<std::collections::BTreeMap<String, u64>> {
    let out = exec(ns, &["ethtool", "-S", dev], Duration::from_secs(10))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect())
}
