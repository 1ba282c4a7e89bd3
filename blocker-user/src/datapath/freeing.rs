//! Making the kernel give back the map elements an install replaced or deleted.
//!
//! The list maps' allocator (bpf_mem_alloc) frees an element through RCU Tasks Trace grace
//! periods, per CPU and in batches, and a batch that comes while a grace period is in flight
//! waits for the next free on that CPU. An install that replaces a million elements (into the
//! empty slot every element gains its half, and the kernel replaces an element it updates)
//! therefore leaves most of the old ones allocated, and charged, until later writes: measured
//! on 6.18, about 0.6 M of 1 M replaced trie nodes were still held a minute later.
//!
//! So after each install, once the first grace period has passed, a thread rewrites a few
//! elements of each large trie with the values they hold, on every CPU, twice, a second apart:
//! each rewrite is a free on that CPU, which sends the waiting batches on. Packets see the same
//! values before, during and after (a trie frees a replaced node only after a grace period).
//! NAMES is left alone: its replaced elements came back without help in the measurements, and
//! the hash map may reuse a replaced element at once (names.rs in the program copes, but there
//! is no need to add replacements). The next install stops the thread first (at once: it is
//! asleep between rounds; its own rewrites take over), so a rewrite never puts back a value an
//! install has changed since. (At once between rounds and between CPUs; a CPU's rewrites, a
//! few milliseconds, finish first.)

use std::{
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use super::{Datapath, batch::RawMap};

/// Elements rewritten per map, CPU and round.
pub(super) const ELEMENTS: usize = 1024;

impl Datapath {
    /// Waits until the elements the last install freed have been sent back to the kernel's
    /// allocator (a second or two after it; at once if they have): for measurements. A write
    /// into the list maps stops it instead (`stop_freeing`).
    pub fn finish_freeing(&mut self) {
        if let Some(f) = self.freeing.take() {
            let _ = f.thread.join();
        }
    }

    /// Stops the return of freed elements between two rounds and waits for it: before a write
    /// into the list maps.
    pub(super) fn stop_freeing(&mut self) {
        if let Some(f) = self.freeing.take() {
            f.stop.store(true, Ordering::Release);
            f.thread.thread().unpark();
            let _ = f.thread.join();
        }
    }

    /// Starts the thread that sends the freed elements back. `maps`: each list map worth
    /// nudging (the ones an install rewrites by the million), with keys of elements it holds
    /// (`ELEMENTS` are used). Best effort: nothing breaks if it cannot run, only the memory
    /// comes back later.
    pub(super) fn start_returning_freed_elements(&mut self, maps: Vec<(RawMap, Vec<u8>)>) {
        self.stop_freeing();
        let mut owned = Vec::new();
        for (m, keys) in maps {
            // SAFETY: the map's descriptor is open for the duration of this call (the Ebpf owns
            // it); the duplicate is owned by the thread below.
            let Ok(fd) = unsafe { BorrowedFd::borrow_raw(m.fd) }.try_clone_to_owned() else { return };
            let keys = keys[..keys.len().min(ELEMENTS * m.key_size)].to_vec();
            owned.push((fd, m.key_size, m.value_size, keys));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let spawned = thread::Builder::new().name("blocker-freeing".into()).spawn(move || {
            let maps: Vec<(RawMap, &[u8])> =
                owned.iter().map(|(fd, k, v, keys): &(OwnedFd, usize, usize, Vec<u8>)| (RawMap { fd: fd.as_raw_fd(), key_size: *k, value_size: *v }, keys.as_slice())).collect();
            // Every configured CPU (not only those this process may run on now); one it cannot
            // move to is passed over.
            // SAFETY: sysconf has no preconditions.
            let cpus = (unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }).clamp(1, libc::CPU_SETSIZE as libc::c_long) as usize;
            for _ in 0..2 {
                let wake = Instant::now() + Duration::from_secs(1);
                while !stopped.load(Ordering::Acquire) && Instant::now() < wake {
                    thread::park_timeout(wake.saturating_duration_since(Instant::now()));
                }
                if stopped.load(Ordering::Acquire) {
                    return;
                }
                // The values as they are: nothing writes the maps while this thread runs.
                let current: Vec<(Vec<u8>, Vec<u8>)> = maps.iter().map(|(m, keys)| present(m, keys)).collect();
                for cpu in 0..cpus {
                    if stopped.load(Ordering::Acquire) {
                        return;
                    }
                    thread::scope(|s| {
                        s.spawn(|| {
                            if !on_cpu(cpu) {
                                return;
                            }
                            for ((m, _), (keys, values)) in maps.iter().zip(&current) {
                                if !keys.is_empty() {
                                    let _ = m.update(keys, values);
                                }
                            }
                        });
                    });
                }
            }
            // The descriptors close here, after the last rewrite.
            drop(owned);
        });
        self.freeing = spawned.ok().map(|thread| Freeing { thread, stop });
    }
}

/// The thread returning freed elements, and its stop switch.
pub(super) struct Freeing {
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

/// The elements of `keys` (key_size bytes each) that `m` holds, with their values.
fn present(m: &RawMap, keys: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut k_out, mut v_out) = (Vec::new(), Vec::new());
    for k in keys.chunks_exact(m.key_size) {
        if let Ok(Some(v)) = m.get(k) {
            k_out.extend_from_slice(k);
            v_out.extend_from_slice(&v);
        }
    }
    (k_out, v_out)
}

/// Moves the calling thread to `cpu`; false if it cannot.
fn on_cpu(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t with one CPU set, applied to this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}
