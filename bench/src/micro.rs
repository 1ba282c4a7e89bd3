//! `blocker-bench micro`: what the XDP program costs per packet, by traffic class and list
//! size, as ns above an empty XDP program timed in the same run (design.md §5: absolute times
//! on a shared VM are noise; the difference within one run is what counts). Each class is many
//! distinct frames (not one hot frame), each run `--repeat` times in the kernel
//! (BPF_PROG_TEST_RUN), alternating with the empty program frame by frame, over several
//! rounds; the report is the median round.
//!
//! Classes whose frames must run once (they keep flow state or are rewritten) pay, frame by
//! frame, for the system call between two test runs: the program's code and the branch
//! predictors go cold in it, and this VM's mitigations make that dear (the 1448-byte data
//! segment: ~40 ns repeated, ~100–200 run once). A NIC's receive loop runs the program on one
//! frame after another with nothing between them, so those classes are also timed that way
//! ("back to back", sequencer.rs): one test run per program over all the class's frames, every
//! flow's first segment, then every flow's second.
//!
//! Two things keep the machine out of the figures:
//! - Both programs are attached (native XDP) to a veth pair in a namespace of the run's own
//!   while it measures. A test run of more than one repetition puts its program into the
//!   kernel's XDP dispatcher and takes it out again, and each change rebuilds the dispatcher's
//!   image behind an RCU grace period: milliseconds per frame on a busy machine, which made a
//!   1M run take over 20 minutes. A program already attached somewhere stays in the dispatcher,
//!   so its test runs change nothing. No frame is ever sent on that pair.
//! - `--compare-object FILE` times another build's program (its ELF object) beside this one's,
//!   in the same rounds: before/after comparisons that the machine's shifts cannot tilt.
//! - The measuring thread is pinned to one CPU in the real-time class, so other jobs' builds
//!   do not preempt it in the middle of a timed run (the kernel's real-time throttling leaves
//!   them 5% of that CPU, and the other CPU whole).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use blocker_common::verdict::Action;
use blocker_user::datapath::{Datapath, DnsPolicy, FlowUpkeep, Options, PASS_PROGRAM, PROGRAM, StopPageResponse, TCP_PROGRAM, XdpAction};

use crate::{
    Args, classes, lists, report,
    forward_port::ForwardPort,
    sequencer::Sequencer,
    throughput::{
        bpf::{in_netns, pin, realtime},
        net::{Namespaces, exec},
    },
};

/// The CPU and real-time priority of the measuring thread.
const CPU: usize = 1;
const PRIO: i32 = 50;

/// One program under test at one list size: this build's, or (`--compare-object`) another
/// build's, whose rows carry its file name.
struct Loaded {
    size: usize,
    other: Option<String>,
    dp: Datapath,
}

