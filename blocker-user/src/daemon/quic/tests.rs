//! The daemon's QUIC judging without a kernel: copies in, verdicts into a table.

use std::{collections::HashMap, path::Path, sync::Arc};

use super::*;
use crate::{
    datapath::quic::{Copied, flow_key},
    lists::{ListInfo, ListKind, parse_list},
    quic::fixtures::{self, CHROMIUM_NAME, RFC_NAME},
};

/// The verdict map as a table, and the epoch the program was told.
#[derive(Default)]
struct Table {
    verdicts: HashMap<QuicFlow, QuicVerdict>,
    epoch: u32,
}

impl VerdictSink for Table {
    fn write(&mut self, flow: &QuicFlow, v: QuicVerdict) -> Result<(), DatapathError> {
        self.verdicts.insert(*flow, v);
        Ok(())
    }

    fn set_epoch(&mut self, epoch: u32) -> Result<(), DatapathError> {
        self.epoch = epoch;
        Ok(())
    }

    fn held(&self, epoch: u32) -> Vec<(QuicFlow, QuicVerdict)> {
        self.verdicts.iter().filter(|(_, v)| v.epoch == epoch && v.kind != VERDICT_PASS).map(|(f, v)| (*f, *v)).collect()
    }
}

fn set(block: &str, allow: &str, shadow: &str) -> Arc<ListSet> {
    let mut s = ListSet::new();
    let (b, _) = parse_list(Path::new("block.txt"), block, ListKind::Block).unwrap();
    s.add_parsed(Path::new("block.txt"), b);
    let (a, _) = parse_list(Path::new("allow.txt"), allow, ListKind::Allow).unwrap();
    s.add_parsed(Path::new("allow.txt"), a);
    let (sh, _) = parse_list(Path::new("shadow.txt"), shadow, ListKind::Block).unwrap();
    s.add_list(ListInfo { name: "trial".into(), source: "shadow.txt".into(), shadow: true }, Path::new("shadow.txt"), sh).unwrap();
    Arc::new(s)
}

fn flow(port: u16) -> QuicFlow {
    flow_key("192.0.2.10".parse().unwrap(), port, "203.0.113.5".parse().unwrap(), 443)
}

fn copy(port: u16, payload: &[u8]) -> Copied {
    Copied { flow: flow(port), payload: payload.to_vec(), wire_len: payload.len() as u32, epoch: 1 }
}

fn kind_of(set: &ListSet, name: &str) -> (u32, bool) {
    let (k, entry) = judge_name(set, name);
    (k, entry != 0)
}

#[test]
fn names_are_judged_like_lookup_does_on_label_boundaries_with_allow_and_shadow() {
    let s = set("quic.example.test\n=exact.example.test\n", "ok.quic.example.test\n", "trial.example.test\n");
    let cases = [
        ("quic.example.test", VERDICT_BLOCK, true),
        ("QUIC.Example.Test.", VERDICT_BLOCK, true),
        ("www.quic.example.test", VERDICT_BLOCK, true),
        ("xquic.example.test", VERDICT_PASS, false),
        ("ok.quic.example.test", VERDICT_PASS, false),
        ("exact.example.test", VERDICT_BLOCK, true),
        ("www.exact.example.test", VERDICT_PASS, false),
        ("trial.example.test", VERDICT_SHADOW, true),
        ("other.example", VERDICT_PASS, false),
        // Not a name the kernel could match (its TLS path passes such a name unjudged).
        ("quic.example.test\u{0}", VERDICT_PASS, false),
        ("bücher.example", VERDICT_PASS, false),
        ("", VERDICT_PASS, false),
    ];
    for (name, kind, with_entry) in cases {
        assert_eq!(kind_of(&s, name), (kind, with_entry), "{name:?}");
    }
}

#[test]
fn a_two_packet_chromium_hello_gets_its_verdict_from_the_second_copy() {
    for v2 in [false, true] {
        let s = set(CHROMIUM_NAME, "", "");
        let mut j = QuicJudge::new(s.clone(), 1, Limits::default());
        let mut t = Table::default();
        let [a, b] = fixtures::chromium_first_flight(v2);
        assert_eq!(j.handle(&copy(50000, &a), &mut t), None, "the name is not complete after the first");
        let v = j.handle(&copy(50000, &b), &mut t).expect("a verdict");
        let entry = s.match_name(CHROMIUM_NAME).unwrap().block.unwrap().entry.id;
        assert_eq!(v, QuicVerdict { kind: VERDICT_BLOCK, entry_id: entry, epoch: 1, reserved: 0 });
        assert_eq!(t.verdicts.get(&flow(50000)), Some(&v));
        assert_eq!((j.stats().blocked, j.stats().sni, j.stats().copies), (1, 1, 2));
    }
}

