//! `blocker-bench control`: what the controller pays to load and swap large lists, measured on
//! the real pipeline: list files on disk, `ListManager::update` (read, digest, parse, build the
//! set, diff, guards, install as a generation, persist to the state directory) into the real
//! kernel maps (`Datapath`, the `Installer` the daemon uses).
//!
//! Per size N (N names AND N prefixes), in a fresh child process so that its peak RSS is its own:
//! 1. write `names.list` and `prefixes.list` (synthetic, see below) into a scratch directory;
//! 2. update 1 = the load: maps empty, the whole set goes in;
//! 3. update 2 = the first swap: 1% of each list changed, installed into the other (empty) slot;
//! 4. update 3 = a steady-state swap: another 1% changed, installed into the slot that still
//!    holds update 1's generation (as the difference between the two: about 2% of each map).
//!
//! Measured: wall time of each update and the part of it the install took (the rest: read,
//! digest, parse, set, diff, guards, persist); the process's peak RSS (VmHWM) through the load and,
//! reset, through the swaps; and the kernel memory of the list maps (NAMES, BLOCK_V4/V6,
//! ALLOW_V4/V6, COARSE_V4/V6) once both slots hold a generation:
//! - `memlock` as the kernel reports it in /proc/self/fdinfo. For the LPM tries it is
//!   `n_entries × (24 + key data + value)` bytes: it leaves out the intermediate nodes a trie
//!   adds at branch points and the allocator's rounding (each node is a 64-byte object), so it
//!   understates them. For NAMES (hash, BPF_F_NO_PREALLOC) it is the bucket array (sized by
//!   max_entries) plus `count × (element + 8)`, which is what is allocated. Arrays: their size.
//! - measured: what the list maps allocated at load (their memlock then: arrays and the hash
//!   bucket array, which are allocated whole), plus what the child's own memory cgroup was
//!   charged since (memcg.rs: map elements are charged to their creator's cgroup object by
//!   object, and uncharged when freed). Without a cgroup of its own, the objects added to the
//!   memory-cgroup-accounted kmalloc caches of the sizes the elements take (`kmalloc-cg-64`:
//!   trie nodes; `kmalloc-cg-96`: NAMES elements), system-wide, stand in. The growth of all
//!   accounted slab pages, vmalloc and per-CPU memory is kept too (`kernel_growth`).
//! - after the rollback window: the same once `ListManager::end_rollback_window_due` has ended
//!   it (which writes nothing: both generations share their elements).
//!
//! Synthetic lists: names are `<letters>-<n>.<word>.example` (5% `=name`, 5% `*.name`, the rest
//! name and subdomains); prefixes are 3/4 IPv4 (7/8 hosts, 1/8 /24s; never in 192.0.2/24,
//! 198.51.100/24, 203.0.113/24, nor 0/8, 10/8, 127/8, 224/3) and 1/4 IPv6 in 2400::/6 (half /64s,
//! half hosts), all distinct.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use crate::memcg::MemCg;
use blocker_user::{
    datapath::{Datapath, Options, name_hash, random_key},
    lists::{Format, Guards, ListInfo, ListKind, ListSet, ParseOptions, check_guards, diff_sets, parse_source},
    update::{DEFAULT_ROLLBACK_WINDOW, ListManager, Outcome, Settings, StateDir, UpdateReport, UpdateRequest, Version, digest},
};

/// The results of one size, as the child prints them and the report reads them.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    pub size: usize,
    /// What one generation holds, as installed.
    pub names: usize,
    pub prefixes_v4: usize,
    pub prefixes_v6: usize,
    pub list_bytes: u64,
    /// Per update: total wall time, and the install's part of it, seconds.
    pub load_s: f64,
    pub load_install_s: f64,
    pub swap1_s: f64,
    pub swap1_install_s: f64,
    pub swap2_s: f64,
    pub swap2_install_s: f64,
    /// Per update: CPU seconds of the process, all threads, user and system (the machine is
    /// shared: what an update costs, where the wall time also has what others ran meanwhile).
    pub load_cpu_s: f64,
    pub swap1_cpu_s: f64,
    pub swap2_cpu_s: f64,
    /// Peak RSS through the load, and through the two swaps (VmHWM reset in between), bytes.
    pub peak_rss_load: u64,
    pub peak_rss_swaps: u64,
    /// The list maps' memlock with both slots full, bytes: each map, and in total.
    pub memlock_names: u64,
    pub memlock_block_v4: u64,
    pub memlock_block_v6: u64,
    pub memlock_allow: u64,
    pub memlock_coarse: u64,
    pub memlock_total: u64,
    /// The list maps' memlock right after load (empty lists): what they allocate whole.
    pub memlock_at_load: u64,
    /// Growth of accounted slab, vmalloc and per-CPU memory from load to the end, bytes.
    pub kernel_growth: u64,
    pub slab_growth: u64,
    /// Objects added to the 64- and 96-byte accounted caches (trie nodes, NAMES elements).
    pub objects_64: i64,
    pub objects_96: i64,
    /// After the rollback window (the previous generation freed, one generation held): the
    /// list maps' memlock, the objects added since load, and the time the release took.
    pub memlock_one: u64,
    pub objects_64_one: i64,
    pub objects_96_one: i64,
    pub release_s: f64,
    /// Kernel memory charged to the child's own memory cgroup since before the program was
    /// loaded (memcg.rs): with both slots full, and after the rollback window; 0 when no
    /// cgroup could be made (then the slab counts stand in).
    pub memcg_both: u64,
    pub memcg_one: u64,
}

