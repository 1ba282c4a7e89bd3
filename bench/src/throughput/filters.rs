//! The list every variant blocks, and loading it into each: the blocker's maps, an nftables
//! interval set (netdev ingress; inet prerouting with notrack; bridge forward), ipset
//! `hash:net` behind iptables raw PREROUTING.
//!
//! The list: the two documentation prefixes the traffic's listed classes go to
//! (203.0.113.128/25, 2001:db8:bad::/48) and random prefixes no frame is sent to, up to the
//! size asked for: 80% IPv4 hosts, 10% IPv4 /24s (no host inside one of them: nftables refuses
//! overlapping intervals), 10% IPv6 /64s in 2400::/6. Never in 0/8, 10/8, 127/8, 192/8, 198/8,
//! 203/8 nor 224/3. The blocker also gets that many names (random, under `.example`; the traffic
//! asks DNS for none of them): its name table at full size, as in a deployment.

use std::{
    collections::HashSet,
    fmt::Write as _,
    fs,
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
    time::Duration,
};

use anyhow::{Context, Result};
use blocker_user::lists::{ListKind, ListSet, Locus, NameEntry, ParsedEntry, Prefix, Target};

use super::net::{exec, run};

pub struct PrefixList {
    pub v4: Vec<(Ipv4Addr, u8)>,
    pub v6: Vec<(Ipv6Addr, u8)>,
}

impl PrefixList {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
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
}

fn usable_v4(a: u32) -> bool {
    !matches!(a >> 24, 0 | 10 | 127 | 192 | 198 | 203 | 224..)
}

pub fn prefixes(n: usize) -> PrefixList {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let n = n.max(2) - 2;
    let (n24, n6) = (n / 10, n / 10);
    let n32 = n - n24 - n6;
    let mut v4 = vec![(Ipv4Addr::new(203, 0, 113, 128), 25)];
    let mut slash24 = HashSet::with_capacity(n24);
    while slash24.len() < n24 {
        let a = (rng.next() as u32) & 0xffff_ff00;
        if usable_v4(a) && slash24.insert(a >> 8) {
            v4.push((a.into(), 24));
        }
    }
    let mut hosts = HashSet::with_capacity(n32);
    while hosts.len() < n32 {
        let a = rng.next() as u32;
        if usable_v4(a) && !slash24.contains(&(a >> 8)) && hosts.insert(a) {
            v4.push((a.into(), 32));
        }
    }
    let mut v6 = vec![("2001:db8:bad::".parse().expect("v6"), 48)];
    let mut seen = HashSet::with_capacity(n6);
    while seen.len() < n6 {
        let hi = (0x24u64 << 56) | (rng.next() & 0x03ff_ffff_ffff_ffff);
        if seen.insert(hi) {
            v6.push((Ipv6Addr::from(u128::from(hi) << 64), 64));
        }
    }
    PrefixList { v4, v6 }
}

/// The blocker's list set: every prefix, and `names` names.
pub fn blocker_set(list: &PrefixList, names: usize) -> ListSet {
    let mut entries = Vec::with_capacity(list.len() + names);
    let mut line = 0;
    let mut at = || {
        line += 1;
        Locus::Line(line)
    };
    for &(addr, len) in &list.v4 {
        entries.push(ParsedEntry { target: Target::Prefix(Prefix::V4 { addr, len }), kind: ListKind::Block, at: at() });
    }
    for &(addr, len) in &list.v6 {
        entries.push(ParsedEntry { target: Target::Prefix(Prefix::V6 { addr, len }), kind: ListKind::Block, at: at() });
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..names {
        let name = format!("h{:x}.s{i}.example", rng.next() & 0xffff_ffff);
        entries.push(ParsedEntry { target: Target::Name(NameEntry { name, flags: 3 }), kind: ListKind::Block, at: at() });
    }
    let mut set = ListSet::new();
    set.add_parsed(Path::new("throughput"), entries);
    set
}

fn elements<T: std::fmt::Display>(out: &mut String, list: &[(T, u8)], host: u8) {
    for (i, (a, len)) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        if *len == host {
            let _ = write!(out, "{a}");
        } else {
            let _ = write!(out, "{a}/{len}");
        }
    }
}

