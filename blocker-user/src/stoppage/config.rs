//! Stop-page configuration: what the page says and how the server is bounded.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::StopPageError;

/// The page's two languages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Japanese, the default: the deployment is Japanese ISPs.
    #[default]
    Ja,
    En,
}

impl Language {
    /// The language tag (`Content-Language`, `lang=`).
    pub fn tag(self) -> &'static str {
        match self {
            Language::Ja => "ja",
            Language::En => "en",
        }
    }

    /// The other language (the page links to itself in it).
    pub fn other(self) -> Language {
        match self {
            Language::Ja => Language::En,
            Language::En => Language::Ja,
        }
    }

    /// `ja` or `en`, any case, with or without a region (`ja-JP`); anything else is `None`.
    pub fn from_tag(tag: &str) -> Option<Language> {
        let primary = tag.split('-').next().unwrap_or("");
        if primary.eq_ignore_ascii_case("ja") {
            Some(Language::Ja)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Language::En)
        } else {
            None
        }
    }
}

/// A text in both languages. In configuration either `{ "ja": "…", "en": "…" }` or one string used
/// for both (a proper name, say).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LocalTextRepr")]
pub struct LocalText {
    pub ja: String,
    pub en: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LocalTextRepr {
    Both(LocalTextBoth),
    One(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalTextBoth {
    ja: String,
    en: String,
}

impl From<LocalTextRepr> for LocalText {
    fn from(r: LocalTextRepr) -> Self {
        match r {
            LocalTextRepr::Both(b) => LocalText { ja: b.ja, en: b.en },
            LocalTextRepr::One(s) => LocalText { ja: s.clone(), en: s },
        }
    }
}

impl LocalText {
    pub fn new(ja: impl Into<String>, en: impl Into<String>) -> Self {
        LocalText { ja: ja.into(), en: en.into() }
    }

    /// The same text in both languages.
    pub fn same(text: impl Into<String>) -> Self {
        let s = text.into();
        LocalText { ja: s.clone(), en: s }
    }

    pub fn get(&self, lang: Language) -> &str {
        match lang {
            Language::Ja => &self.ja,
            Language::En => &self.en,
        }
    }
}

/// The body that compiles the list (named on the page and in the `Link` header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListBody {
    /// Its name, e.g. "Internet Content Safety Association" (a single string or `{ja, en}`).
    pub name: LocalText,
    /// Its web page: the page's link (and the 451's `Link: rel="blocked-by"` when no
    /// `operator_url` is given). Must be an absolute
    /// `http://` or `https://` URL in ASCII (percent-encoded, A-labels), without spaces, `<`, `>` or `"`.
    pub url: String,
}

/// Where a user who thinks the block is wrong can turn. At least one of `url` and `email`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppealContact {
    /// Who handles appeals (optional, e.g. the list body's or the ISP's desk).
    #[serde(default)]
    pub name: Option<LocalText>,
    /// An appeal form or page (`http://` or `https://`, same rules as [`ListBody::url`]).
    #[serde(default)]
    pub url: Option<String>,
    /// An e-mail address (shown and linked with `mailto:`).
    #[serde(default)]
    pub email: Option<String>,
}

/// Bounds against slow, huge or numerous requests. Times are in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StopPageLimits {
    /// Time for a whole request head, from accept (first request) or from the request's first byte
    /// (later requests on a kept-alive connection). Default 10 000: browsers send a head in one
    /// segment; ten seconds covers a bad mobile link and still cuts off slowloris.
    pub header_read_timeout_ms: u64,
    /// Time from a request's start until its response is written (a client that does not read its
    /// response is cut off). Default 15 000.
    pub request_timeout_ms: u64,
    /// How long an idle kept-alive connection is kept. 0 disables keep-alive (`Connection: close` on
    /// every response). Default 5 000: enough for the browser's follow-up (favicon) request, short
    /// enough that idle connections do not eat the connection cap.
    pub keep_alive_timeout_ms: u64,
    /// Responses on one connection before it is closed. Default 10.
    pub max_requests_per_connection: u32,
    /// Largest request head (request line and fields), in bytes; larger gets 431. Default 16 384:
    /// the blocked site's cookies come along and can be several KiB, and a user with large cookies
    /// should still see the page. Allowed 1 024 ..= 1 048 576.
    pub max_header_bytes: usize,
    /// Most header fields in a request; more gets 431. Default 64 (browsers send ~20).
    pub max_headers: usize,
    /// Connections served at once; more are closed on accept. Default 512. Keep it well under the
    /// process's file-descriptor limit (`ulimit -n`, often 1 024).
    pub max_connections: usize,
}

impl Default for StopPageLimits {
    fn default() -> Self {
        StopPageLimits {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 15_000,
            keep_alive_timeout_ms: 5_000,
            max_requests_per_connection: 10,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_connections: 512,
        }
    }
}

