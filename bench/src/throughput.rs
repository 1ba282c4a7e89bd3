//! `blocker-bench throughput`: packets per second through a device under test (DUT) that
//! forwards a realistic mix between two veths, with the blocker and with the alternatives an ISP
//! would otherwise use, all holding the same list (issue 7, design.md §5).
//!
//! - Generator: an XDP program run by BPF_PROG_TEST_RUN with live frames (BPF_F_TEST_XDP_LIVE_FRAMES)
//!   in the `gen` namespace: one test run per variant and round sends a round's worth of frames
//!   out of the variant's veth with XDP_TX, each frame made from the next template of the mix
//!   and spread over destinations and sources (bpf.rs; the mix: traffic.rs). One long run, not
//!   many short ones: setting up and tearing down a live-frames run takes tens of ms here.
//! - DUT: one namespace per variant (net.rs), loaded once, in two groups ([`Mode`]), each
//!   compared within itself. Router mode (IP forwarding between the veths): `blocker` (native XDP
//!   on the receiving veth, the list's prefixes and as many names), nftables interval sets on the
//!   netdev ingress hook and on inet prerouting (raw priority, notrack), iptables raw PREROUTING
//!   with ipset `hash:net`, and plain forwarding. Inline mode (a bump in the wire, no
//!   addresses): `blocker inline` (the blocker's inline mode: allowed frames redirected from port
//!   to port through its devmap, never entering the kernel stack), a Linux bridge with nftables
//!   on the netdev ingress hook of the receiving port or on the bridge family's forward hook, a
//!   plain bridge, and a plain XDP redirect (every frame redirected unjudged: what forwarding in
//!   XDP costs before any filter). The variants without the blocker get `return XDP_PASS` on the receiving
//!   veth: a veth takes redirected frames only with an XDP program.
//! - Sink: every frame the DUT sends on is counted by length and dropped on the DUT's CPU where a
//!   NIC driver would take it: a tc egress program on the DUT's outgoing veth for frames sent as
//!   skbs (routed or bridged), the same count-and-drop as a devmap program on the outgoing veth's
//!   devmap entry for frames redirected with XDP, which skip tc (net.rs says how and why). Both
//!   count into one map, as does a catch-all XDP program on the sink's veth. Every class of the mix has its
//!   own length, so the counts also tell whether listed frames got through.
//! - CPUs: the receive work of the DUT's veth runs in a threaded-NAPI kernel thread pinned to
//!   `--tp-dut-cpu`, so the DUT is that thread (with the sink's programs); the generator,
//!   the veth that takes the blocker's resets and the sink's veth run on `--tp-gen-cpu`. All are
//!   real-time (SCHED_FIFO) for the measurement: on a shared machine, other sessions' builds
//!   otherwise take half the CPU (bpf::realtime). A round counts as DUT-bound when the generator
//!   overflowed the DUT's receive ring (ring drops), the DUT thread was busy near the real-time
//!   limit (95%) and the sink refused nothing.
//! - Rounds: after a short warm-up, `--tp-rounds` rounds of `--tp-seconds` per variant, the
//!   variants in a rotated order each round. Reported: the median of delivered packets per
//!   second per variant, and ratios to the blocker of the same mode.

pub mod bpf;
mod filters;
pub mod net;
mod traffic;

use std::{
    ffi::CString,
    fs,
    os::fd::OwnedFd,
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use blocker_user::datapath::{Datapath, Options as DpOptions};

use bpf::{ArrayMap, LEN_BUCKETS, Program};
use filters::NftHook;
use traffic::Class;
use net::{Forwarding, Namespaces};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Blocker,
    BlockerXdpForward,
    BlockerXdpForwardNoCache,
    NftIngress,
    NftPrerouting,
    IptablesIpset,
    Plain,
    BlockerInline,
    BridgeNftIngress,
    BridgeNftForward,
    PlainBridge,
    XdpRedirect,
}

