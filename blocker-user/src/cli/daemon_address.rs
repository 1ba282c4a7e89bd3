//! Where the client commands find the daemon: its control socket and pin directory, from the
//! flag, else from the configuration file the daemon runs with (`--config`, as in the unit's
//! `blocker run --config /etc/blocker/blocker.toml`), else the defaults.

use std::path::{Path, PathBuf};

use anyhow::Context;
use blocker_user::{config::ControllerConfig, control::DEFAULT_SOCKET, datapath::DEFAULT_PIN_DIR};

fn config(path: Option<&Path>) -> anyhow::Result<Option<ControllerConfig>> {
    path.map(|p| ControllerConfig::load(p).context("reading the daemon's configuration")).transpose()
}

/// `--socket`, else the configuration's `control_socket`, else /run/blocker/control.sock.
pub fn control_socket(socket: Option<&Path>, config_file: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(s) = socket {
        return Ok(s.to_path_buf());
    }
    Ok(config(config_file)?.and_then(|c| c.control_socket).unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)))
}

/// `--pin-dir`, else the configuration's `[datapath] pin_dir`, else /sys/fs/bpf/blocker.
pub fn pin_dir(pin_dir: Option<&Path>, config_file: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = pin_dir {
        return Ok(d.to_path_buf());
    }
    Ok(config(config_file)?.and_then(|c| c.datapath).and_then(|d| d.pin_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_DIR)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("blocker-daemon-address-{}-{name}.toml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_flag_wins_then_the_configuration_then_the_default() {
        let c = write("both", "control_socket = \"/run/other/control.sock\"\n[datapath]\npin_dir = \"/sys/fs/bpf/other\"\n");
        let flag = Path::new("/tmp/flag.sock");
        assert_eq!(control_socket(Some(flag), Some(&c)).unwrap(), flag);
        assert_eq!(control_socket(None, Some(&c)).unwrap(), Path::new("/run/other/control.sock"));
        assert_eq!(control_socket(None, None).unwrap(), Path::new(DEFAULT_SOCKET));
        assert_eq!(pin_dir(Some(Path::new("/sys/fs/bpf/x")), Some(&c)).unwrap(), Path::new("/sys/fs/bpf/x"));
        assert_eq!(pin_dir(None, Some(&c)).unwrap(), Path::new("/sys/fs/bpf/other"));
        assert_eq!(pin_dir(None, None).unwrap(), Path::new(DEFAULT_PIN_DIR));
        let _ = std::fs::remove_file(c);
    }

    #[test]
    fn a_configuration_without_them_gives_the_defaults() {
        let c = write("neither", "state_dir = \"/var/lib/blocker\"\n");
        assert_eq!(control_socket(None, Some(&c)).unwrap(), Path::new(DEFAULT_SOCKET));
        assert_eq!(pin_dir(None, Some(&c)).unwrap(), Path::new(DEFAULT_PIN_DIR));
        let _ = std::fs::remove_file(c);
    }

    #[test]
    fn a_configuration_that_does_not_load_is_an_error_naming_it() {
        let missing = Path::new("/nonexistent/blocker.toml");
        let e = format!("{:#}", control_socket(None, Some(missing)).unwrap_err());
        assert!(e.contains("/nonexistent/blocker.toml"), "{e}");
        let bad = write("bad", "control_socket = 7\n");
        let e = format!("{:#}", pin_dir(None, Some(&bad)).unwrap_err());
        assert!(e.contains(&*bad.to_string_lossy()), "{e}");
        let _ = std::fs::remove_file(bad);
    }
}
