//! `blocker detach`: removes what a pinned daemon leaves in place on purpose (the XDP links
//! and the maps in bpffs), so the interfaces go back to plain forwarding.

use std::{path::PathBuf, process::ExitCode};

use blocker_user::{
    control::{Request, call},
    datapath::detach_all,
};
use clap::Args;

#[derive(Args, Debug)]
pub struct DetachArgs {
    /// The pin directory the daemon used (default: the configuration's `[datapath] pin_dir`,
    /// else /sys/fs/bpf/blocker).
    #[arg(long, value_name = "DIR")]
    pin_dir: Option<PathBuf>,
    /// The daemon's control socket: a running daemon must be stopped first (default: the
    /// configuration's `control_socket`, else /run/blocker/control.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The configuration file the daemon ran with: where its pins and control socket are.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print what was detached and unpinned as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(a: DetachArgs) -> anyhow::Result<ExitCode> {
    let socket = super::daemon_address::control_socket(a.socket.as_deref(), a.config.as_deref())?;
    let pin_dir = super::daemon_address::pin_dir(a.pin_dir.as_deref(), a.config.as_deref())?;
    if call(&socket, &Request::ListsShow).is_ok() {
        anyhow::bail!(
            "a blocker daemon is running ({}): stop it first (systemctl stop blocker), then detach",
            socket.display()
        );
    }
    let d = detach_all(&pin_dir)?;
    if a.json {
        println!("{}", serde_json::to_string(&d)?);
    } else if d.links.is_empty() && d.map_dirs.is_empty() {
        println!("nothing pinned in {}", pin_dir.display());
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