pub fn run(a: &Args) -> Result<()> {
    // A filter that names no row would write an empty report over the last one.
    if measured(a, &classes::all(a.frames)).is_empty() {
        bail!("--micro-only {:?}: no row's name contains it", a.micro_only.as_deref().unwrap_or(""));
    }
    let other = match &a.compare_object {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let label = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
            Some((label, bytes))
        }
        None => None,
    };
    // Dropped at the end (namespaces, veths and attachments gone), also on error, Ctrl-C and
    // SIGTERM.
    crate::stop::install();
    let mut ns = Namespaces::new();
    let mut loaded = Vec::new();
    for &size in &a.sizes {
        let set = lists::synthetic(size);
        let objects = std::iter::once(None).chain(other.iter().map(Some));
        for (k, object) in objects.enumerate() {
            let mut dp = match object {
                None => Datapath::load(Options::default()),
                Some((_, bytes)) => Datapath::load_object(bytes, Options::default()),
            }
            .context("loading the XDP program (root needed)")?;
            let report = dp.install(&set)?;
            // Answer DNS and HTTP as `blocker run` with a stop page does, so the listed
            // classes measure the real path (the 451, the DNS answer).
            dp.set_dns(&DnsPolicy::stop_page(Some("192.0.2.1".parse()?), None))?;
            let page = StopPageResponse { service_url: "http://192.0.2.1".into(), blocked_by_url: "https://list-body.example/about".into() };
            dp.set_stop_page(Some(&page))?;
            eprintln!("list size {size}: installed in {:?}", report.elapsed);
            if size == a.sizes[0] {
                let label = object.map_or("this build", |(label, _)| label.as_str());
                for program in [PROGRAM, TCP_PROGRAM] {
                    // An older build has no TCP program of its own (its reader is in PROGRAM).
                    let Ok(verified) = dp.verified_instructions(program) else { continue };
                    let verified = verified.map_or("not reported".to_string(), |n| n.to_string());
                    eprintln!("{label}, {program}: {verified} instructions processed by the verifier (its limit: 1000000)");
                }
            }
            hold_in_dispatcher(&mut dp, &mut ns, &format!("micro{size}-{k}"))?;
            loaded.push(Loaded { size, other: object.map(|(label, _)| label.clone()), dp });
        }
    }
    // The XDP forwarding classes arrive on a port of their own namespace; each program is
    // checked to forward there once, then left with forwarding off for the other classes.
    let port = ForwardPort::build(&mut ns)?;
    for l in &mut loaded {
        in_netns(&port.ns, || {
            ForwardPort::on(&mut l.dp, classes::Routed::Fib)?;
            ForwardPort::off(&mut l.dp)
        })
        .context("XDP forwarding on the benchmark's forwarding port")?;
    }
    // A class's first segments, then its second segments: two per flow at most.
    let mut sequencer = Sequencer::new(&mut ns, 2 * a.frames as u32)?;
    let (rows, paired) = measure(a, &mut loaded, &port, &mut sequencer)?;
    report::write(&a.out, &rows, &paired, a.rounds)
}

/// `--compare-object`: the other build's figure minus this build's, round by round, for every
/// class and size. Both run in the same round, one right after the other, so a shift of the
/// machine's speed between rounds (on this VM up to 2× for minutes) moves both alike and drops
/// out of the difference; two medians taken apart keep it, and differ by tens of ns between
/// two runs of the same pair of builds.
fn paired(loaded: &[Loaded], deltas: &[Vec<Vec<f64>>], row: impl Fn(usize) -> String) -> Vec<report::Paired> {
    let mut out = Vec::new();
    for (i, this) in loaded.iter().enumerate().filter(|(_, l)| l.other.is_none()) {
        for (j, other) in loaded.iter().enumerate().filter(|(_, l)| l.size == this.size && l.other.is_some()) {
            for m in 0..deltas[i].len() {
                let (median, quartiles) = paired_difference(&deltas[j][m], &deltas[i][m]);
                let label = other.other.clone().unwrap_or_default();
                out.push(report::Paired { size: this.size, class: row(m), other: label, median, quartiles });
            }
        }
    }
    out
}

/// The median and quartiles of `other[r] - this[r]` over the rounds r.
fn paired_difference(other: &[f64], this: &[f64]) -> (f64, (f64, f64)) {
    median_and_quartiles(other.iter().zip(this).map(|(o, t)| o - t).collect())
}

/// The median of `v` (not empty) and its lower and upper quartile (the middle half of the
/// values lies between them).
fn median_and_quartiles(mut v: Vec<f64>) -> (f64, (f64, f64)) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (v[n / 2], (v[n / 4], v[(3 * n) / 4]))
}

/// Attaches the blocking and the empty program to the two ends of a veth pair in a namespace
/// of this run, so that their test runs leave the XDP dispatcher as it is.
fn hold_in_dispatcher(dp: &mut Datapath, ns: &mut Namespaces, role: &str) -> Result<()> {
    let name = ns.add(role)?;
    exec(&name, &["ip", "link", "add", "bm0", "type", "veth", "peer", "name", "bm1"], Duration::from_secs(20))?;
    in_netns(&name, || {
        dp.attach_program(PROGRAM, "bm0", false)?;
        dp.attach_program(PASS_PROGRAM, "bm1", false)?;
        Ok(())
    })
    .context("attaching the programs in the benchmark's namespace")
}

