//! Generation swaps under traffic: while one thread installs new list generations (and rolls
//! back), another runs frames through the same loaded program with BPF_PROG_TEST_RUN, and
//! every verdict must come from one whole generation.
//!
//! How a mix would show: generation A is a core set C plus entries only A lists, generation B
//! is C plus entries only B lists. The swapper counts the steps it begins and ends; a probe
//! reads the count of finished steps before it runs and of begun steps after, so the packet was
//! judged by one of the generations live in that window. Then:
//! - a core entry is blocked on every probe (a half-written slot would miss some);
//! - a never-listed destination or name passes on every probe;
//! - an A-only entry is blocked when only A can be live and passes when only B can be, and a
//!   window that spans a switch allows either (the same for B-only entries).
//!
//! Every class that reads list maps is probed: IPv4 and IPv6 destinations (coarse bitmap and
//! LPM trie), the server name of a ClientHello, and a DNS query name (NAMES).
//!
//! The swapper holds `&mut Datapath`; the prober reaches the same program through a file
//! descriptor of its own (BPF_PROG_GET_FD_BY_ID on the id of the program this process loaded),
//! and runs it with a raw BPF_PROG_TEST_RUN: the kernel serialises nothing between the two, as
//! with real traffic on an attached program.

mod support;

use std::{
    collections::HashSet,
    fmt::Write as _,
    fs,
    io,
    net::Ipv4Addr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    thread,
    time::{Duration, Instant},
};

use blocker_user::{
    datapath::{Datapath, DnsPolicy, Options},
    lists::ListSet,
};
use support::{
    dns,
    frames::udp,
    list_set,
    tls::{Hello, segment, stream},
};

// ---------------------------------------------------------------------------------------------
// The specification
// ---------------------------------------------------------------------------------------------

/// Generations installed (or rolled back to) while frames run.
const SWAPS: usize = 30;

#[test]
#[ignore = "needs root"]
fn a_packet_stream_during_repeated_swaps_never_sees_a_mixed_generation() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sizes = Sizes::SWAP;
    let sets = [list_set(&generation_text(Gen::A, &sizes), ""), list_set(&generation_text(Gen::B, &sizes), "")];
    let (mut dp, prober) = load_with_prober();
    dp.install_generation(&sets[Gen::A as usize]).expect("installing generation A");

    // Installs of the other generation and of the live one again, and rollbacks, so that a
    // slot is refilled both with what it held and with the other generation (whose entries
    // must all be gone from it first).
    use Step::{Install, Rollback};
    let pattern = [Install(Gen::B), Install(Gen::A), Install(Gen::A), Rollback, Install(Gen::B), Rollback];
    let steps: Vec<Step> = pattern.into_iter().cycle().take(SWAPS).collect();
    let live = live_after_each(Some(Gen::A), &steps);

    let tally = run_while_swapping(&mut dp, &prober, &sets, &sizes, &steps, &live, swap_probe);

    eprintln!("{}", tally.summary());
    assert!(tally.violations.is_empty(), "{} probe(s) saw a verdict no single generation gives:\n{}", tally.violation_count, tally.violations.join("\n"));
    for (class, n) in tally.per_class.iter().enumerate() {
        assert!(*n >= 20, "class {} was probed only {n} times", Probe::class_name(class));
    }
    assert!(tally.during_a_step >= 1000, "only {} probes ran while a step was under way: the test did not overlap installs", tally.during_a_step);
    assert!(
        tally.only_blocked >= 100 && tally.only_passed >= 100,
        "with one generation live, generation-only entries were seen blocked {} and passed {} times: too few to tell A from B",
        tally.only_blocked,
        tally.only_passed
    );
}

