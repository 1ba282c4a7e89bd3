//! Shared support for the privileged tests: a datapath loaded with lists given as text, and a
//! frame builder.
#![allow(dead_code, unused_imports, reason = "each test binary uses a different part of the support module")]

pub mod control;

pub use blocker_tests::packets::{dns, frames, tls};

use std::path::Path;

use blocker_common::verdict::{Action, Reason};
use blocker_user::{
    datapath::{Datapath, InstallReport, Options, XdpAction},
    lists::{ListInfo, ListKind, ListSet, parse_list},
    replay::replay_frame,
};

pub const NEEDS_ROOT: &str = "needs root and a kernel with BPF: run with cargo xtask test";

/// The real program, loaded (not attached) with the given lists.
pub struct Harness {
    pub dp: Datapath,
    pub set: ListSet,
    /// What the install of `set` reported.
    pub report: InstallReport,
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

/// `list_set(block, allow)` plus a block list in shadow mode (`shadow.txt`, named "trial"): its
/// entries are counted where they would block, never enforced. Ids: block.txt's entries first,
/// then allow.txt's, then shadow.txt's.
pub fn shadow_set(block: &str, allow: &str, shadow: &str) -> ListSet {
    let mut set = list_set(block, allow);
    let (s, _) = parse_list(Path::new("shadow.txt"), shadow, ListKind::Block).expect("shadow list");
    let info = ListInfo { name: "trial".into(), source: "shadow.txt".into(), shadow: true };
    set.add_list(info, Path::new("shadow.txt"), s).expect("a shadow list of block entries");
    set
}

impl Harness {
    pub fn new(block: &str, allow: &str) -> Harness {
        Self::with_options(block, allow, Options::default())
    }

    pub fn with_options(block: &str, allow: &str, options: Options) -> Harness {
        Self::with_set(list_set(block, allow), options)
    }

    /// Loaded with enforced block and allow lists and a block list in shadow mode.
    pub fn with_shadow(block: &str, allow: &str, shadow: &str) -> Harness {
        Self::with_set(shadow_set(block, allow, shadow), Options::default())
    }

    pub fn with_set(set: ListSet, options: Options) -> Harness {
        let mut dp = Datapath::load(options).expect("loading the XDP program (root needed)");
        let report = dp.install(&set).expect("installing lists");
        Harness { dp, set, report }
    }

    /// Per-entry counts of the live generation (blocked packets, and for shadow entries the
    /// packets they would have blocked).
    pub fn hits(&self) -> std::collections::HashMap<u32, u64> {
        self.dp.entry_hits().expect("reading ENTRY_HITS").into_iter().collect()
    }

    /// Runs one frame and reads back the verdict the program counted for it.
    pub fn run(&self, frame: &[u8]) -> Outcome {
        let (line, out) = replay_frame(&self.dp, 1, frame).expect("test run");
        let reason = Reason::ALL.into_iter().find(|r| Some(r.name()) == line.reason).expect("exactly one counter moved");
        let verdict = Action::ALL.into_iter().find(|a| Some(a.name()) == line.verdict).expect("verdict");
        Outcome { action: line.action, reason, verdict, frame: out }
    }
}
