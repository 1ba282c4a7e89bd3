//! The one place that turns a packet offset into a pointer. Every read and write of packet
//! bytes goes through these helpers, which check the access against `data_end` in the form the
//! verifier understands.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;

/// Upper bound on any header offset we compute. Masking offsets with it keeps them provably
/// bounded for the verifier; real offsets are far below it.
pub const MAX_OFF: usize = 0x3fff;

#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = data_end(ctx);
    let off = off & MAX_OFF;
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

#[inline(always)]
pub fn ptr_at_mut<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    ptr_at::<T>(ctx, off).map(|p| p as *mut T)
}

/// `data_end`, loaded afresh at every check. A volatile load keeps LLVM from hoisting
/// `data_end - size` out of a loop: the verifier refuses arithmetic on the end pointer.
#[inline(always)]
fn data_end(ctx: &XdpContext) -> usize {
    // SAFETY: ctx.ctx points at the kernel's xdp_md for the whole program run.
    unsafe { core::ptr::read_volatile(&(*ctx.ctx).data_end) as usize }
}

/// Reads a value at `off` (unaligned), or None if it would run past the frame.
#[inline(always)]
pub fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    // SAFETY: ptr_at checked that size_of::<T>() bytes at off lie inside the frame.
    ptr_at::<T>(ctx, off).map(|p| unsafe { load::<T>(p as *const u8) })
}

/// A value of 2, 4, 8 or 16 bytes in as few loads (others byte by byte, as the target does).
///
/// SAFETY: `size_of::<T>()` bytes at the packet pointer `p` were bounds-checked.
#[inline(always)]
unsafe fn load<T: Copy>(p: *const u8) -> T {
    unsafe {
        match size_of::<T>() {
            2 => core::mem::transmute_copy(&load16(p)),
            4 => core::mem::transmute_copy(&load32(p)),
            8 => core::mem::transmute_copy(&load64(p)),
            16 => core::mem::transmute_copy(&[load64(p), load64(p.add(8))]),
            _ => (p as *const T).read_unaligned(),
        }
    }
}

/// Reads two adjacent bytes. Header bytes are read in pairs: LLVM turns the bounds check
/// `p + 1 > end` of a one-byte read into `p >= end`, which the verifier cannot use to prove an
/// access at offset 0.
#[inline(always)]
pub fn read_pair(ctx: &XdpContext, off: usize) -> Option<(u8, u8)> {
    read::<[u8; 2]>(ctx, off).map(|[a, b]| (a, b))
}

/// Reads one byte: as the first of a pair when the frame goes on, else (the frame's last byte)
/// through the bpf_xdp_load_bytes helper, which checks bounds itself.
#[inline(always)]
pub fn read_u8(ctx: &XdpContext, off: usize) -> Option<u8> {
    if let Some((a, _)) = read_pair(ctx, off) {
        return Some(a);
    }
    let mut b = 0u8;
    // SAFETY: the helper copies one byte into a stack variable of one byte.
    let r = unsafe {
        aya_ebpf::helpers::generated::bpf_xdp_load_bytes(ctx.ctx, (off & MAX_OFF) as u32, (&mut b as *mut u8).cast(), 1)
    };
    if r == 0 { Some(b) } else { None }
}

#[inline(always)]
pub fn read_be16(ctx: &XdpContext, off: usize) -> Option<u16> {
    read::<[u8; 2]>(ctx, off).map(u16::from_be_bytes)
}

/// Writes a value at `off` (unaligned); false if it would run past the frame.
#[inline(always)]
pub fn write<T>(ctx: &XdpContext, off: usize, v: T) -> bool {
    match ptr_at_mut::<T>(ctx, off) {
        // SAFETY: bounds checked by ptr_at_mut.
        Some(p) => {
            unsafe { p.write_unaligned(v) };
            true
        }
        None => false,
    }
}

/// Writes 2 or 4 bytes at `off` as one store, the value's bytes in memory order (what a load
/// of the same width read); false if it would run past the frame. `write` of an unaligned
/// value is split into byte stores by the bpf target.
#[inline(always)]
pub fn store16(ctx: &XdpContext, off: usize, v: u16) -> bool {
    let Some(p) = ptr_at_mut::<u16>(ctx, off) else { return false };
    // SAFETY: 2 bytes at p were bounds-checked by ptr_at_mut; packet memory (see load16).
    unsafe { core::arch::asm!("*(u16 *)({p} + 0) = {v}", p = in(reg) p, v = in(reg) v as u64, options(nostack)) };
    true
}

#[inline(always)]
pub fn store32(ctx: &XdpContext, off: usize, v: u32) -> bool {
    let Some(p) = ptr_at_mut::<u32>(ctx, off) else { return false };
    // SAFETY: 4 bytes at p were bounds-checked by ptr_at_mut; packet memory (see load16).
    unsafe { core::arch::asm!("*(u32 *)({p} + 0) = {v}", p = in(reg) p, v = in(reg) v as u64, options(nostack)) };
    true
}

/// Length of the frame in bytes.
#[inline(always)]
pub fn frame_len(ctx: &XdpContext) -> u64 {
    (ctx.data_end() - ctx.data()) as u64
}

/// A fixed-size header whose bounds were checked once against `data_end`: reads inside it need
/// no further check. Offsets past `N` read as zero (with literal offsets the test folds away).
#[derive(Clone, Copy)]
pub struct Span<const N: usize> {
    p: *const u8,
}

