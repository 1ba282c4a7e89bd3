//! List operations in the lab (issue 5, "Show"): the release `blocker` on the appliance pulls a
//! signed list over HTTP from a list server in the internet namespace, and is then offered, in
//! turn, a tampered list, an over-broad one, one that would block a protected address and a
//! good one, each through `blocker lists reload`. Every refusal leaves blocking exactly as it
//! was (checked with real traffic from the client); the good update goes live, `blocker lists
//! rollback` takes it back, and a restarted blocker with the list server down blocks at once
//! with the stored generation.

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use blocker_tests::{lab::*, signing::TestSigner};
use serde_json::Value;

const LIST_PORT: u16 = 8080;

/// The list server: python's http.server on the internet namespace's upstream address,
/// serving a directory (it sends Last-Modified and answers If-Modified-Since with 304).
struct ListServer {
    dir: PathBuf,
    signer: TestSigner,
    version: u64,
    process: Option<Background>,
}

impl ListServer {
    fn start(lab: &Lab) -> ListServer {
        let dir = lab.dir().join("served");
        fs::create_dir_all(&dir).unwrap();
        let mut s = ListServer { dir, signer: TestSigner::new(), version: 0, process: None };
        s.restart(lab);
        s
    }

    fn restart(&mut self, lab: &Lab) {
        let dir = self.dir.to_string_lossy().into_owned();
        let port = LIST_PORT.to_string();
        let addr = INTERNET_V4.to_string();
        let child = lab.spawn(Node::Internet, &["python3", "-m", "http.server", "--bind", &addr, "--directory", &dir, &port]).unwrap();
        self.process = Some(Background::new(child, "list server"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let url = format!("http://{INTERNET_V4}:{LIST_PORT}/");
        while !lab.exec(Node::Appliance, &["curl", "-s", "-o", "/dev/null", "--max-time", "1", &url]).status.success() {
            assert!(std::time::Instant::now() < deadline, "the list server did not start within 10 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            p.stop(libc::SIGTERM, Duration::from_secs(5));
        }
    }

    fn url(&self) -> String {
        format!("http://{INTERNET_V4}:{LIST_PORT}/lab.list")
    }

    /// Publishes `body`; signed by the trusted key unless `signature` says otherwise. Each
    /// version gets a later modification time, so If-Modified-Since sees it as new.
    fn publish(&mut self, body: &str, signature: Option<Vec<u8>>) {
        self.version += 1;
        let list = self.dir.join("lab.list");
        fs::write(&list, body).unwrap();
        let sig = signature.unwrap_or_else(|| self.signer.sign(body.as_bytes(), "lab"));
        fs::write(self.dir.join("lab.list.minisig"), sig).unwrap();
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 60 * self.version);
        fs::File::options().write(true).open(&list).unwrap().set_modified(mtime).unwrap();
    }
}

struct Appliance {
    binary: PathBuf,
    config: PathBuf,
    socket: PathBuf,
}

impl Appliance {
    fn new(lab: &Lab, server: &ListServer) -> Appliance {
        let config = lab.dir().join("blocker.toml");
        let text = format!(
            "state_dir = {state:?}\n\
             [signing]\npublic_key = {key:?}\n\
             [guards]\nmax_change_ratio = 2.0\nprotected = [\"{protected}\"]\n\
             [[list]]\nname = \"lab\"\nsource = {url:?}\npoll_interval = \"1h\"\n",
            state = lab.dir().join("state"),
            key = server.signer.public_key_base64(),
            protected = ALLOWED_V4,
            url = server.url(),
        );
        fs::write(&config, text).unwrap();
        Appliance { binary: blocker_binary().unwrap(), config, socket: lab.dir().join("control.sock") }
    }

    fn start(&self, lab: &Lab) -> Blocker {
        let (config, socket) = (self.config.to_string_lossy(), self.socket.to_string_lossy());
        lab.start_blocker(&self.binary, APPLIANCE_CLIENT_IF, &["--config", &config, "--socket", &socket]).unwrap()
    }

    /// `blocker lists <args> --json` on the appliance: (exit status success, JSON answer).
    fn lists(&self, lab: &Lab, args: &[&str]) -> (bool, Value) {
        let (binary, socket) = (self.binary.to_string_lossy(), self.socket.to_string_lossy());
        let mut argv = vec![&*binary, "lists"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--socket", &socket, "--json"]);
        let out = lab.exec_timeout(Node::Appliance, &argv, Duration::from_secs(60));
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.success(), v)
    }

    /// Reloads and returns the outcome of the one list: (result, kind, detail).
    fn reload(&self, lab: &Lab) -> (bool, String, String, String) {
        let (ok, v) = self.lists(lab, &["reload"]);
        let l = &v["result"]["lists"][0];
        let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
        (ok, s("result"), s("kind"), s("detail"))
    }

    fn generation(&self, lab: &Lab) -> u64 {
        self.lists(lab, &["show"]).1["result"]["generation"].as_u64().unwrap()
    }
}

fn reachable(lab: &Lab, addr: impl Into<IpAddr>) -> bool {
    match lab.http_get(Node::Client, addr.into()) {
        HttpOutcome::Status(200) => true,
        HttpOutcome::Reset => false,
        other => panic!("neither an answer nor a reset: {other:?}"),
    }
}

/// Blocking as generation 1 has it: the listed address reset, the others answered.
fn assert_generation_one(lab: &Lab) {
    assert!(!reachable(lab, BLOCKED_V4), "{BLOCKED_V4} is listed");
    assert!(reachable(lab, ALLOWED_V4), "{ALLOWED_V4} is not listed");
    assert!(reachable(lab, BLOCKED_V6), "{BLOCKED_V6} is not listed in generation 1");
}

#[test]
#[ignore = "needs root"]
fn signed_pulls_refuse_tampered_over_broad_and_protected_updates_and_roll_back() {
    let mut lab = Lab::create(LabOptions::default()).unwrap();
    lab.start_http_server().unwrap();
    let mut server = ListServer::start(&lab);
    let v1 = format!("# lab list, version 1\n{BLOCKED_V4}\n");
    server.publish(&v1, None);
    let appliance = Appliance::new(&lab, &server);
    let blocker = appliance.start(&lab);
    assert_eq!(appliance.generation(&lab), 1);
    let (_, show) = appliance.lists(&lab, &["show"]);
    assert_eq!(show["result"]["lists"][0]["signed"], true);
    assert_eq!(show["result"]["lists"][0]["entries"], 1);
    assert_generation_one(&lab);

    // `lists verify` checks a source without a daemon: the configuration's lists, or one URL.
    let (binary, config) = (appliance.binary.to_string_lossy().into_owned(), appliance.config.to_string_lossy().into_owned());
    let out = lab.exec_timeout(Node::Appliance, &[&binary, "lists", "verify", "--config", &config], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("lab: ok: 1 entries") && text.contains(&format!("signed by key {}", server.signer.key_id_hex())), "{text}");
    let key = server.signer.public_key_base64();
    let url = server.url();
    let out = lab.exec_timeout(Node::Appliance, &[&binary, "lists", "verify", &url, "--key", &key], Duration::from_secs(30));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let other_key = TestSigner::new().public_key_base64();
    let out = lab.exec_timeout(Node::Appliance, &[&binary, "lists", "verify", &url, "--key", &other_key], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("rejected") && err.contains("another key"), "{err}");

    // 1. Tampered: the body changed after it was signed.
    let signature_of_v1 = server.signer.sign(v1.as_bytes(), "lab");
    server.publish(&format!("{v1}{BLOCKED_V6}\n"), Some(signature_of_v1));
    let (ok, result, kind, detail) = appliance.reload(&lab);
    assert!(!ok, "a refused update exits non-zero");
    assert_eq!((result.as_str(), kind.as_str()), ("refused", "signature"), "{detail}");
    assert!(detail.contains("does not match the content"), "{detail}");

    // 2. Signed by someone else.
    let other = TestSigner::new();
    let body = format!("{v1}{BLOCKED_V6}\n");
    server.publish(&body, Some(other.sign(body.as_bytes(), "not the list body")));
    let (_, result, kind, detail) = appliance.reload(&lab);
    assert_eq!((result.as_str(), kind.as_str()), ("refused", "signature"), "{detail}");
    assert!(detail.contains("another key"), "{detail}");

    // 3. Over-broad: signed, but it would add 40 entries to a list of one.
    let many: String = (100..140).map(|i| format!("203.0.113.{i}\n")).collect();
    server.publish(&format!("{v1}{many}"), None);
    let (_, result, kind, detail) = appliance.reload(&lab);
    assert_eq!((result.as_str(), kind.as_str()), ("refused", "guard"), "{detail}");
    assert!(detail.contains("+40 -0 of 1 entries"), "the refusal says what would have changed: {detail}");
    assert!(detail.contains("+ 203.0.113.100/32"), "{detail}");

    // 4. Signed and small, but it would block a protected address.
    server.publish(&format!("{v1}203.0.113.0/24\n"), None);
    let (_, result, kind, detail) = appliance.reload(&lab);
    assert_eq!((result.as_str(), kind.as_str()), ("refused", "guard"), "{detail}");
    assert!(detail.contains(&format!("would block protected {ALLOWED_V4}")), "{detail}");

    // Nothing of the four went live.
    assert_eq!(appliance.generation(&lab), 1);
    assert_generation_one(&lab);
    let (ok, diff) = appliance.lists(&lab, &["diff"]);
    assert!(!ok, "diff reports the refusal too: {diff}");
    assert_eq!(diff["result"]["refusals"][0]["guard"], "protected", "{diff}");

    // 5. A good update goes live; a rollback takes it back at once.
    server.publish(&format!("{v1}{BLOCKED_V6}\n"), None);
    let (ok, result, _, detail) = appliance.reload(&lab);
    assert!(ok, "{detail}");
    assert_eq!(result, "updated");
    assert_eq!(appliance.generation(&lab), 2);
    assert!(!reachable(&lab, BLOCKED_V6), "{BLOCKED_V6} is listed in generation 2");
    let (ok, rb) = appliance.lists(&lab, &["rollback"]);
    assert!(ok, "{rb}");
    assert_eq!((rb["result"]["from"].as_u64(), rb["result"]["to"].as_u64(), rb["result"]["instant"].as_bool()), (Some(2), Some(1), Some(true)));
    assert_generation_one(&lab);
    // The rolled-back version is not pulled straight back in.
    let (_, result, kind, _) = appliance.reload(&lab);
    assert_eq!((result.as_str(), kind.as_str()), ("refused", "rolled_back"));
    assert_generation_one(&lab);

    // 6. A restart with the list server down blocks at once with the stored generation.
    let exit = blocker.stop().unwrap();
    assert!(exit.counters.packets("dst_v4", "tcp_reset") > 0, "{}", exit.stopped.output());
    server.stop();
    let blocker = appliance.start(&lab);
    assert_eq!(appliance.generation(&lab), 1);
    assert_generation_one(&lab);
    let (_, show) = appliance.lists(&lab, &["show"]);
    let status = &show["result"]["lists"][0]["status"];
    assert_eq!(status["result"], "failed", "the pull at start failed and said so: {show}");
    let out = blocker.stop().unwrap().stopped.output();
    assert!(!out.contains(&BLOCKED_V4.to_string()), "logs carry no list entries:\n{out}");
    assert_state_is_private(&lab.dir().join("state"));
}

/// The stored lists are the appliance's copy of the list body's list: root only.
fn assert_state_is_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(dir).unwrap().permissions().mode() & 0o777, 0o700);
    for g in fs::read_dir(dir.join("generations")).unwrap() {
        for f in fs::read_dir(g.unwrap().path()).unwrap() {
            let f = f.unwrap();
            assert_eq!(f.metadata().unwrap().permissions().mode() & 0o077, 0, "{}", f.path().display());
        }
    }
}
