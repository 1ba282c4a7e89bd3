//! `cargo xtask bench [micro|control|throughput|charts] [options]`: the benchmarks (bench/),
//! built in release mode and run as root; micro, control and throughput when none is named.
//! Results in `bench/results/{micro,control,throughput}.{csv,md,svg}`. The throughput benchmark
//! builds its own network namespaces (removed afterwards) and calls `nft`, `ipset`, `iptables`
//! and `ethtool`, which `cargo xtask setup` installs.

use anyhow::{Result, bail};

use crate::{
    process::{cargo, is_root, run},
    setup::ensure_setup,
};

pub fn run_bench(args: &[String]) -> Result<()> {
    ensure_setup()?;
    if !is_root() {
        bail!("the benchmarks load XDP programs (BPF_PROG_TEST_RUN, namespaces): run `cargo xtask bench` as root");
    }
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-p", "blocker-bench", "--"]).args(args);
    run(&mut cmd)
}
