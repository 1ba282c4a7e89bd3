//! The micro bench's forwarding port: a namespace of the run's own in which the XDP forwarding
//! classes (classes.rs `Routed`) arrive, so the program finds their routes in a real FIB. The
//! frames are only test-run, never sent.
//!
//! `in0` (the port the program judges on, MAC `ROUTER_MAC`, the destination of every test
//! frame) and `out0` (the egress, its veth peer with GRO on so that it takes redirected frames),
//! routes to 203.0.113.0/24 and 2001:db8:f::/48 through a next hop whose MAC is `in0`'s own: a
//! frame repeated in its test run is rewritten in place each time, and so stays addressed to the
//! port.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use blocker_tests::packets::frames::ROUTER_MAC;
use blocker_user::datapath::Datapath;

use crate::{
    classes::Routed,
    throughput::{
        bpf::{ifindex, in_netns},
        net::{Namespaces, exec},
    },
};

pub const PORT: &str = "in0";
const EGRESS: &str = "out0";

pub struct ForwardPort {
    pub ns: String,
    pub ifindex: u32,
}

impl ForwardPort {
    pub fn build(namespaces: &mut Namespaces) -> Result<ForwardPort> {
        let ns = namespaces.add("microfwd")?;
        let mac: String = ROUTER_MAC.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let run = |args: &[&str]| exec(&ns, args, Duration::from_secs(20)).with_context(|| format!("setting up the forwarding port: {args:?}"));
        run(&["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.default.accept_dad=0"])?;
        run(&["ip", "link", "add", "name", PORT, "address", &mac, "type", "veth", "peer", "name", "cl0"])?;
        run(&["ip", "link", "add", "name", EGRESS, "type", "veth", "peer", "name", "up0"])?;
        for dev in [PORT, "cl0", EGRESS, "up0"] {
            run(&["ip", "link", "set", dev, "up"])?;
        }
        run(&["ethtool", "-K", "up0", "gro", "on"])?;
        run(&["ip", "addr", "add", "192.0.2.1/24", "dev", PORT])?;
        run(&["ip", "addr", "add", "2001:db8:c::1/64", "dev", PORT, "nodad"])?;
        run(&["ip", "addr", "add", "198.51.100.1/24", "dev", EGRESS])?;
        run(&["ip", "addr", "add", "2001:db8:e::1/64", "dev", EGRESS, "nodad"])?;
        run(&["ip", "neigh", "replace", "198.51.100.2", "lladdr", &mac, "dev", EGRESS, "nud", "permanent"])?;
        run(&["ip", "-6", "neigh", "replace", "2001:db8:e::2", "lladdr", &mac, "dev", EGRESS, "nud", "permanent"])?;
        run(&["ip", "route", "add", "203.0.113.0/24", "via", "198.51.100.2", "dev", EGRESS])?;
        run(&["ip", "-6", "route", "add", "2001:db8:f::/48", "via", "2001:db8:e::2", "dev", EGRESS])?;
        let ifindex = in_netns(&ns, || ifindex(&std::ffi::CString::new(PORT)?))?;
        Ok(ForwardPort { ns, ifindex })
    }

    /// Forwarding on for `dp`, routes found as `routed` says. Called in the port's namespace.
    pub fn on(dp: &mut Datapath, routed: Routed) -> Result<()> {
        let ports = dp.set_xdp_forward(PORT, &[EGRESS.to_string()])?;
        if let Some(p) = ports.iter().find(|p| !p.forwarding) {
            bail!("the forwarding port cannot use {}: {}", p.name, p.why_not.as_deref().unwrap_or("?"));
        }
        dp.set_route_cache(routed == Routed::Cache)?;
        Ok(())
    }

    /// Forwarding off: the other classes measure router mode without it.
    pub fn off(dp: &mut Datapath) -> Result<()> {
        Ok(dp.clear_xdp_forward()?)
    }
}
