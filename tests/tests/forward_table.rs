//! Router mode's XDP forwarding, frame by frame (BPF_PROG_TEST_RUN with the frame received on a
//! real port): what the program forwards itself, how it rewrites the frame, and every case it
//! leaves to the kernel untouched, each counted under its outcome.
//!
//! The test builds its own namespace: `in0` (the subscriber port, MAC `ROUTER_MAC`), `out0`
//! (the upstream, in the forwarding list, its veth peer with GRO on so it takes redirected
//! frames) and `side0` (another upstream, not in the list). Routes and neighbours are static;
//! one on-link address has no neighbour, one route has a small (locked) MTU.

mod support;

use std::process::Command;

use blocker_common::forward::OUTCOME_NAMES;
use blocker_tests::rawbpf::{self, in_netns};
use blocker_user::datapath::{Datapath, ForwardCountsSum, Options, XdpAction, route_events::RouteEvents};
use support::{
    list_set,
    frames::{self, ROUTER_MAC, TCP_ACK, TCP_SYN, tcp, udp},
};

const NEXT_HOP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];
const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const CLIENT4: &str = "192.0.2.2";
const CLIENT6: &str = "2001:db8:c::2";

/// A network namespace that is deleted when dropped, also when the test fails.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("blkfwd-{}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        Netns(name)
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["ip", "-n", &self.0];
        all.extend_from_slice(args);
        sh(&all);
    }

    fn exec(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", &self.0];
        all.extend_from_slice(args);
        sh(&all);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("running a set-up command");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn build(ns: &Netns) {
    ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.default.accept_dad=0"]);
    ns.ip(&["link", "set", "lo", "up"]);
    for (port, peer, addr) in [("in0", "cl0", mac(ROUTER_MAC)), ("out0", "up0", mac(OUT_MAC)), ("side0", "sd0", "02:00:00:00:00:20".into())] {
        ns.ip(&["link", "add", "name", port, "address", &addr, "type", "veth", "peer", "name", peer]);
        ns.ip(&["link", "set", port, "up"]);
        ns.ip(&["link", "set", peer, "up"]);
    }
    // A veth takes redirected frames while its peer has GRO on (or an XDP program).
    for peer in ["up0", "sd0"] {
        ns.exec(&["ethtool", "-K", peer, "gro", "on"]);
    }
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "in0"]);
    ns.ip(&["addr", "add", "2001:db8:c::1/64", "dev", "in0", "nodad"]);
    ns.ip(&["addr", "add", "198.51.100.1/24", "dev", "out0"]);
    ns.ip(&["addr", "add", "2001:db8:e::1/64", "dev", "out0", "nodad"]);
    ns.ip(&["addr", "add", "198.18.0.1/30", "dev", "side0"]);
    let hop = mac(NEXT_HOP_MAC);
    ns.ip(&["neigh", "replace", "198.51.100.2", "lladdr", &hop, "dev", "out0", "nud", "permanent"]);
    ns.ip(&["neigh", "replace", "2001:db8:e::2", "lladdr", &hop, "dev", "out0", "nud", "permanent"]);
    ns.ip(&["neigh", "replace", "198.18.0.2", "lladdr", &hop, "dev", "side0", "nud", "permanent"]);
    ns.ip(&["route", "add", "203.0.113.0/25", "via", "198.51.100.2", "dev", "out0"]);
    // bpf_fib_lookup honours a route's MTU only when it is locked (the egress device's always).
    ns.ip(&["route", "add", "203.0.113.192/26", "via", "198.51.100.2", "dev", "out0", "mtu", "lock", "1280"]);
    ns.ip(&["route", "add", "203.0.113.128/26", "via", "198.18.0.2", "dev", "side0"]);
    ns.ip(&["-6", "route", "add", "2001:db8:f::/48", "via", "2001:db8:e::2", "dev", "out0"]);
}

fn ifindex(name: &str) -> u32 {
    rawbpf::ifindex(&std::ffi::CString::new(name).unwrap()).unwrap()
}