/// How the DUT sits in the network: the two groups of variants, each compared within itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// An edge router: allowed traffic goes on through the kernel's IP forwarding.
    Router,
    /// A bump in the wire: two ports, no addresses; allowed traffic goes from one port to the
    /// other (the blocker's devmap redirect, or a Linux bridge).
    Inline,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Router, Mode::Inline];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Router => "router mode",
            Mode::Inline => "inline mode",
        }
    }

    /// The blocker's variant in this mode, the reference of the mode's ratios.
    pub fn blocker(self) -> Variant {
        match self {
            Mode::Router => Variant::Blocker,
            Mode::Inline => Variant::BlockerInline,
        }
    }

    /// The variant that only forwards, the mode's baseline.
    pub fn plain(self) -> Variant {
        match self {
            Mode::Router => Variant::Plain,
            Mode::Inline => Variant::PlainBridge,
        }
    }
}

impl Variant {
    pub const ALL: [Variant; 12] = [
        Variant::Blocker,
        Variant::BlockerXdpForward,
        Variant::BlockerXdpForwardNoCache,
        Variant::NftIngress,
        Variant::NftPrerouting,
        Variant::IptablesIpset,
        Variant::Plain,
        Variant::BlockerInline,
        Variant::BridgeNftIngress,
        Variant::BridgeNftForward,
        Variant::PlainBridge,
        Variant::XdpRedirect,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Blocker => "blocker",
            Variant::BlockerXdpForward => "blocker XDP forwarding",
            Variant::BlockerXdpForwardNoCache => "blocker XDP forwarding without route cache",
            Variant::NftIngress => "nftables netdev ingress",
            Variant::NftPrerouting => "nftables prerouting + notrack",
            Variant::IptablesIpset => "iptables raw + ipset hash:net",
            Variant::Plain => "plain forwarding",
            Variant::BlockerInline => "blocker inline",
            Variant::BridgeNftIngress => "bridge + nftables netdev ingress",
            Variant::BridgeNftForward => "bridge + nftables bridge forward",
            Variant::PlainBridge => "plain bridge",
            Variant::XdpRedirect => "plain XDP redirect",
        }
    }

    /// Parses `--tp-variants`: names as [`Variant::name`] spells them, separated by commas.
    pub fn parse_list(list: &str) -> Result<Vec<Variant>> {
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                Variant::ALL.iter().copied().find(|v| v.name() == n).ok_or_else(|| {
                    let known: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
                    anyhow::anyhow!("--tp-variants: no variant is called {n:?}; the variants are: {}", known.join(", "))
                })
            })
            .collect()
    }

    pub fn mode(self) -> Mode {
        match self {
            Variant::Blocker | Variant::BlockerXdpForward | Variant::BlockerXdpForwardNoCache | Variant::NftIngress | Variant::NftPrerouting | Variant::IptablesIpset | Variant::Plain => {
                Mode::Router
            }
            Variant::BlockerInline | Variant::BridgeNftIngress | Variant::BridgeNftForward | Variant::PlainBridge | Variant::XdpRedirect => Mode::Inline,
        }
    }

    pub fn is_nft(self) -> bool {
        matches!(self, Variant::NftIngress | Variant::NftPrerouting | Variant::BridgeNftIngress | Variant::BridgeNftForward)
    }

    pub fn is_blocker(self) -> bool {
        matches!(self, Variant::Blocker | Variant::BlockerXdpForward | Variant::BlockerXdpForwardNoCache | Variant::BlockerInline)
    }

    /// Router mode with `--xdp-forward`.
    pub fn forwards_in_xdp(self) -> bool {
        matches!(self, Variant::BlockerXdpForward | Variant::BlockerXdpForwardNoCache)
    }

    pub fn blocks(self) -> bool {
        !matches!(self, Variant::Plain | Variant::PlainBridge | Variant::XdpRedirect)
    }

    fn forwarding(self) -> Forwarding {
        match self.mode() {
            Mode::Router => Forwarding::Routed,
            Mode::Inline if self.is_blocker() || self == Variant::XdpRedirect => Forwarding::Wire,
            Mode::Inline => Forwarding::Bridged,
        }
    }
}

pub struct Options {
    pub prefixes: usize,
    pub names: usize,
    pub rounds: usize,
    pub seconds: f64,
    pub gen_cpu: usize,
    pub dut_cpu: usize,
    /// Only the classes of the mix whose name contains this.
    pub only: Option<String>,
    /// Only these variants (empty: all).
    pub variants: Vec<Variant>,
}