#[test]
fn unlisted_nameless_and_unreadable_flows_get_pass_so_they_are_no_longer_copied() {
    let s = set("blocked.example.test\n", "", "");
    let mut j = QuicJudge::new(s, 1, Limits::default());
    let mut t = Table::default();
    // An unlisted name (the RFC vectors name example.com), v1 and v2.
    assert_eq!(j.handle(&copy(1, &fixtures::rfc9001_initial()), &mut t).map(|v| v.kind), Some(VERDICT_PASS));
    assert_eq!(j.handle(&copy(2, &fixtures::rfc9369_initial()), &mut t).map(|v| v.kind), Some(VERDICT_PASS));
    // Garbage: nothing until GIVE_UP copies of the flow failed, then pass.
    let garbage = vec![0xc3; 1200];
    for i in 1..GIVE_UP {
        assert_eq!(j.handle(&copy(3, &garbage), &mut t), None, "copy {i}");
    }
    assert_eq!(j.handle(&copy(3, &garbage), &mut t).map(|v| v.kind), Some(VERDICT_PASS));
    assert_eq!(j.stats().given_up, 1);
    assert_eq!(t.verdicts.len(), 3);
    assert!(t.verdicts.values().all(|v| v.kind == VERDICT_PASS && v.entry_id == 0 && v.epoch == 1));
}

#[test]
fn a_coalesced_zero_rtt_packet_does_not_hide_the_initial() {
    let s = set(RFC_NAME, "", "");
    let mut j = QuicJudge::new(s, 1, Limits::default());
    let mut t = Table::default();
    let mut d = fixtures::rfc9001_initial();
    d.extend(fixtures::zero_rtt_packet(1, &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08], 200));
    assert_eq!(j.handle(&copy(7, &d), &mut t).map(|v| v.kind), Some(VERDICT_BLOCK));
}

#[test]
fn a_list_change_takes_a_new_epoch_and_judges_blocked_flows_again() {
    let before = set("quic.example.test\nexample.com\n", "", "");
    let mut j = QuicJudge::new(before, 1, Limits::default());
    let mut t = Table::default();
    let [a, b] = fixtures::chromium_first_flight(false);
    j.handle(&copy(1, &a), &mut t);
    j.handle(&copy(1, &b), &mut t);
    j.handle(&copy(2, &fixtures::rfc9001_initial()), &mut t);
    assert_eq!(t.verdicts[&flow(1)].kind, VERDICT_BLOCK);
    assert_eq!(t.verdicts[&flow(2)].kind, VERDICT_BLOCK);

    // example.com is unlisted; quic.example.test stays listed.
    let after = set("quic.example.test\n", "", "");
    let epoch = epoch_of(&after);
    j.relist(after.clone(), &mut t);
    assert_ne!(epoch, 1);
    assert_eq!((t.epoch, j.epoch()), (epoch, epoch));
    let entry = after.match_name(CHROMIUM_NAME).unwrap().block.unwrap().entry.id;
    assert_eq!(t.verdicts[&flow(1)], QuicVerdict { kind: VERDICT_BLOCK, entry_id: entry, epoch, reserved: 0 });
    assert_eq!(t.verdicts[&flow(2)], QuicVerdict { kind: VERDICT_PASS, entry_id: 0, epoch, reserved: 0 });
    assert_eq!(j.stats().rejudged, 2);
    // The unlisted flow is forgotten: the next change judges only the one still blocked.
    let third = set("quic.example.test\nother.example\n", "", "");
    j.relist(third.clone(), &mut t);
    assert_eq!((j.stats().rejudged, t.epoch), (3, epoch_of(&third)));
    assert_eq!(j.stats().carried, 0, "every blocked flow was judged by its name");
}

