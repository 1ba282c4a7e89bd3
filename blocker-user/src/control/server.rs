//! The daemon's end of the control socket.
//!
//! The socket's directory is made 0700 and the socket 0600, and each peer's credentials are
//! checked: only root (or the daemon's own user) may steer the blocker. Each connection carries
//! one request line (at most 64 KiB, read within 10 s) and gets one response line.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::{
        fs::{DirBuilderExt, PermissionsExt},
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use super::protocol::{Request, Response};

const MAX_REQUEST: u64 = 64 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once; more wait in the listen backlog.
const MAX_CONCURRENT: usize = 8;

pub type Handler = dyn Fn(Request) -> Response + Send + Sync;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{}: another blocker daemon is already listening there", path.display())]
    InUse { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A running control socket; dropping it stops accepting and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ControlServer {
    pub fn start(path: &Path, handler: Arc<Handler>) -> Result<ControlServer, ServerError> {
        let io_err = |source| ServerError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err)?;
        }
        if path.exists() {
            // A live daemon answers; a socket left by a crash does not and is replaced.
            if UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse { path: path.to_path_buf() });
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        listener.set_nonblocking(true).map_err(io_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicUsize::new(0));
        let thread = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("control".into())
                .spawn(move || accept_loop(listener, handler, stop, busy))
                .map_err(io_err)?
        };
        Ok(ControlServer { path: path.to_path_buf(), stop, thread: Some(thread) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: UnixListener, handler: Arc<Handler>, stop: Arc<AtomicBool>, busy: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if busy.load(Ordering::Relaxed) >= MAX_CONCURRENT {
                    let _ = reply(&stream, &Response::error("the daemon is busy with other requests; try again".into()));
                    continue;
                }
                busy.fetch_add(1, Ordering::Relaxed);
                let (handler, busy) = (handler.clone(), busy.clone());
                let spawned = thread::Builder::new().name("control-req".into()).spawn(move || {
                    serve(stream, &*handler);
                    busy.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    log::warn!("control socket: cannot start a thread for a request");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                log::warn!("control socket: accept failed: {e}");
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn serve(stream: UnixStream, handler: &Handler) {
    let response = match peer_allowed(&stream) {
        Err(e) => Response::error(e),
        Ok(()) => match read_request(&stream) {
            Ok(req) => handler(req),
            Err(e) => Response::error(e),
        },
    };
    let _ = reply(&stream, &response);
}

fn read_request(stream: &UnixStream) -> Result<Request, String> {
    let _ = stream.set_nonblocking(false);
    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut line).map_err(|e| format!("reading the request: {e}"))?;
    if !line.ends_with('\n') {
        return Err(format!("the request must be one line of JSON of at most {MAX_REQUEST} bytes"));
    }
    serde_json::from_str(&line).map_err(|e| format!("not a request this daemon knows: {e}"))
}

fn reply(mut stream: &UnixStream, r: &Response) -> io::Result<()> {
    let _ = stream.set_nonblocking(false);
    let mut line = serde_json::to_vec(r).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// Root, or the user the daemon runs as.
fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a ucred.
    let rc = unsafe {
        libc::getsockopt(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred as *mut _ as *mut libc::c_void, &mut len)
    };
    if rc != 0 {
        return Err("cannot read the peer's credentials".into());
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if cred.uid == 0 || cred.uid == me { Ok(()) } else { Err(format!("uid {} may not control the blocker", cred.uid)) }
}
