//! The controller's configuration file (TOML): the lists and how they are pulled, verified and
//! guarded (lists.rs), the state directory, how blocked HTTP is answered and the stop-page
//! service. `blocker.example.toml` at the top of the repository documents every key.

mod lists;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use serde::Deserialize;

pub use lists::{DEFAULT_URL_POLL, GuardsConfig, Interval, ListConfig, MIN_POLL, RollbackWindow, SigningConfig, parse_interval};

use crate::{datapath::StopPageResponse, stoppage::StopPageConfig};

/// Where the controller keeps the last good lists and its hash key, unless configured.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/blocker";

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// The lists to enforce (`[[list]]`), in order: ids and precedence follow it.
    #[serde(default, rename = "list")]
    pub lists: Vec<ListConfig>,
    /// The key list updates are signed with.
    #[serde(default)]
    pub signing: Option<SigningConfig>,
    /// Updates refused unless forced.
    #[serde(default)]
    pub guards: Option<GuardsConfig>,
    /// The last good lists, the previous generation and the name-hash key live here (root
    /// only). Default /var/lib/blocker.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// How long after an update a rollback is one switch back to the generation before, which
    /// the kernel holds beside the live one (the two share their map elements, so it costs only
    /// the entries the update removed); after it, a rollback installs that generation again
    /// from the lists the daemon keeps (on disk in the state directory). Default one hour.
    #[serde(default)]
    pub rollback_window: Option<RollbackWindow>,
    /// The control socket the CLI talks to (default /run/blocker/control.sock).
    #[serde(default)]
    pub control_socket: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://<addr>/metrics` (e.g. "127.0.0.1:9464"); off when
    /// absent. Aggregate only: no subscriber, address or name labels.
    #[serde(default)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Where the data plane attaches and how.
    #[serde(default)]
    pub datapath: Option<DatapathSection>,
    /// How the data plane answers blocked plain-HTTP requests.
    #[serde(default)]
    pub http: Option<HttpSection>,
    /// The stop-page service the 451 response sends browsers to.
    #[serde(default)]
    pub stop_page: Option<StopPageConfig>,
}

/// `[datapath]`: interfaces, run mode, pinning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatapathSection {
    /// The subscriber-facing interface: XDP judges what it receives.
    #[serde(default)]
    pub subscriber: Option<String>,
    /// Inline (bump-in-the-wire) mode: the upstream port. Allowed frames are forwarded between
    /// it and `subscriber`; without it, router mode (allowed packets go to the kernel).
    #[serde(default)]
    pub internet: Option<String>,
    /// Router mode, opt-in: the egress ports the program forwards allowed frames to itself
    /// (FIB lookup and redirect in XDP), e.g. `["ens1f1"]`. Those frames skip this host's
    /// netfilter, tc and rp_filter: only for a router with no policy on that path.
    #[serde(default)]
    pub xdp_forward: Vec<String>,
    /// With `xdp_forward`: reuse the FIB's answers per CPU until the kernel reports a routing
    /// change, for at most a second (default: on). `false`: every forwarded frame asks the FIB.
    #[serde(default)]
    pub xdp_forward_route_cache: Option<bool>,
    /// Use generic (skb) XDP even where the driver has native XDP.
    #[serde(default)]
    pub skb_mode: bool,
    /// Drop blocked TCP silently instead of answering with a reset.
    #[serde(default)]
    pub drop_tcp: bool,
    /// Judge QUIC (HTTP/3) flows by the server name of their client Initials (default: on).
    /// `quic = false`: UDP to port 443 is judged by address only.
    #[serde(default)]
    pub quic: Option<bool>,
    /// Where program, link and maps are pinned so blocking outlives the daemon (default
    /// /sys/fs/bpf/blocker).
    #[serde(default)]
    pub pin_dir: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// The stop-page service as subscribers reach it, e.g. `http://192.0.2.1`. Blocked HTTP
    /// requests get a 451 that sends the browser there.
    pub stop_page_url: String,
}

