//! The benchmark report: a CSV of every row and a Markdown table, with the machine they ran on.

use std::{fmt::Write as _, fs, path::Path};

pub struct Row {
    pub size: usize,
    pub class: String,
    /// The median round's ns per packet above the empty program, and the lowest and highest
    /// round's: on a shared machine a round is either near the lowest or visibly disturbed.
    pub ns_above_empty: f64,
    pub lowest: f64,
    pub highest: f64,
}

/// `--compare-object`: the other build's figure minus this build's, taken round by round
/// (micro.rs `paired`).
pub struct Paired {
    pub size: usize,
    pub class: String,
    /// The other object's file name.
    pub other: String,
    pub median: f64,
    /// The lower and upper quartile of the differences.
    pub quartiles: (f64, f64),
}

fn machine() -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    format!("kernel {}, CPU {cpu}", kernel.trim())
}

/// `micro.csv` and `micro.md`: a class per row, a list size per column, then the targets
/// judged on them (micro_targets.rs). A hand-kept part of micro.md, from its `## Issue 7`
/// heading on (before/after comparisons, the analysis), survives a rerun.
pub fn write(dir: &Path, rows: &[Row], paired: &[Paired], rounds: usize) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let mut csv = String::from("list_size,class,ns_above_empty,lowest,highest\n");
    for r in rows {
        writeln!(csv, "{},{},{:.1},{:.1},{:.1}", r.size, r.class, r.ns_above_empty, r.lowest, r.highest)?;
    }
    fs::write(dir.join("micro.csv"), csv)?;
    let kept = fs::read_to_string(dir.join("micro.md")).ok().and_then(|t| t.find("\n## Issue 7").map(|i| t[i..].to_string()));
    let mut sizes: Vec<usize> = Vec::new();
    let mut classes: Vec<&str> = Vec::new();
    for r in rows {
        if !sizes.contains(&r.size) {
            sizes.push(r.size);
        }
        if !classes.contains(&r.class.as_str()) {
            classes.push(&r.class);
        }
    }
    let mut md = format!(
        "# Micro benchmark\n\n{}\n\nns per packet above an empty XDP program timed in the same run, frame by frame: the median of \
         {rounds} rounds, with the lowest and the highest round in brackets. Columns: prefixes (90% IPv4 hosts, 10% IPv6 /64s) + names listed; at every size also `blocked.example` and 2001:db8:bad::/48, \
         in the /32 of the IPv6 classes' destinations. Each test run repeats its frame in the kernel, except for the classes whose \
         frames change state or are rewritten (\"run once\", the listed classes, the hellos whose reader waits between segments): \
         those run each frame once, right after an untimed frame of another flow of the class at the same point, as on a loaded \
         link, where the frames before keep the program warm and only the flow's own state is cold. Those that leave no state \
         behind once their flows are judged are also timed \"back to back\": all their frames in one test run, one after another \
         as a NIC's receive loop runs them (a sequencer program writes each frame and tail-calls the program; the empty program \
         is looped alike), every flow's first segment, then every flow's second, the sum per flow. The \"forwarded\" classes \
         are router mode's XDP forwarding (on for them only): each frame, to a destination of its own, arrives on a port of a \
         namespace with routes (both programs' test runs name that port) and is routed by the program, its repetitions rewritten \
         in place one hop further (TTL 255); with the route cache, a frame asks the FIB on its first run and takes the cached \
         answer on the others, so the two rows of a family differ by what a cache hit saves.\n\n",
        machine()
    );
    md += "| class |";
    for s in &sizes {
        write!(md, " {s} + {s} |")?;
    }
    md += "\n|---|";
    md += &"---:|".repeat(sizes.len());
    md += "\n";
    for c in &classes {
        write!(md, "| {c} |")?;
        for s in &sizes {
            match rows.iter().find(|r| r.class == *c && r.size == *s) {
                Some(r) => write!(md, " {:.0} ({:.0}–{:.0}) |", r.ns_above_empty, r.lowest, r.highest)?,
                None => md += " |",
            }
        }
        md += "\n";
    }
    md += "\n";
    if let Some(first) = paired.first() {
        write!(
            md,
            "## {} against this build, round by round\n\nIts figure minus this build's in the same round (both run one right after the other, so the \
             machine's shifts between rounds drop out): the median over the rounds, and the range of the middle half of them. \
             Negative: {} costs less.\n\n| class | list size | difference ns | middle half |\n|---|---:|---:|---|\n",
            first.other, first.other
        )?;
        for p in paired {
            writeln!(md, "| {} | {} | {:+.0} | {:+.0} to {:+.0} |", p.class, p.size, p.median, p.quartiles.0, p.quartiles.1)?;
        }
        md += "\n";
    }
    md += &crate::micro_targets::section(rows);
    if let Some(k) = kept {
        md += k.trim_start_matches('\n');
    }
    fs::write(dir.join("micro.md"), md)?;
    eprintln!("wrote {}", dir.join("micro.md").display());
    Ok(())
}