#[test]
fn sets_of_the_same_entries_share_an_epoch_and_a_change_to_an_equal_set_rewrites_nothing() {
    let a = set("quic.example.test\nexample.com\n", "ok.example.com\n", "trial.example.test\n");
    let again = set("quic.example.test\nexample.com\n", "ok.example.com\n", "trial.example.test\n");
    assert_eq!(epoch_of(&a), epoch_of(&again));
    assert_ne!(epoch_of(&a), 0);
    for other in [
        set("quic.example.test\n", "ok.example.com\n", "trial.example.test\n"),
        set("=quic.example.test\nexample.com\n", "ok.example.com\n", "trial.example.test\n"),
        set("quic.example.test\nexample.com\n", "", "trial.example.test\n"),
        set("quic.example.test\nexample.com\n", "ok.example.com\n", ""),
        set("", "ok.example.com\n", "quic.example.test\nexample.com\ntrial.example.test\n"),
    ] {
        assert_ne!(epoch_of(&a), epoch_of(&other), "a different set takes another epoch");
    }

    let mut j = QuicJudge::new(a.clone(), epoch_of(&a), Limits::default());
    let mut t = Table { epoch: epoch_of(&a), ..Table::default() };
    j.handle(&copy(2, &fixtures::rfc9001_initial()), &mut t);
    let before = t.verdicts.clone();
    j.relist(again, &mut t);
    assert_eq!((t.epoch, &t.verdicts, j.stats().rejudged), (epoch_of(&a), &before, 0));
}

#[test]
fn a_previous_daemons_verdicts_hold_and_carry_over_a_change_that_keeps_their_entry() {
    // What a daemon finds in the pinned map after a restart: verdicts judged against the same
    // lists, whose names it never read.
    let lists = set("quic.example.test\nexample.com\nmode.example\n", "", "trial.example.test\n");
    let epoch = epoch_of(&lists);
    let id = |s: &ListSet, name: &str| judge_name(s, name).1;
    let verdict = |kind, name| QuicVerdict { kind, entry_id: id(&lists, name), epoch, reserved: 0 };
    let mut t = Table { epoch, ..Table::default() };
    t.verdicts.insert(flow(1), verdict(VERDICT_BLOCK, CHROMIUM_NAME));
    t.verdicts.insert(flow(2), verdict(VERDICT_BLOCK, RFC_NAME));
    t.verdicts.insert(flow(3), verdict(VERDICT_BLOCK, "www.mode.example"));
    t.verdicts.insert(flow(4), verdict(VERDICT_SHADOW, "trial.example.test"));
    t.verdicts.insert(flow(5), QuicVerdict { kind: VERDICT_PASS, entry_id: 0, epoch, reserved: 0 });
    let mut j = QuicJudge::new(lists.clone(), epoch, Limits::default());

    // example.com leaves; mode.example now lists that name only, no longer its subdomains.
    // The entries the live set has keep their ids, as in the daemon's updates.
    let mut next = (*set("quic.example.test\n=mode.example\n", "", "trial.example.test\n")).clone();
    next.inherit_ids(&lists);
    let next = Arc::new(next);
    j.relist(next.clone(), &mut t);
    let new = epoch_of(&next);
    assert_eq!(t.epoch, new);
    assert_eq!((t.verdicts[&flow(1)].kind, t.verdicts[&flow(1)].epoch), (VERDICT_BLOCK, new), "its entry is unchanged");
    assert_eq!((t.verdicts[&flow(4)].kind, t.verdicts[&flow(4)].epoch), (VERDICT_SHADOW, new), "a shadow entry too");
    assert_eq!(t.verdicts[&flow(2)].epoch, epoch, "its entry left the set: the old verdict lapses");
    assert_eq!(t.verdicts[&flow(3)].epoch, epoch, "its entry changed mode: the old verdict lapses");
    assert_eq!(t.verdicts[&flow(5)].epoch, epoch, "pass verdicts are not carried");
    assert_eq!((j.stats().carried, j.stats().rejudged), (2, 0));
}

#[test]
fn remembered_flows_are_bounded() {
    let mut j = QuicJudge::new(set("", "", ""), 1, Limits::default());
    let mut t = Table::default();
    let garbage = vec![0u8; 1200];
    for i in 0..(MAX_FLOWS + 100) {
        let c = Copied { flow: flow_key("198.51.100.1".parse().unwrap(), (i % 60000) as u16, "203.0.113.5".parse().unwrap(), (i / 60000) as u16), payload: garbage.clone(), wire_len: 1200, epoch: 1 };
        j.handle(&c, &mut t);
    }
    assert!(j.flows.len() <= MAX_FLOWS);
    assert!(j.order.len() <= 2 * MAX_FLOWS);
}
