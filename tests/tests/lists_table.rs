//! List updates against the real program (issue 5, "Show"), frames through BPF_PROG_TEST_RUN:
//!
//! - a rejected update (bad line, bad signature, guard hit, oversize) leaves the live set and
//!   every counter exactly as they were: the kernel is not touched;
//! - a new controller loads the persisted generation and blocks the same as before;
//! - a rollback makes the previous generation live again in one switch.

mod support;

use std::{fs, path::PathBuf};

use blocker_tests::signing::TestSigner;
use blocker_user::{
    config::ControllerConfig,
    datapath::{Datapath, DnsPolicy, Options, XdpAction},
    update::{ListManager, Outcome, Settings, StateDir, UpdateRequest},
};
use support::{
    dns,
    frames::{tcp, udp},
};

const LISTED_V4: &str = "203.0.113.66";
const LATER_V4: &str = "203.0.113.77";
const UNLISTED_V4: &str = "203.0.113.10";
const LISTED_NAME: &str = "blocked.example";
const CLIENT: &str = "192.0.2.2";
const SYN: u8 = 0x02;

/// A scratch directory with a signed list file and a state directory.
struct Scene {
    dir: PathBuf,
    signer: TestSigner,
}

impl Scene {
    fn new(tag: &str) -> Scene {
        let dir = std::env::temp_dir().join(format!("blocker-lists-table-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scene { dir, signer: TestSigner::new() }
    }

    fn list(&self) -> PathBuf {
        self.dir.join("l.txt")
    }

    /// Publishes a list version with a good signature.
    fn publish(&self, body: &str) {
        fs::write(self.list(), body).unwrap();
        fs::write(self.dir.join("l.txt.minisig"), self.signer.sign(body.as_bytes(), "t")).unwrap();
    }

    fn settings(&self) -> (Settings, StateDir) {
        let text = format!(
            "state_dir = {:?}\n[signing]\npublic_key = {:?}\n[guards]\nmax_change_ratio = 5.0\nprotected = [\"{UNLISTED_V4}\"]\n\
             [[list]]\nname = \"l\"\nsource = {:?}\nmax_bytes = 4096\n",
            self.dir.join("state"),
            self.signer.public_key_base64(),
            self.list()
        );
        let c = ControllerConfig::parse(&self.dir.join("blocker.toml"), &text).unwrap();
        (Settings::from_config(&c).unwrap(), StateDir::open(&c.state_dir()).unwrap())
    }

    /// A controller as `blocker run` starts one: the datapath keyed with the stored hash key.
    fn controller(&self) -> (Datapath, ListManager) {
        let (settings, state) = self.settings();
        let key = state.hash_key().unwrap();
        let mut dp = Datapath::load(Options { hash_key: Some(key), ..Options::default() }).expect(support::NEEDS_ROOT);
        dp.set_dns(&DnsPolicy::stop_page(Some("192.0.2.1".parse().unwrap()), None)).unwrap();
        (dp, ListManager::new(settings, Some(state)))
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Whether the program lets each probe through: a SYN to each address, a DNS query for the name.
fn verdicts(dp: &Datapath) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for dst in [LISTED_V4, LATER_V4, UNLISTED_V4] {
        let f = tcp(CLIENT, dst, 443, SYN).build();
        out.push((dst.to_string(), dp.run_frame(&f).unwrap().action == XdpAction::Pass));
    }
    for name in [LISTED_NAME, "unlisted.example"] {
        let f = udp(CLIENT, "198.51.100.53", 53, &dns::query(name, 0xbeef)).build();
        out.push((name.to_string(), dp.run_frame(&f).unwrap().action == XdpAction::Pass));
    }
    out
}

fn passes(v: &[(String, bool)], what: &str) -> bool {
    v.iter().find(|(w, _)| w == what).unwrap().1
}

const GENERATION_ONE: &str = "# version 1\n203.0.113.66\nblocked.example\n";

#[test]
#[ignore = "needs root"]
fn rejected_updates_leave_the_live_set_and_counters_unchanged() {
    let s = Scene::new("rejected");
    s.publish(GENERATION_ONE);
    let (mut dp, mut m) = s.controller();
    assert_eq!(m.update(&mut dp, &UpdateRequest::default()).unwrap().outcome, Outcome::Applied { generation: 1 });
    let before = verdicts(&dp);
    assert!(!passes(&before, LISTED_V4) && !passes(&before, LISTED_NAME));
    assert!(passes(&before, LATER_V4) && passes(&before, UNLISTED_V4) && passes(&before, "unlisted.example"));
    let counters = dp.counters().unwrap();
    let hits = dp.entry_hits().unwrap();
    let slot = dp.live_slot();

    let bad_line = format!("{GENERATION_ONE}{LATER_V4}\n203.0.113.300\n");
    let cases: Vec<(&str, Box<dyn Fn()>)> = vec![
        ("parse", Box::new(|| s.publish(&bad_line))),
        (
            "signature",
            Box::new(|| {
                s.publish(GENERATION_ONE);
                fs::write(s.list(), format!("{GENERATION_ONE}{LATER_V4}\n")).unwrap();
            }),
        ),
        ("guard", Box::new(|| s.publish(&format!("{GENERATION_ONE}{LATER_V4}\n203.0.113.0/24\n")))),
        ("oversize", Box::new(|| s.publish(&format!("{GENERATION_ONE}{LATER_V4}\n{}", "# padding\n".repeat(500))))),
    ];
    for (kind, make) in cases {
        make();
        let r = m.update(&mut dp, &UpdateRequest::default()).unwrap();
        assert_eq!(r.outcome, Outcome::Refused, "{kind}: {r}");
        assert_eq!(r.list("l").unwrap().kind.as_deref(), Some(kind), "{r}");
        assert_eq!(dp.counters().unwrap(), counters, "{kind}: counters moved");
        assert_eq!(dp.entry_hits().unwrap(), hits, "{kind}: per-entry counts moved");
        assert_eq!(dp.live_slot(), slot, "{kind}: the live slot changed");
        assert_eq!(m.generation(), 1);
    }
    assert_eq!(verdicts(&dp), before, "blocking is exactly as it was");
}

#[test]
#[ignore = "needs root"]
fn a_new_controller_loads_the_persisted_set_before_any_pull() {
    let s = Scene::new("restart");
    s.publish(GENERATION_ONE);
    let expected = {
        let (mut dp, mut m) = s.controller();
        m.update(&mut dp, &UpdateRequest::default()).unwrap();
        verdicts(&dp)
    };
    // The list source is gone: only the state directory can bring the set back.
    fs::remove_file(s.list()).unwrap();
    let (mut dp, mut m) = s.controller();
    assert!(passes(&verdicts(&dp), LISTED_V4), "a fresh program blocks nothing");
    assert!(!passes(&expected, LISTED_V4) && !passes(&expected, LISTED_NAME));
    let r = m.restore(&mut dp).unwrap().expect("a stored generation");
    assert_eq!(r.outcome, Outcome::Restored { generation: 1 });
    assert_eq!(verdicts(&dp), expected, "names too: the stored hash key keys the new program");
}

#[test]
#[ignore = "needs root"]
fn rollback_makes_the_previous_generation_live_in_one_switch() {
    let s = Scene::new("rollback");
    s.publish(GENERATION_ONE);
    let (mut dp, mut m) = s.controller();
    m.update(&mut dp, &UpdateRequest::default()).unwrap();
    let one = verdicts(&dp);
    s.publish(&format!("# version 2\n{LATER_V4}\nblocked.example\n"));
    assert_eq!(m.update(&mut dp, &UpdateRequest::default()).unwrap().outcome, Outcome::Applied { generation: 2 });
    let two = verdicts(&dp);
    assert!(passes(&two, LISTED_V4) && !passes(&two, LATER_V4));
    let slot_two = dp.live_slot();
    let r = m.rollback(&mut dp).unwrap();
    assert!(r.instant, "the kernel still held generation 1");
    assert_ne!(dp.live_slot(), slot_two);
    assert_eq!(verdicts(&dp), one);
}