/// The control-plane report: `control.csv` (every field of every size) and `control.md` (the
/// table, and the targets judged at the largest size). A hand-kept part of control.md, from
/// its `## Issue 7` heading on (the before/after comparison and the analysis), survives a rerun.
pub fn write_control(dir: &Path, rows: &[crate::control::Measurement], stages: &[crate::control::Stage], change: f64) -> anyhow::Result<()> {
    use crate::control::Measurement;
    fs::create_dir_all(dir)?;
    let mut csv = Measurement::csv_header() + "\n";
    for r in rows {
        csv += &(r.csv_row() + "\n");
    }
    fs::write(dir.join("control.csv"), csv)?;
    let kept = fs::read_to_string(dir.join("control.md")).ok().and_then(|t| t.find("\n## Issue 7").map(|i| t[i..].to_string()));

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let per = |b: u64, r: &Measurement| b as f64 / r.entries().max(1) as f64;
    let mut md = format!(
        "# Control-plane benchmark\n\n{}\n\n\
         What the controller pays to load and swap N names + N prefixes through the real pipeline \
         (bench/src/control.rs): list files on disk, `ListManager::update` (read, digest, parse, build the set, \
         diff, guards, install as a generation, persist to the state directory) into the kernel maps. Update 1 \
         loads the set into empty maps; updates 2 and 3 each change {:.0}% of each list, 2 into the empty slot, \
         3 into the slot that still holds update 1's generation, which the install turns into update 3's by writing \
         the difference (the steady state while the previous generation is kept). Then the rollback window ends \
         (`ListManager::end_rollback_window_due`, as the daemon's loop calls it): the previous generation is no longer one to \
         switch back to, but stays in the maps until the next install (both generations share one map element per \
         key, with a value half per slot), and the kernel memory is measured again. Each size runs in a fresh process. Times are wall-clock on a shared 2-core \
         machine (load average at the end of the run: {}): other work stretches them.\n\n",
        machine(),
        change * 100.0,
        fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
    );
    md += "| N names + N prefixes | list files MiB | load s (install) | swap, empty slot s (install) | swap, full slot s (install) \
           | peak RSS MiB (load / swaps) | kernel MiB, both slots: memlock / measured | B/entry | kernel MiB, one generation: memlock / measured | B/entry |\n\
           |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in rows {
        writeln!(
            md,
            "| {} | {:.0} | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} |",
            r.size,
            mib(r.list_bytes),
            r.load_s,
            r.load_install_s,
            r.swap1_s,
            r.swap1_install_s,
            r.swap2_s,
            r.swap2_install_s,
            mib(r.peak_rss_load),
            mib(r.peak_rss_swaps),
            mib(r.memlock_total),
            mib(r.kernel_measured()),
            per(r.memlock_total, r),
            per(r.kernel_measured(), r),
            mib(r.memlock_one),
            mib(r.kernel_measured_one()),
            per(r.memlock_one, r),
            per(r.kernel_measured_one(), r)
        )?;
    }
    md += "\nPer entry: the list maps' kernel memory divided by the entries of one generation (names + prefixes as \
           installed); \"both slots\" while the previous generation is kept for a one-step rollback (the rollback window, \
           one hour by default, after each update), \"one generation\" after it (the window's end writes nothing: the \
           two differ only by noise).\n\n";
    md += "memlock per map (MiB, both slots full):\n\n| N | NAMES | BLOCK_V4 | BLOCK_V6 | ALLOW_V4+V6 | COARSE_V4+V6 | at load (whole) |\n|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in rows {
        writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.size,
            mib(r.memlock_names),
            mib(r.memlock_block_v4),
            mib(r.memlock_block_v6),
            mib(r.memlock_allow),
            mib(r.memlock_coarse),
            mib(r.memlock_at_load)
        )?;
    }

    if let Some(r) = rows.iter().max_by_key(|r| r.size) {
        let secs = |v: f64, limit: f64| verdict(v / limit, &format!("{:.1} s", v - limit));
        let bytes = |v: f64, limit: f64, unit: &str| verdict(v / limit, &format!("{:.0} {unit}", v - limit));
        let load_install = r.load_install_s / r.load_s.max(1e-9);
        let swap_install = r.swap2_install_s / r.swap2_s.max(1e-9);
        writeln!(md, "\n## Targets, at N = {} ({} entries per generation)\n", r.size, r.entries())?;
        md += "| target | limit | measured | ratio | verdict |\n|---|---:|---:|---:|---|\n";
        let (v, t) = (r.load_s, 10.0);
        writeln!(md, "| load (update 1) | {t:.0} s | {v:.2} s | {:.2} | {} |", v / t, secs(v, t))?;
        let v = r.worst_swap_s();
        writeln!(md, "| swap (worst of updates 2, 3) | {t:.0} s | {v:.2} s | {:.2} | {} |", v / t, secs(v, t))?;
        let v = r.load_s + r.worst_swap_s();
        writeln!(md, "| load + swap, one after the other | {t:.0} s | {v:.2} s | {:.2} | {} |", v / t, secs(v, t))?;
        let (v, t) = (mib(r.peak_rss()), 1024.0);
        writeln!(md, "| peak controller memory (VmHWM) | 1 GiB | {v:.0} MiB | {:.2} | {} |", v / t, bytes(v, t, "MiB"))?;
        let t = 200.0;
        for (what, v) in [
            ("kernel memory per entry, measured, one generation (steady state)", per(r.kernel_measured_one(), r)),
            ("kernel memory per entry, memlock, one generation (steady state)", per(r.memlock_one, r)),
            ("kernel memory per entry, measured, both slots (rollback window)", per(r.kernel_measured(), r)),
            ("kernel memory per entry, memlock, both slots (rollback window)", per(r.memlock_total, r)),
        ] {
            writeln!(md, "| {what} | {t:.0} B | {v:.0} B | {:.2} | {} |", v / t, bytes(v, t, "B"))?;
        }

        md += "\n### Where it goes\n\n";
        writeln!(
            md,
            "- Time: the install is {:.0}% of the load and {:.0}% of the steady-state swap; the rest is reading, digesting, \
             parsing, building the set, the diff against the live set, the guards and persisting the lists to the state \
             directory. The install into the empty slot writes every element of the generation ({:.2} s); the one into the \
             full slot writes only the difference against the generation the slot holds ({:.2} s). The end of the \
             rollback window writes nothing ({:.3} s).",
            100.0 * load_install,
            100.0 * swap_install,
            r.swap1_install_s,
            r.swap2_install_s,
            r.release_s
        )?;
        md += "- The install keeps, per slot, every key of its generation with its value (`datapath/slot.rs`); both slots \
               share one element per key, whose value holds each slot's half (`datapath/shared.rs`), and ids are kept across \
               generations for unchanged entries, so a swap deletes the elements neither generation lists any more and \
               writes those whose value changes, in batches of 4096 per bpf() call (BPF_MAP_UPDATE_BATCH / DELETE_BATCH). \
               Into the empty slot that is every element (each gains its half); into the full slot, the difference. Where \
               what the slots hold is not known (after an adoption of pinned maps, or a failed install) the maps are read \
               back first.\n";
        let held = stages.first().map(|st| st.rss_after).unwrap_or(0);
        writeln!(
            md,
            "- Controller memory: {:.0} MiB of list files; the process holds {:.0} MiB with the live set (about {:.0} B \
             per entry, see the stage table below: the set, and the install's record of both slots), and during an update \
             it holds besides the set being built, the parsed entries of the changed lists and the new slot record.",
            mib(r.list_bytes),
            mib(held),
            held as f64 / r.entries().max(1) as f64
        )?;
        let nodes = r.objects_64.max(0) as f64;
        let prefixes = (r.prefixes_v4 + r.prefixes_v6) as f64;
        writeln!(
            md,
            "- Kernel memory: NAMES keeps a bucket array sized by its capacity and the 8 MiB name filter \
             ({:.0} MiB whole, with the coarse bitmaps {:.0} MiB at load) plus a 96-byte element per name that either \
             generation lists, shared by both ({} more 96-byte objects for {} names per generation). Each LPM-trie node is a \
             64-byte object, likewise shared, and a trie adds an intermediate node at every branch: {:.0} more 64-byte \
             objects for {:.0} prefixes per generation, {:.2} nodes per prefix. memlock counts only the {}-byte (IPv4) and \
             {}-byte (IPv6) payload of the entries' own nodes, so for the tries it reads low. After the rollback window: \
             {} 96-byte and {} 64-byte objects more than at load.",
            mib(r.memlock_at_load.saturating_sub(r.memlock_coarse)),
            mib(r.memlock_at_load),
            r.objects_96,
            r.names,
            nodes,
            prefixes,
            nodes / prefixes.max(1.0),
            24 + 4 + 16,
            24 + 16 + 16,
            r.objects_96_one,
            r.objects_64_one
        )?;
    }
    if let Some(r) = rows.iter().max_by_key(|r| r.size) {
        if !stages.is_empty() {
            writeln!(
                md,
                "\n### A steady-state swap of N = {}, stage by stage\n\nThe stages of update 3 timed one by one in a fresh process, \
                 with the functions the manager calls; RSS after each stage and its peak during it (the live set is held \
                 throughout, as the manager holds it).\n",
                r.size
            )?;
            md += "| stage | s | RSS after MiB | peak during MiB |\n|---|---:|---:|---:|\n";
            for st in stages {
                writeln!(md, "| {} | {:.2} | {:.0} | {:.0} |", st.name, st.seconds, mib(st.rss_after), mib(st.peak_rss))?;
            }
        }
    }
    md += "\nMeasured kernel memory: the list maps' memlock at load (arrays and the NAMES bucket array, allocated whole) plus \
           what the process's own memory cgroup was charged from then on (bench/src/memcg.rs: the child process makes a cgroup \
           of its own and enters it first; a map's elements are charged, object by object, to the cgroup of the process that \
           created the map, and uncharged when freed; the process's page tables are in it too, a few MiB). Elements an \
           install replaces or deletes are uncharged after RCU grace periods (datapath/freeing.rs sends them on after each \
           install); the benchmark waits until the charge stops falling. \
           Where no cgroup can be made, the system-wide counts of the accounted kmalloc caches \
           (`kmalloc-cg-64`: LPM-trie nodes; `kmalloc-cg-96`: NAMES elements; /proc/slabinfo) stand in, which other \
           processes' work and the slab allocator's partly free slabs make noisy. control.csv keeps both, and the growth of \
           all accounted slab pages, vmalloc and per-CPU memory (`kernel_growth`). memlock is the kernel's own figure \
           (/proc/self/fdinfo of the map descriptors).\n";
    if let Some(kept) = kept {
        md += &kept;
    }
    fs::write(dir.join("control.md"), md)?;
    eprintln!("wrote {}", dir.join("control.md").display());
    Ok(())
}

