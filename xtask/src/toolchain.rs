//! The nightly toolchain aya-build compiles the kernel program with (`-Z build-std` needs
//! `rust-src`), and the facts about its LLVM that bpf-linker must be built against.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

use crate::process::{output, run};

/// Installs the nightly toolchain when it is missing.
pub fn ensure_nightly() -> Result<()> {
    let list = output(Command::new("rustup").args(["toolchain", "list"]))?;
    if has_nightly(&list) {
        println!("ok: nightly toolchain");
        return Ok(());
    }
    println!("installing: nightly toolchain");
    run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
}

/// Adds `rust-src` to nightly when it is missing.
pub fn ensure_rust_src() -> Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))?;
    // Lines read `rust-src` (no host suffix: the sources are target-independent).
    if installed
        .lines()
        .any(|l| l.trim() == "rust-src" || l.trim().starts_with("rust-src-"))
    {
        println!("ok: rust-src for nightly");
        return Ok(());
    }
    println!("installing: rust-src for nightly");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

/// `rustup toolchain list` names the channel toolchain `nightly-<host>`; dated ones
/// (`nightly-2026-05-19-<host>`) are not what `+nightly` selects.
fn has_nightly(list: &str) -> bool {
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|name| {
            name.strip_prefix("nightly-")
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
        })
}

/// What `rustc +nightly -vV` says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NightlyInfo {
    /// `release:`, e.g. `1.97.0-nightly`.
    pub release: String,
    /// `LLVM version:`, e.g. `22.1.4`.
    pub llvm_version: String,
}

impl NightlyInfo {
    pub fn query() -> Result<Self> {
        Self::parse(&output(Command::new("rustc").args(["+nightly", "-vV"]))?)
    }

    pub fn parse(verbose_version: &str) -> Result<Self> {
        let field = |name: &str| {
            verbose_version
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .with_context(|| format!("no `{name}` line in rustc -vV output"))
        };
        let info = NightlyInfo {
            release: field("release:")?,
            llvm_version: field("LLVM version:")?,
        };
        if info.llvm_version.split('.').count() < 2 {
            bail!(
                "unexpected LLVM version `{}` in rustc -vV output",
                info.llvm_version
            );
        }
        Ok(info)
    }

    /// `22` for LLVM 22.1.4: bpf-linker's cargo feature is `llvm-<major>`.
    pub fn llvm_major(&self) -> &str {
        self.llvm_version.split('.').next().unwrap_or_default()
    }

    /// `22.1` for LLVM 22.1.4: the shared library's soname carries major.minor.
    pub fn llvm_major_minor(&self) -> String {
        self.llvm_version
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The LLVM shared library rustup ships in the sysroot's `lib/`.
    pub fn libllvm_name(&self) -> String {
        format!(
            "libLLVM.so.{}-rust-{}",
            self.llvm_major_minor(),
            self.release
        )
    }
}

/// `rustc +nightly --print sysroot`.
pub fn nightly_sysroot() -> Result<PathBuf> {
    let out = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    Ok(PathBuf::from(out.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VV: &str = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\n\
        binary: rustc\n\
        commit-hash: e50aa6fba4e63ab34c72bf9acfd2c307c1155d1a\n\
        commit-date: 2026-05-19\n\
        host: x86_64-unknown-linux-gnu\n\
        release: 1.97.0-nightly\n\
        LLVM version: 22.1.4\n";

    #[test]
    fn parses_rustc_verbose_version() {
        let info = NightlyInfo::parse(VV).unwrap();
        assert_eq!(info.release, "1.97.0-nightly");
        assert_eq!(info.llvm_major(), "22");
        assert_eq!(info.llvm_major_minor(), "22.1");
        assert_eq!(info.libllvm_name(), "libLLVM.so.22.1-rust-1.97.0-nightly");
    }

    #[test]
    fn missing_llvm_line_is_an_error() {
        assert!(NightlyInfo::parse("release: 1.97.0-nightly\n").is_err());
    }

    #[test]
    fn finds_the_channel_nightly_only() {
        assert!(has_nightly(
            "stable-x86_64-unknown-linux-gnu (default)\nnightly-x86_64-unknown-linux-gnu\n"
        ));
        assert!(has_nightly(
            "nightly-x86_64-unknown-linux-gnu (active, default)\n"
        ));
        assert!(!has_nightly(
            "stable-x86_64-unknown-linux-gnu\nnightly-2026-05-19-x86_64-unknown-linux-gnu\n"
        ));
        assert!(!has_nightly("stable-x86_64-unknown-linux-gnu\n"));
    }
}
