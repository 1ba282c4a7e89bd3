//! The name filter (blocker-common name_filter.rs) through the real kernel program: a bit per
//! NAMES key, per generation slot, tested before each NAMES lookup. It may only ever save a
//! lookup: every listed name of a large list is still found, in every mode, through DNS, TLS
//! and HTTP; names whose hashes share a bit with listed ones still pass; and the filter of a
//! slot switches with the slot.

mod support;

use std::collections::HashSet;

use blocker_common::{
    name::HashKey,
    name_filter,
    verdict::{Action, Reason},
};
use blocker_user::{
    datapath::{DnsPolicy, Options, XdpAction, name_hash},
    lists::ListSet,
};
use support::{
    Harness, dns,
    frames::{Frame, L4, TCP_ACK, TCP_PSH, udp},
    list_set,
    tls::{Hello, segment, sni_offset, stream},
};

/// A fixed key, so the test can compute which names share filter bits.
const KEY: HashKey = HashKey { k0: 0x5eed_0f_f11e_7e57, k1: 0x0123_4567_89ab_cdef };

const CLIENT: &str = "192.0.2.2";
const RESOLVER: &str = "198.51.100.53";
const SERVER: &str = "203.0.113.10";

/// Listed names of each kind in the large list.
const PER_KIND: usize = 4000;

fn options() -> Options {
    Options { hash_key: Some(KEY), ..Options::default() }
}

fn load(set: ListSet) -> Harness {
    let mut h = Harness::with_set(set, options());
    h.dp.set_dns(&DnsPolicy::stop_page(Some("192.0.2.80".parse().unwrap()), None)).expect("writing the DNS policy");
    h
}


/// What the program does with a DNS query for `name`.
fn dns(h: &Harness, name: &str) -> (XdpAction, Reason, Action) {
    let o = h.run(&udp(CLIENT, RESOLVER, 53, &dns::query(name, 0x4242)).build());
    (o.action, o.reason, o.verdict)
}

const DNS_BLOCKED: (XdpAction, Reason, Action) = (XdpAction::Tx, Reason::DnsName, Action::DnsAnswer);
const DNS_NOT_LISTED: (XdpAction, Reason, Action) = (XdpAction::Pass, Reason::NoMatch, Action::Pass);
const DNS_ALLOWED: (XdpAction, Reason, Action) = (XdpAction::Pass, Reason::AllowList, Action::Pass);

/// The generation's names: `n<i>.big.example` (the name and below), `=e<i>.big.example` (the
/// name only), `*.b<i>.big.example` (only below), and allow entries `ok.n<i>.big.example`.
fn big_lists(tag: &str) -> (String, String) {
    let mut block = String::new();
    let mut allow = String::new();
    for i in 0..PER_KIND {
        block += &format!("n{i}.{tag}.example\n=e{i}.{tag}.example\n*.b{i}.{tag}.example\n");
        allow += &format!("ok.n{i}.{tag}.example\n");
    }
    (block, allow)
}

/// The filter bit (map index and mask within the slot's half) a name's key sets.
fn bit(name: &str) -> (u32, u64) {
    name_filter::index_and_mask(0, name_hash(&KEY, name))
}

#[test]
#[ignore = "needs root"]
fn every_listed_name_of_a_large_list_is_still_found_in_every_mode() {
    let (block, allow) = big_lists("big");
    let h = load(list_set(&block, &allow));
    assert_eq!(h.report.names_block, 3 * PER_KIND);
    for i in 0..PER_KIND {
        let n = format!("n{i}.big.example");
        assert_eq!(dns(&h, &n), DNS_BLOCKED, "{n}");
        assert_eq!(dns(&h, &format!("www.{n}")), DNS_BLOCKED, "below {n}");
        assert_eq!(dns(&h, &format!("ok.{n}")), DNS_ALLOWED, "the allow entry below {n}");
        assert_eq!(dns(&h, &format!("x.ok.{n}")), DNS_ALLOWED, "below the allow entry below {n}");
        let e = format!("e{i}.big.example");
        assert_eq!(dns(&h, &e), DNS_BLOCKED, "{e}");
        assert_eq!(dns(&h, &format!("www.{e}")), DNS_NOT_LISTED, "=entries do not cover names below {e}");
        let b = format!("b{i}.big.example");
        assert_eq!(dns(&h, &b), DNS_NOT_LISTED, "*.entries do not cover {b} itself");
        assert_eq!(dns(&h, &format!("a.{b}")), DNS_BLOCKED, "below {b}");
        // Label boundaries: a longer label is another name.
        assert_eq!(dns(&h, &format!("xn{i}.big.example")), DNS_NOT_LISTED, "x{n}");
    }
}

