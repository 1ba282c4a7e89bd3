//! Traffic classes: many distinct frames each, built with the tests' frame builders.

use std::borrow::Cow;

use blocker_tests::packets::{
    dns,
    frames::{Frame, L4, TCP_ACK, TCP_PSH, checksum, tcp, udp},
    tls::{Hello, client_hello, records, segment, sni_offset, stream, with_name_last},
};
use blocker_user::datapath::XdpAction;

pub struct Class {
    pub name: &'static str,
    /// Each sequence is run in order; most classes are single frames.
    pub sequences: Vec<Vec<Vec<u8>>>,
    /// Instead of `sequences`, for listed flows: the program remembers a flow it blocked, and
    /// the same frames again would take the "already blocked" path (one lookup, a reset), not
    /// the one the class names. Such a class gets new flows every round: flow `k` is
    /// `fresh(k)`, built before its runs are timed.
    pub fresh: Option<fn(usize) -> Vec<Vec<u8>>>,
    /// Run each frame once instead of `--repeat` times: the program rewrites it (an answer) or
    /// keeps state for it (a flow), so a repetition would not see the same frame again. Each
    /// such frame follows, untimed, the same frame of another flow of the class (its warmer),
    /// as on a loaded link, where the frames before it keep the program's code and per-CPU
    /// state in the caches and only this flow's own state is cold; without it, the frame would
    /// also pay for a program gone cold in the system call between two test runs.
    pub once: bool,
    /// What the program does with each sequence's last frame; the frames before it pass. A
    /// frame that took another path than its class names stops the run.
    pub last: XdpAction,
    /// Router mode's XDP forwarding: the frames arrive on the bench's forwarding port and the
    /// program routes them (micro.rs `ForwardPort`), finding the route this way. None: every
    /// other class (forwarding off).
    pub routed: Option<Routed>,
}

/// How an XDP-forwarded frame's route is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// `bpf_fib_lookup` for every frame (`--no-route-cache`).
    Fib,
    /// The route cache (the default): a frame repeated in its test run asks the FIB once and
    /// takes the answer from the cache every other time.
    Cache,
}

impl Class {
    /// The sequences of round `round` (of `n` each).
    pub fn sequences(&self, round: usize, n: usize) -> Cow<'_, [Vec<Vec<u8>>]> {
        match self.fresh {
            None => Cow::Borrowed(&self.sequences[..n]),
            Some(f) => Cow::Owned((0..n).map(|i| f(round * n + i)).collect()),
        }
    }

    /// The warmers of round `round`, one per sequence: flows of the same class that no timed
    /// sequence shares (classes run once only).
    pub fn warmers(&self, round: usize, n: usize) -> Option<Cow<'_, [Vec<Vec<u8>>]>> {
        if !self.once {
            return None;
        }
        Some(match self.fresh {
            None => Cow::Borrowed(&self.sequences[n..2 * n]),
            Some(f) => Cow::Owned((0..n).map(|i| f(WARMER_FLOWS + round * n + i)).collect()),
        })
    }
}

/// Most flows per class: the classes with fixed frames take source ports `base + i` for their
/// `2n` flows (timed and warmers), with bases 10 000 apart.
pub const MAX_FRAMES: usize = 5_000;

/// Fresh flow numbers from here on are warmers': far above any timed flow's (rounds × frames).
const WARMER_FLOWS: usize = 30_000_000;

fn dst4(i: usize) -> String {
    format!("198.51.{}.{}", 100 + (i / 250) % 4, 1 + i % 250)
}


/// The source of the classes with fresh flows: an address of its own, so that no flow of
/// theirs, remembered as blocked, is ever one of another class's flows.
const FRESH_SRC: &str = "192.0.2.3";

/// Flow `k` of a class with fresh flows: its source port and destination, distinct for the
/// first 60 million.
fn fresh_flow(k: usize) -> (u16, String) {
    (1024 + (k % 60_000) as u16, dst4(k / 60_000))
}

/// A ClientHello naming a listed host (`blocked.example` is listed with its subdomains at
/// every size), whole in one segment: read, matched, answered with a reset, the flow
/// remembered as blocked.
fn listed_hello(k: usize) -> Vec<Vec<u8>> {
    let (sport, dst) = fresh_flow(k);
    vec![segment(FRESH_SRC, &dst, sport, 0, &stream(&Hello { sni: Some("www.blocked.example"), before: 8, key_share: 32 })).build()]
}

