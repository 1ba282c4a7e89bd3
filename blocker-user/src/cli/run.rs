//! `blocker run`: the daemon. Lists come from the configuration (`[[list]]`, pulled, verified
//! and guarded) and from `--list`/`--allow` files; the last good generation is loaded from the
//! state directory before anything is pulled.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, mpsc::RecvTimeoutError},
    time::{Duration, Instant},
};

use anyhow::Context;
use blocker_user::{
    config::ControllerConfig,
    control::{ControlServer, DEFAULT_SOCKET},
    daemon::{AttachPlan, Daemon, QuicSettings, RunInfo, RunMode},
    datapath::{Adoption, AttachMode, DEFAULT_PIN_DIR, Datapath},
    lists::Source,
    metrics::MetricsServer,
    update::{ListManager, Settings, StateDir, UpdateRequest},
};
use clap::Args;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::{dns_args::DnsArgs, lists_arg::ListArgs, startup_stop::StartupStop, stop_page_service::Service};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The subscriber-facing interface to attach to (or `[datapath] subscriber`).
    #[arg(long, value_name = "IF")]
    iface: Option<String>,
    /// Inline (bump-in-the-wire) mode: the upstream port; allowed frames are forwarded
    /// between it and --iface (or `[datapath] internet`).
    #[arg(long, value_name = "IF")]
    internet_iface: Option<String>,
    /// Router mode: forward allowed frames in XDP (FIB lookup, TTL, MACs, redirect) when
    /// the route leaves through one of these ports (or `[datapath] xdp_forward`). Those frames
    /// skip this host's netfilter, tc and rp_filter; the rest go through the kernel as usual.
    #[arg(long, value_name = "IF[,IF...]", value_delimiter = ',', conflicts_with = "internet_iface")]
    xdp_forward: Vec<String>,
    /// With --xdp-forward: ask the kernel's FIB for every forwarded frame, instead of reusing
    /// its answers until the kernel reports a routing change (at most a second; or
    /// `[datapath] xdp_forward_route_cache = false`).
    #[arg(long)]
    no_route_cache: bool,
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
    /// Controller configuration (TOML; see blocker.example.toml): lists, signing key, guards,
    /// state directory, the HTTP stop page.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Keep the last good lists here (overrides `state_dir`). Without it and without
    /// configured lists, nothing is persisted.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The control socket (overrides `control_socket`; default /run/blocker/control.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Pin program, link and maps here (overrides `[datapath] pin_dir`; default
    /// /sys/fs/bpf/blocker): blocking goes on when the daemon exits, and the next one adopts.
    #[arg(long, value_name = "DIR", conflicts_with = "no_pin")]
    pin_dir: Option<PathBuf>,
    /// Serve Prometheus metrics here (overrides `metrics_listen`), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
    /// Pin nothing: the program is detached when `run` exits (trials, demos, tests).
    #[arg(long)]
    no_pin: bool,
    /// Do not judge QUIC (HTTP/3) by server name (or `[datapath] quic = false`): UDP to port
    /// 443 is then judged by address only.
    #[arg(long)]
    no_quic: bool,
}