/// ns per packet above the empty program for one class at one list size, one round. With
/// `check` (the first round), each frame's runs must all have been counted under one reason and
/// action, and a repeated frame must leave no flow state behind: a repetition or a warmer that
/// took another path than the first run (state the first one left behind) would be timed as the
/// class's path.
///
/// A class of XDP-forwarded frames runs with forwarding on (on the calling thread's namespace's
/// `port`, which must be the forwarding port's), and only then.
fn sample(a: &Args, dp: &mut Datapath, port: &ForwardPort, class: &classes::Class, sequences: &[Vec<Vec<u8>>], warmers: Option<&[Vec<Vec<u8>>]>, check: bool) -> Result<f64> {
    if let Some(routed) = class.routed {
        ForwardPort::on(dp, routed)?;
        let timed = sample_on(a, dp, Some(port.ifindex), class, sequences, warmers, check);
        ForwardPort::off(dp)?;
        return timed;
    }
    sample_on(a, dp, None, class, sequences, warmers, check)
}

/// `sample`, with the frames received on interface `on` when given.
fn sample_on(a: &Args, dp: &Datapath, on: Option<u32>, class: &classes::Class, sequences: &[Vec<Vec<u8>>], warmers: Option<&[Vec<Vec<u8>>]>, check: bool) -> Result<f64> {
    let (mut base, mut prog) = (0u64, 0u64);
    for (k, seq) in sequences.iter().enumerate() {
        // Classes that rewrite frames or keep flow state run each frame once; the empty
        // program is then timed the same way, so the per-call overhead of a single run
        // cancels out.
        let reps = if class.once { 1 } else { a.repeat };
        let warmer = warmers.map(|w| &w[k]);
        for (j, f) in seq.iter().enumerate() {
            let want = if j + 1 == seq.len() { class.last } else { XdpAction::Pass };
            // Each program right after its own warmer's frame: what it finds warm is what
            // that frame left, not what the other program's run did.
            if let Some(w) = warmer {
                dp.run_frame_with(PASS_PROGRAM, &w[j], 1)?;
            }
            // Both programs get the frame the same way (a context naming the receiving port costs
            // its test run a device lookup).
            let run = |program, f: &[u8]| match on {
                Some(ifindex) => dp.run_frame_on_with(program, ifindex, f, reps),
                None => dp.run_frame_with(program, f, reps),
            };
            base += run(PASS_PROGRAM, f)?.duration_ns;
            let before = if check { Some((dp.counters()?, dp.flow_bits_check()?.busy)) } else { None };
            if let Some(w) = warmer {
                let run = dp.run_frame_with(PROGRAM, &w[j], 1)?;
                if run.action != want {
                    bail!("class \"{}\": frame {} of a warmer got {:?} from the program, the class is {want:?}", class.name, j + 1, run.action);
                }
            }
            let run = run(PROGRAM, f)?;
            if run.action != want {
                bail!("class \"{}\": frame {} of a sequence got {:?} from the program, the class is {want:?}: it would measure another path", class.name, j + 1, run.action);
            }
            prog += run.duration_ns;
            if let Some((counters, busy)) = before {
                let runs = u64::from(reps) + u64::from(warmer.is_some());
                let delta = dp.counters()?.delta(&counters);
                if !matches!(delta.as_slice(), [(_, _, n)] if *n == runs) {
                    bail!("class \"{}\": frame {} of sequence {k}: its {runs} runs were counted as {delta:?}, not all alike: they took different paths", class.name, j + 1);
                }
                let now = dp.flow_bits_check()?.busy;
                if !class.once && now != busy {
                    bail!(
                        "class \"{}\": frame {} of sequence {k} left flow state behind (flow buckets in use {busy} -> {now}), so its repetitions took another path than its first run: the class must be run once",
                        class.name,
                        j + 1
                    );
                }
            }
        }
    }
    Ok((prog as f64 - base as f64) / sequences.len() as f64)
}

