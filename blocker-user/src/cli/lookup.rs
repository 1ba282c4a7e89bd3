//! `blocker lookup`: which list entry a name or address matches, and why. Asks the running
//! daemon about its live lists, or, given `--list`/`--allow` files, reads those instead (to
//! check a list before deploying it). The matching is the library's (`ListSet::lookup`), the
//! model the kernel is tested against.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use blocker_user::{
    control::{Request, call},
    lists::{ListKind, ListSet},
};
use clap::Args;

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// Block list file (repeatable), in the format its extension says, as check-list reads it
    /// (`.csv`, `.json`, anything else text); without any, the running daemon's live lists are
    /// asked.
    #[arg(long = "list", value_name = "FILE")]
    lists: Vec<PathBuf>,
    /// Allow list file (formats as --list): entries here win over block entries. Entries of a
    /// CSV or JSON list may still say their own action. Repeatable.
    #[arg(long = "allow", value_name = "FILE")]
    allow: Vec<PathBuf>,
    /// Host names (`www.example.com`, `bücher.example`) or IPv4/IPv6 addresses.
    #[arg(required = true, value_name = "QUERY")]
    queries: Vec<String>,
    /// The daemon's control socket (default: the configuration's `control_socket`, else
    /// /run/blocker/control.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The configuration file the daemon runs with: where to find its control socket.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print one JSON object per query.
    #[arg(long)]
    json: bool,
}

/// Exit status 0 whatever the verdicts; 1 if a list is invalid or a query is neither a name
/// nor an address (after the others were answered).
pub fn run(a: LookupArgs) -> anyhow::Result<ExitCode> {
    if a.lists.is_empty() && a.allow.is_empty() {
        return ask_daemon(&a);
    }
    let mut set = ListSet::new();
    for p in &a.lists {
        set.add_file(p, ListKind::Block)?;
    }
    for p in &a.allow {
        set.add_file(p, ListKind::Allow).context("allow list")?;
    }
    let mut ok = true;
    for q in &a.queries {
        match set.lookup(q) {
            Ok(l) if a.json => println!("{}", l.to_json()),
            Ok(l) => print!("{}", l.render()),
            Err(e) => {
                ok = false;
                if a.json {
                    println!("{}", serde_json::json!({"query": q, "error": e.to_string()}));
                } else {
                    eprintln!("{q}: {e}");
                }
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn ask_daemon(a: &LookupArgs) -> anyhow::Result<ExitCode> {
    let socket = super::daemon_address::control_socket(a.socket.as_deref(), a.config.as_deref())?;
    let mut ok = true;
    for q in &a.queries {
        let r = call(&socket, &Request::Lookup { query: q.clone() })?;
        match (&r.error, a.json) {
            (None, true) => println!("{}", r.result),
            (None, false) => print!("{}", r.text),
            (Some(e), json) => {
                ok = false;
                if json {
                    println!("{}", serde_json::json!({"query": q, "error": e}));
                } else {
                    eprintln!("{e}");
                }
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
