//! Traffic classes: many distinct frames each, built with the tests' frame builders.

use blocker_tests::packets::{
    dns,
    frames::{TCP_ACK, TCP_PSH, tcp, udp},
    tls::{Hello, client_hello, records, segment, sni_offset, stream, with_name_last},
};

pub struct Class {
    pub name: &'static str,
    /// Each sequence is run in order; most classes are single frames.
    pub sequences: Vec<Vec<Vec<u8>>>,
    /// Run each frame once instead of `--repeat` times: the program rewrites it (an answer) or
    /// keeps state for it (a flow), so a repetition would not see the same frame again.
    pub once: bool,
}

fn dst4(i: usize) -> String {
    format!("198.51.{}.{}", 100 + (i / 250) % 4, 1 + i % 250)
}


pub fn all(n: usize) -> Vec<Class> {
    let single = |f: &dyn Fn(usize) -> Vec<u8>| (0..n).map(|i| vec![f(i)]).collect::<Vec<_>>();
    vec![
        Class { name: "allowed tcp ack v4", once: false, sequences: single(&|i| tcp("192.0.2.2", &dst4(i), 443, TCP_ACK).build()) },
        Class {
            name: "allowed tcp ack v6",
            once: false, sequences: single(&|i| tcp("2001:db8:c::2", &format!("2001:db8:e::{:x}", i + 1), 443, TCP_ACK).build()),
        },
        Class {
            name: "allowed tcp data v4",
            once: false, sequences: single(&|i| tcp("192.0.2.2", &dst4(i), 443, TCP_ACK | TCP_PSH).payload(&[0x17; 1200]).build()),
        },
        // The data segment above at full size, run once per test run like the classes that
        // keep state: beside the row above, what running a frame once (caches cold after the
        // system call, no repetition) adds on the simplest path with a payload.
        Class {
            name: "allowed tcp data v4, 1448 B, run once",
            once: true, sequences: single(&|i| tcp("192.0.2.2", &dst4(i), 443, TCP_ACK | TCP_PSH).payload(&[0x17; 1448]).build()),
        },
        Class { name: "dns query unlisted", once: false, sequences: single(&|i| udp("192.0.2.2", "198.51.100.53", 53, &dns::query(&format!("www{i}.allowed.example"), i as u16)).build()) },
        Class { name: "dns query listed (answered)", once: true, sequences: single(&|i| udp("192.0.2.2", "198.51.100.53", 53, &dns::query("www.blocked.example", i as u16)).build()) },
        Class {
            name: "http request unlisted",
            once: false, sequences: single(&|i| {
                let req = format!("GET /{i} HTTP/1.1\r\nHost: www.allowed.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n");
                tcp("192.0.2.2", &dst4(i), 80, TCP_ACK | TCP_PSH).payload(req.as_bytes()).build()
            }),
        },
        Class {
            name: "clienthello 1 segment unlisted",
            once: false, sequences: single(&|i| segment("192.0.2.2", &dst4(i), 10_000 + i as u16, 0, &stream(&Hello { sni: Some("www.allowed.example"), before: 8, key_share: 32 })).build()),
        },
        Class {
            name: "clienthello 2 segments unlisted (sum)",
            once: true,
            sequences: (0..n)
                .map(|i| {
                    let s = stream(&Hello { sni: Some("www.allowed.example"), before: 8, key_share: 1248 });
                    let sport = 20_000 + i as u16;
                    vec![segment("192.0.2.2", &dst4(i), sport, 0, &s[..1448]).build(), segment("192.0.2.2", &dst4(i), sport, 1448, &s[1448..]).build()]
                })
                .collect(),
        },
        Class {
            // A browser that shuffles its extensions and put the 1.2 KB post-quantum key share
            // before the name: the name whole in segment 2, the reader parked in WAITS between
            // the segments (flow.rs `park`).
            name: "clienthello name after the key share, in segment 2, unlisted (sum)",
            once: true,
            sequences: (0..n)
                .map(|i| {
                    let s = records(&with_name_last(&client_hello(&Hello { sni: None, before: 8, key_share: 1248 }), "www.allowed.example"), 16384);
                    debug_assert!(sni_offset(&s, "www.allowed.example") > 1448);
                    let sport = 40_000 + i as u16;
                    vec![segment("192.0.2.2", &dst4(i), sport, 0, &s[..1448]).build(), segment("192.0.2.2", &dst4(i), sport, 1448, &s[1448..]).build()]
                })
                .collect(),
        },
        Class {
            // The name cut off by the segment boundary, as when a browser's shuffled extensions put
            // the key share first: segment 1's reader waits in FLOWS, segment 2 finishes the name.
            name: "clienthello name in segment 2 unlisted (sum)",
            once: true,
            sequences: (0..n)
                .map(|i| {
                    let sni = "www.allowed.example";
                    let s = stream(&Hello { sni: Some(sni), before: 8, key_share: 1248 });
                    let cut = sni_offset(&s, sni) + 3;
                    let sport = 30_000 + i as u16;
                    vec![segment("192.0.2.2", &dst4(i), sport, 0, &s[..cut]).build(), segment("192.0.2.2", &dst4(i), sport, cut, &s[cut..]).build()]
                })
                .collect(),
        },
    ]
}
