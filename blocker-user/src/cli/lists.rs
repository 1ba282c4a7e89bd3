//! `blocker lists show|diff|reload|rollback|verify`. All but `verify` ask the running daemon
//! over the control socket; `verify` pulls, checks signatures and parses on its own, so an
//! operator can try a configuration or a list before any daemon sees it.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use blocker_user::{
    config::ControllerConfig,
    control::{Request, call},
    lists::{Format, Guards, ListKind, ListSet, ListSummary, ParseOptions, Source, TrustedKey, Validators, check_protected, parse_source, verify_signature},
    update::{ListSpec, Pulled, Settings, Version, pull},
};
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct ListsArgs {
    #[command(subcommand)]
    command: ListsCommand,
    /// The daemon's control socket (default: the configuration's `control_socket`, else
    /// /run/blocker/control.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The configuration file the daemon runs with: show, diff, reload and rollback ask the
    /// daemon at its `control_socket`; verify checks each of its lists as the daemon would.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the daemon's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum ListsCommand {
    /// The live generation and each list: source, entries, last update.
    Show,
    /// Pull the lists and show what would change, without installing anything.
    Diff {
        /// Only these lists (by name).
        lists: Vec<String>,
    },
    /// Pull the lists now and install what changed; refused updates say why.
    Reload {
        /// Only these lists (by name).
        lists: Vec<String>,
        /// Apply updates the guards refuse (large changes, protected names) and pull
        /// unconditionally.
        #[arg(long)]
        force: bool,
    },
    /// Make the previous generation live again: one switch within the rollback window, else
    /// installed again.
    Rollback,
    /// Pull, check signatures and parse, without a daemon: every list of --config, or one
    /// FILE/URL.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// A list file or URL to verify instead of the lists of --config.
    #[arg(value_name = "FILE|URL", conflicts_with = "config")]
    source: Option<String>,
    /// The minisign public key (`RWQ…`) or the file holding it (a minisign .pub file); with it,
    /// a signature is required. Not with --config, whose [signing] section gives the key.
    #[arg(long, value_name = "KEY|FILE", conflicts_with = "config")]
    key: Option<String>,
    /// Where the signature is (default: the source with .minisig added); needs --key. Not with
    /// --config, whose lists say where their signatures are.
    #[arg(long, value_name = "FILE|URL", conflicts_with = "config")]
    signature: Option<String>,
    /// The list's format (default: by extension). Not with --config, whose lists say theirs.
    #[arg(long, conflicts_with = "config")]
    format: Option<Format>,
    /// Entries without an action allow rather than block. Not with --config, whose lists say
    /// their action.
    #[arg(long, conflicts_with = "config")]
    allow: bool,
}

