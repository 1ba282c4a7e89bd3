//! `cargo xtask package [--out DIR]`: the Debian package `blocker_<version>_<arch>.deb`.
//!
//! Builds the release binary (the XDP program is compiled into it by blocker-user's build.rs),
//! stages it with the systemd unit, the configuration (conffiles) and the docs, writes the
//! control file from `packaging/debian/control.in` (Depends computed from the binary's shared
//! libraries), builds the package with `dpkg-deb --root-owner-group`, and checks the result the
//! way an installation would see it: `dpkg -x` into a throwaway root, every file and mode,
//! `usr/bin/blocker --version`, the control fields and the conffiles. The unit tests below run
//! the same staging and checks with a stand-in binary, without a release build or root.

use std::{
    env, fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail, ensure};

use crate::{
    bpf_linker,
    process::{cargo, output, run as run_cmd, target_dir, workspace_root},
    toolchain,
};

/// What the package installs: path in the package, source (relative to the workspace root;
/// `None` for the binary), mode. The grafana dashboard is added when it exists.
const FILES: &[(&str, Option<&str>, u32)] = &[
    ("usr/bin/blocker", None, 0o755),
    (
        "lib/systemd/system/blocker.service",
        Some("packaging/systemd/blocker.service"),
        0o644,
    ),
    // The configuration names the list sources and local list files: root-only to read.
    (
        "etc/blocker/blocker.toml",
        Some("blocker.example.toml"),
        0o640,
    ),
    (
        "etc/default/blocker",
        Some("packaging/default/blocker"),
        0o644,
    ),
    ("usr/share/doc/blocker/README.md", Some("README.md"), 0o644),
    (
        "usr/share/doc/blocker/ARCHITECTURE.md",
        Some("ARCHITECTURE.md"),
        0o644,
    ),
    // README.md links to it by this relative name.
    (
        "usr/share/doc/blocker/blocker.example.toml",
        Some("blocker.example.toml"),
        0o644,
    ),
    (
        "usr/share/doc/blocker/copyright",
        Some("packaging/debian/copyright"),
        0o644,
    ),
];

const DASHBOARD: (&str, &str) = (
    "usr/share/blocker/grafana/blocker-dashboard.json",
    "packaging/grafana/blocker-dashboard.json",
);

/// Maintainer scripts, copied from packaging/debian/ into DEBIAN/ with mode 0755.
const SCRIPTS: &[&str] = &["postinst", "prerm", "postrm"];

/// `ExecReload=/bin/kill` in the unit: procps ships /bin/kill.
const EXTRA_DEPENDS: &str = "procps";

const DEFAULT_MAINTAINER: &str = "blocker maintainers <maintainers@example.invalid>";
const MAINTAINER_ENV: &str = "BLOCKER_DEB_MAINTAINER";

/// The package's identity and dependencies, filled into control.in.
#[derive(Debug, Clone)]
pub struct Control {
    pub version: String,
    pub arch: String,
    pub depends: String,
    pub maintainer: String,
}

impl Control {
    pub fn deb_name(&self) -> String {
        format!("blocker_{}_{}.deb", self.version, self.arch)
    }
}

/// How dpkg-deb compresses the data: the real package uses dpkg's default (xz); the tests
/// skip compression to stay fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Default,
    None,
}

pub fn run(out: Option<&Path>) -> Result<()> {
    // The release build compiles the kernel program too: nightly, rust-src and bpf-linker.
    // (Not the apt packages of the lab: packaging needs none of them.)
    toolchain::ensure_nightly().context("setup: nightly toolchain")?;
    toolchain::ensure_rust_src().context("setup: rust-src for nightly")?;
    bpf_linker::ensure().context("setup: bpf-linker")?;
    require_tool("dpkg-deb")?;
    run_cmd(cargo().args([
        "build",
        "--release",
        "-p",
        "blocker-user",
        "--bin",
        "blocker",
    ]))?;
    let binary = target_dir().join("release").join("blocker");

    let work = target_dir().join("package").join("work");
    let out = match out {
        Some(dir) => dir.to_path_buf(),
        None => target_dir().join("package"),
    };
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let deb = build(
        &workspace_root(),
        &binary,
        None,
        &work,
        &out,
        Compression::Default,
    )?;
    let control = read_fields(&deb)?;
    println!("\nbuilt {}", deb.display());
    for field in ["Version", "Architecture", "Depends", "Installed-Size"] {
        println!(
            "  {field}: {}",
            control.get(field).map(String::as_str).unwrap_or("?")
        );
    }
    Ok(())
}

