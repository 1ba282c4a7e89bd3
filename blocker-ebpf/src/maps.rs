//! Every map the program uses, in one place. The controller (blocker-user/src/datapath) fills
//! them; ARCHITECTURE.md has the table of keys, values, capacities, writers and readers.
//!
//! List maps hold two generations (slot 0 and 1); `Config::slot` says which one is live. The
//! name and prefix maps share one element per key between them, with a value half per slot.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    macros::map,
    maps::{Array, DevMap, DevMapHash, HashMap, LpmTrie, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use blocker_common::{
    capacity, coarse,
    config::Config,
    counters::CounterTable,
    flow::BIT_WORDS,
    forward::{ForwardCounts, PortMac},
    dns::DnsConfig,
    name::{HashKey, NameKey, NameSlots},
    name_filter,
    prefix::{PrefixSlots, V4KeyData, V6KeyData},
    quic::{QuicConfig, QuicFlow, QuicVerdict, TokenBucket},
    route_cache::{self, RouteCacheEntry},
    stop_page::StopPageTemplate,
};

use crate::{
    flow::{FILTER_BUCKETS, FlowKey, FlowState, Head, NAME_WAIT_SLOTS, NameWait, Wait},
    names::NameScratch,
    parse::{ExtWalk, Packet},
    reply::ReplyScratch,
    stop_page::HostSum,
};

/// Entry 0: `blocker_tcp`, which `blocker` tail-calls for the TCP segments whose names it
/// must read (decide.rs `Decision::Tcp`). Filled by the controller when it loads the object.
#[map]
pub static TCP_JUDGE: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Run-time switches (bypass, reset-or-drop, live slot). One entry; read once per packet.
#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// Inline mode's two ports, for `bpf_redirect_map`: entry 0 is the internet port (where the
/// subscriber port's passing frames go), entry 1 the subscriber port (where the internet port's
/// frames go). Empty in router mode.
#[map]
pub static PORTS: DevMap = DevMap::with_max_entries(2, 0);

/// Router mode's XDP forwarding (forward.rs): the egress ports it may redirect to, keyed by
/// interface index. The controller puts a port here only after checking that it takes
/// redirected frames; a route out of any other port is left to the kernel.
#[map]
pub static FORWARD_PORTS: DevMapHash = DevMapHash::with_max_entries(64, 0);

/// The MAC of the port the program judges on, for XDP forwarding: frames to any other MAC are
/// not the router's to forward.
#[map]
pub static PORT_MAC: Array<PortMac> = Array::with_max_entries(1, 0);

/// XDP forwarding's outcomes (forwarded, or why the kernel got the frame), per CPU.
#[map]
pub static FORWARD_COUNTS: PerCpuArray<ForwardCounts> = PerCpuArray::with_max_entries(1, 0);

/// XDP forwarding's route cache (blocker-common route_cache.rs): the FIB's answers, per CPU,
/// one slot per hash of the question.
#[map]
pub static ROUTE_CACHE: PerCpuArray<RouteCacheEntry> = PerCpuArray::with_max_entries(route_cache::SLOTS, 0);

/// The route cache's generation: the controller moves it on with every routing change the
/// kernel reports, and an answer taken under an older one is not reused.
#[map]
pub static ROUTE_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// Packets and bytes per (reason, action), per CPU; summed by the controller.
#[map]
pub static COUNTERS: PerCpuArray<CounterTable> = PerCpuArray::with_max_entries(1, 0);

/// Coarse IPv4 filter, both slots: bit = destination /24 (blocker-common coarse.rs).
/// Memory-mappable so the controller writes a whole 2 MiB generation with plain stores
/// instead of 262 144 update syscalls.
#[map]
pub static COARSE_V4: Array<u64> = Array::with_max_entries(coarse::MAP_WORDS, BPF_F_MMAPABLE);

/// Coarse IPv6 filter, both slots: bit = hash of the destination /32.
#[map]
pub static COARSE_V6: Array<u64> = Array::with_max_entries(coarse::MAP_WORDS, BPF_F_MMAPABLE);

/// Exact IPv4 block prefixes of both slots, one key for both (blocker-common prefix.rs). Key:
/// the address, network order.
#[map]
pub static BLOCK_V4: LpmTrie<V4KeyData, PrefixSlots> = LpmTrie::with_max_entries(capacity::BLOCK_PREFIXES, 0);

/// Exact IPv6 block prefixes of both slots.
#[map]
pub static BLOCK_V6: LpmTrie<V6KeyData, PrefixSlots> = LpmTrie::with_max_entries(capacity::BLOCK_PREFIXES, 0);

/// IPv4 allow prefixes; consulted only after a block prefix matched, and win over it.
#[map]
pub static ALLOW_V4: LpmTrie<V4KeyData, PrefixSlots> = LpmTrie::with_max_entries(capacity::ALLOW_PREFIXES, 0);

/// IPv6 allow prefixes.
#[map]
pub static ALLOW_V6: LpmTrie<V6KeyData, PrefixSlots> = LpmTrie::with_max_entries(capacity::ALLOW_PREFIXES, 0);

/// The deployment's secret name-hash key, written to both slots alike: NAMES keys are shared
/// by the two generations (blocker-common name.rs).
#[map]
pub static HASH_KEYS: Array<HashKey> = Array::with_max_entries(2, 0);

/// Listed names of both slots, block, allow and shadow: chain hash → each slot's entry ids and
/// modes.
#[map]
pub static NAMES: HashMap<NameKey, NameSlots> = HashMap::with_max_entries(capacity::NAMES, BPF_F_NO_PREALLOC);

/// Name filter, both slots: bit = top bits of a NAMES key's chain hash (blocker-common
/// name_filter.rs). A clear bit skips that NAMES lookup. Memory-mappable, like the coarse maps.
#[map]
pub static NAME_FILTER: Array<u64> = Array::with_max_entries(name_filter::MAP_WORDS, BPF_F_MMAPABLE);

/// Where a name is assembled and split into labels (one per CPU).
#[map]
pub static NAME_SCRATCH: PerCpuArray<NameScratch> = PerCpuArray::with_max_entries(1, 0);

/// TCP flows followed across segments: ClientHellos being read and flows already blocked.
/// LRU: under pressure the oldest entries go first. 32 768 × ~450 B ≈ 15 MiB.
#[map]
pub static FLOWS: LruHashMap<FlowKey, FlowState> = LruHashMap::with_max_entries(1 << 15, 0);

/// Count of FLOWS entries per flow-hash bucket, so flows without state skip the LRU lookup.
/// Memory-mappable so the controller can inspect and repair it.
#[map]
pub static FLOW_FILTER: Array<u32> = Array::with_max_entries(FILTER_BUCKETS, BPF_F_MMAPABLE);

/// One bit per FLOW_FILTER bucket, set while its count is not 0 (blocker-common flow.rs
/// `BIT_WORDS`): what a segment reads first. Memory-mappable so the controller can repair it.
#[map]
pub static FLOW_BITS: Array<u64> = Array::with_max_entries(BIT_WORDS, BPF_F_MMAPABLE);

/// Flows whose SYN was seen and whose first data byte was not yet, one slot per FLOW_FILTER
/// bucket (flow.rs, tcp_names.rs): data ahead of that byte is dropped until it has passed.
#[map]
pub static HEADS: Array<Head> = Array::with_max_entries(FILTER_BUCKETS, 0);

/// ClientHello readers parked at an extension header between segments, one slot per
/// FLOW_FILTER bucket (flow.rs `park`): the common wait, without a FLOWS entry.
#[map]
pub static WAITS: Array<Wait> = Array::with_max_entries(FILTER_BUCKETS, 0);

/// The name bytes of readers parked in WAITS inside the server name (flow.rs `NameWait`):
/// 4096 × 272 B ≈ 1.1 MiB.
#[map]
pub static NAME_WAITS: Array<NameWait> = Array::with_max_entries(NAME_WAIT_SLOTS, 0);

/// A reader for a ClientHello's first segment, before it earns a FLOWS entry (one per CPU).
#[map]
pub static TLS_SCRATCH: PerCpuArray<FlowState> = PerCpuArray::with_max_entries(1, 0);

/// How blocked DNS queries are answered.
#[map]
pub static DNS_CONFIG: Array<DnsConfig> = Array::with_max_entries(1, 0);

/// Packets blocked per list entry: (slot << 31 | entry id) → count. Only hit entries take memory.
#[map]
pub static ENTRY_HITS: HashMap<u32, u64> = HashMap::with_max_entries(1 << 20, BPF_F_NO_PREALLOC);

/// The IPv6 extension-header walk's position (one per CPU).
#[map]
pub static EXT_WALK: PerCpuArray<ExtWalk> = PerCpuArray::with_max_entries(1, 0);

/// The parsed description of the frame being judged (one per CPU).
#[map]
pub static PACKET: PerCpuArray<Packet> = PerCpuArray::with_max_entries(1, 0);

/// The HTTP 451 response blocked requests get (when FLAG_STOP_PAGE is set).
#[map]
pub static STOP_PAGE: Array<StopPageTemplate> = Array::with_max_entries(1, 0);

/// The stop-page response's host checksum while it is summed (one per CPU).
#[map]
pub static HOST_SUM: PerCpuArray<HostSum> = PerCpuArray::with_max_entries(1, 0);

/// What a reply (reset, SYN-ACK, stop page) is built from (one per CPU).
#[map]
pub static REPLY_SCRATCH: PerCpuArray<ReplyScratch> = PerCpuArray::with_max_entries(1, 0);

/// A frame's link-layer header while the frame grows at the head (resize.rs; one per CPU).
#[map]
pub static L2_SCRATCH: PerCpuArray<[u8; crate::resize::L2_MAX]> = PerCpuArray::with_max_entries(1, 0);

/// QUIC switches: on/off, the epoch of the live list set, the copy rate bound. Off (zeroed)
/// until a daemon that reads QUIC_RING turns it on.
#[map]
pub static QUIC_CONFIG: Array<QuicConfig> = Array::with_max_entries(1, 0);

/// QUIC verdicts per flow, written by the daemon once it has read the flow's server name:
/// pass (stop copying), block (drop), shadow (pass, counted). A verdict of another epoch than
/// QUIC_CONFIG's is ignored. LRU: the oldest flows go first under pressure (fail open).
#[map]
pub static QUIC_VERDICTS: LruHashMap<QuicFlow, QuicVerdict> = LruHashMap::with_max_entries(1 << 16, 0);

/// Copies of client Initial datagrams for the daemon to read (QuicCopy records). 4 MiB: about
/// 2 600 datagrams waiting; when full, Initials pass uncopied (`quic_overload`).
#[map]
pub static QUIC_RING: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// The per-CPU token bucket in front of QUIC_RING.
#[map]
pub static QUIC_BUCKET: PerCpuArray<TokenBucket> = PerCpuArray::with_max_entries(1, 0);
