//! The XDP object, built by build.rs (aya-build) and embedded in the binary so a deployment is
//! one file.

use aya::{Ebpf, EbpfLoader};

use super::{DatapathError, PASS_PROGRAM, PROGRAM, TCP_PROGRAM};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/blocker"));

/// The embedded ELF, for tools that inspect it (the object check test).
pub fn bytes() -> &'static [u8] {
    OBJECT
}

/// Loads `object` (the embedded one, or for benchmarks another build's) and both programs.
pub(super) fn load(object: &[u8]) -> Result<Ebpf, DatapathError> {
    load_bytes(&mut EbpfLoader::new(), object)
}

/// Loads with a prepared loader (pinned map paths) and loads both programs into the kernel.
pub(super) fn load_with(loader: &mut EbpfLoader<'_>) -> Result<Ebpf, DatapathError> {
    load_bytes(loader, OBJECT)
}

fn load_bytes(loader: &mut EbpfLoader<'_>, object: &[u8]) -> Result<Ebpf, DatapathError> {
    raise_memlock_limit();
    let mut ebpf = loader.load(object).map_err(|e| DatapathError::Load(Box::new(e)))?;
    // Builds before the TCP name reader became a program of its own have neither it nor its
    // program array (a benchmark's `--compare-object`); the embedded object has both (the
    // object check test).
    let split = ebpf.program(TCP_PROGRAM).is_some() || ebpf.map(TCP_JUDGE).is_some();
    let programs: &[&'static str] = if split { &[PROGRAM, PASS_PROGRAM, TCP_PROGRAM] } else { &[PROGRAM, PASS_PROGRAM] };
    for &name in programs {
        xdp(&mut ebpf, name)?.load().map_err(|e| DatapathError::Program { name, source: e })?;
    }
    if split {
        link_tcp_program(&mut ebpf)?;
    }
    Ok(ebpf)
}

/// `blocker`'s program array: entry 0 is the TCP name reader, which it tail-calls.
const TCP_JUDGE: &str = "TCP_JUDGE";

fn xdp<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut aya::programs::Xdp, DatapathError> {
    ebpf.program_mut(name)
        .ok_or(DatapathError::MissingProgram(name))?
        .try_into()
        .map_err(|e| DatapathError::Program { name, source: e })
}

/// Puts the loaded TCP name reader into `TCP_JUDGE`, before anything is attached: a frame that
/// found the entry empty would pass with its names unread.
fn link_tcp_program(ebpf: &mut Ebpf) -> Result<(), DatapathError> {
    let fd = {
        let prog = xdp(ebpf, TCP_PROGRAM)?;
        let fd = prog.fd().map_err(|e| DatapathError::Program { name: TCP_PROGRAM, source: e })?;
        fd.try_clone().map_err(|source| DatapathError::Io { name: TCP_JUDGE, what: "duplicating the program's descriptor", source })?
    };
    let map = ebpf.map_mut(TCP_JUDGE).ok_or(DatapathError::MissingMap(TCP_JUDGE))?;
    let mut array = aya::maps::ProgramArray::try_from(map).map_err(|e| DatapathError::map(TCP_JUDGE, e))?;
    array.set(0, &fd, 0).map_err(|e| DatapathError::map(TCP_JUDGE, e))
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so large lists load there.
fn raise_memlock_limit() {
    let rlim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid pointer; failure only matters on old kernels and is
    // then reported by the map creation that needs the memory.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
    if ret != 0 {
        log::debug!("setrlimit(RLIMIT_MEMLOCK) failed: {}", std::io::Error::last_os_error());
    }
}
