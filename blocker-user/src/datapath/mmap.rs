//! A memory mapping of a BPF array map created with BPF_F_MMAPABLE: userspace reads and writes
//! the kernel's array memory directly.

use std::{
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
};

use super::DatapathError;

pub(super) struct MappedArray {
    ptr: NonNull<u64>,
    words: usize,
    bytes: usize,
}

impl MappedArray {
    pub(super) fn new(map: &aya::maps::MapData, name: &'static str, words: usize) -> Result<Self, DatapathError> {
        let page = 4096usize;
        let bytes = (words * 8).div_ceil(page) * page;
        let fd = map.fd().as_fd().as_raw_fd();
        // SAFETY: mapping a BPF array fd, as the kernel documents for BPF_F_MMAPABLE maps;
        // the length covers exactly the value area rounded to a page.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if ptr == libc::MAP_FAILED {
            return Err(DatapathError::Io { name, what: "mmap", source: std::io::Error::last_os_error() });
        }
        let ptr = NonNull::new(ptr as *mut u64).expect("mmap returned null without MAP_FAILED");
        Ok(MappedArray { ptr, words, bytes })
    }

    pub(super) fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: the mapping is at least words*8 bytes, page aligned, and lives as long as self.
        // The kernel reads it concurrently; word stores are atomic on 64-bit targets.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.words) }
    }
}

impl MappedArray {
    /// The u32 value of slot `i` (the first 4 bytes of its 8-byte slot) for atomic updates
    /// beside the program's own (`lock add` on x86-64): plain stores would lose its changes.
    pub(super) fn atomic_u32(&self, i: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(i < self.words, "slot {i} of {}", self.words);
        // SAFETY: slot i lies inside the mapping, 8-aligned; AtomicU32 has the size and
        // alignment of u32; the mapping lives as long as the returned reference.
        unsafe { &*(self.ptr.as_ptr().add(i) as *const std::sync::atomic::AtomicU32) }
    }

    /// Word `i` for atomic updates beside the program's own.
    pub(super) fn atomic_u64(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(i < self.words, "word {i} of {}", self.words);
        // SAFETY: word i lies inside the mapping, 8-aligned; AtomicU64 has the size and
        // alignment of u64; the mapping lives as long as the returned reference.
        unsafe { &*(self.ptr.as_ptr().add(i) as *const std::sync::atomic::AtomicU64) }
    }
}

impl Drop for MappedArray {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what new() mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}
