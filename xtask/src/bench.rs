//! `cargo xtask bench [micro|control] [options]`: the benchmarks (bench/), built in release mode
//! and run as root; both when neither is named. Results in `bench/results/{micro,control}.{csv,md}`.

use anyhow::{Result, bail};

use crate::{
    process::{cargo, is_root, run},
    setup::ensure_setup,
};

pub fn run_bench(args: &[String]) -> Result<()> {
    ensure_setup()?;
    if !is_root() {
        bail!("the benchmark loads the XDP program (BPF_PROG_TEST_RUN): run `cargo xtask bench` as root");
    }
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-p", "blocker-bench", "--"]).args(args);
    run(&mut cmd)
}
