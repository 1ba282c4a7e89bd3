//! Router mode's opt-in XDP forwarding (`FLAG_XDP_FORWARD`, blocker-ebpf forward.rs): the
//! program routes allowed frames itself, with the kernel's FIB, and redirects them out of the
//! egress port, when that port is in `FORWARD_PORTS`.
//!
//! A frame redirected to a port that cannot transmit XDP frames is dropped by the kernel, not
//! handed back: so a port enters `FORWARD_PORTS` only while its driver says it takes them
//! (the netdev `NDO_XMIT` feature, xdp_features.rs), and the daemon checks again every few
//! seconds ([`Datapath::sync_forward_ports`]). A route out of any other port goes to the
//! kernel, as without the switch.

use aya::maps::{MapData, PerCpuArray, xdp::DevMapHash};
use blocker_common::{
    config::{FLAG_ROUTE_CACHE, FLAG_XDP_FORWARD},
    forward::{ForwardCounts, OUTCOME_NAMES, OUTCOMES, PortMac, ROUTE_CACHED},
};
use serde::Serialize;

use super::{Datapath, DatapathError, pin::ifindex, xdp_features};

const FORWARD_PORTS: &str = "FORWARD_PORTS";
const PORT_MAC: &str = "PORT_MAC";
const FORWARD_COUNTS: &str = "FORWARD_COUNTS";

/// An egress port named for XDP forwarding, and whether the program may redirect to it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForwardPort {
    pub name: String,
    /// 0 when the interface does not exist.
    pub ifindex: u32,
    /// In `FORWARD_PORTS`: routes out of it are forwarded in XDP.
    pub forwarding: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

impl ForwardPort {
    fn unusable(name: &str, ifindex: u32, why: String) -> ForwardPort {
        ForwardPort { name: name.to_string(), ifindex, forwarding: false, why_not: Some(why) }
    }
}

/// Packets per outcome of XDP forwarding, summed over CPUs, in [`OUTCOME_NAMES`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardCountsSum {
    pub outcomes: [u64; OUTCOMES],
    /// Of the forwarded, those whose route came from the route cache.
    pub route_cached: u64,
}

impl ForwardCountsSum {
    /// `(label, packets)` for every outcome.
    pub fn rows(&self) -> Vec<(&'static str, u64)> {
        OUTCOME_NAMES.iter().copied().zip(self.outcomes).collect()
    }
}

fn xdp_map_err(name: &'static str, e: aya::maps::xdp::XdpMapError) -> DatapathError {
    match e {
        aya::maps::xdp::XdpMapError::MapError(e) => DatapathError::map(name, e),
        other => DatapathError::Unsupported(format!("map {name}: {other}")),
    }
}

/// The MAC address of `iface` in the calling thread's network namespace (SIOCGIFHWADDR on a
/// socket of that namespace: sysfs shows the namespace it was mounted in, which a thread that
/// entered another one with setns does not change).
fn port_mac(iface: &str) -> Result<[u8; 6], DatapathError> {
    const SIOCGIFHWADDR: libc::c_ulong = 0x8927;
    const ARPHRD_ETHER: u16 = 1;
    /// `struct ifreq` with the `ifr_hwaddr` member of its union (40 bytes on 64-bit).
    #[repr(C)]
    struct IfReqHwAddr {
        name: [u8; 16],
        family: u16,
        data: [u8; 14],
        _union_rest: [u8; 8],
    }
    let unusable = |why: String| DatapathError::Unsupported(format!("XDP forwarding: {iface}: {why}"));
    if iface.is_empty() || iface.len() >= 16 || iface.contains('\0') {
        return Err(unusable("not an interface name".into()));
    }
    let mut req = IfReqHwAddr { name: [0; 16], family: 0, data: [0; 14], _union_rest: [0; 8] };
    req.name[..iface.len()].copy_from_slice(iface.as_bytes());
    // SAFETY: a plain socket call; the descriptor is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(unusable(format!("cannot open a socket: {}", std::io::Error::last_os_error())));
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: the ioctl writes at most sizeof(struct ifreq) = 40 bytes into `req`, which is that size.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), SIOCGIFHWADDR, &mut req as *mut IfReqHwAddr) };
    if rc < 0 {
        return Err(unusable(format!("cannot read its MAC address: {}", std::io::Error::last_os_error())));
    }
    let mac: [u8; 6] = req.data[..6].try_into().expect("6 of 14 bytes");
    if req.family != ARPHRD_ETHER || mac == [0; 6] {
        return Err(unusable("not an Ethernet port (no MAC address): XDP forwarding needs one".into()));
    }
    Ok(mac)
}

/// Whether `name` can be an XDP forwarding egress now.
fn check_port(name: &str) -> ForwardPort {
    let Ok(index) = ifindex(name) else {
        return ForwardPort::unusable(name, 0, "no such interface".into());
    };
    match xdp_features::xdp_features(index) {
        Ok(bits) if bits & xdp_features::XDP_ACT_NDO_XMIT != 0 => {
            ForwardPort { name: name.to_string(), ifindex: index, forwarding: true, why_not: None }
        }
        Ok(bits) => ForwardPort::unusable(
            name,
            index,
            format!(
                "its driver does not take frames redirected from XDP now (XDP features: {}; no ndo-xmit; a veth takes them only while its peer has an XDP program or GRO on)",
                match xdp_features::feature_names(bits) {
                    names if names.is_empty() => "none".to_string(),
                    names => names.join(", "),
                }
            ),
        ),
        Err(e) => ForwardPort::unusable(name, index, format!("cannot read its XDP features: {e}")),
    }
}

