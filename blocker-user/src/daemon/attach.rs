//! Where and how the program is attached: router mode (XDP on the subscriber-facing interface,
//! allowed packets continue into the kernel's routing) or inline mode (bump in the wire:
//! allowed frames are forwarded port to port). Pinned links survive the daemon.

use serde::Serialize;

use super::Daemon;
use crate::datapath::{AttachMode, Attachment, DatapathError};

/// What `run` asked for, from `[datapath]` and the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachPlan {
    /// The subscriber-facing interface: the program judges what it receives.
    pub subscriber: String,
    /// Inline mode: the upstream port; frames are forwarded between the two ports.
    pub internet: Option<String>,
    /// Router mode: the egress ports the program forwards allowed frames to itself (XDP
    /// forwarding); empty: every allowed frame goes to the kernel.
    pub xdp_forward: Vec<String>,
    /// With XDP forwarding: reuse the FIB's answers (route cache) while following the
    /// kernel's routing changes.
    pub route_cache: bool,
    pub skb_mode: bool,
    /// Pin the links (the datapath was loaded with a pin directory).
    pub pinned: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    Router,
    Inline,
}

impl RunMode {
    pub fn name(&self) -> &'static str {
        match self {
            RunMode::Router => "router",
            RunMode::Inline => "inline",
        }
    }
}

/// What was attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub mode: RunMode,
    pub interfaces: Vec<Attachment>,
    /// A pinned link of a previous daemon now runs this program.
    pub replaced: bool,
}

impl Attached {
    /// The weakest attach mode among the interfaces (generic if any is generic).
    pub fn attach_mode(&self) -> AttachMode {
        if self.interfaces.iter().any(|a| a.mode == AttachMode::Generic) { AttachMode::Generic } else { AttachMode::Native }
    }
}

impl Daemon {
    /// Router mode: the blocking program on the subscriber port; passing frames continue into
    /// the kernel stack, or, with XDP forwarding, are routed by the program where it can.
    /// Inline mode: the ports go into `PORTS`, `blocker_wire` goes on the internet port first
    /// (so replies find their way back the moment the subscriber side forwards), then the
    /// blocking program on the subscriber port.
    pub fn attach(&self, plan: &AttachPlan) -> Result<Attached, DatapathError> {
        let mut dp = self.datapath();
        let Some(internet) = &plan.internet else {
            // Also undoes inline mode kept in adopted maps.
            dp.clear_ports()?;
            let forward = if plan.xdp_forward.is_empty() {
                dp.clear_xdp_forward()?;
                None
            } else {
                // Off until a follower of this daemon runs (adopted maps may have it on).
                dp.set_route_cache(false)?;
                Some(dp.set_xdp_forward(&plan.subscriber, &plan.xdp_forward)?)
            };
            let (att, replaced) = if plan.pinned { dp.attach_pinned(&plan.subscriber, plan.skb_mode)? } else { (dp.attach(&plan.subscriber, plan.skb_mode)?, false) };
            // The forwarding state's lock is taken before the datapath's elsewhere (the checks).
            drop(dp);
            if let Some(ports) = forward {
                self.set_forward(plan.subscriber.clone(), plan.xdp_forward.clone(), ports);
                if plan.route_cache {
                    self.start_route_cache();
                }
            }
            return Ok(Attached { mode: RunMode::Router, interfaces: vec![att], replaced });
        };
        if *internet == plan.subscriber {
            return Err(DatapathError::Unsupported(format!(
                "inline mode needs two ports: the internet port is the subscriber port ({internet})"
            )));
        }
        if !plan.xdp_forward.is_empty() {
            return Err(DatapathError::Unsupported(
                "XDP forwarding is router mode's: inline mode forwards from port to port already".into(),
            ));
        }
        dp.clear_xdp_forward()?;
        let ports = dp.set_ports(&plan.subscriber, internet)?;
        for (name, index) in [(&plan.subscriber, ports.subscriber), (internet, ports.internet)] {
            if let Ok(false) = crate::datapath::xdp_features::can_receive_redirects(index) {
                log::warn!(
                    "inline mode: {name} does not take frames redirected from XDP now (no ndo-xmit), so what is forwarded to it is dropped; a veth takes them only while its peer has an XDP program or GRO on"
                );
            }
        }
        let (wire, wire_replaced) =
            if plan.pinned { dp.attach_wire_pinned(internet, plan.skb_mode)? } else { (dp.attach_wire(internet, plan.skb_mode)?, false) };
        let (sub, sub_replaced) = if plan.pinned { dp.attach_pinned(&plan.subscriber, plan.skb_mode)? } else { (dp.attach(&plan.subscriber, plan.skb_mode)?, false) };
        Ok(Attached { mode: RunMode::Inline, interfaces: vec![sub, wire], replaced: wire_replaced || sub_replaced })
    }
}
