//! The internet namespace's DNS server, and the client namespace's resolver configuration.
//!
//! The server is a small authoritative python3 server on `198.51.100.2:53` and
//! `[2001:db8:e::2]:53` (UDP): A and AAAA for the lab's names (by default every name of
//! [`TLS_NAMES`](super::TLS_NAMES) at the allowed server addresses, so that blocking is by name
//! alone), NODATA for other types of a known name, NXDOMAIN for other names under `example`,
//! REFUSED for the rest. A query with EDNS gets an OPT record back. It logs every query, so a test
//! can tell whether a query reached it or was answered by the appliance.
//!
//! [`DnsServer::start`] also writes `/etc/netns/<client ns>/resolv.conf` (nameserver
//! 198.51.100.2) and `/etc/netns/<client ns>/hosts` (localhost only), which `ip netns exec`
//! bind-mounts over `/etc/resolv.conf` and `/etc/hosts` for every command in the client
//! namespace: the glibc resolver there (`getent hosts`) asks the lab's server. The files (and the
//! directory, if this created it) are removed when the server is dropped; the host's own
//! `/etc/resolv.conf` is never touched.

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, ensure};

use super::{
    ALLOWED_V4, ALLOWED_V6, INTERNET_V4, INTERNET_V6, Lab, Node, TLS_NAMES,
    server_log::{ServerLog, field},
    server_process::ServerProcess,
};

/// How long the server may take to listen on both addresses.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The TTL of every answer of the lab's server.
pub const DNS_SERVER_TTL: u32 = 300;

/// Where `ip netns exec` looks for per-namespace files that replace those of `/etc`.
const NETNS_ETC: &str = "/etc/netns";

/// The resolver configuration of the client namespace. `edns0` makes glibc send EDNS, so the
/// appliance's answer to it carries the extended error; short timeouts keep a lost answer from
/// stalling a test.
const CLIENT_RESOLV_CONF: &str = "nameserver 198.51.100.2\noptions edns0 timeout:1 attempts:2\n";
const CLIENT_HOSTS: &str = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";

/// argv: log file, comma-separated listen addresses, then `name/type/address` records.
/// One log line per query:
/// `query client=192.0.2.2 server=198.51.100.2 name=allowed.example type=A edns=1 rcode=NOERROR answers=1`.
const SERVER_PY: &str = r#"
import ipaddress, socket, struct, sys, threading, time

log = open(sys.argv[1], "a", buffering=1)
listen = sys.argv[2].split(",")
records = {}
for spec in sys.argv[3:]:
    name, rtype, value = spec.split("/")
    records.setdefault(name.lower().rstrip("."), []).append((rtype, value))

TYPES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 2: "NS", 6: "SOA", 65: "HTTPS", 255: "ANY"}
RCODES = {0: "NOERROR", 1: "FORMERR", 3: "NXDOMAIN", 5: "REFUSED"}
TTL = 300  # DNS_SERVER_TTL
lock = threading.Lock()

def write(line):
    with lock:
        log.write(line + "\n")

def read_name(msg, off):
    labels = []
    while True:
        if off >= len(msg):
            raise ValueError("name past the end")
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels), off
        if n > 63:
            raise ValueError("compressed or bad label in a query")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n

