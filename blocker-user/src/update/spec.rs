//! What the controller needs to know about each list, resolved from the configuration once:
//! where it comes from, how it is written, whether it must be signed, how it applies.

use std::{path::PathBuf, time::Duration};

use crate::{
    config::ControllerConfig,
    lists::{
        FetchLimits, Format, Guards, ListError, ListInfo, ListKind, ParseOptions, Protected, SignatureError, Source, TrustedKey,
        DEFAULT_MAX_CHANGE_RATIO, signature_source,
    },
};

/// One list as the controller pulls and applies it.
#[derive(Clone, Debug)]
pub struct ListSpec {
    pub name: String,
    pub source: Source,
    /// Where its detached signature is, when updates must be signed.
    pub signature: Option<Source>,
    pub format: Format,
    pub options: ParseOptions,
    pub shadow: bool,
    pub poll: Option<Duration>,
    pub limits: FetchLimits,
}

impl ListSpec {
    /// An unsigned local text file given on the command line (`--list`, `--allow`).
    pub fn from_file(path: PathBuf, kind: ListKind) -> ListSpec {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        ListSpec {
            name,
            format: Format::from_name(&path.to_string_lossy()),
            source: Source::File(path),
            signature: None,
            options: ParseOptions::new(kind),
            shadow: false,
            poll: None,
            limits: FetchLimits::default(),
        }
    }

    pub fn info(&self) -> ListInfo {
        ListInfo { name: self.name.clone(), source: self.source.to_string(), shadow: self.shadow }
    }

    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
    }
}

/// Everything list operations need from the configuration, with files (key, protected
/// entries) read.
#[derive(Clone, Default)]
pub struct Settings {
    pub specs: Vec<ListSpec>,
    pub key: Option<TrustedKey>,
    pub guards: Guards,
    /// How long after an update a rollback is one switch back to the generation before (None:
    /// until the next update). The kernel keeps that generation until the next install either
    /// way.
    pub rollback_window: Option<Duration>,
}

/// `rollback_window` when the configuration does not say: long enough for an operator to see
/// a bad update in the hit counters and undo it in one step; after it, a rollback installs the
/// previous generation again (writing what differs into the slot that still holds it).
pub const DEFAULT_ROLLBACK_WINDOW: Duration = Duration::from_secs(3600);

/// The message says the cause; it is not also a `source()`, which anyhow's `{:#}` would print
/// again.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("[signing]: {0}")]
    Key(SignatureError),
    #[error("[guards] protected: {0}")]
    Protected(ListError),
    #[error("{0}")]
    Lists(String),
}

impl From<SignatureError> for SettingsError {
    fn from(e: SignatureError) -> Self {
        SettingsError::Key(e)
    }
}

impl From<ListError> for SettingsError {
    fn from(e: ListError) -> Self {
        SettingsError::Protected(e)
    }
}

impl Settings {
    pub fn from_config(c: &ControllerConfig) -> Result<Settings, SettingsError> {
        let key = match &c.signing {
            Some(s) => match (&s.public_key, &s.public_key_file) {
                (Some(k), _) => Some(TrustedKey::parse(k)?),
                (None, Some(path)) => Some(TrustedKey::load(path)?),
                (None, None) => None,
            },
            None => None,
        };
        let mut guards = Guards::default();
        if let Some(g) = &c.guards {
            guards.max_change_ratio = g.max_change_ratio.unwrap_or(DEFAULT_MAX_CHANGE_RATIO);
            let inline = g.protected.join("\n");
            guards.protected = Protected::parse(std::path::Path::new("[guards] protected"), &inline)?;
            if let Some(path) = &g.protected_file {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| SettingsError::Protected(ListError::Io { path: path.clone(), error }))?;
                guards.protected.extend(Protected::parse(path, &text)?);
            }
        }
        let have_key = key.is_some();
        let specs = c
            .lists
            .iter()
            .map(|l| {
                let source = l.source();
                let signature = l.requires_signature(have_key).then(|| signature_source(&source, l.signature.as_deref()));
                let mut limits = FetchLimits::default();
                if let Some(b) = l.max_bytes {
                    limits.max_bytes = b;
                }
                if let Some(t) = l.timeout {
                    limits.timeout = t.0;
                }
                ListSpec {
                    name: l.name.clone(),
                    format: l.format(),
                    options: ParseOptions { kind: l.action, subdomains: l.subdomains },
                    shadow: l.shadow,
                    poll: l.poll(),
                    signature,
                    source,
                    limits,
                }
            })
            .collect();
        let rollback_window = c.rollback_window.map_or(Some(DEFAULT_ROLLBACK_WINDOW), |w| w.duration());
        Ok(Settings { specs, key, guards, rollback_window })
    }

    /// Adds command-line list files after the configured lists.
    pub fn add_files(&mut self, block: &[PathBuf], allow: &[PathBuf]) -> Result<(), SettingsError> {
        let files = block.iter().map(|p| (p, ListKind::Block)).chain(allow.iter().map(|p| (p, ListKind::Allow)));
        for (p, kind) in files {
            let spec = ListSpec::from_file(p.clone(), kind);
            if self.specs.iter().any(|s| s.name == spec.name) {
                return Err(SettingsError::Lists(format!(
                    "{}: a list named {:?} is already configured; rename the file",
                    p.display(),
                    spec.name
                )));
            }
            self.specs.push(spec);
        }
        Ok(())
    }

    pub fn spec(&self, name: &str) -> Option<&ListSpec> {
        self.specs.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn settings(toml: &str) -> Result<Settings, SettingsError> {
        Settings::from_config(&ControllerConfig::parse(Path::new("test.toml"), toml).unwrap())
    }

    /// A key or protected file that cannot be read says so, and why, once: the cause is in the
    /// message, not also chained (anyhow's `{:#}` prints both).
    #[test]
    fn an_unreadable_key_or_protected_file_says_why_once_however_it_is_printed() {
        let cases = [
            ("[signing]\npublic_key_file = \"/nonexistent.invalid/list.pub\"\n", "[signing]: cannot read the minisign public key file /nonexistent.invalid/list.pub: "),
            ("[guards]\nprotected_file = \"/nonexistent.invalid/protected.list\"\n", "[guards] protected: /nonexistent.invalid/protected.list: cannot read: "),
        ];
        for (toml, starts) in cases {
            let Err(e) = settings(toml) else { panic!("{toml}: loaded") };
            let chained = format!("{:#}", anyhow::Error::new(e));
            assert!(chained.starts_with(starts), "{chained}");
            assert_eq!(chained.matches("No such file or directory").count(), 1, "{chained}");
        }
    }
}
