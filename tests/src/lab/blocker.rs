//! The `blocker` binary in the lab: finding (or building) it, running it on the appliance, and
//! reading the counter table it prints when it stops.
//!
//! The lab library does not link blocker-user (xtask builds it before bpf-linker exists), so it
//! drives the binary the way an operator does, through its command line (finding it:
//! `workspace_bin.rs`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    APPLIANCE_CLIENT_IF, APPLIANCE_INTERNET_IF, Lab, Node,
    background::{Background, Stopped},
    workspace_bin::{BinaryCache, WorkspaceBinary, workspace_binary},
};

/// Names the binary to use instead of building one (`cargo xtask test` sets it).
pub const BLOCKER_BIN_ENV: &str = "BLOCKER_BIN";
/// How long the blocker may take to load its lists and attach.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(15);
/// How long it may take to print its counters and detach after SIGINT.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of the release build [`blocker_binary`] may run (a cold build compiles the XDP
/// program and the controller).
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The release `blocker` binary: `$BLOCKER_BIN` if set, else what
/// `cargo build --release -p blocker-user --bin blocker` produces (run once per process).
pub fn blocker_binary() -> Result<PathBuf> {
    static BINARY: BinaryCache = BinaryCache::new();
    workspace_binary(
        &BINARY,
        &WorkspaceBinary {
            env_var: BLOCKER_BIN_ENV,
            package: "blocker-user",
            bin: "blocker",
            release: true,
            features: &[],
            build_timeout: BUILD_TIMEOUT,
        },
    )
}

/// A `blocker run` on the appliance, attached.
pub struct Blocker {
    process: Background,
}

/// What a stopped blocker printed.
#[derive(Debug)]
pub struct BlockerExit {
    pub stopped: Stopped,
    /// The counter table it printed on exit.
    pub counters: Counters,
}