/// The stop page's configuration. Only `list_body` and `appeal` are required; everything else has a
/// default (see each field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopPageConfig {
    /// Addresses [`bind`](super::bind) listens on. Default `0.0.0.0:80` and `[::]:80` (the IPv6 socket
    /// is IPv6-only, so both bind).
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Bind with `IP_FREEBIND`/`IPV6_FREEBIND`, so a stop-page address can be bound before it is
    /// configured on an interface (or while it is down). Default false: without it a mistyped address
    /// fails at start instead of silently listening on nothing.
    #[serde(default)]
    pub freebind: bool,
    /// The list body: its name and URL.
    pub list_body: ListBody,
    /// The web page of whoever implements the block (the ISP), for the 451's
    /// `Link: <url>; rel="blocked-by"`: RFC 7725 §4 has that link name the implementer, not
    /// the body that mandates the block. Unset: the list body's URL is linked instead (what
    /// earlier versions did).
    #[serde(default)]
    pub operator_url: Option<String>,
    /// Reason shown when the request names no configured list (`?list=`). Default: a neutral
    /// "this site is on a blocking list".
    #[serde(default = "default_reason")]
    pub default_reason: LocalText,
    /// Reason per list id (`?list=<id>`). Ids: 1–64 characters of `A-Z a-z 0-9 . _ -`.
    #[serde(default)]
    pub reasons: BTreeMap<String, LocalText>,
    /// The appeal contact.
    pub appeal: AppealContact,
    /// Language when neither `?lang=` nor `Accept-Language` picks one. Default `ja`.
    #[serde(default)]
    pub default_language: Language,
    /// Server bounds.
    #[serde(default)]
    pub limits: StopPageLimits,
    /// Log each response's client address, method, host and path at `info`. Default false: no
    /// per-subscriber record by default (design.md §3, privacy).
    #[serde(default)]
    pub log_clients: bool,
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, 80)), SocketAddr::from((Ipv6Addr::UNSPECIFIED, 80))]
}

fn default_reason() -> LocalText {
    LocalText::new(
        "このサイトは、ブロッキングの対象となるサイトのリストに掲載されているため、アクセスが制限されています。",
        "This site is on a list of sites to be blocked, so access to it has been restricted.",
    )
}

/// Longest URL accepted in configuration.
const MAX_URL_LEN: usize = 2048;
/// Longest list id.
const MAX_LIST_ID_LEN: usize = 64;

impl StopPageConfig {
    /// A configuration with every default and the two required parts.
    pub fn new(list_body: ListBody, appeal: AppealContact) -> Self {
        StopPageConfig {
            listen: default_listen(),
            freebind: false,
            list_body,
            operator_url: None,
            default_reason: default_reason(),
            reasons: BTreeMap::new(),
            appeal,
            default_language: Language::default(),
            limits: StopPageLimits::default(),
            log_clients: false,
        }
    }

    /// Checks everything [`StopPage::new`](super::StopPage::new) relies on. `listen` may be empty here
    /// (listeners can be passed to `serve` directly); [`bind`](super::bind) refuses an empty list.
    /// The URL of the 451's `Link: rel="blocked-by"`: the operator's, else the list body's.
    pub fn blocked_by_url(&self) -> &str {
        self.operator_url.as_deref().unwrap_or(&self.list_body.url)
    }

    pub fn validate(&self) -> Result<(), StopPageError> {
        let err = |m: String| Err(StopPageError::Config(m));
        check_text("list_body.name", &self.list_body.name)?;
        check_url("list_body.url", &self.list_body.url)?;
        if let Some(url) = &self.operator_url {
            check_url("operator_url", url)?;
        }
        check_text("default_reason", &self.default_reason)?;
        for (id, text) in &self.reasons {
            if !valid_list_id(id) {
                return err(format!(
                    "reasons: list id {id:?} must be 1-{MAX_LIST_ID_LEN} characters of A-Z a-z 0-9 . _ -"
                ));
            }
            check_text(&format!("reasons.{id}"), text)?;
        }
        let a = &self.appeal;
        if a.url.is_none() && a.email.is_none() {
            return err("appeal: give at least one of url and email".into());
        }
        if let Some(name) = &a.name {
            check_text("appeal.name", name)?;
        }
        if let Some(url) = &a.url {
            check_url("appeal.url", url)?;
        }
        if let Some(email) = &a.email {
            check_email(email)?;
        }
        let l = &self.limits;
        for (name, v) in
            [("header_read_timeout_ms", l.header_read_timeout_ms), ("request_timeout_ms", l.request_timeout_ms)]
        {
            if v == 0 {
                return err(format!("limits.{name} must be at least 1"));
            }
        }
        if l.max_requests_per_connection == 0 {
            return err("limits.max_requests_per_connection must be at least 1".into());
        }
        if !(1024..=1024 * 1024).contains(&l.max_header_bytes) {
            return err("limits.max_header_bytes must be 1024..=1048576".into());
        }
        if !(8..=1000).contains(&l.max_headers) {
            return err("limits.max_headers must be 8..=1000".into());
        }
        if l.max_connections == 0 {
            return err("limits.max_connections must be at least 1".into());
        }
        Ok(())
    }
}

