//! `blocker lookup`: which list entry a name or address would match, and why. Reads the list
//! files itself for now; the matching is the library's (`ListSet::lookup`), so a later version
//! can ask the running daemon instead.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use blocker_user::lists::{ListKind, ListSet, Lookup, Verdict};
use clap::Args;

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// Block list file. Repeatable.
    #[arg(long = "list", value_name = "FILE", required = true)]
    lists: Vec<PathBuf>,
    /// Allow list file: entries here win over block entries. Repeatable.
    #[arg(long = "allow", value_name = "FILE")]
    allow: Vec<PathBuf>,
    /// Host names (`www.example.com`, `bücher.example`) or IPv4/IPv6 addresses.
    #[arg(required = true, value_name = "QUERY")]
    queries: Vec<String>,
    /// Print one JSON object per query.
    #[arg(long)]
    json: bool,
}

/// Exit status 0 whatever the verdicts; 1 if a list is invalid or a query is neither a name
/// nor an address (after the others were answered).
pub fn run(a: LookupArgs) -> anyhow::Result<ExitCode> {
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
            Ok(l) => print!("{}", render(&l)),
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

fn render(l: &Lookup<'_>) -> String {
    let mut out = format!("{}: {}\n", l.query, l.verdict.name());
    if let Some(m) = l.deciding() {
        out.push_str(&format!("  entry: {} (id {})\n", m.cite(), m.entry.id));
    }
    if l.verdict == Verdict::Allowed
        && let Some(b) = &l.block
    {
        out.push_str(&format!("  overrides: {} (id {})\n", b.cite(), b.entry.id));
    }
    out.push_str(&format!("  why: {}\n", l.why()));
    out
}
