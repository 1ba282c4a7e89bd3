//! The internet namespace's HTTP server: python3's http.server on [::]:80, dual-stack, so one
//! process answers on every server address. It logs one line per request, naming the address
//! the request reached, so a test can tell which connections got through the appliance.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::topology::in_ns;

/// The body every GET returns (plus a newline).
pub const HTTP_BODY: &str = "blocker lab server";

/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One line per request: `client=<ip> server=<ip> host=<Host> "<request line>" <status>`.
/// IPv4 peers of the dual-stack socket show up as `::ffff:a.b.c.d`; the log strips that.
const SERVER_PY: &str = r#"
import http.server, socket, sys

log = open(sys.argv[1], "a", buffering=1)
body = (sys.argv[2] + "\n").encode()

def plain(addr):
    return addr[7:] if addr.startswith("::ffff:") else addr

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        server = plain(self.connection.getsockname()[0])
        client = plain(self.client_address[0])
        host = self.headers.get("Host", "-") if self.headers else "-"
        log.write(f'client={client} server={server} host={host} "{self.requestline}" {code}\n')

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

Server(("::", 80), Handler).serve_forever()
"#;

pub(crate) struct HttpServer {
    child: Child,
    log: PathBuf,
}

impl HttpServer {
    pub(crate) fn start(ns: &str, dir: &Path) -> Result<Self> {
        let script = dir.join("http_server.py");
        let log = dir.join("http_access.log");
        let errors = dir.join("http_server.stderr");
        fs::write(&script, SERVER_PY).context("writing the HTTP server script")?;
        fs::write(&log, "").context("creating the HTTP access log")?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-u"])
            .arg(&script)
            .arg(&log)
            .arg(HTTP_BODY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&errors).context("creating the HTTP server's stderr file")?)
            .spawn()
            .context("starting python3 http server")?;
        let mut server = HttpServer { child, log };

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait()? {
                let stderr = fs::read_to_string(&errors).unwrap_or_default();
                bail!("HTTP server exited at start ({status}): {}", stderr.trim());
            }
            let listening = in_ns(ns, &["ss", "-Hltn", "sport = :80"])?;
            if !listening.trim().is_empty() {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                server.stop();
                bail!("HTTP server not listening on :80 after {START_TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
