//! `cargo xtask test`: host unit tests, then the privileged tests and a smoke run of the micro
//! benchmark, then one summary. Every
//! step runs even when an earlier one failed, so one run reports everything.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use blocker_tests::lab::BLOCKER_BIN_ENV;

use crate::{
    process::{self, cargo, display, is_root, target_dir},
    setup::ensure_setup,
};

struct Step {
    name: &'static str,
    command: String,
    elapsed: Duration,
    result: Result<()>,
}

pub fn run(harness_args: &[String]) -> Result<()> {
    ensure_setup()?;
    let mut steps = Vec::new();

    let mut host = cargo();
    // Unprivileged: must pass for any user; the privileged tests in blocker-tests are
    // #[ignore]d here.
    host.args(["test", "--workspace", "--no-fail-fast"]);
    if !harness_args.is_empty() {
        host.arg("--").args(harness_args);
    }
    steps.push(step("host tests", host));

    if is_root() {
        // The lab tests run the release `blocker` binary as an operator would. Built here, in
        // sight, rather than silently by the first test that needs it; the tests take it from
        // $BLOCKER_BIN (and build it themselves when run without xtask).
        let mut build = cargo();
        build.args([
            "build",
            "--release",
            "-p",
            "blocker-user",
            "--bin",
            "blocker",
        ]);
        let build = step("release binary", build);
        let built = build.result.is_ok();
        steps.push(build);

        let mut privileged = cargo();
        privileged
            .args([
                "test",
                "-p",
                "blocker-tests",
                // Its few privileged unit tests (a veth's XDP features in a namespace).
                "-p",
                "blocker-user",
                "--no-fail-fast",
                "--",
                "--include-ignored",
                "--test-threads=1",
            ])
            .args(harness_args);
        if built {
            let bin = target_dir().join("release").join("blocker");
            privileged.env(BLOCKER_BIN_ENV, bin);
        }
        steps.push(step("privileged tests", privileged));

        // The micro benchmark at its smallest, untimed: every traffic class must still take
        // the path it names (the bench stops at a frame that gets another action, whose runs
        // are counted under different reasons, or that leaves flow state behind where it is
        // repeated), so a change that moves a class
        // onto another path fails here rather than in the next benchmark run.
        let mut bench = cargo();
        let out = target_dir().join("bench-smoke");
        bench.args(["run", "--release", "-p", "blocker-bench", "--", "micro", "--sizes", "0,1000", "--frames", "4", "--rounds", "2", "--repeat", "3", "--out"]).arg(&out);
        steps.push(step("bench smoke", bench));
    } else {
        steps.push(Step {
            name: "privileged tests",
            command: "cargo test -p blocker-tests -p blocker-user -- --include-ignored --test-threads=1".into(),
            elapsed: Duration::ZERO,
            result: Err(anyhow::anyhow!(
                "not run: they need root (network namespaces, XDP); run `cargo xtask test` as root"
            )),
        });
    }

    println!("\n== cargo xtask test: summary ==");
    let mut failed = 0;
    for s in &steps {
        let verdict = match &s.result {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                failed += 1;
                format!("FAILED: {e:#}")
            }
        };
        println!(
            "{:<17} {:>7.1}s  {}  [{}]",
            s.name,
            s.elapsed.as_secs_f64(),
            verdict,
            s.command
        );
    }
    if failed > 0 {
        bail!("{failed} of {} test steps failed", steps.len());
    }
    println!("all {} test steps passed", steps.len());
    Ok(())
}

fn step(name: &'static str, mut cmd: Command) -> Step {
    println!("\n== {name} ==");
    let command = display(&cmd);
    let started = Instant::now();
    let result = process::run(&mut cmd);
    Step {
        name,
        command,
        elapsed: started.elapsed(),
        result,
    }
}
