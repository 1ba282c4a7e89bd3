//! A network interface's XDP features as the kernel advertises them, read through the
//! generic-netlink "netdev" family (Linux 6.3+). The one question the controller asks is
//! whether frames can be redirected *to* a device from XDP (`XDP_ACT_NDO_XMIT`): router mode's
//! XDP forwarding (forward.rs) redirects to egress ports, and frames redirected to a device that cannot take them are
//! dropped with nothing to show for it but the xdp tracepoints, so it is better to ask first.
//!
//! Only `libc` is used: the request is two small messages, and the reply is parsed with
//! bounds checks on every read so a malformed or unexpected reply is an error, never a panic.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::OnceLock,
};

// NETDEV_XDP_ACT_* (include/uapi/linux/netdev.h, enum netdev_xdp_act).
/// XDP_ABORTED, XDP_DROP, XDP_PASS and XDP_TX: what every XDP driver supports.
pub const XDP_ACT_BASIC: u64 = 1;
/// The device's XDP program may return XDP_REDIRECT.
pub const XDP_ACT_REDIRECT: u64 = 2;
/// The device implements `ndo_xdp_xmit`: frames can be redirected *to* it.
pub const XDP_ACT_NDO_XMIT: u64 = 4;
/// AF_XDP zero-copy.
pub const XDP_ACT_XSK_ZEROCOPY: u64 = 8;
/// XDP offloaded to the NIC.
pub const XDP_ACT_HW_OFFLOAD: u64 = 16;
/// Multi-buffer (non-linear) frames in the driver's receive path.
pub const XDP_ACT_RX_SG: u64 = 32;
/// Multi-buffer frames in `ndo_xdp_xmit`.
pub const XDP_ACT_NDO_XMIT_SG: u64 = 64;

/// Every bit with its uapi name, lowest first.
const XDP_ACT_NAMES: [(u64, &str); 7] = [
    (XDP_ACT_BASIC, "basic"),
    (XDP_ACT_REDIRECT, "redirect"),
    (XDP_ACT_NDO_XMIT, "ndo-xmit"),
    (XDP_ACT_XSK_ZEROCOPY, "xsk-zerocopy"),
    (XDP_ACT_HW_OFFLOAD, "hw-offload"),
    (XDP_ACT_RX_SG, "rx-sg"),
    (XDP_ACT_NDO_XMIT_SG, "ndo-xmit-sg"),
];

// Generic netlink constants (include/uapi/linux/genetlink.h, include/uapi/linux/netdev.h).
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_FAMILY_NAME: &str = "netdev";
const NETDEV_FAMILY_VERSION: u8 = 1;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;

// Netlink framing (include/uapi/linux/netlink.h). Defined here rather than taken from libc so
// the message layout is visible in one place.
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// The flag bits of nla_type; the rest is the attribute's number.
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000);

/// How long to wait for a reply: the kernel answers at once, so only something broken would
/// reach it, and then an error beats hanging the caller.
const RECV_TIMEOUT_SECS: libc::time_t = 2;

/// The netdev family's id. Generic-netlink families are registered once for the whole kernel
/// (not per network namespace), so the id can be resolved once per process.
static NETDEV_FAMILY: OnceLock<u16> = OnceLock::new();

/// The NETDEV_XDP_ACT_* bits of interface `ifindex` in the caller's network namespace
/// (the calling thread's, after setns). Errors: ENODEV for no such interface; Unsupported when
/// the kernel predates the netdev family (6.3); TimedOut if no reply comes within 2 s.
pub fn xdp_features(ifindex: u32) -> io::Result<u64> {
    let mut socket = GenlSocket::open()?;
    let family = match NETDEV_FAMILY.get() {
        Some(&id) => id,
        None => {
            let id = socket.resolve_family(NETDEV_FAMILY_NAME)?;
            *NETDEV_FAMILY.get_or_init(|| id)
        }
    };
    let mut attrs = Vec::new();
    put_attr(&mut attrs, NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes());
    let reply = socket.request(family, NETDEV_CMD_DEV_GET, NETDEV_FAMILY_VERSION, &attrs)?;
    let value = find_attr(&reply, NETDEV_A_DEV_XDP_FEATURES)?
        .ok_or_else(|| invalid("netdev reply has no xdp-features attribute"))?;
    // The kernel writes it with nla_put_u64_64bit: exactly 8 bytes (alignment comes from a
    // separate pad attribute, not from the value).
    let bytes: [u8; 8] = value.try_into().map_err(|_| invalid("xdp-features attribute is not 8 bytes"))?;
    Ok(u64::from_ne_bytes(bytes))
}

