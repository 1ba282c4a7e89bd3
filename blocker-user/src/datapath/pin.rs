//! Keeping the data plane alive without its controller: the maps that hold lists, switches and
//! counters are pinned in bpffs, and so is the XDP link. When the daemon exits or crashes, the
//! program stays attached and blocks with the last generation; a new daemon adopts the pinned
//! maps and replaces the program on the pinned link in one atomic step (`bpf_link_update`), so
//! not a packet passes unjudged.
//!
//! Layout under the pin directory (default /sys/fs/bpf/blocker):
//! ```text
//! maps-<object fingerprint>/CONFIG, NAMES, ...   one directory per program build
//! link-<iface>-<native|generic>                   the XDP link of each attached interface
//! ```
//! In inline mode both ports have a link: the subscriber port's runs `blocker`, the internet
//! port's `blocker_wire`; both use the same maps (`PORTS` names the two ports).
//! Maps are keyed by the object's fingerprint because aya reuses a pinned map by name without
//! checking its layout: a new build with a different map layout gets fresh maps (filled from
//! the state directory before the switch), and the old build's maps are unpinned once the
//! link no longer runs the old program.

use std::{
    ffi::CString,
    fs, io,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use aya::{
    EbpfLoader,
    programs::{
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use sha2::{Digest, Sha256};

use super::{AttachMode, Attachment, Datapath, DatapathError, PROGRAM, WIRE_PROGRAM, object};

/// Where pins live unless configured.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/blocker";

/// Maps that carry state across a restart. Per-CPU scratch maps are not among them (each
/// program instance may use its own), except `PACKET`, below.
///
/// `TCP_JUDGE` must outlive the daemon: the kernel empties a program array once no process
/// holds it and no pin, and `blocker` would then pass every segment its TCP program should
/// read. Pinned, it is adopted like the others, and loading puts the new `blocker_tcp` into it
/// while the old `blocker` still runs on the link; that one then hands segments to the new
/// program through `PACKET`, so `PACKET` is shared too (same build, same layout).
pub const PINNED_MAPS: &[&str] = &[
    "CONFIG", "COUNTERS", "COARSE_V4", "COARSE_V6", "BLOCK_V4", "BLOCK_V6", "ALLOW_V4", "ALLOW_V6", "HASH_KEYS", "NAMES", "NAME_FILTER",
    "FLOWS", "FLOW_FILTER", "FLOW_BITS", "HEADS", "WAITS", "NAME_WAITS", "DNS_CONFIG", "ENTRY_HITS", "STOP_PAGE", "PORTS", "QUIC_CONFIG", "QUIC_VERDICTS",
    "QUIC_RING", "FORWARD_PORTS", "PORT_MAC", "FORWARD_COUNTS", "ROUTE_GEN", "TCP_JUDGE", "PACKET",
];

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The fingerprint of the embedded object: which maps directory this build uses.
pub fn fingerprint() -> String {
    let d = Sha256::digest(object::bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn io_err(what: &'static str, path: &Path, e: io::Error) -> DatapathError {
    DatapathError::Pin { what, path: path.to_path_buf(), source: e }
}

/// Checks `root` is (inside) a mounted bpffs and creates it.
fn prepare(root: &Path) -> Result<(), DatapathError> {
    fs::create_dir_all(root).map_err(|e| io_err("creating the pin directory", root, e))?;
    let c = CString::new(root.as_os_str().as_encoded_bytes()).map_err(|e| io_err("pin directory", root, io::Error::other(e)))?;
    // SAFETY: statfs fills the struct it is given; the path is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io_err("statfs", root, io::Error::last_os_error()));
    }
    if st.f_type as i64 != BPF_FS_MAGIC {
        return Err(io_err(
            "the pin directory is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)",
            root,
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    }
    Ok(())
}

/// What loading found in the pin directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Adoption {
    /// Nothing pinned for this build: fresh maps, now pinned.
    Fresh,
    /// The maps of a running (or crashed) daemon of this build: lists, counters and switches
    /// carry on.
    Adopted,
}

impl Datapath {
    /// Loads the program with its state maps pinned under `root`, adopting those of this
    /// build if present.
    pub(super) fn load_pinned_object(root: &Path) -> Result<(aya::Ebpf, Adoption), DatapathError> {
        prepare(root)?;
        let maps = root.join(format!("maps-{}", fingerprint()));
        fs::create_dir_all(&maps).map_err(|e| io_err("creating the maps directory", &maps, e))?;
        let adopted = maps.join("CONFIG").exists();
        let paths: Vec<(&str, PathBuf)> = PINNED_MAPS.iter().map(|n| (*n, maps.join(n))).collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let ebpf = object::load_with(&mut loader)?;
        Ok((ebpf, if adopted { Adoption::Adopted } else { Adoption::Fresh }))
    }

    /// Attaches through a pinned link: if `root` holds a live link for `iface`, the program
    /// replaces the one it runs, atomically; otherwise a new link is created and pinned.
    pub fn attach_pinned(&mut self, iface: &str, force_generic: bool) -> Result<(Attachment, bool), DatapathError> {
        self.attach_pinned_program(PROGRAM, iface, force_generic)
    }

    /// Inline mode: `attach_wire` through a pinned link of the internet port, like
    /// `attach_pinned`.
    pub fn attach_wire_pinned(&mut self, iface: &str, force_generic: bool) -> Result<(Attachment, bool), DatapathError> {
        self.load_wire()?;
        self.attach_pinned_program(WIRE_PROGRAM, iface, force_generic)
    }

    fn attach_pinned_program(&mut self, name: &'static str, iface: &str, force_generic: bool) -> Result<(Attachment, bool), DatapathError> {
        let root = self.pin_root.clone().ok_or(DatapathError::NotPinned)?;
        let ifindex = ifindex(iface)?;
        for mode in [AttachMode::Native, AttachMode::Generic] {
            let path = link_path(&root, iface, mode);
            if !path.exists() {
                continue;
            }
            match self.replace_on_link(name, &path, ifindex) {
                Ok(()) => {
                    self.remove_other_builds(&root);
                    return Ok((Attachment { iface: iface.to_string(), mode, native_error: None }, true));
                }
                Err(e) => {
                    // A link of an interface since deleted is defunct: remove its pin.
                    log::warn!("{}: stale pinned link ({e}); attaching anew", path.display());
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let att = self.attach_program(name, iface, force_generic)?;
        let id = self.last_link.take().ok_or(DatapathError::NotPinned)?;
        let prog = self.program_mut(name)?;
        let link: XdpLink = prog.take_link(id).map_err(|source| DatapathError::Program { name, source })?;
        let fd: FdLink = link.try_into().map_err(|e: aya::programs::links::LinkError| DatapathError::Pin {
            what: "the kernel attached without a bpf_link (too old for pinning)",
            path: root.clone(),
            source: io::Error::other(e),
        })?;
        let path = link_path(&root, iface, att.mode);
        let pinned = fd.pin(&path).map_err(|e| io_err("pinning the link", &path, io::Error::other(e)))?;
        self.links.push((path, pinned.into()));
        self.remove_other_builds(&root);
        Ok((att, false))
    }

    fn replace_on_link(&mut self, name: &'static str, path: &Path, ifindex: u32) -> Result<(), String> {
        match pinned_link_ifindex(path) {
            Some(i) if i == ifindex => {}
            Some(i) => return Err(format!("it is attached to ifindex {i}, not {ifindex}")),
            None => return Err("it is attached to no interface".into()),
        }
        let pinned = PinnedLink::from_pin(path).map_err(|e| e.to_string())?;
        let fd: FdLink = pinned.into();
        let link = XdpLink::try_from(fd).map_err(|e| e.to_string())?;
        let prog = self.program_mut(name).map_err(|e| e.to_string())?;
        let id = prog.attach_to_link(link).map_err(|e| e.to_string())?;
        let link = prog.take_link(id).map_err(|e| e.to_string())?;
        let fd: FdLink = link.try_into().map_err(|e: aya::programs::links::LinkError| e.to_string())?;
        self.links.push((path.to_path_buf(), fd));
        Ok(())
    }

    /// Pins again what was unpinned under a running daemon (someone removed the pin directory):
    /// without the pins, blocking would end with the daemon. Returns what was pinned again.
    pub fn repin_missing(&mut self) -> Result<Vec<String>, DatapathError> {
        let Some(root) = self.pin_root.clone() else { return Ok(Vec::new()) };
        let mut done = Vec::new();
        let maps = root.join(format!("maps-{}", fingerprint()));
        for name in PINNED_MAPS {
            let path = maps.join(name);
            if path.exists() {
                continue;
            }
            fs::create_dir_all(&maps).map_err(|e| io_err("creating the maps directory", &maps, e))?;
            // The QUIC maps live with the QUIC thread; their second handles are here.
            if let Some((_, map)) = self.quic_pins.iter().find(|(n, _)| n == name) {
                map.pin(&path).map_err(|e| io_err("pinning a map again", &path, io::Error::other(e)))?;
            } else {
                let Some(map) = self.ebpf.map(name) else { continue };
                map.pin(&path).map_err(|e| io_err("pinning a map again", &path, io::Error::other(e)))?;
            }
            done.push(format!("{}/{name}", maps.file_name().unwrap_or_default().to_string_lossy()));
        }
        let links = std::mem::take(&mut self.links);
        for (path, fd) in links {
            if path.exists() {
                self.links.push((path, fd));
                continue;
            }
            fs::create_dir_all(&root).map_err(|e| io_err("creating the pin directory", &root, e))?;
            match fd.pin(&path) {
                Ok(pinned) => {
                    done.push(path.file_name().unwrap_or_default().to_string_lossy().into_owned());
                    self.links.push((path, pinned.into()));
                }
                Err(e) => return Err(io_err("pinning a link again", &path, io::Error::other(e))),
            }
        }
        Ok(done)
    }

    /// Unpins the maps of other builds: once every pinned link runs this build, nothing uses
    /// them.
    fn remove_other_builds(&self, root: &Path) {
        let mine = format!("maps-{}", fingerprint());
        let Ok(dir) = fs::read_dir(root) else { return };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("maps-") && name != mine {
                match remove_dir(&e.path()) {
                    Ok(()) => log::info!("removed the maps of an earlier build ({name})"),
                    Err(err) => log::warn!("{}: {err}", e.path().display()),
                }
            }
        }
    }
}

fn link_path(root: &Path, iface: &str, mode: AttachMode) -> PathBuf {
    root.join(format!("link-{iface}-{}", mode.name()))
}

pub(super) fn ifindex(iface: &str) -> Result<u32, DatapathError> {
    let c = CString::new(iface).map_err(|_| DatapathError::Attach {
        iface: iface.into(),
        source: aya::programs::ProgramError::UnknownInterface { name: iface.into() },
    })?;
    // SAFETY: a valid C string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(DatapathError::Attach { iface: iface.into(), source: aya::programs::ProgramError::UnknownInterface { name: iface.into() } }),
        i => Ok(i),
    }
}

/// The interface a pinned XDP link is attached to, from the kernel's fdinfo of the link
/// (`ifindex: 0` or absent: defunct, its interface is gone). aya keeps the fd of an `FdLink`
/// private, so the pin is opened once more here.
fn pinned_link_ifindex(path: &Path) -> Option<u32> {
    let fd = obj_get(path).ok()?;
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let i: u32 = info.lines().find_map(|l| l.strip_prefix("ifindex:")).and_then(|v| v.trim().parse().ok())?;
    (i != 0).then_some(i)
}

/// BPF_OBJ_GET: an fd for a pinned object.
fn obj_get(path: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const BPF_OBJ_GET: libc::c_long = 7;
    #[repr(C)]
    struct ObjAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        _pad: u32,
    }
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    let attr = ObjAttr { pathname: c.as_ptr() as u64, bpf_fd: 0, file_flags: 0, path_fd: 0, _pad: 0 };
    // SAFETY: bpf(2) reads `size` bytes of `attr`, which lives across the call, as does `c`.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, &attr as *const ObjAttr, std::mem::size_of::<ObjAttr>()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd we now own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

fn remove_dir(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        fs::remove_file(e?.path())?;
    }
    fs::remove_dir(dir)
}

/// What `blocker detach` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Detached {
    pub links: Vec<String>,
    pub map_dirs: Vec<String>,
}

/// Removes every pin under `root`: the links (the program detaches from each interface once
/// no process holds the link) and the maps. A missing directory is nothing to remove.
pub fn detach_all(root: &Path) -> Result<Detached, DatapathError> {
    let mut out = Detached::default();
    let dir = match fs::read_dir(root) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err("reading the pin directory", root, e)),
    };
    let mut entries: Vec<_> = dir.flatten().collect();
    // Links first: from then on no program reads the maps.
    entries.sort_by_key(|e| !e.file_name().to_string_lossy().starts_with("link-"));
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with("link-") {
            fs::remove_file(&path).map_err(|err| io_err("unpinning a link", &path, err))?;
            out.links.push(name);
        } else if name.starts_with("maps-") {
            remove_dir(&path).map_err(|err| io_err("unpinning maps", &path, err))?;
            out.map_dirs.push(name);
        }
    }
    let _ = fs::remove_dir(root);
    Ok(out)
}

/// Whether anything is pinned under `root`.
pub fn pinned_links(root: &Path) -> Vec<String> {
    fs::read_dir(root)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("link-")).collect())
        .unwrap_or_default()
}
