//! HTTP/1.x request heads through the real kernel program: the host a request names (absolute
//! form or Host header, in any spelling the protocol allows) is read across segments and
//! judged on label boundaries; a listed host's request never passes.

mod support;

use blocker_common::verdict::Reason;
use blocker_user::datapath::XdpAction;
use support::{Harness, Outcome, frames::{Frame, L4, TCP_ACK, TCP_PSH}};

const CLIENT: &str = "192.0.2.2";
const SERVER: &str = "203.0.113.10";
const BLOCK: &str = "blocked.example\n";
const ALLOW: &str = "ok.blocked.example\n";

fn segment(sport: u16, at: usize, data: &[u8]) -> Vec<u8> {
    Frame::new(
        CLIENT,
        SERVER,
        L4::Tcp { sport, dport: 80, seq: 500_000 + at as u32, ack: 9, flags: TCP_ACK | TCP_PSH, options: vec![], payload: data.to_vec() },
    )
    .build()
}

fn send(h: &Harness, sport: u16, req: &[u8], cuts: &[usize]) -> Vec<Outcome> {
    let mut b = vec![0];
    b.extend(cuts.iter().copied().filter(|&c| c > 0 && c < req.len()));
    b.push(req.len());
    b.windows(2).map(|w| h.run(&segment(sport, w[0], &req[w[0]..w[1]]))).collect()
}

fn blocked(o: &Outcome) -> bool {
    o.reason == Reason::HttpHost && o.action != XdpAction::Pass
}

#[test]
#[ignore = "needs root"]
fn a_listed_host_header_blocks_the_request_in_every_spelling() {
    let h = Harness::new(BLOCK, ALLOW);
    let heads: [&[u8]; 8] = [
        b"GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nUser-Agent: t\r\nhOsT:   BLOCKED.Example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:\tblocked.example:8080\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: blocked.example.\r\n\r\n",
        b"HEAD /x HTTP/1.0\r\nHost: www.blocked.example\r\n\r\n",
        b"POST /form HTTP/1.1\r\nContent-Length: 3\r\nHost: blocked.example\r\n\r\nabc",
        b"GET http://blocked.example/path HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
        b"GET HTTP://Blocked.Example:80/ HTTP/1.1\r\n\r\n",
    ];
    for (i, head) in heads.iter().enumerate() {
        let out = send(&h, 100 + i as u16, head, &[]);
        assert!(blocked(&out[0]), "{}: {:?}", String::from_utf8_lossy(head), out[0]);
    }
}

#[test]
#[ignore = "needs root"]
fn unlisted_hosts_and_look_alikes_pass() {
    let h = Harness::new(BLOCK, ALLOW);
    let heads: [(&[u8], Reason); 6] = [
        (b"GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: xblocked.example\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: blocked.example.evil.test\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: ok.blocked.example\r\n\r\n", Reason::AllowList),
        (b"GET / HTTP/1.1\r\nX-Host: blocked.example\r\nHost: allowed.example\r\n\r\n", Reason::NoMatch),
        (b"GET /blocked.example HTTP/1.1\r\nHostname: blocked.example\r\n\r\n", Reason::HttpUnparsed),
    ];
    for (i, (head, reason)) in heads.iter().enumerate() {
        let out = send(&h, 200 + i as u16, head, &[]);
        assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, *reason), "{}", String::from_utf8_lossy(head));
    }
}

#[test]
#[ignore = "needs root"]
fn a_request_head_split_at_every_byte_is_read() {
    let h = Harness::new(BLOCK, ALLOW);
    let head = b"GET /index.html HTTP/1.1\r\nAccept: */*\r\nHost: www.blocked.example\r\nUser-Agent: test\r\n\r\n";
    let end_of_host = head.windows(19).position(|w| w == b"www.blocked.example").unwrap() + 19;
    for cut in 1..head.len() {
        let out = send(&h, 1000 + cut as u16, head, &[cut]);
        // The host is complete once the byte after it (\r) is read.
        if cut > end_of_host {
            assert!(blocked(&out[0]), "cut {cut}: {out:?}");
        } else {
            assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::HttpPending), "cut {cut}");
            assert!(blocked(&out[1]), "cut {cut}: {out:?}");
        }
    }
    // One byte per segment.
    let cuts: Vec<usize> = (1..head.len()).collect();
    let out = send(&h, 3000, head, &cuts);
    assert!(blocked(&out[end_of_host]), "{:?}", out[end_of_host]);
    assert!(out[..end_of_host].iter().all(|o| o.reason == Reason::HttpPending));
}

#[test]
#[ignore = "needs root"]
fn requests_without_a_host_and_other_protocols_pass() {
    let h = Harness::new(BLOCK, ALLOW);
    let out = send(&h, 400, b"GET / HTTP/1.0\r\n\r\n", &[]);
    assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::HttpUnparsed));
    let out = send(&h, 401, b"SSH-2.0-OpenSSH_9.2\r\n", &[]);
    assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::NoMatch));
    let mut long = b"GET / HTTP/1.1\r\n".to_vec();
    long.extend(std::iter::repeat_n(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".as_slice(), 30).flatten());
    long.extend(b"Host: blocked.example\r\n\r\n");
    // A long head spread over segments is still read to its Host.
    let out = send(&h, 402, &long, &[600]);
    assert!(blocked(&out[1]), "{out:?}");
}