/// What a looped class's row adds to its name.
pub const LOOPED: &str = "back to back";

/// Passes over a class's list in one looped test run, and test runs per program and sample,
/// alternating with the empty program's: a shift in the machine's speed during a sample falls
/// on both alike.
const LOOP_PASSES: u32 = 2;
const LOOP_RUNS: u32 = 4;

/// The order a looped class's frames run in: every flow's first frame, then every flow's
/// second, as on a link that carries many handshakes at once. A flow's next segment comes
/// after all the other flows' segments of the step, so its state has gone cold as it does
/// between the segments of a real flow.
fn loop_order(sequences: &[Vec<Vec<u8>>]) -> Vec<&[u8]> {
    let steps = sequences.iter().map(Vec::len).max().unwrap_or(0);
    (0..steps).flat_map(|j| sequences.iter().filter_map(move |s| s.get(j).map(Vec::as_slice))).collect()
}

/// A class measured in one looped test run per program (sequencer.rs) besides frame by frame:
/// one that keeps no state across passes (its flows end judged and allowed, or its frames are
/// answered without a flow) and runs each frame once. Frames repeated in their test run are
/// already timed back to back; fresh flows are remembered as blocked.
pub fn looped(class: &classes::Class) -> bool {
    class.once && class.fresh.is_none() && class.routed.is_none()
}

/// ns per sequence (summed over its frames) above the empty program, the list loaded into the
/// sequencer run `LOOP_PASSES` times in each of `LOOP_RUNS` test runs per program. With `check`: every run
/// counted once, the frames before each sequence's last passed and the last counted as the class
/// has it, every frame counted under the reason and action it gets run alone (`frames`, the
/// loaded list, each run once in a test run of its own first: so a frame the sequencer wrote
/// wrongly cannot pass unnoticed), and the flow state as the loop found it (a pass that left
/// state behind would not repeat).
fn sample_loop(dp: &Datapath, seq: &Sequencer, frames: &[&[u8]], class: &classes::Class, flows: usize, check: bool) -> Result<f64> {
    let alone = if check {
        let start = dp.counters()?;
        for f in frames {
            dp.run_frame_with(PROGRAM, f, 1)?;
        }
        Some(dp.counters()?.delta(&start))
    } else {
        None
    };
    let before = if check { Some((dp.counters()?, dp.flow_bits_check()?.busy)) } else { None };
    let (mut base, mut prog) = (0.0, 0.0);
    for _ in 0..LOOP_RUNS {
        let (base_action, base_ns) = seq.time(dp.program_fd(PASS_PROGRAM)?, LOOP_PASSES)?;
        let (action, prog_ns) = seq.time(dp.program_fd(PROGRAM)?, LOOP_PASSES)?;
        if base_action != XdpAction::Pass || action != class.last {
            bail!("class \"{}\", looped: the last frame got {action:?} (the empty program {base_action:?}), the class is {:?}", class.name, class.last);
        }
        base += base_ns;
        prog += prog_ns;
    }
    if let Some((counters, busy)) = before {
        let passes = u64::from(LOOP_PASSES * LOOP_RUNS);
        let runs = u64::from(seq.count()) * passes;
        let delta = dp.counters()?.delta(&counters);
        let counted: u64 = delta.iter().map(|(_, _, n)| n).sum();
        let answered: u64 = delta.iter().filter(|(_, a, _)| *a != Action::Pass).map(|(_, _, n)| n).sum();
        let want = if class.last == XdpAction::Pass { 0 } else { flows as u64 * passes };
        if counted != runs || answered != want {
            bail!("class \"{}\", looped: {runs} runs were counted as {delta:?}: {counted} in all, {answered} not passed ({want} expected)", class.name);
        }
        let alone: Vec<_> = alone.unwrap_or_default().into_iter().map(|(r, a, n)| (r, a, n * passes)).collect();
        if delta != alone {
            bail!("class \"{}\", looped: the frames were counted as {delta:?}, {passes} times each as they are run alone: {alone:?}", class.name);
        }
        let now = dp.flow_bits_check()?.busy;
        if now != busy {
            bail!("class \"{}\", looped: a pass left flow state behind (flow buckets in use {busy} -> {now}), so the passes after it took other paths", class.name);
        }
    }
    Ok((prog - base) / f64::from(LOOP_RUNS) * f64::from(seq.count()) / flows as f64)
}

