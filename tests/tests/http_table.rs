//! HTTP/1.x request heads through the real kernel program: the host a request names (absolute
//! form or Host header, in any spelling the protocol allows) is read across segments and
//! judged on label boundaries; a listed host's request never passes.

mod support;

use blocker_common::verdict::Reason;
use blocker_user::datapath::XdpAction;
use support::{Harness, Outcome, frames::{Frame, L4, TCP_ACK, TCP_PSH, TCP_SYN}};

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
    let heads: [(&[u8], Reason); 10] = [
        (b"GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: xblocked.example\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: blocked.example.evil.test\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: ok.blocked.example\r\n\r\n", Reason::AllowList),
        (b"GET / HTTP/1.1\r\nX-Host: blocked.example\r\nHost: allowed.example\r\n\r\n", Reason::NoMatch),
        (b"GET /blocked.example HTTP/1.1\r\nHostname: blocked.example\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: [2001:db8:f::66]:80\r\n\r\n", Reason::NoMatch),
        (b"GET http://[2001:db8:f::66]/ HTTP/1.1\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: 203.0.113.10\r\n\r\n", Reason::NoMatch),
        (b"GET / HTTP/1.1\r\nHost: bad..name\r\n\r\n", Reason::HttpUnparsed),
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
    assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::NoMatch));
    let out = send(&h, 401, b"SSH-2.0-OpenSSH_9.2\r\n", &[]);
    assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::NoMatch));
    let mut long = b"GET / HTTP/1.1\r\n".to_vec();
    long.extend(std::iter::repeat_n(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".as_slice(), 30).flatten());
    long.extend(b"Host: blocked.example\r\n\r\n");
    // A long head spread over segments is still read to its Host.
    let out = send(&h, 402, &long, &[600]);
    assert!(blocked(&out[1]), "{out:?}");
}

mod stop_page {
    use super::*;
    use blocker_common::verdict::Action;
    use blocker_user::datapath::StopPageResponse;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use support::frames::{TCP_FIN, TCP_RST, TCP_SYN};

    fn harness() -> Harness {
        let mut h = Harness::new("blocked.example\n203.0.113.66\n2001:db8:f::66\n", ALLOW);
        let r = StopPageResponse { service_url: "http://192.0.2.1".into(), blocked_by_url: "https://list-body.example/about".into() };
        h.dp.set_stop_page(Some(&r)).unwrap();
        h
    }

    struct Reply {
        seq: u32,
        ack: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        /// The TCP options as sent.
        options: Vec<u8>,
        payload: String,
    }

    /// Parses a reply frame and checks its IP and TCP checksums.
    fn reply(frame: &[u8]) -> Reply {
        let p = SlicedPacket::from_ethernet(frame).expect("reply parses");
        let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not tcp") };
        let h = t.to_header();
        match p.net.as_ref().unwrap() {
            NetSlice::Ipv4(v4) => {
                let ip = v4.header().to_header();
                assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "IPv4 checksum");
                assert_eq!(h.checksum, h.calc_checksum_ipv4(&ip, t.payload()).unwrap(), "TCP checksum");
            }
            NetSlice::Ipv6(v6) => {
                let ip = v6.header().to_header();
                assert_eq!(h.checksum, h.calc_checksum_ipv6(&ip, t.payload()).unwrap(), "TCP checksum");
            }
        }
        Reply {
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            syn: t.syn(),
            fin: t.fin(),
            rst: t.rst(),
            options: t.options().to_vec(),
            payload: String::from_utf8_lossy(t.payload()).into_owned(),
        }
    }

    #[test]
    #[ignore = "needs root"]
    fn a_listed_host_gets_the_451_response_instead_of_the_server() {
        let h = harness();
        for (i, host) in ["blocked.example", "www.blocked.example", "ab.blocked.example"].iter().enumerate() {
            let req = format!("GET /page HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n");
            let frame = segment(700 + i as u16, 0, req.as_bytes());
            let o = h.run(&frame);
            assert_eq!((o.action, o.reason, o.verdict), (XdpAction::Tx, Reason::HttpHost, Action::StopPage));
            let r = reply(&o.frame);
            assert!(r.payload.starts_with("HTTP/1.1 451 Unavailable For Legal Reasons\r\n"), "{}", r.payload);
            assert!(r.payload.contains("Link: <https://list-body.example/about>; rel=\"blocked-by\"\r\n"));
            assert!(r.payload.contains(&format!("url=http://192.0.2.1/?host={host}\"")), "{}", r.payload);
            assert!(r.fin && !r.syn && !r.rst);
            assert_eq!(r.seq, 9, "continues the server's sequence (the request's ack)");
            assert_eq!(r.ack, 500_000 + req.len() as u32, "acknowledges the request");
        }
    }

    #[test]
    #[ignore = "needs root"]
    fn the_451_echoes_the_request_s_timestamps_so_a_stack_that_requires_them_takes_it() {
        let h = harness();
        let req = b"GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n";
        let (val, ecr) = (0x1122_3344u32, 0xa0b0_c0d0u32);
        let ts = |v: u32, e: u32| [&[8u8, 10][..], &v.to_be_bytes(), &e.to_be_bytes()].concat();
        // NOP NOP TS, as Linux, Windows and Apple stacks send it; TS after a SACK block, padded
        // with EOL; no options at all.
        let usual = [&[1u8, 1][..], &ts(val, ecr)].concat();
        let after_sack = [&[1u8, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2][..], &ts(val, ecr), &[0, 0]].concat();
        let echoed = [&[1u8, 1][..], &ts(ecr, val)].concat();
        for (i, (what, options, expect)) in [("NOP NOP TS", usual, echoed.clone()), ("SACK, then TS", after_sack, echoed), ("none", vec![], vec![])].into_iter().enumerate() {
            let frame = Frame::new(
                CLIENT,
                SERVER,
                L4::Tcp { sport: 760 + i as u16, dport: 80, seq: 500_000, ack: 9, flags: TCP_ACK | TCP_PSH, options, payload: req.to_vec() },
            )
            .build();
            let o = h.run(&frame);
            assert_eq!(o.verdict, Action::StopPage, "{what}");
            let r = reply(&o.frame);
            assert!(r.payload.starts_with("HTTP/1.1 451 "), "{what}: {}", r.payload);
            assert_eq!(r.options, expect, "{what}: TSval is the client's TSecr, TSecr its TSval");
            assert_eq!((r.seq, r.ack), (9, 500_000 + req.len() as u32), "{what}");
        }
    }

    fn closing(sport: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
        Frame::new(CLIENT, SERVER, L4::Tcp { sport, dport: 80, seq, ack, flags, options: vec![], payload: vec![] }).build()
    }

    #[test]
    #[ignore = "needs root"]
    fn the_client_s_fin_after_the_451_is_reset_not_passed_to_the_server() {
        let h = harness();
        let req = "GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n";
        let o = h.run(&segment(750, 0, req.as_bytes()));
        assert_eq!(o.verdict, Action::StopPage);
        let page = reply(&o.frame);
        // The client acknowledges the page and its FIN, then closes: its FIN acknowledges
        // data the server never sent.
        let (seq, ack) = (500_000 + req.len() as u32, 9 + page.payload.len() as u32 + 1);
        let bare_ack = h.run(&closing(750, seq, ack, TCP_ACK));
        assert_eq!((bare_ack.action, bare_ack.reason), (XdpAction::Pass, Reason::NoMatch), "a bare ACK costs no lookup");
        let fin = h.run(&closing(750, seq, ack, TCP_ACK | TCP_FIN));
        assert_eq!((fin.action, fin.reason, fin.verdict), (XdpAction::Tx, Reason::FlowBlocked, Action::TcpReset));
        let rst = reply(&fin.frame);
        assert!(rst.rst && !rst.fin && !rst.syn);
        assert_eq!(rst.seq, ack, "the sequence number the client expects next: accepted (RFC 5961)");
        // Another flow's FIN, and a FIN on these ports after a new SYN, pass.
        let other = h.run(&closing(751, seq, ack, TCP_ACK | TCP_FIN));
        assert_eq!((other.action, other.reason), (XdpAction::Pass, Reason::NoMatch));
        let syn = h.run(&Frame::new(CLIENT, SERVER, L4::Tcp { sport: 750, dport: 80, seq: 1, ack: 0, flags: TCP_SYN, options: vec![], payload: vec![] }).build());
        assert_eq!(syn.action, XdpAction::Pass);
        let again = h.run(&closing(750, 2, 1, TCP_ACK | TCP_FIN));
        assert_eq!((again.action, again.reason), (XdpAction::Pass, Reason::NoMatch));
    }

    fn to_listed(dst: &str, sport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let src = if dst.contains(':') { "2001:db8:c::2" } else { CLIENT };
        Frame::new(src, dst, L4::Tcp { sport, dport: 80, seq, ack, flags, options: vec![], payload: payload.to_vec() }).build()
    }

    #[test]
    #[ignore = "needs root"]
    fn http_to_a_listed_address_is_answered_without_the_server() {
        let h = harness();
        for (i, dst) in ["203.0.113.66", "2001:db8:f::66"].iter().enumerate() {
            let sport = 800 + i as u16;
            let syn = h.run(&to_listed(dst, sport, 1000, 0, TCP_SYN, &[]));
            assert_eq!((syn.action, syn.verdict), (XdpAction::Tx, Action::StopPage), "{dst}");
            let sa = reply(&syn.frame);
            assert!(sa.syn && !sa.rst && sa.ack == 1001);
            let cookie = sa.seq;
            // A request that does not acknowledge our SYN-ACK (forged) gets nothing.
            let forged = h.run(&to_listed(dst, sport, 1001, cookie.wrapping_add(7), TCP_ACK | TCP_PSH, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            assert_eq!((forged.action, forged.verdict), (XdpAction::Drop, Action::Drop));
            let bare_ack = h.run(&to_listed(dst, sport, 1001, cookie.wrapping_add(1), TCP_ACK, &[]));
            assert_eq!(bare_ack.action, XdpAction::Drop);
            let req = b"GET / HTTP/1.1\r\nHost: anything.example\r\n\r\n";
            let resp = h.run(&to_listed(dst, sport, 1001, cookie.wrapping_add(1), TCP_ACK | TCP_PSH, req));
            assert_eq!((resp.action, resp.verdict), (XdpAction::Tx, Action::StopPage));
            let r = reply(&resp.frame);
            assert!(r.payload.starts_with("HTTP/1.1 451 "), "{}", r.payload);
            assert!(r.payload.contains("url=http://192.0.2.1/?host=\""));
            assert_eq!((r.seq, r.ack), (cookie.wrapping_add(1), 1001 + req.len() as u32));
            let fin = h.run(&to_listed(dst, sport, 1001 + req.len() as u32, cookie.wrapping_add(2 + resp.frame.len() as u32), TCP_ACK | TCP_FIN, &[]));
            assert_eq!((fin.action, fin.verdict), (XdpAction::Tx, Action::TcpReset));
            let rst = h.run(&to_listed(dst, sport, 1, 0, TCP_RST, &[]));
            assert_eq!(rst.action, XdpAction::Drop);
        }
    }

    #[test]
    #[ignore = "needs root"]
    fn other_ports_to_a_listed_address_still_get_a_reset() {
        let h = harness();
        let f = Frame::new(CLIENT, "203.0.113.66", L4::Tcp { sport: 900, dport: 443, seq: 1, ack: 0, flags: TCP_SYN, options: vec![], payload: vec![] }).build();
        let o = h.run(&f);
        assert_eq!((o.action, o.verdict), (XdpAction::Tx, Action::TcpReset));
    }
}

#[test]
#[ignore = "needs root"]
fn a_request_head_whose_first_segment_comes_late_is_read_in_order() {
    let h = Harness::new(BLOCK, ALLOW);
    let syn = Frame::new(CLIENT, SERVER, L4::Tcp { sport: 900, dport: 80, seq: 500_000 - 1, ack: 0, flags: TCP_SYN, options: vec![], payload: vec![] });
    assert_eq!(h.run(&syn.build()).reason, Reason::NoMatch);
    let req = b"GET /a/long/path HTTP/1.1\r\nHost: blocked.example\r\n\r\n";
    let cut = 20;
    // The second segment before the first: dropped (the client resends it after the first).
    let o = h.run(&segment(900, cut, &req[cut..]));
    assert_eq!((o.action, o.reason), (XdpAction::Drop, Reason::HttpOutOfOrder));
    assert_eq!(h.run(&segment(900, 0, &req[..cut])).reason, Reason::HttpPending);
    assert!(blocked(&h.run(&segment(900, cut, &req[cut..]))));
}

#[test]
#[ignore = "needs root"]
fn empty_lines_before_the_request_line_do_not_hide_it() {
    let h = Harness::new(BLOCK, ALLOW);
    // RFC 9112 §2.2: servers ignore empty lines before the request line, so must the reader.
    for (i, lead) in ["\r\n", "\n", "\r\n\r\n\r\n", "\n\r\n\r"].iter().enumerate() {
        let req = format!("{lead}GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n");
        let out = send(&h, 950 + i as u16, req.as_bytes(), &[]);
        assert!(blocked(&out[0]), "{lead:?}: {out:?}");
    }
    // In a segment of its own: the request in the next one is read on.
    let req = b"\r\n\r\nGET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n";
    let out = send(&h, 960, req, &[4]);
    assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::HttpPending));
    assert!(blocked(&out[1]), "{out:?}");
    // An empty line then something that is not a request: not read further.
    let out = send(&h, 961, b"\r\n\x00\x01binary", &[]);
    assert_eq!((out[0].action, out[0].reason), (XdpAction::Pass, Reason::HttpUnparsed));
}
