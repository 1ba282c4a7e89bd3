//! The update rules, with file sources and a recorder in place of the kernel.

use std::{
    fs,
    path::PathBuf,
    time::{Duration, Instant},
};

use super::*;
use crate::{
    config::ControllerConfig,
    lists::{ListKind, TrustedKey},
};

#[derive(Default)]
struct Recorder {
    installs: Vec<usize>,
    /// Whether the "kernel" still holds the generation before.
    holds_previous: bool,
    switches: usize,
    window_ends: usize,
}

impl Installer for Recorder {
    fn install(&mut self, set: &ListSet) -> Result<InstallReport, DatapathError> {
        self.installs.push(set.len());
        self.holds_previous = self.installs.len() > 1;
        Ok(InstallReport::default())
    }
    fn switch_back(&mut self) -> Result<bool, DatapathError> {
        if self.holds_previous {
            self.switches += 1;
            self.holds_previous = false;
        }
        Ok(self.switches > 0 && !self.holds_previous)
    }
    fn end_rollback_window(&mut self) -> Result<(), DatapathError> {
        self.window_ends += 1;
        self.holds_previous = false;
        Ok(())
    }
}

struct Signer {
    public: minisign::PublicKey,
    secret: minisign::SecretKey,
}

impl Signer {
    fn new() -> Signer {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        Signer { public: pair.pk, secret: pair.sk }
    }
    fn sign(&self, body: &[u8]) -> Vec<u8> {
        minisign::sign(Some(&self.public), &self.secret, std::io::Cursor::new(body), Some("test"), None).unwrap().into_string().into_bytes()
    }
}

/// A scratch directory with list files, a state directory and a configuration.
struct Bench {
    dir: PathBuf,
}

impl Bench {
    fn new(tag: &str) -> Bench {
        let dir = std::env::temp_dir().join(format!("blocker-update-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Bench { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn write(&self, name: &str, text: &str) {
        fs::write(self.path(name), text).unwrap();
    }
    /// A configuration with the given `[[list]]` and `[guards]` text, state in the bench.
    /// Tests that are not about the change-ratio guard use a lenient one: small test lists
    /// change by large shares.
    fn manager(&self, extra: &str) -> ListManager {
        let guards = if extra.contains("[guards]") { "" } else { "[guards]\nmax_change_ratio = 100.0\n" };
        // Top-level keys of `extra` (before its first table) go before the [guards] table.
        let split = extra.find("\n[").map(|i| i + 1).unwrap_or(if extra.starts_with('[') { 0 } else { extra.len() });
        let (top, tables) = extra.split_at(split);
        let text = format!("state_dir = {:?}\n{top}{guards}{tables}", self.path("state"));
        let c = ControllerConfig::parse(&self.path("blocker.toml"), &text).unwrap();
        let settings = Settings::from_config(&c).unwrap();
        ListManager::new(settings, Some(StateDir::open(&c.state_dir()).unwrap()))
    }
    fn list(&self, name: &str) -> String {
        format!("[[list]]\nname = \"{name}\"\nsource = {:?}\n", self.path(&format!("{name}.txt")))
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn all() -> UpdateRequest {
    UpdateRequest::default()
}

fn entries(m: &ListManager) -> Vec<String> {
    m.live().entries().iter().map(|e| e.target.to_string()).collect()
}

#[test]
fn a_first_update_installs_every_list_as_generation_one() {
    let b = Bench::new("first");
    b.write("a.txt", "192.0.2.1\nexample.com\n");
    let mut m = b.manager(&b.list("a"));
    let mut k = Recorder::default();
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Applied { generation: 1 });
    assert_eq!(k.installs, vec![2]);
    assert_eq!(entries(&m), vec!["192.0.2.1/32", "example.com"]);
    assert_eq!(r.list("a").unwrap().result, "updated");
}

#[test]
fn an_unchanged_source_installs_nothing() {
    let b = Bench::new("same");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "# reordered comments do not count as content? they do: same bytes only\n192.0.2.1\n");
    let r = m.update(&mut k, &all()).unwrap();
    // Different bytes, same entries: a new generation with an empty diff.
    assert!(r.diff.is_empty());
    b.write("a.txt", "# reordered comments do not count as content? they do: same bytes only\n192.0.2.1\n");
    let installs = k.installs.len();
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Unchanged);
    assert_eq!(k.installs.len(), installs, "no install for identical content");
    assert_eq!(r.list("a").unwrap().result, "unchanged");
}

#[test]
fn a_bad_line_refuses_that_list_and_leaves_the_live_set() {
    let b = Bench::new("badline");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "192.0.2.1\n192.0.2.300\n");
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Refused);
    assert_eq!(k.installs.len(), 1, "the kernel was not touched");
    let a = r.list("a").unwrap();
    assert_eq!((a.result.as_str(), a.kind.as_deref()), ("refused", Some("parse")));
    assert!(a.detail.contains("a.txt:2:"), "{}", a.detail);
    assert_eq!(entries(&m), vec!["192.0.2.1/32"]);
    assert_eq!(m.generation(), 1);
}

