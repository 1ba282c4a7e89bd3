//! The server name of QUIC connections: client Initial packets of QUIC version 1 (RFC 9000,
//! RFC 9001) and version 2 (RFC 9369) decrypted, their CRYPTO frames put back together, and the
//! server_name read from the ClientHello. User space only; nothing here touches the kernel.
//!
//! # Why user space
//!
//! A QUIC client's first packets are encrypted, but with keys anyone can derive: HKDF over a salt
//! fixed per version and the Destination Connection ID the packet carries ([`keys`]). Reading the
//! name takes HKDF-SHA256, AES-128 and AES-128-GCM over a whole 1200-byte packet, and usually
//! reassembly across two packets: Chromium 156 sends a 1980-byte ClientHello (an X25519MLKEM768
//! key share, ECH GREASE) in two 1250-byte Initials, cut into CRYPTO frames that are shuffled
//! across both with PING and PADDING between them (`testdata/`: real captures). That is far
//! beyond what the XDP program can do per packet, so the split is:
//!
//! 1. **Kernel** (blocker-ebpf/src/quic.rs): the XDP program copies the client Initial
//!    datagrams of flows it has no verdict for to a ring buffer, rate-bounded, and lets them pass.
//! 2. **This library**: [`Reader::feed`] decrypts them, reassembles the ClientHello per connection
//!    and extracts the server name.
//! 3. **Daemon** (daemon/quic.rs): matches the name against the lists and writes a verdict for
//!    the flow. The packets of a blocked flow are dropped from then on; the handshake never
//!    completes and the browser falls back to TCP, where the TLS reader blocks the same name with
//!    a reset.
//!
//! # The packet path
//!
//! [`packet`] walks the coalesced long-header packets of a datagram, [`decrypt`] removes header
//! and packet protection with the [`keys`] of the packet's DCID, [`frames`] reads PADDING, PING,
//! ACK, CRYPTO and CONNECTION_CLOSE (anything else is an error in an Initial),
//! [`reassembly`] collects CRYPTO data by offset (bounded, first copy wins) and reads the
//! server_name of the complete ClientHello. [`fixtures`] holds real Initials for tests.
//!
//! # The kernel half, as built
//!
//! ARCHITECTURE.md (QUIC) has the diagram; types are in blocker-common/src/quic.rs.
//!
//! - **What is copied**: UDP to port 443 from the subscriber side whose payload starts with a
//!   long header of an Initial: `(b0 & 0xf0) == 0xc0` with version 0x00000001 or
//!   `(b0 & 0xf0) == 0xd0` with version 0x6b3343cf (bytes 1–4), and is at least
//!   [`MIN_CLIENT_INITIAL_DATAGRAM`] (1200) bytes long (RFC 9000 §14.1: servers drop shorter
//!   ones, so reading them gains nothing). The whole UDP payload up to 1500 bytes (truncated
//!   copies simply fail to decrypt, fail open) plus the flow key and its length on the wire go
//!   into a `bpf_ringbuf_reserve`d record, filled by `bpf_xdp_load_bytes` (one copy, no scratch
//!   buffer). The kernel decrypts nothing.
//! - **Flow key**: the 5-tuple (client address and port, server address and port, family), the
//!   key of the verdict map. This library keys its own state by the DCID of the Initials, which
//!   is what the keys derive from: a client that changes ports mid-handshake stays one
//!   connection here, and two connections sharing a flow stay apart.
//! - **Verdicts**: an LRU hash from flow key to verdict (block, shadow or pass, with the list
//!   entry for per-entry counters and the list epoch). Blocked: drop (there is no QUIC reset a
//!   client honours before the handshake; an ICMP port unreachable sent back might make browsers
//!   fall back to TCP sooner than their handshake timeout: not measured). Pass: stop copying that
//!   flow. No verdict: copy (within the rate bound) and pass. The daemon writes *pass* for
//!   [`Progress::NoSni`], for unlisted and allowed names, and for flows that gave
//!   [`Progress::NotQuic`] four times, so the kernel stops copying them.
//! - **List changes**: a verdict of another epoch than the program's is ignored. The daemon bumps
//!   the epoch when the live list set changes and, under the same lock, judges the flows it
//!   blocked again, writing verdicts of the new epoch: a verdict never outlives the list set that
//!   made it.
//! - **Rate bounds, fail open**: a per-CPU token bucket (20 000 copies per second per CPU, bursts
//!   of 2 000) in front of the ring (4 MiB); when either is exhausted the datagram passes uncopied
//!   and counted (`quic_overload`). Here [`Limits`] bound the connections and bytes held; the
//!   oldest connection is evicted first and [`ReaderStats::evictions`] counts them. Under overload
//!   names go unread and flows pass: never a packet held, never an allowed flow dropped.
//! - **Race**: the first flight passes before the verdict exists (the kernel cannot hold it,
//!   and the name may sit in either of its two datagrams). The server answers it, but the
//!   client's Handshake packets that would finish the handshake come after the verdict is
//!   written and are dropped.
//! - **0-RTT**: a resumed connection can put the request itself in 0-RTT packets of the first
//!   flight, and the server's answer comes back unjudged (the program judges what subscribers
//!   send). So 0-RTT packets of a flow without a verdict do not pass: a datagram that starts with
//!   a 0-RTT packet is dropped (`quic_early`); one that coalesces a 0-RTT packet after its
//!   Initial is copied whole, then over IPv4 cut after the Initial with `bpf_xdp_adjust_tail`
//!   (IP length and checksum, UDP length fixed, UDP checksum cleared) and passed; over IPv6
//!   (a UDP checksum is mandatory and summing 1200 bytes again is not worth it) dropped: the
//!   client resends its Initial after a probe timeout, by when the verdict exists. The client
//!   resends the request in 1-RTT once the handshake is done: resumed connections to allowed
//!   sites lose their 0-RTT head start.
//!
//! # Limits of this part
//!
//! - Initials are read with the keys of their own DCID. After the server's first Initial the
//!   client addresses the server's chosen ID but keeps the original keys (RFC 9001 §5.2); those
//!   later Initials (ACKs, a CRYPTO retransmission the server asked for) do not open here
//!   ([`Progress::NotQuic`]). Browsers send the whole ClientHello in the first flight, so this
//!   only loses a ClientHello whose first flight was partly lost. After a Retry the client
//!   starts over with new keys and the whole ClientHello, which reads as a new connection.
//! - Clients that clear the fixed bit (a remembered grease_quic_bit, RFC 9287) and versions other
//!   than 1 and 2 (drafts, experiments) are not read: they pass.
//! - With Encrypted Client Hello the name read is the outer one (the client-facing server's).

