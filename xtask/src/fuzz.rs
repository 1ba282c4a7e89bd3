//! `cargo xtask fuzz --minutes N`: differential fuzzing of the kernel program against the host
//! reference model, then every cargo-fuzz target, each for its share of N minutes; the counts
//! go to `bench/results/fuzz.md`.
//!
//! - The differential runner is the privileged test `tests/tests/differential.rs`, run for 40 %
//!   of the time (`BLOCKER_DIFF_SECONDS`), its counts read back from `BLOCKER_DIFF_REPORT`.
//! - The cargo-fuzz targets of `fuzz/` share the other 60 % (`-max_total_time`). They are built
//!   first (`cargo +nightly fuzz build`, not counted; fuzz/Cargo.toml turns on debug assertions
//!   and overflow checks in the project's crates), then each binary runs in libFuzzer's fork
//!   mode, which goes on after a crash, from its corpus (`fuzz/corpus/<target>`, kept out of git)
//!   plus the committed seeds (`fuzz/seeds/<target>`); inputs that crashed go to
//!   `fuzz/artifacts/<target>/`.
//!
//! cargo-fuzz is installed here when missing (`cargo +nightly install cargo-fuzz --locked`,
//! about two minutes); `cargo xtask setup` installs the rest (nightly, bpf-linker: the fuzz crate
//! builds blocker-user, XDP program included).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::{
    process::{cargo, display, is_root, run, target_dir, workspace_root},
    setup::ensure_setup,
};

pub const TARGETS: [(&str, &str); 7] = [
    (
        "lists_text",
        "list parser, text format: no panic; accepted entries round-trip through Display",
    ),
    ("lists_csv", "list parser, CSV: the same"),
    ("lists_json", "list parser, JSON: the same"),
    (
        "dns_query",
        "model's DNS query reader: no panic; name is the question's; trailing bytes refused",
    ),
    (
        "client_hello",
        "model's ClientHello reader: no panic; prefixes pending or same; record sizes do not matter",
    ),
    (
        "http_head",
        "model's request-head reader: no panic; prefixes pending or same; host is input bytes",
    ),
    (
        "verdict_model",
        "model's verdict: no panic, deterministic, drops only on listed matches, all pass when nothing is listed",
    ),
];

/// Share of the time for the differential runner; the rest is split over the targets.
const DIFFERENTIAL_SHARE: f64 = 0.4;

struct TargetRun {
    name: &'static str,
    what: &'static str,
    seconds: u64,
    runs: Option<u64>,
    /// Crashes (panics: broken invariants), timeouts and out-of-memory cases.
    failures: u64,
    /// Their inputs, saved by libFuzzer.
    artifacts: Vec<String>,
}

pub fn run_fuzz(minutes: f64) -> Result<()> {
    if minutes.is_nan() || minutes <= 0.0 {
        bail!("--minutes must be positive");
    }
    ensure_setup()?;
    if !is_root() {
        bail!(
            "the differential runner loads the XDP program (BPF_PROG_TEST_RUN): run `cargo xtask fuzz` as root"
        );
    }
    ensure_cargo_fuzz()?;
    let root = workspace_root();
    let total = minutes * 60.0;
    let diff_seconds = (total * DIFFERENTIAL_SHARE).max(1.0);
    let per_target = ((total - diff_seconds) / TARGETS.len() as f64).max(1.0) as u64;

    // Builds first, so the time shares are spent fuzzing.
    run(fuzz_cmd(&root).arg("build"))?;
    run(differential_cmd(None).arg("--no-run"))?;

    let report_file = target_dir().join("fuzz-differential.txt");
    let _ = std::fs::remove_file(&report_file);
    let started = Instant::now();
    let mut diff = differential_cmd(Some((diff_seconds, &report_file)));
    let diff_result = run(&mut diff);
    let counts = std::fs::read_to_string(&report_file)
        .map(|t| parse_counts(&t))
        .unwrap_or_default();
    println!("differential: {:.0} s", started.elapsed().as_secs_f64());

    let mut runs = Vec::new();
    for (name, what) in TARGETS {
        runs.push(fuzz_target(&root, name, what, per_target)?);
    }

    let out = root.join("bench/results/fuzz.md");
    // A hand-kept `## Findings` section (what the crashes and departures are) survives the
    // rewrite of the tables.
    let findings = std::fs::read_to_string(&out)
        .ok()
        .and_then(|t| t.find("\n## Findings").map(|i| t[i..].to_string()))
        .unwrap_or_default();
    let report = render(minutes, &counts, diff_result.is_ok(), &runs) + &findings;
    std::fs::write(&out, report).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());

    diff_result.context("the differential runner failed (disagreements or XDP_ABORTED above)")?;
    let crashed: Vec<_> = runs
        .iter()
        .filter(|r| r.failures > 0)
        .map(|r| r.name)
        .collect();
    if !crashed.is_empty() {
        bail!("fuzz targets failed: {}", crashed.join(", "));
    }
    Ok(())
}