impl Measurement {
    /// Entries of one generation.
    pub fn entries(&self) -> usize {
        self.names + self.prefixes_v4 + self.prefixes_v6
    }
    pub fn worst_swap_s(&self) -> f64 {
        self.swap1_s.max(self.swap2_s)
    }
    pub fn peak_rss(&self) -> u64 {
        self.peak_rss_load.max(self.peak_rss_swaps)
    }
    /// Kernel memory of the list maps as measured: what they allocated whole at load, and the
    /// 64-byte (trie node) and 96-byte (NAMES element) objects added since.
    /// Kernel memory of the list maps with both slots full: what the memory cgroup was charged,
    /// else what they allocated whole at load and the 64-byte (trie node) and 96-byte (NAMES
    /// element) objects added since.
    pub fn kernel_measured(&self) -> u64 {
        if self.memcg_both > 0 {
            return self.memcg_both;
        }
        self.memlock_at_load + (self.objects_64.max(0) * 64 + self.objects_96.max(0) * 96) as u64
    }
    /// The same with one generation held (after the rollback window).
    pub fn kernel_measured_one(&self) -> u64 {
        if self.memcg_both > 0 {
            return self.memcg_one;
        }
        self.memlock_at_load + (self.objects_64_one.max(0) * 64 + self.objects_96_one.max(0) * 96) as u64
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("size", self.size.to_string()),
            ("names", self.names.to_string()),
            ("prefixes_v4", self.prefixes_v4.to_string()),
            ("prefixes_v6", self.prefixes_v6.to_string()),
            ("list_bytes", self.list_bytes.to_string()),
            ("load_s", format!("{:.3}", self.load_s)),
            ("load_install_s", format!("{:.3}", self.load_install_s)),
            ("swap1_s", format!("{:.3}", self.swap1_s)),
            ("swap1_install_s", format!("{:.3}", self.swap1_install_s)),
            ("swap2_s", format!("{:.3}", self.swap2_s)),
            ("swap2_install_s", format!("{:.3}", self.swap2_install_s)),
            ("load_cpu_s", format!("{:.2}", self.load_cpu_s)),
            ("swap1_cpu_s", format!("{:.2}", self.swap1_cpu_s)),
            ("swap2_cpu_s", format!("{:.2}", self.swap2_cpu_s)),
            ("peak_rss_load", self.peak_rss_load.to_string()),
            ("peak_rss_swaps", self.peak_rss_swaps.to_string()),
            ("memlock_names", self.memlock_names.to_string()),
            ("memlock_block_v4", self.memlock_block_v4.to_string()),
            ("memlock_block_v6", self.memlock_block_v6.to_string()),
            ("memlock_allow", self.memlock_allow.to_string()),
            ("memlock_coarse", self.memlock_coarse.to_string()),
            ("memlock_total", self.memlock_total.to_string()),
            ("memlock_at_load", self.memlock_at_load.to_string()),
            ("kernel_growth", self.kernel_growth.to_string()),
            ("slab_growth", self.slab_growth.to_string()),
            ("objects_64", self.objects_64.to_string()),
            ("objects_96", self.objects_96.to_string()),
            ("memlock_one", self.memlock_one.to_string()),
            ("objects_64_one", self.objects_64_one.to_string()),
            ("objects_96_one", self.objects_96_one.to_string()),
            ("release_s", format!("{:.3}", self.release_s)),
            ("memcg_both", self.memcg_both.to_string()),
            ("memcg_one", self.memcg_one.to_string()),
        ]
    }

    /// The CSV header and row (same fields, same order).
    pub fn csv_header() -> String {
        Measurement::default().fields().iter().map(|(k, _)| *k).collect::<Vec<_>>().join(",")
    }
    pub fn csv_row(&self) -> String {
        self.fields().into_iter().map(|(_, v)| v).collect::<Vec<_>>().join(",")
    }

    fn parse(line: &str) -> anyhow::Result<Measurement> {
        let kv: BTreeMap<&str, &str> = line.split_whitespace().filter_map(|f| f.split_once('=')).collect();
        let get = |k: &str| kv.get(k).copied().with_context(|| format!("the child's result has no {k}"));
        let u = |k: &str| -> anyhow::Result<u64> { Ok(get(k)?.parse()?) };
        let i = |k: &str| -> anyhow::Result<i64> { Ok(get(k)?.parse()?) };
        let f = |k: &str| -> anyhow::Result<f64> { Ok(get(k)?.parse()?) };
        Ok(Measurement {
            size: u("size")? as usize,
            names: u("names")? as usize,
            prefixes_v4: u("prefixes_v4")? as usize,
            prefixes_v6: u("prefixes_v6")? as usize,
            list_bytes: u("list_bytes")?,
            load_s: f("load_s")?,
            load_install_s: f("load_install_s")?,
            swap1_s: f("swap1_s")?,
            swap1_install_s: f("swap1_install_s")?,
            swap2_s: f("swap2_s")?,
            swap2_install_s: f("swap2_install_s")?,
            load_cpu_s: f("load_cpu_s")?,
            swap1_cpu_s: f("swap1_cpu_s")?,
            swap2_cpu_s: f("swap2_cpu_s")?,
            peak_rss_load: u("peak_rss_load")?,
            peak_rss_swaps: u("peak_rss_swaps")?,
            memlock_names: u("memlock_names")?,
            memlock_block_v4: u("memlock_block_v4")?,
            memlock_block_v6: u("memlock_block_v6")?,
            memlock_allow: u("memlock_allow")?,
            memlock_coarse: u("memlock_coarse")?,
            memlock_total: u("memlock_total")?,
            memlock_at_load: u("memlock_at_load")?,
            kernel_growth: u("kernel_growth")?,
            slab_growth: u("slab_growth")?,
            objects_64: i("objects_64")?,
            objects_96: i("objects_96")?,
            memlock_one: u("memlock_one")?,
            objects_64_one: i("objects_64_one")?,
            objects_96_one: i("objects_96_one")?,
            release_s: f("release_s")?,
            memcg_both: u("memcg_both")?,
            memcg_one: u("memcg_one")?,
        })
    }
}

