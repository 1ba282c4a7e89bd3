//! What a client saw: the outcome of one HTTP request or one ping, classified from curl's and
//! ping's exit codes so tests and the demo compare outcomes, not error strings.

use std::{fmt, process::Output};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// The server answered with this status.
    Status(u16),
    /// The connection was refused or reset: a TCP RST reached the client.
    Reset,
    /// Nothing came back within the deadline (a silent drop).
    Timeout,
    /// Anything else: curl's exit code and its message.
    Failed { exit: Option<i32>, message: String },
}

impl HttpOutcome {
    /// Classifies `curl -sS -v -o /dev/null -w %{http_code} ...`. `-v` matters: curl's
    /// final message for exit 7 is just "Couldn't connect to server"; only the verbose
    /// trace says "Connection refused" (the SYN was answered with a reset).
    pub fn from_curl(out: &Output) -> Self {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let lower = stderr.to_ascii_lowercase();
        // For `Failed`, curl's own summary line rather than the whole trace.
        let summary = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("curl: ") || l.starts_with('['))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .trim()
            .to_string();
        match out.status.code() {
            Some(0) => match String::from_utf8_lossy(&out.stdout).trim().parse() {
                Ok(code) => HttpOutcome::Status(code),
                Err(_) => HttpOutcome::Failed {
                    exit: Some(0),
                    message: "no status code".into(),
                },
            },
            // 7: could not connect; "refused" means the SYN was answered with a reset (other
            // reasons, like "no route to host", are failures of the lab).
            Some(7) if lower.contains("connection refused") => HttpOutcome::Reset,
            // 56: receive failure after connecting, "reset by peer".
            Some(56) if lower.contains("reset") => HttpOutcome::Reset,
            Some(28) => HttpOutcome::Timeout,
            exit => HttpOutcome::Failed {
                exit,
                message: summary,
            },
        }
    }
}

impl fmt::Display for HttpOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpOutcome::Status(code) => write!(f, "{code}"),
            HttpOutcome::Reset => f.write_str("connection reset"),
            HttpOutcome::Timeout => f.write_str("timeout"),
            HttpOutcome::Failed {
                exit: Some(code),
                message,
            } => write!(f, "curl exit {code}: {message}"),
            HttpOutcome::Failed {
                exit: None,
                message,
            } => write!(f, "curl killed: {message}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    /// At least one echo reply came back.
    Replied,
    /// No reply before the deadline.
    NoReply,
}

impl PingOutcome {
    pub fn from_ping(out: &Output) -> Self {
        if out.status.success() {
            PingOutcome::Replied
        } else {
            PingOutcome::NoReply
        }
    }
}

impl fmt::Display for PingOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PingOutcome::Replied => "reply",
            PingOutcome::NoReply => "no reply",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn curl(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn classifies_curl() {
        assert_eq!(
            HttpOutcome::from_curl(&curl(0, "200", "")),
            HttpOutcome::Status(200)
        );
        let refused = "*   Trying 203.0.113.66:80...\n\
            * connect to 203.0.113.66 port 80 failed: Connection refused\n\
            * Failed to connect to 203.0.113.66 port 80 after 0 ms: Couldn't connect to server\n\
            * Closing connection 0\n\
            curl: (7) Failed to connect to 203.0.113.66 port 80 after 0 ms: Couldn't connect to server\n";
        assert_eq!(
            HttpOutcome::from_curl(&curl(7, "000", refused)),
            HttpOutcome::Reset
        );
        assert_eq!(
            HttpOutcome::from_curl(&curl(
                56,
                "000",
                "curl: (56) Recv failure: Connection reset by peer"
            )),
            HttpOutcome::Reset
        );
        assert_eq!(
            HttpOutcome::from_curl(&curl(28, "000", "curl: (28) Connection timed out")),
            HttpOutcome::Timeout
        );
        let unreachable = "* connect to 203.0.113.66 port 80 failed: No route to host\n\
            curl: (7) Failed to connect to 203.0.113.66 port 80 after 3 ms: Couldn't connect to server\n";
        assert_eq!(
            HttpOutcome::from_curl(&curl(7, "000", unreachable)),
            HttpOutcome::Failed {
                exit: Some(7),
                message: "curl: (7) Failed to connect to 203.0.113.66 port 80 after 3 ms: Couldn't connect to server".into()
            }
        );
    }
}
