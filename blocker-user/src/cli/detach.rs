//! `blocker detach`: removes what a pinned daemon leaves in place on purpose (the XDP links
//! and the maps in bpffs), so the interfaces go back to plain forwarding.

use std::{path::PathBuf, process::ExitCode};

use blocker_user::{
    control::{DEFAULT_SOCKET, Request, call},
    datapath::{DEFAULT_PIN_DIR, detach_all},
};
use clap::Args;

#[derive(Args, Debug)]
pub struct DetachArgs {
    /// The pin directory the daemon used.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    /// The daemon's control socket: a running daemon must be stopped first.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print what was detached and unpinned as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(a: DetachArgs) -> anyhow::Result<ExitCode> {
    if call(&a.socket, &Request::ListsShow).is_ok() {
        anyhow::bail!(
            "a blocker daemon is running ({}): stop it first (systemctl stop blocker), then detach",
            a.socket.display()
        );
    }
    let d = detach_all(&a.pin_dir)?;
    if a.json {
        println!("{}", serde_json::to_string(&d)?);
    } else if d.links.is_empty() && d.map_dirs.is_empty() {
        println!("nothing pinned in {}", a.pin_dir.display());
    } else {
        for l in &d.links {
            println!("unpinned {l}: its interface no longer runs the blocker");
        }
        for m in &d.map_dirs {
            println!("unpinned {m}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
