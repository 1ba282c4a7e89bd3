//! The internet namespace's HTTP server: python3's http.server on [::]:80, dual-stack, so one
//! process answers on every server address. It logs one line per request, naming the address
//! the request reached, so a test can tell which connections got through the appliance.

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::{Context, Result};

use super::{server_log::ServerLog, server_process::ServerProcess, topology::in_ns};

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

/// The running server; killed on drop (by its process).
pub(crate) struct HttpServer {
    process: ServerProcess,
    log: ServerLog,
}

impl HttpServer {
    pub(crate) fn start(ns: &str, dir: &Path) -> Result<Self> {
        let script = dir.join("http_server.py");
        let log = ServerLog::create(dir.join("http_access.log"))?;
        fs::write(&script, SERVER_PY).context("writing the HTTP server script")?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "python3", "-u"])
            .arg(&script)
            .arg(log.path())
            .arg(HTTP_BODY);
        let mut process = ServerProcess::spawn(cmd, "HTTP server", dir.join("http_server.stderr"))?;
        process.wait_serving(START_TIMEOUT, || {
            match in_ns(ns, &["ss", "-Hltn", "sport = :80"]) {
                Ok(listening) if !listening.trim().is_empty() => Ok(()),
                Ok(_) => Err("not listening on :80".into()),
                Err(e) => Err(format!("not listening on :80 (ss: {e:#})")),
            }
        })?;
        Ok(HttpServer { process, log })
    }

    pub(crate) fn log(&self) -> String {
        self.log.text()
    }

    pub(crate) fn stop(&mut self) {
        self.process.stop();
    }
}