/// Forgets the flows a class left remembered as blocked, as the daemon's upkeep forgets idle
/// flows (two upkeeps: the second forgets every entry the first saw and that has not changed
/// since). Left in place they accumulated round after round, a thousand busy buckets each
/// (21 rounds: a third of all buckets), and a third of the other classes' data segments paid
/// for the lookups of a state not theirs, which a link whose blocked flows end and are
/// forgotten does not see. Fails where state is left after them.
fn forget_flows(dp: &mut Datapath) -> Result<()> {
    let mut last = FlowUpkeep::default();
    dp.flow_upkeep(&mut last)?;
    dp.flow_upkeep(&mut last)?;
    let left = dp.flow_bits_check()?;
    if left.busy != 0 {
        bail!("{} flow buckets still in use after two upkeeps ({left:?})", left.busy);
    }
    Ok(())
}

/// What is measured: (class, looped), each class frame by frame and some also looped, where the
/// row's name has `--micro-only`'s text ("back to back" picks the looped rows alone, e.g. for a
/// profile of them).
fn measured(a: &Args, classes: &[classes::Class]) -> Vec<(usize, bool)> {
    let wanted = |name: &str| a.micro_only.as_deref().is_none_or(|w| name.contains(w));
    classes
        .iter()
        .enumerate()
        .flat_map(|(c, class)| std::iter::once((c, false)).chain(looped(class).then_some((c, true))))
        .filter(|&(c, in_loop)| wanted(&row_name(&classes[c], in_loop)))
        .collect()
}

/// The report's name for a class's row, frame by frame or looped.
fn row_name(class: &classes::Class, in_loop: bool) -> String {
    if in_loop { format!("{}, {LOOPED}", class.name.trim_end_matches(", run once")) } else { class.name.to_string() }
}