impl Lab {
    /// Starts `<binary> run --iface <iface> <args...>` (with `--no-pin` unless the args give
    /// `--pin-dir`) in the appliance namespace and waits (within [`ATTACH_TIMEOUT`]) until an
    /// XDP program shows on `iface`, and on the `--internet-iface` port too when the args give
    /// one (inline mode). Fails early with the blocker's output if it exits first.
    pub fn start_blocker(&self, binary: &Path, iface: &str, args: &[&str]) -> Result<Blocker> {
        let binary = binary.to_string_lossy();
        let mut argv = vec![&*binary, "run", "--iface", iface];
        argv.extend_from_slice(args);
        // Tests that do not exercise pinning keep nothing in bpffs: the program goes with the
        // process (and with the lab's namespaces).
        if !args.contains(&"--pin-dir") {
            argv.push("--no-pin");
        }
        let mut ports = vec![iface];
        if let Some(i) = args.iter().position(|a| *a == "--internet-iface")
            && let Some(internet) = args.get(i + 1)
        {
            ports.push(internet);
        }
        let child = self.spawn(Node::Appliance, &argv)?;
        let mut process = Background::new(child, format!("`{}`", argv.join(" ")));
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        loop {
            if let Some(status) = process.try_wait()? {
                let stopped = process.stop(libc::SIGINT, Duration::ZERO);
                bail!(
                    "blocker exited before attaching ({status}): {}",
                    stopped.output().trim()
                );
            }
            if ports.iter().all(|port| {
                self.wait_for_xdp(Node::Appliance, port, Duration::ZERO)
                    .is_ok()
            }) {
                return Ok(Blocker { process });
            }
            if Instant::now() >= deadline {
                let stopped = process.stop(libc::SIGINT, STOP_TIMEOUT);
                bail!(
                    "blocker did not attach to {} within {ATTACH_TIMEOUT:?}: {}",
                    ports.join(" and "),
                    stopped.output().trim()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Lab::start_blocker`] in inline mode: subscriber port `a0`, internet port `a1`
    /// (`--internet-iface a1`). For a lab made with `LabOptions { inline: true, .. }`.
    pub fn start_inline_blocker(&self, binary: &Path, args: &[&str]) -> Result<Blocker> {
        let mut all = vec!["--internet-iface", APPLIANCE_INTERNET_IF];
        all.extend_from_slice(args);
        self.start_blocker(binary, APPLIANCE_CLIENT_IF, &all)
    }
}

impl Blocker {
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGINT: the blocker prints its counters and detaches. Fails unless it exits 0 within
    /// [`STOP_TIMEOUT`] with a counter table.
    pub fn stop(self) -> Result<BlockerExit> {
        let stopped = self.process.stop(libc::SIGINT, STOP_TIMEOUT);
        if stopped.killed || !stopped.status.success() {
            bail!(
                "blocker did not stop cleanly on SIGINT ({}): {}",
                stopped.status,
                stopped.output().trim()
            );
        }
        let counters = Counters::parse(&stopped.stdout)
            .with_context(|| format!("reading the blocker's counters from:\n{}", stopped.stdout))?;
        Ok(BlockerExit { stopped, counters })
    }
}

/// A counter table as `blocker run` and `blocker replay` print it:
///
/// ```text
/// reason         action          packets          bytes
/// no_match       pass                 21           1958
/// dst_v4         tcp_reset             1             74
/// ```
///
/// (or `no packets seen`). Cells absent from the table are zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    cells: BTreeMap<(String, String), Cell>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    pub packets: u64,
    pub bytes: u64,
}

impl Counters {
    /// Reads the table from text that holds it (other lines before it are skipped).
    pub fn parse(text: &str) -> Result<Counters> {
        let mut lines = text.lines();
        let mut found = false;
        for line in lines.by_ref() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words == ["reason", "action", "packets", "bytes"] {
                found = true;
                break;
            }
            if line.trim() == "no packets seen" {
                return Ok(Counters::default());
            }
        }
        if !found {
            bail!("no counter table (header `reason action packets bytes`)");
        }
        let mut counters = Counters::default();
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [reason, action, packets, bytes] = words[..] else {
                break;
            };
            let (Ok(packets), Ok(bytes)) = (packets.parse(), bytes.parse()) else {
                break;
            };
            counters.add(reason, action, Cell { packets, bytes });
        }
        Ok(counters)
    }

    pub fn add(&mut self, reason: &str, action: &str, cell: Cell) {
        let c = self
            .cells
            .entry((reason.to_string(), action.to_string()))
            .or_default();
        c.packets += cell.packets;
        c.bytes += cell.bytes;
    }

    pub fn get(&self, reason: &str, action: &str) -> Cell {
        self.cells
            .get(&(reason.to_string(), action.to_string()))
            .copied()
            .unwrap_or_default()
    }

    pub fn packets(&self, reason: &str, action: &str) -> u64 {
        self.get(reason, action).packets
    }

    /// Non-zero cells as `((reason, action), cell)`, in name order.
    pub fn cells(&self) -> impl Iterator<Item = (&str, &str, Cell)> {
        self.cells
            .iter()
            .filter(|(_, c)| c.packets > 0)
            .map(|((r, a), c)| (r.as_str(), a.as_str(), *c))
    }

    pub fn total_packets(&self) -> u64 {
        self.cells.values().map(|c| c.packets).sum()
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (r, a, c) in self.cells() {
            writeln!(f, "{r:<16} {a:<10} {:>8} {:>10}", c.packets, c.bytes)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_printed_table() {
        let out = "blocker: attached to a0 (native XDP); blocking until SIGINT/SIGTERM\n\
            blocker: detaching from a0; counters:\n\
            reason         action          packets          bytes\n\
            no_match       pass                 21           1958\n\
            dst_v4         drop                 15           1470\n\
            dst_v6         tcp_reset             1             94\n";
        let c = Counters::parse(out).unwrap();
        assert_eq!(
            c.get("no_match", "pass"),
            Cell {
                packets: 21,
                bytes: 1958
            }
        );
        assert_eq!(c.packets("dst_v4", "drop"), 15);
        assert_eq!(c.packets("dst_v6", "tcp_reset"), 1);
        assert_eq!(c.packets("dst_v6", "drop"), 0);
        assert_eq!(c.total_packets(), 37);
        assert_eq!(c.cells().count(), 3);
    }

    #[test]
    fn no_packets_and_no_table() {
        assert_eq!(
            Counters::parse("x\nno packets seen\n").unwrap(),
            Counters::default()
        );
        assert!(Counters::parse("blocker: attached\n").is_err());
    }
}