pub mod decrypt;
pub mod fixtures;
pub mod frames;
pub mod keys;
pub mod packet;
pub mod reassembly;
mod vectors;
mod wire;

use std::collections::{BTreeMap, HashMap};

use thiserror::Error;

pub use decrypt::{DecryptError, InitialCipher};
pub use frames::FrameError;
pub use packet::{MIN_CLIENT_INITIAL_DATAGRAM, PacketError, Version};
pub use reassembly::{ClientHelloError, ReassemblyError};

use frames::Frame;
use packet::{LongPacket, MAX_CID_LEN};
use reassembly::CryptoBuffer;

/// Why no server name came out of some datagrams.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum QuicError {
    #[error("not a QUIC packet: {0}")]
    Packet(#[from] PacketError),
    #[error("Initial packet does not open: {0}")]
    Decrypt(#[from] DecryptError),
    #[error("Initial packet frames: {0}")]
    Frame(#[from] FrameError),
    #[error("CRYPTO stream: {0}")]
    Reassembly(#[from] ReassemblyError),
    #[error("ClientHello: {0}")]
    ClientHello(#[from] ClientHelloError),
    #[error("the client closed the connection before its ClientHello was complete")]
    ClosedByClient,
    #[error("no client Initial packet among the datagrams")]
    NoInitial,
    #[error("the datagrams end before the ClientHello does")]
    Incomplete,
}

/// The server name of the ClientHello that client Initial `datagrams` (UDP payloads, in the order
/// received) carry: `Some(name)`, or `None` for a complete ClientHello without server_name.
///
/// Meant for the first flight of one connection (tests, replay, diagnostics). The first datagram
/// that completes a ClientHello answers; the first error ends it. Datagrams without an Initial are
/// skipped.
pub fn client_hello_sni(datagrams: &[&[u8]]) -> Result<Option<String>, QuicError> {
    let mut reader = Reader::new(Limits::default());
    let mut need_more = false;
    for d in datagrams {
        match reader.try_feed(d)? {
            Progress::Sni(name) => return Ok(Some(name)),
            Progress::NoSni => return Ok(None),
            Progress::NeedMore => need_more = true,
            Progress::NotQuic => {}
        }
    }
    Err(if need_more { QuicError::Incomplete } else { QuicError::NoInitial })
}

/// What one datagram told about its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// An Initial of a connection whose ClientHello is not complete yet; its state is kept.
    NeedMore,
    /// The ClientHello is complete and names this server (as sent: not normalised). Repeated for
    /// later Initials of the same connection while it is remembered.
    Sni(String),
    /// The ClientHello is complete and has no server_name.
    NoSni,
    /// Nothing readable: not a QUIC version 1 or 2 long header, no Initial packet in it, an
    /// Initial that does not open, or one of a connection whose ClientHello cannot be read (too
    /// large, malformed). Fail open. [`Reader::try_feed`] tells which.
    NotQuic,
}

/// Bounds on a [`Reader`]'s state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections remembered at once (reading, or finished and remembered).
    pub max_connections: usize,
    /// Bytes of state at once, estimated: buffers plus a fixed cost per connection.
    pub max_memory: usize,
    /// The largest ClientHello read (the CRYPTO buffer of one connection).
    pub max_client_hello: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 4096, max_memory: 16 << 20, max_client_hello: reassembly::DEFAULT_LIMIT }
    }
}

