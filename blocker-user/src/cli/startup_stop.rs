//! SIGINT and SIGTERM while `blocker run` starts. Start-up can take a while: a first pull waits
//! up to each list's timeout for a slow server, and a million entries take seconds to load. An
//! operator's Ctrl-C or systemd's stop should not wait for that, so until the program is about
//! to be attached, either signal ends the process at once. That is as safe as a crash at the
//! same point, which the design already covers: nothing of this daemon is attached yet, a list
//! install in progress only ever writes the slot packets do not use, and a program an earlier
//! daemon pinned goes on blocking with its lists. From the attach on, the daemon's loop takes
//! the signals and shuts down in order.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use signal_hook::consts::{SIGINT, SIGTERM};

/// How often the watcher looks: the most a stop during start-up waits.
const POLL: Duration = Duration::from_millis(50);

pub struct StartupStop {
    over: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

impl StartupStop {
    /// Watches for SIGINT and SIGTERM from now until [`StartupStop::over`].
    pub fn arm() -> std::io::Result<StartupStop> {
        let caught = Arc::new(AtomicUsize::new(0));
        for sig in [SIGINT, SIGTERM] {
            signal_hook::flag::register_usize(sig, caught.clone(), sig as usize)?;
        }
        let over = Arc::new(AtomicBool::new(false));
        let done = over.clone();
        let watcher = thread::Builder::new().name("startup-stop".into()).spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let sig = caught.load(Ordering::SeqCst);
                if sig != 0 {
                    let name = if sig == SIGINT as usize { "SIGINT" } else { "SIGTERM" };
                    log::warn!("{name} during start-up: stopping before anything was attached (a program an earlier daemon pinned goes on blocking)");
                    std::process::exit(0);
                }
                thread::sleep(POLL);
            }
        })?;
        Ok(StartupStop { over, watcher: Some(watcher) })
    }

    /// Start-up is over: from here the daemon's loop handles the signals (a signal that came
    /// just before is still pending there).
    pub fn over(mut self) {
        self.over.store(true, Ordering::SeqCst);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}
