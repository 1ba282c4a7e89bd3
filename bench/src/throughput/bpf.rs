//! The throughput benchmark's own small XDP programs, assembled here and loaded and attached
//! through the raw bpf syscall (no object file: blocker-tests' rawbpf.rs, as the lab's are):
//!
//! - [`Program::pass`]: `return XDP_PASS`, on the DUT's ingress veth for the variants without
//!   the blocker (a veth receives redirected frames only when it has an XDP program: NAPI).
//! - [`Program::count_drop`]: counts every frame by its length into an array map, then drops it:
//!   on the generator's own veths (the blocker's resets come back there).
//! - [`Program::count_drop_egress`]: the same as a tc egress program, the sink on the DUT's
//!   outgoing veth for frames sent as skbs.
//! - [`Program::count_drop_devmap`]: the same as a devmap program, the sink for frames the
//!   blocker's inline mode redirects into the DUT's outgoing veth (they skip tc): set on that
//!   port's entry of the blocker's `PORTS` ([`set_devmap_sink`]).
//! - [`Program::generator`]: run by BPF_PROG_TEST_RUN with live frames; rewrites the frame's
//!   headers from the template in its map (the page pool hands back pages the DUT has rewritten:
//!   TTL, MAC addresses, resets), varies the destination and source address per frame (the last
//!   byte, +k and -k, which keeps every checksum valid), and returns XDP_TX.
//! - [`Program::sequencer`]: the micro bench's loop (sequencer.rs): run by BPF_PROG_TEST_RUN
//!   (not live), it writes the next frame of a list over the test run's frame and tail-calls the
//!   program under test, so that one test run times many distinct frames back to back.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
};

use anyhow::{Context, Result, bail};
pub use blocker_tests::rawbpf::{ifindex, in_netns};
use blocker_tests::rawbpf::{
    self, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_XDP, BPF_TCX_EGRESS, BPF_XDP, BPF_XDP_DEVMAP, XDP_FLAGS_DRV_MODE, sys, sys_fd,
};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_PROG_ARRAY: u32 = 3;
const BPF_MAP_TYPE_DEVMAP: u32 = 14;
const BPF_MAP_TYPE_DEVMAP_HASH: u32 = 25;
/// The devmap kinds [`own_devmap_with_entry`] looks for: by index (the blocker's `PORTS`) or
/// by key (`FORWARD_PORTS`, keyed by interface index).
pub const DEVMAP: u32 = BPF_MAP_TYPE_DEVMAP;
pub const DEVMAP_HASH: u32 = BPF_MAP_TYPE_DEVMAP_HASH;
const TC_ACT_SHOT: i32 = 2;
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// Frame lengths the counting program tells apart (longer ones share buckets, masked).
pub const LEN_BUCKETS: u32 = 2048;
/// Bytes of each frame the generator copies from its template: every header and every payload
/// that means something (DNS, HTTP, ClientHello); beyond them frames hold only [`FILLER`].
pub const COPY_BYTES: usize = 512;
/// The longest frame a [`Program::sequencer`] slot holds, and the slot's size (length first).
pub const SEQUENCE_FRAME: usize = 2048;
pub const SEQUENCE_VALUE: usize = 8 + SEQUENCE_FRAME;
/// The interface index of `dev` in the calling thread's namespace.
pub fn ifindex_of(dev: &str) -> Result<u32> {
    ifindex(&CString::new(dev)?)
}

/// The generator's template map value: length, bytes to copy, the bytes.
const TEMPLATE_VALUE: usize = 8 + COPY_BYTES;
/// What fills every frame beyond [`COPY_BYTES`] (and TCP/UDP payloads that carry nothing).
pub const FILLER: u8 = 0x17;
/// How many destinations (and sources) the generator cycles one template through.
pub const SPREAD: u8 = 100;

/// An array map of u32 keys.
pub struct ArrayMap {
    fd: OwnedFd,
    value_size: usize,
    entries: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

impl ArrayMap {
    pub fn new(name: &str, value_size: usize, entries: u32) -> Result<ArrayMap> {
        ArrayMap::create(name, BPF_MAP_TYPE_ARRAY, value_size, entries)
    }

