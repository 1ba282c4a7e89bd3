//! Running a command with a deadline. Every command the lab starts goes through here: a hung
//! tool (a curl that never times out, an `ip` waiting on a lock) must fail a test, not stall it.

use std::{
    io::Read,
    os::unix::process::ExitStatusExt,
    process::{Command, ExitStatus, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

/// The deadline of [`crate::lab::Lab::exec`] and of the lab's own set-up commands.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `cmd` to completion or until `timeout`, when it is killed. Never fails: a command that
/// cannot start reports exit status 127 (as a shell would) with the reason on stderr, and one
/// that was killed reports the SIGKILL status with a note on stderr.
pub(crate) fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Output {
                status: ExitStatus::from_raw(127 << 8),
                stdout: Vec::new(),
                stderr: format!("cannot start {:?}: {e}", cmd.get_program()).into_bytes(),
            };
        }
    };
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            // Past the deadline, or try_wait itself failed: kill and reap.
            _ => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().unwrap_or(ExitStatus::from_raw(libc::SIGKILL));
            }
        }
    };
    // A grandchild that inherited the pipes could keep them open forever: wait a little for
    // the output, then give up on it.
    let grace = Duration::from_secs(2);
    let stdout = stdout.recv_timeout(grace).unwrap_or_default();
    let mut stderr = stderr.recv_timeout(grace).unwrap_or_default();
    if timed_out {
        stderr.extend_from_slice(format!("\n[killed after {timeout:?}]").as_bytes());
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// [`run_bounded`] for a step that must succeed: its stdout, or an error naming the command,
/// with its exit status and stderr (the tool's own words are what explains a failed step).
pub(crate) fn run_checked(cmd: Command, timeout: Duration) -> Result<Vec<u8>> {
    let what = describe(&cmd);
    let out = run_bounded(cmd, timeout);
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Whether [`run_bounded`] killed the command at its deadline (its status is SIGKILL's).
pub(crate) fn killed(status: &ExitStatus) -> bool {
    status.signal() == Some(libc::SIGKILL)
}

/// Reads `pipe` to its end on a thread of its own (a child blocked on a full pipe would never
/// exit); the receiver gets the bytes when the pipe closes.
pub(crate) fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}

/// `program args...` for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = run_bounded(cmd, Duration::from_secs(5));
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn kills_at_the_deadline() {
        let mut cmd = Command::new("sleep");
        cmd.arg("10");
        let started = Instant::now();
        let out = run_bounded(cmd, Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(killed(&out.status));
        assert!(String::from_utf8_lossy(&out.stderr).contains("killed after"));
    }

    #[test]
    fn a_failed_step_is_an_error_with_its_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo why >&2; exit 2"]);
        let e = run_checked(cmd, Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("`sh -c echo out; echo why >&2; exit 2` failed"),
            "{e}"
        );
        assert!(e.ends_with(": why"), "{e}");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out"]);
        assert_eq!(run_checked(cmd, Duration::from_secs(5)).unwrap(), b"out\n");
    }

    #[test]
    fn a_missing_program_is_status_127() {
        let out = run_bounded(Command::new("/nonexistent/program"), Duration::from_secs(1));
        assert_eq!(out.status.code(), Some(127));
    }
}
