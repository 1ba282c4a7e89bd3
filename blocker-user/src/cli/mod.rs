//! Command-line interface: one file per subcommand.

mod check_list;
mod detach;
mod dns_args;
mod lists;
mod lists_arg;
mod lookup;
mod replay;
mod run;
mod stop_page_service;

use std::process::ExitCode;

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
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Lists(a) => lists::run(a),
        Command::Detach(a) => detach::run(a),
        Command::CheckList(a) => check_list::run(a),
        Command::Lookup(a) => lookup::run(a),
        Command::Replay(a) => replay::run(a),
    }
}