    /// A DEVMAP (value: `struct bpf_devmap_val`, an ifindex and a devmap program), for
    /// [`Program::redirect`].
    pub fn devmap(name: &str, entries: u32) -> Result<ArrayMap> {
        ArrayMap::create(name, BPF_MAP_TYPE_DEVMAP, 8, entries)
    }

    /// A PROG_ARRAY (value: a program's descriptor), for [`Program::sequencer`]'s tail call.
    pub fn prog_array(name: &str, entries: u32) -> Result<ArrayMap> {
        ArrayMap::create(name, BPF_MAP_TYPE_PROG_ARRAY, 4, entries)
    }

    /// Sets entry `key` of a PROG_ARRAY to `prog`.
    pub fn set_program(&self, key: u32, prog: BorrowedFd<'_>) -> Result<()> {
        self.set(key, &prog.as_raw_fd().to_ne_bytes())
    }

    fn create(name: &str, map_type: u32, value_size: usize, entries: u32) -> Result<ArrayMap> {
        let mut map_name = [0u8; 16];
        map_name[..name.len().min(15)].copy_from_slice(&name.as_bytes()[..name.len().min(15)]);
        let mut attr = MapCreateAttr { map_type, key_size: 4, value_size: value_size as u32, max_entries: entries, map_name, ..Default::default() };
        let fd = sys_fd(BPF_MAP_CREATE, &mut attr).with_context(|| format!("creating map {name} (BPF_MAP_CREATE)"))?;
        Ok(ArrayMap { fd, value_size, entries })
    }

    pub fn get(&self, key: u32) -> Result<Vec<u8>> {
        let mut value = vec![0u8; self.value_size];
        let mut attr = MapElemAttr { map_fd: self.fd.as_raw_fd() as u32, key: &key as *const u32 as u64, value: value.as_mut_ptr() as u64, ..Default::default() };
        sys(BPF_MAP_LOOKUP_ELEM, &mut attr).context("BPF_MAP_LOOKUP_ELEM")?;
        Ok(value)
    }

