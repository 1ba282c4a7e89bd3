//! The kernel's routing changes, as XDP forwarding's route cache (blocker-common
//! route_cache.rs) must see them: a socket on the rtnetlink multicast groups of everything a
//! FIB lookup's answer depends on (links and their MACs, addresses, routes, policy rules, next
//! hops, neighbours), read by the daemon's follower thread, which moves `ROUTE_GEN` on
//! whenever [`RouteEvents::wait`] says an answer may have changed.
//!
//! Neighbour messages are the only frequent ones (every entry goes reachable, stale, delay,
//! probe and back again while in use): they count only when a neighbour's MAC changes or it
//! stops being usable, so a busy router's cache is not emptied many times a second for
//! nothing. Everything else counts as a change without being read further. Messages the
//! kernel could not queue (ENOBUFS) count as a change too.
//!
//! Only `libc` is used; every read of a message is bounds-checked, and a malformed one counts
//! as a change, never a panic.

use std::{
    collections::HashMap,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

// rtnetlink multicast groups (include/uapi/linux/rtnetlink.h, enum rtnetlink_groups).
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_NEIGH: u32 = 3;
const RTNLGRP_IPV4_IFADDR: u32 = 5;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV4_RULE: u32 = 8;
const RTNLGRP_IPV6_IFADDR: u32 = 9;
const RTNLGRP_IPV6_ROUTE: u32 = 11;
const RTNLGRP_IPV6_RULE: u32 = 19;
const RTNLGRP_NEXTHOP: u32 = 32;
/// Every group a FIB lookup's answer can depend on.
pub const GROUPS: [u32; 9] = [
    RTNLGRP_LINK,
    RTNLGRP_NEIGH,
    RTNLGRP_IPV4_IFADDR,
    RTNLGRP_IPV4_ROUTE,
    RTNLGRP_IPV4_RULE,
    RTNLGRP_IPV6_IFADDR,
    RTNLGRP_IPV6_ROUTE,
    RTNLGRP_IPV6_RULE,
    RTNLGRP_NEXTHOP,
];

const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const NLMSG_NOOP: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
/// `struct ndmsg`: family, pads, ifindex, state, flags, type.
const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// NUD_VALID (include/net/neighbour.h): the states in which the FIB lookup hands out the
/// neighbour's MAC.
const NUD_VALID: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;
/// Neighbours remembered at most; past it the memory is dropped and every neighbour message
/// counts as a change again until each is seen once more.
const MAX_NEIGHBOURS: usize = 1 << 18;
/// Kernel buffer for the socket: large enough for a burst (a routing daemon installing a full
/// table) to be read as one change rather than lost.
const RECV_BUFFER: libc::c_int = 4 << 20;

/// Datagrams read by one [`RouteEvents::wait`] at most.
const DRAIN: usize = 64;

/// A neighbour entry's identity: interface, family, address.
type NeighbourKey = (i32, u8, Vec<u8>);

pub struct RouteEvents {
    fd: OwnedFd,
    buf: Vec<u8>,
    changes: Changes,
}

/// Tells changes from repetitions in the messages read.
#[derive(Default)]
struct Changes {
    /// What each neighbour seen was: its MAC while usable, None while not.
    neighbours: HashMap<NeighbourKey, Option<Vec<u8>>>,
}

impl RouteEvents {
    /// Subscribes to the groups in the calling thread's network namespace; each `wait` blocks
    /// for at most `timeout`.
    pub fn open(timeout: Duration) -> io::Result<RouteEvents> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SO_RCVBUFFORCE passes the system limit with CAP_NET_ADMIN; SO_RCVBUF is the fallback.
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RECV_BUFFER).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RECV_BUFFER);
        }
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        // SAFETY: an all-zero sockaddr_nl is valid; family set below.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: addr is a sockaddr_nl of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        for group in GROUPS {
            setsockopt(&fd, libc::SOL_NETLINK, libc::NETLINK_ADD_MEMBERSHIP, &group)?;
        }
        Ok(RouteEvents {
            fd,
            buf: vec![0; 64 << 10],
            changes: Changes::default(),
        })
    }

    /// Blocks until messages arrive or the timeout passes, then reads what is queued (up to
    /// [`DRAIN`] messages, so a stream of changes that never pauses is still reported).
    /// True: something happened that may change a FIB answer (or messages were lost).
    pub fn wait(&mut self) -> io::Result<bool> {
        let mut changed = false;
        let mut flags = 0;
        for _ in 0..DRAIN {
            // SAFETY: recv writes at most buf.len() bytes into buf.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    flags,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => return Ok(changed),
                    // The kernel dropped messages: whatever they said is unknown.
                    Some(libc::ENOBUFS) => changed = true,
                    _ => return Err(e),
                }
            } else {
                changed |= self.changes.read_messages(&self.buf[..n as usize]);
            }
            // What else is queued now belongs to the same change.
            flags = libc::MSG_DONTWAIT;
        }
        Ok(changed)
    }
}