#[test]
#[ignore = "needs root"]
fn listed_names_are_found_by_tls_and_http_too() {
    let (block, allow) = big_lists("web");
    let h = load(list_set(&block, &allow));
    // A sample across the list: every hundredth name, in one and in two segments, and as a
    // Host header. Source ports keep the flows apart (a blocked flow is remembered).
    let mut port = 1000u16;
    for i in (0..PER_KIND).step_by(100) {
        let name = format!("www.n{i}.web.example");
        let s = stream(&Hello { sni: Some(&name), before: 8, key_share: 1248 });
        port += 1;
        let one = h.run(&segment(CLIENT, SERVER, port, 0, &s).build());
        assert_eq!((one.reason, one.verdict), (Reason::Sni, Action::TcpReset), "{name} in one segment");
        port += 1;
        // Cut inside the name: the reader waits in FLOWS and judges the name in segment 2.
        let cut = sni_offset(&s, &name) + 3;
        let first = h.run(&segment(CLIENT, SERVER, port, 0, &s[..cut]).build());
        assert_eq!((first.reason, first.action), (Reason::TlsPending, XdpAction::Pass), "{name}: first segment");
        let second = h.run(&segment(CLIENT, SERVER, port, cut, &s[cut..]).build());
        assert_eq!((second.reason, second.verdict), (Reason::Sni, Action::TcpReset), "{name} in two segments");
        port += 1;
        let req = format!("GET / HTTP/1.1\r\nHost: {name}\r\n\r\n");
        let l4 = L4::Tcp { sport: port, dport: 80, seq: 1000, ack: 5000, flags: TCP_ACK | TCP_PSH, options: vec![], payload: req.into_bytes() };
        let http = h.run(&Frame::new(CLIENT, SERVER, l4).build());
        assert_eq!(http.reason, Reason::HttpHost, "{name} as a Host");
        assert_ne!(http.action, XdpAction::Pass, "{name} as a Host");
        let unlisted = format!("www.m{i}.web.example");
        port += 1;
        let o = h.run(&segment(CLIENT, SERVER, port, 0, &stream(&Hello { sni: Some(&unlisted), ..Default::default() })).build());
        assert_eq!((o.action, o.reason), (XdpAction::Pass, Reason::NoMatch), "{unlisted}");
    }
}

#[test]
#[ignore = "needs root"]
fn names_sharing_a_filter_bit_with_listed_ones_still_pass() {
    let (block, allow) = big_lists("share");
    let h = load(list_set(&block, &allow));
    let listed: HashSet<(u32, u64)> = (0..PER_KIND)
        .flat_map(|i| [format!("n{i}.share.example"), format!("e{i}.share.example"), format!("b{i}.share.example"), format!("ok.n{i}.share.example")])
        .map(|n| bit(&n))
        .collect();
    // Unlisted names whose whole-name hash lands on a listed name's bit: the filter sends them
    // on to NAMES, which must still say "not listed". 16 000 listed hashes set about 1 bit in
    // 2 000, so a few hundred thousand candidates give dozens.
    let colliding: Vec<String> = (0..2_000_000u32).map(|j| format!("c{j}.share.example")).filter(|n| listed.contains(&bit(n))).take(40).collect();
    assert!(colliding.len() >= 20, "found only {} unlisted names sharing a bit", colliding.len());
    for n in &colliding {
        assert_eq!(dns(&h, n), DNS_NOT_LISTED, "{n} shares a bit with a listed name");
        // As a suffix: the lookup for it happens, finds nothing, and the walk goes on.
        assert_eq!(dns(&h, &format!("www.{n}")), DNS_NOT_LISTED, "below {n}");
    }
    // And names whose bit no listed name sets pass without a NAMES lookup, as before.
    let clear = (0..1000u32).map(|j| format!("d{j}.share.example")).find(|n| !listed.contains(&bit(n))).expect("most bits are clear");
    assert_eq!(dns(&h, &clear), DNS_NOT_LISTED, "{clear}");
}

#[test]
#[ignore = "needs root"]
fn the_filter_switches_with_the_generation() {
    let (block_a, allow_a) = big_lists("gen-a");
    let (block_b, allow_b) = big_lists("gen-b");
    let set_a = list_set(&block_a, &allow_a);
    let set_b = list_set(&block_b, &allow_b);
    let mut h = load(set_a);
    let sample = |h: &Harness, tag: &str, want: (XdpAction, Reason, Action)| {
        for i in (0..PER_KIND).step_by(37) {
            let n = format!("www.n{i}.{tag}.example");
            assert_eq!(dns(h, &n), want, "{n} (live slot {})", h.dp.live_slot());
        }
    };
    sample(&h, "gen-a", DNS_BLOCKED);
    sample(&h, "gen-b", DNS_NOT_LISTED);
    h.dp.install(&set_b).expect("installing generation b");
    sample(&h, "gen-b", DNS_BLOCKED);
    sample(&h, "gen-a", DNS_NOT_LISTED);
    // Back to generation a in one write: its filter bits are there with its names.
    assert!(h.dp.switch_to_previous().expect("switching back"));
    sample(&h, "gen-a", DNS_BLOCKED);
    sample(&h, "gen-b", DNS_NOT_LISTED);
    // The rollback window's end leaves the live one whole, filter and all.
    h.dp.end_rollback_window().expect("ending the rollback window");
    sample(&h, "gen-a", DNS_BLOCKED);
    // A third generation into the other slot: its filter is written whole again.
    h.dp.install(&set_b).expect("installing generation b again");
    sample(&h, "gen-b", DNS_BLOCKED);
    sample(&h, "gen-a", DNS_NOT_LISTED);
}