/// Stages `binary` and the files of `repo` under `work`, builds the package into `out`, checks
/// it, and returns its path. Depends come from the shared libraries of `elf`, the staged binary
/// when `None` (the tests stage a script and name an ELF to stand in for it).
pub fn build(
    repo: &Path,
    binary: &Path,
    elf: Option<&Path>,
    work: &Path,
    out: &Path,
    compression: Compression,
) -> Result<PathBuf> {
    if work.exists() {
        fs::remove_dir_all(work).with_context(|| format!("removing {}", work.display()))?;
    }
    // work/debian/blocker is where dpkg-shlibdeps expects a package's files, work/debian/control
    // the stub it wants to read.
    let root = work.join("debian").join("blocker");
    stage(&root, repo, binary)?;
    let control = Control {
        version: deb_version(env!("CARGO_PKG_VERSION")),
        arch: output(Command::new("dpkg").arg("--print-architecture"))?
            .trim()
            .to_string(),
        depends: depends(work, elf.unwrap_or(&root.join("usr/bin/blocker")))?,
        maintainer: env::var(MAINTAINER_ENV).unwrap_or_else(|_| DEFAULT_MAINTAINER.into()),
    };
    write_control(&root, repo, &control)?;
    let deb = out.join(control.deb_name());
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--root-owner-group");
    if compression == Compression::None {
        cmd.arg("-Znone");
    }
    cmd.arg("--build").arg(&root).arg(&deb);
    output(&mut cmd)?;
    verify(&deb, &control, repo, &work.join("check"))?;
    Ok(deb)
}

/// The package's files (not DEBIAN/control) under `root`.
pub fn stage(root: &Path, repo: &Path, binary: &Path) -> Result<()> {
    let mut files: Vec<(&str, PathBuf, u32)> = FILES
        .iter()
        .map(|&(dest, src, mode)| {
            (
                dest,
                src.map_or_else(|| binary.to_path_buf(), |s| repo.join(s)),
                mode,
            )
        })
        .collect();
    if repo.join(DASHBOARD.1).exists() {
        files.push((DASHBOARD.0, repo.join(DASHBOARD.1), 0o644));
    }
    for (dest, src, mode) in files {
        install(&src, &root.join(dest), mode)?;
    }
    let debian = root.join("DEBIAN");
    install(
        &repo.join("packaging/debian/conffiles"),
        &debian.join("conffiles"),
        0o644,
    )?;
    for script in SCRIPTS {
        install(
            &repo.join("packaging/debian").join(script),
            &debian.join(script),
            0o755,
        )?;
    }
    // A conffile dpkg cannot find fails the build late and obscurely; say which.
    for conffile in conffiles(&fs::read_to_string(debian.join("conffiles"))?) {
        let path = root.join(conffile.trim_start_matches('/'));
        ensure!(
            path.is_file(),
            "packaging/debian/conffiles names {conffile}, which is not staged"
        );
    }
    directory_modes(root)
}