/// One variant in one round.
#[derive(Clone, Debug)]
pub struct Round {
    pub round: usize,
    pub variant: Variant,
    pub seconds: f64,
    /// Frames the generator sent (test-run repetitions).
    pub offered: u64,
    /// Frames the DUT took in and judged (forwarded or stopped): its receiving veth's XDP count.
    pub received: u64,
    /// Frames the DUT forwarded (counted where it transmits them).
    pub delivered: u64,
    /// Of those, frames of listed classes.
    pub listed_delivered: u64,
    /// Frames of a length no class has (should be 0).
    pub unknown_delivered: u64,
    /// Frames that came back to the generator's veth (the blocker's resets).
    pub replies: u64,
    /// The DUT's NAPI thread's busy share of the round, 0..1.
    pub dut_busy: f64,
    /// Its share of the round spent runnable but waiting for the CPU (others' work), 0..1.
    pub dut_waiting: f64,
    /// What the blocker counted as blocked (0 for the others).
    pub blocker_blocked: u64,
    /// The DUT's receive ring overflowed: frames the generator sent that the DUT never took.
    pub ring_drops: u64,
    /// Frames the DUT redirected into `to<i>` that the sink's ring refused (0 when the sink
    /// keeps up; only XDP-redirected frames go that way).
    pub sink_drops: u64,
    /// The sink's NAPI thread's busy share of the round, 0..1 (on the generator's CPU).
    pub sink_busy: f64,
}

impl Round {
    /// Frames the DUT handled per second: the throughput.
    pub fn pps(&self) -> f64 {
        self.received as f64 / self.seconds
    }
    /// Frames it forwarded per second.
    pub fn forwarded_pps(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }
    pub fn offered_pps(&self) -> f64 {
        self.offered as f64 / self.seconds
    }
    /// The DUT thread's busy time per frame handled, ns.
    pub fn ns_per_frame(&self) -> f64 {
        self.seconds * self.dut_busy * 1e9 / (self.received.max(1) as f64)
    }
}

/// Per variant: load time and how it is set up.
pub struct Setup {
    pub variant: Variant,
    pub load: Duration,
    pub detail: String,
}

/// A blocker variant's round with BPF run-time statistics on.
pub struct ProgramTime {
    pub variant: Variant,
    /// Runs of the blocking program in the round.
    pub runs: u64,
    /// The program's mean time per run, as the kernel measured it.
    pub program_ns: f64,
    /// The DUT thread's busy time per frame in the same round (program, forwarding, freeing).
    pub dut_ns_per_frame: f64,
    /// XDP forwarding: the share of the frames it forwarded in the round whose route came from
    /// the route cache.
    pub route_cached: Option<f64>,
}

pub struct Outcome {
    pub program_times: Vec<ProgramTime>,
    /// The report files' name: `throughput`, or `throughput-<filter>` for part of the mix.
    pub stem: String,
    pub rounds: Vec<Round>,
    pub setups: Vec<Setup>,
    pub classes: Vec<(String, u32, bool, usize)>,
    pub prefixes_v4: usize,
    pub prefixes_v6: usize,
    pub names: usize,
    pub tools: String,
    pub options: String,
}

fn check_stop() -> Result<()> {
    crate::stop::check()
}

/// The report files' name. A run of some variants only gets its own, so it never replaces
/// the full comparison.
fn stem(o: &Options) -> String {
    let mut stem = String::from("throughput");
    if let Some(f) = &o.only {
        stem.push('-');
        stem.extend(f.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }));
    }
    if !o.variants.is_empty() {
        stem.push_str("-some-variants");
    }
    stem
}