/// 200K names and 200K prefixes keep the test's run time reasonable on a two-core CI machine;
/// 1M names + 1M prefixes are loaded and swapped by the control-plane benchmark
/// (`cargo xtask bench`, bench/src/control.rs, results in bench/results/control.md).
#[test]
#[ignore = "needs root"]
fn an_allowed_stream_keeps_passing_while_200k_names_and_200k_prefixes_are_installed() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sizes = Sizes::LARGE;
    let sets = [list_set(&generation_text(Gen::A, &sizes), ""), list_set(&generation_text(Gen::B, &sizes), "")];
    let entries = sets[0].len();
    assert!(entries >= 400_000, "generation A holds {entries} entries");
    let (mut dp, prober) = load_with_prober();
    // Start from a small generation that lists none of the probed entries, then: the large A
    // into the empty slot, the large B beside it, A again (clearing a full slot first), and a
    // rollback to B.
    dp.install_generation(&list_set("192.0.2.1\nsmall.swap.example\n", "")).expect("a small first generation");
    let steps = [Step::Install(Gen::A), Step::Install(Gen::B), Step::Install(Gen::A), Step::Rollback];
    let live = live_after_each(None, &steps);

    let tally = run_while_swapping(&mut dp, &prober, &sets, &sizes, &steps, &live, allowed_probe);

    eprintln!("{}", tally.summary());
    assert_eq!(tally.violation_count, 0, "allowed frames that did not pass:\n{}", tally.violations.join("\n"));
    assert!(tally.during_a_step >= 1000, "only {} allowed frames ran while a list was being installed", tally.during_a_step);
    // The lists did go in: B is live, its entries block and A's do not.
    for (probe, blocked) in [
        (Probe { family: Family::V4, member: Member::Only(Gen::B), index: 7 }, true),
        (Probe { family: Family::V6, member: Member::Only(Gen::B), index: 7 }, true),
        (Probe { family: Family::Sni, member: Member::Only(Gen::B), index: 7 }, true),
        (Probe { family: Family::Dns, member: Member::Only(Gen::B), index: 7 }, true),
        (Probe { family: Family::Dns, member: Member::Core, index: 7 }, true),
        (Probe { family: Family::V4, member: Member::Only(Gen::A), index: 7 }, false),
    ] {
        let action = prober.run(&probe.frame(&sizes, 1 << 21)).expect("test run");
        assert_eq!(action != XDP_PASS, blocked, "{probe:?} after the swaps: action {action}");
    }
}

// ---------------------------------------------------------------------------------------------
// Generations
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gen {
    A = 0,
    B = 1,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Install(Gen),
    Rollback,
}

/// The generation live after each step (`None`: one that lists none of the probed entries),
/// starting from `first` alone installed: an install fills the slot packets do not use and
/// switches to it; a rollback switches back to the other slot.
fn live_after_each(first: Option<Gen>, steps: &[Step]) -> Vec<Option<Gen>> {
    let (mut slots, mut live) = ([None, Some(first)], 1);
    let mut out = vec![first];
    for step in steps {
        live ^= 1;
        if let Step::Install(g) = step {
            slots[live] = Some(Some(*g));
        }
        out.push(slots[live].expect("a rollback needs a whole previous generation"));
    }
    out
}

/// How many entries of each kind a generation holds.
struct Sizes {
    /// Core (both generations): IPv4 hosts, IPv6 /64s, names.
    core4: usize,
    core6: usize,
    core_names: usize,
    /// Per generation only: IPv4 hosts in the core's /24s (the trie decides), IPv4 /24s of their
    /// own (the coarse bitmap decides), IPv6 /64s beside the core's (in the same /48 where the
    /// core has one), IPv6 /32s of their own, names.
    only4: usize,
    only24: usize,
    only6: usize,
    only32: usize,
    only_names: usize,
}

impl Sizes {
    /// About 47K entries per generation: an install takes long enough to overlap many probes.
    const SWAP: Sizes = Sizes { core4: 12_000, core6: 4_000, core_names: 12_000, only4: 4_000, only24: 1_000, only6: 2_000, only32: 1_000, only_names: 6_000 };
    /// 200K names and 200K prefixes per generation.
    const LARGE: Sizes =
        Sizes { core4: 60_000, core6: 30_000, core_names: 100_000, only4: 60_000, only24: 1_000, only6: 48_000, only32: 1_000, only_names: 100_000 };
}

