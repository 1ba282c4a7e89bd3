//! Offline replay: every frame of a capture through the real kernel program
//! (BPF_PROG_TEST_RUN), in order, with kernel state kept between frames. The verdict's reason
//! comes from the counter cell the frame incremented, so replay needs no extra work from the
//! program and reports exactly what the program counted.

use blocker_common::verdict::{Action, Reason};

use crate::{
    capture::Frame,
    datapath::{Datapath, DatapathError, XdpAction},
};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReplayLine {
    /// 1-based, as capture tools number frames.
    pub frame: usize,
    pub action: XdpAction,
    /// The program's own verdict name (pass, drop, tcp_reset) and reason.
    pub verdict: Option<&'static str>,
    pub reason: Option<&'static str>,
    pub len: usize,
    pub out_len: usize,
    pub summary: String,
}

impl ReplayLine {
    pub fn render(&self) -> String {
        format!(
            "frame={} action={} reason={} verdict={} len={}{} {}",
            self.frame,
            self.action.name(),
            self.reason.unwrap_or("?"),
            self.verdict.unwrap_or("?"),
            self.len,
            if self.action == XdpAction::Tx { format!(" out_len={}", self.out_len) } else { String::new() },
            self.summary
        )
    }
}

pub fn replay_frame(dp: &Datapath, index: usize, data: &[u8]) -> Result<(ReplayLine, Vec<u8>), DatapathError> {
    let before = dp.counters()?;
    let out = dp.run_frame(data)?;
    let after = dp.counters()?;
    let delta = after.delta(&before);
    // One frame increments exactly one cell; anything else (a concurrent user of the same
    // program on this host) leaves the verdict unknown rather than guessed.
    let (reason, verdict) = match delta.as_slice() {
        [(r, a, 1)] => (Some(*r), Some(*a)),
        _ => (None, None),
    };
    let line = ReplayLine {
        frame: index,
        action: out.action,
        verdict: verdict.map(Action::name),
        reason: reason.map(Reason::name),
        len: data.len(),
        out_len: out.frame.len(),
        summary: summarize(data),
    };
    Ok((line, out.frame))
}

pub fn replay(dp: &Datapath, frames: &[Frame]) -> Result<Vec<ReplayLine>, DatapathError> {
    frames.iter().enumerate().map(|(i, f)| replay_frame(dp, i + 1, &f.data).map(|(l, _)| l)).collect()
}

/// A one-line description of a frame for people reading replay output.
pub fn summarize(data: &[u8]) -> String {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let Ok(p) = SlicedPacket::from_ethernet(data) else {
        return "unparsed".to_string();
    };
    let (src, dst) = match &p.net {
        Some(NetSlice::Ipv4(v4)) => (v4.header().source_addr().to_string(), v4.header().destination_addr().to_string()),
        Some(NetSlice::Ipv6(v6)) => (format!("[{}]", v6.header().source_addr()), format!("[{}]", v6.header().destination_addr())),
        _ => return "non-ip".to_string(),
    };
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let mut flags = String::new();
            for (on, c) in [(t.syn(), 'S'), (t.ack(), 'A'), (t.fin(), 'F'), (t.rst(), 'R'), (t.psh(), 'P')] {
                if on {
                    flags.push(c);
                }
            }
            format!("{src}:{} > {dst}:{} tcp [{flags}] len={}", t.source_port(), t.destination_port(), t.payload().len())
        }
        Some(TransportSlice::Udp(u)) => format!("{src}:{} > {dst}:{} udp", u.source_port(), u.destination_port()),
        Some(TransportSlice::Icmpv4(_)) => format!("{src} > {dst} icmp"),
        Some(TransportSlice::Icmpv6(_)) => format!("{src} > {dst} icmp6"),
        None => format!("{src} > {dst} ip"),
    }
}
