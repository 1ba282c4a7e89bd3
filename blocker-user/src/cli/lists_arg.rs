//! The list options shared by `run` and `replay`.

use std::path::PathBuf;

use anyhow::Context;
use blocker_user::{
    datapath::Options,
    lists::{ListKind, ListSet},
};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Block list file, in the format its extension says, as check-list reads it: `.csv` and
    /// `.json` are CSV and JSON lists, anything else text, one address, CIDR or name per line
    /// (`=name`: that name only; `*.name`: names below it only). Repeatable.
    #[arg(long = "list", value_name = "FILE")]
    pub lists: Vec<PathBuf>,
    /// Allow list file (formats as --list): entries here win over block entries. Entries of a
    /// CSV or JSON list may still say their own action. Repeatable.
    #[arg(long = "allow", value_name = "FILE")]
    pub allow: Vec<PathBuf>,
    /// Drop blocked TCP silently instead of answering with a reset.
    #[arg(long)]
    pub drop_tcp: bool,
}

impl ListArgs {
    /// Parses every file; any invalid file is an error and nothing is applied.
    pub fn load(&self) -> anyhow::Result<ListSet> {
        if self.lists.is_empty() && self.allow.is_empty() {
            anyhow::bail!("no lists: give at least one --list FILE");
        }
        let mut set = ListSet::new();
        for p in &self.lists {
            let s = set.add_file(p, ListKind::Block)?;
            log::info!("{}: {} block entries ({} IPv4, {} IPv6, {} names){}", p.display(), s.entries - s.allow, s.v4, s.v6, s.names, others(s.allow, "allow"));
        }
        for p in &self.allow {
            let s = set.add_file(p, ListKind::Allow).with_context(|| "allow list")?;
            log::info!("{}: {} allow entries{}", p.display(), s.allow, others(s.entries - s.allow, "block"));
        }
        Ok(set)
    }

    pub fn options(&self) -> Options {
        Options { tcp_reset: !self.drop_tcp, ..Options::default() }
    }
}

/// A CSV or JSON list's entries that say the other action, for the log line.
fn others(n: usize, action: &str) -> String {
    if n == 0 { String::new() } else { format!(" and {n} {action} entries") }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        lists: ListArgs,
    }

    #[test]
    fn list_files_are_read_in_the_format_their_extension_says() {
        let dir = std::env::temp_dir().join(format!("blocker-cli-list-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("block.csv");
        let json = dir.join("allow.json");
        std::fs::write(&csv, "entry,type,action,comment\nwww.example.com,,,a site\n192.0.2.0/24,,,\n").unwrap();
        std::fs::write(&json, r#"{"entries": ["safe.example.com"]}"#).unwrap();
        let args = ["blocker", "--list", csv.to_str().unwrap(), "--allow", json.to_str().unwrap()];
        let set = Cli::try_parse_from(args).unwrap().lists.load().unwrap_or_else(|e| panic!("{e:#}"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((set.block().count(), set.allow().count()), (2, 1));
    }
}
