//! A bpf filesystem of a test's own, for tests of pinning: `ip netns exec` gives the appliance
//! a fresh /sys without /sys/fs/bpf, and a private mount also keeps a test's pins apart from
//! the machine's. Unmounted on drop (also when an assertion fails), which releases every pin.

use std::{
    fs,
    path::PathBuf,
    process::Command,
};

use anyhow::{Result, bail};

pub struct PrivateBpffs {
    mount: PathBuf,
    /// The pin directory to give `blocker run --pin-dir` (inside the mount).
    pub dir: PathBuf,
}

impl PrivateBpffs {
    pub fn mount(tag: &str) -> Result<PrivateBpffs> {
        let mount = std::env::temp_dir().join(format!("blocker-test-{tag}-{}-bpffs", std::process::id()));
        fs::create_dir_all(&mount)?;
        let status = Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&mount).status()?;
        if !status.success() {
            bail!("mounting a bpf filesystem at {} failed ({status})", mount.display());
        }
        Ok(PrivateBpffs { dir: mount.join("blocker"), mount })
    }

    pub fn arg(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// The names pinned in the pin directory, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = fs::remove_dir(&self.mount);
    }
}