pub fn run(o: &Options) -> Result<Outcome> {
    // Ctrl-C then ends the run through the normal error path, so the namespaces are removed.
    crate::stop::install();
    let classes = traffic::mix(o.only.as_deref())?;
    let schedule = traffic::schedule(&classes);
    eprintln!("throughput: building the list ({} prefixes)", o.prefixes);
    let list = filters::prefixes(o.prefixes);
    let scratch = std::env::temp_dir().join(format!("tput{}", std::process::id()));
    fs::create_dir_all(&scratch)?;
    let _scratch_guard = RemoveDir(scratch.clone());

    // Declared before everything attached in them, so dropped (deleted) last.
    let mut ns = Namespaces::new();
    let gen_ns = ns.add("gen")?;
    let sink_ns = ns.add("sink")?;
    let sink_counts = ArrayMap::new("tput_sink", 8, LEN_BUCKETS)?;
    let reply_counts = ArrayMap::new("tput_reply", 8, LEN_BUCKETS)?;
    let sink_prog = Program::count_drop_egress(&sink_counts)?;
    let reply_prog = Program::count_drop(&reply_counts)?;
    let sink_xdp = Program::count_drop(&sink_counts)?;
    let sink_devmap = Program::count_drop_devmap(&sink_counts)?;
    let pass_prog = Program::pass()?;
    let gen_state = ArrayMap::new("tput_gen", 8, 1)?;
    let gen_templates = ArrayMap::new("tput_tmpl", bpf::COPY_BYTES + 8, schedule.len() as u32)?;
    for (slot, &(c, t)) in schedule.iter().enumerate() {
        gen_templates.set(slot as u32, &bpf::template_value(&classes[c].templates[t]))?;
    }
    let gen_prog = Program::generator(&gen_state, &gen_templates)?;
    let base_frame = bpf::base_frame(classes.iter().map(Class::len).max().unwrap_or(1514));

    let mut links: Vec<OwnedFd> = Vec::new();
    let mut datapaths: Vec<(Variant, Datapath)> = Vec::new();
    let mut paths = Vec::new();
    let mut setups = Vec::new();
    // The devmaps already given a sink (bpf::own_devmap_with_entry).
    let mut sink_maps = Vec::new();
    for (i, &v) in Variant::ALL.iter().enumerate() {
        check_stop()?;
        if !o.variants.is_empty() && !o.variants.contains(&v) {
            continue;
        }
        let dut = ns.add(&format!("dut{i}"))?;
        let path = net::build_path(&gen_ns, &dut, &sink_ns, i, v.forwarding())?;
        links.push(sink_prog.attach(&dut, &path.dut_out)?);
        links.push(sink_xdp.attach(&sink_ns, &path.sink_dev)?);
        links.push(reply_prog.attach(&gen_ns, &path.gen_dev)?);
        eprintln!("throughput: loading {}", v.name());
        let started = Instant::now();
        let detail = match v {
            Variant::Blocker | Variant::BlockerXdpForward | Variant::BlockerXdpForwardNoCache | Variant::BlockerInline => {
                let set = filters::blocker_set(&list, o.names);
                let mut dp = Datapath::load(DpOptions::default()).context("loading the XDP program (root needed)")?;
                let report = dp.install(&set)?;
                drop(set);
                let (sub, internet) = (path.dut_in.clone(), path.dut_out.clone());
                let attached = bpf::in_netns(&dut, || {
                    if v == Variant::Blocker {
                        return Ok(vec![dp.attach(&sub, false)?]);
                    }
                    if v.forwards_in_xdp() {
                        // As `blocker run --xdp-forward` sets it up (daemon/attach.rs), with
                        // `--no-route-cache` or without. Nothing changes the DUT's routes
                        // during the rounds, so no follower of routing changes is needed.
                        let ports = dp.set_xdp_forward(&sub, std::slice::from_ref(&internet))?;
                        if let Some(p) = ports.iter().find(|p| !p.forwarding) {
                            bail!("XDP forwarding cannot use {}: {}", p.name, p.why_not.as_deref().unwrap_or("?"));
                        }
                        dp.set_route_cache(v == Variant::BlockerXdpForward)?;
                        return Ok(vec![dp.attach(&sub, false)?]);
                    }
                    // As `blocker run --internet-iface` attaches (daemon/attach.rs): the ports
                    // into PORTS, then blocker_wire on the internet port, then the blocking
                    // program on the subscriber port.
                    dp.set_ports(&sub, &internet)?;
                    let wire = dp.attach_wire(&internet, false)?;
                    Ok(vec![dp.attach(&sub, false)?, wire])
                })?;
                if let Some(a) = attached.iter().find(|a| a.mode != blocker_user::datapath::AttachMode::Native) {
                    bail!("the blocker attached in {} mode, not native", a.mode.name());
                }
                if v == Variant::BlockerInline {
                    // The sink of redirected frames: the count-and-drop program on the internet
                    // port's PORTS entry (net.rs says why).
                    let ports = bpf::own_devmap_with_entry("PORTS", bpf::DEVMAP, 0, &mut sink_maps)?;
                    bpf::in_netns(&dut, || bpf::set_devmap_sink(&ports, 0, &internet, &sink_devmap))?;
                }
                if v.forwards_in_xdp() {
                    // The same sink on the outgoing veth's FORWARD_PORTS entry (keyed by its
                    // interface index).
                    let out = bpf::in_netns(&dut, || bpf::ifindex_of(&internet))?;
                    let ports = bpf::own_devmap_with_entry("FORWARD_PORTS", bpf::DEVMAP_HASH, out, &mut sink_maps)?;
                    bpf::in_netns(&dut, || bpf::set_devmap_sink(&ports, out, &internet, &sink_devmap))?;
                }
                datapaths.push((v, dp));
                let how = if v == Variant::Blocker {
                    "native XDP on the receiving veth".to_string()
                } else if v.forwards_in_xdp() {
                    let (flag, lookup) = if v == Variant::BlockerXdpForward {
                        ("", "the FIB's answer from the per-CPU route cache after a flow's first frame")
                    } else {
                        (" --no-route-cache", "a FIB lookup for every frame")
                    };
                    format!("router mode with XDP forwarding (`blocker run --xdp-forward {}{flag}`): native XDP on the receiving veth; allowed frames routed by the program ({lookup}; TTL, MACs) and redirected {} → {} through FORWARD_PORTS, where the sink's devmap program counts and drops them", path.dut_out, path.dut_in, path.dut_out)
                } else {
                    format!("inline mode (`blocker run --internet-iface {}`): the ports in PORTS, native XDP on both veths (blocker_wire on {}); allowed frames redirected {} → {}, where the sink's devmap program counts and drops them", path.dut_out, path.dut_out, path.dut_in, path.dut_out)
                };
                format!("{how}; {} prefixes + {} names installed in {:.1} s; TCP resets on", list.len(), o.names, report.elapsed.as_secs_f64())
            }
            Variant::NftIngress | Variant::NftPrerouting | Variant::BridgeNftIngress | Variant::BridgeNftForward => {
                links.push(pass_prog.attach(&dut, &path.dut_in)?);
                let hook = match v {
                    Variant::NftIngress | Variant::BridgeNftIngress => NftHook::Ingress,
                    Variant::NftPrerouting => NftHook::PreroutingNotrack,
                    _ => NftHook::BridgeForward,
                };
                filters::load_nft(&dut, &scratch, &list, hook, &path.dut_in)?;
                let bridge = if v.mode() == Mode::Inline { "a Linux bridge joins the two veths; " } else { "" };
                bridge.to_string()
                    + match hook {
                        NftHook::Ingress => "table netdev, chain on the ingress hook of the receiving veth: `ip daddr @block4 drop`, `ip6 daddr @block6 drop`; interval sets",
                        NftHook::PreroutingNotrack => "table inet, chain on prerouting at priority raw: the same two drops, then `notrack`; interval sets",
                        NftHook::BridgeForward => "table bridge, chain on the bridge's forward hook: `ip daddr @block4 drop`, `ip6 daddr @block6 drop`; interval sets",
                    }
            }
            Variant::IptablesIpset => {
                links.push(pass_prog.attach(&dut, &path.dut_in)?);
                filters::load_ipset(&dut, &scratch, &list)?;
                "iptables/ip6tables -t raw PREROUTING: `-m set --match-set tput4|tput6 dst -j DROP`, then `-j CT --notrack`; ipset hash:net".into()
            }
            Variant::Plain => {
                links.push(pass_prog.attach(&dut, &path.dut_in)?);
                "routing only".into()
            }
            Variant::XdpRedirect => {
                // Its own devmap: entry 0 the outgoing veth with the sink's devmap program, as
                // the blocker inline's PORTS gets it.
                let ports = ArrayMap::devmap("tput_ports", 1)?;
                let prog = Program::redirect(&ports)?;
                let out = path.dut_out.clone();
                bpf::in_netns(&dut, || bpf::set_devmap_sink(ports.fd(), 0, &out, &sink_devmap))?;
                links.push(prog.attach(&dut, &path.dut_in)?);
                "`bpf_redirect_map` of every frame to the outgoing veth, unjudged (native XDP on the receiving veth, the same sink as the blocker inline): the cost of forwarding in XDP before any filter".into()
            }
            Variant::PlainBridge => {
                links.push(pass_prog.attach(&dut, &path.dut_in)?);
                "a Linux bridge joins the two veths (static entry for the destination MAC, no STP), no filter".into()
            }
        };
        let load = started.elapsed();
        eprintln!("throughput: {} ready in {:.1} s", v.name(), load.as_secs_f64());
        let dut_thread = net::thread_napi(&dut, &path.dut_in, o.dut_cpu, DUT_PRIO)?;
        net::thread_napi(&gen_ns, &path.gen_dev, o.gen_cpu, REPLY_PRIO)?;
        let sink_thread = net::thread_napi(&sink_ns, &path.sink_dev, o.gen_cpu, SINK_PRIO)?;
        setups.push(Setup { variant: v, load, detail });
        paths.push((v, path, dut_thread, sink_thread));
    }

    let measure = |round: usize, vi: usize, frames: u32| -> Result<Round> {
        let (v, path, dut_thread, sink_thread) = &paths[vi];
        let sink_before = sink_counts.counters()?;
        let replies_before = reply_counts.counters()?;
        let sched_before = sched_ns(*dut_thread)?;
        let sink_sched_before = sched_ns(*sink_thread)?;
        let blocked_before = blocked(&datapaths, *v)?;
        let ring_before = ring_drops(&gen_ns, &path.gen_dev)?;
        let sink_drops_before = ring_drops(&path.dut, &path.dut_out)?;
        let received_before = received(&path.dut, &path.dut_in)?;
        let (offered, elapsed) = generate(&gen_prog, &gen_ns, &path.gen_dev, &base_frame, frames, o.gen_cpu)?;
        let sched_after = sched_ns(*dut_thread)?;
        let sink_sched_after = sched_ns(*sink_thread)?;
        let (busy, waiting) = (sched_after.0 - sched_before.0, sched_after.1 - sched_before.1);
        // Let the rings drain before counting what arrived.
        thread::sleep(Duration::from_millis(100));
        let sink: Vec<u64> = sink_counts.counters()?.iter().zip(&sink_before).map(|(a, b)| a - b).collect();
        let replies: u64 = reply_counts.counters()?.iter().zip(&replies_before).map(|(a, b)| a - b).sum();
        let mut r = Round {
            round,
            variant: *v,
            seconds: elapsed.as_secs_f64(),
            offered,
            delivered: sink.iter().sum(),
            listed_delivered: 0,
            unknown_delivered: 0,
            replies,
            dut_busy: busy as f64 / elapsed.as_nanos() as f64,
            dut_waiting: waiting as f64 / elapsed.as_nanos() as f64,
            blocker_blocked: blocked(&datapaths, *v)? - blocked_before,
            ring_drops: ring_drops(&gen_ns, &path.gen_dev)? - ring_before,
            sink_drops: ring_drops(&path.dut, &path.dut_out)? - sink_drops_before,
            sink_busy: (sink_sched_after.0 - sink_sched_before.0) as f64 / elapsed.as_nanos() as f64,
            received: received(&path.dut, &path.dut_in)? - received_before,
        };
        for (len, &n) in sink.iter().enumerate() {
            match classes.iter().find(|c| c.len() == len) {
                Some(c) if c.listed => r.listed_delivered += n,
                Some(_) => {}
                None => r.unknown_delivered += n,
            }
        }
        Ok(r)
    };

    // Warm-up, and the frames per round for each variant: the generator's rate with that
    // variant (the sink's work shares the generator's CPU) times the round's length.
    eprintln!("throughput: warm-up");
    let mut frames = Vec::new();
    for vi in 0..paths.len() {
        check_stop()?;
        let r = measure(0, vi, WARM_UP_FRAMES)?;
        let n = (r.offered_pps() * o.seconds).clamp(1e5, MAX_FRAMES as f64) as u32;
        eprintln!("  {:<32} generator {:.2} Mpps: {n} frames per round", r.variant.name(), r.offered_pps() / 1e6);
        frames.push(n);
    }
    let mut rounds = Vec::new();
    for round in 1..=o.rounds {
        for k in 0..paths.len() {
            check_stop()?;
            let vi = (round - 1 + k) % paths.len();
            let r = measure(round, vi, frames[vi])?;
            eprintln!(
                "  round {round} {:<32} {:>6.3} Mpps handled, {:>6.3} forwarded, {:>6.3} offered; DUT busy {:>3.0}% waiting {:>3.0}%; sink busy {:>3.0}%; listed through {}, replies {}, ring drops {}, sink drops {}",
                r.variant.name(),
                r.pps() / 1e6,
                r.forwarded_pps() / 1e6,
                r.offered_pps() / 1e6,
                100.0 * r.dut_busy,
                100.0 * r.dut_waiting,
                100.0 * r.sink_busy,
                r.listed_delivered,
                r.replies,
                r.ring_drops,
                r.sink_drops
            );
            rounds.push(r);
        }
    }
    // One more round per blocker variant with the kernel's run-time statistics on: what the
    // program itself takes per frame on live traffic, beside the DUT's whole time per frame.
    // Apart from the measured rounds, since the statistics add two clock reads to every run.
    let mut program_times = Vec::new();
    {
        let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("turning on BPF run-time statistics")?;
        for (vi, (v, ..)) in paths.iter().enumerate() {
            let Some((_, dp)) = datapaths.iter().find(|(d, _)| d == v) else { continue };
            check_stop()?;
            let (runs_before, time_before) = dp.program_runs()?;
            let forward_before = dp.forward_counts()?;
            let r = measure(o.rounds + 1, vi, frames[vi])?;
            let (runs_after, time_after) = dp.program_runs()?;
            let forward_after = dp.forward_counts()?;
            let route_cached = v.forwards_in_xdp().then(|| {
                let forwarded = forward_after.outcomes[0] - forward_before.outcomes[0];
                (forward_after.route_cached - forward_before.route_cached) as f64 / forwarded.max(1) as f64
            });
            let runs = runs_after - runs_before;
            let program_ns = (time_after - time_before).as_nanos() as f64 / runs.max(1) as f64;
            eprintln!("  {:<32} program {program_ns:.0} ns per run ({runs} runs) of {:.0} ns per frame", v.name(), r.ns_per_frame());
            program_times.push(ProgramTime { variant: *v, runs, program_ns, dut_ns_per_frame: r.ns_per_frame(), route_cached });
        }
    }
    drop(links);
    drop(datapaths);
    drop(ns);
    Ok(Outcome {
        program_times,
        stem: stem(o),
        rounds,
        setups,
        classes: classes.iter().map(|c| (c.name.to_string(), c.share, c.listed, c.len())).collect(),
        prefixes_v4: list.v4.len(),
        prefixes_v6: list.v6.len(),
        names: o.names,
        tools: filters::tool_versions(),
        options: format!(
            "{} rounds × {:.1} s per variant after a warm-up; the generator, the veth that takes the blocker's resets and the sink's veth (threaded NAPI) on CPU {}, the DUT's receive thread (threaded NAPI, with the sink's egress program) on CPU {}",
            o.rounds, o.seconds, o.gen_cpu, o.dut_cpu
        ) + &o.only.as_ref().map(|f| format!("; only the classes of the mix whose name contains \"{f}\"")).unwrap_or_default(),
    })
}

