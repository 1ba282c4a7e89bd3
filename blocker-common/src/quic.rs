//! QUIC: what the XDP program copies to user space (client Initial datagrams of flows it has no
//! verdict for) and the verdicts user space writes back per flow. The program decrypts nothing;
//! blocker-user/src/quic reads the server name and the daemon judges it (ARCHITECTURE.md, QUIC).

use crate::assert_size;

/// The UDP destination port whose datagrams are judged as QUIC.
pub const QUIC_PORT: u16 = 443;

/// Bytes of UDP payload a copy carries at most. Clients start with datagrams of 1200 to about
/// 1350 bytes (path MTU 1500 minus headers); a longer one is copied cut, fails to decrypt, and
/// its flow passes (fail open).
pub const COPY_CAP: usize = 1500;

/// RFC 9000 §14.1: a client's Initial datagram is at least this long; servers drop shorter
/// ones, so the program copies none.
pub const MIN_INITIAL_DATAGRAM: u32 = 1200;

/// QUIC versions whose client Initials are read (RFC 9000, RFC 9369).
pub const VERSION_1: u32 = 0x0000_0001;
pub const VERSION_2: u32 = 0x6b33_43cf;

/// A flow as the verdict map keys it: the subscriber's address and port, the server's, the
/// family. Addresses in network order (IPv4 in the first four bytes, the rest zero), ports in
/// host order. The same layout as the TCP flow key (blocker-ebpf flow.rs).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuicFlow {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    /// 1 for IPv6, 0 for IPv4.
    pub v6: u32,
}
assert_size!(QuicFlow, 40);

/// One copied datagram, as the program writes it into the `QUIC_RING` ring buffer.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct QuicCopy {
    pub flow: QuicFlow,
    /// Bytes of `payload` copied.
    pub len: u32,
    /// The UDP payload's length on the wire (more than `len`: the copy was cut at COPY_CAP).
    pub wire_len: u32,
    /// `QuicConfig::epoch` when the copy was made.
    pub epoch: u32,
    pub payload: [u8; COPY_CAP],
}
assert_size!(QuicCopy, 40 + 12 + COPY_CAP);

impl QuicCopy {
    /// The copied bytes.
    pub fn payload(&self) -> &[u8] {
        let n = if (self.len as usize) < COPY_CAP { self.len as usize } else { COPY_CAP };
        &self.payload[..n]
    }
}

/// `QuicVerdict::kind`: what the program does with the flow's datagrams.
/// Pass, and copy no more of the flow's Initials (no name, an unlisted or allowed name, not
/// readable).
pub const VERDICT_PASS: u32 = 1;
/// Drop every datagram of the flow (`quic`/drop): its server name is listed.
pub const VERDICT_BLOCK: u32 = 2;
/// Pass, counted as `quic`/shadow against the entry: only a list in shadow mode names it.
pub const VERDICT_SHADOW: u32 = 3;

/// The value of the `QUIC_VERDICTS` LRU map, written by the daemon.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuicVerdict {
    pub kind: u32,
    /// The list entry behind a block or shadow verdict (0: none), for per-entry counters.
    pub entry_id: u32,
    /// The `QuicConfig::epoch` of the list set the name was judged against. The program ignores
    /// a verdict of another epoch: verdicts never outlive the list set that made them.
    pub epoch: u32,
    pub reserved: u32,
}
assert_size!(QuicVerdict, 16);

/// `QuicConfig::flags`: copy and judge QUIC at all. Off (the map starts zeroed) until a daemon
/// that reads the ring turns it on; UDP to port 443 then passes untouched (`no_match`).
pub const QUIC_ENABLED: u32 = 1 << 0;

/// The QUIC switches, in the one-entry `QUIC_CONFIG` array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuicConfig {
    pub flags: u32,
    /// Bumped by the daemon whenever the live list set changes.
    pub epoch: u32,
    /// The per-CPU token bucket: nanoseconds of credit one copy costs (10^9 / copies per
    /// second per CPU) and the most credit a CPU can hold (burst × cost).
    pub cost_ns: u64,
    pub burst_ns: u64,
    /// The daemon's reader is alive until this CLOCK_MONOTONIC time (bpf_ktime_get_ns): it
    /// renews the lease while it drains the ring. Past it (a killed or stuck daemon) nothing is
    /// copied and no 0-RTT is held back, so QUIC fails open; verdicts already written still
    /// hold, as the rest of the lists do.
    pub reader_alive_until_ns: u64,
}
assert_size!(QuicConfig, 32);

impl QuicConfig {
    /// `rate` copies per second per CPU on average, up to `burst` at once; the reader's lease
    /// without end (the daemon bounds it and renews it).
    pub const fn new(enabled: bool, epoch: u32, rate: u32, burst: u32) -> Self {
        let rate = if rate == 0 { 1 } else { rate as u64 };
        let cost_ns = 1_000_000_000 / rate;
        QuicConfig { flags: if enabled { QUIC_ENABLED } else { 0 }, epoch, cost_ns, burst_ns: cost_ns * burst as u64, reader_alive_until_ns: u64::MAX }
    }
}

/// The per-CPU token bucket's state (the program's own; never written by the controller).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenBucket {
    pub credit_ns: u64,
    pub last_ns: u64,
}
assert_size!(TokenBucket, 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_of_20000_per_second_costs_50_microseconds_a_copy() {
        let c = QuicConfig::new(true, 3, 20_000, 100);
        assert_eq!((c.flags, c.epoch, c.cost_ns, c.burst_ns), (QUIC_ENABLED, 3, 50_000, 5_000_000));
        assert_eq!(QuicConfig::new(false, 0, 0, 1).cost_ns, 1_000_000_000, "a zero rate is one a second, not a division by zero");
    }
}
