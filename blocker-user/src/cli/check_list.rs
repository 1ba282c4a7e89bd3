use std::{path::PathBuf, process::ExitCode};

use blocker_user::lists::{ListKind, load_list};
use clap::Args;

#[derive(Args, Debug)]
pub struct CheckListArgs {
    /// List files to validate.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Validate as allow lists (no minimum prefix length, single-label names allowed).
    #[arg(long)]
    allow: bool,
    /// Print one JSON object per file.
    #[arg(long)]
    json: bool,
}

pub fn run(a: CheckListArgs) -> anyhow::Result<ExitCode> {
    let kind = if a.allow { ListKind::Allow } else { ListKind::Block };
    let mut ok = true;
    for f in &a.files {
        match load_list(f, kind) {
            Ok((_, s)) => {
                if a.json {
                    println!("{}", serde_json::json!({"file": f, "valid": true, "summary": s}));
                } else {
                    let lens = |v: &[(u8, usize)]| v.iter().map(|(l, n)| format!("/{l}:{n}")).collect::<Vec<_>>().join(" ");
                    println!(
                        "{}: ok: {} entries ({} IPv4, {} IPv6, {} names), {} duplicate(s), {} lines",
                        f.display(), s.entries, s.v4, s.v6, s.names, s.duplicates, s.lines
                    );
                    if s.v4 > 0 {
                        println!("  IPv4 prefix lengths: {}", lens(&s.v4_lengths));
                    }
                    if s.v6 > 0 {
                        println!("  IPv6 prefix lengths: {}", lens(&s.v6_lengths));
                    }
                    if s.names > 0 {
                        let both = s.names - s.names_self_only - s.names_below_only;
                        println!(
                            "  names: {both} with subdomains, {} this name only (=), {} subdomains only (*.)",
                            s.names_self_only, s.names_below_only
                        );
                    }
                }
            }
            Err(e) => {
                ok = false;
                if a.json {
                    println!("{}", serde_json::json!({"file": f, "valid": false, "error": e.to_string()}));
                } else {
                    eprintln!("{e}");
                }
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