/// Real-time priorities (SCHED_FIFO): the generator; above it, on the same CPU, the veth that
/// takes the blocker's resets (so they do not pile up); the DUT's thread on its own CPU.
const GEN_PRIO: i32 = 10;
const REPLY_PRIO: i32 = 20;
/// The sink's veth (XDP-redirected frames) on the generator's CPU, above the generator, so it
/// drains its ring as frames come and never holds the DUT up.
const SINK_PRIO: i32 = 20;
const DUT_PRIO: i32 = 10;

/// Frames of the warm-up test run per variant.
const WARM_UP_FRAMES: u32 = 300_000;
/// At most this many frames per test run (a bound on a round's length whatever the rate).
const MAX_FRAMES: u32 = 100_000_000;

/// One live-frames test run of `frames` frames from `gen_ns` out of `dev`, on a thread pinned
/// to `cpu`, real-time (the thread ends with the run, and its scheduling class with it). Returns the frames sent and the time taken.
fn generate(prog: &Program, gen_ns: &str, dev: &str, base: &[u8], frames: u32, cpu: usize) -> Result<(u64, Duration)> {
    let dev = CString::new(dev)?;
    bpf::in_netns(gen_ns, || {
        bpf::pin(0, cpu)?;
        bpf::realtime(0, GEN_PRIO)?;
        let ifindex = bpf::ifindex(&dev)?;
        let started = Instant::now();
        prog.run_live(base, ifindex, frames.min(MAX_FRAMES)).context("BPF_PROG_TEST_RUN with live frames")?;
        Ok((u64::from(frames), started.elapsed()))
    })
}

