//! Small BPF programs loaded and attached through the raw bpf syscall, with no object file
//! (and no bpf-linker): the lab's `return <action>` programs (lab/xdp.rs) and the throughput
//! benchmark's generator and sinks (bench/src/throughput/bpf.rs) load and attach through here.

use std::{
    ffi::CString,
    fs::File,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    thread,
};

use anyhow::{Context, Result, anyhow, bail};

pub const BPF_PROG_LOAD: libc::c_long = 5;
pub const BPF_LINK_CREATE: libc::c_long = 28;
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const BPF_PROG_TYPE_XDP: u32 = 6;
/// Attach types (`enum bpf_attach_type`).
pub const BPF_XDP: u32 = 37;
pub const BPF_XDP_DEVMAP: u32 = 33;
pub const BPF_TCX_EGRESS: u32 = 47;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// One bpf(2) call with `attr`, a fully initialised prefix of `union bpf_attr`.
pub fn sys<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a fully initialised prefix of union bpf_attr and its size is passed along.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// A bpf(2) call that returns a new descriptor.
pub fn sys_fd<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    let fd = sys(cmd, attr)?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

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

/// Loads `insns` (GPL) as a program of `prog_type` named `name` (at most 15 bytes). On failure
/// it loads again with the verifier's log, whose last lines the error carries.
pub fn load_program(name: &str, insns: &[u64], prog_type: u32, expected_attach_type: u32) -> Result<OwnedFd> {
    let license = c"GPL";
    let mut prog_name = [0u8; 16];
    let n = name.len().min(15);
    prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let attr = |log: &mut [u8]| ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len() as u32,
        log_buf: if log.is_empty() { 0 } else { log.as_mut_ptr() as u64 },
        prog_name,
        expected_attach_type,
        ..Default::default()
    };
    match sys_fd(BPF_PROG_LOAD, &mut attr(&mut [])) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let mut log = vec![0u8; 1 << 22];
            let _ = sys_fd(BPF_PROG_LOAD, &mut attr(&mut log));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            Err(anyhow!("loading {name} (BPF_PROG_LOAD): {e}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n")))
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    _rest: [u64; 4],
}

/// Attaches `prog` to `dev` in network namespace `ns` (`attach_type`, `flags` as for
/// BPF_LINK_CREATE) for as long as the returned link lives.
pub fn attach(prog: &OwnedFd, ns: &str, dev: &str, attach_type: u32, flags: u32) -> Result<OwnedFd> {
    let prog = prog.as_raw_fd();
    let dev_c = CString::new(dev)?;
    // The link looks the ifindex up in the caller's namespace.
    in_netns(ns, move || -> Result<OwnedFd> {
        let ifindex = ifindex(&dev_c)?;
        let mut attr = LinkCreateAttr { prog_fd: prog as u32, target_ifindex: ifindex, attach_type, flags, ..Default::default() };
        Ok(sys_fd(BPF_LINK_CREATE, &mut attr).context("BPF_LINK_CREATE")?)
    })
    .with_context(|| format!("attaching to {ns}/{dev}"))
}

/// The index of interface `dev` in the calling thread's namespace.
pub fn ifindex(dev: &CString) -> Result<u32> {
    // SAFETY: a NUL-terminated interface name.
    let i = unsafe { libc::if_nametoindex(dev.as_ptr()) };
    if i == 0 {
        bail!("no interface {dev:?}: {}", io::Error::last_os_error());
    }
    Ok(i)
}

/// Moves the calling thread into network namespace `ns` (only this thread moves).
pub fn enter_netns(ns: &str) -> Result<()> {
    let f = File::open(format!("/run/netns/{ns}")).with_context(|| format!("opening netns {ns}"))?;
    // SAFETY: a valid namespace descriptor; setns moves only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error()).context("setns");
    }
    Ok(())
}

/// Runs `f` on a thread of its own inside namespace `ns`; the thread ends with `f`, namespace
/// and all.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    thread::scope(|s| {
        s.spawn(|| {
            enter_netns(ns)?;
            f()
        })
        .join()
        .map_err(|_| anyhow!("the thread in {ns} panicked"))?
    })
}
