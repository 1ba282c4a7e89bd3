//! `blocker status`, `blocker stats`, `blocker bypass on|off`: questions and switches for the
//! running daemon, over its control socket.

use std::{path::PathBuf, process::ExitCode};

use blocker_user::control::{Request, call};
use clap::{Args, ValueEnum};

#[derive(Args, Debug)]
pub struct SocketArgs {
    /// The daemon's control socket (default: the configuration's `control_socket`, else
    /// /run/blocker/control.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The configuration file the daemon runs with: where to find its control socket.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the daemon's answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug)]
pub struct BypassArgs {
    /// `on`: every packet passes untouched (the global bypass switch); `off`: block again.
    #[arg(value_enum)]
    state: OnOff,
    #[command(flatten)]
    socket: SocketArgs,
}

pub fn status(a: SocketArgs) -> anyhow::Result<ExitCode> {
    ask(&a, &Request::Status)
}

pub fn stats(a: SocketArgs) -> anyhow::Result<ExitCode> {
    ask(&a, &Request::Stats)
}

pub fn bypass(a: BypassArgs) -> anyhow::Result<ExitCode> {
    ask(&a.socket, &Request::Bypass { on: a.state == OnOff::On })
}

fn ask(a: &SocketArgs, req: &Request) -> anyhow::Result<ExitCode> {
    let socket = super::daemon_address::control_socket(a.socket.as_deref(), a.config.as_deref())?;
    let r = call(&socket, req)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r.result)?);
    } else if let Some(e) = &r.error {
        eprintln!("error: {e}");
    } else {
        print!("{}", r.text);
        if !r.text.ends_with('\n') {
            println!();
        }
    }
    Ok(if r.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
