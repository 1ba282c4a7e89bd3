//! A long-running process of a test (the blocker, tcpdump): its output collected on threads so a
//! full pipe never stalls it, and a bounded stop by signal that returns what it printed.

use std::{
    io::Read,
    process::{Child, ExitStatus},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::cmd::drain;

/// What a stopped [`Background`] process left behind.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// It did not exit within the deadline after the signal and was SIGKILLed.
    pub killed: bool,
}

impl Stopped {
    /// stdout, then stderr, then a note if it had to be killed: for failure messages.
    pub fn output(&self) -> String {
        let mut s = format!("{}{}", self.stdout, self.stderr);
        if self.killed {
            s.push_str("\n[did not exit after the signal: killed]");
        }
        s
    }
}

/// A started process whose stdout and stderr (both must be piped) are read on threads.
pub struct Background {
    child: Option<Child>,
    what: String,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: LineTap,
}

impl Background {
    /// Takes over `child`; `what` names it in messages.
    pub fn new(mut child: Child, what: impl Into<String>) -> Self {
        let stdout = drain(child.stdout.take());
        let stderr = LineTap::start(child.stderr.take());
        Background {
            child: Some(child),
            what: what.into(),
            stdout,
            stderr,
        }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The exit status if it has exited (it is then reaped).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => child
                .try_wait()
                .with_context(|| format!("waiting for {}", self.what)),
            None => Ok(None),
        }
    }

    /// Waits until a line of its stderr contains `needle` (tcpdump's "listening on"), or it
    /// exits, or `timeout` passes. Returns whether the line came.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr.seen(needle) {
                return true;
            }
            let exited = self.try_wait().ok().flatten().is_some();
            if exited || Instant::now() >= deadline {
                // One last look: the line may have come with the exit.
                thread::sleep(Duration::from_millis(20));
                return self.stderr.seen(needle);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (unless it already exited), waits up to `timeout` for the exit, SIGKILLs
    /// it after that; returns its status and everything it printed.
    pub fn stop(mut self, signal: i32, timeout: Duration) -> Stopped {
        let mut child = self
            .child
            .take()
            .expect("a Background has its child until stopped");
        if child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
        let deadline = Instant::now() + timeout;
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    killed = true;
                    let _ = child.kill();
                    break child.wait().expect("reaping a killed child");
                }
            }
        };
        // A grandchild holding the pipes could keep them open: wait a little, then give up.
        let grace = Duration::from_secs(2);
        let stdout = self.stdout.recv_timeout(grace).unwrap_or_default();
        let stderr = self.stderr.finish(grace);
        Stopped {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr,
            killed,
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// stderr read line by line on a thread, so a caller can wait for a line while the process
/// runs and still get all of it at the end.
struct LineTap {
    lines: std::sync::Arc<std::sync::Mutex<String>>,
    done: mpsc::Receiver<()>,
}

impl LineTap {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Self {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, done) = mpsc::channel();
        if let Some(pipe) = pipe {
            let sink = lines.clone();
            thread::spawn(move || {
                use std::io::BufRead;
                let mut reader = std::io::BufReader::new(pipe);
                let mut buf = Vec::new();
                while let Ok(n) = reader.read_until(b'\n', &mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf));
                    buf.clear();
                }
                let _ = tx.send(());
            });
        } else {
            let _ = tx.send(());
        }
        LineTap { lines, done }
    }

    fn seen(&self, needle: &str) -> bool {
        self.lines.lock().unwrap().contains(needle)
    }

    fn finish(&self, grace: Duration) -> String {
        let _ = self.done.recv_timeout(grace);
        self.lines.lock().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn sh(script: &str) -> Background {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // A shell cannot trap a signal that was ignored when it started (POSIX), and a test
        // run started in the background by another shell inherits SIGINT ignored: give the
        // child the default disposition, as a terminal's foreground job has.
        // SAFETY: signal() is async-signal-safe; nothing else runs in the child before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        Background::new(child, "sh")
    }

    #[test]
    fn waits_for_a_line_and_stops_by_signal() {
        let mut p = sh("echo ready >&2; trap 'echo bye; exit 0' INT; while :; do sleep 0.05; done");
        assert!(p.wait_for_stderr("ready", Duration::from_secs(5)));
        let s = p.stop(libc::SIGINT, Duration::from_secs(5));
        assert!(!s.killed);
        assert_eq!(s.status.code(), Some(0));
        assert_eq!(s.stdout, "bye\n");
        assert_eq!(s.stderr, "ready\n");
    }

    #[test]
    fn kills_what_ignores_the_signal() {
        // Wait until the trap is set: a signal sent before it would end the shell at once.
        let mut p = sh("trap '' INT; echo ready >&2; exec sleep 30");
        assert!(p.wait_for_stderr("ready", Duration::from_secs(5)));
        let started = Instant::now();
        let s = p.stop(libc::SIGINT, Duration::from_millis(300));
        assert!(s.killed);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_line_that_never_comes_times_out() {
        let mut p = sh("exec sleep 30");
        assert!(!p.wait_for_stderr("ready", Duration::from_millis(200)));
    }
}
