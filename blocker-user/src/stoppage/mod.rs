//! The stop page: the small HTTP/1.1 server that blocked plain-HTTP flows are sent to (design.md §3,
//! issue 4). Every `GET` or `HEAD`, on any path, gets `451 Unavailable For Legal Reasons` with
//! `Link: <list body URL>; rel="blocked-by"` (RFC 7725) and a self-contained HTML page in Japanese or
//! English that says the site is blocked, why, by whose list, and where to appeal.
//!
//! # Using it
//!
//! ```no_run
//! # async fn run(config: blocker_user::stoppage::StopPageConfig) -> Result<(), blocker_user::stoppage::StopPageError> {
//! use std::sync::Arc;
//! use blocker_user::stoppage::{StopPage, bind};
//!
//! let config = Arc::new(config);
//! let listeners = bind(&config)?; // inside a tokio runtime
//! let page = StopPage::new(config)?;
//! let stats = page.stats(); // atomic counters, for metrics
//! page.serve(listeners, async { /* e.g. a signal */ }).await
//! # }
//! ```
//!
//! # Request handling
//!
//! - `GET`/`HEAD`: 451 page (`HEAD`: same headers, no body). Query parameters read: `lang` (`ja`/`en`,
//!   overrides `Accept-Language`), `list` (a configured list id: picks the reason text; anything else
//!   means the default reason), `host` (the blocked host to show, for a redirect that lost the original
//!   `Host`). Nothing else in the request is reflected.
//! - The host shown is `?host=`, else the authority of an absolute-form request target, else `Host`;
//!   control and invisible/bidi formatting characters removed, cut to 253 characters, HTML-escaped.
//! - Language: `?lang=`, else `Accept-Language` with q-values (see [`negotiate_language`]), else the
//!   configured default (Japanese: the deployment is Japanese ISPs).
//! - Other methods: 405 with `Allow: GET, HEAD`, and the connection is closed (a request body is never
//!   read).
//!
//! # Bounds (see [`StopPageLimits`])
//!
//! - A request head must arrive within `header_read_timeout_ms` of the connection's accept (first
//!   request) or of its first byte (later requests): slowloris clients are cut off and counted in
//!   `timeouts`. A response must be written within `request_timeout_ms` of the request's start (a
//!   client that does not read is cut off, also counted). An idle kept-alive connection is closed after
//!   `keep_alive_timeout_ms`, and any connection after `max_requests_per_connection` responses. A
//!   connection that never sends a byte is closed at the header deadline but not counted (browsers
//!   open spare connections). A per-connection watchdog enforces all of these; hyper's own timer is
//!   not used.
//! - Heads larger than `max_header_bytes` or with more than `max_headers` fields get 431 and the
//!   connection is closed (`rejected_oversize`); malformed heads get 400, or a plain close for an
//!   HTTP/2 preface (`bad_requests`).
//! - At most `max_connections` connections are served at once. A connection over the cap is accepted
//!   and closed at once, without a response (`rejected_busy`): queueing it would hold a descriptor and
//!   memory for a page that can simply be retried, and a flood must not grow state.
//! - Request bodies are never read by the handler: the response goes out at once. hyper then takes at
//!   most one further read (bounded by its buffer) to discard the body; a body still incomplete after
//!   that closes the connection. A 405 always closes it.
//!
//! # Privacy
//!
//! Nothing about a client (address, host, path) is logged unless `log_clients` is set; then each
//! response is logged at `info` with the `log` crate.

mod config;
mod lang;
mod page;
mod server;

pub use config::{AppealContact, Language, ListBody, LocalText, StopPageConfig, StopPageLimits};
pub use lang::negotiate_language;
pub use page::{MAX_HOST_CHARS, escape_html, sanitize_host};
pub use server::{StopPage, StopPageStats, StopPageStatsSnapshot, bind, serve};

use std::net::SocketAddr;

/// What can go wrong starting the stop page. Once serving, per-connection problems are counted in
/// [`StopPageStats`], never returned.
#[derive(Debug, thiserror::Error)]
pub enum StopPageError {
    /// The configuration is unusable (the message names the field).
    #[error("stop page configuration: {0}")]
    Config(String),
    /// A configured listen address could not be bound.
    #[error("stop page: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// `serve` was given no listener.
    #[error("stop page: no listener to serve on")]
    NoListeners,
}
