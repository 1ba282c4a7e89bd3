//! The smallest XDP programs there are — `return <constant action>` — loaded through the raw
//! bpf syscall, so the lab needs no compiled object (and no bpf-linker).
//!
//! The lab puts `return XDP_PASS` on the outer veth ends (c0, i0): a veth delivers frames that
//! its peer's XDP program sends back with XDP_TX only if it has NAPI, *and* the sender only
//! kicks that NAPI when the receiving veth has an XDP program of its own (kernel 6.18,
//! veth_xdp_flush: "xdp_ring is initialized on receive side?"). GRO alone gives the peer NAPI
//! but no kick: the blocker's resets then sit in c0's ring until unrelated traffic flushes it
//! (seen: curl timing out against a blocked address while the program counted every reset).

use std::{fmt, os::fd::OwnedFd};

use anyhow::{Context, Result};

use crate::rawbpf::{self, BPF_PROG_TYPE_XDP, BPF_XDP, XDP_FLAGS_DRV_MODE};

/// An XDP verdict (`enum xdp_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum XdpAction {
    Aborted = 0,
    Drop = 1,
    Pass = 2,
    Tx = 3,
}

/// An attached program; dropping it detaches the program.
pub struct XdpLink {
    _link: OwnedFd,
    what: String,
}

impl fmt::Debug for XdpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XdpLink({})", self.what)
    }
}

/// Attaches `return <action>` to `dev` in namespace `ns`, native mode.
pub(crate) fn attach_constant(ns: &str, dev: &str, action: XdpAction) -> Result<XdpLink> {
    let what = format!("{action:?} on {ns}/{dev}");
    // r0 = action; exit
    let insns: [u64; 2] = [0xb7 | (u64::from(action as u32) << 32), 0x95];
    let prog = rawbpf::load_program("lab_cnst", &insns, BPF_PROG_TYPE_XDP, 0)?;
    let link = rawbpf::attach(&prog, ns, dev, BPF_XDP, XDP_FLAGS_DRV_MODE).with_context(|| format!("XDP {what}"))?;
    Ok(XdpLink { _link: link, what })
}
