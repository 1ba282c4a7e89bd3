//! A running daemon's control socket in the lab, driven through the `blocker` binary in the
//! appliance's namespace, as an operator would.

use std::{path::PathBuf, time::Duration};

use blocker_tests::lab::{Lab, Node, blocker_binary};
use serde_json::Value;

pub struct Cli {
    /// The `blocker` binary, also what the test starts the daemon with.
    pub binary: PathBuf,
    /// The control socket's path, for `--socket` when the test starts the daemon.
    pub socket: String,
}

impl Cli {
    /// For the daemon the lab started (its control socket in the lab's directory).
    pub fn for_lab(lab: &Lab) -> Cli {
        Cli { binary: blocker_binary().unwrap(), socket: lab.dir().join("control.sock").to_string_lossy().into_owned() }
    }

    /// `blocker <args> --socket S`: whether it succeeded, and its stdout, then its stderr.
    pub fn run(&self, lab: &Lab, args: &[&str]) -> (bool, String) {
        let (ok, out, err) = self.output(lab, args);
        (ok, out + &err)
    }

    /// `blocker <args> --json --socket S`, which must succeed with JSON on stdout.
    pub fn json(&self, lab: &Lab, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let (ok, out, err) = self.output(lab, &a);
        assert!(ok, "blocker {args:?}: {out}{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
    }

    fn output(&self, lab: &Lab, args: &[&str]) -> (bool, String, String) {
        let b = self.binary.to_string_lossy();
        let mut argv = vec![&*b];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--socket", &self.socket]);
        let out = lab.exec_timeout(Node::Appliance, &argv, Duration::from_secs(60));
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