/// The line prefix the child's result is printed with.
const RESULT: &str = "control-result";
/// The line prefix of one stage of the profile.
const STAGE: &str = "control-stage";

/// One stage of a swap, timed apart (`--control-profile`): wall time, the process's RSS after it
/// and its peak RSS during it.
#[derive(Clone, Debug)]
pub struct Stage {
    pub name: String,
    pub seconds: f64,
    pub rss_after: u64,
    pub peak_rss: u64,
}

/// Measures every size, each in a fresh child process (this program, `--control-child N`), then
/// profiles a swap of the largest size stage by stage in another.
pub fn run(sizes: &[usize], change: f64) -> anyhow::Result<(Vec<Measurement>, Vec<Stage>)> {
    let mut out = Vec::new();
    for &size in sizes {
        eprintln!("control: {size} names + {size} prefixes (a child process)");
        let stdout = run_child(size, change, false)?;
        let line = stdout.lines().find_map(|l| l.strip_prefix(RESULT)).context("the child printed no result")?;
        out.push(Measurement::parse(line)?);
    }
    let mut stages = Vec::new();
    if let Some(&size) = sizes.iter().max() {
        eprintln!("control: a swap of {size} names + {size} prefixes, stage by stage (a child process)");
        for line in run_child(size, change, true)?.lines().filter_map(|l| l.strip_prefix(STAGE)) {
            let kv: BTreeMap<&str, &str> = line.split_whitespace().filter_map(|f| f.split_once('=')).collect();
            let get = |k: &str| kv.get(k).copied().with_context(|| format!("stage without {k}"));
            stages.push(Stage {
                name: get("name")?.replace('_', " "),
                seconds: get("s")?.parse()?,
                rss_after: get("rss")?.parse()?,
                peak_rss: get("peak")?.parse()?,
            });
        }
    }
    Ok((out, stages))
}

fn run_child(size: usize, change: f64, profile: bool) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("finding this program to run it per size")?;
    let mut cmd = Command::new(&exe);
    cmd.args(["--control-child", &size.to_string(), "--control-change", &change.to_string()]);
    if profile {
        cmd.arg("--control-profile");
    }
    let child = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output().context("running the control benchmark's child")?;
    if !child.status.success() {
        bail!("the control benchmark for size {size} failed ({})", child.status);
    }
    Ok(String::from_utf8_lossy(&child.stdout).into_owned())
}