/// Whether frames can be redirected *to* this device from XDP (`XDP_ACT_NDO_XMIT`). This is
/// the driver's capability, not link state: a down device still says yes. For veth it changes
/// at run time: set while the *peer* has a native-mode XDP program or GRO on (either gives the
/// peer a NAPI context to receive into), and recomputed when the device is opened or the
/// peer's setting changes while the peer is up, so ask with both ends up.
pub fn can_receive_redirects(ifindex: u32) -> io::Result<bool> {
    Ok(xdp_features(ifindex)? & XDP_ACT_NDO_XMIT != 0)
}

/// The uapi names of the set bits (lowest first, unknown bits as hex), for logs and reports.
pub fn feature_names(bits: u64) -> Vec<String> {
    let known = XDP_ACT_NAMES.iter().fold(0, |all, (bit, _)| all | bit);
    let mut names: Vec<String> =
        XDP_ACT_NAMES.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, name)| (*name).to_string()).collect();
    if bits & !known != 0 {
        names.push(format!("{:#x}", bits & !known));
    }
    names
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("no netlink reply within {RECV_TIMEOUT_SECS} s"))
}

/// One generic-netlink socket, used for one call and closed: nothing (sequence numbers, queued
/// messages) is shared between calls or threads, and a thread that entered another network
/// namespace gets a socket there.
struct GenlSocket {
    fd: OwnedFd,
    seq: u32,
}

impl GenlSocket {
    fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_GENERIC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval { tv_sec: RECV_TIMEOUT_SECS, tv_usec: 0 };
        // SAFETY: the option value points at a live timeval and its exact size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(GenlSocket { fd, seq: 0 })
    }

    /// The id of family `name`; Unsupported if this kernel does not have it.
    fn resolve_family(&mut self, name: &str) -> io::Result<u16> {
        let mut attrs = Vec::new();
        let mut cname = name.as_bytes().to_vec();
        cname.push(0); // the kernel's policy is NLA_NUL_STRING
        put_attr(&mut attrs, CTRL_ATTR_FAMILY_NAME, &cname);
        let reply = match self.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, &attrs) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("kernel has no {name} netlink family (needs Linux 6.3+)"),
                ));
            }
            other => other?,
        };
        let id = find_attr(&reply, CTRL_ATTR_FAMILY_ID)?.ok_or_else(|| invalid("family reply has no id"))?;
        let bytes: [u8; 2] = id.try_into().map_err(|_| invalid("family id attribute is not 2 bytes"))?;
        Ok(u16::from_ne_bytes(bytes))
    }

    /// Sends one request (NLM_F_REQUEST | NLM_F_ACK) and returns the attributes of its reply,
    /// after the kernel's acknowledgement. A negative errno in the acknowledgement is returned
    /// as that OS error.
    fn request(&mut self, family: u16, cmd: u8, version: u8, attrs: &[u8]) -> io::Result<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let message = build_message(family, cmd, version, seq, attrs)?;
        self.send(&message)?;

        // The reply and the acknowledgement come as separate datagrams: keep reading until
        // the acknowledgement, keeping the reply that carried our sequence number. SO_RCVTIMEO
        // bounds each wait; the deadline bounds the whole, should other messages keep coming.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(RECV_TIMEOUT_SECS as u64);
        let mut reply = None;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            if std::time::Instant::now() > deadline {
                return Err(timed_out());
            }
            let len = self.recv(&mut buf)?;
            for message in Messages::new(&buf[..len]) {
                let message = message?;
                if message.seq != seq {
                    continue; // not ours: a stale or unrelated message
                }
                match message.kind {
                    NLMSG_ERROR => {
                        let code = message.payload.get(..4).ok_or_else(|| invalid("truncated netlink error"))?;
                        let code = i32::from_ne_bytes(code.try_into().expect("slice of 4"));
                        return match code {
                            0 => reply.ok_or_else(|| invalid("netlink acknowledged without a reply")),
                            c if c < 0 => Err(io::Error::from_raw_os_error(-c)),
                            _ => Err(invalid("netlink error with a positive code")),
                        };
                    }
                    NLMSG_DONE => return reply.ok_or_else(|| invalid("netlink done without a reply")),
                    kind if kind == family => {
                        let attrs =
                            message.payload.get(GENL_HDRLEN..).ok_or_else(|| invalid("truncated genetlink header"))?;
                        reply = Some(attrs.to_vec());
                    }
                    _ => {} // NLMSG_NOOP and anything else carries nothing for us
                }
            }
        }
    }

    fn send(&self, message: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl is plain data for which all-zero is valid.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t; // nl_pid 0: the kernel
        loop {
            // SAFETY: the buffer and address are live for the call and their sizes are exact.
            let sent = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    message.as_ptr().cast(),
                    message.len(),
                    0,
                    (&kernel as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if sent < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            // Netlink datagrams are sent whole or not at all; anything else is a kernel oddity.
            return if sent as usize == message.len() { Ok(()) } else { Err(invalid("short netlink send")) };
        }
    }

    /// One datagram from the kernel into `buf`; its length.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: as for send.
            let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // MSG_TRUNC makes recvfrom return the datagram's full length, so a reply larger
            // than the buffer is reported instead of being parsed cut short.
            // SAFETY: buf and from are live, writable and their lengths are passed.
            let got = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut from_len,
                )
            };
            if got < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => Err(timed_out()),
                    _ => Err(e),
                };
            }
            let got = got as usize;
            if got > buf.len() {
                return Err(invalid("netlink reply larger than the receive buffer"));
            }
            // Only the kernel (port 0) answers requests; another process could unicast to us.
            if from.nl_pid != 0 {
                continue;
            }
            return Ok(got);
        }
    }
}

