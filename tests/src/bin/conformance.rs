//! Writes the conformance corpus (tests/src/conformance.rs) into tests/conformance/, removing
//! generated files that the generator no longer makes. `--check` writes nothing and exits 1 if
//! the committed files differ from what the generator makes.
//!
//! ```sh
//! cargo run -p blocker-tests --bin conformance            # regenerate
//! cargo run -p blocker-tests --bin conformance -- --check # compare only
//! ```

use std::{collections::BTreeSet, path::Path, process::ExitCode};

use blocker_tests::conformance::{HANDWRITTEN, files};

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let generated = files();
    let wanted: BTreeSet<String> = generated.iter().map(|(p, _)| p.clone()).collect();
    let mut differ = Vec::new();
    for (path, bytes) in &generated {
        let at = root.join(path);
        if std::fs::read(&at).ok().as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        differ.push(path.clone());
        if !check {
            std::fs::create_dir_all(at.parent().unwrap()).expect("creating the corpus directory");
            std::fs::write(&at, bytes).unwrap_or_else(|e| panic!("{}: {e}", at.display()));
        }
    }
    let mut stale = Vec::new();
    for path in existing(&root, &root) {
        if !wanted.contains(&path) && !HANDWRITTEN.contains(&path.as_str()) {
            stale.push(path.clone());
            if !check {
                std::fs::remove_file(root.join(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            }
        }
    }
    let frames: usize = blocker_tests::conformance::corpus().groups.iter().flat_map(|g| &g.cases).map(|c| c.frames.len()).sum();
    let cases: usize = blocker_tests::conformance::corpus().groups.iter().map(|g| g.cases.len()).sum();
    if check {
        for p in &differ {
            eprintln!("differs from the generator: tests/conformance/{p}");
        }
        for p in &stale {
            eprintln!("not generated: tests/conformance/{p}");
        }
        if differ.is_empty() && stale.is_empty() {
            println!("tests/conformance is up to date ({} files, {cases} cases, {frames} frames)", generated.len());
            return ExitCode::SUCCESS;
        }
        return ExitCode::FAILURE;
    }
    println!(
        "tests/conformance: {} files ({} written, {} removed), {cases} cases, {frames} frames",
        generated.len(),
        differ.len(),
        stale.len()
    );
    ExitCode::SUCCESS
}

/// Files under `dir`, as paths relative to `root` with `/` separators.
fn existing(root: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(existing(root, &p));
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
        }
    }
    out.sort();
    out
}