/// Every class at every list size (and object), on a pinned real-time thread of its own.
/// Rounds are the outer loop and the programs under test alternate within each class: this
/// shared machine's speed shifts by up to 2× for seconds at a time, and a shift then falls on
/// every size alike, instead of on one size's whole run.
fn measure(a: &Args, loaded: &mut [Loaded], port: &ForwardPort, seq: &mut Sequencer) -> Result<(Vec<report::Row>, Vec<report::Paired>)> {
    let classes = classes::all(a.frames);
    let measured = measured(a, &classes);
    std::thread::scope(|s| {
        s.spawn(|| -> Result<(Vec<report::Row>, Vec<report::Paired>)> {
            pin(0, CPU)?;
            realtime(0, PRIO)?;
            // The forwarding classes' frames arrive on the forwarding port, an interface of
            // its namespace; nothing else this thread does depends on the namespace.
            blocker_tests::rawbpf::enter_netns(&port.ns)?;
            // deltas[size][measured]: one figure per round.
            let mut deltas = vec![vec![Vec::with_capacity(a.rounds); measured.len()]; loaded.len()];
            for round in 0..a.rounds {
                for (m, &(c, in_loop)) in measured.iter().enumerate() {
                    let class = &classes[c];
                    crate::stop::check()?;
                    // The same frames for every program of the round (each has maps of its
                    // own); new flows every round where the class needs them.
                    let sequences = class.sequences(round, a.frames);
                    let warmers = class.warmers(round, a.frames);
                    let order = loop_order(&sequences);
                    if in_loop {
                        seq.load(&order)?;
                    }
                    // Every other round in reverse: whichever runs right after another
                    // program's run of the class finds more of the machine warm.
                    for k in 0..loaded.len() {
                        let i = if round % 2 == 0 { k } else { loaded.len() - 1 - k };
                        let delta = if in_loop {
                            sample_loop(&loaded[i].dp, seq, &order, class, sequences.len(), round == 0)?
                        } else {
                            sample(a, &mut loaded[i].dp, port, class, &sequences, warmers.as_deref(), round == 0)?
                        };
                        deltas[i][m].push(delta);
                    }
                    if class.fresh.is_some() {
                        for l in loaded.iter_mut() {
                            forget_flows(&mut l.dp).with_context(|| format!("forgetting the flows of class \"{}\"", class.name))?;
                        }
                    }
                }
                eprintln!("round {} of {} done", round + 1, a.rounds);
            }
            let paired = paired(loaded, &deltas, |m| row_name(&classes[measured[m].0], measured[m].1));
            for p in &paired {
                eprintln!("  {:>8} {:<60} {:>+8.1} ns [{}], half the rounds within {:+.1}..{:+.1}", p.size, p.class, p.median, p.other, p.quartiles.0, p.quartiles.1);
            }
            let mut rows = Vec::new();
            for (i, l) in loaded.iter().enumerate() {
                for (m, &(c, in_loop)) in measured.iter().enumerate() {
                    let d = &mut deltas[i][m];
                    d.sort_by(f64::total_cmp);
                    let (median, lowest, highest) = (d[d.len() / 2], d[0], d[d.len() - 1]);
                    let class = row_name(&classes[c], in_loop);
                    let name = match &l.other {
                        None => class,
                        Some(label) => format!("{class} [{label}]"),
                    };
                    eprintln!("  {:>8} {name:<60} {median:>8.1} ns above the empty program", l.size);
                    rows.push(report::Row { size: l.size, class: name, ns_above_empty: median, lowest, highest });
                }
            }
            Ok((rows, paired))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the measuring thread panicked"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paired_difference_is_taken_round_by_round() {
        // The rounds swing by 200 ns (the machine's phases); the other build costs 10 ns more
        // than this one in every round but one, where it cost 40 ns less.
        let this = [100.0, 300.0, 110.0, 310.0, 120.0];
        let other = [110.0, 310.0, 120.0, 320.0, 80.0];
        let (median, (lo, hi)) = paired_difference(&other, &this);
        assert_eq!((median, lo, hi), (10.0, 10.0, 10.0));
    }

    #[test]
    fn quartiles_bound_the_middle_half() {
        let (m, (lo, hi)) = median_and_quartiles(vec![5.0, 1.0, 4.0, 2.0, 3.0, 8.0, 7.0, 6.0]);
        assert_eq!((m, lo, hi), (5.0, 3.0, 7.0));
    }

    #[test]
    fn a_loop_runs_every_flows_first_segment_before_any_second() {
        let seq = |flow: u8, n: usize| (0..n).map(|j| vec![flow, j as u8]).collect::<Vec<_>>();
        let sequences = vec![seq(0, 2), seq(1, 1), seq(2, 2)];
        let order: Vec<&[u8]> = loop_order(&sequences);
        assert_eq!(order, [&[0, 0][..], &[1, 0], &[2, 0], &[0, 1], &[2, 1]]);
    }

    #[test]
    fn only_classes_that_run_once_on_fixed_flows_without_forwarding_are_looped() {
        let all = classes::all(4);
        let names: Vec<&str> = all.iter().filter(|c| looped(c)).map(|c| c.name).collect();
        assert!(names.iter().any(|n| n.contains("name after the key share")), "{names:?}");
        assert!(names.iter().any(|n| n.contains("name in segment 2")), "{names:?}");
        // Listed flows are remembered as blocked, so their frames would not repeat; a repeated
        // class is timed without system calls between its runs already; forwarded frames need
        // their port.
        for name in ["clienthello 1 segment listed (reset)", "clienthello 1 segment unlisted", "forwarded tcp ack v4, route cache"] {
            assert!(!names.contains(&name), "{name}");
        }
    }
}
