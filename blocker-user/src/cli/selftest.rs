//! `blocker selftest`: the conformance corpus through the XDP program built into this binary.

use std::{io::Write as _, path::PathBuf, process::ExitCode};

use blocker_user::selftest::{self, Corpus};
use clap::Args;

/// `blocker selftest --help`.
pub const LONG_ABOUT: &str = "Run the conformance corpus through the XDP program built into this binary, \
the one `blocker run` attaches, and print a pass/fail table, a report to file with a list body.\n\n\
The corpus (captures with the verdict each frame must get: ClientHellos split every way, HTTP Host \
tricks, DNS, VLAN and QinQ, IPv4 options and fragments, IPv6 extension headers, look-alike names \
that must pass, and the known limits) is built into the binary. Each case runs on a freshly loaded \
copy of the program with the corpus's own lists, through BPF_PROG_TEST_RUN: nothing is attached, \
and a running daemon, its program and its lists are not touched. The report names the binary \
version, the program fingerprint (as `blocker status` shows it), the kernel and the time. Needs \
root (it loads a BPF program).\n\n\
Exit status: 0 every case passed, 1 a case failed, 2 the self-test could not run.";

#[derive(Args, Debug)]
pub struct SelfTestArgs {
    /// Run the corpus in DIR (corpus.toml, lists, <group>/cases.toml and captures; see
    /// tests/conformance/README.md) instead of the one built into the binary.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(a: SelfTestArgs) -> anyhow::Result<ExitCode> {
    let corpus = match &a.corpus {
        Some(dir) => Corpus::from_dir(dir),
        None => Corpus::embedded(),
    };
    let corpus = match corpus {
        Ok(c) => c,
        Err(e) => return Ok(cannot_run(&e)),
    };
    let quiet = a.json;
    let report = selftest::run(&corpus, |r| {
        if !quiet {
            eprint!("{}", if r.passed { "." } else { "F" });
            let _ = std::io::stderr().flush();
        }
    });
    if !quiet {
        eprintln!();
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => return Ok(cannot_run(&e)),
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn cannot_run(e: &dyn std::error::Error) -> ExitCode {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    eprintln!("error: the self-test could not run: {msg}");
    ExitCode::from(2)
}