/// The frame with its IPv4 TTL (and header checksum) or IPv6 hop limit set.
fn with_ttl(mut f: Vec<u8>, ttl: u8) -> Vec<u8> {
    if f[12..14] == [0x08, 0x00] {
        f[22] = ttl;
        f[24..26].copy_from_slice(&[0, 0]);
        let c = frames::checksum(&f[14..34], 0);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    } else {
        f[21] = ttl;
    }
    f
}

struct Run<'a> {
    dp: &'a Datapath,
    port: u32,
}

impl Run<'_> {
    fn counts(&self) -> ForwardCountsSum {
        self.dp.forward_counts().expect("FORWARD_COUNTS")
    }

    /// Runs `frame` received on `in0`; asserts the action and that exactly one outcome was
    /// counted, `outcome` (None: none, the frame never reached forwarding); returns the frame.
    fn expect(&self, frame: &[u8], action: XdpAction, outcome: Option<&str>, what: &str) -> Vec<u8> {
        let before = self.counts();
        let out = self.dp.run_frame_on(self.port, frame).expect("test run");
        let after = self.counts();
        assert_eq!(out.action, action, "{what}");
        let grew: Vec<&str> = OUTCOME_NAMES.iter().zip(before.outcomes.iter().zip(after.outcomes)).filter(|(_, (b, a))| a > *b).map(|(n, _)| *n).collect();
        assert_eq!(grew, outcome.into_iter().collect::<Vec<_>>(), "{what}: outcomes counted");
        out.frame
    }

    /// Forwarded: returns the frame and whether its route came from the route cache.
    fn forwarded(&self, frame: &[u8], what: &str) -> (Vec<u8>, bool) {
        let before = self.counts().route_cached;
        let out = self.expect(frame, XdpAction::Redirect, Some("forwarded"), what);
        (out, self.counts().route_cached > before)
    }

    /// Left to the kernel: XDP_PASS with the frame exactly as it came.
    fn to_kernel(&self, frame: &[u8], outcome: &str, what: &str) {
        let out = self.expect(frame, XdpAction::Pass, Some(outcome), what);
        assert_eq!(out, frame, "{what}: the frame must reach the kernel untouched");
    }
}

/// What a forwarded frame must be: the original with the next hop's and the egress port's
/// MACs, TTL or hop limit one less, a valid IPv4 header checksum, nothing else changed.
fn assert_forwarded(orig: &[u8], out: &[u8]) {
    assert_eq!(out.len(), orig.len());
    assert_eq!(out[..6], NEXT_HOP_MAC, "destination MAC: the next hop's");
    assert_eq!(out[6..12], OUT_MAC, "source MAC: the egress port's");
    let mut expected = orig.to_vec();
    expected[..6].copy_from_slice(&NEXT_HOP_MAC);
    expected[6..12].copy_from_slice(&OUT_MAC);
    if orig[12..14] == [0x08, 0x00] {
        assert_eq!(out[22], orig[22] - 1, "TTL");
        assert_eq!(frames::checksum(&out[14..34], 0), 0, "IPv4 header checksum");
        expected[22] -= 1;
        expected[24..26].copy_from_slice(&out[24..26]);
    } else {
        assert_eq!(out[21], orig[21] - 1, "hop limit");
        expected[21] -= 1;
    }
    assert_eq!(out, expected, "only MACs, TTL and checksum change");
}

