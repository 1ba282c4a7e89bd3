//! The daemon's follower of the kernel's routing changes, for XDP forwarding's route cache: a
//! thread that waits on the routing netlink groups (datapath route_events.rs) and moves
//! `ROUTE_GEN` on with every change, so no cached answer outlives the route, rule, address,
//! link or neighbour it came from by more than the time it takes the thread to wake.
//!
//! If the thread cannot go on (the socket fails, the map cannot be written), it says so and
//! ends; the next check of the ports ([`super::Daemon::forward_check`]) turns the cache off,
//! and until then no answer is reused for more than the cache's age bound.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::datapath::{DatapathError, RouteGeneration, route_events::RouteEvents};

/// How long one wait for messages lasts: how soon the thread notices it is to stop.
const WAIT: Duration = Duration::from_millis(250);

pub struct RouteFollower {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RouteFollower {
    /// Subscribes in the calling thread's network namespace (so the thread follows the one
    /// the datapath is in) and starts the thread.
    pub fn start(mut generation: RouteGeneration) -> Result<RouteFollower, DatapathError> {
        let io = |what: &'static str| {
            move |source| DatapathError::Io {
                name: "ROUTE_GEN",
                what,
                source,
            }
        };
        let mut events =
            RouteEvents::open(WAIT).map_err(io("subscribing to the kernel's routing changes"))?;
        let (stop, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (stop_t, failed_t) = (stop.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("route-follower".into())
            .spawn(move || {
                while !stop_t.load(Ordering::Relaxed) {
                    let step = events.wait().map_err(io("reading the kernel's routing changes")).and_then(|changed| {
                        if changed { generation.bump().map(|_| ()) } else { Ok(()) }
                    });
                    if let Err(e) = step {
                        log::error!("XDP forwarding: the route cache no longer follows the kernel's routing changes: {e}");
                        failed_t.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            })
            .map_err(io("starting the route follower thread"))?;
        Ok(RouteFollower {
            stop,
            failed,
            thread: Some(thread),
        })
    }

    /// The thread ended on an error: the cache must go off.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

impl Drop for RouteFollower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
