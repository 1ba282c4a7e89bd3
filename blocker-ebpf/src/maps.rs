//! Every map the program uses, in one place. The controller (blocker-user/src/datapath) fills
//! them; ARCHITECTURE.md has the table of keys, values, capacities, writers and readers.

use aya_ebpf::{
    macros::map,
    maps::{Array, LpmTrie, PerCpuArray},
};
use blocker_common::{coarse, config::Config, counters::CounterTable, prefix::{Ipv6Addr, PrefixValue}};

/// Run-time switches (bypass, reset-or-drop, ...). One entry; read once per packet.
#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// Packets and bytes per (reason, action), per CPU; summed by the controller.
#[map]
pub static COUNTERS: PerCpuArray<CounterTable> = PerCpuArray::with_max_entries(1, 0);

/// Coarse IPv4 filter: bit = destination /24 (see blocker-common coarse.rs).
#[map]
pub static COARSE_V4: Array<u64> = Array::with_max_entries(coarse::WORDS, 0);

/// Coarse IPv6 filter: bit = hash of the destination /32.
#[map]
pub static COARSE_V6: Array<u64> = Array::with_max_entries(coarse::WORDS, 0);

/// Exact IPv4 block prefixes. Key data: the address in network byte order.
#[map]
pub static BLOCK_V4: LpmTrie<u32, PrefixValue> = LpmTrie::with_max_entries(1 << 22, 0);

/// Exact IPv6 block prefixes.
#[map]
pub static BLOCK_V6: LpmTrie<Ipv6Addr, PrefixValue> = LpmTrie::with_max_entries(1 << 22, 0);

/// IPv4 allow prefixes; consulted only after a block prefix matched, and win over it.
#[map]
pub static ALLOW_V4: LpmTrie<u32, PrefixValue> = LpmTrie::with_max_entries(1 << 16, 0);

/// IPv6 allow prefixes.
#[map]
pub static ALLOW_V6: LpmTrie<Ipv6Addr, PrefixValue> = LpmTrie::with_max_entries(1 << 16, 0);