/// nlmsghdr + genlmsghdr + attributes, in host byte order as netlink wants.
fn build_message(family: u16, cmd: u8, version: u8, seq: u32, attrs: &[u8]) -> io::Result<Vec<u8>> {
    let len = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
    let len32 = u32::try_from(len).map_err(|_| invalid("netlink request too large"))?;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&len32.to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel knows the sender's port
    m.extend_from_slice(&[cmd, version, 0, 0]);
    m.extend_from_slice(attrs);
    Ok(m)
}

/// Appends one attribute, padded to NLA_ALIGNTO (4) as the kernel expects of the next one.
fn put_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(NLA_HDRLEN + value.len()).expect("attribute values here are a few bytes");
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (align4(value.len()) - value.len()), 0);
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink message of a datagram.
struct Message<'a> {
    kind: u16,
    seq: u32,
    /// Everything after the nlmsghdr, up to nlmsg_len.
    payload: &'a [u8],
}

/// The messages of one datagram, each bounds-checked; a malformed header ends the walk with
/// an error.
struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(datagram: &'a [u8]) -> Self {
        Messages { rest: datagram }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = io::Result<Message<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest); // an error leaves nothing to walk
        let Some(header) = rest.get(..NLMSG_HDRLEN) else {
            return Some(Err(invalid("truncated netlink header")));
        };
        let len = u32::from_ne_bytes(header[0..4].try_into().expect("slice of 4")) as usize;
        let kind = u16::from_ne_bytes(header[4..6].try_into().expect("slice of 2"));
        let seq = u32::from_ne_bytes(header[8..12].try_into().expect("slice of 4"));
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Some(Err(invalid("netlink message length out of bounds")));
        }
        // The next message starts at the aligned end; the last one's padding may be absent.
        self.rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(Message { kind, seq, payload: &rest[NLMSG_HDRLEN..len] }))
    }
}