#[test]
fn one_refused_list_does_not_hold_back_the_others() {
    let b = Bench::new("indep");
    b.write("a.txt", "192.0.2.1\n");
    b.write("b.txt", "example.com\n");
    let mut m = b.manager(&format!("{}{}", b.list("a"), b.list("b")));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "not a valid entry!\n");
    b.write("b.txt", "example.com\nexample.net\n");
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Applied { generation: 2 });
    assert_eq!(r.list("a").unwrap().result, "refused");
    assert_eq!(r.list("b").unwrap().result, "updated");
    assert_eq!(entries(&m), vec!["192.0.2.1/32", "example.com", "example.net"]);
}

#[test]
fn a_refused_list_is_logged_by_place_without_its_lines() {
    let b = Bench::new("logplaces");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "192.0.2.1\nsecret-entry!.example\n");
    let r = m.update(&mut k, &all()).unwrap();
    let a = r.list("a").unwrap();
    assert!(a.detail.contains("secret-entry!.example"), "the operator who asked sees the line: {}", a.detail);
    let log = a.log_line();
    assert!(!log.contains("secret-entry"), "logs carry places, not entries: {log}");
    assert!(log.contains("a.txt:2") && log.contains("1 invalid line(s)"), "{log}");
}

#[test]
fn a_shadow_list_whose_new_version_allows_is_refused_alone() {
    let b = Bench::new("shadowallow");
    b.write("a.txt", "192.0.2.1\n");
    b.write("s.csv", "entry,action\nexample.net,block\n");
    let shadow = format!("[[list]]\nname = \"s\"\nsource = {:?}\nshadow = true\n", b.path("s.csv"));
    let mut m = b.manager(&format!("{}{shadow}", b.list("a")));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "192.0.2.1\n192.0.2.2\n");
    b.write("s.csv", "entry,action\nexample.net,block\nexample.org,allow\n");
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Applied { generation: 2 });
    let s = r.list("s").unwrap();
    assert_eq!((s.result.as_str(), s.kind.as_deref()), ("refused", Some("parse")));
    assert!(s.detail.contains("s.csv:3:") && s.detail.contains("shadow mode"), "{}", s.detail);
    assert!(!s.log_line().contains("example.org"), "{}", s.log_line());
    assert_eq!(r.list("a").unwrap().result, "updated");
    assert_eq!(entries(&m), vec!["192.0.2.1/32", "192.0.2.2/32", "example.net"]);
}

