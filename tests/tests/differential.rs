//! Differential test (issue 8, item 2): the real XDP program (BPF_PROG_TEST_RUN) and the host
//! reference model (`blocker_tests::model`) must agree on the verdict of random and mutated
//! frames.
//!
//! Frames come from templates of every shape the parser follows (TCP with any flags, ClientHellos
//! whole, split into records, cut, broken; HTTP request heads of many forms; DNS queries well
//! and badly formed; other UDP and IP protocols; VLAN tags, IPv4 options and fragments, IPv6
//! extension chains with routing headers; not IP at all), then mutated (cut, bit flips, a byte
//! replaced, random bytes appended) or replaced by random bytes. Every frame starts a flow of
//! its own (its own source address and port); a frame whose TCP flow an earlier frame left
//! state for (a hello or head being read, a flow blocked by name) is run but not compared, and
//! counted as skipped.
//!
//! The kernel's verdict is the (reason, action) counter cell the frame moved and its XDP return
//! code; the model's is `model::judge`. A difference the model lists as a known issue of the
//! program (`model::KnownIssue`, reported) is counted apart; any other difference fails the
//! test, after printing the first few with their bytes. So does any XDP_ABORTED.
//!
//! `BLOCKER_DIFF_SECONDS=S` runs for S seconds instead of the CI-sized frame count;
//! `BLOCKER_DIFF_REPORT=FILE` writes the counts as `key value` lines (`cargo xtask fuzz` sets
//! both); `BLOCKER_DIFF_SEED=N` changes the seed.

mod support;