fn core4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, (i >> 8) as u8, i as u8, 1)
}
/// Another host of `a`'s /24.
fn beside(a: Ipv4Addr, host: u8) -> Ipv4Addr {
    let [x, y, z, _] = a.octets();
    Ipv4Addr::new(x, y, z, host)
}
/// In the core's /24s: host .2 for A, .3 for B.
fn only4(g: Gen, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, (i >> 8) as u8, i as u8, 2 + g as u8)
}
/// /24s of their own: 172.16-19.x.0 for A, 172.20-23.x.0 for B.
fn only24(g: Gen, j: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 16 + 4 * g as u8 + (j >> 8) as u8, j as u8, 0)
}
fn core6(i: usize) -> String {
    format!("2001:db8:{i:x}:1::")
}
fn only6(g: Gen, i: usize) -> String {
    format!("2001:db8:{i:x}:{}::", 2 + g as u8)
}
/// /32s of their own in 3fff::/20 (RFC 9637): 3fff:0-7ff for A, 3fff:800-fff for B.
fn only32(g: Gen, j: usize) -> String {
    format!("3fff:{:x}::", 0x800 * g as usize + j)
}
fn core_name(i: usize) -> String {
    format!("c{i}.core.swap.example")
}
fn only_name(g: Gen, i: usize) -> String {
    format!("{}{i}.gen.swap.example", ["a", "b"][g as usize])
}

/// A generation as a list file: the core, and what only `g` lists.
fn generation_text(g: Gen, s: &Sizes) -> String {
    let mut t = String::with_capacity(40 * (s.core4 + s.core6 + s.core_names + s.only4 + s.only6 + s.only_names));
    for i in 0..s.core4 {
        writeln!(t, "{}", core4(i)).unwrap();
    }
    for i in 0..s.core6 {
        writeln!(t, "{}/64", core6(i)).unwrap();
    }
    for i in 0..s.core_names {
        writeln!(t, "{}", core_name(i)).unwrap();
    }
    for i in 0..s.only4 {
        writeln!(t, "{}", only4(g, i)).unwrap();
    }
    for j in 0..s.only24 {
        writeln!(t, "{}/24", only24(g, j)).unwrap();
    }
    for i in 0..s.only6 {
        writeln!(t, "{}/64", only6(g, i)).unwrap();
    }
    for j in 0..s.only32 {
        writeln!(t, "{}/32", only32(g, j)).unwrap();
    }
    for i in 0..s.only_names {
        writeln!(t, "{}", only_name(g, i)).unwrap();
    }
    t
}

// ---------------------------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
    Sni,
    Dns,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    Core,
    Only(Gen),
    Never,
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    family: Family,
    member: Member,
    index: usize,
}

const FAMILIES: [Family; 4] = [Family::V4, Family::V6, Family::Sni, Family::Dns];
const MEMBERS: [Member; 4] = [Member::Core, Member::Only(Gen::A), Member::Only(Gen::B), Member::Never];

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const SERVER4: &str = "192.0.2.10";
const RESOLVER4: &str = "192.0.2.53";
const STOP_PAGE4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);

/// Probe `k` of the swap test: every family and membership in turn, spread over the entries.
fn swap_probe(k: usize) -> Probe {
    let class = k % 16;
    Probe { family: FAMILIES[class % 4], member: MEMBERS[class / 4], index: spread(k / 16) }
}

/// Probe `k` of the allowed-stream test: never-listed destinations and names only, many of them
/// next to listed ones (same /24, same /48, sibling and parent names).
fn allowed_probe(k: usize) -> Probe {
    Probe { family: FAMILIES[k % 4], member: Member::Never, index: spread(k / 4) }
}

/// A well-mixed index from a probe number.
fn spread(n: usize) -> usize {
    (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29) as usize
}

impl Probe {
    fn class(&self) -> usize {
        let f = FAMILIES.iter().position(|f| *f == self.family).unwrap();
        let m = MEMBERS.iter().position(|m| *m == self.member).unwrap();
        m * 4 + f
    }

    fn class_name(class: usize) -> String {
        format!("{:?}/{:?}", FAMILIES[class % 4], MEMBERS[class / 4])
    }

    /// What a block of this probe looks like: a dropped datagram, a reset to the client, or a
    /// DNS answer sent back.
    fn blocked_action(&self) -> u32 {
        match self.family {
            Family::V4 | Family::V6 => XDP_DROP,
            Family::Sni | Family::Dns => XDP_TX,
        }
    }