/// The io error is in `Io`'s message, not also its `source()` (anyhow's `{:#}` would print it
/// twice).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {error}", path = path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {message}", path = path.display())]
    Invalid { path: PathBuf, message: String },
}

impl ControllerConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io { path: path.to_path_buf(), error })?;
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
        if let Some(d) = &c.datapath {
            if d.internet.is_some() && d.internet == d.subscriber {
                return Err(invalid("[datapath]: internet and subscriber must be two different ports".into()));
            }
            if d.internet.is_some() && !d.xdp_forward.is_empty() {
                return Err(invalid("[datapath]: xdp_forward is router mode's; inline mode (internet) forwards from port to port already".into()));
            }
            if d.xdp_forward.iter().any(|p| p.trim().is_empty()) {
                return Err(invalid("[datapath]: xdp_forward has an empty port name".into()));
            }
            if d.xdp_forward_route_cache.is_some() && d.xdp_forward.is_empty() {
                return Err(invalid("[datapath]: xdp_forward_route_cache is about XDP forwarding; it needs xdp_forward (the egress ports)".into()));
            }
        }
        let have_key = c.signing.as_ref().is_some_and(|s| s.public_key.is_some() || s.public_key_file.is_some());
        if let Some(s) = &c.signing {
            if s.public_key.is_some() && s.public_key_file.is_some() {
                return Err(invalid("[signing]: give public_key or public_key_file, not both".into()));
            }
        }
        let mut names = HashSet::new();
        for l in &c.lists {
            l.check(have_key).map_err(invalid)?;
            if !names.insert(l.name.as_str()) {
                return Err(invalid(format!("two lists are named {:?}: list names must be unique", l.name)));
            }
        }
        if let Some(r) = c.guards.as_ref().and_then(|g| g.max_change_ratio) {
            if !(r > 0.0 && r.is_finite()) {
                return Err(invalid(format!("[guards] max_change_ratio {r} must be above 0 (0.25: a quarter of a list)")));
            }
        }
        Ok(c)
    }

    /// Whether a signing key is configured.
    pub fn has_signing_key(&self) -> bool {
        self.signing.as_ref().is_some_and(|s| s.public_key.is_some() || s.public_key_file.is_some())
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }

    /// What the data plane answers blocked HTTP with, when configured.
    pub fn stop_page_response(&self) -> Option<StopPageResponse> {
        let http = self.http.as_ref()?;
        let sp = self.stop_page.as_ref()?;
        Some(StopPageResponse { service_url: http.stop_page_url.clone(), blocked_by_url: sp.blocked_by_url().to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_configuration_says_why_once_however_it_is_printed() {
        let e = ControllerConfig::load(Path::new("/nonexistent.invalid/blocker.toml")).unwrap_err();
        let chained = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(chained.matches("No such file or directory").count(), 1, "{chained}");
        assert!(chained.starts_with("/nonexistent.invalid/blocker.toml: cannot read: "), "{chained}");
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../blocker.example.toml"));
        let c = ControllerConfig::load(path).unwrap();
        let r = c.stop_page_response().unwrap();
        assert_eq!(r.service_url, "http://192.0.2.1");
        assert!(c.stop_page.as_ref().unwrap().listen.len() >= 1);
        let names: Vec<&str> = c.lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["csam-national", "trial", "exceptions"]);
        let s = crate::update::Settings::from_config(&c).expect("the example's key and guards load");
        assert!(s.specs[0].is_signed() && !s.specs[1].is_signed());
        assert!(s.specs[1].shadow);
        assert_eq!(s.specs[0].format, crate::lists::Format::Csv);
        assert_eq!(s.specs[0].poll, Some(std::time::Duration::from_secs(900)));
        assert_eq!(s.guards.protected.len(), 4);
    }

    #[test]
    fn xdp_forwarding_is_a_list_of_router_mode_egress_ports() {
        let parse = |text: &str| ControllerConfig::parse(Path::new("b.toml"), text);
        let c = parse("[datapath]\nsubscriber = \"sub0\"\nxdp_forward = [\"up0\", \"up1\"]\n").unwrap();
        assert_eq!(c.datapath.unwrap().xdp_forward, vec!["up0", "up1"]);
        assert!(parse("[datapath]\nsubscriber = \"sub0\"\n").unwrap().datapath.unwrap().xdp_forward.is_empty());
        let off = parse("[datapath]\nxdp_forward = [\"up0\"]\nxdp_forward_route_cache = false\n").unwrap();
        assert_eq!(off.datapath.unwrap().xdp_forward_route_cache, Some(false));
        let inline = parse("[datapath]\nsubscriber = \"sub0\"\ninternet = \"up0\"\nxdp_forward = [\"up0\"]\n").unwrap_err().to_string();
        assert!(inline.contains("xdp_forward is router mode's"), "{inline}");
        let alone = parse("[datapath]\nxdp_forward_route_cache = false\n").unwrap_err().to_string();
        assert!(alone.contains("needs xdp_forward"), "{alone}");
        let empty = parse("[datapath]\nxdp_forward = [\"\"]\n").unwrap_err().to_string();
        assert!(empty.contains("empty port name"), "{empty}");
    }

    #[test]
    fn list_settings_that_cannot_work_are_refused_with_the_list_named() {
        let err = |text: &str| ControllerConfig::parse(Path::new("b.toml"), text).unwrap_err().to_string();
        let url = "[[list]]\nname = \"l\"\nsource = \"https://x.example/l.txt\"\n";
        assert!(err(url).contains("list l: pulled from a URL without a signing key"), "{}", err(url));
        assert!(err("[[list]]\nname = \"a b\"\nsource = \"x\"\n").contains("name \"a b\""));
        let two = "[[list]]\nname = \"l\"\nsource = \"x\"\n[[list]]\nname = \"l\"\nsource = \"y\"\n";
        assert!(err(two).contains("two lists are named \"l\""));
        let shadow_allow = "[[list]]\nname = \"l\"\nsource = \"x\"\naction = \"allow\"\nshadow = true\n";
        assert!(err(shadow_allow).contains("cannot be in shadow mode"));
        assert!(err("[[list]]\nname = \"l\"\nsource = \"x\"\npoll_interval = \"2s\"\n").contains("shorter than the minimum"));
        assert!(err("[[list]]\nname = \"l\"\nsource = \"x\"\nsigned = true\n").contains("needs a key in [signing]"));
        assert!(err("[guards]\nmax_change_ratio = 0\n").contains("must be above 0"));
        assert!(err("[datapath]\nsubscriber = \"eth1\"\ninternet = \"eth1\"\n").contains("two different ports"));
        let unsigned_url = format!("{url}signed = false\n");
        assert!(ControllerConfig::parse(Path::new("b.toml"), &unsigned_url).is_ok());
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

    #[test]
    fn the_data_plane_451_links_the_operator_when_the_stop_page_names_one() {
        let base = "[http]\nstop_page_url = \"http://192.0.2.1\"\n\
                    [stop_page]\nlisten = []\n\
                    [stop_page.list_body]\nname = \"List body\"\nurl = \"https://list-body.example/\"\n\
                    [stop_page.appeal]\nemail = \"appeal@isp.example\"\n";
        let link = |text: &str| ControllerConfig::parse(Path::new("b.toml"), text).unwrap().stop_page_response().unwrap().blocked_by_url;
        assert_eq!(link(base), "https://list-body.example/");
        let with_operator = base.replace("[stop_page]\n", "[stop_page]\noperator_url = \"https://isp.example/\"\n");
        assert_eq!(link(&with_operator), "https://isp.example/");
    }
}
