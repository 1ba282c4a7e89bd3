//! The smallest XDP programs there are — `return <constant action>` — loaded through the raw
//! bpf syscall, so the lab needs no compiled object (and no bpf-linker).
//!
//! The lab puts `return XDP_PASS` on the outer veth ends (c0, i0): a veth delivers frames that
//! its peer's XDP program sends back with XDP_TX only if it has NAPI, *and* the sender only
//! kicks that NAPI when the receiving veth has an XDP program of its own (kernel 6.18,
//! veth_xdp_flush: "xdp_ring is initialized on receive side?"). GRO alone gives the peer NAPI
//! but no kick: the blocker's resets then sit in c0's ring until unrelated traffic flushes it
//! (seen: curl timing out against a blocked address while the program counted every reset).

use std::{
    ffi::CString,
    fmt,
    fs::File,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    thread,
};

use anyhow::{Context, Result, anyhow};

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

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
/// Native (driver) mode only: generic XDP would not give a veth NAPI.
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// The leading fields of `union bpf_attr` for BPF_PROG_LOAD.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The leading fields of `union bpf_attr` for BPF_LINK_CREATE.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    _rest: [u64; 4],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: attr is a fully initialised prefix of bpf_attr and its size is passed along.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn load(action: XdpAction) -> io::Result<OwnedFd> {
    // r0 = action; exit
    let insns: [u64; 2] = [0xb7 | (u64::from(action as u32) << 32), 0x95];
    let license = c"GPL";
    let mut name = [0u8; 16];
    name[..8].copy_from_slice(b"lab_cnst");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    bpf(BPF_PROG_LOAD, &mut attr)
}

/// Attaches `return <action>` to `dev` in namespace `ns`, native mode.
pub(crate) fn attach_constant(ns: &str, dev: &str, action: XdpAction) -> Result<XdpLink> {
    let what = format!("{action:?} on {ns}/{dev}");
    let (ns, dev) = (ns.to_string(), dev.to_string());
    // A thread of its own: setns moves only the calling thread, and the link looks the
    // ifindex up in the caller's namespace. The thread ends right after, namespace and all.
    let link = thread::spawn(move || -> Result<OwnedFd> {
        let netns = File::open(format!("/run/netns/{ns}"))
            .with_context(|| format!("opening netns {ns}"))?;
        // SAFETY: a valid namespace descriptor; only this short-lived thread moves.
        if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error()).context("setns");
        }
        let prog = load(action).context("loading the program (BPF_PROG_LOAD)")?;
        let name = CString::new(dev.clone())?;
        // SAFETY: a NUL-terminated interface name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error()).with_context(|| format!("no interface {dev}"));
        }
        let mut attr = LinkCreateAttr {
            prog_fd: prog.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: XDP_FLAGS_DRV_MODE,
            ..Default::default()
        };
        bpf(BPF_LINK_CREATE, &mut attr).context("attaching (BPF_LINK_CREATE)")
    })
    .join()
    .map_err(|_| anyhow!("the attaching thread panicked"))?
    .with_context(|| format!("XDP {what}"))?;
    Ok(XdpLink { _link: link, what })
}
