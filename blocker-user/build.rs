fn main() {
    let pkg = aya_build::Package { name: "blocker-ebpf", root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../blocker-ebpf"), ..Default::default() };
    aya_build::build_ebpf([pkg], aya_build::Toolchain::default()).expect("build ebpf");
}