    /// The destination address or the name this probe asks for.
    fn target(&self, s: &Sizes) -> String {
        let i = self.index;
        match (self.family, self.member) {
            (Family::V4, Member::Core) => core4(i % s.core4).to_string(),
            (Family::V4, Member::Only(g)) => match i % 4 {
                // A host in one of the generation's own /24s, or its host in a core /24.
                0 => beside(only24(g, i / 4 % s.only24), 1 + (i >> 8) as u8 % 254).to_string(),
                _ => only4(g, i % s.only4).to_string(),
            },
            (Family::V4, Member::Never) => match i % 3 {
                // Beside a core host, beside a generation-only host (same /24s: the trie
                // decides), in a /24 nothing lists (the coarse bitmap decides).
                0 => beside(core4(i % s.core4), 4 + (i >> 16) as u8 % 200).to_string(),
                1 => beside(only4(Gen::A, i % s.only4), 250).to_string(),
                _ => Ipv4Addr::new(172, 24 + (i >> 8) as u8 % 8, i as u8, 7).to_string(),
            },
            (Family::V6, Member::Core) => format!("{}99", core6(i % s.core6)),
            (Family::V6, Member::Only(g)) => match i % 4 {
                // In one of the generation's own /32s, or its /64 in a core /48.
                0 => format!("{}{:x}", only32(g, i / 4 % s.only32), 1 + i % 0xfff),
                _ => format!("{}99", only6(g, i % s.only6)),
            },
            (Family::V6, Member::Never) => match i % 3 {
                // In a listed /48 outside its listed /64s, in an unlisted /48 of the same /32,
                // in a /32 nothing lists.
                0 => format!("2001:db8:{:x}:4::1", i % s.core6),
                1 => format!("2001:db8:ffff:{:x}::1", i & 0xffff),
                _ => format!("3fff:fff:{:x}::1", i & 0xffff),
            },
            (Family::Sni | Family::Dns, Member::Core) => {
                // The name itself, or a name below it (a bare name covers its subdomains).
                if i % 2 == 0 { core_name(i % s.core_names) } else { format!("www.{}", core_name(i % s.core_names)) }
            }
            (Family::Sni | Family::Dns, Member::Only(g)) => only_name(g, i % s.only_names),
            (Family::Sni | Family::Dns, Member::Never) => match i % 5 {
                // A sibling, a look-alike, the parents of listed names, another zone.
                0 => format!("n{}.gen.swap.example", i % 1_000_000),
                1 => format!("x{}", core_name(i % s.core_names)),
                2 => "core.swap.example".to_string(),
                3 => "gen.swap.example".to_string(),
                _ => format!("www{}.allowed.example", i % 1000),
            },
        }
    }

    /// The frame for probe number `k` (which picks a client of its own, so that no two probes
    /// share a TCP flow: a blocked flow stays blocked).
    fn frame(&self, s: &Sizes, k: usize) -> Vec<u8> {
        let client = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + (k as u32 & 0x3f_ffff)).to_string();
        let target = self.target(s);
        match self.family {
            Family::V4 => udp(&client, &target, 9, b"swap probe").build(),
            Family::V6 => udp(&format!("2001:db8:cc::{:x}", k & 0xffff), &target, 9, b"swap probe").build(),
            Family::Sni => segment(&client, SERVER4, 10_000, 0, &stream(&Hello { sni: Some(&target), ..Default::default() })).build(),
            Family::Dns => udp(&client, RESOLVER4, 53, &dns::query(&target, k as u16)).build(),
        }
    }
}


// ---------------------------------------------------------------------------------------------
// Swapping while probing
// ---------------------------------------------------------------------------------------------

/// Tests in this file run one at a time: each finds its program among the ones this process
/// newly opened, and two swap tests on two cores would starve each other anyway.
static SERIAL: Mutex<()> = Mutex::new(());

/// Bounds on the prober, whatever the swapper does.
const PROBE_DEADLINE: Duration = Duration::from_secs(600);
const MAX_PROBES: usize = 20_000_000;
/// Probes to wait for after each step (and the most time to wait for them).
const SETTLE_PROBES: usize = 400;
const SETTLE_MAX: Duration = Duration::from_secs(5);
/// Violations kept for the failure message (all are counted).
const KEEP: usize = 20;