    pub fn set(&self, key: u32, value: &[u8]) -> Result<()> {
        assert_eq!(value.len(), self.value_size);
        let mut attr = MapElemAttr { map_fd: self.fd.as_raw_fd() as u32, key: &key as *const u32 as u64, value: value.as_ptr() as u64, ..Default::default() };
        sys(BPF_MAP_UPDATE_ELEM, &mut attr).context("BPF_MAP_UPDATE_ELEM")?;
        Ok(())
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// Every u64 counter of a count map, indexed by key.
    pub fn counters(&self) -> Result<Vec<u64>> {
        (0..self.entries).map(|k| Ok(u64::from_ne_bytes(self.get(k)?[..8].try_into()?))).collect()
    }
}

/// A tiny assembler: instructions and labels, jumps fixed up at the end.
#[derive(Default)]
struct Asm {
    insns: Vec<u64>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;
const R9: u8 = 9;
const R10: u8 = 10;

// Opcodes (class | size/op | source).
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const LDX_DW: u8 = 0x79;
const STX_W: u8 = 0x63;
const STX_B: u8 = 0x73;
const STX_DW: u8 = 0x7b;
const ST_W: u8 = 0x62;
const ATOMIC_DW: u8 = 0xdb;
const ADD_K: u8 = 0x07;
const ADD_X: u8 = 0x0f;
const SUB_X: u8 = 0x1f;
const AND_K: u8 = 0x57;
const MOD_K: u8 = 0x97;
const MOD_X: u8 = 0x9f;
const DIV_K: u8 = 0x37;
const MOV_K: u8 = 0xb7;
const MOV_X: u8 = 0xbf;
const JA: u8 = 0x05;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JGT_X: u8 = 0x2d;
const JGT_K: u8 = 0x25;
const JLT_K: u8 = 0xa5;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;
const HELPER_MAP_LOOKUP: i32 = 1;
const HELPER_XDP_ADJUST_TAIL: i32 = 65;
const HELPER_REDIRECT_MAP: i32 = 51;
const HELPER_TAIL_CALL: i32 = 12;
const HELPER_XDP_STORE_BYTES: i32 = 190;

impl Asm {
    fn raw(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        let w = u64::from(code) | (u64::from(dst & 0xf) << 8) | (u64::from(src & 0xf) << 12) | (u64::from(off as u16) << 16) | (u64::from(imm as u32) << 32);
        self.insns.push(w);
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: usize) {
        self.fixups.push((self.insns.len(), to));
        self.raw(code, dst, src, 0, imm);
    }
    fn map_fd(&mut self, dst: u8, fd: RawFd) {
        self.raw(LD_IMM64, dst, PSEUDO_MAP_FD, 0, fd);
        self.raw(0, 0, 0, 0, 0);
    }
    /// r0 = lookup(map, key 0), jumping to `miss` when it is NULL. Clobbers r1-r5.
    fn lookup_zero(&mut self, map: RawFd, miss: usize) {
        self.raw(ST_W, R10, 0, -4, 0);
        self.raw(MOV_X, R2, R10, 0, 0);
        self.raw(ADD_K, R2, 0, 0, -4);
        self.map_fd(R1, map);
        self.raw(CALL, 0, 0, 0, HELPER_MAP_LOOKUP);
        self.jump(JEQ_K, R0, 0, 0, miss);
    }
    /// r8 = the u64 counter in entry 0 of `state`, which goes up by one; r0 = that entry.
    /// Jumps to `miss` when the map has none. Clobbers r1-r5.
    fn count_up(&mut self, state: RawFd, miss: usize) {
        self.lookup_zero(state, miss);
        self.raw(LDX_DW, R8, R0, 0, 0);
        self.raw(MOV_X, R1, R8, 0, 0);
        self.raw(ADD_K, R1, 0, 0, 1);
        self.raw(STX_DW, R0, R1, 0, 0);
    }
    /// r0 = lookup(map, key `key`, a u32 register), jumping to `miss` when it is NULL.
    /// Clobbers r1-r5.
    fn lookup_key(&mut self, map: RawFd, key: u8, miss: usize) {
        self.raw(STX_W, R10, key, -4, 0);
        self.raw(MOV_X, R2, R10, 0, 0);
        self.raw(ADD_K, R2, 0, 0, -4);
        self.map_fd(R1, map);
        self.raw(CALL, 0, 0, 0, HELPER_MAP_LOOKUP);
        self.jump(JEQ_K, R0, 0, 0, miss);
    }
    /// The frame (context in r6) cut or grown to the u32 length at r7 + 0:
    /// bpf_xdp_adjust_tail(ctx, len - (data_end - data)), jumping to `miss` when it fails.
    /// Clobbers r0-r5.
    fn frame_to_length(&mut self, miss: usize) {
        self.raw(LDX_W, R2, R6, 0, 0);
        self.raw(LDX_W, R3, R6, 4, 0);
        self.raw(SUB_X, R3, R2, 0, 0);
        self.raw(LDX_W, R2, R7, 0, 0);
        self.raw(SUB_X, R2, R3, 0, 0);
        self.raw(MOV_X, R1, R6, 0, 0);
        self.raw(CALL, 0, 0, 0, HELPER_XDP_ADJUST_TAIL);
        self.jump(JNE_K, R0, 0, 0, miss);
    }
    fn finish(mut self) -> Vec<u64> {
        for (at, to) in std::mem::take(&mut self.fixups) {
            let target = self.labels[to].expect("unbound label");
            let off = target as i64 - at as i64 - 1;
            let w = self.insns[at];
            self.insns[at] = (w & !0xffff_0000) | (u64::from(off as i16 as u16) << 16);
        }
        self.insns
    }
}

/// A loaded program: XDP, or tc (sched_cls) for [`Program::count_drop_egress`].
pub struct Program {
    fd: OwnedFd,
    name: &'static str,
    prog_type: u32,
}

impl Program {
    fn load(name: &'static str, insns: &[u64]) -> Result<Program> {
        Program::load_typed(name, insns, BPF_PROG_TYPE_XDP, 0)
    }