fn verdict(ratio: f64, over: &str) -> String {
    if ratio <= 1.0 { "met".into() } else { format!("missed by {over}") }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// One variant's medians over the rounds.
struct Summary {
    variant: crate::throughput::Variant,
    pps: f64,
    forwarded_pps: f64,
    offered_pps: f64,
    busy: f64,
    ns_per_frame: f64,
    min_pps: f64,
    max_pps: f64,
    listed_through: u64,
    unknown: u64,
    replies: u64,
    ring_drops: u64,
    sink_drops: u64,
    blocked: u64,
    received: u64,
    offered: u64,
    rounds: usize,
    /// The median over rounds of this variant's rate divided by the rate of its mode's blocker
    /// in the same round.
    paired_ratio: f64,
}

fn summarise(o: &crate::throughput::Outcome) -> Vec<Summary> {
    use crate::throughput::Variant;
    Variant::ALL
        .iter()
        .filter_map(|&v| {
            let rs: Vec<_> = o.rounds.iter().filter(|r| r.variant == v).collect();
            if rs.is_empty() {
                return None;
            }
            let col = |f: &dyn Fn(&crate::throughput::Round) -> f64| median(rs.iter().map(|r| f(r)).collect());
            let reference = v.mode().blocker();
            Some(Summary {
                variant: v,
                pps: col(&|r| r.pps()),
                forwarded_pps: col(&|r| r.forwarded_pps()),
                offered_pps: col(&|r| r.offered_pps()),
                busy: col(&|r| r.dut_busy),
                ns_per_frame: col(&|r| r.ns_per_frame()),
                min_pps: rs.iter().map(|r| r.pps()).fold(f64::INFINITY, f64::min),
                max_pps: rs.iter().map(|r| r.pps()).fold(0.0, f64::max),
                listed_through: rs.iter().map(|r| r.listed_delivered).sum(),
                unknown: rs.iter().map(|r| r.unknown_delivered).sum(),
                replies: rs.iter().map(|r| r.replies).sum(),
                ring_drops: rs.iter().map(|r| r.ring_drops).sum(),
                sink_drops: rs.iter().map(|r| r.sink_drops).sum(),
                blocked: rs.iter().map(|r| r.blocker_blocked).sum(),
                received: rs.iter().map(|r| r.received).sum(),
                offered: rs.iter().map(|r| r.offered).sum(),
                rounds: rs.len(),
                paired_ratio: median(
                    rs.iter()
                        .filter_map(|r| o.rounds.iter().find(|b| b.round == r.round && b.variant == reference).map(|b| r.pps() / b.pps()))
                        .collect(),
                ),
            })
        })
        .collect()
}

/// "met (…)" or "missed (…)" for a measured ratio against a target ratio that it must reach.
fn at_least(measured: f64, target: f64) -> String {
    if measured >= target {
        format!("met, by {:.2}×", measured - target)
    } else {
        format!("missed: {:.0}% of the target; it needs {:.0}% more frames per second", 100.0 * measured / target, 100.0 * (target / measured - 1.0))
    }
}

/// The throughput report: `throughput.csv` (every round), `throughput.md` (medians, ratios,
/// targets per mode) and `throughput.svg` (a bar chart of the medians); `throughput-<classes>.*`
/// for a run on part of the mix (`--tp-only`). A hand-kept part of the Markdown report, from its
/// `## Issue 7` heading on (the analysis by hand), survives a rerun.
pub fn write_throughput(dir: &Path, o: &crate::throughput::Outcome) -> anyhow::Result<()> {
    use crate::throughput::{Mode, Variant};
    fs::create_dir_all(dir)?;
    let mut csv = String::from(
        "round,variant,seconds,offered,received,forwarded,handled_pps,forwarded_pps,offered_pps,dut_busy,dut_waiting,ns_per_frame,listed_forwarded,unknown_forwarded,replies,blocker_blocked,ring_drops,sink_drops,sink_busy\n",
    );
    for r in &o.rounds {
        writeln!(
            csv,
            "{},{},{:.3},{},{},{},{:.0},{:.0},{:.0},{:.3},{:.3},{:.1},{},{},{},{},{},{},{:.3}",
            r.round,
            r.variant.name(),
            r.seconds,
            r.offered,
            r.received,
            r.delivered,
            r.pps(),
            r.forwarded_pps(),
            r.offered_pps(),
            r.dut_busy,
            r.dut_waiting,
            r.ns_per_frame(),
            r.listed_delivered,
            r.unknown_delivered,
            r.replies,
            r.blocker_blocked,
            r.ring_drops,
            r.sink_drops,
            r.sink_busy
        )?;
    }
    fs::write(dir.join(format!("{}.csv", o.stem)), csv)?;
    let stem = &o.stem;
    let kept = fs::read_to_string(dir.join(format!("{stem}.md"))).ok().and_then(|t| t.find("\n## Issue 7").map(|i| t[i..].to_string()));

    let sums = summarise(o);
    let total_share: u32 = o.classes.iter().map(|c| c.1).sum();
    let listed = o.classes.iter().filter(|c| c.2).map(|c| c.1).sum::<u32>() as f64 / f64::from(total_share.max(1));
    let get = |v: Variant| sums.iter().find(|s| s.variant == v);
    let pps = |v: Variant| get(v).map(|s| s.pps).unwrap_or(f64::NAN);
    let load = |v: Variant| o.setups.iter().find(|s| s.variant == v);
    let modes: Vec<Mode> = Mode::ALL.into_iter().filter(|m| sums.iter().any(|s| s.variant.mode() == *m)).collect();
    let best_nft = |m: Mode| sums.iter().filter(|s| s.variant.mode() == m && s.variant.is_nft()).max_by(|a, b| a.pps.total_cmp(&b.pps));

    let mut md = format!(
        "# Throughput benchmark\n\n{}\n\nTools: {}.\n\n\
         Frames per second a device under test (DUT) handles when it forwards a realistic mix between two veths, \
         with the blocker and with what an ISP would otherwise use, all holding the same list: {} prefixes \
         ({} IPv4, {} IPv6; the blocker also holds {} names). Two deployments, each compared within itself: \
         **router mode** (the DUT routes; allowed traffic goes on through the kernel's IP forwarding; the blocker's \
         XDP program passes it up with XDP_PASS, or with `--xdp-forward` routes it itself in XDP) and **inline mode** (a bump in the wire with two ports and no \
         addresses; the blocker forwards allowed frames from port to port with a devmap redirect, the alternative is a \
         Linux bridge). {}.\n\n",
        machine(),
        o.tools,
        o.prefixes_v4 + o.prefixes_v6,
        o.prefixes_v4,
        o.prefixes_v6,
        o.names,
        o.options
    );
    writeln!(md, "![median frames per second handled, per variant]({stem}.svg)\n")?;
    for &m in &modes {
        let reference = m.blocker();
        let b = pps(reference);
        writeln!(md, "## {}{}\n", m.name()[..1].to_uppercase(), &m.name()[1..])?;
        writeln!(
            md,
            "| variant | handled Mpps (median) | ratio to {r} | {r} ÷ variant | same-round ratio to {r} (median) | forwarded Mpps | offered Mpps | DUT busy | DUT ns per frame | range over rounds Mpps | listed frames forwarded | resets back |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            r = reference.name()
        )?;
        for s in sums.iter().filter(|s| s.variant.mode() == m) {
            writeln!(
                md,
                "| {} | {:.3} | {:.2} | {:.2} | {:.2} | {:.3} | {:.2} | {:.0}% | {:.0} | {:.3}–{:.3} | {} | {} |",
                s.variant.name(),
                s.pps / 1e6,
                s.pps / b,
                b / s.pps,
                s.paired_ratio,
                s.forwarded_pps / 1e6,
                s.offered_pps / 1e6,
                100.0 * s.busy,
                s.ns_per_frame,
                s.min_pps / 1e6,
                s.max_pps / 1e6,
                s.listed_through,
                s.replies
            )?;
        }
        md += "\n";
    }
    md += "*handled*: frames the DUT took in and judged per second (forwarded or stopped; its receiving veth's XDP count), \
           the throughput; *forwarded*: those it sent on (all but the listed ones, where those are stopped); \
           *offered*: what the generator sent; the DUT's receive ring (256 frames) overflowed with the rest. *DUT busy*: \
           the share of the round the DUT's thread ran (the real-time limit is 95%); *DUT ns per frame*: its busy time per \
           frame handled, the cost that decides the throughput. *listed frames forwarded*: frames to listed destinations \
           that the DUT sent on, over all rounds (must be 0 except in plain forwarding, the plain bridge and the plain XDP redirect); *resets back*: \
           frames that came back to the generator (the blocker's TCP resets).\n\n";

    md += "## Targets\n\nIssue 7: throughput with 1M prefixes ≥ 3× the best nftables variant and ≥ 0.8× plain forwarding; \
           each mode against its own alternatives.\n\n| mode | target | blocker | compared with | measured | verdict |\n|---|---|---|---|---:|---|\n";
    for &m in &modes {
        // Router mode has two blockers: allowed frames passed to the kernel (the default), and
        // routed by the program itself (`--xdp-forward`, opt-in).
        let blockers = sums.iter().filter(|s| s.variant.mode() == m && s.variant.is_blocker());
        for blocker in blockers {
            let b = blocker.pps;
            if let Some(n) = best_nft(m) {
                let r = b / n.pps;
                writeln!(md, "| {} | ≥ 3× the best nftables variant | {} | {} | {:.2}× | {} |", m.name(), blocker.variant.name(), n.variant.name(), r, at_least(r, 3.0))?;
            }
            if let Some(p) = get(m.plain()) {
                let r = b / p.pps;
                writeln!(md, "| {} | ≥ 0.8× plain forwarding | {} | {} | {:.2}× | {} |", m.name(), blocker.variant.name(), p.variant.name(), r, at_least(r, 0.8))?;
            }
        }
    }
    let mut checks = Vec::new();
    for s in &sums {
        if s.variant.blocks() && s.listed_through > 0 {
            checks.push(format!("{} forwarded {} frames to listed destinations", s.variant.name(), s.listed_through));
        }
        // A few frames of other lengths are the DUT's own (IPv6 neighbour discovery, MLD).
        if s.unknown * 1000 > s.received {
            checks.push(format!("{} sent {} frames of no class's length", s.variant.name(), s.unknown));
        }
        // DUT-bound: the generator kept the DUT's ring full, so it refused a good part of what was sent.
        if s.ring_drops * 20 < s.offered {
            checks.push(format!(
                "{}: the DUT's ring refused only {:.1}% of the frames sent, so the generator, not the DUT, may have set the rate",
                s.variant.name(),
                100.0 * s.ring_drops as f64 / s.offered.max(1) as f64
            ));
        }
        // A frame the sink's ring refused is neither counted nor known to be unlisted.
        if s.sink_drops > 0 {
            checks.push(format!("{}: the sink's ring refused {} frames the DUT sent on (not counted)", s.variant.name(), s.sink_drops));
        }
        // The blocker's own count of what it stopped: the listed share of what it handled.
        if s.variant.is_blocker() && listed > 0.0 {
            let share = s.blocked as f64 / s.received.max(1) as f64;
            if (share - listed).abs() > 0.01 {
                checks.push(format!("{} stopped {:.1}% of the frames it handled, not the listed {:.0}%", s.variant.name(), 100.0 * share, 100.0 * listed));
            }
        }
    }
    for &m in &modes {
        if let Some(p) = get(m.plain())
            && p.listed_through == 0
            && listed > 0.0
        {
            checks.push(format!("{} forwarded no listed frame: the listed classes did not reach the DUT", p.variant.name()));
        }
    }
    md += "\n**Checks**: ";
    if checks.is_empty() {
        md += "every variant that blocks forwarded no frame to a listed destination (plain forwarding, the plain bridge and \
               the plain XDP redirect forwarded them), and each blocker counted as stopped the listed share of what it handled; every forwarded \
               frame but a handful (the router DUT's own IPv6 neighbour discovery) had the length of a class of the mix; \
               the sink's ring refused no frame; and in every variant the DUT's receive ring refused more than 5% of the \
               frames sent (the DUT, not the generator, set the rate).";
    } else {
        md += &checks.join("; ");
        md += ".";
    }
    if !o.program_times.is_empty() {
        md += "\n\n## The program's own time, live\n\nOne more round per blocker variant, after the measured ones, with the kernel's \
               BPF run-time statistics on (they add two clock reads to every run, so these rounds are not among the rates above): \
               the blocking program's mean time per run as the kernel measured it, beside the DUT thread's whole busy time per frame \
               in the same round (the rest: the veth's receive, forwarding or redirecting, the sink's count, freeing); for XDP \
               forwarding, the share of the frames it forwarded whose route came from its route cache (the rest asked the FIB).\n\n\
               | variant | program runs | program ns per run | DUT ns per frame | program's share | routes from the cache |\n|---|---:|---:|---:|---:|---:|\n";
        for t in &o.program_times {
            writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {:.0}% | {} |",
                t.variant.name(),
                t.runs,
                t.program_ns,
                t.dut_ns_per_frame,
                100.0 * t.program_ns / t.dut_ns_per_frame.max(1.0),
                t.route_cached.map(|s| format!("{:.0}%", 100.0 * s)).unwrap_or_default()
            )?;
        }
    }
    md += "\n\n## What limits the ratios\n\n";
    if listed >= 0.5
        && let (Some(b), Some(p)) = (get(Variant::Blocker), get(Variant::Plain))
    {
        let tcp_listed = o.classes.iter().filter(|c| c.2 && c.0.starts_with("tcp")).map(|c| c.1).sum::<u32>() as f64 / f64::from(total_share.max(1));
        writeln!(
            md,
            "The DUT's CPU time per frame sets the rate (medians of its busy time per frame handled): plain forwarding \
             {:.0} ns, the blocker {:.0} ns{}.\n",
            p.ns_per_frame,
            b.ns_per_frame,
            sums.iter()
                .filter(|s| !s.variant.is_blocker() && s.variant != Variant::Plain)
                .map(|s| format!(", {} {:.0} ns", s.variant.name(), s.ns_per_frame))
                .collect::<String>()
        )?;
        writeln!(
            md,
            "- {:.0}% of these frames go to listed destinations. The blocker judges each in XDP, before the kernel allocates \
             anything; the TCP ones ({:.0}% of all) it turns into a reset and sends back out of the receiving veth, the rest \
             it drops. The resets are most of its {:.0} ns: a mix of listed UDP alone, only dropped, ran faster than the \
             generator could send (above 2 Mpps) in trials.",
            100.0 * listed,
            100.0 * tcp_listed,
            b.ns_per_frame
        )?;
        writeln!(
            md,
            "- The netfilter variants pay for the veth receive and an skb for every frame, then drop it at their hook \
             instead of forwarding it (plain forwarding's {:.0} ns per frame).",
            p.ns_per_frame
        )?;
        if let Some(n) = best_nft(Mode::Router) {
            writeln!(
                md,
                "\nA 3× ratio to the best nftables variant would need the blocker at {:.0} ns per frame or less. Dropping \
                 instead of sending resets (`--drop-tcp`) makes each blocked TCP frame cheaper; the resets are what tells a \
                 client at once that the connection is refused.",
                n.ns_per_frame / 3.0
            )?;
        }
        md += "\n";
    } else {
        if let (Some(b), Some(p)) = (get(Variant::Blocker), get(Variant::Plain)) {
            let floor = (1.0 - listed) * p.ns_per_frame;
            writeln!(
                md,
                "### Router mode\n\nThe DUT's CPU time per frame sets the rate (medians of its busy time per frame handled): plain forwarding \
                 {:.0} ns, the blocker {:.0} ns{}.\n",
                p.ns_per_frame,
                b.ns_per_frame,
                sums.iter()
                    .filter(|s| s.variant.mode() == Mode::Router && s.variant != Variant::Blocker && s.variant != Variant::Plain)
                    .map(|s| format!(", {} {:.0} ns", s.variant.name(), s.ns_per_frame))
                    .collect::<String>()
            )?;
            writeln!(
                md,
                "- Plain forwarding's {:.0} ns is the veth receive, building an skb, routing, the transmit path and freeing the \
                 packet. Every variant pays it for each frame it lets through.",
                p.ns_per_frame
            )?;
            writeln!(
                md,
                "- The blocker stops the listed {:.0}% of the frames in XDP, before the kernel allocates anything (a reset sent \
                 back, or a drop), and passes the rest up to forwarding: a blocker that cost nothing would need about \
                 {:.0}% × {:.0} = {:.0} ns per frame. The difference to the measured {:.0} ns, {:+.0} ns, is what its XDP program \
                 costs on this mix: parsing and classifying every frame, the {}-prefix trie for the traffic to the /24 it shares \
                 with a listed prefix, DNS, HTTP and ClientHello names, the resets. The range over rounds in the table shows how \
                 much this shared machine moves such differences.",
                100.0 * listed,
                100.0 * (1.0 - listed),
                p.ns_per_frame,
                floor,
                b.ns_per_frame,
                b.ns_per_frame - floor,
                o.prefixes_v4 + o.prefixes_v6
            )?;
            for s in sums.iter().filter(|s| s.variant.mode() == Mode::Router && !s.variant.is_blocker() && s.variant != Variant::Plain) {
                writeln!(
                    md,
                    "- {} adds {:+.0} ns per frame to plain forwarding: its hook and set lookup run for every frame, after the skb \
                     is built, and listed frames are dropped only then.",
                    s.variant.name(),
                    s.ns_per_frame - p.ns_per_frame
                )?;
            }
            if let Some(n) = best_nft(Mode::Router) {
                writeln!(
                    md,
                    "\nSo in router mode, where allowed traffic goes on through the kernel's forwarding path, the ratio to nftables \
                     is bounded by that path, not by the lookup: even a filter that cost nothing would handle about {:.0} / {:.0} = \
                     {:.2}× the frames of the best nftables variant here. A 3× ratio would need nftables to cost {:.0} ns per frame \
                     or more, about {:.1}× plain forwarding, or a mix where most frames are blocked (`--tp-only listed` measures \
                     that), or forwarding without the kernel stack: XDP forwarding (next), or inline mode (below).",
                    n.ns_per_frame,
                    floor,
                    n.ns_per_frame / floor,
                    3.0 * floor,
                    3.0 * floor / p.ns_per_frame
                )?;
            }
            if let Some(x) = get(Variant::BlockerXdpForward) {
                writeln!(
                    md,
                    "\n**With XDP forwarding** (`--xdp-forward`, opt-in): the program routes the allowed {:.0}% itself (the kernel's FIB \
                     through `bpf_fib_lookup`, its answers reused from a per-CPU route cache until the kernel reports a routing \
                     change, TTL and MACs rewritten, a devmap redirect to the outgoing port), so they get no skb and skip the \
                     kernel's forwarding path: {:.0} ns per frame, {:.2}× the frames of the blocker that passes them to the kernel{}. \
                     What that gives up: the frames it forwards skip this host's netfilter, tc and rp_filter, which is why it is a \
                     switch; frames the FIB does not resolve to a known neighbour (none yet, fragmentation needed, a TTL that \
                     expires here, local or multicast destinations) still go to the kernel.",
                    100.0 * (1.0 - listed),
                    x.ns_per_frame,
                    x.pps / b.pps,
                    best_nft(Mode::Router)
                        .map(|n| format!(" and {:.2}× the best nftables variant ({}, {:.0} ns)", x.pps / n.pps, n.variant.name(), n.ns_per_frame))
                        .unwrap_or_default()
                )?;
                if let Some(u) = get(Variant::BlockerXdpForwardNoCache) {
                    writeln!(
                        md,
                        "\nWithout the route cache (`--no-route-cache`: a FIB lookup for every forwarded frame) it took {:.0} ns per \
                         frame{}: the lookups cost {:+.0} ns per frame handled on this mix, about {:.0} ns per forwarded frame.",
                        u.ns_per_frame,
                        best_nft(Mode::Router).map(|n| format!(", {:.2}× the best nftables variant", u.pps / n.pps)).unwrap_or_default(),
                        u.ns_per_frame - x.ns_per_frame,
                        (u.ns_per_frame - x.ns_per_frame) / (1.0 - listed).max(0.01)
                    )?;
                }
            }
            md += "\n";
        }
        if let (Some(b), Some(p)) = (get(Variant::BlockerInline), get(Variant::PlainBridge)) {
            writeln!(
                md,
                "### Inline mode\n\nPer frame handled (medians): the plain bridge {:.0} ns, the blocker inline {:.0} ns{}.\n",
                p.ns_per_frame,
                b.ns_per_frame,
                sums.iter()
                    .filter(|s| s.variant.mode() == Mode::Inline && s.variant != Variant::BlockerInline && s.variant != Variant::PlainBridge)
                    .map(|s| format!(", {} {:.0} ns", s.variant.name(), s.ns_per_frame))
                    .collect::<String>()
            )?;
            writeln!(
                md,
                "- The plain bridge's {:.0} ns is the veth receive, building an skb, the bridge's lookup of the destination MAC, \
                 the transmit path and freeing the packet: the same kind of work as routing (plain forwarding: {:.0} ns), and \
                 every bridge variant pays it for each frame it lets through.",
                p.ns_per_frame,
                get(Variant::Plain).map(|s| s.ns_per_frame).unwrap_or(f64::NAN)
            )?;
            writeln!(
                md,
                "- The blocker inline never builds an skb: it judges each frame in XDP and hands the allowed {:.0}% to the other \
                 port with a devmap redirect (batched per NAPI poll), the listed {:.0}% it answers (resets) or drops. \
                 Its {:.0} ns is the veth's XDP receive, its program on this mix, the redirect and the sink's count and free of \
                 each forwarded frame (the counterpart of the tc sink's in the other variants); {:.0}% of the plain bridge's \
                 cost.",
                100.0 * (1.0 - listed),
                100.0 * listed,
                b.ns_per_frame,
                100.0 * b.ns_per_frame / p.ns_per_frame
            )?;
            for s in sums.iter().filter(|s| s.variant.mode() == Mode::Inline && s.variant.is_nft()) {
                writeln!(
                    md,
                    "- {} adds {:+.0} ns per frame to the plain bridge: its hook and set lookup run for every frame, on an skb \
                     already built.",
                    s.variant.name(),
                    s.ns_per_frame - p.ns_per_frame
                )?;
            }
            let floor = get(Variant::XdpRedirect);
            if let Some(x) = floor {
                writeln!(
                    md,
                    "- The plain XDP redirect's {:.0} ns is forwarding in XDP with no judgement at all: the veth's XDP receive, \
                     the redirect and the sink, as for the blocker inline. The blocker inline's program adds {:+.0} ns to it on \
                     this mix (parsing and classifying every frame, the {}-prefix trie for the traffic to the /24 it shares with a \
                     listed prefix, DNS, HTTP and ClientHello names, the resets for the listed TCP frames).",
                    x.ns_per_frame,
                    b.ns_per_frame - x.ns_per_frame,
                    o.prefixes_v4 + o.prefixes_v6
                )?;
            }
            if let Some(n) = best_nft(Mode::Inline) {
                writeln!(
                    md,
                    "\nA 3× ratio to the best bridge variant ({}, {:.0} ns) needs the blocker inline at {:.0} ns per frame or less; \
                     it took {:.0} ns.{}",
                    n.variant.name(),
                    n.ns_per_frame,
                    n.ns_per_frame / 3.0,
                    b.ns_per_frame,
                    floor
                        .map(|x| format!(
                            " Forwarding in XDP alone took {:.0} ns here, so even a filter that cost nothing would reach {:.2}× the best \
                             bridge variant; the program may cost at most {:.0} ns per frame for 3×.",
                            x.ns_per_frame,
                            n.ns_per_frame / x.ns_per_frame,
                            n.ns_per_frame / 3.0 - x.ns_per_frame
                        ))
                        .unwrap_or_default()
                )?;
            }
            md += "\n";
        }
    }

    md += "## Setup\n\n";
    md += "- Generator: an XDP program run by BPF_PROG_TEST_RUN with live frames in its own namespace; every frame it sends \
           is the next template of the mix below, with its destination and source spread over 100 addresses (the last \
           byte, keeping every checksum valid). One test run per variant and round, sized to the round's length.\n";
    md += "- DUT: one namespace per variant, each loaded once, a veth in (native XDP) and a veth out. Router mode: routing \
           to the sink with static neighbours. Inline mode: no addresses and IPv6 off; the bridge variants join the veths \
           with a Linux bridge (a static entry for the frames' destination MAC, so they are forwarded out of one port, not \
           flooded; br_netfilter's calls into the IP hooks off, as for any bridge filtered with nftables' netdev or bridge \
           family), the blocker inline joins them itself (PORTS devmap; `blocker_wire` on the outgoing veth carries the \
           other direction, which this traffic does not use), the plain XDP redirect with a one-entry devmap of its own. Variants are switched by choosing which veth the generator \
           sends on, so nothing one variant installs (a netfilter hook, a set) can slow another. The DUT's receive work \
           runs in a threaded-NAPI kernel thread on its own CPU.\n";
    md += "- Sink: every frame the DUT sends on is counted by length and dropped on the DUT's CPU where a NIC driver would \
           take it. A frame sent as an skb (routed, bridged): by a tc egress program on the outgoing veth. A frame the \
           blocker redirects with XDP (inline, or router mode's XDP forwarding) skips tc: by the same count-and-drop as a \
           devmap program on the outgoing veth's entry of the blocker's PORTS (FORWARD_PORTS), which the kernel runs just before it would hand the frame to the veth's \
           XDP transmit. Either way the DUT pays for forwarding up to the driver and for freeing the frame, not for a \
           receiver. An XDP program on the sink's veth (its own thread on the generator's CPU) counts anything that still \
           gets there, and frames that veth's ring refused are counted apart (none may be).\n";
    md += "- The variants without the blocker have `return XDP_PASS` on the receiving veth (a veth takes frames sent from \
           XDP only with an XDP program); its cost is in their numbers and is a few ns.\n";
    md += "- Real-time scheduling (SCHED_FIFO) for the generator, the DUT's thread, the veth that takes the blocker's resets \
           and the sink's veth, for the rounds only: other sessions' work on this shared machine otherwise took half the CPU.\n\n";
    md += "| variant | set up in | how |\n|---|---:|---|\n";
    for v in Variant::ALL {
        if let Some(s) = load(v) {
            writeln!(md, "| {} | {:.1} s | {} |", v.name(), s.load.as_secs_f64(), s.detail)?;
        }
    }
    md += "\nThe traffic mix (share of frames; every class has its own frame length, so the sink's counts tell the classes \
           apart; 16 templates per class: ports, names, address bases):\n\n| class | share | frame bytes | listed destination |\n|---|---:|---:|---|\n";
    for (name, share, listed, len) in &o.classes {
        writeln!(md, "| {name} | {share}% | {len} | {} |", if *listed { "yes" } else { "" })?;
    }
    md += "\nThe list: 203.0.113.128/25 and 2001:db8:bad::/48 (the listed classes go there; allowed traffic goes to \
           198.51.100.0/24, 2001:db8:e::/48 and 203.0.113.0/25, the last in the same /24 as a listed prefix, so the \
           blocker's coarse filter sends it on to its trie; 2001:db8:e::/48 shares its /32 with the listed /48, which the \
           coarse filter tells apart), and random prefixes no frame is sent to: 80% IPv4 hosts, \
           10% IPv4 /24s, 10% IPv6 /64s.\n";
    writeln!(md, "\nEvery round's numbers are in {stem}.csv.")?;
    if let Some(kept) = kept {
        md += &kept;
    }
    fs::write(dir.join(format!("{stem}.md")), md)?;

    let bars: Vec<(String, f64, f64, f64)> = sums.iter().map(|s| (s.variant.name().to_string(), s.pps, s.min_pps, s.max_pps)).collect();
    throughput_chart(&dir.join(format!("{stem}.svg")), sums.first().map(|s| s.rounds).unwrap_or(0), o.prefixes_v4 + o.prefixes_v6, &bars)?;
    eprintln!("wrote {}", dir.join(format!("{stem}.md")).display());
    Ok(())
}

