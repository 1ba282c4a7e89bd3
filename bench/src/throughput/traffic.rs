//! The traffic mix: classes of frames with a share of the frames each, many templates per class
//! (ports, names, address bases), and in the generator every template spread over
//! [`SPREAD`](super::bpf::SPREAD) destinations and sources.
//!
//! Every class has its own frame length, so the sink's per-length counts say which classes
//! arrived (the listed ones must not, where something blocks). Addresses are documentation
//! ranges only: sources in 192.0.2.0/25 and 2001:db8:c::/64; allowed destinations in
//! 198.51.100.0/24, 203.0.113.0/25 (the same /24 as a listed prefix, so the blocker's coarse
//! filter sends it to the trie) and 2001:db8:e::/48; listed destinations in 203.0.113.128/25 and
//! 2001:db8:bad::/48.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use blocker_tests::packets::{
    dns,
    frames::{Frame, L4, TCP_ACK, TCP_PSH, TCP_SYN},
    tls::{Hello, segment, stream},
};

use super::{
    bpf::{COPY_BYTES, FILLER, SPREAD},
    net::{DUT_IN_MAC, GEN_MAC, mac_bytes},
};

pub struct Class {
    pub name: &'static str,
    /// Percent of all frames.
    pub share: u32,
    /// The DUT should stop it (a listed destination) in every variant but plain forwarding.
    pub listed: bool,
    pub templates: Vec<Vec<u8>>,
}

impl Class {
    /// The length every frame of the class has.
    pub fn len(&self) -> usize {
        self.templates[0].len()
    }
}

/// Templates per class.
const TEMPLATES: usize = 16;

/// Linux's TCP timestamps option (with two NOPs), as on almost every real segment.
const TS_OPTION: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 1];

fn tcp(src: String, dst: String, sport: u16, dport: u16, flags: u8, options: Vec<u8>, payload: Vec<u8>) -> Frame {
    Frame::new(&src, &dst, L4::Tcp { sport, dport, seq: 0x1000_0000 + u32::from(sport), ack: if flags & TCP_ACK != 0 { 5000 } else { 0 }, flags, options, payload })
}

fn udp(src: String, dst: String, sport: u16, dport: u16, payload: Vec<u8>) -> Frame {
    Frame::new(&src, &dst, L4::Udp { sport, dport, payload })
}


/// Source and destination bases: the generator adds k ∈ [0, SPREAD) to the destination's last
/// byte and subtracts it from the source's, so the bases leave room for that.
fn v4(net: &str, base: u8, t: usize) -> String {
    format!("{net}.{}", base as usize + t % 2)
}
fn src4(t: usize) -> String {
    format!("192.0.2.{}", 110 + t % 16)
}
fn v6(net: &str, t: usize) -> String {
    format!("{net}:{:x}::{:x}", t, 0x10)
}
fn src6(t: usize) -> String {
    format!("2001:db8:c::{:x}", 0x1ff0 + t)
}