/// The child: measures one size in this process and prints one result line on stdout (or,
/// with `profile`, one line per stage of a swap).
pub fn child(size: usize, change: f64, profile: bool) -> anyhow::Result<()> {
    assert!(size <= 2_000_000, "the synthetic prefixes are distinct up to 2M");
    let scratch = Scratch::new()?;
    if profile {
        for st in profile_swap(size, change, &scratch.0)? {
            println!("{STAGE} name={} s={:.3} rss={} peak={}", st.name.replace(' ', "_"), st.seconds, st.rss_after, st.peak_rss);
        }
        return Ok(());
    }
    let m = measure(size, change, &scratch.0)?;
    let mut line = String::from(RESULT);
    for (k, v) in m.fields() {
        write!(line, " {k}={v}")?;
    }
    println!("{line}");
    std::io::stdout().flush()?;
    Ok(())
}

fn measure(size: usize, change: f64, dir: &Path) -> anyhow::Result<Measurement> {
    let mut m = Measurement { size, ..Default::default() };
    let names_path = dir.join("names.list");
    let prefixes_path = dir.join("prefixes.list");
    let changed = ((size as f64 * change).round() as usize).max(1);
    let write_generation = |g: usize| -> anyhow::Result<u64> {
        let names = names_text(size, g, changed);
        let prefixes = prefixes_text(size, g, changed);
        fs::write(&names_path, &names)?;
        fs::write(&prefixes_path, &prefixes)?;
        Ok((names.len() + prefixes.len()) as u64)
    };

    let mut settings = Settings { rollback_window: Some(DEFAULT_ROLLBACK_WINDOW), ..Default::default() };
    settings.add_files(&[names_path.clone(), prefixes_path.clone()], &[])?;
    let state = StateDir::open(&dir.join("state"))?;
    let mut manager = ListManager::new(settings, Some(state));

    let memcg = MemCg::enter();
    let memcg_before = memcg.as_ref().and_then(MemCg::kernel_bytes).unwrap_or(0);
    let charged = || memcg.as_ref().and_then(MemCg::kernel_bytes).map_or(0, |b| b.saturating_sub(memcg_before));
    if memcg.is_none() {
        eprintln!("  no memory cgroup of its own: kernel memory from the system-wide slab counts");
    }
    let before_load = KernelMemory::now()?;
    let mut dp = Datapath::load(Options::default()).context("loading the XDP program (root needed)")?;
    let at_load = KernelMemory::now()?;
    m.memlock_at_load = ListMaps::read()?.total();
    // From here on what the cgroup is charged is the list maps' elements (and the process's
    // page tables, a few MiB at most): their memory is what they allocated at load, plus that.
    let charged_at_load = charged();
    let list_maps = |charged_now: u64| m.memlock_at_load + charged_now.saturating_sub(charged_at_load);
    eprintln!(
        "  program loaded: list maps {} MiB whole (memlock); kernel memory +{} MiB for the whole object",
        mib(m.memlock_at_load),
        mib(at_load.total().saturating_sub(before_load.total()))
    );
    reset_peak_rss()?;

    m.list_bytes = write_generation(0)?;
    let (load, install, cpu) = update(&mut manager, &mut dp)?;
    (m.load_s, m.load_install_s, m.load_cpu_s) = (load.as_secs_f64(), install.as_secs_f64(), cpu);
    m.peak_rss_load = status_bytes("VmHWM")?;
    eprintln!("  load: {:.2} s (install {:.2} s; CPU {cpu:.2} s), peak RSS {} MiB", m.load_s, m.load_install_s, mib(m.peak_rss_load));
    reset_peak_rss()?;

    write_generation(1)?;
    let (swap, install, cpu) = update(&mut manager, &mut dp)?;
    (m.swap1_s, m.swap1_install_s, m.swap1_cpu_s) = (swap.as_secs_f64(), install.as_secs_f64(), cpu);
    eprintln!("  swap into the empty slot: {:.2} s (install {:.2} s; CPU {cpu:.2} s)", m.swap1_s, m.swap1_install_s);

    write_generation(2)?;
    let (swap, install, cpu) = update(&mut manager, &mut dp)?;
    (m.swap2_s, m.swap2_install_s, m.swap2_cpu_s) = (swap.as_secs_f64(), install.as_secs_f64(), cpu);
    m.peak_rss_swaps = status_bytes("VmHWM")?;
    eprintln!(
        "  swap into a full slot: {:.2} s (install {:.2} s; CPU {cpu:.2} s), peak RSS through the swaps {} MiB",
        m.swap2_s,
        m.swap2_install_s,
        mib(m.peak_rss_swaps)
    );

    let live = manager.live();
    m.names = live.block_names().count();
    let (v4, v6) = live.block_prefixes().fold((0, 0), |(a, b), (_, p)| if p.is_v4() { (a + 1, b) } else { (a, b + 1) });
    (m.prefixes_v4, m.prefixes_v6) = (v4, v6);
    drop(live);

    // Freed trie nodes and hash elements go back to the allocator after RCU grace periods.
    let end = settled()?;
    m.memcg_both = if memcg.is_some() { list_maps(charged()) } else { 0 };
    let maps = ListMaps::read()?;
    m.memlock_names = maps.names;
    m.memlock_block_v4 = maps.block_v4;
    m.memlock_block_v6 = maps.block_v6;
    m.memlock_allow = maps.allow;
    m.memlock_coarse = maps.coarse;
    m.memlock_total = maps.total();
    m.kernel_growth = end.total().saturating_sub(at_load.total());
    m.slab_growth = end.slab_cg.saturating_sub(at_load.slab_cg);
    m.objects_64 = end.objects(64) - at_load.objects(64);
    m.objects_96 = end.objects(96) - at_load.objects(96);
    eprintln!(
        "  kernel memory of the list maps with both slots full: memlock {} MiB, measured {} MiB ({} + {} 64-byte and {} 96-byte objects)",
        mib(m.memlock_total),
        mib(m.kernel_measured()),
        mib(m.memlock_at_load),
        m.objects_64,
        m.objects_96
    );

    // The rollback window ends (`ListManager::end_rollback_window_due`, as the daemon's loop calls it): the
    // previous generation is no longer one to switch back to. The slots share their elements,
    // so it stays in the maps, costing the keys only it lists, until the next install.
    let t = Instant::now();
    anyhow::ensure!(manager.end_rollback_window_due(Instant::now() + DEFAULT_ROLLBACK_WINDOW, &mut dp)?, "the rollback window did not end");
    m.release_s = t.elapsed().as_secs_f64();
    let wait_until = Instant::now() + Duration::from_secs(60);
    let one = settled()?;
    // Uncharged as the objects are freed, after the same grace periods: until it has stopped
    // falling for three seconds, at most 60 s.
    let mut last = (Instant::now(), charged());
    while memcg.is_some() && last.0.elapsed() < Duration::from_secs(3) && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(500));
        let now = charged();
        if now + (1 << 20) < last.1 {
            last = (Instant::now(), now);
        }
    }
    m.memcg_one = if memcg.is_some() { list_maps(charged()) } else { 0 };
    m.memlock_one = ListMaps::read()?.total();
    m.objects_64_one = one.objects(64) - at_load.objects(64);
    m.objects_96_one = one.objects(96) - at_load.objects(96);
    eprintln!(
        "  after the rollback window (ended in {:.2} s): memlock {} MiB, measured {} MiB",
        m.release_s,
        mib(m.memlock_one),
        mib(m.kernel_measured_one())
    );
    drop(dp);
    Ok(m)
}

