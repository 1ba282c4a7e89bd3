//! Map operations by the batch: BPF_MAP_UPDATE_BATCH, BPF_MAP_DELETE_BATCH and
//! BPF_MAP_LOOKUP_BATCH through the bpf() system call (aya 0.14 has none of them), so that
//! thousands of keys cost one call instead of one each. Where the kernel has no batch operation
//! for a map type (hash maps have them since 5.6; LPM tries take them on 6.18, but not on older
//! kernels), the same work is done one element at a time, the way aya does it.

use std::{io, os::fd::RawFd};

/// Keys (and values) per batch call: large enough that the call costs nothing per element,
/// small enough that one call holds the map for a few milliseconds at most.
const BATCH: usize = 4 * 1024;
/// Calls in a row that may fail for want of memory before an update gives up (see `update`).
const MAX_STALLS: u32 = 12;

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
/// The kernel's internal "operation not supported" (not in libc).
const ENOTSUPP: i32 = 524;

/// `union bpf_attr` as the *_ELEM commands use it.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` as the *_BATCH commands use it.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<()> {
    // SAFETY: `attr` is a properly laid out prefix of `union bpf_attr` for `cmd`, and every
    // pointer in it points into buffers the caller keeps alive and sized for the map's keys and
    // values; the kernel copies the attribute in (and, for batches, `count` back out).
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>() as u32) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// An error that says the kernel has no such batch operation for this map type.
fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP))
}

/// Waits before writing again after ENOMEM: 1 ms, doubling with each failure in a row
/// (`progress`: the failed call wrote some elements first, which starts the count again).
fn stall(stalls: &mut u32, progress: bool) {
    *stalls = if progress { 1 } else { *stalls + 1 };
    std::thread::sleep(std::time::Duration::from_millis(1 << (*stalls - 1).min(11)));
}

/// A map by its descriptor, with its key and value sizes.
#[derive(Clone, Copy, Debug)]
pub(in crate::datapath) struct RawMap {
    pub(in crate::datapath) fd: RawFd,
    pub(in crate::datapath) key_size: usize,
    pub(in crate::datapath) value_size: usize,
}