/// How an nftables variant hooks in.
#[derive(Clone, Copy, Debug)]
pub enum NftHook {
    /// `table netdev`, chain on the ingress hook of the DUT's receiving device.
    Ingress,
    /// `table inet`, chain on prerouting at raw priority, `notrack` for what passes.
    PreroutingNotrack,
    /// `table bridge`, chain on the bridge's forward hook (frames it forwards from port to port).
    BridgeForward,
}

/// The nftables ruleset file for `hook`, with both sets.
pub fn nft_ruleset(list: &PrefixList, hook: NftHook, dev: &str) -> String {
    let mut s = String::with_capacity(24 * list.len());
    let (family, chain) = match hook {
        NftHook::Ingress => ("netdev", format!("chain ingress {{ type filter hook ingress device \"{dev}\" priority 0; policy accept;\n")),
        NftHook::PreroutingNotrack => ("inet", "chain prerouting { type filter hook prerouting priority raw; policy accept;\n".to_string()),
        NftHook::BridgeForward => ("bridge", "chain forward { type filter hook forward priority 0; policy accept;\n".to_string()),
    };
    let _ = writeln!(s, "table {family} tput {{");
    s.push_str("set block4 { type ipv4_addr; flags interval; elements = {\n");
    elements(&mut s, &list.v4, 32);
    s.push_str("\n} }\nset block6 { type ipv6_addr; flags interval; elements = {\n");
    elements(&mut s, &list.v6, 128);
    s.push_str("\n} }\n");
    s.push_str(&chain);
    s.push_str("ip daddr @block4 drop\nip6 daddr @block6 drop\n");
    if matches!(hook, NftHook::PreroutingNotrack) {
        s.push_str("notrack\n");
    }
    s.push_str("}\n}\n");
    s
}

/// Loads the ruleset into `ns` with `nft -f`.
pub fn load_nft(ns: &str, dir: &Path, list: &PrefixList, hook: NftHook, dev: &str) -> Result<()> {
    let file = dir.join(format!("{hook:?}.nft"));
    fs::write(&file, nft_ruleset(list, hook, dev))?;
    exec(ns, &["nft", "-f", &file.to_string_lossy()], Duration::from_secs(600)).context("loading the nftables set")?;
    fs::remove_file(&file)?;
    Ok(())
}

/// Loads the list into two `hash:net` sets (`ipset restore`) and the iptables/ip6tables raw
/// PREROUTING rules: drop listed destinations, notrack the rest.
pub fn load_ipset(ns: &str, dir: &Path, list: &PrefixList) -> Result<()> {
    let mut s = String::with_capacity(32 * list.len());
    let size = |n: usize| (n.max(1024) * 2).next_power_of_two();
    let _ = writeln!(s, "create tput4 hash:net family inet hashsize {} maxelem {}", size(list.v4.len()) / 2, size(list.v4.len()));
    for (a, len) in &list.v4 {
        let _ = writeln!(s, "add tput4 {a}/{len}");
    }
    let _ = writeln!(s, "create tput6 hash:net family inet6 hashsize {} maxelem {}", size(list.v6.len()) / 2, size(list.v6.len()));
    for (a, len) in &list.v6 {
        let _ = writeln!(s, "add tput6 {a}/{len}");
    }
    let file = dir.join("ipset.restore");
    fs::write(&file, s)?;
    exec(ns, &["ipset", "restore", "-file", &file.to_string_lossy()], Duration::from_secs(600)).context("loading the ipset sets")?;
    fs::remove_file(&file)?;
    for (tool, set) in [("iptables", "tput4"), ("ip6tables", "tput6")] {
        exec(ns, &[tool, "-t", "raw", "-A", "PREROUTING", "-m", "set", "--match-set", set, "dst", "-j", "DROP"], Duration::from_secs(30))?;
        exec(ns, &[tool, "-t", "raw", "-A", "PREROUTING", "-j", "CT", "--notrack"], Duration::from_secs(30))?;
    }
    Ok(())
}

/// `iptables --version`, e.g. "iptables v1.8.9 (nf_tables)".
pub fn tool_versions() -> String {
    let v = |prog: &str, arg: &str| {
        let mut cmd = std::process::Command::new(prog);
        cmd.arg(arg);
        run(cmd, Duration::from_secs(10)).map(|s| s.lines().next().unwrap_or("").trim().to_string()).unwrap_or_else(|_| format!("{prog}: unknown"))
    };
    format!("{}; {}; {}", v("nft", "--version"), v("ipset", "--version"), v("iptables", "--version"))
}