/// The stages of a steady-state swap, timed one by one with the functions the manager calls
/// (update/mod.rs, update/pull.rs): with generation 1 live and generation 0 in the other slot,
/// generation 2 is read, digested, parsed, built into a set, compared with the live set,
/// checked by the guards, persisted, and installed into the full slot.
fn profile_swap(size: usize, change: f64, dir: &Path) -> anyhow::Result<Vec<Stage>> {
    let changed = ((size as f64 * change).round() as usize).max(1);
    let paths = [dir.join("names.list"), dir.join("prefixes.list")];
    let write = |g: usize| -> anyhow::Result<()> {
        fs::write(&paths[0], names_text(size, g, changed))?;
        fs::write(&paths[1], prefixes_text(size, g, changed))?;
        Ok(())
    };
    let opts = ParseOptions::new(ListKind::Block);
    // As the manager builds them: entries the live set has keep their ids.
    let build = |bodies: &[Vec<u8>], live: Option<&ListSet>| -> anyhow::Result<ListSet> {
        let mut set = ListSet::new();
        for (path, body) in paths.iter().zip(bodies) {
            let (entries, _) = parse_source(path, body, Format::Text, &opts)?;
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            set.add_list(ListInfo { name, source: path.display().to_string(), shadow: false }, path, entries)?;
        }
        if let Some(live) = live {
            set.inherit_ids(live);
        }
        Ok(set)
    };
    let read = || -> anyhow::Result<Vec<Vec<u8>>> { Ok(vec![fs::read(&paths[0])?, fs::read(&paths[1])?]) };

    let mut dp = Datapath::load(Options::default()).context("loading the XDP program (root needed)")?;
    write(0)?;
    let first = build(&read()?, None)?;
    dp.install_generation(&first)?;
    write(1)?;
    let live = build(&read()?, Some(&first))?;
    drop(first);
    dp.install_generation(&live)?;
    dp.finish_freeing();
    write(2)?;

    let mut stages = Vec::new();
    let mut cpu_at = cpu_seconds();
    let mut stage = |name: &str, start: Instant| -> anyhow::Result<()> {
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds();
        stages.push(Stage { name: name.into(), seconds, rss_after: status_bytes("VmRSS")?, peak_rss: status_bytes("VmHWM")? });
        eprintln!("  {name}: {seconds:.2} s (CPU {:.2} s)", cpu - cpu_at);
        cpu_at = cpu;
        reset_peak_rss()
    };
    stage("before (live set held)", Instant::now())?;
    let t = Instant::now();
    let bodies = read()?;
    stage("read files", t)?;
    let t = Instant::now();
    let digests: Vec<String> = bodies.iter().map(|b| digest(b)).collect();
    stage("sha-256 digests", t)?;
    let t = Instant::now();
    let mut parsed = Vec::new();
    for (path, body) in paths.iter().zip(&bodies) {
        parsed.push(parse_source(path, body, Format::Text, &opts)?.0);
    }
    stage("parse", t)?;
    let t = Instant::now();
    let mut set = ListSet::new();
    for (path, entries) in paths.iter().zip(parsed) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        set.add_list(ListInfo { name, source: path.display().to_string(), shadow: false }, path, entries)?;
    }
    set.inherit_ids(&live);
    stage("build the set", t)?;
    let t = Instant::now();
    let diff = diff_sets(&live, &set);
    stage("diff with the live set", t)?;
    let t = Instant::now();
    let refusals = check_guards(&Guards::default(), &live, &set, &diff);
    assert!(refusals.is_empty(), "a 1% change passes the guards");
    stage("guards", t)?;
    let t = Instant::now();
    let state = StateDir::open(&dir.join("state"))?;
    let mut versions = BTreeMap::new();
    for ((path, body), digest) in paths.iter().zip(bodies).zip(digests) {
        let source = path.display().to_string();
        let v = Version { source, body: std::sync::Arc::new(body), signature: None, digest, validators: Default::default(), fetched_at: 0 };
        versions.insert(path.file_name().unwrap().to_string_lossy().into_owned(), v);
    }
    state.write_generation(3, 0, &versions)?;
    stage("persist to the state directory", t)?;
    let t = Instant::now();
    let key = random_key()?;
    let hashed = set.block_names().fold(0u64, |acc, (_, n)| acc ^ name_hash(&key, &n.name));
    std::hint::black_box(hashed);
    stage("name hashes (part of the install)", t)?;
    let t = Instant::now();
    let report = dp.install_generation(&set)?;
    stage("install into the full slot", t)?;
    eprintln!(
        "  (install report: {:.2} s, {} map elements written, {} deleted{})",
        report.elapsed.as_secs_f64(),
        report.written,
        report.deleted,
        if report.read_back { ", the maps read back first" } else { "" }
    );
    Ok(stages)
}