/// DEBIAN/control from packaging/debian/control.in.
pub fn write_control(root: &Path, repo: &Path, control: &Control) -> Result<()> {
    let template = fs::read_to_string(repo.join("packaging/debian/control.in"))
        .context("reading packaging/debian/control.in")?;
    let text = template
        .replace("@VERSION@", &control.version)
        .replace("@ARCH@", &control.arch)
        .replace("@DEPENDS@", &control.depends)
        .replace("@MAINTAINER@", &control.maintainer)
        .replace("@INSTALLED_SIZE@", &installed_size_kib(root)?.to_string());
    if let Some(name) = placeholder(&text) {
        bail!("packaging/debian/control.in: @{name}@ is not filled");
    }
    let path = root.join("DEBIAN/control");
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// The first `@NAME@` left in a text (an e-mail address's `@` is not one).
fn placeholder(text: &str) -> Option<&str> {
    text.match_indices('@').find_map(|(i, _)| {
        let rest = &text[i + 1..];
        let name = &rest[..rest.find('@')?];
        (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .then_some(name)
    })
}

fn install(src: &Path, dest: &Path, mode: u32) -> Result<()> {
    let dir = dest.parent().expect("destinations are inside the root");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::copy(src, dest)
        .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Every directory 0755, whatever the umask was.
fn directory_modes(dir: &Path) -> Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            directory_modes(&entry.path())?;
        }
    }
    Ok(())
}

/// What dpkg-gencontrol would put in Installed-Size: KiB, each file rounded up, one per
/// directory; DEBIAN/ does not count.
fn installed_size_kib(root: &Path) -> Result<u64> {
    fn walk(dir: &Path, top: bool) -> Result<u64> {
        let mut kib = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if top && entry.file_name() == "DEBIAN" {
                continue;
            }
            let meta = entry.metadata()?;
            kib += if meta.is_dir() {
                1 + walk(&entry.path(), false)?
            } else {
                meta.len().div_ceil(1024)
            };
        }
        Ok(kib)
    }
    walk(root, true)
}

/// Cargo's version as a Debian version: a pre-release (`1.0.0-rc.1`) sorts before the release
/// in Cargo, which `~` does in Debian.
pub fn deb_version(cargo_version: &str) -> String {
    cargo_version.replacen('-', "~", 1)
}

/// The Depends field: the shared libraries the binary needs, and the programs the unit calls.
fn depends(work: &Path, binary: &Path) -> Result<String> {
    Ok(format!("{}, {EXTRA_DEPENDS}", shlib_depends(work, binary)?))
}

/// `libc6 (>= 2.34), libgcc-s1 (>= 4.2)` for `binary`: from dpkg-shlibdeps (dpkg-dev) when
/// installed, which knows every library's package and symbol versions; otherwise from objdump
/// (binutils, which the C linker Rust uses comes with): the highest GLIBC_ symbol version and
/// the libraries named NEEDED, of which we know glibc's and libgcc's.
pub fn shlib_depends(work: &Path, binary: &Path) -> Result<String> {
    if have_tool("dpkg-shlibdeps") {
        let debian = work.join("debian");
        fs::create_dir_all(&debian)?;
        fs::write(
            debian.join("control"),
            "Source: blocker\n\nPackage: blocker\nArchitecture: any\n",
        )?;
        let out = output(
            Command::new("dpkg-shlibdeps")
                .current_dir(work)
                .arg("-O")
                .arg(binary),
        )?;
        let deps = out
            .lines()
            .find_map(|l| l.strip_prefix("shlibs:Depends="))
            .with_context(|| format!("dpkg-shlibdeps printed no shlibs:Depends: {out}"))?;
        return Ok(deps.trim().to_string());
    }
    if have_tool("objdump") {
        let symbols = output(Command::new("objdump").arg("-T").arg(binary))?;
        let headers = output(Command::new("objdump").arg("-p").arg(binary))?;
        return objdump_depends(&symbols, &headers);
    }
    bail!("need dpkg-shlibdeps (apt-get install dpkg-dev) or objdump (binutils) to compute Depends")
}

/// Depends from `objdump -T` (dynamic symbols with versions) and `objdump -p` (NEEDED).
fn objdump_depends(symbols: &str, headers: &str) -> Result<String> {
    let glibc = symbols
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            v.split('.')
                .map(|n| n.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()
        })
        .max()
        .context("objdump -T shows no GLIBC_ symbol versions")?;
    let glibc: Vec<String> = glibc.iter().map(u32::to_string).collect();
    let mut deps = vec![format!("libc6 (>= {})", glibc.join("."))];
    for line in headers.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("NEEDED") {
            continue;
        }
        match words.next() {
            Some("libc.so.6" | "ld-linux-x86-64.so.2" | "ld-linux-aarch64.so.1" | "libm.so.6") => {}
            Some("libgcc_s.so.1") => deps.push("libgcc-s1".into()),
            Some(other) => bail!(
                "the binary needs {other}; install dpkg-dev so dpkg-shlibdeps finds its package"
            ),
            None => {}
        }
    }
    Ok(deps.join(", "))
}

