//! Every map the program uses, in one place. The controller (blocker-user/src/datapath) fills
//! them; ARCHITECTURE.md has the table of keys, values, capacities, writers and readers.
//!
//! List maps hold two generations (slot 0 and 1); `Config::slot` says which one is live.

use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, LpmTrie, PerCpuArray},
};
use blocker_common::{
    coarse,
    config::Config,
    counters::CounterTable,
    prefix::{PrefixValue, V4KeyData, V6KeyData},
};

/// Run-time switches (bypass, reset-or-drop, live slot). One entry; read once per packet.
#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

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

/// Exact IPv4 block prefixes of both slots. Key: slot byte + address (network order).
#[map]
pub static BLOCK_V4: LpmTrie<V4KeyData, PrefixValue> = LpmTrie::with_max_entries(1 << 22, 0);

/// Exact IPv6 block prefixes of both slots.
#[map]
pub static BLOCK_V6: LpmTrie<V6KeyData, PrefixValue> = LpmTrie::with_max_entries(1 << 22, 0);

/// IPv4 allow prefixes; consulted only after a block prefix matched, and win over it.
#[map]
pub static ALLOW_V4: LpmTrie<V4KeyData, PrefixValue> = LpmTrie::with_max_entries(1 << 18, 0);

/// IPv6 allow prefixes.
#[map]
pub static ALLOW_V6: LpmTrie<V6KeyData, PrefixValue> = LpmTrie::with_max_entries(1 << 18, 0);