    fn load_typed(name: &'static str, insns: &[u64], prog_type: u32, expected_attach_type: u32) -> Result<Program> {
        Ok(Program { fd: rawbpf::load_program(name, insns, prog_type, expected_attach_type)?, name, prog_type })
    }

    /// `return XDP_PASS`.
    pub fn pass() -> Result<Program> {
        let mut a = Asm::default();
        a.raw(MOV_K, R0, 0, 0, 2);
        a.raw(EXIT, 0, 0, 0, 0);
        Program::load("tput_pass", &a.finish())
    }

    /// `return bpf_redirect_map(devmap, 0, XDP_PASS)`: every frame out of the port in entry 0,
    /// unjudged (what an XDP forwarder costs before any filtering).
    pub fn redirect(devmap: &ArrayMap) -> Result<Program> {
        let mut a = Asm::default();
        a.map_fd(R1, devmap.fd.as_raw_fd());
        a.raw(MOV_K, R2, 0, 0, 0);
        a.raw(MOV_K, R3, 0, 0, 2);
        a.raw(CALL, 0, 0, 0, HELPER_REDIRECT_MAP);
        a.raw(EXIT, 0, 0, 0, 0);
        Program::load("tput_redirect", &a.finish())
    }

    /// Counts the frame under its length (`counts[len & 2047] += 1`), then XDP_DROP.
    pub fn count_drop(counts: &ArrayMap) -> Result<Program> {
        Program::load("tput_count", &count_drop_insns(counts))
    }

    /// [`Program::count_drop`] as a devmap program (run on a redirected frame just before the
    /// target device's `ndo_xdp_xmit`, on the redirecting CPU): the sink of XDP-redirected frames.
    pub fn count_drop_devmap(counts: &ArrayMap) -> Result<Program> {
        Program::load_typed("tput_devsink", &count_drop_insns(counts), BPF_PROG_TYPE_XDP, BPF_XDP_DEVMAP)
    }

    /// The sink, as a tc egress program: counts the packet under its length (`skb->len`, the
    /// frame with its Ethernet header) and drops it (TC_ACT_SHOT).
    pub fn count_drop_egress(counts: &ArrayMap) -> Result<Program> {
        assert_eq!(counts.entries, LEN_BUCKETS);
        let mut a = Asm::default();
        let drop = a.label();
        a.raw(LDX_W, R3, R1, 0, 0); // __sk_buff.len
        a.raw(AND_K, R3, 0, 0, (LEN_BUCKETS - 1) as i32);
        a.raw(STX_W, R10, R3, -4, 0);
        a.raw(MOV_X, R2, R10, 0, 0);
        a.raw(ADD_K, R2, 0, 0, -4);
        a.map_fd(R1, counts.fd.as_raw_fd());
        a.raw(CALL, 0, 0, 0, HELPER_MAP_LOOKUP);
        a.jump(JEQ_K, R0, 0, 0, drop);
        a.raw(MOV_K, R1, 0, 0, 1);
        a.raw(ATOMIC_DW, R0, R1, 0, 0);
        a.bind(drop);
        a.raw(MOV_K, R0, 0, 0, TC_ACT_SHOT);
        a.raw(EXIT, 0, 0, 0, 0);
        Program::load_typed("tput_sink", &a.finish(), BPF_PROG_TYPE_SCHED_CLS, 0)
    }

