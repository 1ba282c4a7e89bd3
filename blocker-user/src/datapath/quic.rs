//! The QUIC maps as the controller sees them: the ring buffer of copied client Initials
//! (QUIC_RING), the verdicts per flow (QUIC_VERDICTS) and the switches (QUIC_CONFIG). The
//! program copies and drops; user space reads names (crate::quic) and judges them
//! (crate::daemon's QUIC thread). ARCHITECTURE.md, QUIC, has the whole path.
//!
//! The maps are taken out of the loaded object ([`Datapath::take_quic`]) so the thread that
//! drains the ring owns them and never waits on the datapath lock. They are pinned with the
//! others: the next daemon of the same build finds the verdicts in force and the Initials
//! copied while no daemon ran (daemon/quic.rs, "Restarts").

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd, AsRawFd, RawFd},
    time::Duration,
};

use aya::maps::{Array, HashMap, Map, MapData, RingBuf};
pub use blocker_common::quic::{
    COPY_CAP, QuicConfig, QuicCopy, QuicFlow, QuicVerdict, VERDICT_BLOCK, VERDICT_PASS, VERDICT_SHADOW,
};

use super::{Datapath, DatapathError};

pub const RING: &str = "QUIC_RING";
pub const VERDICTS: &str = "QUIC_VERDICTS";
pub const CONFIG: &str = "QUIC_CONFIG";

/// Copies per second per CPU the program may make, and how many at once. 20 000 a second is
/// about 10 000 new connections a second per CPU (two Initials each), far above what one
/// subscriber link opens; a flood beyond it passes uncopied (`quic_overload`), never held.
pub const DEFAULT_RATE: u32 = 20_000;
pub const DEFAULT_BURST: u32 = 2_000;

/// One copied datagram, read out of the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    pub flow: QuicFlow,
    /// The UDP payload as copied (cut at COPY_CAP bytes).
    pub payload: Vec<u8>,
    /// Its length on the wire.
    pub wire_len: u32,
    /// The program's QUIC epoch when it copied it.
    pub epoch: u32,
}

impl Copied {
    /// Parses one ring record; None for a record of another size (a different build).
    pub fn from_record(bytes: &[u8]) -> Option<Copied> {
        if bytes.len() < std::mem::size_of::<QuicCopy>() {
            return None;
        }
        // SAFETY: QuicCopy is plain repr(C) integers and bytes, valid for any bit pattern, and
        // the record holds at least its size; read_unaligned copes with any alignment.
        let rec: QuicCopy = unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const QuicCopy) };
        Some(Copied { flow: rec.flow, payload: rec.payload().to_vec(), wire_len: rec.wire_len, epoch: rec.epoch })
    }
}

/// The ring, the verdicts and the switches, owned by whoever judges QUIC.
pub struct QuicMaps {
    ring: RingBuf<MapData>,
    verdicts: HashMap<MapData, QuicFlow, QuicVerdict>,
    config: Array<MapData, QuicConfig>,
}

impl Datapath {
    /// Takes the QUIC maps out of the loaded object (once: a second call finds them gone).
    pub fn take_quic(&mut self) -> Result<QuicMaps, DatapathError> {
        let mut taken = Vec::new();
        for name in [RING, VERDICTS, CONFIG] {
            let map = self.ebpf.take_map(name).ok_or(DatapathError::MissingMap(name))?;
            taken.push((name, map));
        }
        for (name, map) in &taken {
            self.quic_pins.push((name, duplicate(name, map)?));
        }
        let mut take = |name: &'static str| {
            let at = taken.iter().position(|(n, _)| *n == name).ok_or(DatapathError::MissingMap(name))?;
            Ok::<_, DatapathError>(taken.swap_remove(at).1)
        };
        let ring = take(RING)?;
        let verdicts = take(VERDICTS)?;
        let config = take(CONFIG)?;
        Ok(QuicMaps {
            ring: RingBuf::try_from(ring).map_err(|e| DatapathError::map(RING, e))?,
            verdicts: HashMap::try_from(verdicts).map_err(|e| DatapathError::map(VERDICTS, e))?,
            config: Array::try_from(config).map_err(|e| DatapathError::map(CONFIG, e))?,
        })
    }
}

impl Datapath {
    /// Turns QUIC off in the program (UDP to port 443 then passes to the address checks),
    /// also where adopted maps had it on. Takes the QUIC maps, as no thread will.
    pub fn quic_off(&mut self) -> Result<(), DatapathError> {
        let mut maps = self.take_quic()?;
        let mut c = maps.config()?;
        c.flags &= !blocker_common::quic::QUIC_ENABLED;
        maps.set_config(c)
    }
}

/// A second handle on a map (its fd duplicated), for pinning it again.
pub(super) fn duplicate(name: &'static str, map: &Map) -> Result<MapData, DatapathError> {
    let data = match map {
        Map::RingBuf(d) | Map::LruHashMap(d) | Map::HashMap(d) | Map::Array(d) => d,
        _ => return Err(DatapathError::MissingMap(name)),
    };
    let fd = data.fd().as_fd().try_clone_to_owned().map_err(|source| DatapathError::Io { name, what: "duplicating a map handle", source })?;
    MapData::from_fd(fd).map_err(|e| DatapathError::map(name, e))
}

