//! Synthetic lists of a given size: random /32 prefixes outside the documentation ranges the
//! traffic classes use, and random names under `.example`.

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
    // The names the "listed" classes ask for.
    entries.push(ParsedEntry { target: Target::Name(NameEntry { name: "blocked.example".into(), flags: 3 }), kind: ListKind::Block, at: Locus::Line(1) });
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        let a = (next() as u32) | 0x0100_0000;
        // Keep the documentation ranges the traffic classes use free.
        if matches!(a >> 24, 192 | 198 | 203) {
            continue;
        }
        if seen.insert(a) {
            entries.push(ParsedEntry { target: Target::Prefix(Prefix::V4 { addr: a.into(), len: 32 }), kind: ListKind::Block, at: Locus::Line(entries.len() + 1) });
        }
    }
    for i in 0..n {
        let name = format!("h{:x}.s{}.example", next() & 0xffff_ffff, i);
        entries.push(ParsedEntry { target: Target::Name(NameEntry { name, flags: 3 }), kind: ListKind::Block, at: Locus::Line(entries.len() + 1) });
    }
    let mut set = ListSet::new();
    set.add_parsed(Path::new("synthetic"), entries);
    set
}