impl Datapath {
    /// Router mode with XDP forwarding: the program forwards allowed frames that arrive on
    /// `subscriber` itself, to the ports of `egress` that take redirected frames. Returns each
    /// port's state; a port that cannot take them is left out (its routes go to the kernel).
    pub fn set_xdp_forward(&mut self, subscriber: &str, egress: &[String]) -> Result<Vec<ForwardPort>, DatapathError> {
        if egress.is_empty() {
            return Err(DatapathError::Unsupported("XDP forwarding needs at least one egress port".into()));
        }
        self.sync_port_mac(subscriber)?;
        let ports = self.sync_forward_ports(egress)?;
        self.config.flags |= FLAG_XDP_FORWARD;
        self.write_config()?;
        Ok(ports)
    }

    /// Writes the MAC `subscriber` has now into `PORT_MAC`; true when it changed. The daemon
    /// calls it with every check of the ports: a port whose MAC changes (a bond's failover, an
    /// operator) would otherwise have every frame sent to it handed to the kernel, safe but slow.
    pub fn sync_port_mac(&mut self, subscriber: &str) -> Result<bool, DatapathError> {
        let mac = port_mac(subscriber)?;
        let mut map: aya::maps::Array<_, PortMac> = self.map_mut(PORT_MAC)?;
        let now = PortMac { mac, set: 1, _pad: 0 };
        if map.get(&0, 0).map_err(|e| DatapathError::map(PORT_MAC, e))? == now {
            return Ok(false);
        }
        map.set(0, now, 0).map_err(|e| DatapathError::map(PORT_MAC, e))?;
        Ok(true)
    }

    /// Checks every port of `egress` again and makes `FORWARD_PORTS` hold exactly those that
    /// take redirected frames now. The daemon calls it every few seconds: a port whose driver
    /// stops taking them (a veth whose peer lost its XDP program) leaves the map before many
    /// frames are lost, and one that can again comes back.
    pub fn sync_forward_ports(&mut self, egress: &[String]) -> Result<Vec<ForwardPort>, DatapathError> {
        let ports: Vec<ForwardPort> = egress.iter().map(|n| check_port(n)).collect();
        let mut map: DevMapHash<_> = self.map_mut(FORWARD_PORTS)?;
        let present: Vec<u32> = map.keys().filter_map(Result::ok).collect();
        for key in present {
            if !ports.iter().any(|p| p.forwarding && p.ifindex == key) {
                map.remove(key).map_err(|e| DatapathError::map(FORWARD_PORTS, e))?;
            }
        }
        for p in ports.iter().filter(|p| p.forwarding) {
            map.insert(p.ifindex, p.ifindex, None, 0).map_err(|e| xdp_map_err(FORWARD_PORTS, e))?;
        }
        Ok(ports)
    }

    /// Router mode without XDP forwarding: the switch off first, then the ports and MAC
    /// cleared (also those adopted maps of an earlier daemon hold).
    pub fn clear_xdp_forward(&mut self) -> Result<(), DatapathError> {
        self.config.flags &= !(FLAG_XDP_FORWARD | FLAG_ROUTE_CACHE);
        self.write_config()?;
        self.sync_forward_ports(&[])?;
        let mut map: aya::maps::Array<_, PortMac> = self.map_mut(PORT_MAC)?;
        map.set(0, PortMac::default(), 0).map_err(|e| DatapathError::map(PORT_MAC, e))
    }

    /// Whether the program forwards allowed frames itself (router mode's switch).
    pub fn is_xdp_forwarding(&self) -> bool {
        self.config.flags & FLAG_XDP_FORWARD != 0
    }

    /// The interface indexes in `FORWARD_PORTS`.
    pub fn forward_port_indexes(&self) -> Result<Vec<u32>, DatapathError> {
        let map: DevMapHash<_> = self.map_ref(FORWARD_PORTS)?;
        map.keys().map(|k| k.map_err(|e| DatapathError::map(FORWARD_PORTS, e))).collect()
    }

    pub fn forward_counts(&self) -> Result<ForwardCountsSum, DatapathError> {
        let map: PerCpuArray<&MapData, ForwardCounts> = self.map_ref(FORWARD_COUNTS)?;
        let per_cpu = map.get(&0, 0).map_err(|e| DatapathError::map(FORWARD_COUNTS, e))?;
        let mut sum = ForwardCountsSum::default();
        for c in per_cpu.iter() {
            for (s, n) in sum.outcomes.iter_mut().zip(c.packets) {
                *s = s.wrapping_add(n);
            }
            sum.route_cached = sum.route_cached.wrapping_add(c.packets[ROUTE_CACHED]);
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ethernet_port_has_a_mac_to_forward_from() {
        // Loopback exists in every namespace and has no MAC.
        let e = port_mac("lo").unwrap_err().to_string();
        assert!(e.contains("not an Ethernet port"), "{e}");
        let e = port_mac("blkfw-none0").unwrap_err().to_string();
        assert!(e.contains("cannot read its MAC address"), "{e}");
        assert!(port_mac("").is_err() && port_mac("a-name-far-too-long").is_err());
    }

    #[test]
    fn a_missing_port_is_named_and_not_used() {
        let p = check_port("blkfw-none0");
        assert!(!p.forwarding);
        assert_eq!(p.ifindex, 0);
        assert_eq!(p.why_not.as_deref(), Some("no such interface"));
    }

    #[test]
    fn every_outcome_has_a_label() {
        let c = ForwardCountsSum { outcomes: [1, 2, 3, 4, 5, 6], route_cached: 1 };
        let rows = c.rows();
        assert_eq!(rows.len(), OUTCOMES);
        assert_eq!(rows[0], ("forwarded", 1));
        assert_eq!(rows[OUTCOMES - 1], ("kernel", 6));
    }
}