    /// The generator (see the module comment). Per frame: `n` = the state's counter (then
    /// incremented), slot `n % slots` of `templates` is the frame to send: the frame is cut to
    /// the template's length (bpf_xdp_adjust_tail; the test run's frame is the longest) and its
    /// first `copy` bytes are copied from the template (the rest of every frame is the same
    /// filler); then `k = (n / slots) % SPREAD` is added to the destination address's last byte
    /// and taken from the source address's, which leaves the IPv4 header checksum and the TCP/UDP
    /// checksums valid (the 16-bit sums do not change).
    pub fn generator(state: &ArrayMap, templates: &ArrayMap) -> Result<Program> {
        assert_eq!(state.value_size, 8);
        assert_eq!(templates.value_size, TEMPLATE_VALUE);
        let slots = templates.entries as i32;
        let mut a = Asm::default();
        let (tx, copy_loop, last, v6) = (a.label(), a.label(), a.label(), a.label());
        a.raw(MOV_X, R6, R1, 0, 0);
        a.count_up(state.fd.as_raw_fd(), tx);
        // r0 = templates[n % slots]
        a.raw(MOV_X, R1, R8, 0, 0);
        a.raw(MOD_K, R1, 0, 0, slots);
        a.lookup_key(templates.fd.as_raw_fd(), R1, tx);
        a.raw(MOV_X, R7, R0, 0, 0);
        // r8 = k
        a.raw(DIV_K, R8, 0, 0, slots);
        a.raw(MOD_K, R8, 0, 0, i32::from(SPREAD));
        // Cut the frame to the template's length.
        a.frame_to_length(tx);
        // r9 = bytes to copy, 54..=COPY_BYTES.
        a.raw(LDX_W, R9, R7, 4, 0);
        a.jump(JGT_K, R9, 0, COPY_BYTES as i32, tx);
        a.jump(JLT_K, R9, 0, 54, tx);
        a.raw(LDX_W, R2, R6, 0, 0);
        a.raw(LDX_W, R3, R6, 4, 0);
        // Whole 8-byte words, then the last 8 bytes (overlapping: the same bytes again).
        a.raw(MOV_K, R5, 0, 0, 0);
        a.bind(copy_loop);
        a.raw(MOV_X, R1, R5, 0, 0);
        a.raw(ADD_K, R1, 0, 0, 8);
        a.jump(JGT_X, R1, R9, 0, last);
        a.raw(MOV_X, R4, R7, 0, 0);
        a.raw(ADD_X, R4, R5, 0, 0);
        a.raw(LDX_DW, R0, R4, 8, 0);
        a.raw(MOV_X, R4, R2, 0, 0);
        a.raw(ADD_X, R4, R5, 0, 0);
        a.raw(MOV_X, R1, R4, 0, 0);
        a.raw(ADD_K, R1, 0, 0, 8);
        a.jump(JGT_X, R1, R3, 0, tx);
        a.raw(STX_DW, R4, R0, 0, 0);
        a.raw(ADD_K, R5, 0, 0, 8);
        a.jump(JA, 0, 0, 0, copy_loop);
        a.bind(last);
        a.raw(MOV_X, R5, R9, 0, 0);
        a.raw(ADD_K, R5, 0, 0, -8);
        a.raw(MOV_X, R4, R7, 0, 0);
        a.raw(ADD_X, R4, R5, 0, 0);
        a.raw(LDX_DW, R0, R4, 8, 0);
        a.raw(MOV_X, R4, R2, 0, 0);
        a.raw(ADD_X, R4, R5, 0, 0);
        a.raw(MOV_X, R1, R4, 0, 0);
        a.raw(ADD_K, R1, 0, 0, 8);
        a.jump(JGT_X, R1, R3, 0, tx);
        a.raw(STX_DW, R4, R0, 0, 0);
        // The spread, at fixed offsets below 54.
        a.raw(MOV_X, R4, R2, 0, 0);
        a.raw(ADD_K, R4, 0, 0, 54);
        a.jump(JGT_X, R4, R3, 0, tx);
        a.raw(LDX_H, R4, R2, 12, 0);
        a.jump(JNE_K, R4, 0, 0x0008, v6); // EtherType 0x0800, read little-endian
        for (dst, src, end) in [(33i16, 29i16, Some(tx)), (53, 37, None)] {
            a.raw(LDX_B, R4, R2, dst, 0);
            a.raw(ADD_X, R4, R8, 0, 0);
            a.raw(STX_B, R2, R4, dst, 0);
            a.raw(LDX_B, R4, R2, src, 0);
            a.raw(SUB_X, R4, R8, 0, 0);
            a.raw(STX_B, R2, R4, src, 0);
            if let Some(end) = end {
                a.jump(JA, 0, 0, 0, end);
                a.bind(v6);
                a.raw(LDX_H, R4, R2, 12, 0);
                a.jump(JNE_K, R4, 0, 0xdd86u16 as i32, tx);
            }
        }
        a.bind(tx);
        a.raw(MOV_K, R0, 0, 0, 3);
        a.raw(EXIT, 0, 0, 0, 0);
        Program::load("tput_gen", &a.finish())
    }

