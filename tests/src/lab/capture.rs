//! Packet captures in the lab: tcpdump on one interface of one namespace, written to a pcap file
//! in the lab directory, and a reader for those files.
//!
//! Where to capture matters when an XDP program is attached. Native XDP runs in the driver's
//! receive path, before the kernel hands frames to packet sockets (tcpdump's tap), and generic
//! XDP runs before the tap too. A frame the program drops, or turns around with XDP_TX, is never
//! seen by tcpdump on the interface the program sits on, and the frames it sends back are not
//! either (XDP_TX bypasses the transmit path the tap watches). So to record what the blocker on
//! `a0` received, capture the *egress* of its peer `c0` in the client namespace
//! (`Direction::Out`): a veth delivers exactly what its peer transmits. Its resets show up as
//! the *ingress* of `c0` (`Direction::In`). tcpdump on `a0` itself (ingress) holds only what
//! the program passed into the appliance's stack.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};

use super::{Lab, Node, background::Background};

/// How long tcpdump may take to start capturing, and to exit and flush after SIGINT.
pub const CAPTURE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which frames of an interface tcpdump keeps (`-Q`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    Both,
}

impl Direction {
    fn flag(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "inout",
        }
    }
}

/// A running tcpdump. Stop it with [`Capture::stop`] to get a complete file; dropping it kills
/// tcpdump (the file may then lack its last frames).
pub struct Capture {
    process: Background,
    path: PathBuf,
    direction: Direction,
}

/// A finished capture.
#[derive(Debug, Clone)]
pub struct CaptureFile {
    pub path: PathBuf,
    pub frames: Vec<CapturedFrame>,
    /// tcpdump's own "N packets dropped by kernel" (0 when a capture is trustworthy).
    pub dropped_by_kernel: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// Bytes as captured (tcpdump's default snap length keeps whole frames).
    pub data: Vec<u8>,
    /// The frame's length on the wire; more than `data.len()` if it was cut.
    pub orig_len: u32,
}

impl Lab {
    /// Starts `tcpdump -i <dev> -Q <direction> -w <lab dir>/<file> -U` in `node` (with an
    /// optional filter expression) and returns once tcpdump reports it is capturing.
    pub fn start_capture(
        &self,
        node: Node,
        dev: &str,
        direction: Direction,
        file: &str,
        filter: &[&str],
    ) -> Result<Capture> {
        let path = self.dir().join(file);
        let path_arg = path.to_string_lossy().into_owned();
        // --immediate-mode: hand each frame to tcpdump at once. Without it libpcap (TPACKET_V3)
        // delivers a ring block when it fills or its timeout passes, and the frames of the last
        // partial block are lost on SIGINT (seen: the last second of pings missing).
        // -U: write each frame to the file as it comes. -Z root: Debian's tcpdump otherwise
        // drops to the `tcpdump` user, which cannot write into the lab directory.
        let mut args = vec![
            "tcpdump",
            "-n",
            "--immediate-mode",
            "-i",
            dev,
            "-Q",
            direction.flag(),
            "-U",
            "-Z",
            "root",
            "-w",
            &path_arg,
        ];
        args.extend_from_slice(filter);
        let child = self.spawn(node, &args)?;
        let mut process = Background::new(child, format!("tcpdump on {node}/{dev}"));
        if !process.wait_for_stderr("listening on", CAPTURE_TIMEOUT) {
            let stopped = process.stop(libc::SIGINT, Duration::from_secs(2));
            bail!(
                "tcpdump on {node}/{dev} did not start within {CAPTURE_TIMEOUT:?} ({}): {}",
                stopped.status,
                stopped.output().trim()
            );
        }
        Ok(Capture {
            process,
            path,
            direction,
        })
    }
}