/// An HTTP request for a listed host on an unlisted address: read, matched, and answered with
/// the 451 in place of the server (the stop page on, as `blocker run` with `[http]` has it).
fn listed_http(k: usize) -> Vec<Vec<u8>> {
    let (sport, dst) = fresh_flow(k);
    let req = format!("GET /{k} HTTP/1.1\r\nHost: www.blocked.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n");
    let l4 = L4::Tcp { sport, dport: 80, seq: 1_000, ack: 5_000, flags: TCP_ACK | TCP_PSH, options: vec![], payload: req.into_bytes() };
    vec![Frame::new(FRESH_SRC, &dst, l4).build()]
}

/// Flow `i` of a two-segment hello whose name is whole in segment 1, from source port `base + i`.
fn two_segments(i: usize, base: u16) -> Vec<Vec<u8>> {
    let s = stream(&Hello { sni: Some("www.allowed.example"), before: 8, key_share: 1248 });
    let sport = base + i as u16;
    vec![segment("192.0.2.2", &dst4(i), sport, 0, &s[..1448]).build(), segment("192.0.2.2", &dst4(i), sport, 1448, &s[1448..]).build()]
}

/// A source of the forwarded classes: the subscriber subnet of the forwarding port.
fn src4(i: usize) -> String {
    format!("192.0.2.{}", 2 + i % 200)
}

/// Destinations the forwarding port routes (micro.rs `ForwardPort`), none of them listed.
fn routed_dst4(i: usize) -> String {
    format!("203.0.113.{}", i % 250)
}
fn routed_dst6(i: usize) -> String {
    format!("2001:db8:f:{:x}::1", i)
}

/// A frame to be forwarded, with TTL (or hop limit) 255: its test run repeats it on one buffer,
/// each repetition one hop further.
fn forwarded(mut f: Vec<u8>) -> Vec<u8> {
    if f[12..14] == [0x08, 0x00] {
        f[22] = 255;
        f[24..26].copy_from_slice(&[0, 0]);
        let c = checksum(&f[14..34], 0);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    } else {
        f[21] = 255;
    }
    f
}