impl QuicMaps {
    /// Writes the switches: with `QUIC_ENABLED` the program copies Initials and applies verdicts.
    pub fn set_config(&mut self, config: QuicConfig) -> Result<(), DatapathError> {
        self.config.set(0, config, 0).map_err(|e| DatapathError::map(CONFIG, e))
    }

    pub fn config(&self) -> Result<QuicConfig, DatapathError> {
        self.config.get(&0, 0).map_err(|e| DatapathError::map(CONFIG, e))
    }

    /// The next copied datagram, if one is waiting. Records of another size are skipped.
    pub fn next(&mut self) -> Option<Copied> {
        loop {
            let item = self.ring.next()?;
            if let Some(c) = Copied::from_record(&item) {
                return Some(c);
            }
        }
    }

    /// The ring's file descriptor, to wait on with poll(2) (readable when records are waiting).
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    pub fn write_verdict(&mut self, flow: &QuicFlow, v: QuicVerdict) -> Result<(), DatapathError> {
        self.verdicts.insert(flow, v, 0).map_err(|e| DatapathError::map(VERDICTS, e))
    }

    pub fn verdict(&self, flow: &QuicFlow) -> Option<QuicVerdict> {
        self.verdicts.get(flow, 0).ok()
    }

    /// The verdicts of `epoch` held now (walks the map: at most its 65 536 entries).
    pub fn verdicts_of(&self, epoch: u32) -> Vec<(QuicFlow, QuicVerdict)> {
        self.verdicts.iter().filter_map(Result::ok).filter(|(_, v)| v.epoch == epoch).collect()
    }

    /// Verdicts held now (walks the map: for tests and diagnostics).
    pub fn verdict_count(&self) -> usize {
        self.verdicts.keys().filter(|k| k.is_ok()).count()
    }
}

/// Waits until `fd` is readable or `timeout` passes; true if readable.
pub fn wait_readable(fd: RawFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    r > 0 && pfd.revents & libc::POLLIN != 0
}

/// The flow's key as the program builds it (addresses in network order, ports in host order).
pub fn flow_key(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> QuicFlow {
    let mut k = QuicFlow { sport, dport, ..QuicFlow::default() };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            k.src[..4].copy_from_slice(&s.octets());
            k.dst[..4].copy_from_slice(&d.octets());
        }
        (s, d) => {
            k.v6 = 1;
            k.src = to_v6(s).octets();
            k.dst = to_v6(d).octets();
        }
    }
    k
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped(),
        IpAddr::V6(v) => v,
    }
}

/// The subscriber's and the server's addresses of a flow key (for tests; the daemon never
/// logs them).
pub fn flow_addrs(k: &QuicFlow) -> (IpAddr, IpAddr) {
    if k.v6 != 0 {
        (IpAddr::V6(Ipv6Addr::from(k.src)), IpAddr::V6(Ipv6Addr::from(k.dst)))
    } else {
        let v4 = |b: &[u8; 16]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        (v4(&k.src), v4(&k.dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_its_flow_and_only_the_copied_bytes() {
        let mut rec = QuicCopy {
            flow: flow_key("192.0.2.1".parse().unwrap(), 50000, "203.0.113.5".parse().unwrap(), 443),
            len: 3,
            wire_len: 1250,
            epoch: 7,
            payload: [0; COPY_CAP],
        };
        rec.payload[..4].copy_from_slice(b"abcd");
        // SAFETY: QuicCopy is plain data without padding (size asserted in blocker-common).
        let bytes = unsafe { std::slice::from_raw_parts(&rec as *const QuicCopy as *const u8, std::mem::size_of::<QuicCopy>()) };
        let c = Copied::from_record(bytes).unwrap();
        assert_eq!((c.payload.as_slice(), c.wire_len, c.epoch), (&b"abc"[..], 1250, 7));
        assert_eq!(c.flow.src[..4], [192, 0, 2, 1]);
        assert_eq!((c.flow.sport, c.flow.dport, c.flow.v6), (50000, 443, 0));
        assert!(Copied::from_record(&bytes[..100]).is_none(), "a short record is not read");
    }

    #[test]
    fn flow_keys_round_trip_both_families() {
        let k = flow_key("2001:db8::1".parse().unwrap(), 1, "2001:db8::2".parse().unwrap(), 443);
        assert_eq!(k.v6, 1);
        assert_eq!(flow_addrs(&k), ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap()));
        let k = flow_key("192.0.2.1".parse().unwrap(), 1, "198.51.100.2".parse().unwrap(), 443);
        assert_eq!(flow_addrs(&k), ("192.0.2.1".parse().unwrap(), "198.51.100.2".parse().unwrap()));
    }
}