def answer(msg):
    if len(msg) < 12:
        return None, None
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    if flags & 0x8000:
        return None, None
    rd = flags & 0x0100
    header = lambda rcode, nan, nar, question: struct.pack(
        "!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1 if question else 0, nan, 0, nar)
    if qd != 1 or (flags >> 11) & 0xF != 0:
        return header(1, 0, 0, False), ("-", "-", False, 1, 0)
    try:
        name, off = read_name(msg, 12)
        qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
        question = msg[12:off + 4]
        off += 4
        edns = False
        for _ in range(an + ns + ar):
            _, off = read_name(msg, off)
            rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10 + rdlen
            if rtype == 41:
                edns = True
    except (ValueError, struct.error):
        return header(1, 0, 0, False), ("-", "-", False, 1, 0)
    key = name.lower().rstrip(".")
    answers = b""
    count = 0
    if key in records:
        rcode = 0
        for rtype, value in records[key]:
            if rtype == "A" and qtype in (1, 255):
                data = ipaddress.IPv4Address(value).packed
                answers += struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, 4) + data
                count += 1
            elif rtype == "AAAA" and qtype in (28, 255):
                data = ipaddress.IPv6Address(value).packed
                answers += struct.pack("!HHHIH", 0xC00C, 28, 1, TTL, 16) + data
                count += 1
    elif key == "example" or key.endswith(".example"):
        rcode = 3
    else:
        rcode = 5
    opt = struct.pack("!BHHIH", 0, 41, 1232, 0, 0) if edns else b""
    reply = header(rcode, count, 1 if edns else 0, True) + question + answers + opt
    return reply, (name, TYPES.get(qtype, str(qtype)), edns, rcode, count)

def serve(addr):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    deadline = time.time() + 10
    while True:
        try:
            sock.bind((addr, 53))
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    while True:
        msg, peer = sock.recvfrom(4096)
        try:
            reply, what = answer(msg)
        except Exception as e:
            write(f"error client={peer[0]} server={addr} {type(e).__name__}")
            continue
        if reply is None:
            continue
        name, qtype, edns, rcode, count = what
        write(f"query client={peer[0]} server={addr} name={name} type={qtype} edns={int(edns)} "
              f"rcode={RCODES.get(rcode, rcode)} answers={count}")
        sock.sendto(reply, peer)

threads = [threading.Thread(target=serve, args=(a,), daemon=True) for a in listen]
for t in threads:
    t.start()
for t in threads:
    t.join()
"#;

/// One query the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuery {
    pub client: String,
    pub name: String,
    /// `A`, `AAAA`, ... or the number.
    pub qtype: String,
    pub edns: bool,
    /// `NOERROR`, `NXDOMAIN`, ...
    pub rcode: String,
}

/// The running server and the client namespace's resolver files; both undone on drop.
pub struct DnsServer {
    process: ServerProcess,
    log: ServerLog,
    resolver: Option<ClientResolver>,
}

/// The lab's default records: every name of `TLS_NAMES` at the allowed server addresses.
pub fn lab_records() -> Vec<(String, IpAddr)> {
    TLS_NAMES
        .iter()
        .flat_map(|n| {
            [
                (n.to_string(), IpAddr::V4(ALLOWED_V4)),
                (n.to_string(), IpAddr::V6(ALLOWED_V6)),
            ]
        })
        .collect()
}

impl DnsServer {
    /// Starts the server with [`lab_records`] and points the client namespace's resolver at it.
    pub fn start(lab: &Lab) -> Result<Self> {
        Self::start_with(lab, &lab_records())
    }

    /// Starts the server with these records (a name may have several) and points the client
    /// namespace's resolver at it.
    pub fn start_with(lab: &Lab, records: &[(String, IpAddr)]) -> Result<Self> {
        let dir = lab.dir();
        let script = dir.join("dns_server.py");
        let log = ServerLog::create(dir.join("dns_queries.log"))?;
        fs::write(&script, SERVER_PY).context("writing the DNS server script")?;
        let listen = format!("{INTERNET_V4},{INTERNET_V6}");
        let specs: Vec<String> = records
            .iter()
            .map(|(name, addr)| {
                let t = if addr.is_ipv4() { "A" } else { "AAAA" };
                format!("{name}/{t}/{addr}")
            })
            .collect();
        let mut cmd = lab.command(Node::Internet, &["python3", "-u"]);
        cmd.arg(&script).arg(log.path()).arg(&listen).args(&specs);
        let mut process = ServerProcess::spawn(cmd, "DNS server", dir.join("dns_server.stderr"))?;
        process.wait_serving(START_TIMEOUT, || {
            let out = lab.exec_timeout(
                Node::Internet,
                &["ss", "-Hlun", "sport = :53"],
                Duration::from_secs(5),
            );
            let listening = String::from_utf8_lossy(&out.stdout);
            if listening.lines().filter(|l| !l.trim().is_empty()).count() >= 2 {
                Ok(())
            } else {
                Err(format!("not listening on both addresses ({listening})"))
            }
        })?;
        Ok(DnsServer {
            process,
            log,
            resolver: Some(ClientResolver::install(lab.ns_name(Node::Client))?),
        })
    }

