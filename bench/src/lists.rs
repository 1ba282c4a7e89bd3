//! Synthetic lists of a given size for the micro benchmark: `n` prefixes (90% random IPv4
//! hosts, 10% random IPv6 /64s in 2400::/6, all outside the documentation ranges the traffic
//! classes use) and `n` random names under `.example`, as the throughput benchmark's list is
//! made up. At every size, also what the listed classes ask for (`blocked.example` with its
//! subdomains) and one listed /48 in the /32 the IPv6 classes' destinations are in
//! (2001:db8:bad::/48: a listed host at the same provider, so those classes measure the
//! coarse filter that must tell the provider's other /48s apart).

use std::path::Path;

use blocker_user::lists::{ListKind, ListSet, Locus, NameEntry, ParsedEntry, Prefix, Target};

pub fn synthetic(n: usize) -> ListSet {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut entries = Vec::with_capacity(2 * n + 2);
    let mut push = |target| {
        let at = Locus::Line(entries.len() + 1);
        entries.push(ParsedEntry { target, kind: ListKind::Block, at });
    };
    push(Target::Name(NameEntry { name: "blocked.example".into(), flags: 3 }));
    push(Target::Prefix(Prefix::V6 { addr: "2001:db8:bad::".parse().expect("v6"), len: 48 }));
    let n6 = n / 10;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n - n6 {
        let a = (next() as u32) | 0x0100_0000;
        // Keep the documentation ranges the traffic classes use free.
        if matches!(a >> 24, 192 | 198 | 203) {
            continue;
        }
        if seen.insert(a) {
            push(Target::Prefix(Prefix::V4 { addr: a.into(), len: 32 }));
        }
    }
    let mut seen6 = std::collections::HashSet::new();
    while seen6.len() < n6 {
        let hi = (0x24u64 << 56) | (next() & 0x03ff_ffff_ffff_ffff);
        if seen6.insert(hi) {
            push(Target::Prefix(Prefix::V6 { addr: (u128::from(hi) << 64).into(), len: 64 }));
        }
    }
    for i in 0..n {
        let name = format!("h{:x}.s{}.example", next() & 0xffff_ffff, i);
        push(Target::Name(NameEntry { name, flags: 3 }));
    }
    let mut set = ListSet::new();
    set.add_parsed(Path::new("synthetic"), entries);
    set
}