/// A task's time on a CPU so far and its time waiting for one (runnable, not running), ns
/// (/proc/<pid>/schedstat).
fn sched_ns(pid: i32) -> Result<(u64, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/schedstat")).with_context(|| format!("reading the schedstat of NAPI thread {pid}"))?;
    let mut f = s.split_whitespace().map(str::parse::<u64>);
    Ok((f.next().context("empty schedstat")??, f.next().context("short schedstat")??))
}

fn blocked(datapaths: &[(Variant, Datapath)], v: Variant) -> Result<u64> {
    let Some((_, dp)) = datapaths.iter().find(|(d, _)| *d == v) else { return Ok(0) };
    let c = dp.counters()?;
    Ok(c.rows().iter().filter(|r| r.action != "pass" && r.action != "shadow").map(|r| r.packets).sum())
}

/// Frames the DUT's receiving veth has run through its XDP program (the blocker's or XDP_PASS).
fn received(ns: &str, dev: &str) -> Result<u64> {
    let stats = net::ethtool_stats(ns, dev)?;
    Ok(stats.iter().filter(|(k, _)| k.ends_with("xdp_packets")).map(|(_, v)| v).sum())
}

/// Frames the veth `dev` could not hand to its peer with XDP (the peer's ring was full): on
/// `tg<i>` the DUT's receive ring, on `to<i>` the sink's.
fn ring_drops(ns: &str, dev: &str) -> Result<u64> {
    let stats = net::ethtool_stats(ns, dev)?;
    Ok(stats.iter().filter(|(k, _)| k.contains("xdp_xmit_err")).map(|(_, v)| v).sum())
}

