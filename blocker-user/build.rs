//! Builds the XDP program (blocker-ebpf) for the bpf target with aya-build, so that a plain
//! `cargo build` produces a `blocker` binary with the program embedded. Needs nightly `rust-src`
//! and `bpf-linker`: `cargo xtask setup` installs both.

fn main() {
    let ebpf = aya_build::Package {
        name: "blocker-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../blocker-ebpf"),
        ..Default::default()
    };
    if let Err(e) = aya_build::build_ebpf([ebpf], aya_build::Toolchain::default()) {
        panic!(
            "building the XDP program failed: {e:#}\n\
             hint: run `cargo xtask setup` to install nightly rust-src and bpf-linker"
        );
    }
}