/// The value of the first top-level attribute numbered `kind`, None if absent. Every header
/// and length is checked against what is left of the buffer.
fn find_attr(mut attrs: &[u8], kind: u16) -> io::Result<Option<&[u8]>> {
    while !attrs.is_empty() {
        let header = attrs.get(..NLA_HDRLEN).ok_or_else(|| invalid("truncated netlink attribute"))?;
        let len = u16::from_ne_bytes([header[0], header[1]]) as usize;
        let this = u16::from_ne_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > attrs.len() {
            return Err(invalid("netlink attribute length out of bounds"));
        }
        if this == kind {
            return Ok(Some(&attrs[NLA_HDRLEN..len]));
        }
        attrs = attrs.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::{PASS_PROGRAM, object};
    use aya::programs::xdp::XdpMode;

    #[test]
    fn constants_match_uapi() {
        // enum netdev_xdp_act in include/uapi/linux/netdev.h: NETDEV_XDP_ACT_MASK = 127.
        let all = XDP_ACT_NAMES.iter().fold(0, |all, (bit, _)| all | bit);
        assert_eq!(all, 127);
        assert_eq!(feature_names(XDP_ACT_BASIC | XDP_ACT_NDO_XMIT | 0x100), ["basic", "ndo-xmit", "0x100"]);
        assert!(feature_names(0).is_empty());
    }

    #[test]
    fn loopback_has_no_xdp_features() {
        // Loopback is ifindex 1 in every namespace. Its driver registers no XDP support, so
        // the kernel reports 0 (observed on 6.18); generic XDP still works on it, but that is
        // not a driver feature and is not advertised.
        let bits = xdp_features(1).expect("netdev family query for lo");
        assert_eq!(bits, 0, "lo advertises {:?}", feature_names(bits));
        assert!(!can_receive_redirects(1).unwrap());
    }

    #[test]
    fn missing_interface_is_enodev() {
        let e = xdp_features(0x7fff_fff0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
    }

    #[test]
    fn ifindex_zero_is_rejected_by_policy() {
        // The kernel's attribute policy wants ifindex >= 1 (NLA_POLICY_MIN); a value outside a
        // policy range is ERANGE.
        let e = xdp_features(0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ERANGE), "{e}");
    }

    #[test]
    fn unknown_family_is_unsupported() {
        // Under 16 bytes: a longer name fails the kernel's policy (EINVAL) before the lookup.
        let e = GenlSocket::open().unwrap().resolve_family("blkxf-nofam").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("needs Linux 6.3+"), "{e}");
    }

    #[test]
    fn silence_times_out() {
        // Nothing was asked, so nothing comes: the receive gives up instead of hanging.
        let start = std::time::Instant::now();
        let e = GenlSocket::open().unwrap().recv(&mut [0u8; 64]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn attributes_are_aligned_and_bounds_checked() {
        let mut attrs = Vec::new();
        put_attr(&mut attrs, 7, b"abcde"); // 4 + 5 = 9, padded to 12
        put_attr(&mut attrs, 3, &0x44u64.to_ne_bytes());
        assert_eq!(attrs.len(), 12 + 12);
        assert_eq!(find_attr(&attrs, 7).unwrap(), Some(&b"abcde"[..]));
        assert_eq!(find_attr(&attrs, 3).unwrap(), Some(&0x44u64.to_ne_bytes()[..]));
        assert_eq!(find_attr(&attrs, 9).unwrap(), None);
        // Every truncation either finds the first attribute or reports an error; none panic.
        for cut in 0..attrs.len() {
            let _ = find_attr(&attrs[..cut], 3);
        }
        // A length below the header or past the end is an error.
        assert!(find_attr(&[2, 0, 1, 0], 1).is_err());
        assert!(find_attr(&[9, 0, 1, 0, 0], 1).is_err());
        // Nested/byte-order flag bits are not part of the number.
        assert_eq!(find_attr(&[5, 0, 1, 0x80, 42, 0, 0, 0], 1).unwrap(), Some(&[42u8][..]));
    }

    #[test]
    fn messages_are_bounds_checked() {
        let mut datagram = build_message(0x20, 1, 1, 77, &[]).unwrap();
        datagram.extend(build_message(0x21, 1, 1, 78, &[1, 2, 3, 4]).unwrap());
        let parsed: Vec<_> =
            Messages::new(&datagram).map(|m| m.unwrap()).map(|m| (m.kind, m.seq, m.payload.len())).collect();
        assert_eq!(parsed, [(0x20, 77, 4), (0x21, 78, 8)]);
        for cut in 0..datagram.len() {
            // Walk to the end; truncated messages end in an error, never a panic.
            for _ in Messages::new(&datagram[..cut]) {}
        }
        let mut short = build_message(0x20, 1, 1, 1, &[]).unwrap();
        short[0] = 8; // nlmsg_len below the header
        assert!(Messages::new(&short).next().unwrap().is_err());
    }

    /// A network namespace that the test owns: created here, deleted on drop (also when an
    /// assertion fails, by unwinding).
    struct Netns {
        name: String,
    }

    impl Netns {
        fn create(name: String) -> Self {
            run("ip", &["netns", "add", &name]);
            Netns { name }
        }

        fn ip(&self, args: &[&str]) {
            let mut all = vec!["-n", self.name.as_str()];
            all.extend_from_slice(args);
            run("ip", &all);
        }

        fn exec(&self, args: &[&str]) {
            let mut all = vec!["netns", "exec", self.name.as_str()];
            all.extend_from_slice(args);
            run("ip", &all);
        }

        /// Runs `f` on a thread that has entered the namespace: setns(2) changes only the
        /// calling thread, so the test's own thread (and other tests) stay where they are.
        fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
            let path = format!("/run/netns/{}", self.name);
            std::thread::scope(|s| {
                s.spawn(|| {
                    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                    // SAFETY: setns on a namespace file we hold open; it affects only this thread.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
                    f()
                })
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        }

        /// Features of `iface` as seen from inside the namespace.
        fn features(&self, iface: &str) -> u64 {
            self.inside(|| xdp_features(ifindex(iface)).expect("xdp_features in the namespace"))
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            match std::process::Command::new("ip").args(["netns", "del", &self.name]).status() {
                Ok(s) if s.success() => {}
                other => eprintln!("ip netns del {}: {other:?}", self.name),
            }
        }
    }

    fn run(program: &str, args: &[&str]) {
        let out = std::process::Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn ifindex(name: &str) -> u32 {
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: c is a valid NUL-terminated string for the call.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        assert_ne!(index, 0, "{name}: {}", io::Error::last_os_error());
        index
    }

    #[test]
    #[ignore = "needs root: creates a network namespace with a veth pair"]
    fn veth_redirect_target_follows_peer_napi() {
        let ns = Netns::create(format!("blkxf-test-{}", std::process::id()));
        // `name` spelled out: a bare `a` after `link add` is taken for `address`.
        ns.ip(&["link", "add", "name", "xfa", "type", "veth", "peer", "name", "xfb"]);
        // Both ends up first: veth recomputes a device's bits when it is opened and when its
        // peer's GRO or XDP changes while the peer is up (6.18: GRO switched on a down peer
        // shows only once this end is reopened), so the state is only settled with both up.
        ns.ip(&["link", "set", "xfa", "up"]);
        ns.ip(&["link", "set", "xfb", "up"]);
        let plain = XDP_ACT_BASIC | XDP_ACT_REDIRECT | XDP_ACT_RX_SG;
        let target = plain | XDP_ACT_NDO_XMIT | XDP_ACT_NDO_XMIT_SG;
        let check = |iface: &str, want: u64, why: &str| {
            let got = ns.features(iface);
            assert_eq!(got, want, "{iface} {why}: {:?}", feature_names(got));
        };

        // veth's GRO is off by default and xfb has no XDP program: xfb has no NAPI context
        // to receive redirected frames, so xfa is no redirect target.
        check("xfa", plain, "with a plain peer");
        check("xfb", plain, "with a plain peer");
        assert!(!ns.inside(|| can_receive_redirects(ifindex("xfa")).unwrap()));

        // GRO on xfb enables its NAPI: xfa (which transmits into xfb) can take redirects.
        ns.exec(&["ethtool", "-K", "xfb", "gro", "on"]);
        check("xfa", target, "with GRO on the peer");
        check("xfb", plain, "with GRO on itself");
        assert!(ns.inside(|| can_receive_redirects(ifindex("xfa")).unwrap()));
        ns.exec(&["ethtool", "-K", "xfb", "gro", "off"]);
        check("xfa", plain, "with GRO off again");

        // A native-mode XDP program on xfb does the same; a generic-mode one does not.
        for (mode, want) in [(XdpMode::Skb, plain), (XdpMode::Driver, target)] {
            let got = ns.inside(|| {
                let mut ebpf = object::load(object::bytes()).expect("load the embedded object");
                let prog: &mut aya::programs::Xdp = ebpf.program_mut(PASS_PROGRAM).unwrap().try_into().unwrap();
                prog.attach("xfb", mode).expect("attach the pass program to xfb");
                let got = xdp_features(ifindex("xfa")).unwrap();
                drop(ebpf); // detaches
                got
            });
            assert_eq!(got, want, "xfa with a {mode:?} program on xfb: {:?}", feature_names(got));
            check("xfa", plain, "after the detach");
        }
    }
}
