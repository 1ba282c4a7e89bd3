use std::{path::PathBuf, process::ExitCode};

use blocker_user::{capture, datapath::Datapath, replay};
use clap::Args;

use super::{dns_args::DnsArgs, lists_arg::ListArgs};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    lists: ListArgs,
    #[command(flatten)]
    dns: DnsArgs,
    /// Ethernet capture, pcap or pcapng.
    #[arg(value_name = "CAPTURE")]
    capture: PathBuf,
    /// One JSON object per frame.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let set = a.lists.load()?;
    let frames = capture::read_frames(&a.capture)?;
    let mut dp = Datapath::load(a.lists.options())?;
    dp.set_dns(&a.dns.policy())?;
    dp.install(&set)?;
    for (i, f) in frames.iter().enumerate() {
        let (line, _) = replay::replay_frame(&dp, i + 1, &f.data)?;
        if a.json {
            println!("{}", serde_json::to_string(&line)?);
        } else {
            println!("{}", line.render());
        }
    }
    if !a.json {
        eprintln!("{} frame(s) replayed; counters:", frames.len());
        eprint!("{}", dp.counters()?.render());
    }
    Ok(ExitCode::SUCCESS)
}