impl Changes {
    /// True if any message of `data` may change a FIB answer.
    fn read_messages(&mut self, mut data: &[u8]) -> bool {
        let mut changed = false;
        while data.len() >= NLMSG_HDRLEN {
            let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
            let kind = u16::from_ne_bytes(data[4..6].try_into().expect("2 bytes"));
            if len < NLMSG_HDRLEN || len > data.len() {
                return true;
            }
            changed |= match kind {
                RTM_NEWNEIGH | RTM_DELNEIGH => self.neighbour(kind, &data[NLMSG_HDRLEN..len]),
                NLMSG_NOOP => false,
                _ => true,
            };
            data = &data[align4(len).min(data.len())..];
        }
        changed
    }

    /// Whether a neighbour message changes what the FIB hands out for it.
    fn neighbour(&mut self, kind: u16, body: &[u8]) -> bool {
        let Some(nd) = parse_neighbour(body) else {
            return true;
        };
        let now = (kind == RTM_NEWNEIGH && nd.state & NUD_VALID != 0).then_some(nd.lladdr);
        if self.neighbours.len() >= MAX_NEIGHBOURS {
            self.neighbours.clear();
        }
        let key = (nd.ifindex, nd.family, nd.dst);
        let before = if kind == RTM_DELNEIGH {
            self.neighbours.remove(&key)
        } else {
            self.neighbours.insert(key, now.clone())
        };
        match (before, now) {
            // Still usable with the same MAC: reachable, stale, delay, probe all answer alike.
            (Some(Some(a)), Some(b)) => a != b,
            // Was not usable and still is not (or is gone): no answer had it.
            (Some(None), None) => false,
            // First seen (it may have been usable before the follower started), or usable now
            // or no longer.
            _ => true,
        }
    }
}

struct Neighbour {
    family: u8,
    ifindex: i32,
    state: u16,
    dst: Vec<u8>,
    lladdr: Vec<u8>,
}

