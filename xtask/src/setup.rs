//! `cargo xtask setup`: every step checks first and acts only when something is missing, so
//! the other tasks call [`ensure_setup`] unconditionally (well under a second when done).

use anyhow::{Context, Result};

use crate::{apt, bpf_linker, toolchain};

pub fn ensure_setup() -> Result<()> {
    // apt first: it is the step that needs root, so a non-root user learns that at once.
    apt::ensure().context("setup: apt packages")?;
    toolchain::ensure_nightly().context("setup: nightly toolchain")?;
    toolchain::ensure_rust_src().context("setup: rust-src for nightly")?;
    bpf_linker::ensure().context("setup: bpf-linker")?;
    Ok(())
}