    /// The sequencer. Per run: `n` = `state[0]`'s counter (then incremented), `count` = its
    /// second word; slot `n % count` of `frames` (length u32, 4 spare bytes, the frame) becomes
    /// the frame (bpf_xdp_adjust_tail to its length, bpf_xdp_store_bytes of all of it), then
    /// the program in `next[0]` runs it (tail call) and its verdict is the run's. Anything
    /// amiss returns XDP_ABORTED, which no frame under test gets from the programs.
    pub fn sequencer(state: &ArrayMap, frames: &ArrayMap, next: &ArrayMap) -> Result<Program> {
        assert_eq!(state.value_size, 16);
        assert_eq!(frames.value_size, SEQUENCE_VALUE);
        let mut a = Asm::default();
        let abort = a.label();
        a.raw(MOV_X, R6, R1, 0, 0);
        a.count_up(state.fd.as_raw_fd(), abort);
        a.raw(LDX_DW, R9, R0, 8, 0);
        a.jump(JEQ_K, R9, 0, 0, abort);
        a.raw(MOD_X, R8, R9, 0, 0);
        a.lookup_key(frames.fd.as_raw_fd(), R8, abort);
        a.raw(MOV_X, R7, R0, 0, 0);
        a.frame_to_length(abort);
        a.raw(LDX_W, R4, R7, 0, 0);
        a.jump(JGT_K, R4, 0, SEQUENCE_FRAME as i32, abort);
        a.jump(JLT_K, R4, 0, 14, abort);
        a.raw(MOV_X, R1, R6, 0, 0);
        a.raw(MOV_K, R2, 0, 0, 0);
        a.raw(MOV_X, R3, R7, 0, 0);
        a.raw(ADD_K, R3, 0, 0, 8);
        a.raw(CALL, 0, 0, 0, HELPER_XDP_STORE_BYTES);
        a.jump(JNE_K, R0, 0, 0, abort);
        a.raw(MOV_X, R1, R6, 0, 0);
        a.map_fd(R2, next.fd.as_raw_fd());
        a.raw(MOV_K, R3, 0, 0, 0);
        a.raw(CALL, 0, 0, 0, HELPER_TAIL_CALL);
        a.bind(abort);
        a.raw(MOV_K, R0, 0, 0, 0);
        a.raw(EXIT, 0, 0, 0, 0);
        // A program array takes only programs of its first one's attach type (Linux 6.17 on),
        // and aya loads XDP programs with BPF_XDP's.
        Program::load_typed("micro_seq", &a.finish(), BPF_PROG_TYPE_XDP, BPF_XDP)
    }

    /// One BPF_PROG_TEST_RUN (not live): the program runs `repeat` times on one buffer that
    /// starts as `frame`. Returns the last run's verdict and the kernel's mean ns per run.
    pub fn run(&self, frame: &[u8], repeat: u32) -> io::Result<(u32, u32)> {
        let mut attr = TestRunAttr { prog_fd: self.fd.as_raw_fd() as u32, data_size_in: frame.len() as u32, data_in: frame.as_ptr() as u64, repeat, ..Default::default() };
        sys(BPF_PROG_TEST_RUN, &mut attr)?;
        Ok((attr.retval, attr.duration))
    }