struct RemoveDir(PathBuf);
impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(only: Option<&str>, variants: Vec<Variant>) -> Options {
        Options { prefixes: 1, names: 1, rounds: 1, seconds: 1.0, gen_cpu: 0, dut_cpu: 1, only: only.map(String::from), variants }
    }

    #[test]
    fn variants_are_named_as_the_report_spells_them() {
        assert_eq!(Variant::parse_list("blocker, plain forwarding").unwrap(), vec![Variant::Blocker, Variant::Plain]);
        assert_eq!(Variant::parse_list("blocker inline").unwrap(), vec![Variant::BlockerInline]);
        let e = Variant::parse_list("blocker,nftables").unwrap_err().to_string();
        assert!(e.contains("\"nftables\"") && e.contains("nftables netdev ingress"), "{e}");
    }

    #[test]
    fn a_partial_run_never_writes_over_the_full_report() {
        assert_eq!(stem(&options(None, vec![])), "throughput");
        assert_eq!(stem(&options(Some("tcp ack"), vec![])), "throughput-tcp-ack");
        assert_eq!(stem(&options(None, vec![Variant::Blocker])), "throughput-some-variants");
        assert_eq!(stem(&options(Some("listed"), vec![Variant::Plain])), "throughput-listed-some-variants");
    }
}