impl Capture {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SIGINT (tcpdump flushes and closes the file, then prints its statistics), bounded; then
    /// reads the file. Fails if tcpdump had to be killed, exited with an error, did not write
    /// every frame the kernel gave it (checked for [`Direction::Both`]), or the file's frame count differs from what tcpdump says
    /// it captured.
    pub fn stop(self) -> Result<CaptureFile> {
        let what = self.process.what().to_string();
        let stopped = self.process.stop(libc::SIGINT, CAPTURE_TIMEOUT);
        ensure!(
            !stopped.killed && stopped.status.success(),
            "{what} did not stop cleanly on SIGINT ({}): {}",
            stopped.status,
            stopped.output().trim()
        );
        let stat = |name: &str| -> Option<u64> {
            stopped.stderr.lines().find_map(|l| {
                let (n, rest) = l.trim().split_once(' ')?;
                (rest == name).then(|| n.parse().ok()).flatten()
            })
        };
        let captured = stat("packets captured")
            .with_context(|| format!("{what}: no \"packets captured\" in: {}", stopped.stderr))?;
        // Frames the kernel handed over that tcpdump never processed: an incomplete file.
        // (Only without -Q: libpcap filters the direction itself, after the kernel counted.)
        if self.direction == Direction::Both
            && let Some(received) = stat("packets received by filter")
        {
            ensure!(
                received == captured,
                "{what}: {received} packets received by filter but {captured} captured"
            );
        }
        let frames = read_pcap(&self.path)?;
        ensure!(
            frames.len() as u64 == captured,
            "{what}: tcpdump says {captured} packets captured, {} holds {}",
            self.path.display(),
            frames.len()
        );
        Ok(CaptureFile {
            path: self.path,
            frames,
            dropped_by_kernel: stat("packets dropped by kernel").unwrap_or(0),
        })
    }
}

/// Reads a classic pcap file (what `tcpdump -w` writes) of Ethernet frames.
pub fn read_pcap(path: &Path) -> Result<Vec<CapturedFrame>> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_pcap(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// [`read_pcap`] on bytes.
pub fn parse_pcap(bytes: &[u8]) -> Result<Vec<CapturedFrame>> {
    ensure!(bytes.len() >= 24, "shorter than a pcap header");
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        _ => bail!("not a pcap file (magic {magic:#010x}; pcapng is not read here)"),
    };
    let u32_at = |b: &[u8], off: usize| {
        let raw: [u8; 4] = b[off..off + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        }
    };
    let linktype = u32_at(bytes, 20) & 0x0fff_ffff;
    ensure!(linktype == 1, "link type {linktype}, not Ethernet (1)");
    let mut frames = Vec::new();
    let mut off = 24;
    while off < bytes.len() {
        ensure!(
            off + 16 <= bytes.len(),
            "record header cut at byte {off} (frame {})",
            frames.len() + 1
        );
        let incl = u32_at(bytes, off + 8) as usize;
        let orig_len = u32_at(bytes, off + 12);
        let start = off + 16;
        ensure!(
            start + incl <= bytes.len(),
            "frame {} cut: {incl} bytes announced at byte {start}",
            frames.len() + 1
        );
        frames.push(CapturedFrame {
            data: bytes[start..start + incl].to_vec(),
            orig_len,
        });
        off = start + incl;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(le: bool, frames: &[&[u8]]) -> Vec<u8> {
        let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut out = Vec::new();
        out.extend(w32(0xa1b2_c3d4));
        out.extend(w16(2));
        out.extend(w16(4));
        out.extend(w32(0));
        out.extend(w32(0));
        out.extend(w32(262_144));
        out.extend(w32(1));
        for (i, f) in frames.iter().enumerate() {
            out.extend(w32(i as u32));
            out.extend(w32(0));
            out.extend(w32(f.len() as u32));
            out.extend(w32(f.len() as u32 + 1));
            out.extend_from_slice(f);
        }
        out
    }

    #[test]
    fn reads_both_byte_orders() {
        for le in [true, false] {
            let frames = parse_pcap(&pcap(le, &[b"abc", b"", b"defgh"])).unwrap();
            assert_eq!(frames.len(), 3);
            assert_eq!(frames[0].data, b"abc");
            assert_eq!(frames[0].orig_len, 4);
            assert_eq!(frames[2].data, b"defgh");
        }
    }

    #[test]
    fn refuses_cut_files() {
        let whole = pcap(true, &[b"abcdef"]);
        for len in [0, 10, 24 + 8, whole.len() - 1] {
            assert!(parse_pcap(&whole[..len]).is_err(), "len {len}");
        }
        let mut pcapng = whole.clone();
        pcapng[..4].copy_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        assert!(parse_pcap(&pcapng).is_err());
    }
}