pub fn run(a: ListsArgs) -> anyhow::Result<ExitCode> {
    let request = match a.command {
        ListsCommand::Show => Request::ListsShow,
        ListsCommand::Diff { lists } => Request::ListsDiff { lists },
        ListsCommand::Reload { lists, force } => Request::ListsReload { lists, force },
        ListsCommand::Rollback => Request::ListsRollback,
        ListsCommand::Verify(v) => return verify(v, a.config.as_deref(), a.json),
    };
    let socket = super::daemon_address::control_socket(a.socket.as_deref(), a.config.as_deref())?;
    let response = call(&socket, &request)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else if let Some(e) = &response.error {
        eprintln!("error: {e}");
    } else {
        print!("{}", response.text);
        if !response.text.ends_with('\n') {
            println!();
        }
    }
    Ok(if response.ok && !response.problem { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn verify(a: VerifyArgs, config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let (specs, key, guards) = match (config, &a.source) {
        (Some(path), _) => {
            let c = ControllerConfig::load(path)?;
            let s = Settings::from_config(&c)?;
            if s.specs.is_empty() {
                anyhow::bail!("{}: no [[list]] sections: nothing to verify", path.display());
            }
            (s.specs, s.key, Some(s.guards))
        }
        (None, Some(source)) => {
            let (spec, key) = source_spec(&a, source)?;
            (vec![spec], key, None)
        }
        (None, None) => anyhow::bail!("give --config FILE, or a list FILE or URL"),
    };
    let mut ok = true;
    for spec in &specs {
        let result = verify_one(spec, key.as_ref(), guards.as_ref());
        ok &= result.is_ok();
        match (&result, json) {
            (Ok(v), false) => println!("{}: ok: {}", spec.name, v.line()),
            (Err(e), false) => eprintln!("{}: rejected: {}", spec.name, super::error_text(e)),
            (Ok(v), true) => println!(
                "{}",
                serde_json::json!({
                    "list": spec.name, "valid": true, "summary": v.line(), "counts": v.summary,
                    "signed_by": v.signed_by.as_ref().map(|(key, comment)| serde_json::json!({"key_id": key, "trusted_comment": comment})),
                    "sha256": v.sha256,
                })
            ),
            (Err(e), true) => println!("{}", serde_json::json!({"list": spec.name, "valid": false, "error": super::error_text(e)})),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The one list `lists verify FILE|URL` checks, and the key its signature must verify with.
fn source_spec(a: &VerifyArgs, source: &str) -> anyhow::Result<(ListSpec, Option<TrustedKey>)> {
    if a.signature.is_some() && a.key.is_none() {
        anyhow::bail!("--signature needs --key KEY|FILE: without a key the signature cannot be checked");
    }
    let key = a.key.as_deref().map(key_arg).transpose()?;
    if let Some(scheme) = Source::unsupported_scheme(source) {
        anyhow::bail!("{source}: {scheme}:// is not supported; lists are pulled over https://, http:// or read from a file");
    }
    let source_parsed = Source::parse(source);
    let kind = if a.allow { ListKind::Allow } else { ListKind::Block };
    let spec = ListSpec {
        name: source.to_string(),
        format: a.format.unwrap_or_else(|| Format::from_name(source)),
        signature: key.as_ref().map(|_| blocker_user::lists::signature_source(&source_parsed, a.signature.as_deref())),
        source: source_parsed,
        options: ParseOptions::new(kind),
        shadow: false,
        poll: None,
        limits: Default::default(),
    };
    Ok((spec, key))
}

/// `--key`: a file when there is one of that name, else the key itself (`RWQ…`, or a
/// minisign.pub file's text). A value that is no key and looks like a path (a `/` outside a
/// key, `.pub` at the end, or any character a key never has) is the file, and that it cannot
/// be read the error.
fn key_arg(value: &str) -> anyhow::Result<TrustedKey> {
    let path = Path::new(value);
    if path.exists() {
        return TrustedKey::load(path).map_err(|e| anyhow::anyhow!("--key: {e}"));
    }
    match TrustedKey::parse(value) {
        Ok(key) => Ok(key),
        Err(_) if looks_like_path(value) => TrustedKey::load(path).map_err(|e| anyhow::anyhow!("--key: {e}")),
        Err(e) => anyhow::bail!("--key {value:?} is neither a file nor a minisign public key: {e}"),
    }
}

fn looks_like_path(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() || v.contains('\n') {
        return false;
    }
    let base64 = v.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    // Every minisign public key starts with RW (base64 of its algorithm, "Ed").
    !base64 || v.to_ascii_lowercase().ends_with(".pub") || (v.contains('/') && !v.starts_with("RW"))
}

/// Pulls, checks the signature and parses one list, then takes it as the daemon would: its
/// settings (a shadow list cannot allow) and, from a configuration, the protected names.
/// A list that passed `lists verify`.
#[derive(Debug)]
struct Verified {
    summary: ListSummary,
    /// Key id and trusted comment of a checked signature; None: unsigned.
    signed_by: Option<(String, String)>,
    sha256: String,
}

impl Verified {
    fn line(&self) -> String {
        let s = &self.summary;
        let signed = match &self.signed_by {
            Some((key, comment)) => format!("signed by key {key} ({comment})"),
            None => "unsigned".into(),
        };
        format!(
            "{} entries ({} IPv4, {} IPv6, {} names, {} allow), {} duplicate(s); {signed}; sha256 {}",
            s.entries, s.v4, s.v6, s.names, s.allow, s.duplicates, self.sha256
        )
    }
}

fn verify_one(spec: &ListSpec, key: Option<&TrustedKey>, guards: Option<&Guards>) -> anyhow::Result<Verified> {
    let v: Version = match pull::pull(spec, key, &Validators::default())? {
        Pulled::Fetched(v) => v,
        Pulled::NotModified => anyhow::bail!("the server answered 304 to an unconditional request"),
    };
    let signed_by = match (&v.signature, key) {
        (Some(sig), Some(k)) => {
            let who = verify_signature(k, &v.body, sig)?;
            Some((who.key_id.to_string(), who.trusted_comment))
        }
        _ => None,
    };
    let (entries, s) = parse_source(std::path::Path::new(&v.source), &v.body, spec.format, &spec.options)?;
    let mut set = ListSet::new();
    set.add_list(spec.info(), std::path::Path::new(&v.source), entries)?;
    if let Some((_, refusal)) = guards.and_then(|g| check_protected(g, &set).into_iter().next()) {
        anyhow::bail!("{refusal}");
    }
    Ok(Verified { summary: s, signed_by, sha256: v.digest })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        lists: ListsArgs,
    }

    /// `blocker lists verify ARGS`, as parsed: the verify arguments and the global --config.
    fn parse(a: &[&str]) -> Result<(VerifyArgs, Option<PathBuf>), clap::Error> {
        let c = Cli::try_parse_from(["lists", "verify"].into_iter().chain(a.iter().copied()))?;
        match c.lists.command {
            ListsCommand::Verify(v) => Ok((v, c.lists.config)),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn args(a: &[&str]) -> Result<VerifyArgs, clap::Error> {
        parse(a).map(|(v, _)| v)
    }

    fn spec(a: &[&str]) -> anyhow::Result<(ListSpec, Option<TrustedKey>)> {
        let a = args(a).unwrap();
        let source = a.source.clone().unwrap();
        source_spec(&a, &source)
    }

    /// A public key whose base64 holds a '/', as about half of them do.
    fn key_with_slash() -> String {
        (0..200)
            .map(|_| minisign::KeyPair::generate_unencrypted_keypair().unwrap().pk.to_base64())
            .find(|k| k.contains('/'))
            .expect("one of 200 keys has a '/'")
    }

    #[test]
    fn a_key_that_names_a_missing_file_says_the_file_cannot_be_read() {
        for path in ["/nonexistent.invalid/list.pub", "list-key.pub", "keys/list", "./RWQ", "~list.key"] {
            let e = format!("{:#}", spec(&["x.list", "--key", path]).unwrap_err());
            assert_eq!(e, format!("--key: cannot read the minisign public key file {path}: No such file or directory (os error 2)"));
        }
    }

    #[test]
    fn a_key_is_taken_inline_or_from_its_file() {
        let key = key_with_slash();
        let (s, k) = spec(&["x.list", "--key", &key]).unwrap();
        assert!(k.is_some() && s.is_signed());
        let dir = std::env::temp_dir().join(format!("blocker-cli-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("list.pub");
        std::fs::write(&file, format!("untrusted comment: test key\n{key}\n")).unwrap();
        let (_, from_file) = spec(&["x.list", "--key", file.to_str().unwrap()]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(from_file.unwrap().key_id(), k.unwrap().key_id());
        // Not a file and not a key: both said.
        let e = format!("{:#}", spec(&["x.list", "--key", "RWQnotakey"]).unwrap_err());
        assert!(e.starts_with("--key \"RWQnotakey\" is neither a file nor a minisign public key: malformed minisign public key"), "{e}");
    }

    #[test]
    fn a_signature_without_a_key_is_refused() {
        let e = spec(&["x.list", "--signature", "x.list.minisig"]).unwrap_err().to_string();
        assert_eq!(e, "--signature needs --key KEY|FILE: without a key the signature cannot be checked");
        let (s, k) = spec(&["x.list"]).unwrap();
        assert!(k.is_none() && !s.is_signed(), "no key, no signature: unsigned");
    }

    #[test]
    fn key_and_signature_are_for_one_source_not_a_configuration() {
        for extra in [["--key", "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"], ["--signature", "x.list.minisig"], ["--format", "csv"], ["--allow", "--allow"]] {
            let e = args(&["--config", "blocker.toml", extra[0], extra[1]]).expect_err("refused");
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{e}");
        }
        assert!(args(&["--config", "blocker.toml"]).is_ok());
        let e = args(&["--config", "blocker.toml", "x.list"]).expect_err("a configuration or a list, not both");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{e}");
        // Before the subcommand too: --config is the lists commands' own.
        let c = Cli::try_parse_from(["lists", "--config", "blocker.toml", "verify"]).unwrap();
        assert_eq!(c.lists.config.as_deref(), Some(Path::new("blocker.toml")));
        let (_, config) = parse(&["--config", "blocker.toml"]).unwrap();
        assert_eq!(config.as_deref(), Some(Path::new("blocker.toml")));
    }

    #[test]
    fn a_configuration_s_lists_are_checked_as_the_daemon_would_take_them() {
        let dir = std::env::temp_dir().join(format!("blocker-cli-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let good = file("good.txt", "192.0.2.1\nbad.example\n");
        let protected = file("protected.txt", "192.0.2.0/24\nexample.net\n");
        let shadow = file("shadow.csv", "entry,action\nx.example,block\ny.example,allow\n");
        let config = format!(
            "[guards]\nprotected = [\"www.example.net\"]\n\
             [[list]]\nname = \"good\"\nsource = {good:?}\n\
             [[list]]\nname = \"protected\"\nsource = {protected:?}\n\
             [[list]]\nname = \"shadow\"\nsource = {shadow:?}\nshadow = true\n"
        );
        let c = ControllerConfig::parse(&dir.join("blocker.toml"), &config).unwrap();
        let s = Settings::from_config(&c).unwrap();
        let verify = |name: &str| verify_one(s.specs.iter().find(|l| l.name == name).unwrap(), None, Some(&s.guards));
        let checked = (verify("good"), verify("protected"), verify("shadow"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(checked.0.unwrap().line().starts_with("2 entries"));
        let e = format!("{:#}", checked.1.unwrap_err());
        assert!(e.contains("protected") && e.contains("www.example.net"), "the protected name refuses the list: {e}");
        let e = format!("{:#}", checked.2.unwrap_err());
        assert!(e.contains("shadow.csv:3:") && e.contains("shadow mode"), "a shadow list cannot allow: {e}");
    }
}
