//! Prometheus metrics of the controller (issue 6): packets and bytes by reason and action, list
//! entries, hits and update results, the generation, map fill, attach mode, bypass and the flow
//! table, on a configurable address. Aggregates only: no label ever carries an address, a
//! listed name or anything about a subscriber (list names are the only configured label values).
//!
//! # Using it
//!
//! ```no_run
//! use std::sync::Arc;
//! use blocker_user::metrics::{MetricsServer, Snapshot};
//!
//! let source = Arc::new(|| Snapshot { generation: 7, ..Snapshot::default() });
//! let server = MetricsServer::start("127.0.0.1:9464".parse().unwrap(), source)?;
//! println!("scrape http://{}/metrics", server.local_addr());
//! // ... dropping `server` stops it.
//! # Ok::<(), blocker_user::metrics::MetricsError>(())
//! ```
//!
//! # What the daemon fills, per scrape
//!
//! | field | from |
//! |---|---|
//! | `counters` | [`CounterCell::from_counters`]`(&datapath.counters()?)` |
//! | `lists` | [`ListMetrics::from_view`]`(&daemon.view(), &`[`hits_by_list`]`(&daemon.live(), &datapath.entry_hits()?))` |
//! | `generation`, `generation_installed_unix` | `ListsView::generation`, `ListsView::installed_at` |
//! | `maps` | [`MapFill::from_list_set`]`(&daemon.live())` (list maps against one generation's share), plus any other map the daemon counts |
//! | `attach_mode` | `Some(attachment.mode.name().into())`, None when not attached |
//! | `bypass` | the bypass switch as last set |
//! | `flows` | `FLOWS` entries (or the sum of the `FLOW_FILTER` bucket counts) and its capacity (32 768) |
//! | `update_results` | [`UpdateTally::counts`] of a tally the daemon keeps: `record_report` after every update (pulls, reloads, restore), `record(list, "rolled_back")` for each list after a rollback |
//! | `build_version`, `process` | leave the defaults: the crate version, and `/proc/self` read by the server |
//!
//! # The endpoint
//!
//! `GET /metrics` (and `HEAD`): `200`, `text/plain; version=0.0.4`. `GET /`: a pointer page.
//! Other paths `404`, other methods `405`. One request per connection (`Connection: close`);
//! the request head must arrive within 5 s and fit 8 KiB (`431` beyond); at most 8 connections
//! are served at once, and more wait, unaccepted, in the listen backlog until one ends. Each
//! scrape calls the source once, on the connection's own thread, so a slow client never delays
//! another scrape. Nothing is logged per request.

mod render;
mod server;
mod snapshot;

pub use render::{CONTENT_TYPE, METRICS, render};
pub use server::{MetricsError, MetricsLimits, MetricsServer, SnapshotSource};
pub use snapshot::{
    ATTACH_MODES, CounterCell, FlowPressure, LIST_RESULTS, ListMetrics, MAX_LIST_LABEL, MapFill, ProcessStats,
    QUIC_EVENTS, QuicMetrics, Snapshot, UpdateCount, UpdateTally, action_names, attach_label, hits_by_list, list_label, reason_names,
    result_label,
};
