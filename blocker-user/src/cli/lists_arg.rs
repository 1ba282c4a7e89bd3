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
    /// Block list file: one address, CIDR or name per line (`=name`: that name only; `*.name`:
    /// names below it only). Repeatable.
    #[arg(long = "list", value_name = "FILE")]
    pub lists: Vec<PathBuf>,
    /// Allow list file: entries here win over block entries. Repeatable.
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
            log::info!("{}: {} block entries ({} IPv4, {} IPv6, {} names)", p.display(), s.entries, s.v4, s.v6, s.names);
        }
        for p in &self.allow {
            let s = set.add_file(p, ListKind::Allow).with_context(|| "allow list")?;
            log::info!("{}: {} allow entries", p.display(), s.entries);
        }
        Ok(set)
    }

    pub fn options(&self) -> Options {
        Options { tcp_reset: !self.drop_tcp, ..Options::default() }
    }
}
