//! `blocker-bench [micro] [control] [throughput]` (all when none is named; needs root).
//!
//! `micro`: what the XDP program costs per packet, by traffic class and list size, as ns above
//! an empty XDP program in the same run (micro.rs).
//!
//! `control`: what the controller pays to load and swap large lists: time, peak memory, kernel
//! memory per entry (control.rs).
//!
//! `throughput`: packets per second through a forwarding namespace with the blocker, nftables
//! sets, iptables + ipset and plain forwarding, the same list and traffic (throughput.rs).
//!
//! Results go to `bench/results/` as CSV and Markdown (micro.*, control.*, throughput.*), with
//! SVG charts (chart.rs).

mod chart;
mod classes;
mod control;
mod forward_port;
mod lists;
mod memcg;
mod micro;
mod micro_targets;
mod report;
mod sequencer;
mod stop;
mod throughput;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Per-packet cost of the XDP program by traffic class and list size.
    Micro,
    /// Time and memory to load and swap large lists.
    Control,
    /// Packets per second through a forwarding namespace: blocker, nftables, iptables + ipset,
    /// plain forwarding.
    Throughput,
    /// Only redraw the charts (micro, control, throughput) from their CSV files (not part of "all").
    Charts,
}

#[derive(Parser, Debug)]
#[command(about = "Benchmarks of blocker: per-packet cost of the XDP program, the control plane's load and swap, and throughput against nftables, ipset and plain forwarding (needs root)")]
struct Args {
    /// What to run; all when none is named.
    #[arg(value_enum)]
    modes: Vec<Mode>,
    /// List sizes to measure: that many prefixes AND that many names.
    #[arg(long, value_delimiter = ',', default_value = "0,10000,1000000")]
    sizes: Vec<usize>,
    /// Distinct frames per traffic class (1 to 5000: the classes' flows must stay apart).
    #[arg(long, default_value_t = 256, value_parser = frames)]
    frames: usize,
    /// Kernel repetitions per frame and test run.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// micro: also time the program of this XDP object (another build's, e.g. before a change),
    /// in the same rounds; its rows carry the file's name, and its cost minus this build's is
    /// reported round by round.
    #[arg(long)]
    compare_object: Option<PathBuf>,
    /// micro: only the rows whose name contains this (e.g. "clienthello"; "back to back" for
    /// the looped rows alone).
    #[arg(long)]
    micro_only: Option<String>,
    /// Rounds per class; the median is reported.
    #[arg(long, default_value_t = 21, value_parser = at_least_one)]
    rounds: usize,
    /// Where the CSV and Markdown reports go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// control: list sizes, that many names AND that many prefixes.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    control_sizes: Vec<usize>,
    /// control: share of each list that changes from one generation to the next.
    #[arg(long, default_value_t = 0.01)]
    control_change: f64,
    /// throughput: prefixes in the list every variant blocks.
    #[arg(long, default_value_t = 1_000_000)]
    tp_prefixes: usize,
    /// throughput: names the blocker holds besides (the others cannot match names).
    #[arg(long, default_value_t = 1_000_000)]
    tp_names: usize,
    /// throughput: rounds over all variants; the median is reported.
    #[arg(long, default_value_t = 7)]
    tp_rounds: usize,
    /// throughput: seconds of traffic per variant and round.
    #[arg(long, default_value_t = 1.5)]
    tp_seconds: f64,
    /// throughput: the CPU of the generator and of the veth that takes the blocker's resets.
    #[arg(long, default_value_t = 0)]
    tp_gen_cpu: usize,
    /// throughput: the CPU of the DUT's receive thread (threaded NAPI).
    #[arg(long, default_value_t = 1)]
    tp_dut_cpu: usize,
    /// throughput: only the classes of the mix whose name contains this (e.g. "listed": a flood
    /// to listed addresses); the report is then throughput-<this>.{csv,md,svg}.
    #[arg(long)]
    tp_only: Option<String>,
    /// throughput: only these variants, by name, separated by commas (e.g. "blocker,plain
    /// forwarding"); the report is then throughput[-<tp-only>]-some-variants.{csv,md,svg}.
    #[arg(long)]
    tp_variants: Option<String>,
    /// Internal: measure one control size in this process and print the result.
    #[arg(long, hide = true)]
    control_child: Option<usize>,
    /// Internal: with --control-child, time the stages of a swap instead.
    #[arg(long, hide = true)]
    control_profile: bool,
}

/// `--frames`: each class's flows (and as many warmers) take source ports from a range of
/// their own, `classes::MAX_FRAMES` per class at most.
fn frames(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if (1..=classes::MAX_FRAMES).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} frames: between 1 and {} per class (each class's flows and their warmers share a range of 10000 source ports)", classes::MAX_FRAMES))
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("at least 1: the report is the median of the rounds".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}")),
    }
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if let Some(size) = a.control_child {
        return control::child(size, a.control_change, a.control_profile);
    }
    let all = a.modes.is_empty();
    if all || a.modes.contains(&Mode::Micro) {
        micro::run(&a)?;
        report::write_charts(&a.out)?;
    }
    if all || a.modes.contains(&Mode::Control) {
        let (rows, stages) = control::run(&a.control_sizes, a.control_change)?;
        report::write_control(&a.out, &rows, &stages, a.control_change)?;
        report::write_charts(&a.out)?;
    }
    if a.modes.contains(&Mode::Charts) {
        report::write_charts(&a.out)?;
    }
    if all || a.modes.contains(&Mode::Throughput) {
        let o = throughput::Options {
            prefixes: a.tp_prefixes,
            names: a.tp_names,
            rounds: a.tp_rounds,
            seconds: a.tp_seconds,
            gen_cpu: a.tp_gen_cpu,
            dut_cpu: a.tp_dut_cpu,
            only: a.tp_only.clone(),
            variants: a.tp_variants.as_deref().map(throughput::Variant::parse_list).transpose()?.unwrap_or_default(),
        };
        let outcome = throughput::run(&o)?;
        report::write_throughput(&a.out, &outcome)?;
    }
    Ok(())
}
