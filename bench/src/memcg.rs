//! The kernel memory one process is charged for, from a memory cgroup of its own: a bpf map's
//! memory (its arrays, and every element as it is allocated) is charged to the cgroup of the
//! process that created the map, object by object, and uncharged when freed. Unlike the
//! system-wide slab counts this sees neither other processes' work nor objects the slab
//! allocator keeps in partly free slabs.
//!
//! cgroup v1 (`memory.kmem.usage_in_bytes`) and v2 (`memory.stat` `kernel`). Where neither
//! can be made (no memory controller, no permission), `MemCg::enter` gives None and the caller
//! falls back to the slab counts.

use std::{fs, path::PathBuf};

pub struct MemCg {
    dir: PathBuf,
    parent: PathBuf,
    v2: bool,
}

impl MemCg {
    /// Makes a child of this process's memory cgroup and moves the process into it. Memory
    /// charged before stays where it was; what the process allocates from now on is counted here.
    pub fn enter() -> Option<MemCg> {
        let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
        let pid = std::process::id();
        let (parent, v2) = if let Some(path) = cgroups.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string())) {
            (PathBuf::from(format!("/sys/fs/cgroup/memory{path}")), false)
        } else {
            let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
            let parent = PathBuf::from(format!("/sys/fs/cgroup{path}"));
            // v2 needs the memory controller enabled for the children of the parent.
            let controllers = fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
            if !controllers.split_whitespace().any(|c| c == "memory") {
                return None;
            }
            (parent, true)
        };
        let dir = parent.join(format!("blocker-bench-{pid}"));
        fs::create_dir(&dir).ok()?;
        let cg = MemCg { dir, parent, v2 };
        if fs::write(cg.dir.join("cgroup.procs"), pid.to_string()).is_err() {
            let _ = fs::remove_dir(&cg.dir);
            return None;
        }
        cg.kernel_bytes().map(|_| cg)
    }

    /// Kernel memory charged to the cgroup now, bytes.
    pub fn kernel_bytes(&self) -> Option<u64> {
        if self.v2 {
            let stat = fs::read_to_string(self.dir.join("memory.stat")).ok()?;
            stat.lines().find_map(|l| l.strip_prefix("kernel ")).and_then(|v| v.trim().parse().ok())
        } else {
            fs::read_to_string(self.dir.join("memory.kmem.usage_in_bytes")).ok()?.trim().parse().ok()
        }
    }
}

impl Drop for MemCg {
    /// Back to the parent cgroup, and the child removed (what is still charged to it moves to
    /// the parent).
    fn drop(&mut self) {
        let _ = fs::write(self.parent.join("cgroup.procs"), std::process::id().to_string());
        let _ = fs::remove_dir(&self.dir);
    }
}
