//! The state directory: the last good list versions, the one before them, the versions an
//! operator rolled back, and the name-hash key. Written so that a crash at any point leaves
//! either the old state or the new one: each generation is written to a temporary directory
//! and renamed into place, then `state.json` is replaced the same way.
//!
//! Layout (directory 0700, files 0600: the lists are what list bodies ask ISPs not to leak):
//! ```text
//! state.json                    {"current": 7, "previous": 6, "refused": {"iwf": ["<sha256>"]}}
//! hash.key                      16 bytes: the key of the name hashes in the kernel
//! generations/7/manifest.json   per list: source, digest, validators, fetch time, signed
//! generations/7/<list>.body     the list as received (verified again when loaded)
//! generations/7/<list>.minisig  its detached signature, if it was signed
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use blocker_common::name::HashKey;
use serde::{Deserialize, Serialize};

use super::pull::Version;
use crate::lists::Validators;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointers {
    pub current: Option<u64>,
    pub previous: Option<u64>,
    /// Per list, digests of versions an operator rolled back: a pull that brings one of them
    /// again is refused unless forced.
    #[serde(default)]
    pub refused: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestList {
    pub name: String,
    pub source: String,
    pub digest: String,
    #[serde(default)]
    pub validators: Validators,
    pub fetched_at: u64,
    pub signed: bool,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub number: u64,
    pub installed_at: u64,
    pub lists: Vec<ManifestList>,
}

/// A generation read back: its manifest and each list's version.
pub struct Stored {
    pub manifest: Manifest,
    pub versions: BTreeMap<String, Version>,
}

#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

fn io_at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl StateDir {
    /// Opens (creating, root-only) the state directory.
    pub fn open(root: &Path) -> io::Result<StateDir> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root.join("generations")).map_err(|e| io_at(root, e))?;
        // An existing directory keeps whatever mode it had; tighten it.
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(|e| io_at(root, e))?;
        Ok(StateDir { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn generation_dir(&self, number: u64) -> PathBuf {
        self.root.join("generations").join(number.to_string())
    }

    pub fn pointers(&self) -> io::Result<Pointers> {
        let path = self.root.join("state.json");
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| io_at(&path, io::Error::new(io::ErrorKind::InvalidData, e))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Pointers::default()),
            Err(e) => Err(io_at(&path, e)),
        }
    }

    /// Replaces `state.json`, then removes generations it no longer names.
    pub fn set_pointers(&self, p: &Pointers) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(p).expect("pointers serialise");
        write_atomic(&self.root.join("state.json"), &bytes)?;
        self.prune(p)
    }

    fn prune(&self, p: &Pointers) -> io::Result<()> {
        let keep: Vec<String> = [p.current, p.previous].into_iter().flatten().map(|n| n.to_string()).collect();
        let dir = self.root.join("generations");
        for entry in fs::read_dir(&dir).map_err(|e| io_at(&dir, e))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                fs::remove_dir_all(entry.path()).map_err(|e| io_at(&entry.path(), e))?;
            }
        }
        Ok(())
    }

    /// Writes a generation's lists. It becomes visible whole (renamed into place) or not at all.
    pub fn write_generation(&self, number: u64, installed_at: u64, versions: &BTreeMap<String, Version>) -> io::Result<()> {
        let tmp = self.root.join("generations").join(format!(".tmp-{number}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| io_at(&tmp, e))?;
        }
        fs::DirBuilder::new().mode(0o700).create(&tmp).map_err(|e| io_at(&tmp, e))?;
        let mut lists = Vec::new();
        for (name, v) in versions {
            write_file(&tmp.join(format!("{name}.body")), &v.body)?;
            if let Some(sig) = &v.signature {
                write_file(&tmp.join(format!("{name}.minisig")), sig)?;
            }
            lists.push(ManifestList {
                name: name.clone(),
                source: v.source.clone(),
                digest: v.digest.clone(),
                validators: v.validators.clone(),
                fetched_at: v.fetched_at,
                signed: v.signature.is_some(),
                bytes: v.body.len() as u64,
            });
        }
        let manifest = Manifest { number, installed_at, lists };
        write_file(&tmp.join("manifest.json"), &serde_json::to_vec_pretty(&manifest).expect("manifest serialises"))?;
        sync_dir(&tmp)?;
        let dest = self.generation_dir(number);
        if dest.exists() {
            fs::remove_dir_all(&dest).map_err(|e| io_at(&dest, e))?;
        }
        fs::rename(&tmp, &dest).map_err(|e| io_at(&dest, e))?;
        sync_dir(&self.root.join("generations"))
    }

    /// Reads a generation back. A list whose body does not match its recorded digest is
    /// reported as an error: the state was altered or damaged.
    pub fn read_generation(&self, number: u64) -> io::Result<Stored> {
        let dir = self.generation_dir(number);
        let mpath = dir.join("manifest.json");
        let manifest: Manifest = serde_json::from_slice(&fs::read(&mpath).map_err(|e| io_at(&mpath, e))?)
            .map_err(|e| io_at(&mpath, io::Error::new(io::ErrorKind::InvalidData, e)))?;
        let mut versions = BTreeMap::new();
        for l in &manifest.lists {
            let bpath = dir.join(format!("{}.body", l.name));
            let body = fs::read(&bpath).map_err(|e| io_at(&bpath, e))?;
            let signature = if l.signed {
                let spath = dir.join(format!("{}.minisig", l.name));
                Some(Arc::new(fs::read(&spath).map_err(|e| io_at(&spath, e))?))
            } else {
                None
            };
            let v = Version {
                source: l.source.clone(),
                digest: super::pull::digest(&body),
                body: Arc::new(body),
                signature,
                validators: l.validators.clone(),
                fetched_at: l.fetched_at,
            };
            if v.digest != l.digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: content does not match the digest in the manifest (altered or damaged)", bpath.display()),
                ));
            }
            versions.insert(l.name.clone(), v);
        }
        Ok(Stored { manifest, versions })
    }

    /// The name-hash key kept across restarts (so a new controller computes the hashes the
    /// kernel already holds); made on first use.
    pub fn hash_key(&self) -> io::Result<HashKey> {
        let path = self.root.join("hash.key");
        match fs::read(&path) {
            Ok(b) if b.len() == 16 => {
                Ok(HashKey { k0: u64::from_le_bytes(b[..8].try_into().unwrap()), k1: u64::from_le_bytes(b[8..].try_into().unwrap()) })
            }
            Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: not a 16-byte key", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = crate::datapath::random_key().map_err(|e| io_at(Path::new("/dev/urandom"), e))?;
                let mut b = key.k0.to_le_bytes().to_vec();
                b.extend_from_slice(&key.k1.to_le_bytes());
                write_atomic(&path, &b)?;
                Ok(key)
            }
            Err(e) => Err(io_at(&path, e)),
        }
    }
}

