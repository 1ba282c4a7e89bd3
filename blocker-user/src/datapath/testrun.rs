//! Running frames through the loaded program with BPF_PROG_TEST_RUN: the real kernel program
//! and maps, no interface needed. Used by `blocker replay`, the table tests and benchmarks.

use std::os::fd::{AsFd, BorrowedFd};

use aya::programs::{TestRun, TestRunOptions};

use super::{Datapath, DatapathError, PASS_PROGRAM, PROGRAM, TCP_PROGRAM};

/// XDP return codes as the kernel defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpAction {
    Aborted,
    Drop,
    Pass,
    Tx,
    Redirect,
    Unknown(u32),
}

impl XdpAction {
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            n => XdpAction::Unknown(n),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            XdpAction::Aborted => "XDP_ABORTED",
            XdpAction::Drop => "XDP_DROP",
            XdpAction::Pass => "XDP_PASS",
            XdpAction::Tx => "XDP_TX",
            XdpAction::Redirect => "XDP_REDIRECT",
            XdpAction::Unknown(_) => "XDP_UNKNOWN",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    pub action: XdpAction,
    /// The frame as the program left it (a reset for XDP_TX).
    pub frame: Vec<u8>,
    pub duration_ns: u64,
}

/// Room for the program to grow a frame (a stop-page response is larger than the request it
/// replaces); the kernel refuses an output buffer smaller than the result.
const HEADROOM: usize = 4096;

impl Datapath {
    /// The descriptor of `program` (PROGRAM or PASS_PROGRAM), for a benchmark's program array:
    /// its own program runs frames in one test run and tail-calls this one for each.
    pub fn program_fd(&self, program: &'static str) -> Result<BorrowedFd<'_>, DatapathError> {
        let name = if program == PASS_PROGRAM { PASS_PROGRAM } else { PROGRAM };
        let prog = self.program(name)?;
        prog.fd().map(|fd| fd.as_fd()).map_err(|source| DatapathError::Program { name, source })
    }

    /// The instructions the kernel's verifier processed to load `program` (PROGRAM,
    /// PASS_PROGRAM or TCP_PROGRAM; each has its own limit of 1 000 000): the headroom a change
    /// to the program has left.
    pub fn verified_instructions(&self, program: &'static str) -> Result<Option<u32>, DatapathError> {
        let name = [PASS_PROGRAM, TCP_PROGRAM].into_iter().find(|&n| n == program).unwrap_or(PROGRAM);
        let info = self.program(name)?.info().map_err(|source| DatapathError::Program { name, source })?;
        Ok(info.verified_instruction_count())
    }

    /// Runs one frame through the blocking program.
    pub fn run_frame(&self, frame: &[u8]) -> Result<RunOutcome, DatapathError> {
        self.run_frame_with(PROGRAM, frame, 1)
    }

    /// Runs one frame `repeat` times through `program` (PROGRAM or PASS_PROGRAM); the duration
    /// is the kernel's mean per run.
    pub fn run_frame_with(&self, program: &'static str, frame: &[u8], repeat: u32) -> Result<RunOutcome, DatapathError> {
        let name = if program == PASS_PROGRAM { PASS_PROGRAM } else { PROGRAM };
        let prog = self.program(name)?;
        let mut out = vec![0u8; frame.len() + HEADROOM];
        let opts = TestRunOptions { data_in: Some(frame), data_out: Some(&mut out), repeat, ..Default::default() };
        let result = prog.test_run(opts).map_err(|source| DatapathError::Program { name, source })?;
        out.truncate(result.data_size_out as usize);
        Ok(RunOutcome {
            action: XdpAction::from_code(result.return_value),
            frame: out,
            duration_ns: result.duration.as_nanos() as u64,
        })
    }
}

impl Datapath {
    /// Runs one frame through the blocking program as if interface `ifindex` (of the calling
    /// thread's network namespace) had received it: what router mode's XDP forwarding looks its
    /// route up from. The returned frame is as the program left it (for XDP_REDIRECT, as it
    /// would have been sent; a test run sends nothing).
    pub fn run_frame_on(&self, ifindex: u32, frame: &[u8]) -> Result<RunOutcome, DatapathError> {
        self.run_frame_on_with(PROGRAM, ifindex, frame, 1)
    }

    /// [`Datapath::run_frame_on`] through `program` (PROGRAM or PASS_PROGRAM), `repeat` times;
    /// the duration is the kernel's mean per run. The repetitions run on one buffer: what the
    /// program writes into the frame, the next one sees.
    pub fn run_frame_on_with(&self, program: &'static str, ifindex: u32, frame: &[u8], repeat: u32) -> Result<RunOutcome, DatapathError> {
        let name = if program == PASS_PROGRAM { PASS_PROGRAM } else { PROGRAM };
        let prog = self.program(name)?;
        let mut out = vec![0u8; frame.len() + HEADROOM];
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex; the kernel wants data_end to be the frame's length.
        let md: [u32; 6] = [0, frame.len() as u32, 0, ifindex, 0, 0];
        let ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let opts = TestRunOptions { data_in: Some(frame), data_out: Some(&mut out), ctx_in: Some(&ctx), repeat, ..Default::default() };
        let result = prog.test_run(opts).map_err(|source| DatapathError::Program { name, source })?;
        out.truncate(result.data_size_out as usize);
        Ok(RunOutcome { action: XdpAction::from_code(result.return_value), frame: out, duration_ns: result.duration.as_nanos() as u64 })
    }
}

impl Datapath {
    /// How many times the blocking program has run and for how long in all, as the kernel
    /// counts them while run-time statistics are on (`aya::sys::enable_stats`; off, both stay
    /// still). For benchmarks: the program's own time per packet on live traffic. A run's time
    /// includes that of `blocker_tcp` where it was tail-called (the kernel times the program
    /// the frame entered).
    pub fn program_runs(&self) -> Result<(u64, std::time::Duration), DatapathError> {
        let info = self.program(PROGRAM)?.info().map_err(|source| DatapathError::Program { name: PROGRAM, source })?;
        Ok((info.run_count(), info.run_time()))
    }
}