/// One update through the manager; returns its wall time, its install's, and its CPU seconds.
fn update(manager: &mut ListManager, dp: &mut Datapath) -> anyhow::Result<(Duration, Duration, f64)> {
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let report: UpdateReport = manager.update(dp, &UpdateRequest::default())?;
    let wall = start.elapsed();
    if !matches!(report.outcome, Outcome::Applied { .. }) {
        bail!("the update was not applied: {:?}: {:?}", report.outcome, report.lists);
    }
    let install = report.install.map(|i| i.elapsed).unwrap_or_default();
    let cpu = cpu_seconds() - cpu;
    // The return of the freed elements (datapath/freeing.rs) runs on for two seconds after
    // the install, which the next one waits for: updates minutes apart never do, so it is
    // waited for here, untimed.
    dp.finish_freeing();
    Ok((wall, install, cpu))
}

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("blocker-bench-control-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Memory readings
// ---------------------------------------------------------------------------------------------

/// User and system CPU time of this process so far, seconds (the machine is shared: wall time
/// alone says little about what a stage costs). From /proc/self/stat, in USER_HZ (100) ticks.
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

/// A `kB` field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> anyhow::Result<u64> {
    let status = fs::read_to_string("/proc/self/status")?;
    kb_field(&status, field).with_context(|| format!("{field} in /proc/self/status"))
}

fn kb_field(text: &str, field: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(field))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Resets VmHWM to the current RSS (proc(5), clear_refs value 5).
fn reset_peak_rss() -> anyhow::Result<()> {
    fs::write("/proc/self/clear_refs", "5").context("resetting the peak RSS")
}

/// Kernel memory that BPF maps allocate from, system-wide.
struct KernelMemory {
    /// Bytes in slabs of the memory-cgroup-accounted kmalloc caches.
    slab_cg: u64,
    /// Objects in use per accounted kmalloc cache, by object size.
    objects: BTreeMap<u64, i64>,
    vmalloc: u64,
    percpu: u64,
}

/// Kernel memory once freed trie nodes and hash elements are back in the allocator: the maps'
/// allocator (bpf_mem_alloc) gives them back after RCU grace periods, in batches, which takes
/// seconds for millions of objects and may start late. Read every second until the two caches
/// have not moved by more than 0.2% over the last three seconds, for at most 60 s.
fn settled() -> anyhow::Result<KernelMemory> {
    let held = |k: &KernelMemory| k.objects(64) + k.objects(96);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = vec![KernelMemory::now()?];
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = KernelMemory::now()?;
        let moved = seen.iter().rev().take(3).map(|k| (held(k) - held(&now)).abs()).max().unwrap_or(0);
        let steady = seen.len() >= 3 && moved * 500 <= held(&now).max(1);
        if steady || Instant::now() >= deadline {
            return Ok(now);
        }
        seen.push(now);
    }
}