#[derive(Default)]
struct Tally {
    probes: usize,
    per_class: [usize; 16],
    /// Probes whose window held a step under way (begun but not finished).
    during_a_step: usize,
    /// Generation-only probes judged while exactly one generation could be live, seen blocked
    /// and seen passing: there the test tells A from B.
    only_blocked: usize,
    only_passed: usize,
    violation_count: usize,
    violations: Vec<String>,
    step_times: Vec<Duration>,
}

impl Tally {
    fn summary(&self) -> String {
        let steps: Vec<String> = self.step_times.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect();
        format!(
            "{} probes, {} while a step was under way; with one generation live, generation-only entries blocked {} / passed {}; {} violation(s); step times (s): {}",
            self.probes,
            self.during_a_step,
            self.only_blocked,
            self.only_passed,
            self.violation_count,
            steps.join(" ")
        )
    }
}

/// Runs `steps` on `dp` in this thread while a second thread runs `probe(0)`, `probe(1)`, ...
/// through `prober`, and judges each verdict against the generations that could be live:
/// `live[e]` is the generation live after `e` steps.
fn run_while_swapping(
    dp: &mut Datapath,
    prober: &Prober,
    sets: &[ListSet; 2],
    sizes: &Sizes,
    steps: &[Step],
    live: &[Option<Gen>],
    probe: fn(usize) -> Probe,
) -> Tally {
    assert_eq!(live.len(), steps.len() + 1);
    dp.set_dns(&DnsPolicy::stop_page(Some(STOP_PAGE4), None)).expect("DNS answers on");
    // Steps begun and steps finished: a packet judged between reading `finished` (before it
    // ran) and `begun` (after) saw the generation of one of the steps in between.
    let begun = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let probed = AtomicUsize::new(0);
    // Between steps the swapper waits for this many probes (bounded in time), so that many
    // probes see exactly one generation live, the old one whole and the new one whole.
    let settle = |what: &str| {
        let (from, wait) = (probed.load(SeqCst), Instant::now());
        while probed.load(SeqCst) < from + SETTLE_PROBES && wait.elapsed() < SETTLE_MAX {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(probed.load(SeqCst) > from, "no probe ran {what}");
    };

    thread::scope(|scope| {
        let prober_thread = scope.spawn(|| {
            let mut t = Tally::default();
            let start = Instant::now();
            let mut k = 0;
            while !done.load(SeqCst) && k < MAX_PROBES && start.elapsed() < PROBE_DEADLINE {
                let p = probe(k);
                let frame = p.frame(sizes, k);
                let lo = finished.load(SeqCst);
                let action = prober.run(&frame).expect("BPF_PROG_TEST_RUN from the prober thread");
                let hi = begun.load(SeqCst);
                k += 1;
                probed.store(k, SeqCst);
                t.probes += 1;
                t.per_class[p.class()] += 1;
                if hi > lo {
                    t.during_a_step += 1;
                }
                let window = &live[lo..=hi];
                let blocked = action == p.blocked_action();
                let ok = match p.member {
                    _ if action != XDP_PASS && !blocked => false,
                    Member::Core => blocked,
                    Member::Never => !blocked,
                    Member::Only(g) => {
                        if hi == lo {
                            if blocked { t.only_blocked += 1 } else { t.only_passed += 1 }
                        }
                        if blocked { window.contains(&Some(g)) } else { window.iter().any(|l| *l != Some(g)) }
                    }
                };
                if !ok {
                    t.violation_count += 1;
                    if t.violations.len() < KEEP {
                        t.violations.push(format!(
                            "probe {k}: {:?} {:?} {} got action {action} with generation(s) {:?} live (steps {lo}..={hi})",
                            p.family,
                            p.member,
                            p.target(sizes),
                            &live[lo..=hi]
                        ));
                    }
                }
            }
            t
        });

        settle("before the first step");
        let mut times = Vec::new();
        for (e, step) in steps.iter().enumerate() {
            begun.store(e + 1, SeqCst);
            let t = Instant::now();
            match *step {
                Step::Install(g) => {
                    dp.install_generation(&sets[g as usize]).expect("installing a generation");
                }
                Step::Rollback => assert!(dp.switch_to_previous().expect("switching back"), "the previous generation is whole"),
            }
            times.push(t.elapsed());
            finished.store(e + 1, SeqCst);
            settle("after a step");
        }
        done.store(true, SeqCst);
        let mut tally = prober_thread.join().expect("prober thread");
        tally.step_times = times;
        tally
    })
}

// ---------------------------------------------------------------------------------------------
// A second handle on the loaded program
// ---------------------------------------------------------------------------------------------

const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_TYPE_XDP: u32 = 6;

/// The blocking program through a file descriptor of its own: usable from another thread while
/// the Datapath that loaded it is borrowed mutably.
struct Prober {
    fd: OwnedFd,
}

/// The `test` member of `union bpf_attr` (BPF_PROG_TEST_RUN).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// The BPF_*_GET_FD_BY_ID member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The `info` member of `union bpf_attr` (BPF_OBJ_GET_INFO_BY_FD).
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The start of `struct bpf_prog_info`, up to and including the name.
#[repr(C)]
#[derive(Default)]
struct ProgInfoHead {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// The bpf(2) system call with an attribute struct that is a prefix of `union bpf_attr`.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] prefix of union bpf_attr of the size
    // passed; every pointer it holds points to a live buffer of the length it states.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Ids of the BPF programs this process holds file descriptors for.
fn own_program_ids() -> HashSet<u32> {
    let mut ids = HashSet::new();
    for entry in fs::read_dir("/proc/self/fd").expect("/proc/self/fd").flatten() {
        if fs::read_link(entry.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-prog") {
            let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy())).unwrap_or_default();
            if let Some(id) = info.lines().find_map(|l| l.strip_prefix("prog_id:")) {
                ids.insert(id.trim().parse().expect("prog_id"));
            }
        }
    }
    ids
}

