//! The process of a lab server (HTTP, TLS, HTTP/3, DNS) in the internet namespace: started with its
//! stderr kept in a file (what it says when it fails at start), waited for until it serves,
//! and killed when its owner is dropped, also when a test panics.

use std::{
    fs,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// A running server; killed (and reaped) on drop.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    /// "TLS server", for messages.
    name: &'static str,
    stderr: PathBuf,
}

impl ServerProcess {
    /// Starts `cmd` with no stdin, its stdout discarded and its stderr written to `stderr`.
    pub(crate) fn spawn(mut cmd: Command, name: &'static str, stderr: PathBuf) -> Result<Self> {
        let file = fs::File::create(&stderr)
            .with_context(|| format!("creating the {name}'s stderr file"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting the {name}"))?;
        Ok(ServerProcess {
            child,
            name,
            stderr,
        })
    }

    /// Asks `serving` every 20 ms, for at most `timeout`, until it answers Ok; its Err says what
    /// is still missing ("not listening on :443"). Fails with the server's stderr when it exits
    /// first; when the time is up, kills it and fails with `serving`'s last answer.
    pub(crate) fn wait_serving(
        &mut self,
        timeout: Duration,
        mut serving: impl FnMut() -> Result<(), String>,
    ) -> Result<()> {
        let name = self.name;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
                bail!("{name} exited at start ({status}): {}", stderr.trim());
            }
            let missing = match serving() {
                Ok(()) => return Ok(()),
                Err(missing) => missing,
            };
            if Instant::now() >= deadline {
                self.stop();
                bail!("{name} {missing} after {timeout:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stderr_file(test: &str) -> PathBuf {
        std::env::temp_dir().join(format!("blocker-{test}-{}.stderr", std::process::id()))
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn a_server_that_exits_at_start_fails_with_its_stderr() {
        let file = stderr_file("exits");
        let mut server =
            ServerProcess::spawn(sh("echo no port >&2; exit 3"), "x server", file.clone()).unwrap();
        let e = server
            .wait_serving(Duration::from_secs(5), || Err("not ready".into()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x server exited at start"), "{e}");
        assert!(e.ends_with(": no port"), "{e}");
        let _ = fs::remove_file(file);
    }

    #[test]
    fn waits_until_serving_and_gives_up_at_the_deadline() {
        let file = stderr_file("waits");
        let mut server = ServerProcess::spawn(sh("sleep 10"), "x server", file.clone()).unwrap();
        let mut asked = 0;
        server
            .wait_serving(Duration::from_secs(5), || {
                asked += 1;
                if asked < 3 {
                    Err("not yet".into())
                } else {
                    Ok(())
                }
            })
            .unwrap();
        assert_eq!(asked, 3);
        let started = Instant::now();
        let e = server
            .wait_serving(Duration::from_millis(100), || Err("not listening".into()))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(e, "x server not listening after 100ms");
        let _ = fs::remove_file(file);
    }
}