/// Checks a built package as an installation sees it: control fields, conffiles, maintainer
/// scripts, every file with its mode and owner, `blocker --version`, and the unit through
/// `systemd-analyze verify` when that is installed. `scratch` is removed and reused.
pub fn verify(deb: &Path, control: &Control, repo: &Path, scratch: &Path) -> Result<()> {
    if scratch.exists() {
        fs::remove_dir_all(scratch)?;
    }
    fs::create_dir_all(scratch)?;
    let fields = read_fields(deb)?;
    for (field, want) in [
        ("Package", "blocker"),
        ("Version", control.version.as_str()),
        ("Architecture", control.arch.as_str()),
        ("Depends", control.depends.as_str()),
        ("Maintainer", control.maintainer.as_str()),
        ("Recommends", "iproute2"),
    ] {
        let got = fields.get(field).map(String::as_str);
        ensure!(
            got == Some(want),
            "{}: {field} is {got:?}, expected {want:?}",
            deb.display()
        );
    }
    ensure!(
        fields
            .get("Depends")
            .is_some_and(|d| d.starts_with("libc6 (>= ")),
        "Depends lacks a versioned libc6: {:?}",
        fields.get("Depends")
    );

    let meta = scratch.join("DEBIAN");
    output(
        Command::new("dpkg-deb")
            .arg("--control")
            .arg(deb)
            .arg(&meta),
    )?;
    let listed = fs::read_to_string(meta.join("conffiles"))?;
    let mut got: Vec<&str> = conffiles(&listed).collect();
    got.sort_unstable();
    ensure!(
        got == ["/etc/blocker/blocker.toml", "/etc/default/blocker"],
        "conffiles are {got:?}"
    );
    for script in SCRIPTS {
        let mode = fs::metadata(meta.join(script))?.permissions().mode() & 0o7777;
        ensure!(mode == 0o755, "DEBIAN/{script} has mode {mode:o}");
    }

    let root = scratch.join("root");
    output(Command::new("dpkg").arg("-x").arg(deb).arg(&root))?;
    let mut expected: Vec<(&str, u32)> =
        FILES.iter().map(|&(dest, _, mode)| (dest, mode)).collect();
    if repo.join(DASHBOARD.1).exists() {
        expected.push((DASHBOARD.0, 0o644));
    }
    for &(dest, mode) in &expected {
        let path = root.join(dest);
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("{}: no /{dest}", deb.display()))?;
        ensure!(meta.is_file(), "/{dest} is not a regular file");
        let got = meta.permissions().mode() & 0o7777;
        ensure!(got == mode, "/{dest} has mode {got:o}, expected {mode:o}");
    }
    // Exactly these files, all root:root (dpkg -x keeps owners only as root: read the listing).
    let listing = output(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    let mut in_deb: Vec<String> = Vec::new();
    for line in listing.lines() {
        // drwxr-xr-x root/root         0 2026-11-28 20:00 ./usr/bin/
        let cols: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            cols.len() >= 6,
            "unexpected dpkg-deb --contents line: {line}"
        );
        ensure!(
            cols[1] == "root/root",
            "{} is owned by {}",
            cols[5],
            cols[1]
        );
        if !cols[0].starts_with('d') {
            in_deb.push(cols[5].trim_start_matches("./").to_string());
        }
    }
    in_deb.sort();
    let mut want: Vec<String> = expected.iter().map(|(d, _)| d.to_string()).collect();
    want.sort();
    ensure!(
        in_deb == want,
        "the package holds {in_deb:?}, expected {want:?}"
    );
    let config = fs::read(root.join("etc/blocker/blocker.toml"))?;
    ensure!(
        config == fs::read(repo.join("blocker.example.toml"))?,
        "/etc/blocker/blocker.toml differs from blocker.example.toml"
    );

    let binary = root.join("usr/bin/blocker");
    let version = output(Command::new(&binary).arg("--version"))?;
    let want = format!("blocker {}", env!("CARGO_PKG_VERSION"));
    ensure!(
        version.trim() == want,
        "usr/bin/blocker --version says {:?}, expected {want:?}",
        version.trim()
    );

    verify_unit(
        &root.join("lib/systemd/system/blocker.service"),
        &binary,
        scratch,
    )?;
    Ok(())
}

