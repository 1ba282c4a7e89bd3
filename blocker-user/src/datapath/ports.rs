//! Inline (bump-in-the-wire) mode: the two ports the program forwards between.
//!
//! `PORTS` (a DEVMAP) holds the internet port at entry 0 and the subscriber port at entry 1;
//! `FLAG_INLINE` makes the blocking program redirect every frame that passes to entry 0 instead
//! of handing it to the kernel stack, and `blocker_wire`, on the internet port, sends all it
//! receives to entry 1. Replies (resets, DNS answers, the stop page) still leave through the
//! port the frame came in on.

use std::os::fd::{AsFd, AsRawFd};

use aya::maps::{DevMap, Map, xdp::XdpMapError};
use blocker_common::config::FLAG_INLINE;
use serde::Serialize;

use super::{Datapath, DatapathError, pin::ifindex};

const PORTS: &str = "PORTS";
/// Entry of the internet port (where the subscriber port's passing frames go).
const INTERNET: u32 = 0;
/// Entry of the subscriber port (where the internet port's frames go).
const SUBSCRIBER: u32 = 1;

/// The interface indexes inline mode forwards between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ports {
    pub subscriber: u32,
    pub internet: u32,
}

fn xdp_map_err(e: XdpMapError) -> DatapathError {
    match e {
        XdpMapError::MapError(e) => DatapathError::map(PORTS, e),
        other => DatapathError::Unsupported(format!("map {PORTS}: {other}")),
    }
}

impl Datapath {
    /// Inline mode: writes both ports into `PORTS` and sets `FLAG_INLINE`. From then on the
    /// blocking program forwards what passes to `internet` (once it is attached to
    /// `subscriber`), and `blocker_wire` (attached to `internet`) forwards to `subscriber`.
    pub fn set_ports(&mut self, subscriber: &str, internet: &str) -> Result<Ports, DatapathError> {
        let ports = Ports { subscriber: ifindex(subscriber)?, internet: ifindex(internet)? };
        if ports.subscriber == ports.internet {
            return Err(DatapathError::Unsupported(format!(
                "inline mode needs two ports: the subscriber port and the internet port are both {subscriber}"
            )));
        }
        {
            let mut map: DevMap<_> = self.map_mut(PORTS)?;
            map.set(INTERNET, ports.internet, None, 0).map_err(xdp_map_err)?;
            map.set(SUBSCRIBER, ports.subscriber, None, 0).map_err(xdp_map_err)?;
        }
        self.config.flags |= FLAG_INLINE;
        self.write_config()?;
        Ok(ports)
    }

    /// Router mode: clears `FLAG_INLINE` and empties `PORTS`, so passing frames continue into
    /// the kernel stack (also those a leftover `blocker_wire` of this build would forward).
    pub fn clear_ports(&mut self) -> Result<(), DatapathError> {
        self.config.flags &= !FLAG_INLINE;
        self.write_config()?;
        let map = self.ebpf.map(PORTS).ok_or(DatapathError::MissingMap(PORTS))?;
        let Map::DevMap(data) = map else {
            return Err(DatapathError::Unsupported(format!("map {PORTS} is not a DEVMAP")));
        };
        let fd = data.fd().as_fd().as_raw_fd();
        for key in [INTERNET, SUBSCRIBER] {
            delete_elem(fd, key).map_err(|source| DatapathError::Io { name: PORTS, what: "deleting a port", source })?;
        }
        Ok(())
    }

    /// Whether the program forwards between two ports (`set_ports` was called, here or by the
    /// daemon whose pinned maps these are).
    pub fn is_inline(&self) -> bool {
        self.config.flags & FLAG_INLINE != 0
    }

    /// The ports in `PORTS` (None: an entry is empty).
    pub fn ports(&self) -> Result<Option<Ports>, DatapathError> {
        let map: DevMap<_> = self.map_ref(PORTS)?;
        let get = |i| match map.get(i, 0) {
            Ok(v) => Ok(Some(v.if_index)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(PORTS, e)),
        };
        Ok(match (get(SUBSCRIBER)?, get(INTERNET)?) {
            (Some(subscriber), Some(internet)) => Some(Ports { subscriber, internet }),
            _ => None,
        })
    }
}

/// BPF_MAP_DELETE_ELEM of a `u32` key; a missing entry is not an error. (aya's `DevMap` has no
/// remove.)
fn delete_elem(map_fd: i32, key: u32) -> std::io::Result<()> {
    const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
    #[repr(C)]
    struct Attr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    let attr = Attr { map_fd: map_fd as u32, _pad: 0, key: &key as *const u32 as u64, value: 0, flags: 0 };
    // SAFETY: bpf(2) reads `size` bytes of `attr` and 4 bytes at `key`; both live across the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_DELETE_ELEM, &attr as *const Attr, std::mem::size_of::<Attr>()) };
    if ret < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(e);
        }
    }
    Ok(())
}
