//! Shared support for the privileged tests: a datapath loaded with lists given as text, and a
//! frame builder.
#![allow(dead_code, reason = "each test binary uses a different part of the support module")]

pub use blocker_tests::packets::{frames, tls};

use std::path::Path;

use blocker_common::verdict::{Action, Reason};
use blocker_user::{
    datapath::{Datapath, Options, XdpAction},
    lists::{ListKind, ListSet, parse_list},
    replay::replay_frame,
};

pub const NEEDS_ROOT: &str = "needs root and a kernel with BPF: run with cargo xtask test";

/// The real program, loaded (not attached) with the given lists.
pub struct Harness {
    pub dp: Datapath,
    pub set: ListSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: XdpAction,
    pub reason: Reason,
    pub verdict: Action,
    pub frame: Vec<u8>,
}

pub fn list_set(block: &str, allow: &str) -> ListSet {
    let mut set = ListSet::new();
    let (b, _) = parse_list(Path::new("block.txt"), block, ListKind::Block).expect("block list");
    set.add_parsed(Path::new("block.txt"), b);
    let (a, _) = parse_list(Path::new("allow.txt"), allow, ListKind::Allow).expect("allow list");
    set.add_parsed(Path::new("allow.txt"), a);
    set
}

impl Harness {
    pub fn new(block: &str, allow: &str) -> Harness {
        Self::with_options(block, allow, Options::default())
    }

    pub fn with_options(block: &str, allow: &str, options: Options) -> Harness {
        let set = list_set(block, allow);
        let mut dp = Datapath::load(options).expect("loading the XDP program (root needed)");
        dp.install(&set).expect("installing lists");
        Harness { dp, set }
    }

    /// Runs one frame and reads back the verdict the program counted for it.
    pub fn run(&self, frame: &[u8]) -> Outcome {
        let (line, out) = replay_frame(&self.dp, 1, frame).expect("test run");
        let reason = Reason::ALL.into_iter().find(|r| Some(r.name()) == line.reason).expect("exactly one counter moved");
        let verdict = Action::ALL.into_iter().find(|a| Some(a.name()) == line.verdict).expect("verdict");
        Outcome { action: line.action, reason, verdict, frame: out }
    }
}
