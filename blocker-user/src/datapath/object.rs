//! The XDP object, built by build.rs (aya-build) and embedded in the binary so a deployment is
//! one file.

use aya::{Ebpf, EbpfLoader};

use super::{DatapathError, PASS_PROGRAM, PROGRAM};

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
    for name in [PROGRAM, PASS_PROGRAM] {
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut(name)
            .ok_or(DatapathError::MissingProgram(name))?
            .try_into()
            .map_err(|e| DatapathError::Program { name, source: e })?;
        prog.load().map_err(|e| DatapathError::Program { name, source: e })?;
    }
    Ok(ebpf)
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
