//! How many entries the list maps hold. The kernel sizes its maps with these and the
//! controller refuses a list set that would not fit, before touching the maps. Each map holds
//! two generations (the live one and the one being built or kept for rollback), so one
//! generation may use half.

/// NAMES: one entry per distinct listed name (block, allow and shadow share it).
pub const NAMES: u32 = 1 << 22;
/// BLOCK_V4 and BLOCK_V6, each.
pub const BLOCK_PREFIXES: u32 = 1 << 22;
/// ALLOW_V4 and ALLOW_V6, each.
pub const ALLOW_PREFIXES: u32 = 1 << 18;

/// The most a generation may hold in a map of `capacity`.
pub const fn per_generation(capacity: u32) -> u32 {
    capacity / 2
}

/// FLOWS: TCP flows whose ClientHello or request head is being read, or that are blocked.
pub const FLOWS: u32 = 1 << 15;