impl StateDir {
    /// Replaces the stored name-hash key (with the one adopted maps were filled with).
    pub fn set_hash_key(&self, key: HashKey) -> io::Result<()> {
        let mut b = key.k0.to_le_bytes().to_vec();
        b.extend_from_slice(&key.k1.to_le_bytes());
        write_atomic(&self.root.join("hash.key"), &b)
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(|e| io_at(path, e))?;
    f.write_all(bytes).map_err(|e| io_at(path, e))?;
    f.sync_all().map_err(|e| io_at(path, e))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    write_file(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(|e| io_at(path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_at(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(body: &str) -> Version {
        Version {
            source: "l.txt".into(),
            digest: super::super::pull::digest(body.as_bytes()),
            body: Arc::new(body.as_bytes().to_vec()),
            signature: Some(Arc::new(b"sig".to_vec())),
            validators: Validators { etag: Some("\"e1\"".into()), last_modified: None },
            fetched_at: 42,
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("blocker-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_generation_reads_back_as_written_and_the_directory_is_root_only() {
        let root = tmpdir("rw");
        let s = StateDir::open(&root).unwrap();
        let mut v = BTreeMap::new();
        v.insert("a".to_string(), version("192.0.2.1\n"));
        s.write_generation(3, 100, &v).unwrap();
        s.set_pointers(&Pointers { current: Some(3), previous: None, refused: BTreeMap::new() }).unwrap();
        let back = s.read_generation(3).unwrap();
        assert_eq!(back.manifest.number, 3);
        assert_eq!(back.versions["a"].body.as_slice(), b"192.0.2.1\n");
        assert_eq!(back.versions["a"].validators, v["a"].validators);
        assert_eq!(s.pointers().unwrap().current, Some(3));
        assert_eq!(fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
        let body = root.join("generations/3/a.body");
        assert_eq!(fs::metadata(body).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn generations_no_pointer_names_are_removed() {
        let root = tmpdir("prune");
        let s = StateDir::open(&root).unwrap();
        let v = BTreeMap::from([("a".to_string(), version("x.example\n"))]);
        for n in 1..=3 {
            s.write_generation(n, 0, &v).unwrap();
        }
        s.set_pointers(&Pointers { current: Some(3), previous: Some(2), refused: BTreeMap::new() }).unwrap();
        assert!(!root.join("generations/1").exists());
        assert!(root.join("generations/2").exists() && root.join("generations/3").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_altered_body_is_refused() {
        let root = tmpdir("tamper");
        let s = StateDir::open(&root).unwrap();
        s.write_generation(1, 0, &BTreeMap::from([("a".to_string(), version("x.example\n"))])).unwrap();
        fs::write(root.join("generations/1/a.body"), "google.com\n").unwrap();
        let err = s.read_generation(1).err().unwrap().to_string();
        assert!(err.contains("does not match the digest"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_hash_key_is_made_once_and_kept() {
        let root = tmpdir("key");
        let s = StateDir::open(&root).unwrap();
        let k = s.hash_key().unwrap();
        assert_eq!(StateDir::open(&root).unwrap().hash_key().unwrap(), k);
        fs::remove_dir_all(&root).unwrap();
    }
}