impl KernelMemory {
    fn now() -> anyhow::Result<KernelMemory> {
        let slabinfo = fs::read_to_string("/proc/slabinfo").context("reading /proc/slabinfo (root needed)")?;
        let mut slab_cg = 0;
        let mut objects = BTreeMap::new();
        for line in slabinfo.lines().filter(|l| l.starts_with("kmalloc-cg-")) {
            // name active_objs num_objs objsize objperslab pagesperslab : tunables ... : slabdata active_slabs num_slabs sharedavail
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let (active, objsize, pages_per_slab) = (num(1), num(3), num(5));
            let slabdata = f.iter().position(|w| *w == "slabdata").unwrap_or(0);
            let num_slabs = num(slabdata + 2);
            slab_cg += num_slabs * pages_per_slab * 4096;
            objects.insert(objsize, active as i64);
        }
        let meminfo = fs::read_to_string("/proc/meminfo")?;
        Ok(KernelMemory {
            slab_cg,
            objects,
            vmalloc: kb_field(&meminfo, "VmallocUsed").unwrap_or(0),
            percpu: kb_field(&meminfo, "Percpu").unwrap_or(0),
        })
    }

    fn total(&self) -> u64 {
        self.slab_cg + self.vmalloc + self.percpu
    }

    fn objects(&self, size: u64) -> i64 {
        self.objects.get(&size).copied().unwrap_or(0)
    }
}

/// memlock of the list maps, from /proc/self/fdinfo of this process's map descriptors. The
/// maps are told apart by shape (the object declares them in blocker-ebpf/src/maps.rs):
/// NAMES is the hash map with 16-byte keys; BLOCK_* and ALLOW_* the LPM tries with 9-byte
/// (slot + IPv4) and 21-byte (slot + IPv6) keys, BLOCK_* being the larger; COARSE_* the
/// memory-mappable arrays of u64 words of 2^24 bits a slot. NAME_FILTER, the mappable array of
/// 2^25 bits a slot (blocker-common name_filter.rs), is counted with NAMES: it is the names'
/// memory too (8 MiB for both slots, whatever their size).
#[derive(Default)]
struct ListMaps {
    names: u64,
    block_v4: u64,
    block_v6: u64,
    allow: u64,
    coarse: u64,
}

const BPF_MAP_TYPE_HASH: u64 = 1;
const BPF_MAP_TYPE_ARRAY: u64 = 2;
const BPF_MAP_TYPE_LPM_TRIE: u64 = 11;
const BPF_F_MMAPABLE: u64 = 1 << 10;
/// NAME_FILTER's words: 2^25 bits a slot, two slots (blocker-common name_filter.rs).
const NAME_FILTER_WORDS: u64 = 2 * (1 << 25) / 64;

impl ListMaps {
    fn read() -> anyhow::Result<ListMaps> {
        let mut maps = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for entry in fs::read_dir("/proc/self/fd")?.flatten() {
            if !fs::read_link(entry.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-map") {
                continue;
            }
            let Ok(info) = fs::read_to_string(format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy())) else { continue };
            let field = |k: &str| -> u64 {
                info.lines()
                    .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
                    .map(|v| v.trim())
                    .and_then(|v| v.strip_prefix("0x").map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok()))
                    .unwrap_or(0)
            };
            if seen.insert(field("map_id")) {
                maps.push((field("map_type"), field("key_size"), field("value_size"), field("max_entries"), field("map_flags"), field("memlock")));
            }
        }
        let largest_trie = maps.iter().filter(|m| m.0 == BPF_MAP_TYPE_LPM_TRIE).map(|m| m.3).max().unwrap_or(0);
        let mut out = ListMaps::default();
        let mut found = [0usize; 5];
        for (ty, key, value, max, flags, memlock) in maps {
            let slot = match (ty, key) {
                // NameKey (8 B) -> NameSlots (32 B).
                (BPF_MAP_TYPE_HASH, 8) if value == 32 => 0,
                (BPF_MAP_TYPE_ARRAY, _) if value == 8 && flags & BPF_F_MMAPABLE != 0 && max == NAME_FILTER_WORDS => 0,
                // Prefix length + IPv4 / IPv6 address.
                (BPF_MAP_TYPE_LPM_TRIE, 8) if max == largest_trie => 1,
                (BPF_MAP_TYPE_LPM_TRIE, 20) if max == largest_trie => 2,
                (BPF_MAP_TYPE_LPM_TRIE, _) => 3,
                (BPF_MAP_TYPE_ARRAY, _) if value == 8 && flags & BPF_F_MMAPABLE != 0 && max > 100_000 => 4,
                _ => continue,
            };
            found[slot] += 1;
            *[&mut out.names, &mut out.block_v4, &mut out.block_v6, &mut out.allow, &mut out.coarse].into_iter().nth(slot).expect("slot") += memlock;
        }
        if found != [2, 1, 1, 2, 2] {
            bail!("expected the list maps NAMES + NAME_FILTER, BLOCK_V4, BLOCK_V6, ALLOW_V4/V6, COARSE_V4/V6 among this process's maps; found {found:?}");
        }
        Ok(out)
    }

    fn total(&self) -> u64 {
        self.names + self.block_v4 + self.block_v6 + self.allow + self.coarse
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic lists
// ---------------------------------------------------------------------------------------------

/// A bijection of u64 (splitmix64's finaliser): distinct inputs, distinct well-mixed outputs.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The version of entry `i` in generation `g`: generation g > 0 changes entries
/// [(g-1)·c, g·c), so each generation differs from the one before in `c` entries per list.
fn version(i: usize, g: usize, changed: usize) -> usize {
    (1..=g).filter(|&h| (h - 1) * changed <= i && i < h * changed).max().unwrap_or(0)
}

const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
];