#[test]
#[ignore = "needs root"]
fn allowed_frames_are_routed_in_xdp_and_everything_else_goes_to_the_kernel_untouched() {
    let ns = Netns::create();
    build(&ns);
    in_netns(&ns.0, || {
        let mut dp = Datapath::load(Options::default()).expect("loading the XDP program (root needed)");
        dp.install(&list_set("203.0.113.66\n", "")).expect("installing the list");
        let ports = dp.set_xdp_forward("in0", &["out0".to_string()]).expect("XDP forwarding on");
        assert!(ports[0].forwarding, "{ports:?}");
        let r = Run { dp: &dp, port: ifindex("in0") };

        // Forwarded: IPv4 and IPv6, TCP and UDP, rewritten as a router would.
        for f in [
            tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).payload(b"data"),
            udp(CLIENT4, "203.0.113.11", 53, b"query"),
            tcp(CLIENT6, "2001:db8:f::10", 443, TCP_ACK).payload(b"data"),
            udp(CLIENT6, "2001:db8:f::11", 443, &[0u8; 600]),
        ] {
            let orig = f.build();
            let out = r.expect(&orig, XdpAction::Redirect, Some("forwarded"), &format!("{f:?}"));
            assert_forwarded(&orig, &out);
        }
        // A TTL of 2 leaves as 1 (the next router's to expire), with the checksum carried.
        let orig = with_ttl(tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).build(), 2);
        assert_forwarded(&orig, &r.expect(&orig, XdpAction::Redirect, Some("forwarded"), "TTL 2"));

        // Listed: judged first, answered with a reset, never forwarded.
        r.expect(&tcp(CLIENT4, "203.0.113.66", 443, TCP_SYN).build(), XdpAction::Tx, None, "a listed address");

        // Each case the kernel must handle, untouched.
        r.to_kernel(&with_ttl(tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).build(), 1), "ttl_expired", "IPv4 TTL 1");
        r.to_kernel(&with_ttl(tcp(CLIENT6, "2001:db8:f::10", 443, TCP_ACK).build(), 1), "ttl_expired", "IPv6 hop limit 1");
        r.to_kernel(&tcp(CLIENT4, "198.51.100.77", 443, TCP_ACK).build(), "no_neighbour", "an on-link address with no neighbour entry");
        r.to_kernel(&tcp(CLIENT4, "203.0.113.200", 443, TCP_ACK).payload(&[0u8; 1400]).build(), "frag_needed", "larger than the route's MTU");
        r.to_kernel(&tcp(CLIENT4, "203.0.113.150", 443, TCP_ACK).build(), "port_not_allowed", "routed out of a port not in the list");
        r.to_kernel(&tcp(CLIENT4, "192.0.2.1", 22, TCP_SYN).build(), "kernel", "addressed to the router itself");
        r.to_kernel(&tcp(CLIENT4, "192.0.2.255", 9, TCP_SYN).build(), "kernel", "the subnet's broadcast address");
        r.to_kernel(&udp(CLIENT4, "224.0.0.251", 5353, b"mdns").build(), "kernel", "IPv4 multicast");
        r.to_kernel(&tcp("127.0.0.1", "203.0.113.10", 443, TCP_ACK).build(), "kernel", "a loopback source");
        r.to_kernel(&tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).ipv4_options(&[0x94, 0x04, 0, 0]).build(), "kernel", "IPv4 options (router alert)");
        r.to_kernel(&tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).vlan(0x8100, 10).build(), "kernel", "VLAN-tagged");
        r.to_kernel(&tcp(CLIENT6, "2001:db8:f::10", 443, TCP_ACK).ext(0, &[0; 6]).build(), "kernel", "an IPv6 hop-by-hop header");
        r.to_kernel(&udp(CLIENT6, "ff02::fb", 5353, b"mdns").build(), "kernel", "IPv6 multicast");
        r.to_kernel(&tcp("fe80::2", "2001:db8:f::10", 443, TCP_ACK).build(), "kernel", "a link-local source");
        r.to_kernel(&tcp(CLIENT6, "::ffff:203.0.113.10", 443, TCP_ACK).build(), "kernel", "an IPv4-mapped destination");
        let mut other_mac = tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).build();
        other_mac[5] ^= 0x40;
        r.to_kernel(&other_mac, "kernel", "sent to another MAC (a promiscuous port)");

        // The subscriber port's MAC changes: frames to the old one go to the kernel until the
        // next check of the ports writes the new one, and then are forwarded again.
        let allowed = tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).build();
        let new_mac = [0x02, 0, 0, 0, 0, 0x03];
        Command::new("ip").args(["link", "set", "in0", "address", &mac(new_mac)]).status().unwrap();
        let mut to_new = allowed.clone();
        to_new[..6].copy_from_slice(&new_mac);
        r.to_kernel(&to_new, "kernel", "sent to the port's new MAC before the check");
        assert!(dp.sync_port_mac("in0").unwrap(), "the check sees the new MAC");
        assert!(!dp.sync_port_mac("in0").unwrap(), "and only once");
        let r = Run { dp: &dp, port: ifindex("in0") };
        assert_forwarded(&to_new, &r.expect(&to_new, XdpAction::Redirect, Some("forwarded"), "sent to the new MAC"));
        r.to_kernel(&allowed, "kernel", "sent to the old MAC");

        // The bypass switch: everything to the kernel, nothing counted as forwarding.
        dp.set_bypass(true).unwrap();
        let r = Run { dp: &dp, port: ifindex("in0") };
        assert_eq!(r.expect(&to_new, XdpAction::Pass, None, "bypass on"), to_new);
        dp.set_bypass(false).unwrap();

        // Switched off: router mode as before.
        dp.clear_xdp_forward().unwrap();
        let r = Run { dp: &dp, port: ifindex("in0") };
        assert_eq!(r.expect(&to_new, XdpAction::Pass, None, "forwarding off"), to_new);
        assert!(dp.forward_port_indexes().unwrap().is_empty());
        Ok(())
    })
    .unwrap();
}