    /// Attaches the program to `dev` in network namespace `ns` for as long as the returned link
    /// lives: XDP in native mode, tc programs on egress (tcx).
    pub fn attach(&self, ns: &str, dev: &str) -> Result<OwnedFd> {
        let (attach_type, flags, how) = if self.prog_type == BPF_PROG_TYPE_XDP { (BPF_XDP, XDP_FLAGS_DRV_MODE, "native XDP") } else { (BPF_TCX_EGRESS, 0, "tcx egress") };
        rawbpf::attach(&self.fd, ns, dev, attach_type, flags).with_context(|| format!("attaching {} ({how})", self.name))
    }

    /// One BPF_PROG_TEST_RUN with live frames: the program runs `repeat` times on `frame`
    /// received on `ifindex` (of the calling thread's namespace), and every XDP_TX goes out of it.
    pub fn run_live(&self, frame: &[u8], ifindex: u32, repeat: u32) -> io::Result<()> {
        let ctx = XdpMd { data: 0, data_end: frame.len() as u32, ingress_ifindex: ifindex, ..Default::default() };
        let mut attr = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: frame.len() as u32,
            data_in: frame.as_ptr() as u64,
            repeat,
            ctx_size_in: size_of::<XdpMd>() as u32,
            ctx_in: &ctx as *const XdpMd as u64,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: 64,
            ..Default::default()
        };
        sys(BPF_PROG_TEST_RUN, &mut attr).map(|_| ())
    }
}

/// `counts[len & 2047] += 1`, then XDP_DROP (an XDP program: `data`, `data_end` first in its context).
fn count_drop_insns(counts: &ArrayMap) -> Vec<u64> {
    assert_eq!(counts.entries, LEN_BUCKETS);
    let mut a = Asm::default();
    let drop = a.label();
    a.raw(LDX_W, R2, R1, 0, 0); // data
    a.raw(LDX_W, R3, R1, 4, 0); // data_end
    a.raw(SUB_X, R3, R2, 0, 0); // length (pointer difference: needs CAP_PERFMON, root has it)
    a.raw(AND_K, R3, 0, 0, (LEN_BUCKETS - 1) as i32);
    a.raw(STX_W, R10, R3, -4, 0);
    a.raw(MOV_X, R2, R10, 0, 0);
    a.raw(ADD_K, R2, 0, 0, -4);
    a.map_fd(R1, counts.fd.as_raw_fd());
    a.raw(CALL, 0, 0, 0, HELPER_MAP_LOOKUP);
    a.jump(JEQ_K, R0, 0, 0, drop);
    a.raw(MOV_K, R1, 0, 0, 1);
    a.raw(ATOMIC_DW, R0, R1, 0, 0); // lock *(u64 *)(r0 + 0) += r1
    a.bind(drop);
    a.raw(MOV_K, R0, 0, 0, 1);
    a.raw(EXIT, 0, 0, 0, 0);
    a.finish()
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The leading fields of `struct bpf_map_info`.
#[repr(C)]
#[derive(Default)]
struct MapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
}

/// Among this process's own map descriptors, the devmap of type `map_type` ([`DEVMAP`] or
/// [`DEVMAP_HASH`]) named `name` whose entry `key` is set (a blocker in inline mode: its `PORTS`,
/// in router mode with XDP forwarding: its `FORWARD_PORTS`; other blockers have those empty).
/// Maps whose id is in `taken` (earlier variants' sinks: the same key can be set in several
/// blockers' maps, each in its own namespace) are passed over; the one found is added to it.
/// Returns a duplicate of the descriptor. Only this process's descriptors are looked at, so
/// another process's blocker is never touched.
pub fn own_devmap_with_entry(name: &str, map_type: u32, key: u32, taken: &mut Vec<u32>) -> Result<OwnedFd> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")?.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else { continue };
        if !std::fs::read_link(entry.path()).is_ok_and(|l| l.to_string_lossy() == "anon_inode:bpf-map") {
            continue;
        }
        let mut info = MapInfo::default();
        let mut attr = InfoAttr { bpf_fd: fd as u32, info_len: size_of::<MapInfo>() as u32, info: &mut info as *mut MapInfo as u64 };
        if sys(BPF_OBJ_GET_INFO_BY_FD, &mut attr).is_err() || info.map_type != map_type || info.value_size != 8 || taken.contains(&info.id) {
            continue;
        }
        let end = info.name.iter().position(|&b| b == 0).unwrap_or(16);
        if &info.name[..end] != name.as_bytes() {
            continue;
        }
        let mut value = [0u8; 8];
        let mut lookup = MapElemAttr { map_fd: fd as u32, key: &key as *const u32 as u64, value: value.as_mut_ptr() as u64, ..Default::default() };
        if sys(BPF_MAP_LOOKUP_ELEM, &mut lookup).is_ok() && !found.iter().any(|(id, _)| *id == info.id) {
            found.push((info.id, fd));
        }
    }
    match found.as_slice() {
        [(id, fd)] => {
            taken.push(*id);
            // SAFETY: fcntl on a descriptor this process holds; the duplicate is ours alone.
            let dup = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(io::Error::last_os_error()).context("duplicating the devmap descriptor");
            }
            // SAFETY: just returned by the kernel, owned by nothing else.
            Ok(unsafe { OwnedFd::from_raw_fd(dup) })
        }
        [] => bail!("no devmap {name} of this process has entry {key} set"),
        more => bail!("{} devmaps {name} of this process have entry {key} set", more.len()),
    }
}