/// The fields of an `ndmsg` with its attributes; None if it is malformed or has no address.
fn parse_neighbour(body: &[u8]) -> Option<Neighbour> {
    if body.len() < NDMSG_LEN {
        return None;
    }
    let mut nd = Neighbour {
        family: body[0],
        ifindex: i32::from_ne_bytes(body[4..8].try_into().ok()?),
        state: u16::from_ne_bytes(body[8..10].try_into().ok()?),
        dst: Vec::new(),
        lladdr: Vec::new(),
    };
    let mut attrs = &body[NDMSG_LEN..];
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        match kind {
            NDA_DST => nd.dst = attrs[4..len].to_vec(),
            NDA_LLADDR => nd.lladdr = attrs[4..len].to_vec(),
            _ => {}
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    (!nd.dst.is_empty()).then_some(nd)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTM_NEWNEIGH/RTM_DELNEIGH message as the kernel sends it.
    fn neigh_msg(
        kind: u16,
        ifindex: i32,
        state: u16,
        dst: [u8; 4],
        lladdr: Option<[u8; 6]>,
    ) -> Vec<u8> {
        let mut body = vec![libc::AF_INET as u8, 0, 0, 0];
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&state.to_ne_bytes());
        body.extend_from_slice(&[0, 1]);
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&NDA_DST.to_ne_bytes());
        body.extend_from_slice(&dst);
        if let Some(mac) = lladdr {
            body.extend_from_slice(&10u16.to_ne_bytes());
            body.extend_from_slice(&NDA_LLADDR.to_ne_bytes());
            body.extend_from_slice(&mac);
            body.extend_from_slice(&[0, 0]);
        }
        let mut m = ((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    fn events() -> Changes {
        Changes::default()
    }

    const REACHABLE: u16 = 0x02;
    const STALE: u16 = 0x04;
    const FAILED: u16 = 0x20;
    const INCOMPLETE: u16 = 0x01;
    const HOP: [u8; 4] = [198, 51, 100, 2];
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];

    #[test]
    fn a_neighbour_counts_when_its_mac_or_usability_changes_not_when_it_ages() {
        let mut ev = events();
        assert!(
            ev.read_messages(&neigh_msg(RTM_NEWNEIGH, 3, REACHABLE, HOP, Some(MAC))),
            "first seen"
        );
        assert!(
            !ev.read_messages(&neigh_msg(RTM_NEWNEIGH, 3, STALE, HOP, Some(MAC))),
            "reachable to stale: same answer"
        );
        assert!(
            !ev.read_messages(&neigh_msg(RTM_NEWNEIGH, 3, REACHABLE, HOP, Some(MAC))),
            "and back"
        );
        assert!(
            ev.read_messages(&neigh_msg(
                RTM_NEWNEIGH,
                3,
                REACHABLE,
                HOP,
                Some([2, 0, 0, 0, 0, 0x98])
            )),
            "a new MAC"
        );
        assert!(
            ev.read_messages(&neigh_msg(RTM_NEWNEIGH, 3, FAILED, HOP, None)),
            "no longer usable"
        );
        assert!(
            !ev.read_messages(&neigh_msg(RTM_NEWNEIGH, 3, INCOMPLETE, HOP, None)),
            "still not usable"
        );
        assert!(
            !ev.read_messages(&neigh_msg(RTM_DELNEIGH, 3, FAILED, HOP, None)),
            "an unusable one removed"
        );
        assert!(
            ev.read_messages(&neigh_msg(RTM_DELNEIGH, 3, FAILED, HOP, None)),
            "removed, not known: may have been usable"
        );
        ev.read_messages(&neigh_msg(RTM_NEWNEIGH, 3, REACHABLE, HOP, Some(MAC)));
        assert!(
            ev.read_messages(&neigh_msg(RTM_NEWNEIGH, 4, REACHABLE, HOP, Some(MAC))),
            "the same address on another port is another neighbour"
        );
        assert!(
            ev.read_messages(&neigh_msg(RTM_DELNEIGH, 3, REACHABLE, HOP, Some(MAC))),
            "a usable one removed"
        );
    }

    #[test]
    fn every_other_routing_message_and_every_malformed_one_counts() {
        let mut ev = events();
        let mut route = neigh_msg(RTM_NEWNEIGH, 3, REACHABLE, HOP, Some(MAC));
        route[4..6].copy_from_slice(&24u16.to_ne_bytes()); // RTM_NEWROUTE
        assert!(ev.read_messages(&route));
        let mut noop = route.clone();
        noop[4..6].copy_from_slice(&NLMSG_NOOP.to_ne_bytes());
        assert!(!ev.read_messages(&noop));
        let known = neigh_msg(RTM_NEWNEIGH, 3, REACHABLE, HOP, Some(MAC));
        ev.read_messages(&known);
        assert!(!ev.read_messages(&known));
        assert!(
            ev.read_messages(&known[..known.len() - 3]),
            "a message cut short"
        );
        let mut bad_attr = known.clone();
        bad_attr[NLMSG_HDRLEN + NDMSG_LEN] = 0xff;
        assert!(
            ev.read_messages(&bad_attr),
            "an attribute longer than its message"
        );
        let mut two = known.clone();
        two.extend_from_slice(&route);
        assert!(
            ev.read_messages(&two),
            "a route change after an unchanged neighbour"
        );
    }
}