#[test]
#[ignore = "needs root"]
fn a_port_that_cannot_take_redirected_frames_is_left_out() {
    let ns = Netns::create();
    ns.ip(&["link", "add", "name", "in0", "address", &mac(ROUTER_MAC), "type", "veth", "peer", "name", "cl0"]);
    ns.ip(&["link", "add", "name", "out0", "type", "veth", "peer", "name", "up0"]);
    for dev in ["in0", "cl0", "out0", "up0"] {
        ns.ip(&["link", "set", dev, "up"]);
    }
    in_netns(&ns.0, || {
        let mut dp = Datapath::load(Options::default()).expect("loading the XDP program (root needed)");
        let ports = dp.set_xdp_forward("in0", &["out0".to_string(), "nosuch0".to_string()]).unwrap();
        assert!(!ports[0].forwarding && ports[0].why_not.as_deref().unwrap().contains("no ndo-xmit"), "{ports:?}");
        assert_eq!((ports[1].forwarding, ports[1].why_not.as_deref()), (false, Some("no such interface")));
        assert!(dp.forward_port_indexes().unwrap().is_empty());
        assert!(dp.is_xdp_forwarding(), "the switch is on; routes out of the left-out port go to the kernel");
        // The port can take them once its peer turns GRO on: the next check puts it in.
        Command::new("ethtool").args(["-K", "up0", "gro", "on"]).status().unwrap();
        let ports = dp.sync_forward_ports(&["out0".to_string()]).unwrap();
        assert!(ports[0].forwarding, "{ports:?}");
        assert_eq!(dp.forward_port_indexes().unwrap(), vec![ifindex("out0")]);
        // A port without a MAC cannot be the judged port.
        let e = dp.set_xdp_forward("lo", &["out0".to_string()]).unwrap_err().to_string();
        assert!(e.contains("not an Ethernet port"), "{e}");
        Ok(())
    })
    .unwrap();
}

/// Reads what is queued until a wait passes with no change (ten at most).
fn drain(events: &mut RouteEvents) {
    for _ in 0..10 {
        if !events.wait().unwrap() {
            return;
        }
    }
}

/// The calling thread stays on one CPU: the route cache is per CPU, and a test run executes on
/// the CPU of the thread that asks for it.
fn stay_on_one_cpu() {
    // SAFETY: a cpu_set_t is plain data; sched_setaffinity reads the set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(libc::sched_getcpu().max(0) as usize, &mut set);
        assert_eq!(libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set), 0, "pinning the test thread");
    }
}