impl RawMap {
    /// Inserts or replaces each key (`keys`: key_size bytes each) with its value (`values`:
    /// value_size bytes each, in the same order).
    ///
    /// Maps without preallocation take each new element from a per-CPU cache that the kernel
    /// refills behind the writer, without waiting for memory: a long run of inserts can find it
    /// empty (ENOMEM) although memory is there. Such a write is retried after a pause that
    /// grows (1 ms to 2 s, about 4 s in all), from the element that failed.
    pub(in crate::datapath) fn update(&self, keys: &[u8], values: &[u8]) -> io::Result<()> {
        let n = keys.len() / self.key_size;
        debug_assert_eq!((keys.len() % self.key_size, values.len()), (0, n * self.value_size));
        let (mut done, mut stalls) = (0, 0);
        while done < n {
            let count = (n - done).min(BATCH);
            let k = &keys[done * self.key_size..(done + count) * self.key_size];
            let v = &values[done * self.value_size..(done + count) * self.value_size];
            let mut attr = BatchAttr { keys: k.as_ptr() as u64, values: v.as_ptr() as u64, count: count as u32, map_fd: self.fd as u32, ..Default::default() };
            match bpf(BPF_MAP_UPDATE_BATCH, &mut attr) {
                Ok(()) => {
                    done += count;
                    stalls = 0;
                }
                Err(e) if done == 0 && attr.count == 0 && unsupported(&e) => return self.update_each(keys, values),
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && stalls < MAX_STALLS => {
                    done += attr.count as usize;
                    stall(&mut stalls, attr.count > 0);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn update_each(&self, keys: &[u8], values: &[u8]) -> io::Result<()> {
        let mut stalls = 0;
        for (k, v) in keys.chunks_exact(self.key_size).zip(values.chunks_exact(self.value_size)) {
            loop {
                let mut attr = ElemAttr { map_fd: self.fd as u32, key: k.as_ptr() as u64, value: v.as_ptr() as u64, ..Default::default() };
                match bpf(BPF_MAP_UPDATE_ELEM, &mut attr) {
                    Ok(()) => break,
                    Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && stalls < MAX_STALLS => stall(&mut stalls, false),
                    Err(e) => return Err(e),
                }
            }
            stalls = 0;
        }
        Ok(())
    }

    /// Deletes each key; keys the map does not hold are passed over. Returns how many were
    /// deleted.
    pub(in crate::datapath) fn delete(&self, keys: &[u8]) -> io::Result<usize> {
        let n = keys.len() / self.key_size;
        let (mut at, mut deleted) = (0, 0);
        while at < n {
            let count = (n - at).min(BATCH);
            let k = &keys[at * self.key_size..(at + count) * self.key_size];
            let mut attr = BatchAttr { keys: k.as_ptr() as u64, count: count as u32, map_fd: self.fd as u32, ..Default::default() };
            match bpf(BPF_MAP_DELETE_BATCH, &mut attr) {
                Ok(()) => {
                    at += count;
                    deleted += count;
                }
                // The batch stops at a key the map does not hold: skip it, go on after it.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    at += attr.count as usize + 1;
                    deleted += attr.count as usize;
                }
                Err(e) if at == 0 && attr.count == 0 && unsupported(&e) => return self.delete_each(keys),
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    fn delete_each(&self, keys: &[u8]) -> io::Result<usize> {
        let mut deleted = 0;
        for k in keys.chunks_exact(self.key_size) {
            let mut attr = ElemAttr { map_fd: self.fd as u32, key: k.as_ptr() as u64, ..Default::default() };
            match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
                Ok(()) => deleted += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Every key of the map for which `keep` holds, concatenated (key_size bytes each).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(in crate::datapath) fn keys_where(&self, keep: impl Fn(&[u8]) -> bool) -> io::Result<Vec<u8>> {
        Ok(self.elements_where(keep)?.0)
    }

    /// Every element of the map whose key `keep` holds for: the keys and the values, each
    /// concatenated in the same order.
    pub(in crate::datapath) fn elements_where(&self, keep: impl Fn(&[u8]) -> bool) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let (mut out, mut out_values) = (Vec::new(), Vec::new());
        let mut count = 4096usize;
        let mut keys = vec![0u8; count * self.key_size];
        let mut values = vec![0u8; count * self.value_size];
        // The position token: a bucket index for hash maps, a key for others.
        let token_size = self.key_size.max(8);
        let (mut token_in, mut token_out) = (vec![0u8; token_size], vec![0u8; token_size]);
        let mut first = true;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first { 0 } else { token_in.as_ptr() as u64 },
                out_batch: token_out.as_mut_ptr() as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: count as u32,
                map_fd: self.fd as u32,
                ..Default::default()
            };
            let end = match bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) {
                Ok(()) => false,
                // ENOENT: what this call returned is the last of the map.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
                // A hash bucket holds more elements than fit: ask again with more room.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && count < 1 << 20 => {
                    count *= 4;
                    keys.resize(count * self.key_size, 0);
                    values.resize(count * self.value_size, 0);
                    continue;
                }
                Err(e) if first && unsupported(&e) => return self.elements_each(keep),
                Err(e) => return Err(e),
            };
            let got = attr.count as usize;
            let rows = keys[..got * self.key_size].chunks_exact(self.key_size).zip(values[..got * self.value_size].chunks_exact(self.value_size));
            for (k, v) in rows.filter(|(k, _)| keep(k)) {
                out.extend_from_slice(k);
                out_values.extend_from_slice(v);
            }
            if end {
                return Ok((out, out_values));
            }
            std::mem::swap(&mut token_in, &mut token_out);
            first = false;
        }
    }

    /// `elements_where` a key at a time, for maps without batch lookups (LPM tries); an
    /// element deleted between finding its key and reading it is left out.
    fn elements_each(&self, keep: impl Fn(&[u8]) -> bool) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let (mut out, mut out_values) = (Vec::new(), Vec::new());
        let mut key = vec![0u8; self.key_size];
        let mut next = vec![0u8; self.key_size];
        let mut first = true;
        loop {
            let mut attr = ElemAttr {
                map_fd: self.fd as u32,
                key: if first { 0 } else { key.as_ptr() as u64 },
                value: next.as_mut_ptr() as u64,
                ..Default::default()
            };
            match bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((out, out_values)),
                Err(e) => return Err(e),
            }
            if keep(&next)
                && let Some(v) = self.get(&next)?
            {
                out.extend_from_slice(&next);
                out_values.extend_from_slice(&v);
            }
            std::mem::swap(&mut key, &mut next);
            first = false;
        }
    }

    /// The value of one key, if the map holds it.
    pub(in crate::datapath) fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let mut value = vec![0u8; self.value_size];
        let mut attr = ElemAttr { map_fd: self.fd as u32, key: key.as_ptr() as u64, value: value.as_mut_ptr() as u64, ..Default::default() };
        match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
            Ok(()) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{FromRawFd, OwnedFd};

    use super::*;

    /// A map of its own, or None where this process may not create one (not root).
    fn map(map_type: u32, key_size: u32, value_size: u32, max: u32) -> Option<(OwnedFd, RawMap)> {
        #[repr(C)]
        #[derive(Default)]
        struct CreateAttr {
            map_type: u32,
            key_size: u32,
            value_size: u32,
            max_entries: u32,
            map_flags: u32,
        }
        // BPF_F_NO_PREALLOC, which LPM tries require.
        let mut attr = CreateAttr { map_type, key_size, value_size, max_entries: max, map_flags: 1 };
        // SAFETY: BPF_MAP_CREATE with a valid prefix of bpf_attr; the result is a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_bpf, 0 as libc::c_long, &mut attr as *mut CreateAttr, std::mem::size_of::<CreateAttr>() as u32) };
        if fd < 0 {
            eprintln!("skipped: cannot create a BPF map here ({})", io::Error::last_os_error());
            return None;
        }
        // SAFETY: the kernel just returned this descriptor to us alone.
        let owned = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        Some((owned, RawMap { fd: fd as RawFd, key_size: key_size as usize, value_size: value_size as usize }))
    }

    fn run_on(m: RawMap, key: impl Fn(u32) -> Vec<u8>) {
        let n = 40_000u32;
        let keys: Vec<u8> = (0..n).flat_map(&key).collect();
        let values: Vec<u8> = (0..n).flat_map(|i| i.to_ne_bytes().repeat(m.value_size / 4)).collect();
        m.update(&keys, &values).unwrap();
        assert_eq!(m.get(&key(7)).unwrap().unwrap()[..4], 7u32.to_ne_bytes());
        let even = m.keys_where(|k| k[k.len() - 1] % 2 == 0).unwrap();
        assert_eq!(even.len() / m.key_size, n as usize / 2);
        // Deleting keys of which some are gone already: those are passed over.
        let mut del: Vec<u8> = even.clone();
        del.extend(key(n + 5));
        del.extend(key(1));
        assert_eq!(m.delete(&del).unwrap(), n as usize / 2 + 1);
        assert_eq!(m.keys_where(|_| true).unwrap().len() / m.key_size, n as usize / 2 - 1);
        assert!(m.get(&key(2)).unwrap().is_none() && m.get(&key(3)).unwrap().is_some());
        // Whole elements, by batch and one at a time alike, each key with its own value.
        let (mut batch, mut each) = (m.elements_where(|_| true).unwrap(), m.elements_each(|_| true).unwrap());
        let sorted = |(k, v): &mut (Vec<u8>, Vec<u8>)| {
            let mut rows: Vec<(&[u8], &[u8])> = k.chunks_exact(m.key_size).zip(v.chunks_exact(m.value_size)).collect();
            rows.sort();
            rows.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect::<Vec<_>>()
        };
        let (batch, each) = (sorted(&mut batch), sorted(&mut each));
        assert_eq!(batch, each);
        assert_eq!(batch.len(), n as usize / 2 - 1);
        assert!(batch.iter().all(|(k, v)| m.get(k).unwrap().as_ref() == Some(v)));
    }

    #[test]
    fn batches_and_their_fallbacks_agree_on_a_hash_map() {
        let Some((_fd, m)) = map(1, 16, 24, 100_000) else { return };
        run_on(m, |i| [u64::from(i).to_ne_bytes(), [0, 0, 0, 0, 0, 0, 0, (i % 2) as u8]].concat());
    }

    #[test]
    fn batches_and_their_fallbacks_agree_on_an_lpm_trie() {
        let Some((_fd, m)) = map(11, 9, 8, 100_000) else { return };
        run_on(m, |i| [40u32.to_ne_bytes().as_slice(), &[1], &i.to_be_bytes()].concat());
    }
}