#[inline(always)]
pub fn span<const N: usize>(ctx: &XdpContext, off: usize) -> Option<Span<N>> {
    ptr_at::<[u8; N]>(ctx, off).map(|p| Span { p: p as *const u8 })
}

impl<const N: usize> Span<N> {
    #[inline(always)]
    pub fn u8(&self, i: usize) -> u8 {
        if i >= N {
            return 0;
        }
        // SAFETY: [p, p + N) was checked to lie inside the frame, and i < N.
        unsafe { *self.p.add(i) }
    }

    /// One 2-byte load (the bpf target would otherwise split an unaligned load into bytes).
    #[inline(always)]
    pub fn be16(&self, i: usize) -> u16 {
        if i + 2 > N {
            return 0;
        }
        // SAFETY: [p + i, p + i + 2) lies inside the checked span.
        u16::from_be(unsafe { load16(self.p.add(i)) })
    }

    /// One 4-byte load.
    #[inline(always)]
    pub fn be32(&self, i: usize) -> u32 {
        if i + 4 > N {
            return 0;
        }
        // SAFETY: [p + i, p + i + 4) lies inside the checked span.
        u32::from_be(unsafe { load32(self.p.add(i)) })
    }

    /// Four bytes as one load, in memory order (an IPv4 address as the kernel's helpers take it).
    #[inline(always)]
    pub fn raw32(&self, i: usize) -> u32 {
        if i + 4 > N {
            return 0;
        }
        // SAFETY: [p + i, p + i + 4) lies inside the checked span.
        unsafe { load32(self.p.add(i)) }
    }

    /// Sixteen bytes in memory order as two 8-byte loads.
    #[inline(always)]
    pub fn raw128(&self, i: usize) -> [u64; 2] {
        if i + 16 > N {
            return [0; 2];
        }
        // SAFETY: [p + i, p + i + 16) lies inside the checked span.
        unsafe { [load64(self.p.add(i)), load64(self.p.add(i + 8))] }
    }

    /// Sixteen bytes (an IPv6 address) as two 8-byte loads.
    #[inline(always)]
    pub fn bytes16(&self, i: usize) -> [u8; 16] {
        if i + 16 > N {
            return [0; 16];
        }
        // SAFETY: [p + i, p + i + 16) lies inside the checked span.
        let (a, b) = unsafe { (load64(self.p.add(i)), load64(self.p.add(i + 8))) };
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a.to_ne_bytes());
        out[8..].copy_from_slice(&b.to_ne_bytes());
        out
    }
}

// Packet loads of 2, 4 and 8 bytes at any alignment, as single instructions. The bpf target
// assumes strict alignment and splits an unaligned load into byte loads; the kernel allows
// unaligned packet access on the architectures we run on (x86-64, arm64: the verifier checks
// packet alignment only with BPF_F_STRICT_ALIGNMENT or without efficient unaligned access).
// Inline assembly keeps this to packet memory: the target feature that would do it everywhere
// also produces misaligned stack accesses, which the verifier refuses (see ARCHITECTURE.md).

/// SAFETY (all three): `p` is a packet pointer whose bytes were bounds-checked against
/// `data_end` by the caller.
#[inline(always)]
unsafe fn load16(p: *const u8) -> u16 {
    let v: u64;
    unsafe { core::arch::asm!("{v} = *(u16 *)({p} + 0)", v = out(reg) v, p = in(reg) p, options(pure, readonly, nostack)) };
    v as u16
}

#[inline(always)]
unsafe fn load32(p: *const u8) -> u32 {
    let v: u64;
    unsafe { core::arch::asm!("{v} = *(u32 *)({p} + 0)", v = out(reg) v, p = in(reg) p, options(pure, readonly, nostack)) };
    v as u32
}

/// Also for map memory (names.rs), where the verifier allows misaligned loads as well.
#[inline(always)]
pub unsafe fn load64(p: *const u8) -> u64 {
    let v: u64;
    unsafe { core::arch::asm!("{v} = *(u64 *)({p} + 0)", v = out(reg) v, p = in(reg) p, options(pure, readonly, nostack)) };
    v
}

/// Copies `len` packet bytes at `off` into memory at `dst` (map or ring-buffer memory of at
/// least `len` bytes; the caller bounds `len` so the verifier can check that) through the
/// bpf_xdp_load_bytes helper, which checks the packet bounds itself, fragments included.
/// False if the frame ends first.
#[inline(always)]
pub fn load_bytes(ctx: &XdpContext, off: usize, dst: *mut u8, len: u32) -> bool {
    // SAFETY: the helper writes at most `len` bytes to `dst`, which the caller sized.
    let r = unsafe { aya_ebpf::helpers::generated::bpf_xdp_load_bytes(ctx.ctx, (off & MAX_OFF) as u32, dst.cast(), len) };
    r == 0
}

/// `v` through a register move LLVM cannot see through, so that a mask or test that follows
/// stays on the register the verifier checks: LLVM would otherwise drop a mask it can prove
/// redundant, or move a test onto an earlier form of the value (before a byte swap or a
/// subtraction, or another copy of it), where the verifier cannot use it.
#[inline(always)]
pub fn opaque(v: usize) -> usize {
    let k: u64;
    // SAFETY: a register move.
    unsafe { core::arch::asm!("{k} = {v}", k = lateout(reg) k, v = in(reg) v as u64, options(pure, nomem, nostack)) };
    k as usize
}