#[test]
#[ignore = "needs root"]
fn the_route_cache_reuses_the_fibs_answer_until_the_kernel_reports_a_change_and_for_a_second_at_most() {
    let ns = Netns::create();
    build(&ns);
    in_netns(&ns.0, || {
        stay_on_one_cpu();
        let mut dp = Datapath::load(Options::default()).expect("loading the XDP program (root needed)");
        dp.install(&list_set("203.0.113.66\n", "")).expect("installing the list");
        dp.set_xdp_forward("in0", &["out0".to_string()]).expect("XDP forwarding on");
        let mut events = RouteEvents::open(std::time::Duration::from_millis(200)).expect("following routing changes");
        dp.set_route_cache(true).unwrap();
        let mut generation = dp.route_generation().unwrap();
        let r = Run { dp: &dp, port: ifindex("in0") };

        // The first frame asks the FIB; the next with the same question reuses the answer and is
        // rewritten the same way, IPv4 and IPv6.
        for f in [tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).payload(b"data"), tcp(CLIENT6, "2001:db8:f::10", 443, TCP_ACK).payload(b"data")] {
            let orig = f.build();
            let (first, cached) = r.forwarded(&orig, "first frame");
            assert!(!cached, "the first frame asks the FIB");
            let (again, cached) = r.forwarded(&orig, "same flow");
            assert!(cached, "the second is answered from the cache");
            assert_eq!(again, first);
            assert_forwarded(&orig, &again);
        }
        // Another source is another question (policy routing and multipath depend on it).
        let (_, cached) = r.forwarded(&tcp("192.0.2.3", "203.0.113.10", 443, TCP_ACK).build(), "another source");
        assert!(!cached);

        // A cached route still has its MTU checked: too large goes to the kernel untouched.
        let small = tcp(CLIENT4, "203.0.113.200", 443, TCP_ACK).build();
        r.forwarded(&small, "under the route's MTU");
        assert!(r.forwarded(&small, "again").1);
        r.to_kernel(&tcp(CLIENT4, "203.0.113.200", 443, TCP_ACK).payload(&[0u8; 1400]).build(), "frag_needed", "same route, larger than its MTU");

        // The next hop's MAC changes: the follower's socket sees it, the generation moves on,
        // and the next frame has the new MAC.
        drain(&mut events); // what setting up queued
        let allowed = tcp(CLIENT4, "203.0.113.10", 443, TCP_ACK).build();
        assert!(r.forwarded(&allowed, "cached").1);
        let moved = [0x02, 0, 0, 0, 0, 0x98];
        ns.ip(&["neigh", "replace", "198.51.100.2", "lladdr", &mac(moved), "dev", "out0", "nud", "permanent"]);
        assert!(events.wait().unwrap(), "a neighbour's new MAC is a change");
        generation.bump().unwrap();
        let (out, cached) = r.forwarded(&allowed, "after the change");
        assert!(!cached, "the answer from before the change is not reused");
        assert_eq!(out[..6], moved, "the new next hop MAC");

        // A route moves to a port not in the list: the change is seen, the frame goes to the kernel.
        assert!(r.forwarded(&allowed, "cached").1);
        ns.ip(&["route", "replace", "203.0.113.0/25", "via", "198.18.0.2", "dev", "side0"]);
        assert!(events.wait().unwrap(), "a route change is a change");
        generation.bump().unwrap();
        r.to_kernel(&allowed, "port_not_allowed", "routed out of a port not in the list now");

        // With no one following (a daemon gone, the program pinned), an answer is reused for a
        // second at most.
        ns.ip(&["route", "replace", "203.0.113.0/25", "via", "198.51.100.2", "dev", "out0"]);
        ns.ip(&["neigh", "replace", "198.51.100.2", "lladdr", &mac(NEXT_HOP_MAC), "dev", "out0", "nud", "permanent"]);
        generation.bump().unwrap();
        let (out, _) = r.forwarded(&allowed, "back out0");
        assert_eq!(out[..6], NEXT_HOP_MAC);
        ns.ip(&["neigh", "replace", "198.51.100.2", "lladdr", &mac(moved), "dev", "out0", "nud", "permanent"]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (out, cached) = r.forwarded(&allowed, "a second later, no generation change");
        assert!(!cached);
        assert_eq!(out[..6], moved);

        // A neighbour that only ages (reachable, stale, ...) is not a change.
        drain(&mut events);
        ns.ip(&["neigh", "replace", "198.51.100.2", "lladdr", &mac(moved), "dev", "out0", "nud", "stale"]);
        assert!(!events.wait().unwrap(), "same MAC, another usable state");

        // The cache off: every frame asks the FIB.
        dp.set_route_cache(false).unwrap();
        let r = Run { dp: &dp, port: ifindex("in0") };
        assert!(!r.forwarded(&allowed, "cache off").1);
        assert!(!r.forwarded(&allowed, "cache off, again").1);
        Ok(())
    })
    .unwrap();
}
