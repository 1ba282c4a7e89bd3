//! Binaries of this workspace that the lab runs as separate processes (the `blocker` binary, the
//! HTTP/3 server): the one an environment variable names, else one a nested `cargo build`
//! makes.
//!
//! The lab library does not link them: the blocker needs bpf-linker (which xtask installs after
//! building this library), and the HTTP/3 server a QUIC stack the library's other users do not
//! build. So a test that needs one either gets it from its runner (`cargo xtask test` sets
//! `$BLOCKER_BIN`) or builds it itself, once per test process.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};

use super::cmd::{describe, run_checked};

/// What [`workspace_binary`] remembers of its first answer for one binary: the path, or the
/// error text (an error is kept too, so that the next test does not start the same failing
/// build again).
pub(crate) type BinaryCache = OnceLock<Result<PathBuf, String>>;

/// One binary of the workspace and how to build it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkspaceBinary {
    /// Names a built binary to use instead of building one.
    pub env_var: &'static str,
    /// `cargo build -p <package> --bin <bin>`.
    pub package: &'static str,
    pub bin: &'static str,
    /// `--release` (the blocker is run as an operator runs it).
    pub release: bool,
    /// `--features ...` of `package`.
    pub features: &'static [&'static str],
    /// Deadline of the nested build (a cold one compiles everything the binary needs).
    pub build_timeout: Duration,
}

/// The binary: `$<env_var>` if set (it must name a file), else the one `cargo build` makes;
/// worked out once per process per `cache`.
pub(crate) fn workspace_binary(cache: &BinaryCache, binary: &WorkspaceBinary) -> Result<PathBuf> {
    cache
        .get_or_init(|| binary.locate_or_build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

impl WorkspaceBinary {
    fn locate_or_build(&self) -> Result<PathBuf> {
        let env_var = self.env_var;
        if let Some(bin) = env::var_os(env_var) {
            let bin = PathBuf::from(bin);
            if !bin.is_file() {
                bail!("${env_var} names {}, which is not a file", bin.display());
            }
            return Ok(bin);
        }
        // The cargo running these tests (cargo sets $CARGO for what it runs), so the nested
        // build uses the same toolchain.
        let cargo = env::var_os("CARGO")
            .or_else(|| option_env!("CARGO").map(Into::into))
            .unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate sits inside the workspace");
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace).args(self.build_args());
        let what = describe(&cmd);
        let stdout = run_checked(cmd, self.build_timeout)?;
        executable(&String::from_utf8_lossy(&stdout), self.bin)
            .with_context(|| format!("`{what}` named no `{}` executable", self.bin))
    }

    /// `build [--release] -p <package> [--features a,b] --bin <bin>`, with JSON messages so that
    /// the executable's path can be read rather than guessed from the target directory.
    fn build_args(&self) -> Vec<String> {
        let mut args = vec!["build".to_string()];
        if self.release {
            args.push("--release".into());
        }
        args.extend(["-p".into(), self.package.into()]);
        if !self.features.is_empty() {
            args.extend(["--features".into(), self.features.join(",")]);
        }
        args.extend([
            "--bin".into(),
            self.bin.into(),
            "--message-format=json-render-diagnostics".into(),
        ]);
        args
    }
}

/// The path of `bin` in cargo's JSON messages: the artifact message of the binary carries
/// `"executable":"/path/to/<bin>"`.
fn executable(messages: &str, bin: &str) -> Option<PathBuf> {
    const KEY: &str = "\"executable\":\"";
    messages
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .find_map(|l| {
            let rest = &l[l.find(KEY)? + KEY.len()..];
            let path = PathBuf::from(&rest[..rest.find('"')?]);
            (path.file_name()? == bin).then_some(path)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H3: WorkspaceBinary = WorkspaceBinary {
        env_var: "H3_SERVER_BIN",
        package: "blocker-tests",
        bin: "h3_server",
        release: false,
        features: &["h3-server"],
        build_timeout: Duration::from_secs(1),
    };

    #[test]
    fn builds_the_named_binary_with_its_features() {
        assert_eq!(
            H3.build_args(),
            [
                "build",
                "-p",
                "blocker-tests",
                "--features",
                "h3-server",
                "--bin",
                "h3_server",
                "--message-format=json-render-diagnostics"
            ]
        );
        let blocker = WorkspaceBinary {
            package: "blocker-user",
            bin: "blocker",
            release: true,
            features: &[],
            ..H3
        };
        assert_eq!(
            blocker.build_args()[..4],
            ["build", "--release", "-p", "blocker-user"]
        );
        assert!(!blocker.build_args().contains(&"--features".to_string()));
    }

    #[test]
    fn reads_the_executable_of_the_binary_from_cargos_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"blocker_user"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"blocker"},"executable":"/t/release/blocker","fresh":true}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable(messages, "blocker"),
            Some(PathBuf::from("/t/release/blocker"))
        );
        assert_eq!(executable(messages, "h3_server"), None);
    }
}