/// Loads the program (lists empty) and opens the second handle on its blocking program.
fn load_with_prober() -> (Datapath, Prober) {
    let before = own_program_ids();
    let dp = Datapath::load(Options::default()).expect("loading the XDP program (root needed)");
    let mut found = Vec::new();
    for id in own_program_ids().difference(&before) {
        let mut attr = GetFdByIdAttr { id: *id, ..Default::default() };
        let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).expect("BPF_PROG_GET_FD_BY_ID");
        // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut info = ProgInfoHead::default();
        let mut attr = InfoAttr { bpf_fd: fd.as_raw_fd() as u32, info_len: std::mem::size_of::<ProgInfoHead>() as u32, info: &mut info as *mut _ as u64 };
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).expect("BPF_OBJ_GET_INFO_BY_FD");
        let name = info.name.split(|b| *b == 0).next().unwrap_or_default();
        if info.prog_type == BPF_PROG_TYPE_XDP && name == blocker_user::datapath::PROGRAM.as_bytes() {
            found.push(fd);
        }
    }
    assert_eq!(found.len(), 1, "exactly one newly loaded XDP program named {:?}", blocker_user::datapath::PROGRAM);
    let prober = Prober { fd: found.pop().unwrap() };
    // The handle runs the very program the Datapath runs.
    let frame = udp("192.0.2.2", "192.0.2.99", 9, b"x").build();
    assert_eq!(prober.run(&frame).expect("test run"), XDP_PASS);
    assert_eq!(dp.run_frame(&frame).expect("test run").action, blocker_user::datapath::XdpAction::Pass);
    (dp, prober)
}

impl Prober {
    /// Runs one frame once; returns the XDP action.
    fn run(&self, frame: &[u8]) -> io::Result<u32> {
        let mut out = vec![0u8; frame.len() + 4096];
        let mut attr = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: frame.len() as u32,
            data_size_out: out.len() as u32,
            data_in: frame.as_ptr() as u64,
            data_out: out.as_mut_ptr() as u64,
            repeat: 1,
            ..Default::default()
        };
        bpf(BPF_PROG_TEST_RUN, &mut attr)?;
        Ok(attr.retval)
    }
}
