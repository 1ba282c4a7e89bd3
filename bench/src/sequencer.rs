//! The micro bench's loop: one BPF_PROG_TEST_RUN times a class's frames back to back, as a
//! NIC's receive loop runs the program, with no system call between two frames.
//!
//! A test run repeats one buffer; the sequencer (bpf.rs [`Program::sequencer`]) writes the
//! next frame of the list over it at the start of each repetition and tail-calls the program
//! under test, so repetition `i` is frame `i % count`. The empty program's loop is timed the
//! same way, so the sequencer's copy and the tail call cancel out. A list that leaves the
//! program's flow state as it found it (every flow's last segment judged) can be run many
//! times over.

use std::{os::fd::{BorrowedFd, OwnedFd}, time::Duration};

use anyhow::{Context, Result, bail};
use blocker_user::datapath::XdpAction;

use crate::throughput::{
    bpf::{ArrayMap, Program, SEQUENCE_FRAME, SEQUENCE_VALUE},
    net::{Namespaces, exec},
};

pub struct Sequencer {
    state: ArrayMap,
    frames: ArrayMap,
    next: ArrayMap,
    program: Program,
    /// The sequencer stays attached (in a namespace of the run's own, on a veth no frame is
    /// sent on): an attached program stays in the kernel's XDP dispatcher, so its test runs do
    /// not rebuild it (micro.rs has why that matters).
    _link: OwnedFd,
    /// The frames loaded: how many, and the longest (the test run's buffer).
    count: u32,
    longest: usize,
}

impl Sequencer {
    /// A sequencer for lists of up to `slots` frames.
    pub fn new(ns: &mut Namespaces, slots: u32) -> Result<Sequencer> {
        let state = ArrayMap::new("micro_seq_n", 16, 1)?;
        let frames = ArrayMap::new("micro_seq_f", SEQUENCE_VALUE, slots)?;
        let next = ArrayMap::prog_array("micro_seq_next", 1)?;
        let program = Program::sequencer(&state, &frames, &next)?;
        let name = ns.add("micro-loop")?;
        exec(&name, &["ip", "link", "add", "sq0", "type", "veth", "peer", "name", "sq1"], Duration::from_secs(20))?;
        let link = program.attach(&name, "sq0")?;
        Ok(Sequencer { state, frames, next, program, _link: link, count: 0, longest: 0 })
    }

    /// Makes `list` the frames to run, in order.
    pub fn load(&mut self, list: &[&[u8]]) -> Result<()> {
        if list.len() > self.frames.entries() as usize {
            bail!("{} frames in one loop: the sequencer holds {}", list.len(), self.frames.entries());
        }
        for (i, f) in list.iter().enumerate() {
            if f.len() > SEQUENCE_FRAME {
                bail!("a frame of {} bytes: the sequencer's slots hold {SEQUENCE_FRAME}", f.len());
            }
            let mut v = vec![0u8; SEQUENCE_VALUE];
            v[..4].copy_from_slice(&(f.len() as u32).to_ne_bytes());
            v[8..8 + f.len()].copy_from_slice(f);
            self.frames.set(i as u32, &v)?;
        }
        self.count = list.len() as u32;
        self.longest = list.iter().map(|f| f.len()).max().unwrap_or(0);
        Ok(())
    }

    /// How many frames are loaded.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Runs the loaded list `passes` times through `program` in one test run. Returns the last
    /// frame's verdict and the kernel's mean ns per frame.
    pub fn time(&self, program: BorrowedFd<'_>, passes: u32) -> Result<(XdpAction, f64)> {
        if self.count == 0 {
            bail!("no frames loaded into the sequencer");
        }
        self.next.set_program(0, program)?;
        let mut state = [0u8; 16];
        state[8..].copy_from_slice(&u64::from(self.count).to_ne_bytes());
        self.state.set(0, &state)?;
        let repeat = self.count.checked_mul(passes).context("too many frames for one test run")?;
        let (retval, mean_ns) = self.program.run(&vec![0u8; self.longest], repeat).context("BPF_PROG_TEST_RUN of the sequencer")?;
        let ran = u64::from_ne_bytes(self.state.get(0)?[..8].try_into()?);
        if ran != u64::from(repeat) {
            bail!("the sequencer ran {ran} frames of {repeat}");
        }
        Ok((XdpAction::from_code(retval), f64::from(mean_ns)))
    }
}