#[test]
fn the_change_ratio_guard_refuses_unless_forced() {
    let b = Bench::new("ratio");
    let ten: String = (1..=10).map(|i| format!("192.0.2.{i}\n")).collect();
    b.write("a.txt", &ten);
    let mut m = b.manager(&format!("[guards]\nmax_change_ratio = 0.3\n{}", b.list("a")));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    let half: String = (1..=5).map(|i| format!("192.0.2.{i}\n")).collect();
    b.write("a.txt", &half);
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Refused);
    let a = r.list("a").unwrap();
    assert_eq!(a.kind.as_deref(), Some("guard"));
    assert!(a.detail.contains("changes 50.0% of the list (+0 -5 of 10 entries)"), "{}", a.detail);
    assert!(a.detail.contains("- 192.0.2.6/32"), "what would have changed is shown: {}", a.detail);
    assert_eq!(m.live().len(), 10);
    let r = m.update(&mut k, &UpdateRequest { force: true, ..all() }).unwrap();
    assert_eq!(r.outcome, Outcome::Applied { generation: 2 });
    assert_eq!(m.live().len(), 5);
}

#[test]
fn a_protected_name_refuses_the_update() {
    let b = Bench::new("protected");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&format!("[guards]\nmax_change_ratio = 10.0\nprotected = [\"google.com\"]\n{}", b.list("a")));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "192.0.2.1\nwww.google.com\n");
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Refused);
    assert!(r.list("a").unwrap().detail.contains("www.google.com (") && r.list("a").unwrap().detail.contains("would block protected google.com"));
    assert_eq!(r.refusals.len(), 1);
    assert!(!r.list("a").unwrap().log_line().contains("google"), "logs carry places, not entries");
}

#[test]
fn signed_lists_need_a_good_signature_before_anything_is_parsed() {
    let b = Bench::new("signed");
    let signer = Signer::new();
    b.write("a.txt", "192.0.2.1\n");
    fs::write(b.path("a.txt.minisig"), signer.sign(b"192.0.2.1\n")).unwrap();
    let key = format!("[signing]\npublic_key = {:?}\n", signer.public.to_base64());
    let mut m = b.manager(&format!("{key}{}", b.list("a")));
    let mut k = Recorder::default();
    assert_eq!(m.update(&mut k, &all()).unwrap().outcome, Outcome::Applied { generation: 1 });

    // Tampered: the body changed after signing (even to something unparsable: the signature
    // is checked first).
    b.write("a.txt", "192.0.2.1\ngoogle.com\n");
    let r = m.update(&mut k, &all()).unwrap();
    let a = r.list("a").unwrap();
    assert_eq!((r.outcome.clone(), a.kind.as_deref()), (Outcome::Refused, Some("signature")));
    assert!(a.detail.contains("does not match the content"), "{}", a.detail);

    // Missing signature.
    fs::remove_file(b.path("a.txt.minisig")).unwrap();
    let r = m.update(&mut k, &all()).unwrap();
    assert!(r.list("a").unwrap().detail.contains("no signature"), "{}", r.list("a").unwrap().detail);

    // Signed by another key.
    fs::write(b.path("a.txt.minisig"), Signer::new().sign(b"192.0.2.1\ngoogle.com\n")).unwrap();
    let r = m.update(&mut k, &all()).unwrap();
    assert!(r.list("a").unwrap().detail.contains("another key"), "{}", r.list("a").unwrap().detail);
    assert_eq!(k.installs.len(), 1);
    assert_eq!(entries(&m), vec!["192.0.2.1/32"]);
    let _ = TrustedKey::parse(&signer.public.to_base64()).unwrap();
}

#[test]
fn a_restart_loads_the_persisted_set_before_any_pull() {
    let b = Bench::new("restart");
    b.write("a.txt", "192.0.2.1\nexample.com\n");
    let mut m = b.manager(&b.list("a"));
    m.update(&mut Recorder::default(), &all()).unwrap();
    // The source goes away (a list server down at boot): the stored set still loads.
    fs::remove_file(b.path("a.txt")).unwrap();
    let mut again = b.manager(&b.list("a"));
    let mut k = Recorder::default();
    let r = again.restore(&mut k).unwrap().expect("a stored generation");
    assert_eq!(r.outcome, Outcome::Restored { generation: 1 });
    assert_eq!(k.installs, vec![2]);
    assert_eq!(entries(&again), vec!["192.0.2.1/32", "example.com"]);
    // A failing pull keeps it.
    let r = again.update(&mut k, &all()).unwrap();
    assert_eq!(r.list("a").unwrap().result, "failed");
    assert_eq!(again.live().len(), 2);
}