/// The throughput chart: per variant (name, median, min, max frames handled per second), the
/// router-mode blocker's bar highlighted, each bar noted with its ratio to the blocker of its
/// mode (variants of a CSV from before inline mode have only the router-mode blocker).
fn throughput_chart(path: &Path, rounds: usize, prefixes: usize, bars: &[(String, f64, f64, f64)]) -> anyhow::Result<()> {
    use crate::throughput::Variant;
    let of = |v: Variant| bars.iter().find(|b| b.0 == v.name()).map(|b| b.1).unwrap_or(f64::NAN);
    let groups: Vec<crate::chart::Group> = bars
        .iter()
        .map(|(name, pps, lo, hi)| {
            let reference = Variant::ALL.iter().find(|v| v.name() == name).map(|v| v.mode().blocker()).unwrap_or(Variant::Blocker);
            crate::chart::Group {
                label: name.clone(),
                values: vec![pps / 1e6],
                notes: vec![format!("{:.3} Mpps, {:.2}× {}", pps / 1e6, pps / of(reference), if reference == Variant::Blocker { "the blocker" } else { "the blocker inline" })],
                ranges: vec![Some((lo / 1e6, hi / 1e6))],
            }
        })
        .collect();
    let highlight = bars.iter().position(|b| b.0 == Variant::Blocker.name());
    crate::chart::hbars(
        path,
        &format!("Frames handled per second: median of {rounds} rounds, their range as a line ({prefixes} prefixes)"),
        "million frames per second",
        &["handled"],
        &groups,
        highlight,
    )
}