/// Every class. The classes with fixed frames hold `2n` flows: the first `n` are timed, the
/// rest are the warmers of the classes run once.
pub fn all(n: usize) -> Vec<Class> {
    let single = |f: &dyn Fn(usize) -> Vec<u8>| (0..2 * n).map(|i| vec![f(i)]).collect::<Vec<_>>();
    vec![
        Class { fresh: None, routed: None, last: XdpAction::Pass, name: "allowed tcp ack v4", once: false, sequences: single(&|i| tcp("192.0.2.2", &dst4(i), 443, TCP_ACK).build()) },
        Class {
            fresh: None, routed: None,
            last: XdpAction::Pass,
            name: "allowed tcp ack v6",
            once: false, sequences: single(&|i| tcp("2001:db8:c::2", &format!("2001:db8:e::{:x}", i + 1), 443, TCP_ACK).build()),
        },
        Class {
            fresh: None, routed: None,
            last: XdpAction::Pass,
            name: "allowed tcp data v4",
            once: false, sequences: single(&|i| tcp("192.0.2.2", &dst4(i), 443, TCP_ACK | TCP_PSH).payload(&[0x17; 1200]).build()),
        },
        // The data segment above at full size, run once per test run (after a warmer) like the
        // classes that keep state: beside the row above, what running a frame once (a system
        // call between two runs, no repetition) adds on the simplest path with a payload.
        Class {
            fresh: None, routed: None,
            last: XdpAction::Pass,
            name: "allowed tcp data v4, 1448 B, run once",
            once: true, sequences: single(&|i| tcp("192.0.2.2", &dst4(i), 443, TCP_ACK | TCP_PSH).payload(&[0x17; 1448]).build()),
        },
        Class { fresh: None, routed: None, last: XdpAction::Pass, name: "dns query unlisted", once: false, sequences: single(&|i| udp("192.0.2.2", "198.51.100.53", 53, &dns::query(&format!("www{i}.allowed.example"), i as u16)).build()) },
        Class { fresh: None, routed: None, last: XdpAction::Tx, name: "dns query listed (answered)", once: true, sequences: single(&|i| udp("192.0.2.2", "198.51.100.53", 53, &dns::query("www.blocked.example", i as u16)).build()) },
        Class {
            fresh: None, routed: None,
            last: XdpAction::Pass,
            name: "http request unlisted",
            once: false, sequences: single(&|i| {
                let req = format!("GET /{i} HTTP/1.1\r\nHost: www.allowed.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n");
                tcp("192.0.2.2", &dst4(i), 80, TCP_ACK | TCP_PSH).payload(req.as_bytes()).build()
            }),
        },
        Class {
            name: "http request listed (451 in place of the server)",
            sequences: vec![],
            fresh: Some(listed_http),
            routed: None,
            once: true,
            last: XdpAction::Tx,
        },
        Class {
            fresh: None, routed: None,
            last: XdpAction::Pass,
            name: "clienthello 1 segment unlisted",
            once: false, sequences: single(&|i| segment("192.0.2.2", &dst4(i), 10_000 + i as u16, 0, &stream(&Hello { sni: Some("www.allowed.example"), before: 8, key_share: 32 })).build()),
        },
        Class {
            name: "clienthello 1 segment listed (reset)",
            sequences: vec![],
            fresh: Some(listed_hello),
            routed: None,
            once: true,
            last: XdpAction::Tx,
        },
        // Neither segment leaves state behind (the name is judged in segment 1; segment 2 is
        // data of a flow the program does not follow), so each is repeated like a single frame
        // (the bench checks that every repetition takes the same path, `sample`).
        Class { fresh: None, routed: None, last: XdpAction::Pass, name: "clienthello 2 segments unlisted (sum)", once: false, sequences: (0..2 * n).map(|i| two_segments(i, 20_000)).collect() },
        // The same, each segment run once after a warmer, as the classes that keep state must be
        // run: beside the row above, what one run adds (this flow's bucket bit and the other
        // lines of its own cold, the system call's traces in the caches and predictors).
        Class {
            fresh: None, routed: None,
            last: XdpAction::Pass,
            name: "clienthello 2 segments unlisted (sum), run once",
            once: true,
            sequences: (0..2 * n).map(|i| two_segments(i, 50_000)).collect(),
        },
        Class {
            fresh: None, routed: None,
            last: XdpAction::Pass,
            // A browser that shuffles its extensions and put the 1.2 KB post-quantum key share
            // before the name: the name whole in segment 2, the reader parked in WAITS between
            // the segments (flow.rs `park`).
            name: "clienthello name after the key share, in segment 2, unlisted (sum)",
            once: true,
            sequences: (0..2 * n)
                .map(|i| {
                    let s = records(&with_name_last(&client_hello(&Hello { sni: None, before: 8, key_share: 1248 }), "www.allowed.example"), 16384);
                    debug_assert!(sni_offset(&s, "www.allowed.example") > 1448);
                    let sport = 40_000 + i as u16;
                    vec![segment("192.0.2.2", &dst4(i), sport, 0, &s[..1448]).build(), segment("192.0.2.2", &dst4(i), sport, 1448, &s[1448..]).build()]
                })
                .collect(),
        },
        Class {
            fresh: None, routed: None,
            last: XdpAction::Pass,
            // The name cut off by the segment boundary, as when a browser's shuffled extensions put
            // the key share first: segment 1's reader waits in FLOWS, segment 2 finishes the name.
            name: "clienthello name in segment 2 unlisted (sum)",
            once: true,
            sequences: (0..2 * n)
                .map(|i| {
                    let sni = "www.allowed.example";
                    let s = stream(&Hello { sni: Some(sni), before: 8, key_share: 1248 });
                    let cut = sni_offset(&s, sni) + 3;
                    let sport = 30_000 + i as u16;
                    vec![segment("192.0.2.2", &dst4(i), sport, 0, &s[..cut]).build(), segment("192.0.2.2", &dst4(i), sport, cut, &s[cut..]).build()]
                })
                .collect(),
        },
        // Router mode's XDP forwarding (micro.rs `ForwardPort`): allowed frames routed by the
        // program, each to a destination of its own. The difference between the two rows of a
        // family is what the route cache saves on a hit.
        Class { fresh: None, routed: Some(Routed::Fib), last: XdpAction::Redirect, name: "forwarded tcp ack v4, FIB lookup", once: false, sequences: single(&|i| forwarded(tcp(&src4(i), &routed_dst4(i), 443, TCP_ACK).build())) },
        Class { fresh: None, routed: Some(Routed::Cache), last: XdpAction::Redirect, name: "forwarded tcp ack v4, route cache", once: false, sequences: single(&|i| forwarded(tcp(&src4(i), &routed_dst4(i), 443, TCP_ACK).build())) },
        Class { fresh: None, routed: Some(Routed::Fib), last: XdpAction::Redirect, name: "forwarded tcp ack v6, FIB lookup", once: false, sequences: single(&|i| forwarded(tcp("2001:db8:c::2", &routed_dst6(i), 443, TCP_ACK).build())) },
        Class { fresh: None, routed: Some(Routed::Cache), last: XdpAction::Redirect, name: "forwarded tcp ack v6, route cache", once: false, sequences: single(&|i| forwarded(tcp("2001:db8:c::2", &routed_dst6(i), 443, TCP_ACK).build())) },
    ]
}