pub(crate) fn valid_list_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LIST_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_text(field: &str, t: &LocalText) -> Result<(), StopPageError> {
    for (lang, s) in [("ja", &t.ja), ("en", &t.en)] {
        if s.trim().is_empty() {
            return Err(StopPageError::Config(format!("{field}.{lang} is empty")));
        }
        if s.chars().any(char::is_control) {
            return Err(StopPageError::Config(format!("{field}.{lang} has a control character")));
        }
    }
    Ok(())
}

/// An absolute http(s) URL usable verbatim in a `Link` header and an `href`.
fn check_url(field: &str, url: &str) -> Result<(), StopPageError> {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    let ok = match rest {
        None => false,
        Some(rest) => {
            !rest.is_empty()
                && !rest.starts_with('/')
                && url.len() <= MAX_URL_LEN
                && url.bytes().all(|b| b.is_ascii_graphic() && !b"<>\"\\`{}|^".contains(&b))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(StopPageError::Config(format!(
            "{field} {url:?} must be an absolute http:// or https:// URL of printable ASCII without \
             spaces or any of < > \" \\ ` {{ }} | ^ (at most {MAX_URL_LEN} bytes)"
        )))
    }
}

fn check_email(email: &str) -> Result<(), StopPageError> {
    let ok = email.len() <= 254
        && email.split('@').count() == 2
        && !email.starts_with('@')
        && !email.ends_with('@')
        && email.chars().all(|c| !c.is_control() && !c.is_whitespace() && !"<>\"'(),;:[]\\?&=#%".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StopPageError::Config(format!("appeal.email {email:?} is not a plain e-mail address")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> StopPageConfig {
        StopPageConfig::new(
            ListBody { name: LocalText::same("Body"), url: "https://body.example/".into() },
            AppealContact { email: Some("appeal@body.example".into()), ..Default::default() },
        )
    }

    #[test]
    fn defaults_validate() {
        base().validate().unwrap();
    }

    #[test]
    fn deserialise_minimal_and_full() {
        let c: StopPageConfig = serde_json::from_str(
            r#"{"list_body": {"name": "ICSA", "url": "https://body.example/"},
                "appeal": {"url": "https://body.example/appeal"}}"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.list_body.name.ja, "ICSA");
        assert_eq!(c.limits, StopPageLimits::default());
        assert!(!c.log_clients);
        assert_eq!(c.listen.len(), 2);

        let c: StopPageConfig = serde_json::from_str(
            r#"{"listen": ["127.0.0.1:8080", "[::1]:8080"], "freebind": true,
                "list_body": {"name": {"ja": "協会", "en": "Association"}, "url": "https://body.example/"},
                "reasons": {"csam": {"ja": "理由", "en": "Reason"}},
                "appeal": {"name": "Desk", "email": "a@b.example"},
                "default_language": "en",
                "limits": {"header_read_timeout_ms": 500, "max_connections": 4},
                "log_clients": true}"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.list_body.name.get(Language::Ja), "協会");
        assert_eq!(c.default_language, Language::En);
        assert_eq!(c.limits.header_read_timeout_ms, 500);
        assert_eq!(c.limits.request_timeout_ms, 15_000);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_str::<StopPageConfig>(
                r#"{"list_body": {"name": "x", "url": "https://b.example/"}, "appeal": {"email": "a@b"}, "log_client": true}"#
            )
            .is_err()
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let mut c = base();
        c.list_body.url = "javascript:alert(1)".into();
        assert!(c.validate().is_err());
        c.list_body.url = "https://x.example/a>b".into();
        assert!(c.validate().is_err());
        c.list_body.url = "https://x.example/a b".into();
        assert!(c.validate().is_err());
        c.list_body.url = "https://".into();
        assert!(c.validate().is_err());

        let mut c = base();
        c.appeal = AppealContact::default();
        assert!(c.validate().is_err());
        c.appeal.email = Some("not an address".into());
        assert!(c.validate().is_err());

        let mut c = base();
        c.reasons.insert("bad id".into(), LocalText::same("x"));
        assert!(c.validate().is_err());

        let mut c = base();
        c.limits.max_header_bytes = 10;
        assert!(c.validate().is_err());
    }
}
