//! The benchmark report: a CSV of every row and a Markdown table, with the machine they ran on.

use std::{fmt::Write as _, fs, path::Path};

pub struct Row {
    pub size: usize,
    pub class: String,
    pub ns_above_empty: f64,
}

fn machine() -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    format!("kernel {}, CPU {cpu}", kernel.trim())
}

pub fn write(dir: &Path, rows: &[Row]) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let mut csv = String::from("list_size,class,ns_above_empty\n");
    for r in rows {
        writeln!(csv, "{},{},{:.1}", r.size, r.class, r.ns_above_empty)?;
    }
    fs::write(dir.join("micro.csv"), csv)?;
    let mut md = format!("# Micro benchmark\n\n{}\n\nns per packet above an empty XDP program, median of rounds.\n\n", machine());
    md += "| list size (prefixes + names) | class | ns above empty |\n|---:|---|---:|\n";
    for r in rows {
        writeln!(md, "| {} | {} | {:.1} |", r.size, r.class, r.ns_above_empty)?;
    }
    fs::write(dir.join("micro.md"), md)?;
    eprintln!("wrote {}", dir.join("micro.md").display());
    Ok(())
}

/// The control-plane report: `control.csv` (every field of every size) and `control.md` (the
/// table, and the targets judged at the largest size).
pub fn write_control(dir: &Path, rows: &[crate::control::Measurement], stages: &[crate::control::Stage], change: f64) -> anyhow::Result<()> {
    use crate::control::Measurement;
    fs::create_dir_all(dir)?;
    let mut csv = Measurement::csv_header() + "\n";
    for r in rows {
        csv += &(r.csv_row() + "\n");
    }
    fs::write(dir.join("control.csv"), csv)?;

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let per = |b: u64, r: &Measurement| b as f64 / r.entries().max(1) as f64;
    let mut md = format!(
        "# Control-plane benchmark\n\n{}\n\n\
         What the controller pays to load and swap N names + N prefixes through the real pipeline \
         (bench/src/control.rs): list files on disk, `ListManager::update` (read, digest, parse, build the set, \
         diff, guards, install as a generation, persist to the state directory) into the kernel maps. Update 1 \
         loads the set into empty maps; updates 2 and 3 each change {:.0}% of each list, 2 into the empty slot, \
         3 into a slot that must be cleared first (the steady state). Each size runs in a fresh process. Times are \
         wall-clock on a shared 2-core machine (load average at the end of the run: {}): other work stretches them.\n\n",
        machine(),
        change * 100.0,
        fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
    );
    md += "| N names + N prefixes | list files MiB | load s (install) | swap, empty slot s (install) | swap, full slot s (install) \
           | peak RSS MiB (load / swaps) | list maps memlock MiB | memlock B/entry | measured kernel MiB | measured B/entry |\n\
           |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in rows {
        writeln!(
            md,
            "| {} | {:.0} | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.0} / {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
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
            per(r.memlock_total, r),
            mib(r.kernel_measured()),
            per(r.kernel_measured(), r)
        )?;
    }
    md += "\nPer entry: the list maps' kernel memory with both slots full (the live generation and the one kept for \
           rollback) divided by the entries of one generation (names + prefixes as installed).\n\n";
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
        let (v, t) = (per(r.kernel_measured(), r), 200.0);
        writeln!(md, "| kernel memory per entry, measured | {t:.0} B | {v:.0} B | {:.2} | {} |", v / t, bytes(v, t, "B"))?;
        let v = per(r.memlock_total, r);
        writeln!(md, "| kernel memory per entry, memlock | {t:.0} B | {v:.0} B | {:.2} | {} |", v / t, bytes(v, t, "B"))?;

        md += "\n### Where it goes\n\n";
        writeln!(
            md,
            "- Time: the install is {:.0}% of the load and {:.0}% of the steady-state swap; the rest is reading, digesting, \
             parsing, building the set, the diff against the live set, the guards and persisting the lists to the state \
             directory. The swap into a full slot ({:.2} s) against the one into the empty slot ({:.2} s) is the cost of \
             clearing the old generation out of the tries and NAMES first.",
            100.0 * load_install,
            100.0 * swap_install,
            r.swap2_install_s,
            r.swap1_install_s
        )?;
        let calls = 4.0 * r.entries() as f64;
        writeln!(
            md,
            "- The install makes one bpf() call per map operation. Into a full slot it walks every key of both slots \
             (get_next_key, so also the live generation's), deletes the old generation's and inserts the new one's: about 4 \
             calls per entry, {:.1} M calls here, {:.2} µs each on average.",
            calls / 1e6,
            1e6 * r.swap2_install_s / calls
        )?;
        let held = stages.first().map(|st| st.rss_after).unwrap_or(0);
        writeln!(
            md,
            "- Controller memory: {:.0} MiB of list files; the process holds {:.0} MiB with the live set alone (about {:.0} B \
             per entry, see the stage table below), and during an update it holds the live set and the one being built, \
             the parsed entries, the diff's indexes and the install's key lists at once.",
            mib(r.list_bytes),
            mib(held),
            held as f64 / r.entries().max(1) as f64
        )?;
        let nodes = r.objects_64.max(0) as f64;
        let prefixes = 2.0 * (r.prefixes_v4 + r.prefixes_v6) as f64;
        writeln!(
            md,
            "- Kernel memory: NAMES keeps a bucket array sized by its capacity ({:.0} MiB whole, with the coarse \
             bitmaps {:.0} MiB at load) plus a 96-byte element per name and slot ({} more 96-byte objects for {} names in \
             two slots). Each LPM-trie node is a 64-byte object, and a trie adds an intermediate node at every branch: \
             {:.0} more 64-byte objects for {:.0} prefixes in two slots, {:.2} nodes per prefix. memlock counts only the \
             {}-byte (IPv4) and {}-byte (IPv6) payload of the entries' own nodes, so for the tries it reads low.",
            mib(r.memlock_at_load.saturating_sub(r.memlock_coarse)),
            mib(r.memlock_at_load),
            r.objects_96,
            2 * r.names,
            nodes,
            prefixes,
            nodes / prefixes.max(1.0),
            24 + 5 + 8,
            24 + 17 + 8
        )?;
        md += "- Both slots are full in steady state: every listed entry is held twice (live and rollback).\n";
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
           the objects added, from load to the end, to the memory-cgroup-accounted kmalloc caches of the two sizes the list \
           maps' elements take (`kmalloc-cg-64`: LPM-trie nodes; `kmalloc-cg-96`: NAMES elements; /proc/slabinfo), times \
           their size. The counts are system-wide, so other work on the machine is noise in them: small against the 1M case, \
           large against the small ones. control.csv also has the growth of all accounted slab pages, vmalloc and per-CPU \
           memory (`kernel_growth`), a noisier cross-check. memlock is the kernel's own figure (/proc/self/fdinfo of the map \
           descriptors).\n";
    fs::write(dir.join("control.md"), md)?;
    eprintln!("wrote {}", dir.join("control.md").display());
    Ok(())
}

/// "met", or "missed by X" for a ratio above 1.
fn verdict(ratio: f64, over: &str) -> String {
    if ratio <= 1.0 { "met".into() } else { format!("missed by {over}") }
}
