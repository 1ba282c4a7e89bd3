//! `blocker lists show|diff|reload|rollback|verify`. All but `verify` ask the running daemon
//! over the control socket; `verify` pulls, checks signatures and parses on its own, so an
//! operator can try a configuration or a list before any daemon sees it.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use blocker_user::{
    config::ControllerConfig,
    control::{DEFAULT_SOCKET, Request, call},
    lists::{Format, ListKind, ParseOptions, Source, TrustedKey, Validators, parse_source, verify_signature},
    update::{ListSpec, Pulled, Settings, Version, pull},
};
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct ListsArgs {
    #[command(subcommand)]
    command: ListsCommand,
    /// The daemon's control socket.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
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
    /// A configuration file: verify each of its lists as the daemon would.
    #[arg(long, value_name = "FILE", conflicts_with = "source")]
    config: Option<PathBuf>,
    /// A list file or URL to verify instead.
    #[arg(value_name = "FILE|URL")]
    source: Option<String>,
    /// The minisign public key (`RWQ…`) or a .pub file; with it, a signature is required.
    #[arg(long, value_name = "KEY|FILE")]
    key: Option<String>,
    /// Where the signature is (default: the source with .minisig added).
    #[arg(long, value_name = "FILE|URL")]
    signature: Option<String>,
    /// The list's format (default: by extension).
    #[arg(long)]
    format: Option<Format>,
    /// Entries without an action allow rather than block.
    #[arg(long)]
    allow: bool,
}

pub fn run(a: ListsArgs) -> anyhow::Result<ExitCode> {
    let request = match a.command {
        ListsCommand::Show => Request::ListsShow,
        ListsCommand::Diff { lists } => Request::ListsDiff { lists },
        ListsCommand::Reload { lists, force } => Request::ListsReload { lists, force },
        ListsCommand::Rollback => Request::ListsRollback,
        ListsCommand::Verify(v) => return verify(v, a.json),
    };
    let response = call(&a.socket, &request)?;
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

fn verify(a: VerifyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (specs, key) = match (&a.config, &a.source) {
        (Some(path), _) => {
            let c = ControllerConfig::load(path)?;
            let s = Settings::from_config(&c)?;
            (s.specs, s.key)
        }
        (None, Some(source)) => {
            let key = match &a.key {
                Some(k) if std::path::Path::new(k).exists() => Some(TrustedKey::load(std::path::Path::new(k))?),
                Some(k) => Some(TrustedKey::parse(k).context("--key")?),
                None => None,
            };
            let source_parsed = Source::parse(source);
            let kind = if a.allow { ListKind::Allow } else { ListKind::Block };
            let spec = ListSpec {
                name: source.clone(),
                format: a.format.unwrap_or_else(|| Format::from_name(source)),
                signature: key.as_ref().map(|_| blocker_user::lists::signature_source(&source_parsed, a.signature.as_deref())),
                source: source_parsed,
                options: ParseOptions::new(kind),
                shadow: false,
                poll: None,
                limits: Default::default(),
            };
            (vec![spec], key)
        }
        (None, None) => anyhow::bail!("give --config FILE, or a list FILE or URL"),
    };
    let mut ok = true;
    for spec in &specs {
        let result = verify_one(spec, key.as_ref());
        ok &= result.is_ok();
        match (&result, json) {
            (Ok(line), false) => println!("{}: ok: {line}", spec.name),
            (Err(e), false) => eprintln!("{}: rejected: {e:#}", spec.name),
            (Ok(line), true) => println!("{}", serde_json::json!({"list": spec.name, "valid": true, "summary": line})),
            (Err(e), true) => println!("{}", serde_json::json!({"list": spec.name, "valid": false, "error": format!("{e:#}")})),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn verify_one(spec: &ListSpec, key: Option<&TrustedKey>) -> anyhow::Result<String> {
    let v: Version = match pull::pull(spec, key, &Validators::default())? {
        Pulled::Fetched(v) => v,
        Pulled::NotModified => anyhow::bail!("the server answered 304 to an unconditional request"),
    };
    let signed = match (&v.signature, key) {
        (Some(sig), Some(k)) => {
            let who = verify_signature(k, &v.body, sig)?;
            format!("signed by key {} ({})", who.key_id, who.trusted_comment)
        }
        _ => "unsigned".to_string(),
    };
    let (_, s) = parse_source(std::path::Path::new(&v.source), &v.body, spec.format, &spec.options)?;
    Ok(format!(
        "{} entries ({} IPv4, {} IPv6, {} names, {} allow), {} duplicate(s); {signed}; sha256 {}",
        s.entries, s.v4, s.v6, s.names, s.allow, s.duplicates, v.digest
    ))
}
