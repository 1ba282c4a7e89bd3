//! Data-dependent loops through the `bpf_loop` helper. The verifier checks a callback once,
//! whatever the iteration count, where an open-coded loop over packet bytes would be explored
//! path by path. Every callback returns `CONTINUE` or `BREAK`.

use aya_ebpf::helpers::generated::bpf_loop;

pub const CONTINUE: i64 = 0;
pub const BREAK: i64 = 1;

/// The callback signature bpf_loop expects. Callbacks are `unsafe` only because they carry the
/// target feature that allows misaligned loads (see main.rs).
pub type Callback<T> = extern "C" fn(index: u64, ctx: *mut T) -> i64;

/// Calls `cb(i, ctx)` for i in 0..n until it returns BREAK.
#[inline(always)]
pub fn repeat<T>(n: u32, cb: Callback<T>, ctx: &mut T) {
    // SAFETY: cb is a static function with the signature bpf_loop calls; ctx outlives the call.
    unsafe {
        bpf_loop(n, cb as *mut core::ffi::c_void, ctx as *mut T as *mut core::ffi::c_void, 0);
    }
}
