//! The controller's configuration file (TOML). Today it configures how blocked HTTP is answered
//! and the stop-page service; `blocker.example.toml` at the top of the repository documents every
//! key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{datapath::StopPageResponse, stoppage::StopPageConfig};

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// How the data plane answers blocked plain-HTTP requests.
    #[serde(default)]
    pub http: Option<HttpSection>,
    /// The stop-page service the 451 response sends browsers to.
    #[serde(default)]
    pub stop_page: Option<StopPageConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// The stop-page service as subscribers reach it, e.g. `http://192.0.2.1`. Blocked HTTP
    /// requests get a 451 that sends the browser there.
    pub stop_page_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}", path = path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}", path = path.display())]
    Invalid { path: PathBuf, message: String },
}

impl ControllerConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.to_path_buf(), message };
        let c: ControllerConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if let Some(sp) = &c.stop_page {
            sp.validate().map_err(|e| invalid(format!("[stop_page]: {e}")))?;
        }
        if let Some(resp) = c.stop_page_response() {
            resp.render().map_err(|e| invalid(format!("[http]: {e}")))?;
        }
        if c.http.is_some() && c.stop_page.is_none() {
            return Err(invalid("[http] stop_page_url needs a [stop_page] section (the list body named in the 451)".into()));
        }
        Ok(c)
    }

    /// What the data plane answers blocked HTTP with, when configured.
    pub fn stop_page_response(&self) -> Option<StopPageResponse> {
        let http = self.http.as_ref()?;
        let sp = self.stop_page.as_ref()?;
        Some(StopPageResponse { service_url: http.stop_page_url.clone(), list_body_url: sp.list_body.url.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_valid() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../blocker.example.toml"));
        let c = ControllerConfig::load(path).unwrap();
        let r = c.stop_page_response().unwrap();
        assert_eq!(r.service_url, "http://192.0.2.1");
        assert!(c.stop_page.unwrap().listen.len() >= 1);
    }

    #[test]
    fn an_empty_file_configures_nothing() {
        assert_eq!(ControllerConfig::parse(Path::new("x"), "").unwrap(), ControllerConfig::default());
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let e = ControllerConfig::parse(Path::new("b.toml"), "[http]\nstop_page_url = \"http://192.0.2.1\"\n").unwrap_err();
        assert!(e.to_string().starts_with("b.toml: "), "{e}");
        assert!(e.to_string().contains("[stop_page]"), "{e}");
        let e = ControllerConfig::parse(Path::new("b.toml"), "[htp]\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
