use std::{path::PathBuf, process::ExitCode};

use blocker_user::lists::{Format, ListKind, ParseOptions, load_source};
use clap::Args;

#[derive(Args, Debug)]
pub struct CheckListArgs {
    /// List files to validate.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Validate as allow lists (no minimum prefix length, single-label names allowed). Entries
    /// of a CSV or JSON list may still say their own action.
    #[arg(long)]
    allow: bool,
    /// How the files are written: text, csv or json. Default: by extension (`.csv`, `.json`,
    /// anything else is text).
    #[arg(long, value_name = "FORMAT")]
    format: Option<Format>,
    /// A bare name (`example.com`) covers only itself, not its subdomains.
    #[arg(long)]
    no_subdomains: bool,
    /// Print one JSON object per file.
    #[arg(long)]
    json: bool,
}

pub fn run(a: CheckListArgs) -> anyhow::Result<ExitCode> {
    let kind = if a.allow { ListKind::Allow } else { ListKind::Block };
    let opts = ParseOptions { kind, subdomains: !a.no_subdomains };
    let mut ok = true;
    for f in &a.files {
        let format = a.format.unwrap_or_else(|| Format::from_name(&f.to_string_lossy()));
        match load_source(f, format, &opts) {
            Ok((_, s)) => {
                if a.json {
                    println!("{}", serde_json::json!({"file": f, "format": format, "valid": true, "summary": s}));
                } else {
                    let lens = |v: &[(u8, usize)]| v.iter().map(|(l, n)| format!("/{l}:{n}")).collect::<Vec<_>>().join(" ");
                    // A JSON list counts its elements; the others their lines.
                    let lines = if format == Format::Json { "elements" } else { "lines" };
                    println!(
                        "{}: ok: {} entries ({} IPv4, {} IPv6, {} names), {} duplicate(s), {} {lines}",
                        f.display(), s.entries, s.v4, s.v6, s.names, s.duplicates, s.lines
                    );
                    if s.allow > 0 {
                        println!("  actions: {} allow, {} block", s.allow, s.entries - s.allow);
                    }
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
                    println!("{}", serde_json::json!({"file": f, "format": format, "valid": false, "error": e.to_string()}));
                } else {
                    eprintln!("{e}");
                }
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