/// How often the daemon checks that its pins are still there.
const PIN_CHECK: Duration = Duration::from_secs(2);
/// How often XDP forwarding's egress ports are checked again for taking redirected frames: a
/// port that stops taking them drops what is redirected to it until then.
const FORWARD_CHECK: Duration = Duration::from_secs(2);
/// How often the flow table's upkeep runs: a flow whose entry stays unchanged from one upkeep
/// to the next (one to two intervals) is forgotten.
const FLOW_UPKEEP: Duration = Duration::from_secs(60);

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match &a.config {
        Some(p) => ControllerConfig::load(p)?,
        None => ControllerConfig::default(),
    };
    let mut settings = Settings::from_config(&config)?;
    settings.add_files(&a.lists.lists, &a.lists.allow)?;
    if settings.specs.is_empty() {
        anyhow::bail!("no lists: give --list FILE, or [[list]] sections in --config");
    }
    let state = match (&a.state_dir, config.lists.is_empty()) {
        (Some(dir), _) => Some(StateDir::open(dir)?),
        (None, false) => Some(StateDir::open(&config.state_dir())?),
        (None, true) => None,
    };
    let dpc = config.datapath.clone().unwrap_or_default();
    let iface = a.iface.clone().or(dpc.subscriber.clone()).context("no interface: give --iface IF or [datapath] subscriber")?;
    let skb_mode = a.skb_mode || dpc.skb_mode;
    let internet = a.internet_iface.clone().or(dpc.internet.clone());
    let mut xdp_forward = if a.xdp_forward.is_empty() { dpc.xdp_forward.clone() } else { a.xdp_forward.clone() };
    // A port named twice is one port (status lists each once).
    let mut seen = std::collections::HashSet::new();
    xdp_forward.retain(|p| seen.insert(p.clone()));
    // Checked before anything is loaded or pulled.
    if xdp_forward.iter().any(|p| p.trim().is_empty()) {
        anyhow::bail!("--xdp-forward: an empty port name");
    }
    if a.no_route_cache && xdp_forward.is_empty() {
        anyhow::bail!("--no-route-cache is about XDP forwarding; it needs --xdp-forward PORTS (or [datapath] xdp_forward)");
    }
    if internet.is_some() && !xdp_forward.is_empty() {
        anyhow::bail!("XDP forwarding (--xdp-forward, [datapath] xdp_forward) is router mode's; inline mode (--internet-iface, [datapath] internet) forwards from port to port already");
    }
    let mut options = a.lists.options();
    if dpc.drop_tcp {
        options.tcp_reset = false;
    }
    if let Some(s) = &state {
        // The same key across restarts: the hashes in the kernel stay meaningful.
        options.hash_key = Some(s.hash_key().context("the name-hash key in the state directory")?);
    }
    if !a.no_pin {
        options.pin_dir = Some(a.pin_dir.clone().or(dpc.pin_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_DIR)));
    }
    let local: Vec<String> = settings.specs.iter().filter(|s| matches!(s.source, Source::File(_))).map(|s| s.name.clone()).collect();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
    let startup = StartupStop::arm().context("installing signal handlers")?;

    let mut dp = Datapath::load(options.clone())?;
    if let Some(Adoption::Adopted) = dp.adoption() {
        log::info!("adopted the pinned maps of a previous daemon: blocking continued meanwhile, and goes on while the lists load");
        if let Some(s) = &state {
            // The kernel's names were hashed with its key: keep that one.
            if options.hash_key != Some(dp.hash_key()) {
                s.set_hash_key(dp.hash_key()).context("storing the adopted name-hash key")?;
            }
        }
    }
    dp.set_dns(&a.dns.policy())?;
    // Set either way: adopted maps keep the previous daemon's switches, and a stop page since
    // taken out of the configuration must not keep sending browsers to a service that no
    // longer runs.
    let stop_page = config.stop_page_response();
    dp.set_stop_page(stop_page.as_ref())?;
    if let Some(resp) = &stop_page {
        log::info!("blocked HTTP requests get a 451 that sends browsers to {}", resp.service_url);
    }
    let daemon = Daemon::new(dp, ListManager::new(settings, state));
    log::info!("starting: loading the stored lists, then pulling and reading every list (a slow list server holds this up to its timeout; SIGINT or SIGTERM stop here)");
    if let Err(e) = daemon.restore() {
        log::error!("cannot load the stored lists: {e}; pulling them instead");
    }
    let first = daemon.update(&UpdateRequest::default())?;
    // A local file that does not load is a mistake to fix now, before anything is attached; a
    // list server that is down is retried while blocking goes on with what loaded.
    let view = daemon.view();
    for l in first.lists.iter().filter(|l| l.result == "refused" || l.result == "failed") {
        let loaded = view.lists.iter().any(|v| v.name == l.list && v.digest.is_some());
        if local.contains(&l.list) && !loaded {
            anyhow::bail!("{}", l.detail);
        }
    }

    // QUIC: the program copies client Initials of unjudged flows; this thread reads their names
    // and writes verdicts. It runs before the program is attached, so no Initial waits for it.
    let quic_on = !a.no_quic && dpc.quic.unwrap_or(true);
    let quic = if quic_on {
        match daemon.start_quic(QuicSettings::default()) {
            Ok(t) => {
                log::info!("QUIC: HTTP/3 flows are judged by the server name of their client Initials");
                Some(t)
            }
            Err(e) => {
                log::error!("QUIC not judged by name: {e}; UDP to port 443 is judged by address only");
                None
            }
        }
    } else {
        // Adopted maps may hold a previous daemon's switch: off means off.
        if let Err(e) = daemon.datapath().quic_off() {
            log::error!("cannot turn QUIC off in the program: {e}");
        }
        log::info!("QUIC: off (--no-quic); UDP to port 443 is judged by address only");
        None
    };

    // The stop-page service is where browsers go after the 451; the 451 itself comes from the
    // data plane. If the service cannot start (its address taken, not configured on this host),
    // blocking goes on: blocked requests still get the 451, and the page is fixed separately.
    let _service = match config.stop_page.clone() {
        Some(sp) => match Service::start(sp) {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("stop page service not running: {}; blocking continues, and blocked HTTP still gets the 451", super::error_text(&e));
                None
            }
        },
        None => None,
    };
    let plan = AttachPlan {
        subscriber: iface,
        internet,
        xdp_forward,
        route_cache: !a.no_route_cache && dpc.xdp_forward_route_cache.unwrap_or(true),
        skb_mode,
        pinned: options.pin_dir.is_some(),
    };
    if plan.internet.is_some() && config.stop_page.is_some() {
        log::warn!(
            "inline mode: subscriber traffic is forwarded past this host's IP stack, so a stop-page service listening here is not reachable through the wire; serve it from a host subscribers reach"
        );
    }
    startup.over();
    let attached = daemon.attach(&plan)?;
    if !plan.xdp_forward.is_empty() {
        log::info!(
            "router mode with XDP forwarding: allowed frames routed out of {} are forwarded by the program and skip this host's netfilter, tc and rp_filter; all others go through the kernel",
            plan.xdp_forward.join(", ")
        );
    }
    if let (RunMode::Inline, Some(internet)) = (&attached.mode, &plan.internet) {
        log::info!("inline mode: subscriber port {}, internet port {internet}; allowed frames are forwarded between them", plan.subscriber);
    }
    if attached.replaced {
        log::info!("replaced the program on the pinned link in one step; no packet went unjudged");
    }
    for att in &attached.interfaces {
        if att.mode == AttachMode::Generic && !skb_mode {
            log::warn!("{}: attached in generic mode: blocking works, but at a higher cost per packet", att.iface);
        }
    }
    let ifaces: Vec<String> = attached.interfaces.iter().map(|a| a.iface.clone()).collect();
    let socket = a.socket.clone().or(config.control_socket.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    daemon.set_info(RunInfo {
        mode: attached.mode.name().into(),
        interfaces: ifaces.clone(),
        attach_mode: attached.attach_mode().name().into(),
        pin_dir: options.pin_dir.as_ref().map(|p| p.display().to_string()),
        adopted: daemon.datapath().adoption() == Some(Adoption::Adopted),
        control_socket: socket.display().to_string(),
        started_at: blocker_user::update::pull::now(),
    });
    let control = {
        let d = daemon.clone();
        ControlServer::start(&socket, Arc::new(move |req| d.handle(req)))?
    };
    let _metrics = match a.metrics.or(config.metrics_listen) {
        Some(addr) => {
            let d = daemon.clone();
            // As for the stop page: a port that cannot be had is logged, and blocking goes on
            // (exiting would only restart the daemon every few seconds, and not free the port).
            match MetricsServer::start(addr, Arc::new(move || d.snapshot())) {
                Ok(server) => {
                    log::info!("metrics: http://{}/metrics", server.local_addr());
                    Some(server)
                }
                Err(e) => {
                    log::error!("{e}; blocking continues without the metrics endpoint");
                    None
                }
            }
        }
        None => None,
    };
    println!(
        "blocker: attached to {} ({} mode, {} XDP); generation {} live; control socket {}; blocking until SIGINT/SIGTERM",
        ifaces.join(" and "),
        attached.mode.name(),
        attached.attach_mode().name(),
        view.generation,
        control.path().display()
    );

    // Pulls run on a thread of their own, so that a stop is answered at once even while a slow
    // list server holds a pull up to its timeout (systemd gives a stop 30 s, a pull may take
    // 60 s per list). A pull still running at the stop ends with the process: as safe as a
    // crash, the pinned program goes on blocking with the live generation.
    let (reload_tx, reload_rx) = std::sync::mpsc::channel::<()>();
    {
        let (d, config, lists) = (daemon.clone(), a.config.clone(), a.lists.clone());
        std::thread::Builder::new()
            .name("lists".into())
            .spawn(move || {
                loop {
                    match reload_rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(()) => reload(config.as_deref(), &lists, &d),
                        Err(RecvTimeoutError::Timeout) => d.poll_due(),
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .context("starting the list thread")?;
    }
    let deadline = a.duration.map(|s| Instant::now() + Duration::from_secs(s));
    let mut last_pin_check = Instant::now();
    let mut last_flow_upkeep = Instant::now();
    let mut last_forward_check = Instant::now();
    'run: loop {
        for sig in signals.pending() {
            if sig == SIGHUP {
                let _ = reload_tx.send(());
            } else {
                break 'run;
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if options.pin_dir.is_some() && last_pin_check.elapsed() >= PIN_CHECK {
            daemon.check_pins();
            last_pin_check = Instant::now();
        }
        if last_forward_check.elapsed() >= FORWARD_CHECK {
            daemon.forward_check();
            last_forward_check = Instant::now();
        }
        if last_flow_upkeep.elapsed() >= FLOW_UPKEEP {
            daemon.flow_upkeep();
            last_flow_upkeep = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(reload_tx);
    drop(control);
    drop(quic);
    // Unpinned, the program goes with this process: QUIC off first, so nothing fills a ring
    // nobody drains. Pinned, QUIC stays on for the next daemon: verdicts hold, and for the
    // reader's lease Initials are copied into the pinned ring, where it reads them.
    if options.pin_dir.is_none() {
        daemon.stop_quic();
    }
    // Pinned, the program goes on without anyone following the kernel's routing changes.
    daemon.stop_route_cache();
    let dp = daemon.datapath();
    let counters = dp.counters()?;
    match &options.pin_dir {
        Some(dir) => println!(
            "blocker: exiting; the program stays attached to {} with generation {} (pinned in {}; `blocker detach` removes it); counters:",
            ifaces.join(" and "),
            daemon.view().generation,
            dir.display()
        ),
        None if attached.mode == RunMode::Inline => {
            println!("blocker: detaching from {}: the wire between them is cut until a blocker runs again; counters:", ifaces.join(" and "))
        }
        None => println!("blocker: detaching from {}; counters:", ifaces.join(" and ")),
    }
    print!("{}", counters.render());
    // Per list entry: where the entry is, never what it names (a log must not leak the list).
    let hits = dp.entry_hits()?;
    if !hits.is_empty() {
        let set = daemon.live();
        println!("packets per list entry (blocked, or counted by a shadow list):");
        for (id, n) in hits {
            let (at, how) = match set.entry(id) {
                Some(e) => (e.location(), if e.shadow { "shadow" } else { "blocked" }),
                None => ("?".into(), "?"),
            };
            println!("  entry {id:<8} {at:<40} {n:>10} {how}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: read the configuration again (lists, signing key, guards) and pull every list. A
/// configuration that does not load is logged and the running one kept. Interfaces, pinning
/// and the stop page are set at start: changing them needs a restart (gapless with pinning).
fn reload(config: Option<&std::path::Path>, lists: &ListArgs, daemon: &Daemon) {
    if let Some(path) = config {
        let loaded = ControllerConfig::load(path).map_err(anyhow::Error::from).and_then(|c| {
            let mut s = Settings::from_config(&c)?;
            s.add_files(&lists.lists, &lists.allow)?;
            Ok(s)
        });
        match loaded {
            Ok(settings) => {
                log::info!(
                    "SIGHUP: {} reloaded ({} lists); changes to [datapath], [http], [stop_page], metrics_listen, control_socket and state_dir apply at the next start",
                    path.display(),
                    settings.specs.len()
                );
                daemon.set_settings(settings);
            }
            Err(e) => log::error!("SIGHUP: {}: {}; keeping the running configuration", path.display(), super::error_text(&e)),
        }
    } else {
        log::info!("SIGHUP: pulling every list");
    }
    let _ = daemon.update(&UpdateRequest::default());
}