/// The mix; lengths are checked distinct. With `only`, just the classes whose name contains
/// it, in the same proportions (to look at one kind of traffic).
pub fn mix(only: Option<&str>) -> Result<Vec<Class>> {
    let opts = || TS_OPTION.to_vec();
    let data = |n: usize| vec![FILLER; n];
    let sport = |t: usize| 40_000 + 7 * t as u16;
    let class = |name, share, listed, f: &dyn Fn(usize) -> Frame| Class { name, share, listed, templates: (0..TEMPLATES).map(|t| finish(f(t).build())).collect() };
    let hello = |t: usize| stream(&Hello { sni: Some(["www.allowed.example", "cdn.allowed.example", "api.allowed.example"][t % 3]), before: 8, key_share: 32 });
    let http = |t: usize| format!("GET /a/{t:04} HTTP/1.1\r\nHost: www.allowed.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n").into_bytes();

    let classes = vec![
        class("tcp ack v4", 30, false, &|t| tcp(src4(t), v4("198.51.100", 1, t), sport(t), 443, TCP_ACK, opts(), vec![])),
        class("tcp data 1500 v4", 25, false, &|t| tcp(src4(t), v4("198.51.100", 1, t), sport(t), 443, TCP_ACK | TCP_PSH, opts(), data(1448))),
        class("tcp ack v6", 8, false, &|t| tcp(src6(t), v6("2001:db8:e", t), sport(t), 443, TCP_ACK, opts(), vec![])),
        class("tcp data 1500 v6", 7, false, &|t| tcp(src6(t), v6("2001:db8:e", t), sport(t), 443, TCP_ACK | TCP_PSH, opts(), data(1424))),
        class("tcp data 576 v4, shared /24", 5, false, &|t| tcp(src4(t), v4("203.0.113", 10, t), sport(t), 443, TCP_ACK | TCP_PSH, opts(), data(524))),
        class("udp 1250 (QUIC-like) v4", 8, false, &|t| udp(src4(t), v4("198.51.100", 1, t), sport(t), 443, data(1250))),
        class("dns query v4", 4, false, &|t| udp(src4(t), v4("198.51.100", 1, t), sport(t), 53, dns::query(&format!("host{t:02}.allowed.example"), t as u16))),
        class("dns query v6", 1, false, &|t| udp(src6(t), v6("2001:db8:e", t), sport(t), 53, dns::query(&format!("host{t:02}.www.allowed.example"), t as u16))),
        class("http request v4", 1, false, &|t| tcp(src4(t), v4("198.51.100", 1, t), sport(t), 80, TCP_ACK | TCP_PSH, opts(), http(t))),
        class("tls clienthello v4", 1, false, &|t| {
            let mut f = segment(&src4(t), &v4("198.51.100", 1, t), sport(t), 0, &hello(t));
            if let L4::Tcp { options, .. } = &mut f.l4 {
                *options = opts();
            }
            f
        }),
        class("tcp syn v4, listed", 4, true, &|t| tcp(src4(t), v4("203.0.113", 130, t), sport(t), 443, TCP_SYN, vec![], vec![]).with_syn_options()),
        class("tcp data v4, listed", 2, true, &|t| tcp(src4(t), v4("203.0.113", 130, t), sport(t), 443, TCP_ACK | TCP_PSH, opts(), data(900))),
        class("udp v4, listed", 1, true, &|t| udp(src4(t), v4("203.0.113", 130, t), sport(t), 443, data(700))),
        class("tcp syn v6, listed", 2, true, &|t| tcp(src6(t), v6("2001:db8:bad", t), sport(t), 443, TCP_SYN, vec![], vec![]).with_syn_options()),
        class("udp v6, listed", 1, true, &|t| udp(src6(t), v6("2001:db8:bad", t), sport(t), 443, data(500))),
    ];
    let total: u32 = classes.iter().map(|c| c.share).sum();
    if total != 100 {
        bail!("the mix's shares add up to {total}%, not 100%");
    }
    let classes: Vec<Class> = match only {
        Some(f) => classes.into_iter().filter(|c| c.name.contains(f)).collect(),
        None => classes,
    };
    if classes.is_empty() {
        bail!("no class of the mix matches {only:?}");
    }
    let mut seen = BTreeMap::new();
    for c in &classes {
        if c.templates.iter().any(|t| t.len() != c.len()) {
            bail!("class {} has templates of different lengths", c.name);
        }
        if c.len() < 54 || c.len() > 1514 {
            bail!("class {}: {} bytes is outside 54..=1514", c.name, c.len());
        }
        if let Some(other) = seen.insert(c.len(), c.name) {
            bail!("classes {other} and {} have the same length {}", c.name, c.len());
        }
    }
    Ok(classes)
}

/// Sets the Ethernet addresses (generator → DUT) and checks that the template holds what the
/// generator rewrites.
fn finish(mut f: Vec<u8>) -> Vec<u8> {
    f[..6].copy_from_slice(&mac_bytes(DUT_IN_MAC));
    f[6..12].copy_from_slice(&mac_bytes(GEN_MAC));
    assert!(f.len() >= 54);
    assert!(f.iter().skip(COPY_BYTES).all(|&b| b == FILLER), "a frame carries more than filler beyond the bytes the generator copies");
    // The generator's spread must not carry out of the last address byte.
    let (dst, src) = if f[12..14] == [0x08, 0x00] { (33, 29) } else { (53, 37) };
    assert!(f[dst] as usize + SPREAD as usize - 1 <= 255 && f[src] >= SPREAD - 1, "address bases leave no room for the spread");
    f
}

/// The order templates are sent in: one cycle gives each class its share of the slots (one
/// per percent), the classes interleaved; each class takes its templates in turn, over enough
/// cycles to use them all.
pub fn schedule(classes: &[Class]) -> Vec<(usize, usize)> {
    let total: u32 = classes.iter().map(|c| c.share).sum();
    // At each slot, the class furthest behind its share.
    let mut credit = vec![0i64; classes.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, cl) in classes.iter().enumerate() {
            credit[c] += i64::from(cl.share);
        }
        let c = (0..classes.len()).max_by_key(|&c| (credit[c], std::cmp::Reverse(c))).expect("classes");
        credit[c] -= i64::from(total);
        order.push(c);
    }
    let mut next = vec![0usize; classes.len()];
    let mut all = Vec::with_capacity(order.len() * TEMPLATES);
    for _ in 0..TEMPLATES {
        for &c in &order {
            all.push((c, next[c] % classes[c].templates.len()));
            next[c] += 1;
        }
    }
    all
}