#[test]
fn a_stored_list_that_was_altered_is_not_loaded() {
    let b = Bench::new("altered");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    m.update(&mut Recorder::default(), &all()).unwrap();
    fs::write(b.path("state/generations/1/a.body"), "google.com\n").unwrap();
    let err = b.manager(&b.list("a")).restore(&mut Recorder::default()).err().unwrap().to_string();
    assert!(err.contains("does not match the digest"), "{err}");
}

#[test]
fn rollback_restores_the_previous_generation_at_once_and_refuses_it_coming_back() {
    let b = Bench::new("rollback");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "192.0.2.1\n192.0.2.2\n");
    m.update(&mut k, &all()).unwrap();
    assert_eq!(m.generation(), 2);
    let r = m.rollback(&mut k).unwrap();
    assert_eq!((r.from, r.to, r.instant), (2, 1, true));
    assert_eq!(k.installs.len(), 2, "switched back, not installed again");
    assert_eq!(entries(&m), vec!["192.0.2.1/32"]);
    assert!(matches!(m.rollback(&mut k), Err(UpdateError::NothingToRollBack)));
    // The next pull brings the rolled-back version again: refused until forced.
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.list("a").unwrap().kind.as_deref(), Some("rolled_back"));
    assert_eq!(m.live().len(), 1);
    // Survives a restart.
    let mut again = b.manager(&b.list("a"));
    again.restore(&mut Recorder::default()).unwrap();
    assert_eq!(entries(&again), vec!["192.0.2.1/32"]);
    let r = again.update(&mut Recorder::default(), &all()).unwrap();
    assert_eq!(r.list("a").unwrap().kind.as_deref(), Some("rolled_back"));
    let r = again.update(&mut Recorder::default(), &UpdateRequest { force: true, ..all() }).unwrap();
    assert!(matches!(r.outcome, Outcome::Applied { .. }));
    assert_eq!(again.live().len(), 2);
}

#[test]
fn rollback_after_a_restart_installs_the_previous_generation_again() {
    let b = Bench::new("rollback-restart");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    m.update(&mut Recorder::default(), &all()).unwrap();
    b.write("a.txt", "192.0.2.2\n");
    m.update(&mut Recorder::default(), &UpdateRequest { force: true, ..all() }).unwrap();
    let mut again = b.manager(&b.list("a"));
    let mut k = Recorder::default();
    again.restore(&mut k).unwrap();
    let r = again.rollback(&mut k).unwrap();
    assert!(!r.instant);
    assert_eq!(k.installs, vec![1, 1]);
    assert_eq!(entries(&again), vec!["192.0.2.1/32"]);
}

#[test]
fn the_previous_generation_leaves_the_kernel_when_the_rollback_window_ends() {
    let b = Bench::new("rollback-window");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&format!("rollback_window = \"10m\"\n{}", b.list("a")));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "192.0.2.1\n192.0.2.2\n");
    m.update(&mut k, &all()).unwrap();
    let now = Instant::now();
    assert!(!m.end_rollback_window_due(now, &mut k).unwrap(), "inside the window");
    let view = m.view();
    assert!(view.previous_in_kernel);
    assert!(view.to_string().contains("previous 1 kept for a one-step rollback for 10 min more"), "{view}");
    assert!(m.end_rollback_window_due(now + Duration::from_secs(600), &mut k).unwrap());
    assert_eq!(k.window_ends, 1);
    assert!(!m.end_rollback_window_due(now + Duration::from_secs(1200), &mut k).unwrap(), "ended once");
    let view = m.view();
    assert!(!view.previous_in_kernel);
    assert!(view.to_string().contains("previous 1 kept on disk (a rollback installs it again)"), "{view}");
    // The rollback still works, by installing the previous generation again.
    let r = m.rollback(&mut k).unwrap();
    assert_eq!((r.from, r.to, r.instant), (2, 1, false));
    assert_eq!(k.installs, vec![1, 2, 1]);
    assert_eq!(entries(&m), vec!["192.0.2.1/32"]);
    // What the rollback left beside the live generation is no rollback target: its window ends
    // at the next check.
    assert!(m.end_rollback_window_due(Instant::now(), &mut k).unwrap());
    assert_eq!(k.window_ends, 2);
}