/// Redraws `throughput*.svg` from `throughput*.csv` (the list size from the Markdown report).
fn throughput_charts(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".csv").filter(|s| s.starts_with("throughput")) else { continue };
        let text = fs::read_to_string(entry.path())?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let (Some(v), Some(pps), Some(round)) =
            (header.iter().position(|h| *h == "variant"), header.iter().position(|h| *h == "handled_pps"), header.iter().position(|h| *h == "round"))
        else {
            continue;
        };
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let mut bars = Vec::new();
        for variant in crate::throughput::Variant::ALL {
            let vals: Vec<f64> = rows.iter().filter(|r| r.get(v) == Some(&variant.name())).filter_map(|r| r.get(pps)?.parse().ok()).collect();
            if vals.is_empty() {
                continue;
            }
            let (lo, hi) = (vals.iter().copied().fold(f64::INFINITY, f64::min), vals.iter().copied().fold(0.0, f64::max));
            bars.push((variant.name().to_string(), median(vals), lo, hi));
        }
        let rounds = rows.iter().filter_map(|r| r.get(round)?.parse::<usize>().ok()).max().unwrap_or(0);
        let prefixes = fs::read_to_string(dir.join(format!("{stem}.md")))
            .ok()
            .and_then(|md| md.split("same list: ").nth(1)?.split(' ').next()?.parse().ok())
            .unwrap_or(0);
        throughput_chart(&dir.join(format!("{stem}.svg")), rounds, prefixes, &bars)?;
    }
    Ok(())
}