fn names_text(n: usize, g: usize, changed: usize) -> String {
    let mut t = String::with_capacity(n * 32);
    for i in 0..n {
        let v = version(i, g, changed);
        let h = mix(i as u64 ^ (v as u64) << 40);
        let letters: String = (0..3 + h % 6).map(|k| (b'a' + ((h >> (8 + 5 * k)) % 26) as u8) as char).collect();
        let mode = match i % 20 {
            0 => "=",
            1 => "*.",
            _ => "",
        };
        let word = WORDS[(h >> 50) as usize % WORDS.len()];
        let _ = if v == 0 { writeln!(t, "{mode}{letters}-{i:x}.{word}.example") } else { writeln!(t, "{mode}{letters}-{i:x}-v{v}.{word}.example") };
    }
    t
}

/// First octets the synthetic IPv4 prefixes use: public-looking, never the documentation /24s'
/// (192, 198, 203), nor 0, 10, 127 or 224 and up.
fn first_octets() -> Vec<u8> {
    (1..224u8).filter(|o| !matches!(o, 10 | 127 | 192 | 198 | 203)).collect()
}

fn prefixes_text(n: usize, g: usize, changed: usize) -> String {
    let octets = first_octets();
    let a = octets.len() as u64;
    let mut t = String::with_capacity(n * 24);
    for i in 0..n {
        let v = version(i, g, changed) as u64;
        if i % 4 != 3 {
            // IPv4: 7 in 8 hosts, 1 in 8 /24s. The key (index, version) is distinct per entry,
            // and so is (first octet, a bijection of the rest of the key).
            let key = (i - i / 4) as u64 | v << 21;
            let (o, rest) = (octets[(key % a) as usize], (key / a) as u32);
            if i % 8 == 0 {
                let net = rest.wrapping_mul(0x9e37) & 0xffff;
                let _ = writeln!(t, "{o}.{}.{}.0/24", net >> 8, net & 0xff);
            } else {
                let host = rest.wrapping_mul(0x9e_3779) & 0xff_ffff;
                let _ = writeln!(t, "{o}.{}.{}.{}", host >> 16, (host >> 8) & 0xff, host & 0xff);
            }
        } else {
            // IPv6 in 2400::/6: half /64s, half hosts.
            let h = mix(i as u64 | v << 40);
            let hi = 0x2400_0000_0000_0000u64 | (h & 0x03ff_ffff_ffff_ffff);
            let addr = std::net::Ipv6Addr::from((hi as u128) << 64 | if i % 8 == 3 { 0 } else { mix(h) as u128 });
            let _ = if i % 8 == 3 { writeln!(t, "{addr}/64") } else { writeln!(t, "{addr}") };
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn synthetic_lists_are_distinct_and_change_by_the_given_share() {
        let n = 20_000;
        let changed = n / 100;
        for text in [names_text(n, 0, changed), prefixes_text(n, 0, changed)] {
            let lines: HashSet<&str> = text.lines().collect();
            assert_eq!(lines.len(), n, "distinct entries");
        }
        for (a, b) in [(names_text(n, 1, changed), names_text(n, 2, changed)), (prefixes_text(n, 1, changed), prefixes_text(n, 2, changed))] {
            let a: HashSet<&str> = a.lines().collect();
            let b: HashSet<&str> = b.lines().collect();
            assert_eq!(a.difference(&b).count(), changed);
        }
        let doc = ["192.0.2.", "198.51.100.", "203.0.113."];
        assert!(prefixes_text(n, 0, changed).lines().all(|l| !doc.iter().any(|d| l.starts_with(d))));
    }
}