/// Sets devmap entry `key` to device `dev` of the calling thread's namespace with `prog` (a
/// devmap program) to run on every frame redirected there.
pub fn set_devmap_sink(map: &OwnedFd, key: u32, dev: &str, prog: &Program) -> Result<()> {
    let ifindex = ifindex(&CString::new(dev)?)?;
    let mut value = [0u8; 8];
    value[..4].copy_from_slice(&ifindex.to_ne_bytes());
    value[4..].copy_from_slice(&prog.fd.as_raw_fd().to_ne_bytes());
    let mut attr = MapElemAttr { map_fd: map.as_raw_fd() as u32, key: &key as *const u32 as u64, value: value.as_ptr() as u64, ..Default::default() };
    sys(BPF_MAP_UPDATE_ELEM, &mut attr).with_context(|| format!("setting devmap entry {key} to {dev} with {}", prog.name))?;
    Ok(())
}

/// The generator's template map value: length (u32), bytes to copy (u32), the bytes.
pub fn template_value(frame: &[u8]) -> Vec<u8> {
    let mut v = vec![FILLER; TEMPLATE_VALUE];
    let copy = frame.len().min(COPY_BYTES);
    v[..4].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    v[4..8].copy_from_slice(&(copy as u32).to_ne_bytes());
    v[8..8 + copy].copy_from_slice(&frame[..copy]);
    v
}

/// The frame every test run starts from: as long as the longest template, all filler (the
/// program writes the rest). Frames longer than COPY_BYTES must carry FILLER beyond it.
pub fn base_frame(len: usize) -> Vec<u8> {
    vec![FILLER; len]
}

#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// Puts thread `tid` (0: the calling thread) in the real-time class (SCHED_FIFO, `prio`), so
/// that the builds and tests of a shared machine do not take its CPU in the middle of a
/// measurement. Nice values would not do: with autogroups (on here), a nice -20 user thread
/// still shares its CPU equally with every other session. The kernel's real-time throttling
/// (95% of each second by default) leaves the rest of the machine some time.
pub fn realtime(tid: i32, prio: i32) -> Result<()> {
    let param = libc::sched_param { sched_priority: prio };
    // SAFETY: a valid sched_param; with a thread id, Linux changes that thread alone.
    if unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) } != 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("SCHED_FIFO for {tid}"));
    }
    Ok(())
}

/// Pins thread or process `tid` (0: the calling thread) to `cpu`.
pub fn pin(tid: i32, cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: set is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("pinning {tid} to CPU {cpu}"));
    }
    Ok(())
}