#[test]
fn with_a_rollback_window_of_forever_the_previous_generation_stays() {
    let b = Bench::new("rollback-forever");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&format!("rollback_window = \"forever\"\n{}", b.list("a")));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "192.0.2.2\n");
    m.update(&mut k, &UpdateRequest { force: true, ..all() }).unwrap();
    assert!(!m.end_rollback_window_due(Instant::now() + Duration::from_secs(86400 * 365), &mut k).unwrap());
    assert_eq!(k.window_ends, 0);
    assert!(m.rollback(&mut k).unwrap().instant);
}

#[test]
fn the_rollback_window_is_one_hour_unless_configured() {
    let c = ControllerConfig::parse(std::path::Path::new("t.toml"), "").unwrap();
    assert_eq!(Settings::from_config(&c).unwrap().rollback_window, Some(Duration::from_secs(3600)));
    let err = ControllerConfig::parse(std::path::Path::new("t.toml"), "rollback_window = \"soon\"\n").unwrap_err();
    assert!(err.to_string().contains("forever"), "{err}");
}

#[test]
fn a_dry_run_reports_the_diff_and_changes_nothing() {
    let b = Bench::new("dry");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    b.write("a.txt", "192.0.2.1\n192.0.2.9\n");
    let r = m.update(&mut k, &UpdateRequest { dry_run: true, ..all() }).unwrap();
    assert_eq!(r.outcome, Outcome::DryRun);
    assert_eq!(r.diff.list("a").unwrap().added_sample, vec!["192.0.2.9/32 at ".to_string() + &b.path("a.txt").display().to_string() + ":2"]);
    assert_eq!(k.installs.len(), 1);
    assert_eq!(m.live().len(), 1);
}

#[test]
fn an_oversized_body_is_refused() {
    let b = Bench::new("oversize");
    b.write("a.txt", "192.0.2.1\n192.0.2.2\n");
    let mut m = b.manager(&format!("{}max_bytes = 12\n", b.list("a")));
    let r = m.update(&mut Recorder::default(), &all()).unwrap();
    let a = r.list("a").unwrap();
    assert_eq!((a.result.as_str(), a.kind.as_deref()), ("refused", Some("oversize")));
}

#[test]
fn unknown_lists_are_an_error() {
    let b = Bench::new("unknown");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    let r = m.update(&mut Recorder::default(), &UpdateRequest { lists: vec!["nope".into()], ..all() });
    assert!(matches!(r, Err(UpdateError::UnknownList(_))));
}

#[test]
fn the_view_shows_each_list_and_its_last_result() {
    let b = Bench::new("view");
    b.write("a.txt", "192.0.2.1\nexample.com\n");
    b.write("s.txt", "example.net\n");
    let mut m = b.manager(&format!("{}{}shadow = true\n", b.list("a"), b.list("s")));
    m.update(&mut Recorder::default(), &all()).unwrap();
    let v = m.view();
    assert_eq!((v.generation, v.entries), (1, 3));
    assert_eq!(v.lists[0].entries, 2);
    assert!(v.lists[1].shadow);
    let text = v.to_string();
    assert!(text.contains("generation 1 live: 3 entries"), "{text}");
    assert!(text.contains("shadow"), "{text}");
    let _ = ListKind::Block;
}

