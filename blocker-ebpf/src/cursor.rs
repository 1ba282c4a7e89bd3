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
    ptr_at::<T>(ctx, off).map(|p| unsafe { p.read_unaligned() })
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
    fn get<T: Copy + Default>(&self, i: usize) -> T {
        if i + core::mem::size_of::<T>() > N {
            return T::default();
        }
        // SAFETY: [p, p + N) was checked to lie inside the frame, and so does [p + i, p + i + size).
        unsafe { (self.p.add(i) as *const T).read_unaligned() }
    }

    #[inline(always)]
    pub fn u8(&self, i: usize) -> u8 {
        self.get::<u8>(i)
    }

    #[inline(always)]
    pub fn be16(&self, i: usize) -> u16 {
        u16::from_be(self.get::<u16>(i))
    }

    #[inline(always)]
    pub fn be32(&self, i: usize) -> u32 {
        u32::from_be(self.get::<u32>(i))
    }

    #[inline(always)]
    pub fn bytes16(&self, i: usize) -> [u8; 16] {
        self.get::<[u8; 16]>(i)
    }
}
