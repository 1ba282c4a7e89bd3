//! The daemon's side of router mode's XDP forwarding: the egress ports asked for, checked
//! again every few seconds (`blocker run`'s loop calls [`Daemon::forward_check`]), with the
//! subscriber port's MAC, so a port whose driver stops
//! taking redirected frames leaves `FORWARD_PORTS` (its routes go back to the kernel) and one
//! that takes them again comes back. Every change of a port's state is logged once.

use super::{Daemon, lock, route_follower::RouteFollower};
use crate::datapath::ForwardPort;

/// The ports `run` asked for and their state at the last check.
#[derive(Default)]
pub struct ForwardState {
    /// The port the program judges on, whose MAC the program forwards frames to.
    pub subscriber: String,
    pub asked: Vec<String>,
    pub ports: Vec<ForwardPort>,
    /// Follows the kernel's routing changes while the route cache is on.
    pub route_follower: Option<RouteFollower>,
}

impl Daemon {
    /// Checks the XDP forwarding ports again (nothing when forwarding is off).
    pub fn forward_check(&self) {
        let mut state = lock(&self.forward);
        if state.asked.is_empty() {
            return;
        }
        let (mac, checked) = {
            let mut dp = self.datapath();
            if state.route_follower.as_ref().is_some_and(RouteFollower::failed) {
                state.route_follower = None;
                match dp.set_route_cache(false) {
                    Ok(()) => log::warn!("XDP forwarding: route cache off (nothing follows the kernel's routing changes); every forwarded frame asks the FIB"),
                    Err(e) => log::error!("XDP forwarding: cannot turn the route cache off: {e}; cached routes are reused for at most a second"),
                }
            }
            (dp.sync_port_mac(&state.subscriber), dp.sync_forward_ports(&state.asked))
        };
        match mac {
            Ok(true) => log::info!("XDP forwarding: {} has a new MAC address; frames sent to it are forwarded", state.subscriber),
            Ok(false) => {}
            Err(e) => log::error!("XDP forwarding: cannot read the MAC address of {}: {e}; frames go on as before", state.subscriber),
        }
        match checked {
            Ok(ports) => {
                log_changes(&state.ports, &ports);
                state.ports = ports;
            }
            Err(e) => log::error!("XDP forwarding: cannot update the egress ports: {e}; the ports stay as they were"),
        }
    }

    /// The XDP forwarding ports and their state (empty: forwarding is off).
    pub fn forward_ports(&self) -> Vec<ForwardPort> {
        lock(&self.forward).ports.clone()
    }

    pub(super) fn set_forward(&self, subscriber: String, asked: Vec<String>, ports: Vec<ForwardPort>) {
        log_changes(&[], &ports);
        *lock(&self.forward) = ForwardState { subscriber, asked, ports, route_follower: None };
    }

    /// Turns the route cache on, after its follower of the kernel's routing changes started; if
    /// it cannot start, the cache stays off and every forwarded frame asks the FIB.
    pub(super) fn start_route_cache(&self) {
        let mut state = lock(&self.forward);
        let mut dp = self.datapath();
        let started = dp.route_generation().and_then(RouteFollower::start).and_then(|f| dp.set_route_cache(true).map(|()| f));
        match started {
            Ok(follower) => {
                state.route_follower = Some(follower);
                log::info!("XDP forwarding: route cache on (the FIB's answers reused per CPU until the kernel reports a routing change, for at most a second)");
            }
            Err(e) => {
                let _ = dp.set_route_cache(false);
                log::warn!("XDP forwarding: route cache off: {e}; every forwarded frame asks the FIB");
            }
        }
    }

    /// The route cache off and its follower stopped: a daemon that exits leaves no cache that
    /// nobody follows.
    pub fn stop_route_cache(&self) {
        let mut state = lock(&self.forward);
        if state.route_follower.take().is_some()
            && let Err(e) = self.datapath().set_route_cache(false)
        {
            log::error!("XDP forwarding: cannot turn the route cache off: {e}; cached routes are reused for at most a second");
        }
    }

    /// Whether the route cache is on (it follows the kernel's routing changes).
    pub fn route_caching(&self) -> bool {
        lock(&self.forward).route_follower.is_some()
    }
}

/// Logs each port whose state differs from `before` (all of them at start).
fn log_changes(before: &[ForwardPort], now: &[ForwardPort]) {
    for p in now {
        let was = before.iter().find(|b| b.name == p.name);
        if was.is_some_and(|w| w.forwarding == p.forwarding && w.ifindex == p.ifindex) {
            continue;
        }
        match (&p.why_not, was.is_some()) {
            (None, _) => log::info!("XDP forwarding: routes out of {} are forwarded by the program", p.name),
            (Some(why), false) => log::warn!("XDP forwarding: not to {}: {why}; its routes go through the kernel", p.name),
            (Some(why), true) => {
                log::warn!("XDP forwarding: {} taken out: {why}; its routes go through the kernel until it takes redirected frames again", p.name)
            }
        }
    }
}
