//! The control socket: a Unix socket, root only, through which the CLI talks to the running
//! daemon. One request per connection, as one line of JSON; one response, as one line of JSON
//! carrying both the data (`--json`) and its rendering for people.

mod client;
mod protocol;
mod server;

pub use client::{ClientError, call};
pub use protocol::{Request, Response};
pub use server::{ControlServer, ServerError};

/// Where the daemon listens unless configured otherwise.
pub const DEFAULT_SOCKET: &str = "/run/blocker/control.sock";