use std::{
    collections::{BTreeMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use blocker_common::verdict::{Action, Reason};
use blocker_tests::model::{self, Config, Expectation, KnownIssue, Listed, Lists, PlainLists, Verdict, Xdp};
use blocker_user::{
    datapath::{DnsPolicy, Options, XdpAction},
    lists::ListSet,
    replay::replay_frame,
};
use support::{
    Harness,
    frames::{Frame, L4, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN},
    shadow_set, tls,
};

/// Frames per CI run: with DNS answers and resets on, then a fifth as many with both off.
const FRAMES: usize = 20_000;
/// Disagreements printed in full before the test fails.
const SHOWN: usize = 8;
/// BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
const MIN_FRAME: usize = 14;

const LONG: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

fn block_text() -> String {
    format!(
        "203.0.113.66\n198.51.100.0/24\n2001:db8:f::66\n2001:db8:b::/48\nblocked.example\n=exact.example\n*.sub.example\nbücher.example\n{LONG}\n"
    )
}
const ALLOW: &str = "198.51.100.128/25\n2001:db8:b:1::/64\n192.0.2.0/24\nok.blocked.example\nallowed.example\n";
const SHADOW: &str = "203.0.113.128/25\n2001:db8:5::/48\n198.51.100.64/26\ntrial.example\nshadow.blocked.example\n";

const DST4: [&str; 8] =
    ["203.0.113.10", "203.0.113.11", "203.0.113.66", "198.51.100.7", "198.51.100.200", "198.51.100.70", "203.0.113.130", "192.0.2.99"];
const DST6: [&str; 8] =
    ["2001:db8:f::10", "2001:db8:f::11", "2001:db8:f::66", "2001:db8:b::5", "2001:db8:b:1::5", "2001:db8:5::1", "2001:db8:c::99", "2001:db8:b:2::7"];

fn names() -> Vec<String> {
    let l63 = "x".repeat(63);
    let mut v: Vec<String> = [
        "blocked.example",
        "www.blocked.example",
        "WWW.Blocked.EXAMPLE",
        "blocked.example.",
        "xblocked.example",
        "ok.blocked.example",
        "a.ok.blocked.example",
        "exact.example",
        "www.exact.example",
        "sub.example",
        "a.sub.example",
        "deep.a.sub.example",
        "trial.example",
        "www.trial.example",
        "shadow.blocked.example",
        "allowed.example",
        "unlisted.example",
        "example",
        "xn--bcher-kva.example",
        "www.xn--bcher-kva.example",
        "bad!name.blocked.example",
        "a..blocked.example",
        ".blocked.example",
        "a_b.blocked.example",
        "-x.blocked.example",
        "192.0.2.1",
        "a*b.example",
        // Names are checked and split a word (8 bytes) at a time: dots and ends at either edge
        // of a word, and the bytes just outside each allowed range.
        "abcdefgh",
        "abcdefg.blocked.example",
        "abcdefgh.blocked.example",
        "abcdefgh.",
        "abcdefghijklmno.",
        "ABCDEFGHIJKLMNOP.BLOCKED.example",
        "az.AZ.09-_.blocked.example",
        "a@b.blocked.example",
        "a[b.blocked.example",
        "a`b.blocked.example",
        "a{b.blocked.example",
        "a/b.blocked.example",
        "a:b.blocked.example",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(LONG.to_string());
    v.push(format!("{LONG}."));
    v.push(format!("e.{LONG}"));
    v.push(format!("{l63}.blocked.example"));
    v.push(format!("x{l63}.blocked.example"));
    v
}

/// The model's questions answered by the lists the kernel was given, through
/// `ListSet::lookup`'s matchers.
struct SetLists<'a>(&'a ListSet);

impl Lists for SetLists<'_> {
    fn addr(&self, ip: IpAddr) -> Listed {
        let l = self.0.match_addr(ip);
        Listed { block: l.block.is_some(), allow: l.allow.is_some(), shadow: l.shadow.is_some() }
    }

    fn name(&self, name: &str) -> Listed {
        match self.0.match_name(name) {
            Ok(l) => Listed { block: l.block.is_some(), allow: l.allow.is_some(), shadow: l.shadow.is_some() },
            Err(_) => Listed::default(),
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One generated frame, and how it was made (for the report of a disagreement).
struct Made {
    bytes: Vec<u8>,
    template: &'static str,
    mutation: &'static str,
}

struct Gen {
    rng: Rng,
    names: Vec<String>,
    flow: u64,
}

impl Gen {
    fn v6(&mut self) -> bool {
        self.rng.chance(40)
    }

    /// A destination: half the time one nothing lists (so names get judged).
    fn dst(&mut self, v6: bool) -> String {
        let pool = if v6 { &DST6 } else { &DST4 };
        let i = if self.rng.chance(50) { self.rng.below(2) } else { self.rng.below(pool.len()) };
        pool[i].to_string()
    }

    /// A source address and port of a flow no other frame uses.
    fn src(&mut self, v6: bool) -> (String, u16) {
        self.flow += 1;
        let f = self.flow;
        let port = 1024 + (f % 64_000) as u16;
        let n = f / 64_000;
        let addr = if v6 {
            Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, (n >> 16) as u16, n as u16 | 0x100).to_string()
        } else {
            Ipv4Addr::new(198, 18 + ((n >> 16) & 1) as u8, (n >> 8) as u8, n as u8).to_string()
        };
        (addr, port)
    }

    fn name(&mut self) -> String {
        self.rng.pick(&self.names).clone()
    }

    fn tcp(&mut self, v6: bool, dport: u16, flags: u8, payload: Vec<u8>) -> Frame {
        let (src, sport) = self.src(v6);
        let dst = self.dst(v6);
        let seq = self.rng.next() as u32;
        let ack = if flags & TCP_ACK != 0 { self.rng.next() as u32 } else { 0 };
        let options = if self.rng.chance(20) { vec![2, 4, 0x05, 0xb4, 1, 3, 3, 7] } else { vec![] };
        Frame::new(&src, &dst, L4::Tcp { sport, dport, seq, ack, flags, options, payload })
    }

    fn udp(&mut self, v6: bool, dport: u16, payload: Vec<u8>) -> Frame {
        let (src, sport) = self.src(v6);
        let dst = self.dst(v6);
        Frame::new(&src, &dst, L4::Udp { sport, dport, payload })
    }

    fn data_flags(&mut self) -> u8 {
        *self.rng.pick(&[TCP_ACK | TCP_PSH, TCP_ACK | TCP_PSH, TCP_ACK, TCP_PSH, TCP_ACK | TCP_PSH | TCP_FIN, TCP_SYN, TCP_RST | TCP_ACK])
    }

    fn hello(&mut self) -> Vec<u8> {
        let sni = if self.rng.chance(90) { Some(self.name()) } else { None };
        let key_share = if self.rng.chance(25) { 32 + self.rng.below(1216) } else { 32 };
        let before = self.rng.below(9);
        let msg = tls::client_hello(&tls::Hello { sni: sni.as_deref(), before, key_share });
        let max = if self.rng.chance(30) { 1 + self.rng.below(400) } else { 16_384 };
        // Small records multiply the size: keep the frame well inside what a test run takes.
        let max = if msg.len() + 5 * msg.len().div_ceil(max) > 2_800 { 16_384 } else { max };
        tls::records(&msg, max)
    }

    /// ClientHellos the builder does not make: each breaks or stretches one rule.
    fn odd_hello(&mut self) -> Vec<u8> {
        let name = self.name();
        let mut msg = tls::client_hello(&tls::Hello { sni: Some(&name), before: self.rng.below(3), key_share: 32 });
        let sni_at = msg.windows(name.len()).position(|w| w == name.as_bytes()).unwrap_or(0).max(7);
        match self.rng.below(10) {
            // No extensions at all (a TLS 1.2 hello may omit them).
            0 => {
                let ext_at = 4 + 2 + 32 + 1 + 32 + 2 + 18 + 2;
                msg.truncate(ext_at);
                let body = (msg.len() - 4) as u32;
                msg[1..4].copy_from_slice(&body.to_be_bytes()[1..]);
            }
            // An empty extensions block.
            1 => {
                let ext_at = 4 + 2 + 32 + 1 + 32 + 2 + 18 + 2;
                msg.truncate(ext_at);
                msg.extend([0, 0]);
                let body = (msg.len() - 4) as u32;
                msg[1..4].copy_from_slice(&body.to_be_bytes()[1..]);
            }
            2 => msg[38] = 33,                      // session id longer than 32
            3 => msg[sni_at - 3] = 1,              // name type other than host_name
            4 => msg[sni_at - 2..sni_at].copy_from_slice(&[0, 0]), // empty name
            5 => msg[sni_at - 2..sni_at].copy_from_slice(&254u16.to_be_bytes()),
            6 => msg[0] = 2,                       // not a ClientHello
            7 => {
                // A server_name extension whose length says it ends before the name does.
                msg[sni_at - 7..sni_at - 5].copy_from_slice(&3u16.to_be_bytes());
            }
            8 => {
                // The handshake length says more (or less) than the message.
                let l = self.rng.below(1 << 12) as u32;
                msg[1..4].copy_from_slice(&l.to_be_bytes()[1..]);
            }
            _ => {}
        }
        let mut rec = tls::records(&msg, if self.rng.chance(50) { 16_384 } else { 1 + self.rng.below(64) });
        match self.rng.below(8) {
            0 => rec[0] = 0x17,
            1 => rec[1] = 2,
            2 => rec[3..5].copy_from_slice(&[0, 0]),
            3 => rec[3..5].copy_from_slice(&[0x48, 0x01]), // 18433: longer than a record may be
            _ => {}
        }
        rec
    }

    fn http(&mut self) -> Vec<u8> {
        let r = &mut self.rng;
        let method = *r.pick(&["GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "PROPFIND", "GETX", "Get"]);
        let nl = if r.chance(85) { "\r\n" } else { "\n" };
        let name = self.name();
        let r = &mut self.rng;
        let port = if r.chance(20) { ":8080" } else { "" };
        let target = match r.below(12) {
            0 => format!("http://{name}{port}/index.html"),
            1 => format!("HTTP://{name}{port}"),
            2 => format!("http://user@{name}/"),
            3 => format!("http://user:pw@{name}{port}/"),
            4 => format!("https://{name}/"),
            5 => "http://[2001:db8::1]/".to_string(),
            6 => "*".to_string(),
            7 => "h".to_string(),
            8 => "http:/x".to_string(),
            _ => "/path?q=1".to_string(),
        };
        let version = if r.chance(90) { " HTTP/1.1" } else { "" };
        let mut head = format!("{method} {target}{version}{nl}");
        for _ in 0..r.below(3) {
            let extra = *r.pick(&["User-Agent: t", "Accept: */*", "Hostname: x.example", "X-Host: blocked.example", "Ho: x", " folded"]);
            head.push_str(extra);
            head.push_str(nl);
        }
        let field = *r.pick(&["Host", "host", "HOST", "hOsT"]);
        let ows = *r.pick(&[" ", "", "\t", "  \t"]);
        let value = match r.below(12) {
            0 => String::new(),
            1 => "[2001:db8::1]:80".to_string(),
            2 => "192.0.2.1".to_string(),
            3 => format!("{name} trailing"),
            _ => format!("{name}{port}"),
        };
        if r.chance(90) {
            head.push_str(&format!("{field}:{ows}{value}{nl}"));
        }
        if r.chance(30) {
            head.push_str("Accept: */*");
            head.push_str(nl);
        }
        head.push_str(nl);
        head.into_bytes()
    }

    fn dns(&mut self) -> Vec<u8> {
        let name = self.name();
        let r = &mut self.rng;
        let qtype = *r.pick(&[1u16, 1, 28, 16, 65, 255]);
        let edns = r.chance(50);
        let mut q = model::dns::build_query(r.next() as u16, &name, qtype, edns);
        match r.below(16) {
            0 => q[2] |= 0x80,                 // a response
            1 => q[2] |= 0x08,                 // opcode 1
            2 => q[2] |= 0x02,                 // truncated
            3 => q[5] = 2,                     // two questions
            4 => q[7] = 1,                     // an answer record
            5 => q[11] = 2,                    // two additional records
            6 => {
                let n = q.len() - if edns { 11 } else { 0 };
                q[n - 1] = 3;                  // class CH
            }
            7 => q.push(0),                    // trailing byte
            8 if edns => {
                let n = q.len();
                q[n - 5] = 1;                  // EDNS version 1
            }
            9 if edns => {
                // An option (a cookie) in the OPT record.
                let n = q.len();
                q[n - 1] = 12;
                q.extend([0, 10, 0, 8]);
                q.extend(r.bytes(8));
            }
            10 => {
                // A compression pointer instead of the name.
                q.truncate(12);
                q.extend([0xc0, 0x0c, 0, 1, 0, 1]);
            }
            11 => q[2] &= !0x01,               // RD off
            12 => q[3] |= 0x30,
            _ => {}
        }
        q
    }

    /// IPv6 extension headers in front of the transport header.
    fn extensions(&mut self, f: &mut Frame) {
        let n = *self.rng.pick(&[1usize, 1, 2, 3, 8, 9, 10]);
        for _ in 0..n {
            let kind = *self.rng.pick(&[0u8, 60, 43, 43, 44, 51, 135]);
            let body = match kind {
                43 => {
                    let left = *self.rng.pick(&[0u8, 1, 1, 2]);
                    let fin: Ipv6Addr = self.rng.pick(&DST6).parse().expect("pool address");
                    let via: Ipv6Addr = self.rng.pick(&DST6).parse().expect("pool address");
                    match self.rng.below(5) {
                        0 => [&[0, left, 0, 0, 0, 0][..], &via.octets(), &fin.octets()].concat(),
                        1 => [&[2, left, 0, 0, 0, 0][..], &fin.octets()].concat(),
                        2 => [&[4, left, 1, 0, 0, 0][..], &fin.octets(), &via.octets()].concat(),
                        3 => [&[3, left, 0, 0, 0, 0][..], &fin.octets()].concat(),
                        _ => vec![0, left, 0, 0, 0, 0],
                    }
                }
                44 => {
                    let offset: u16 = if self.rng.chance(70) { 0 } else { 1 + self.rng.below(100) as u16 };
                    let field = (offset << 3) | u16::from(self.rng.chance(50));
                    [&field.to_be_bytes()[..], &[0, 0, 0, 7]].concat()
                }
                51 => vec![0; 10],
                _ => {
                    // PadN filling the header (RFC 8200 §4.2).
                    let len = 6 + 8 * self.rng.below(2);
                    let mut b = vec![1, (len - 2) as u8];
                    b.resize(len, 0);
                    b
                }
            };
            f.ipv6_ext.push(support::frames::Ext { kind, body });
        }
    }

    /// The link and network layer shapes the parser follows, applied to a frame.
    fn shape(&mut self, mut f: Frame) -> Frame {
        match self.rng.below(10) {
            0 => f = f.vlan(0x8100, 10),
            1 => f = f.vlan(0x88a8, 100).vlan(0x8100, 10),
            2 => f = f.vlan(0x8100, 1).vlan(0x8100, 2).vlan(0x88a8, 3),
            _ => {}
        }
        if f.dst.is_ipv4() {
            if self.rng.chance(10) {
                let opts = *self.rng.pick(&[&[1u8, 1, 1, 0][..], &[148, 4, 0, 0], &[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1]]);
                f = f.ipv4_options(opts);
            }
            if self.rng.chance(8) {
                f = f.ipv4_frag(*self.rng.pick(&[0x2000u16, 0x0010, 0x2020, 0x4000, 0x1fff]));
            }
        } else if self.rng.chance(20) {
            self.extensions(&mut f);
        }
        f
    }

    fn template(&mut self) -> (Vec<u8>, &'static str) {
        let v6 = self.v6();
        let (frame, name) = match self.rng.below(100) {
            0..=11 => {
                let flags = *self.rng.pick(&[TCP_SYN, TCP_ACK, TCP_RST, TCP_RST | TCP_ACK, TCP_FIN | TCP_ACK, TCP_SYN | TCP_ACK, 0, 0xff]);
                let dport = *self.rng.pick(&[443u16, 80, 22, 53]);
                (self.tcp(v6, dport, flags, vec![]), "tcp")
            }
            12..=29 => {
                let (h, flags) = (self.hello(), self.data_flags());
                (self.tcp(v6, 443, flags, h), "client_hello")
            }
            30..=37 => {
                let h = self.odd_hello();
                (self.tcp(v6, 443, TCP_ACK | TCP_PSH, h), "odd_client_hello")
            }
            38..=57 => {
                let (h, flags) = (self.http(), self.data_flags());
                let dport = *self.rng.pick(&[80u16, 80, 8080, 443]);
                (self.tcp(v6, dport, flags, h), "http")
            }
            58..=75 => {
                let q = self.dns();
                let qlen = q.len();
                let dport = if self.rng.chance(95) { 53 } else { 5353 };
                let f = self.udp(v6, dport, q);
                if self.rng.chance(5) {
                    // A UDP length that disagrees with the IP length.
                    let mut b = self.shape(f).build();
                    let at = b.len() - qlen - 8 + 4;
                    let wrong = (qlen + 8) as u16 ^ (1 << self.rng.below(12));
                    b[at..at + 2].copy_from_slice(&wrong.to_be_bytes());
                    return (b, "dns_udp_length");
                }
                if self.rng.chance(3) { (f.payload(&[]), "dns") } else { (f, "dns") }
            }
            76..=83 => {
                let dport = *self.rng.pick(&[443u16, 123, 53, 5353, 9]);
                let n = self.rng.below(300);
                let p = self.rng.bytes(n);
                (self.udp(v6, dport, p), "udp")
            }
            84..=89 => {
                let proto = *self.rng.pick(&[1u8, 58, 47, 50, 59, 132]);
                let (src, _) = self.src(v6);
                let dst = self.dst(v6);
                let n = self.rng.below(64);
                (Frame::new(&src, &dst, L4::Raw { proto, bytes: self.rng.bytes(n) }), "other_ip")
            }
            90..=92 => {
                let mut b = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
                b.extend(self.rng.pick(&[[0x08u8, 0x06], [0x88, 0xcc], [0x81, 0x37], [0x00, 0x2e], [0x88, 0x47]]));
                let n = 28 + self.rng.below(40);
                b.extend(self.rng.bytes(n));
                return (b, "not_ip");
            }
            93..=96 => {
                let mut b = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
                if v6 {
                    b.extend([0x86, 0xdd, 0x60]);
                } else {
                    b.extend([0x08, 0x00, 0x45]);
                }
                let n = self.rng.below(120);
                b.extend(self.rng.bytes(n));
                return (b, "ip_then_random");
            }
            _ => {
                let n = MIN_FRAME + self.rng.below(200);
                return (self.rng.bytes(n), "random");
            }
        };
        // A segment cut short, with lengths that say so: what a first segment of a longer
        // hello or head looks like.
        let mut frame = frame;
        if matches!(name, "client_hello" | "http")
            && self.rng.chance(20)
            && let L4::Tcp { payload, .. } = &mut frame.l4
        {
            let keep = 1 + self.rng.below(payload.len().max(1));
            payload.truncate(keep);
        }
        (self.shape(frame).build(), name)
    }

    fn frame(&mut self) -> Made {
        let (mut b, template) = self.template();
        let mutation = match self.rng.below(20) {
            0..=6 => "none",
            7..=9 => {
                b.truncate(MIN_FRAME + self.rng.below(b.len() - MIN_FRAME + 1));
                "cut"
            }
            10..=13 => {
                for _ in 0..1 + self.rng.below(4) {
                    let i = self.rng.below(b.len());
                    b[i] ^= 1 << self.rng.below(8);
                }
                "bit_flips"
            }
            14..=16 => {
                let i = self.rng.below(b.len());
                b[i] = self.rng.next() as u8;
                "byte_replaced"
            }
            _ => {
                let n = 1 + self.rng.below(64);
                b.extend(self.rng.bytes(n));
                "extended"
            }
        };
        b.resize(b.len().max(MIN_FRAME), 0);
        Made { bytes: b, template, mutation }
    }
}

#[derive(Default)]
struct Counts {
    frames: u64,
    compared: u64,
    agreed: u64,
    /// Frames of a TCP flow an earlier frame left state for: run, not compared.
    skipped_flow_state: u64,
    disagreements: u64,
    aborted: u64,
    known: BTreeMap<&'static str, u64>,
    /// The kernel's verdicts, by counter cell: what the run exercised.
    verdicts: BTreeMap<String, u64>,
    seconds: f64,
}

/// The TCP flow key the program keys its flow state by, as the model parses the frame, for a
/// segment the program judges by that state: one with payload, or a FIN without (it may close
/// a flow answered in place of its server, or meet one remembered as blocked: tcp_names.rs
/// `fin`). A client's SYN is `syn_key`'s.
fn flow_key(frame: &[u8]) -> Option<(IpAddr, IpAddr, u16, u16)> {
    let p = model::frame::parse(frame).ok()?;
    let (l4, flags) = p.tcp()?;
    let fin = flags & 0x01 != 0 && flags & 0x12 != 0x02;
    (l4.payload.declared > 0 || fin).then_some((p.src, p.dst, l4.sport, l4.dport))
}

/// The flow of a client's SYN (SYN without ACK, no payload).
fn syn_key(frame: &[u8]) -> Option<(IpAddr, IpAddr, u16, u16)> {
    let p = model::frame::parse(frame).ok()?;
    let (l4, flags) = p.tcp()?;
    (l4.payload.declared == 0 && flags & 0x12 == 0x02).then_some((p.src, p.dst, l4.sport, l4.dport))
}

/// Whether the program stored flow state for the frame's flow with this verdict.
fn leaves_state(v: Verdict) -> bool {
    matches!(v.reason, Reason::TlsPending | Reason::HttpPending)
        || (matches!(v.reason, Reason::Sni | Reason::HttpHost) && matches!(v.action, Action::TcpReset | Action::Drop | Action::StopPage))
}

fn xdp_of(a: XdpAction) -> Option<Xdp> {
    match a {
        XdpAction::Pass => Some(Xdp::Pass),
        XdpAction::Drop => Some(Xdp::Drop),
        XdpAction::Tx => Some(Xdp::Tx),
        _ => None,
    }
}

enum Budget {
    Frames(u64),
    Time(Duration),
}

fn run(h: &Harness, cfg: &Config, seed: u64, budget: Budget, counts: &mut Counts, shown: &mut usize) {
    let lists = SetLists(&h.set);
    let mut g = Gen { rng: Rng(seed), names: names(), flow: seed % 1_000_000 * 64_000 };
    let mut stateful: HashSet<(IpAddr, IpAddr, u16, u16)> = HashSet::new();
    let start = Instant::now();
    let mut i = 0u64;
    loop {
        match budget {
            Budget::Frames(n) if i >= n => break,
            Budget::Time(d) if i.is_multiple_of(256) && start.elapsed() >= d => break,
            _ => {}
        }
        i += 1;
        let made = g.frame();
        let f = &made.bytes;
        let (line, _) = replay_frame(&h.dp, i as usize, f).expect("BPF_PROG_TEST_RUN");
        counts.frames += 1;
        if line.action == XdpAction::Aborted {
            counts.aborted += 1;
            eprintln!("XDP_ABORTED: seed {seed:#x} frame {i} ({} / {}): {}", made.template, made.mutation, hex(f));
            continue;
        }
        let kernel = match (line.reason, line.verdict) {
            (Some(r), Some(a)) => {
                let reason = Reason::ALL.into_iter().find(|x| x.name() == r).expect("a reason name");
                let action = Action::ALL.into_iter().find(|x| x.name() == a).expect("an action name");
                Some(Verdict::new(reason, action))
            }
            _ => None,
        };
        if let Some(k) = kernel {
            *counts.verdicts.entry(k.to_string()).or_default() += 1;
        }
        let key = flow_key(f);
        if let Some(k) = &key
            && stateful.contains(k)
        {
            counts.skipped_flow_state += 1;
            continue;
        }
        if let (Some(k), Some(v)) = (&key, kernel)
            && leaves_state(v)
        {
            stateful.insert(*k);
        }
        // A client's SYN that passes marks its flow's first data byte as awaited: the flow's
        // later data is judged against that (tcp_names.rs), which the model does not follow.
        if let (Some(k), Some(v)) = (syn_key(f), kernel)
            && v.action.passes()
        {
            stateful.insert(k);
        }
        counts.compared += 1;
        let Expectation { verdict: want, known } = model::judge(f, &lists, cfg);
        let same = |v: Verdict| kernel == Some(v) && xdp_of(line.action) == Some(v.xdp());
        if same(want) {
            counts.agreed += 1;
            continue;
        }
        if let Some(k) = known
            && same(k.kernel)
        {
            *counts.known.entry(k.issue.name()).or_default() += 1;
            continue;
        }
        counts.disagreements += 1;
        if *shown < SHOWN {
            *shown += 1;
            eprintln!(
                "DISAGREEMENT seed {seed:#x} frame {i} ({} / {}, {} bytes): kernel {} ({}), model {}{}\n  {}\n  {}",
                made.template,
                made.mutation,
                f.len(),
                kernel.map_or("no single counter".to_string(), |v| v.to_string()),
                line.action.name(),
                want,
                known.map_or(String::new(), |k| format!(" (known {}: kernel should give {})", k.issue.name(), k.kernel)),
                line.summary,
                hex(f)
            );
        }
    }
    counts.seconds += start.elapsed().as_secs_f64();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn harness(tcp_reset: bool, dns: bool) -> Harness {
    let set = shadow_set(&block_text(), ALLOW, SHADOW);
    let mut h = Harness::with_set(set, Options { tcp_reset, ..Options::default() });
    if dns {
        h.dp.set_dns(&DnsPolicy::stop_page(Some(Ipv4Addr::new(192, 0, 2, 80)), Some("2001:db8:80::80".parse().unwrap())))
            .expect("DNS answers on");
    }
    h
}

/// The lists through ListSet and through the model's own PlainLists agree on every address and
/// name the generator uses (so the fuzz targets, which use PlainLists, fuzz the same thing).
fn plain_lists_agree_with_list_set(set: &ListSet) {
    let mut plain = PlainLists::default();
    plain.parse(&block_text().replace("bücher.example", "xn--bcher-kva.example"), model::Kind::Block);
    plain.parse(ALLOW, model::Kind::Allow);
    plain.parse(SHADOW, model::Kind::Shadow);
    let via_set = SetLists(set);
    for a in DST4.iter().chain(DST6.iter()) {
        let ip: IpAddr = a.parse().unwrap();
        assert_eq!(plain.addr(ip), via_set.addr(ip), "{ip}");
    }
    for n in names() {
        if let Some(n) = model::name::normalise(n.as_bytes()) {
            assert_eq!(plain.name(&n), via_set.name(&n), "{n}");
        }
    }
}

fn seed() -> u64 {
    std::env::var("BLOCKER_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x00d1_ff00_5eed)
}

#[test]
#[ignore = "needs root"]
fn kernel_and_model_agree_on_random_and_mutated_frames() {
    let seconds: Option<f64> = std::env::var("BLOCKER_DIFF_SECONDS").ok().and_then(|s| s.parse().ok());
    let seed = seed();
    let mut counts = Counts::default();
    let mut shown = 0;

    let h = harness(true, true);
    plain_lists_agree_with_list_set(&h.set);
    let main = Config { tcp_reset: true, dns_answers: true };
    let other = Config { tcp_reset: false, dns_answers: false };
    let (a, b) = match seconds {
        Some(s) => (Budget::Time(Duration::from_secs_f64(s * 0.8)), Budget::Time(Duration::from_secs_f64(s * 0.2))),
        None => (Budget::Frames(FRAMES as u64), Budget::Frames(FRAMES as u64 / 5)),
    };
    run(&h, &main, seed, a, &mut counts, &mut shown);
    drop(h);
    let h = harness(false, false);
    run(&h, &other, seed ^ 0x5a5a, b, &mut counts, &mut shown);

    println!(
        "differential: {} frames in {:.1} s ({} compared, {} agreed, {} known departures, {} skipped for flow state), {} disagreements, {} XDP_ABORTED",
        counts.frames,
        counts.seconds,
        counts.compared,
        counts.agreed,
        counts.known.values().sum::<u64>(),
        counts.skipped_flow_state,
        counts.disagreements,
        counts.aborted
    );
    for issue in KnownIssue::ALL {
        if let Some(n) = counts.known.get(issue.name()) {
            println!("  known {}: {n} frames: {}", issue.name(), issue.describe());
        }
    }
    println!("  kernel verdicts: {:?}", counts.verdicts);
    if let Ok(path) = std::env::var("BLOCKER_DIFF_REPORT") {
        // `key value` lines, for `cargo xtask fuzz` (no JSON parser there).
        let mut r = format!(
            "seed {seed}\nframes {}\nseconds {:.1}\ncompared {}\nagreed {}\nskipped_flow_state {}\ndisagreements {}\naborted {}\n",
            counts.frames, counts.seconds, counts.compared, counts.agreed, counts.skipped_flow_state, counts.disagreements, counts.aborted
        );
        for (k, n) in &counts.known {
            r.push_str(&format!("known.{k} {n}\n"));
        }
        for (k, n) in &counts.verdicts {
            r.push_str(&format!("verdict.{k} {n}\n"));
        }
        std::fs::write(&path, r).expect("writing the report");
    }
    assert_eq!(counts.aborted, 0, "XDP_ABORTED");
    assert_eq!(counts.disagreements, 0, "the program and the model disagree (first {SHOWN} printed above)");
    // The run exercised what it claims to: every verdict of a fresh flow's frame showed up.
    for cell in [
        "no_match/pass", "not_ip/pass", "malformed/pass", "unsupported/pass", "allow_list/pass", "dst_v4/tcp_reset", "dst_v4/drop",
        "dst_v6/tcp_reset", "dst_v4/shadow", "dst_v6/shadow", "sni/tcp_reset", "sni/shadow", "dns_name/dns_answer", "dns_name/shadow",
        "http_host/tcp_reset", "tls_pending/pass", "tls_unparsed/pass", "dns_unparsed/pass", "http_pending/pass", "http_unparsed/pass",
        "sni/drop", "http_host/drop",
    ] {
        assert!(counts.verdicts.get(cell).is_some_and(|n| *n > 0), "no frame got {cell}: {:?}", counts.verdicts);
    }
}

/// One minimal frame per departure of the program from the model that the differential test
/// found and that was fixed in the program (issue 8), with the verdict both now give: a
/// regression here means the program reads that shape wrongly again.
fn fixed_departure_frames() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let client = "192.0.2.2";
    // Each frame its own flow: a blocked flow's state would decide the next frame.
    let sport = std::cell::Cell::new(40_100u16);
    let seg = |dst: &str, dport: u16, payload: &[u8]| {
        let src = if dst.contains(':') { "2001:db8:c::2" } else { client };
        sport.set(sport.get() + 1);
        let l4 = L4::Tcp { sport: sport.get(), dport, seq: 1, ack: 1, flags: TCP_ACK | TCP_PSH, options: vec![], payload: payload.to_vec() };
        Frame::new(src, dst, l4).build()
    };
    // A ClientHello without extensions (its handshake length ends after the compression
    // methods), and a second hello right behind it in the same segment that names a listed
    // host: not the first one's extensions.
    let mut bare = tls::client_hello(&tls::Hello { sni: None, before: 0, key_share: 32 });
    bare.truncate(93);
    let body = (bare.len() - 4) as u32;
    bare[1..4].copy_from_slice(&body.to_be_bytes()[1..]);
    let listed = tls::client_hello(&tls::Hello { sni: Some("blocked.example"), before: 0, key_share: 32 });
    let bare_then_listed = tls::records(&[bare.clone(), listed].concat(), 16_384);
    // The handshake length one byte short of the fixed fields.
    let mut short = bare.clone();
    short[3] -= 1;
    let addr = |a: &str| a.parse::<Ipv6Addr>().unwrap().octets();
    let rh0 = [&[0u8, 1, 0, 0, 0, 0][..], &addr("2001:db8:f::66")].concat();
    let rh2 = [&[2u8, 1, 0, 0, 0, 0][..], &addr("2001:db8:f::11")].concat();
    let mut two = support::frames::tcp("2001:db8:c::2", "2001:db8:f::10", 443, TCP_SYN).ext(43, &rh0).ext(43, &rh2);
    two.l4 = L4::Tcp { sport: 40_001, dport: 443, seq: 1, ack: 0, flags: TCP_SYN, options: vec![], payload: vec![] };
    let mut ninth = support::frames::tcp("2001:db8:c::2", "2001:db8:f::10", 443, TCP_SYN);
    for _ in 0..8 {
        ninth = ninth.ext(60, &[1, 4, 0, 0, 0, 0]);
    }
    let ninth = ninth.ext(43, &rh0);
    let long_user = format!("GET http://{LONG}{LONG}@blocked.example/ HTTP/1.1\r\n\r\n");
    vec![
        ("a hello without extensions", seg("203.0.113.10", 443, &tls::records(&bare, 16_384)), "no_match/pass"),
        ("a hello without extensions, another behind it", seg("203.0.113.10", 443, &bare_then_listed), "no_match/pass"),
        ("a hello shorter than its fixed fields", seg("203.0.113.10", 443, &tls::records(&short, 16_384)), "tls_unparsed/pass"),
        ("a userinfo before the host", seg("203.0.113.10", 80, b"GET http://user:pw@blocked.example/ HTTP/1.1\r\nHost: other.example\r\n\r\n"), "http_host/tcp_reset"),
        ("a userinfo longer than a host", seg("203.0.113.10", 80, long_user.as_bytes()), "http_host/tcp_reset"),
        ("a userinfo naming a listed host", seg("203.0.113.10", 80, b"GET http://blocked.example@other.example/ HTTP/1.1\r\n\r\n"), "no_match/pass"),
        ("an https:// target", seg("203.0.113.10", 80, b"GET https://blocked.example/ HTTP/1.1\r\nHost: other.example\r\n\r\n"), "http_host/tcp_reset"),
        ("a bare LF ending the target", seg("203.0.113.10", 80, b"GET h\nHost: blocked.example\n\n"), "http_host/tcp_reset"),
        ("a 253-byte Host with its trailing dot", seg("203.0.113.10", 80, format!("GET / HTTP/1.1\r\nHost: {LONG}.\r\n\r\n").as_bytes()), "http_host/tcp_reset"),
        // Found by the fuzz run after the fix: 254 bytes without the dot are not a name.
        ("a 254-byte Host without a trailing dot", seg("203.0.113.10", 80, format!("GET / HTTP/1.1\r\nHost: {LONG}n\r\n\r\n").as_bytes()), "http_unparsed/pass"),
        ("a 254-byte absolute-form host without a trailing dot", seg("203.0.113.10", 80, format!("GET http://{LONG}n HTTP/1.1\r\n\r\n").as_bytes()), "http_unparsed/pass"),
        ("two routing headers, the first to a listed host", two.build(), "dst_v6/tcp_reset"),
        ("a routing header in ninth place", ninth.build(), "no_match/pass"),
    ]
}

#[test]
#[ignore = "needs root"]
fn former_departures_agree_with_the_model() {
    let h = harness(true, true);
    let lists = SetLists(&h.set);
    for (what, f, want) in fixed_departure_frames() {
        let e = model::judge(&f, &lists, &Config::default());
        let (line, _) = replay_frame(&h.dp, 1, &f).expect("BPF_PROG_TEST_RUN");
        let kernel = format!("{}/{}", line.reason.unwrap_or("?"), line.verdict.unwrap_or("?"));
        println!("{what}: model {}, program {kernel} ({}): {}", e.verdict, line.action.name(), line.summary);
        assert_eq!(e.verdict.to_string(), want, "{what}: the model");
        assert_eq!(e.known, None, "{what}");
        assert_eq!(kernel, want, "{what}: the program\n  {}", hex(&f));
    }
}