/// Counters of a [`Reader`] (all since it was made, except `connections` and `memory`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Datagrams fed.
    pub datagrams: u64,
    /// Datagrams that gave [`Progress::NotQuic`] (errors included).
    pub not_quic: u64,
    /// Initial packets opened (authenticated).
    pub initials: u64,
    /// Initial packets that did not open.
    pub undecryptable: u64,
    /// Connections finished with a server name, without one, or unreadable.
    pub sni: u64,
    pub no_sni: u64,
    pub failed: u64,
    /// Connections dropped to stay within [`Limits`], oldest first.
    pub evictions: u64,
    /// Connections and estimated bytes held now.
    pub connections: usize,
    pub memory: usize,
}

/// A connection's identity here: the version and the DCID its client Initial keys derive from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ConnKey {
    version: Version,
    len: u8,
    cid: [u8; MAX_CID_LEN],
}

impl ConnKey {
    fn new(version: Version, dcid: &[u8]) -> Self {
        let mut cid = [0; MAX_CID_LEN];
        cid[..dcid.len()].copy_from_slice(dcid);
        ConnKey { version, len: dcid.len() as u8, cid }
    }
}

enum ConnState {
    Reading { cipher: Box<InitialCipher>, buffer: CryptoBuffer, largest_pn: Option<u64> },
    Done { outcome: Result<Option<String>, QuicError>, largest_pn: Option<u64> },
}

struct Conn {
    /// Creation order: the smallest is evicted first.
    seq: u64,
    /// This connection's share of [`ReaderStats::memory`].
    memory: usize,
    state: ConnState,
}

/// Fixed cost counted per connection: the entry, the keyed ciphers (AES key schedules, GHASH
/// key), the order index.
const CONN_OVERHEAD: usize = 2048;

impl Conn {
    fn estimate(&self) -> usize {
        CONN_OVERHEAD
            + match &self.state {
                ConnState::Reading { buffer, .. } => buffer.memory(),
                ConnState::Done { outcome: Ok(Some(name)), .. } => name.len(),
                ConnState::Done { .. } => 0,
            }
    }