#[test]
fn new_settings_add_and_drop_lists_at_the_next_update() {
    let b = Bench::new("settings");
    b.write("a.txt", "192.0.2.1\n");
    b.write("b.txt", "example.com\n");
    let mut m = b.manager(&format!("{}{}", b.list("a"), b.list("b")));
    let mut k = Recorder::default();
    m.update(&mut k, &all()).unwrap();
    // Dropping a list whose source did not change still makes a new generation.
    let text = format!("state_dir = {:?}\n{}", b.path("state"), b.list("a"));
    let c = ControllerConfig::parse(&b.path("blocker.toml"), &text).unwrap();
    m.set_settings(Settings::from_config(&c).unwrap());
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Applied { generation: 2 }, "{r}");
    assert_eq!(entries(&m), vec!["192.0.2.1/32"]);
    // The operator adds list b and removes list a from the configuration (with the strict
    // default guard: removing a whole list on purpose is not an update to refuse).
    let text = format!("state_dir = {:?}\n{}", b.path("state"), b.list("b"));
    let c = ControllerConfig::parse(&b.path("blocker.toml"), &text).unwrap();
    m.set_settings(Settings::from_config(&c).unwrap());
    let r = m.update(&mut k, &all()).unwrap();
    assert_eq!(r.outcome, Outcome::Applied { generation: 3 }, "{r}");
    assert_eq!(entries(&m), vec!["example.com"]);
    assert_eq!(r.diff.list("a").unwrap().removed, 1);
    assert_eq!(m.view().lists.len(), 1);
}

#[test]
fn a_set_that_would_not_fit_the_kernel_maps_is_refused_before_any_map_is_touched() {
    let b = Bench::new("capacity");
    b.write("a.txt", "a.example\nb.example\nc.example\n192.0.2.1\n192.0.2.2\n");
    let mut m = b.manager(&b.list("a"));
    m.update(&mut Recorder::default(), &all()).unwrap();
    let set = m.live();
    let fits = Capacity { names: 3, block_prefixes: 2, allow_prefixes: 0 };
    assert_eq!(over(&set, &fits), None);
    let names = over(&set, &Capacity { names: 2, ..fits }).unwrap();
    assert_eq!(names, "the set would hold 3 names; the kernel holds at most 2 per generation");
    let prefixes = over(&set, &Capacity { block_prefixes: 1, ..fits }).unwrap();
    assert!(prefixes.contains("2 IPv4 and 0 IPv6 block prefixes; the kernel holds at most 1 of each"), "{prefixes}");
    assert_eq!(Capacity::KERNEL.names, 1 << 21);
}

/// A kernel that refuses the next install (a map full, memory short).
struct Failing;

impl Installer for Failing {
    fn install(&mut self, _: &ListSet) -> Result<InstallReport, DatapathError> {
        Err(DatapathError::Unsupported("map NAMES: insert: No space left on device".into()))
    }
    fn switch_back(&mut self) -> Result<bool, DatapathError> {
        Ok(false)
    }
}

#[test]
fn an_install_the_kernel_refuses_leaves_the_live_generation_and_the_state_as_they_were() {
    let b = Bench::new("install-fails");
    b.write("a.txt", "192.0.2.1\n");
    let mut m = b.manager(&b.list("a"));
    m.update(&mut Recorder::default(), &all()).unwrap();
    b.write("a.txt", "192.0.2.1\n192.0.2.2\n");
    let err = m.update(&mut Failing, &all()).unwrap_err().to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!((m.generation(), m.live().len()), (1, 1));
    // Nothing was stored: a restart loads generation 1.
    let mut again = b.manager(&b.list("a"));
    again.restore(&mut Recorder::default()).unwrap();
    assert_eq!((again.generation(), again.live().len()), (1, 1));
    // And the update goes in once the kernel takes it.
    assert!(matches!(m.update(&mut Recorder::default(), &all()).unwrap().outcome, Outcome::Applied { generation: 2 }));
}
