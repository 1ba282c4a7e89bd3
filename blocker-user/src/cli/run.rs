use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use blocker_user::{
    config::ControllerConfig,
    datapath::{AttachMode, Datapath},
};
use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};

use super::{dns_args::DnsArgs, lists_arg::ListArgs, stop_page_service::Service};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The subscriber-facing interface to attach to.
    #[arg(long, value_name = "IF")]
    iface: String,
    #[command(flatten)]
    lists: ListArgs,
    #[command(flatten)]
    dns: DnsArgs,
    /// Use generic (skb) XDP even if the driver supports native XDP.
    #[arg(long)]
    skb_mode: bool,
    /// Stop by itself after this many seconds (for scripts and tests).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Controller configuration (TOML; see blocker.example.toml): the HTTP stop page.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    // Lists first: a bad list must fail before anything touches the kernel.
    let set = a.lists.load()?;
    let config = match &a.config {
        Some(p) => ControllerConfig::load(p)?,
        None => ControllerConfig::default(),
    };
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;

    let mut dp = Datapath::load(a.lists.options())?;
    dp.set_dns(&a.dns.policy())?;
    let report = dp.install(&set)?;
    log::info!(
        "installed {} IPv4 + {} IPv6 block prefixes, {} + {} allow prefixes, {} block + {} allow names in {:?}",
        report.block_v4, report.block_v6, report.allow_v4, report.allow_v6, report.names_block, report.names_allow, report.elapsed
    );
    let _service = match config.stop_page.clone() {
        Some(sp) => Some(Service::start(sp)?),
        None => None,
    };
    if let Some(resp) = config.stop_page_response() {
        dp.set_stop_page(Some(&resp))?;
        log::info!("blocked HTTP requests get a 451 that sends browsers to {}", resp.service_url);
    }
    let att = dp.attach(&a.iface, a.skb_mode)?;
    if att.mode == AttachMode::Generic && !a.skb_mode {
        log::warn!("{}: attached in generic mode: blocking works, but at a higher cost per packet", att.iface);
    }
    println!("blocker: attached to {} ({} XDP); blocking until SIGINT/SIGTERM", att.iface, att.mode.name());

    let deadline = a.duration.map(|s| std::time::Instant::now() + Duration::from_secs(s));
    loop {
        if signals.pending().next().is_some() {
            break;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let counters = dp.counters()?;
    println!("blocker: detaching from {}; counters:", att.iface);
    print!("{}", counters.render());
    // Per list entry: where the entry is, never what it names (a log must not leak the list).
    let hits = dp.entry_hits()?;
    if !hits.is_empty() {
        println!("blocked packets per list entry:");
        for (id, n) in hits {
            let at = set.entry(id).map(|e| e.location()).unwrap_or_else(|| "?".into());
            println!("  entry {id:<8} {at:<40} {n:>10}");
        }
    }
    drop(dp);
    Ok(ExitCode::SUCCESS)
}