    fn progress(&self) -> Result<Progress, QuicError> {
        match &self.state {
            ConnState::Reading { .. } => Ok(Progress::NeedMore),
            ConnState::Done { outcome: Ok(Some(name)), .. } => Ok(Progress::Sni(name.clone())),
            ConnState::Done { outcome: Ok(None), .. } => Ok(Progress::NoSni),
            ConnState::Done { outcome: Err(e), .. } => Err(e.clone()),
        }
    }
}

/// Reads server names out of client Initial datagrams, many connections at once, in bounded
/// memory. Feed it every copied datagram; it answers per datagram.
pub struct Reader {
    limits: Limits,
    conns: HashMap<ConnKey, Conn>,
    /// seq → key, oldest first.
    order: BTreeMap<u64, ConnKey>,
    next_seq: u64,
    stats: ReaderStats,
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new(Limits::default())
    }
}

impl Reader {
    pub fn new(limits: Limits) -> Self {
        Reader { limits, conns: HashMap::new(), order: BTreeMap::new(), next_seq: 0, stats: ReaderStats::default() }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn stats(&self) -> ReaderStats {
        ReaderStats { connections: self.conns.len(), ..self.stats }
    }

    /// Reads one UDP payload; every failure is [`Progress::NotQuic`] (fail open).
    pub fn feed(&mut self, udp_payload: &[u8]) -> Progress {
        self.try_feed(udp_payload).unwrap_or(Progress::NotQuic)
    }

    /// Reads one UDP payload. `Ok(NotQuic)` for a well-formed QUIC datagram without an Initial
    /// (0-RTT or Handshake only); an error says why anything else gave no progress.
    pub fn try_feed(&mut self, udp_payload: &[u8]) -> Result<Progress, QuicError> {
        self.stats.datagrams += 1;
        let result = self.read_datagram(udp_payload);
        if !matches!(result, Ok(Progress::NeedMore | Progress::Sni(_) | Progress::NoSni)) {
            self.stats.not_quic += 1;
        }
        result
    }

    fn read_datagram(&mut self, datagram: &[u8]) -> Result<Progress, QuicError> {
        let mut first_dcid: Option<&[u8]> = None;
        let mut read: Option<ConnKey> = None;
        let mut error: Option<QuicError> = None;
        for packet in packet::packets(datagram) {
            let packet = match packet {
                Ok(p) => p,
                // A bad first packet makes the datagram unreadable; a bad later one only ends it.
                Err(e) if first_dcid.is_none() => return Err(e.into()),
                Err(_) => break,
            };
            // Packets coalesced after the first with another DCID are not the same connection's
            // (RFC 9000 §12.2: receivers SHOULD ignore them).
            if *first_dcid.get_or_insert(packet.dcid) != packet.dcid || !packet.is_initial() {
                continue;
            }
            match self.read_initial(&packet) {
                Ok(key) => read = Some(key),
                Err(e) => error = Some(e),
            }
        }
        match (read, error) {
            // (The connection may have been evicted by a later one coalesced after it.)
            (Some(key), _) => self.conns.get(&key).map_or(Ok(Progress::NotQuic), Conn::progress),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(Progress::NotQuic),
        }
    }

    /// Opens one Initial packet and adds its CRYPTO data to its connection (made for it if the
    /// packet opens and its connection is new). The key of the connection it counted for.
    fn read_initial(&mut self, packet: &LongPacket<'_>) -> Result<ConnKey, QuicError> {
        let key = ConnKey::new(packet.version, packet.dcid);
        let opened = match self.conns.get(&key) {
            // Finished: the packet only has to open (its keys are derived again: finished
            // connections keep no ciphers) to be answered like the ones before it.
            Some(Conn { state: ConnState::Done { largest_pn, .. }, .. }) => {
                let largest = *largest_pn;
                return match InitialCipher::client(packet.version, packet.dcid).decrypt(packet, largest) {
                    Ok(opened) => {
                        self.stats.initials += 1;
                        if let Some(Conn { state: ConnState::Done { largest_pn, .. }, .. }) = self.conns.get_mut(&key) {
                            *largest_pn = Some(largest.map_or(opened.packet_number, |l| l.max(opened.packet_number)));
                        }
                        Ok(key)
                    }
                    Err(e) => {
                        self.stats.undecryptable += 1;
                        Err(e.into())
                    }
                };
            }
            Some(Conn { state: ConnState::Reading { cipher, largest_pn, .. }, .. }) => {
                cipher.decrypt(packet, *largest_pn)
            }
            None => {
                let cipher = Box::new(InitialCipher::client(packet.version, packet.dcid));
                let opened = cipher.decrypt(packet, None);
                if opened.is_ok() {
                    // Only a packet that opens makes state: garbage costs time, never memory.
                    self.insert(key, cipher);
                }
                opened
            }
        };
        let opened = match opened {
            Ok(o) => o,
            Err(e) => {
                self.stats.undecryptable += 1;
                return Err(e.into());
            }
        };
        self.stats.initials += 1;
        let conn = self.conns.get_mut(&key).expect("inserted or found above");
        let ConnState::Reading { buffer, largest_pn, .. } = &mut conn.state else { unreachable!() };
        *largest_pn = Some(largest_pn.map_or(opened.packet_number, |l| l.max(opened.packet_number)));
        let outcome = read_frames(buffer, &opened.payload);
        if let Some(outcome) = outcome {
            match &outcome {
                Ok(Some(_)) => self.stats.sni += 1,
                Ok(None) => self.stats.no_sni += 1,
                Err(_) => self.stats.failed += 1,
            }
            conn.state = ConnState::Done { outcome, largest_pn: *largest_pn };
        }
        let memory = conn.estimate();
        let before = std::mem::replace(&mut conn.memory, memory);
        self.stats.memory = self.stats.memory - before + memory;
        self.enforce_limits(Some(key));
        Ok(key)
    }

    fn insert(&mut self, key: ConnKey, cipher: Box<InitialCipher>) {
        let buffer = CryptoBuffer::new(self.limits.max_client_hello);
        let mut conn =
            Conn { seq: self.next_seq, memory: 0, state: ConnState::Reading { cipher, buffer, largest_pn: None } };
        conn.memory = conn.estimate();
        self.next_seq += 1;
        // Room first, for the one about to come in.
        while !self.conns.is_empty()
            && (self.conns.len() >= self.limits.max_connections
                || self.stats.memory + conn.memory > self.limits.max_memory)
        {
            self.evict_oldest(None);
        }
        self.stats.memory += conn.memory;
        self.order.insert(conn.seq, key);
        self.conns.insert(key, conn);
    }

    /// Evicts the oldest connections, sparing `keep`, until the limits hold (or only `keep` is left).
    fn enforce_limits(&mut self, keep: Option<ConnKey>) {
        while self.conns.len() > self.limits.max_connections || self.stats.memory > self.limits.max_memory {
            if !self.evict_oldest(keep) {
                break;
            }
        }
    }

    fn evict_oldest(&mut self, keep: Option<ConnKey>) -> bool {
        let Some((&seq, &key)) = self.order.iter().find(|(_, k)| Some(**k) != keep) else {
            return false;
        };
        self.order.remove(&seq);
        if let Some(conn) = self.conns.remove(&key) {
            self.stats.memory -= conn.memory;
        }
        self.stats.evictions += 1;
        true
    }
}

/// Adds the CRYPTO frames of an opened Initial payload to `buffer`. `Some` once the connection is
/// finished: its server name, none, or why it cannot be read.
fn read_frames(buffer: &mut CryptoBuffer, payload: &[u8]) -> Option<Result<Option<String>, QuicError>> {
    for frame in frames::frames(payload) {
        match frame {
            Ok(Frame::Crypto { offset, data }) => buffer.insert(offset, data),
            Ok(Frame::ConnectionClose { .. }) => return Some(Err(QuicError::ClosedByClient)),
            Ok(Frame::Padding(_) | Frame::Ping | Frame::Ack) => {}
            Err(e) => return Some(Err(e.into())),
        }
    }
    match buffer.client_hello() {
        Ok(None) => None,
        Ok(Some(hello)) => Some(reassembly::server_name(hello).map_err(QuicError::from)),
        Err(e) => Some(Err(e.into())),
    }
}

#[cfg(test)]
mod tests;
