//! Atomic adds on map memory. The bpf target has no compare-and-swap, so core's atomic types
//! offer no read-modify-write; the add intrinsic lowers to the BPF atomic add instruction.

use core::intrinsics::{AtomicOrdering, atomic_and, atomic_or, atomic_xadd};

/// Adds `v` to the u64 at `p`.
///
/// # Safety
/// `p` must point at a live, 8-byte aligned u64 in map memory.
#[inline(always)]
pub unsafe fn add_u64(p: *mut u64, v: u64) {
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, v) };
}

/// Adds `v` (wrapping, so a negative delta works) to the u32 at `p`.
///
/// # Safety
/// `p` must point at a live, 4-byte aligned u32 in map memory.
#[inline(always)]
pub unsafe fn add_u32(p: *mut u32, v: u32) {
    unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(p, v) };
}

/// Sets the bits `m` of the u64 at `p`, fully ordered.
///
/// # Safety
/// `p` must point at a live, 8-byte aligned u64 in map memory.
#[inline(always)]
pub unsafe fn set_bits(p: *mut u64, m: u64) {
    unsafe { atomic_or::<u64, u64, { AtomicOrdering::SeqCst }>(p, m) };
}

/// Clears the bits `m` of the u64 at `p`, fully ordered.
///
/// # Safety
/// `p` must point at a live, 8-byte aligned u64 in map memory.
#[inline(always)]
pub unsafe fn clear_bits(p: *mut u64, m: u64) {
    unsafe { atomic_and::<u64, u64, { AtomicOrdering::SeqCst }>(p, !m) };
}
