//! bpf-linker, which links the kernel program. It must use the same LLVM as the nightly rustc
//! that emits the bitcode, so we build it against the `libLLVM` shared library rustup ships in
//! nightly's sysroot rather than against a distribution LLVM of another version.

use std::{
    env, fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

use crate::{
    process::{cargo, cargo_home, run},
    toolchain::{NightlyInfo, nightly_sysroot},
};

/// The version we build when none works.
pub const VERSION: &str = "0.13.0";

pub fn ensure() -> Result<()> {
    if let Some((path, version)) = working_linker() {
        println!("ok: {version} ({})", path.display());
        return Ok(());
    }
    let info = NightlyInfo::query()?;
    println!(
        "installing: bpf-linker {VERSION} against nightly {}'s LLVM {} (takes a few minutes)",
        info.release, info.llvm_version
    );
    let prefix = llvm_prefix(&info)?;
    install(&prefix, &info)?;
    match working_linker() {
        Some((path, version)) => {
            println!("ok: {version} ({})", path.display());
            Ok(())
        }
        None => bail!("bpf-linker was installed but `bpf-linker --version` still fails"),
    }
}

/// The first bpf-linker on PATH (or in `$CARGO_HOME/bin`) that starts, with its version line.
/// A binary that no longer starts (its libLLVM went away with an old nightly) does not count.
fn working_linker() -> Option<(PathBuf, String)> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain([cargo_home().join("bin")])
        .map(|dir| dir.join("bpf-linker"))
        .filter(|p| p.is_file())
        .find_map(|p| {
            let out = Command::new(&p)
                .arg("--version")
                .stdin(Stdio::null())
                .output()
                .ok()?;
            let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
            out.status.success().then_some((p, version))
        })
}

/// A prefix whose `lib/` holds `libLLVM.so` (for the `-lLLVM` link) and the versioned soname,
/// both pointing at nightly's library. bpf-linker records this `lib/` as its rpath, so it must
/// outlive the build: it lives under `$CARGO_HOME` next to the installed binary, not under
/// `target/`, where `cargo clean` would break the linker.
fn llvm_prefix(info: &NightlyInfo) -> Result<PathBuf> {
    let library = nightly_sysroot()?.join("lib").join(info.libllvm_name());
    if !library.is_file() {
        bail!(
            "nightly's LLVM library {} is missing (rustc +nightly -vV says release {} with LLVM {})",
            library.display(),
            info.release,
            info.llvm_version
        );
    }
    let prefix = cargo_home().join("bpf-linker-llvm").join(&info.release);
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("cannot create {}", lib.display()))?;
    for name in ["libLLVM.so".to_string(), info.libllvm_name()] {
        replace_symlink(&library, &lib.join(name))?;
    }
    Ok(prefix)
}

fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    if link.symlink_metadata().is_ok() {
        fs::remove_file(link).with_context(|| format!("cannot replace {}", link.display()))?;
    }
    symlink(target, link)
        .with_context(|| format!("cannot link {} -> {}", link.display(), target.display()))
}

fn install(prefix: &Path, info: &NightlyInfo) -> Result<()> {
    let feature = format!("llvm-{}", info.llvm_major());
    let attempt = |locked: bool| {
        let mut cmd = cargo();
        cmd.env("LLVM_PREFIX", prefix)
            .args(["install", "bpf-linker", "--version", VERSION]);
        if locked {
            cmd.arg("--locked");
        }
        // --force: we only get here when the installed binary does not start, and cargo
        // would otherwise refuse with "already installed".
        cmd.args(["--force", "--no-default-features", "--features", &feature]);
        run(&mut cmd)
    };
    attempt(true).or_else(|e| {
        println!("installing: bpf-linker without --locked (the locked build failed: {e:#})");
        attempt(false)
    })
}
