//! The CLI's end of the control socket.

use std::{
    io::{self, BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use super::protocol::{Request, Response};

/// A reload pulls every list and installs a generation: minutes at worst, with slow servers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{}: no blocker daemon is listening (is `blocker run` running? is --socket, or --config's control_socket, right?)", path.display())]
    NotRunning { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: the daemon's answer is not a response: {message}", path.display())]
    BadResponse { path: PathBuf, message: String },
}

/// Sends one request and waits for its response.
pub fn call(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let io_err = |source| ClientError::Io { path: path.to_path_buf(), source };
    let mut stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning { path: path.to_path_buf() },
        _ => io_err(e),
    })?;
    stream.set_read_timeout(Some(RESPONSE_TIMEOUT)).map_err(io_err)?;
    let mut line = serde_json::to_vec(request).expect("requests serialise");
    line.push(b'\n');
    stream.write_all(&line).map_err(io_err)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).map_err(io_err)?;
    serde_json::from_str(&answer).map_err(|e| ClientError::BadResponse { path: path.to_path_buf(), message: e.to_string() })
}