/// `systemd-analyze verify` checks that the commands exist, so the unit is checked with
/// ExecStart pointing at the extracted binary. Skipped (with a note) without systemd-analyze.
fn verify_unit(unit: &Path, binary: &Path, scratch: &Path) -> Result<()> {
    if !have_tool("systemd-analyze") || !Path::new("/bin/kill").exists() {
        println!("note: systemd-analyze (or /bin/kill) missing: the unit was not verified");
        return Ok(());
    }
    let text = fs::read_to_string(unit)?;
    let dir = scratch.join("unit");
    fs::create_dir_all(&dir)?;
    let copy = dir.join("blocker.service");
    fs::write(
        &copy,
        text.replace("/usr/bin/blocker", &binary.to_string_lossy()),
    )?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .context("running systemd-analyze verify")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify blocker.service: {said}"
    );
    Ok(())
}

/// The control fields of a package (one line each; a continued Description is cut to its
/// first line).
fn read_fields(deb: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    let text = output(Command::new("dpkg-deb").arg("--field").arg(deb))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect())
}

fn conffiles(listed: &str) -> impl Iterator<Item = &str> {
    listed.lines().map(str::trim).filter(|l| !l.is_empty())
}

fn have_tool(name: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

fn require_tool(name: &str) -> Result<()> {
    ensure!(
        have_tool(name),
        "{name} is not installed (it comes with dpkg on Debian)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf, process};

    use super::*;

    /// A directory removed when the test ends, pass or fail.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = target_dir()
                .join("package")
                .join(format!("test-{tag}-{}", process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The whole `cargo xtask package` path (stage, control, dpkg-deb, dpkg -x and every check
    /// of [`verify`]) with a stand-in for the release binary: a script that answers --version
    /// like blocker does. `cargo xtask package` runs the same checks on the real binary.
    #[test]
    fn package_layout() {
        if !have_tool("dpkg-deb") || !have_tool("dpkg") {
            eprintln!("skipped: dpkg-deb is not installed (not Debian)");
            return;
        }
        let scratch = Scratch::new("layout");
        let stand_in = scratch.0.join("blocker");
        fs::write(
            &stand_in,
            format!("#!/bin/sh\necho 'blocker {}'\n", env!("CARGO_PKG_VERSION")),
        )
        .unwrap();
        fs::set_permissions(&stand_in, fs::Permissions::from_mode(0o700)).unwrap();
        // Depends are read from an ELF: this test binary's, linked against glibc like blocker.
        let deb = build(
            &workspace_root(),
            &stand_in,
            Some(&env::current_exe().unwrap()),
            &scratch.0.join("work"),
            &scratch.0,
            Compression::None,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        let arch = output(Command::new("dpkg").arg("--print-architecture")).unwrap();
        assert_eq!(
            deb.file_name().unwrap().to_string_lossy(),
            format!(
                "blocker_{}_{}.deb",
                deb_version(env!("CARGO_PKG_VERSION")),
                arch.trim()
            )
        );
        // The checks do fail: the same package against a wrong expectation.
        let fields = read_fields(&deb).unwrap();
        let control = Control {
            version: fields["Version"].clone(),
            arch: fields["Architecture"].clone(),
            depends: fields["Depends"].clone(),
            maintainer: fields["Maintainer"].clone(),
        };
        let again = scratch.0.join("again");
        verify(&deb, &control, &workspace_root(), &again).unwrap();
        let wrong = Control {
            depends: "libc6".into(),
            ..control
        };
        let err = verify(&deb, &wrong, &workspace_root(), &again).unwrap_err();
        assert!(format!("{err}").contains("Depends"), "{err:#}");
    }

    /// The same with the real binary, without building it: $BLOCKER_BIN or
    /// target/release/blocker (`cargo test -p xtask -- --ignored release_binary_package`).
    #[test]
    #[ignore = "needs a release build of blocker"]
    fn release_binary_package() {
        let binary = env::var_os("BLOCKER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("release/blocker"));
        let scratch = Scratch::new("release");
        let deb = build(
            &workspace_root(),
            &binary,
            None,
            &scratch.0.join("work"),
            &scratch.0,
            Compression::None,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        let depends = read_fields(&deb).unwrap()["Depends"].clone();
        assert!(depends.contains("libgcc-s1"), "{depends}");
    }

    /// Depends of a real ELF (this test binary, linked like blocker against glibc).
    #[test]
    fn depends_of_an_elf() {
        if !have_tool("dpkg-shlibdeps") && !have_tool("objdump") {
            eprintln!("skipped: neither dpkg-shlibdeps nor objdump is installed");
            return;
        }
        let scratch = Scratch::new("depends");
        let exe = env::current_exe().unwrap();
        let deps = shlib_depends(&scratch.0, &exe).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(deps.starts_with("libc6 (>= 2."), "{deps}");
    }

    #[test]
    fn depends_from_objdump() {
        let symbols = "\
0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.2.5) malloc
0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.34) __libc_start_main
0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.9) pipe2
0000000000000000      DF *UND*  0000000000000000 (GCC_3.0)    _Unwind_Resume
0000000000000000  w   D  *UND*  0000000000000000  GLIBC_PRIVATE __x
";
        let headers = "  NEEDED               libgcc_s.so.1\n  NEEDED               libc.so.6\n";
        assert_eq!(
            objdump_depends(symbols, headers).unwrap(),
            "libc6 (>= 2.34), libgcc-s1"
        );
        assert!(objdump_depends(symbols, "  NEEDED  libssl.so.3\n").is_err());
        assert!(objdump_depends("nothing", "").is_err());
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            placeholder("Version: @VERSION@\nMaintainer: a <b@c.example>\n"),
            Some("VERSION")
        );
        assert_eq!(placeholder("Maintainer: a <b@c.example>\nX: @Y\n"), None);
        assert_eq!(placeholder("a@b.example, c@d.example"), None);
    }

    #[test]
    fn debian_versions() {
        assert_eq!(deb_version("0.1.0"), "0.1.0");
        assert_eq!(deb_version("1.0.0-rc.1"), "1.0.0~rc.1");
    }

    /// What the unit promises the README and the daemon: the command line, the environment
    /// file, the same capabilities bounded and ambient, and nothing that removes the program
    /// when the unit stops.
    #[test]
    fn unit_contract() {
        let unit =
            fs::read_to_string(workspace_root().join("packaging/systemd/blocker.service")).unwrap();
        let values = |key: &str| -> Vec<String> {
            unit.lines()
                .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            values("ExecStart"),
            ["/usr/bin/blocker run --config /etc/blocker/blocker.toml $BLOCKER_ARGS"]
        );
        assert_eq!(values("EnvironmentFile"), ["-/etc/default/blocker"]);
        assert_eq!(values("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
        assert_eq!(
            values("CapabilityBoundingSet"),
            ["CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_NET_BIND_SERVICE"]
        );
        assert_eq!(
            values("AmbientCapabilities"),
            values("CapabilityBoundingSet")
        );
        assert_eq!(values("ReadWritePaths"), ["/sys/fs/bpf"]);
        assert!(values("ExecStop").is_empty() && values("ExecStopPost").is_empty());
        let default =
            fs::read_to_string(workspace_root().join("packaging/default/blocker")).unwrap();
        assert!(
            default.lines().any(|l| l.starts_with("BLOCKER_ARGS=")),
            "{default}"
        );
    }
}
