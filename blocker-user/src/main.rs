//! `blocker`: the controller binary. Sets up logging, parses the command line and hands off to
//! cli/.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr (stdout carries command output), as text or, with
/// `BLOCKER_LOG_FORMAT=json`, one JSON object per line for log shippers. `RUST_LOG` filters
/// (default `info`). Subscriber data never appears in logs: list outcomes are logged by counts
/// and places, packets only as counters.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("BLOCKER_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    // tracing-subscriber also routes `log` records (the `tracing-log` bridge).
    let _ = if json { builder.json().try_init() } else { builder.with_ansi(false).try_init() };
}

fn main() -> ExitCode {
    init_logging();
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::error_text(&e));
            ExitCode::FAILURE
        }
    }
}