    /// The raw log so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Every query the server answered so far.
    pub fn queries(&self) -> Vec<DnsQuery> {
        self.log.events(parse_query)
    }

    /// Queries for `name` (any case, trailing dot ignored) that reached the server.
    pub fn queries_for(&self, name: &str) -> usize {
        let want = name.trim_end_matches('.').to_ascii_lowercase();
        self.queries()
            .iter()
            .filter(|q| q.name.trim_end_matches('.').to_ascii_lowercase() == want)
            .count()
    }

    pub fn stop(&mut self) {
        self.process.stop();
        self.resolver = None;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/etc/netns/<ns>/{resolv.conf,hosts}`, removed on drop (with the directory when this made
/// it and nothing else was put there).
struct ClientResolver {
    dir: PathBuf,
    files: Vec<PathBuf>,
    made_dir: bool,
}

impl ClientResolver {
    fn install(ns: &str) -> Result<Self> {
        // Only ever a lab namespace's directory: never /etc/netns itself, never a path that
        // could climb out of it.
        ensure!(
            ns.starts_with("blk") && !ns.contains('/') && !ns.contains(".."),
            "refusing to write resolver files for namespace {ns:?}"
        );
        let dir = Path::new(NETNS_ETC).join(ns);
        let made_dir = !dir.exists();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut resolver = ClientResolver {
            dir,
            files: Vec::new(),
            made_dir,
        };
        for (name, text) in [("resolv.conf", CLIENT_RESOLV_CONF), ("hosts", CLIENT_HOSTS)] {
            let path = resolver.dir.join(name);
            fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            resolver.files.push(path);
        }
        Ok(resolver)
    }
}

impl Drop for ClientResolver {
    fn drop(&mut self) {
        for file in &self.files {
            if let Err(e) = fs::remove_file(file)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                eprintln!("warning: removing {}: {e}", file.display());
            }
        }
        // remove_dir only removes an empty directory: whatever someone else put there stays.
        if self.made_dir
            && let Err(e) = fs::remove_dir(&self.dir)
        {
            eprintln!("warning: removing {}: {e}", self.dir.display());
        }
    }
}

fn parse_query(line: &str) -> Option<DnsQuery> {
    if !line.starts_with("query ") {
        return None;
    }
    Some(DnsQuery {
        client: field(line, "client")?.to_string(),
        name: field(line, "name")?.to_string(),
        qtype: field(line, "type")?.to_string(),
        edns: field(line, "edns")? == "1",
        rcode: field(line, "rcode")?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query_lines() {
        assert_eq!(
            parse_query(
                "query client=192.0.2.2 server=198.51.100.2 name=allowed.example type=AAAA edns=1 rcode=NOERROR answers=1"
            ),
            Some(DnsQuery {
                client: "192.0.2.2".into(),
                name: "allowed.example".into(),
                qtype: "AAAA".into(),
                edns: true,
                rcode: "NOERROR".into(),
            })
        );
        assert_eq!(parse_query("error client=x server=y ValueError"), None);
    }

    #[test]
    fn lab_records_cover_every_name_in_both_families() {
        let r = lab_records();
        assert_eq!(r.len(), 2 * TLS_NAMES.len());
        assert!(r.contains(&("blocked.example".into(), IpAddr::V4(ALLOWED_V4))));
        assert!(r.contains(&("xblocked.example".into(), IpAddr::V6(ALLOWED_V6))));
    }
}
