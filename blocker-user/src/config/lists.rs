//! The list-operation keys of the configuration file: the lists and where they come from,
//! the signing key, the guards and the state directory.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::lists::{Format, ListKind, Source};

/// `[[list]]`: one block (or allow) list.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// Names the list in logs, metrics, the CLI and the state directory (letters, digits,
    /// `-`, `_`, `.`; at most 64).
    pub name: String,
    /// A file path or an `http://`/`https://` URL.
    pub source: String,
    /// `text`, `csv` or `json`; by default from the source's extension (anything but `.csv`
    /// and `.json` is text).
    #[serde(default)]
    pub format: Option<Format>,
    /// What entries without an action of their own do: `block` (default) or `allow`.
    #[serde(default = "default_action")]
    pub action: ListKind,
    /// Whether a bare name (`example.com`) covers its subdomains too (default true).
    #[serde(default = "yes")]
    pub subdomains: bool,
    /// Count what the list would block, without blocking.
    #[serde(default)]
    pub shadow: bool,
    /// How often to pull the list (`90s`, `15m`, `6h`). Default: 15m for URLs; files are
    /// re-read on `blocker lists reload` and SIGHUP only, unless set.
    #[serde(default)]
    pub poll_interval: Option<Interval>,
    /// Where the detached minisign signature is (default: the source with `.minisig` added).
    #[serde(default)]
    pub signature: Option<String>,
    /// Whether updates must be signed. Default: yes when `[signing]` has a key. A URL list
    /// without a key must say `signed = false` explicitly.
    #[serde(default)]
    pub signed: Option<bool>,
    /// The largest list body accepted, in bytes (default 256 MiB).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// How long one pull may take (default 60s).
    #[serde(default)]
    pub timeout: Option<Interval>,
}

fn default_action() -> ListKind {
    ListKind::Block
}

fn yes() -> bool {
    true
}

/// `[signing]`: the key list updates must be signed with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// The minisign public key (`RWQ…`).
    #[serde(default)]
    pub public_key: Option<String>,
    /// Or a minisign `.pub` file.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

/// `[guards]`: updates that are refused unless forced.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardsConfig {
    /// Largest share of a list's entries one update may add plus remove (default 0.25).
    #[serde(default)]
    pub max_change_ratio: Option<f64>,
    /// Names and addresses no update may block, in list syntax (`google.com` with its
    /// subdomains, `=name` the name only, `192.0.2.0/24`).
    #[serde(default)]
    pub protected: Vec<String>,
    /// More protected entries, one per line in the text list format.
    #[serde(default)]
    pub protected_file: Option<PathBuf>,
}

/// How long after an update a rollback is one switch back to the generation before:
/// `"forever"` (until the next update), or a duration (`"1h"`, `"15m"`, seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollbackWindow {
    Forever,
    For(Duration),
}

impl<'de> Deserialize<'de> for RollbackWindow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(RollbackWindow::For(Duration::from_secs(s))),
            Raw::Text(t) if t.trim() == "forever" => Ok(RollbackWindow::Forever),
            Raw::Text(t) => parse_interval(&t).map(RollbackWindow::For).map_err(|e| serde::de::Error::custom(format!("{e}, or \"forever\""))),
        }
    }
}

impl RollbackWindow {
    /// The window as the manager takes it: None keeps a rollback one switch until the next
    /// update.
    pub fn duration(self) -> Option<Duration> {
        match self {
            RollbackWindow::Forever => None,
            RollbackWindow::For(d) => Some(d),
        }
    }
}

/// A duration written as `30s`, `15m`, `6h`, `1d` or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Interval(Duration::from_secs(s))),
            Raw::Text(t) => parse_interval(&t).map(Interval).map_err(serde::de::Error::custom),
        }
    }
}

pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a duration (write 30s, 15m, 6h or 1d)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        other => return Err(format!("unknown unit {other:?} in {text:?} (use s, m, h or d)")),
    };
    Ok(Duration::from_secs(secs))
}

/// Shortest poll interval accepted: list bodies publish a few times a day, and a tighter loop
/// only loads their servers.
pub const MIN_POLL: Duration = Duration::from_secs(10);
pub const DEFAULT_URL_POLL: Duration = Duration::from_secs(15 * 60);

impl ListConfig {
    pub fn source(&self) -> Source {
        Source::parse(&self.source)
    }

    pub fn format(&self) -> Format {
        self.format.unwrap_or_else(|| Format::from_name(&self.source))
    }

    /// How often to pull, if at all.
    pub fn poll(&self) -> Option<Duration> {
        match (self.poll_interval, self.source()) {
            (Some(i), _) => Some(i.0),
            (None, Source::Url(_)) => Some(DEFAULT_URL_POLL),
            (None, Source::File(_)) => None,
        }
    }

    /// Whether updates must carry a good signature, given whether a key is configured.
    pub fn requires_signature(&self, have_key: bool) -> bool {
        self.signed.unwrap_or(have_key)
    }

    /// What is wrong with this list's settings, if anything.
    pub(super) fn check(&self, have_key: bool) -> Result<(), String> {
        let n = &self.name;
        let valid_name = !n.is_empty()
            && n.len() <= 64
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !n.starts_with('.');
        if !valid_name {
            return Err(format!("[[list]] name {n:?}: use 1-64 letters, digits, '-', '_' or '.' (not starting with '.')"));
        }
        if self.source.trim().is_empty() {
            return Err(format!("list {n}: source is empty"));
        }
        if self.shadow && self.action == ListKind::Allow {
            return Err(format!("list {n}: shadow mode counts what a list would block; an allow list cannot be in shadow mode"));
        }
        if let Some(scheme) = Source::unsupported_scheme(&self.source) {
            return Err(format!("list {n}: source {:?}: {scheme}:// is not supported; lists are pulled over https://, http:// or read from a file", self.source));
        }
        if self.signed == Some(true) && !have_key {
            return Err(format!("list {n}: signed = true needs a key in [signing] (public_key or public_key_file)"));
        }
        if matches!(self.source(), Source::Url(_)) && self.signed.is_none() && !have_key {
            return Err(format!(
                "list {n}: pulled from a URL without a signing key: add [signing] public_key, or say signed = false to accept unsigned updates"
            ));
        }
        if let Some(p) = self.poll_interval {
            if p.0 < MIN_POLL {
                return Err(format!("list {n}: poll_interval {}s is shorter than the minimum {}s", p.0.as_secs(), MIN_POLL.as_secs()));
            }
        }
        if self.max_bytes == Some(0) {
            return Err(format!("list {n}: max_bytes must be above 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_take_a_unit_or_plain_seconds() {
        assert_eq!(parse_interval("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_interval("6h").unwrap(), Duration::from_secs(21600));
        assert_eq!(parse_interval("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_interval("45").unwrap(), Duration::from_secs(45));
        assert!(parse_interval("soon").unwrap_err().contains("not a duration"));
        assert!(parse_interval("5y").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn a_source_in_a_scheme_the_puller_does_not_speak_is_refused_by_name() {
        let text = "[[list]]\nname = \"a\"\nsource = \"ftp://lists.example/a.list\"\nsigned = false\n";
        let e = crate::config::ControllerConfig::parse(std::path::Path::new("b.toml"), text).unwrap_err().to_string();
        assert!(e.contains("ftp:// is not supported"), "{e}");
    }
}
