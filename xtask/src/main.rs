//! Project tasks: `cargo xtask setup | test | demo | bench | fuzz | package`.
//!
//! One entry point for everything that needs the machine prepared (nightly + rust-src,
//! bpf-linker, apt packages) or root (the namespace lab), so a newcomer, a developer and CI all
//! run the same commands.

mod apt;
mod bench;
mod bpf_linker;
mod demo;
mod fuzz;
mod package;
mod process;
mod setup;
mod test;
mod toolchain;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "blocker project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need: nightly + rust-src, bpf-linker, apt packages.
    /// Idempotent and fast when everything is there.
    Setup,
    /// Host unit tests (`cargo test --workspace`), then the privileged tests (root, BPF,
    /// network namespaces) of blocker-tests.
    Test {
        /// Passed to the test harness of both runs: test name filters, `--nocapture`, ...
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the blocker and show it blocking in a namespace lab (needs root).
    Demo,
    /// Per-packet cost of the XDP program by traffic class and list size (needs root); writes
    /// bench/results/. Arguments go to the benchmark (`--sizes 0,10000,1000000`, ...).
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Differential fuzzing (the XDP program against the host reference model, needs root) and
    /// the cargo-fuzz targets, for N minutes in all; writes bench/results/fuzz.md.
    Fuzz {
        #[arg(long, default_value_t = 5.0)]
        minutes: f64,
    },
    /// Build the Debian package blocker_<version>_<arch>.deb (release binary, systemd unit,
    /// configuration) and check its contents.
    Package {
        /// Where the .deb goes (default target/package).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    process::put_cargo_bin_on_path();
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::ensure_setup(),
        Task::Test { args } => test::run(&args),
        Task::Demo => demo::run(),
        Task::Bench { args } => bench::run_bench(&args),
        Task::Fuzz { minutes } => fuzz::run_fuzz(minutes),
        Task::Package { out } => package::run(out.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
