//! Command-line interface: one file per subcommand.

mod check_list;
mod daemon_address;
mod daemon_cmds;
mod detach;
mod dns_args;
mod error_text;
mod lists;
mod lists_arg;
mod lookup;
mod replay;
mod run;
mod selftest;
mod startup_stop;
mod stop_page_service;

use std::process::ExitCode;

pub use error_text::error_text;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "blocker", version, about = "Inline XDP blocking of listed addresses and names")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load lists, attach to an interface and block until SIGINT/SIGTERM.
    Run(run::RunArgs),
    /// What the running daemon runs, where, and with which generation.
    Status(daemon_cmds::SocketArgs),
    /// Packets and bytes by reason and action, and per list, from the running daemon.
    Stats(daemon_cmds::SocketArgs),
    /// The global bypass switch: `on` lets every packet through untouched.
    Bypass(daemon_cmds::BypassArgs),
    /// Remove the pinned program and maps a stopped daemon left attached.
    Detach(detach::DetachArgs),
    /// Operate the running daemon's lists: show, diff, reload, rollback; verify offline.
    Lists(lists::ListsArgs),
    /// Validate list files and print a summary; nothing is loaded.
    CheckList(check_list::CheckListArgs),
    /// Tell which list entry a name or address matches, and why.
    Lookup(lookup::LookupArgs),
    /// Run every frame of an Ethernet capture through the real program and print the verdicts.
    Replay(replay::ReplayArgs),
    /// Run the conformance corpus through the XDP program built into this binary (the one `run`
    /// attaches) and print a pass/fail table, a report to file with a list body.
    #[command(name = "selftest", long_about = selftest::LONG_ABOUT)]
    SelfTest(selftest::SelfTestArgs),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Lists(a) => lists::run(a),
        Command::Detach(a) => detach::run(a),
        Command::Status(a) => daemon_cmds::status(a),
        Command::Stats(a) => daemon_cmds::stats(a),
        Command::Bypass(a) => daemon_cmds::bypass(a),
        Command::CheckList(a) => check_list::run(a),
        Command::Lookup(a) => lookup::run(a),
        Command::Replay(a) => replay::run(a),
        Command::SelfTest(a) => selftest::run(a),
    }
}