/// Draws `micro.svg` and `control.svg` from `micro.csv` and `control.csv` in `dir` (those that
/// exist), and links each from its Markdown report if it does not yet; redraws the throughput
/// charts from their CSV files.
pub fn write_charts(dir: &Path) -> anyhow::Result<()> {
    use crate::chart::{Group, hbars};
    throughput_charts(dir)?;
    let read = |name: &str| -> Option<(Vec<String>, Vec<Vec<String>>)> {
        let text = fs::read_to_string(dir.join(name)).ok()?;
        let mut lines = text.lines();
        let header = lines.next()?.split(',').map(str::to_string).collect();
        Some((header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect()))
    };
    let col = |header: &[String], name: &str| header.iter().position(|h| h == name).ok_or_else(|| anyhow::anyhow!("no column {name}"));
    let link = |md: &str, svg: &str, alt: &str| -> anyhow::Result<()> {
        let path = dir.join(md);
        if let Ok(text) = fs::read_to_string(&path)
            && !text.contains(svg)
        {
            // After the first paragraph (the title and the machine line).
            let at = text.find("\n\n").map(|i| i + 2).and_then(|i| text[i..].find("\n\n").map(|j| i + j + 2)).unwrap_or(text.len());
            fs::write(&path, format!("{}![{alt}]({svg})\n\n{}", &text[..at], &text[at..]))?;
        }
        Ok(())
    };

    if let Some((h, rows)) = read("micro.csv") {
        // As report::write writes it (one figure per size), or hand-assembled with a figure before
        // and after a change.
        let columns: Vec<(&str, &str)> = if h.iter().any(|c| c == "ns_above_empty") {
            vec![("ns_above_empty", "")]
        } else {
            vec![("ns_above_empty_before", "before"), ("ns_above_empty_after", "after")]
        };
        if let (Ok(size), Ok(class), Ok(cols)) =
            (col(&h, "list_size"), col(&h, "class"), columns.iter().map(|(c, tag)| col(&h, c).map(|i| (i, *tag))).collect::<anyhow::Result<Vec<_>>>())
        {
            let mut sizes: Vec<String> = Vec::new();
            let mut classes: Vec<String> = Vec::new();
            for r in &rows {
                if !sizes.contains(&r[size]) {
                    sizes.push(r[size].clone());
                }
                if !classes.contains(&r[class]) {
                    classes.push(r[class].clone());
                }
            }
            let series: Vec<(String, usize, String)> = sizes
                .iter()
                .flat_map(|sz| cols.iter().map(move |(i, tag)| (sz.clone(), *i, if tag.is_empty() { format!("{sz} prefixes + {sz} names") } else { format!("{sz} prefixes + {sz} names, {tag}") })))
                .collect();
            let groups: Vec<Group> = classes
                .iter()
                .map(|c| {
                    let values: Vec<f64> = series
                        .iter()
                        .map(|(sz, i, _)| rows.iter().find(|r| &r[class] == c && &r[size] == sz).and_then(|r| r.get(*i)?.parse().ok()).unwrap_or(f64::NAN))
                        .collect();
                    // The lowest and highest round, where the CSV has them.
                    let ranges = series
                        .iter()
                        .map(|(sz, _, _)| {
                            let r = rows.iter().find(|r| &r[class] == c && &r[size] == sz)?;
                            let at = |name: &str| col(&h, name).ok().and_then(|i| r.get(i)?.parse::<f64>().ok());
                            Some((at("lowest")?, at("highest")?))
                        })
                        .collect();
                    Group { label: c.clone(), notes: values.iter().map(|v| format!("{v:.0} ns")).collect(), ranges, values }
                })
                .collect();
            let names: Vec<&str> = series.iter().map(|s| s.2.as_str()).collect();
            hbars(&dir.join("micro.svg"), "XDP program cost per packet above an empty program (median of rounds)", "ns per packet", &names, &groups, None)?;
            link("micro.md", "micro.svg", "ns per packet above an empty XDP program, per class and list size")?;
        } else {
            eprintln!("warning: micro.csv has columns this chart does not know; no micro.svg");
        }
    }
    if let Some((h, rows)) = read("control.csv") {
        let (Ok(load), Ok(swap1), Ok(swap2), Ok(size)) = (col(&h, "load_s"), col(&h, "swap1_s"), col(&h, "swap2_s"), col(&h, "size")) else {
            eprintln!("warning: control.csv has columns this chart does not know; no control.svg");
            return Ok(());
        };
        let idx = [load, swap1, swap2];
        let groups: Vec<Group> = rows
            .iter()
            .map(|r| {
                let values: Vec<f64> = idx.iter().map(|&i| r[i].parse().unwrap_or(f64::NAN)).collect();
                Group { label: format!("{} names + {} prefixes", r[size], r[size]), notes: values.iter().map(|v| format!("{v:.2} s")).collect(), ranges: vec![None; 3], values }
            })
            .collect();
        hbars(&dir.join("control.svg"), "Loading and swapping lists: wall-clock seconds", "seconds", &["load", "swap into the empty slot", "swap into the full slot"], &groups, None)?;
        link("control.md", "control.svg", "seconds to load and swap, per list size")?;
    }
    Ok(())
}