/// Installs cargo-fuzz for nightly when `cargo +nightly fuzz` is not there.
fn ensure_cargo_fuzz() -> Result<()> {
    let there = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if there.is_ok_and(|s| s.success()) {
        println!("ok: cargo-fuzz");
        return Ok(());
    }
    println!("installing: cargo-fuzz (about two minutes)");
    let started = Instant::now();
    run(Command::new("cargo").args(["+nightly", "install", "cargo-fuzz", "--locked"]))?;
    println!(
        "installed cargo-fuzz in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fuzz_cmd(root: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root).args(["+nightly", "fuzz"]);
    c
}

fn differential_cmd(timed: Option<(f64, &Path)>) -> Command {
    let mut c = cargo();
    c.args(["test", "-p", "blocker-tests", "--test", "differential"]);
    if let Some((seconds, report)) = timed {
        c.env("BLOCKER_DIFF_SECONDS", format!("{seconds:.0}"))
            .env("BLOCKER_DIFF_REPORT", report);
        c.args(["--", "--include-ignored", "--test-threads=1", "--nocapture"]);
    }
    c
}

/// One target for `seconds`, run from the binary `cargo fuzz build` made (`cargo fuzz run`
/// would rebuild whenever the kernel sources change under it). libFuzzer runs in fork mode and
/// goes on after a crash, so a known crash does not end the target's share; its status lines
/// give the inputs tried and the crashes, timeouts and out-of-memory cases, each input saved
/// under fuzz/artifacts/<target>/.
fn fuzz_target(
    root: &Path,
    name: &'static str,
    what: &'static str,
    seconds: u64,
) -> Result<TargetRun> {
    let bin = root
        .join("fuzz/target/x86_64-unknown-linux-gnu/release")
        .join(name);
    let corpus = root.join("fuzz/corpus").join(name);
    let artifacts = root.join("fuzz/artifacts").join(name);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    let before = found(&artifacts);
    let seeds = root.join("fuzz/seeds").join(name);
    let mut c = Command::new(&bin);
    c.env("ASAN_OPTIONS", "detect_odr_violation=0").arg(&corpus);
    if seeds.is_dir() {
        c.arg(&seeds);
    }
    c.args([
        "-fork=1",
        "-ignore_crashes=1",
        "-ignore_timeouts=1",
        "-ignore_ooms=1",
        &format!("-max_total_time={seconds}"),
        "-max_len=4096",
    ])
    .arg(format!("-artifact_prefix={}/", artifacts.display()));
    println!("$ {}", display(&c));
    let out = c
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", display(&c)))?;
    let log = String::from_utf8_lossy(&out.stderr);
    // `#123456: cov: ... oom/timeout/crash: 0/0/1 time: ...`, the last one holds the totals.
    let status = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains(": cov:"));
    let runs = status
        .and_then(|l| l[1..].split(':').next())
        .and_then(|n| n.trim().parse().ok());
    let failures: u64 = status
        .and_then(|l| l.split("oom/timeout/crash:").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .map_or(0, |t| {
            t.split('/').filter_map(|n| n.parse::<u64>().ok()).sum()
        });
    let new: Vec<String> = found(&artifacts)
        .into_iter()
        .filter(|a| !before.contains(a))
        .collect();
    let failures = failures.max(new.len() as u64);
    if !out.status.success() && runs.is_none() {
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        bail!(
            "{name} did not run ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    println!(
        "{name}: {} inputs in {seconds} s, {failures} crashes{}",
        runs.map_or("?".into(), |n: u64| n.to_string()),
        new.first()
            .map_or(String::new(), |a| format!(" (first: {a})"))
    );
    Ok(TargetRun {
        name,
        what,
        seconds,
        runs,
        failures,
        artifacts: new,
    })
}

/// Inputs libFuzzer saved in an artifact directory.
fn found(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().display().to_string())
                .filter(|p| {
                    ["crash-", "oom-", "timeout-"]
                        .iter()
                        .any(|k| p.rsplit('/').next().is_some_and(|f| f.starts_with(k)))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn parse_counts(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn machine() -> (String, String, String) {
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = Command::new("rustc")
        .args(["+nightly", "--version"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    (kernel, format!("{cpu} ({cores} CPUs)"), rustc)
}

fn render(minutes: f64, d: &BTreeMap<String, String>, diff_ok: bool, runs: &[TargetRun]) -> String {
    let get = |k: &str| d.get(k).cloned().unwrap_or_else(|| "?".into());
    let (kernel, cpu, rustc) = machine();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Fuzzing: the kernel program against the reference model, and the parsers\n"
    );
    let _ = writeln!(
        s,
        "`cargo xtask fuzz --minutes {minutes}` on {date}. Kernel {kernel}; {cpu}; {rustc}.\n"
    );
    let _ = writeln!(
        s,
        "The differential runner (`tests/tests/differential.rs`) sends random and mutated frames through the real XDP program \
         (BPF_PROG_TEST_RUN) and through the host reference model (`tests/src/model`), and compares the counter cell \
         (reason, action) and the XDP return code. The cargo-fuzz targets (`fuzz/`) run the list parsers and the model's \
         parsers and verdict under libFuzzer with AddressSanitizer, debug assertions and overflow checks. The CI-sized run is \
         `cargo test -p blocker-tests --test differential -- --include-ignored` (24 000 frames).\n"
    );
    let _ = writeln!(
        s,
        "| target | checks | seconds | inputs tried | disagreements | XDP_ABORTED | crashes |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| differential | kernel vs model, {} compared, {} agreed, {} skipped (flow state){} | {} | {} frames | {} | {} | {} |",
        get("compared"),
        get("agreed"),
        get("skipped_flow_state"),
        if diff_ok { "" } else { ", **FAILED**" },
        get("seconds"),
        get("frames"),
        get("disagreements"),
        get("aborted"),
        if diff_ok { 0 } else { 1 }
    );
    for r in runs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | – | – | {} |",
            r.name,
            r.what,
            r.seconds,
            r.runs.map_or("?".into(), |n| n.to_string()),
            match r.artifacts.first() {
                None => r.failures.to_string(),
                Some(a) => format!(
                    "{} (e.g. `{}`)",
                    r.failures,
                    a.rsplit_once("/fuzz/").map_or(a.as_str(), |(_, p)| p)
                ),
            }
        );
    }
    let known: Vec<_> = d
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("known.").map(|k| (k, v)))
        .collect();
    let _ = writeln!(
        s,
        "\n**Known departures** of the program from the model, counted apart (not disagreements): each would be listed in \
         `blocker_tests::model::KnownIssue`, where the model says what the program does instead (none today: the seven \
         first found were fixed, and `tests/tests/differential.rs` keeps one frame of each).\n"
    );
    if known.is_empty() {
        let _ = writeln!(s, "None met in this run.");
    } else {
        let _ = writeln!(s, "| issue | frames |\n|---|---:|");
        for (k, v) in known {
            let _ = writeln!(s, "| `{k}` | {v} |");
        }
    }
    let _ = writeln!(
        s,
        "\n**Verdicts the program gave** in the differential run (counter cells):\n"
    );
    let _ = writeln!(s, "| reason/action | frames |\n|---|---:|");
    for (k, v) in d
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("verdict.").map(|k| (k, v)))
    {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s
}
