//! The embedded XDP object holds every program and map the controller expects, with the
//! sizes the shared types say. Reads the ELF only: no root, no kernel.

use std::collections::BTreeSet;

use blocker_user::datapath::{MAPS, PINNED_MAPS, PROGRAMS, object};
use elf::{Object, ObjectSection, ObjectSymbol};

fn symbols_in(section: &str) -> BTreeSet<String> {
    let file = elf::File::parse(object::bytes()).expect("embedded object is an ELF file");
    let index = file.section_by_name(section).unwrap_or_else(|| panic!("no {section} section")).index();
    file.symbols()
        .filter(|s| s.section_index() == Some(index))
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect()
}

#[test]
fn the_object_is_an_ebpf_elf() {
    let file = elf::File::parse(object::bytes()).unwrap();
    assert_eq!(file.architecture(), elf::Architecture::Bpf);
    assert!(file.section_by_name(".BTF").is_some(), "BTF is emitted (bpf-linker --btf)");
}

#[test]
fn every_map_the_controller_uses_is_defined() {
    let maps = symbols_in("maps");
    for m in MAPS {
        assert!(maps.contains(*m), "map {m} missing; object defines {maps:?}");
    }
}

#[test]
fn every_pinned_map_is_a_map_the_controller_uses() {
    for m in PINNED_MAPS {
        assert!(MAPS.contains(m), "pinned map {m} is not in MAPS");
    }
}

#[test]
fn every_program_is_an_xdp_program() {
    let programs = symbols_in("xdp");
    for p in PROGRAMS {
        assert!(programs.contains(*p), "program {p} missing; xdp section has {programs:?}");
    }
}

#[test]
fn the_license_allows_gpl_helpers() {
    let file = elf::File::parse(object::bytes()).unwrap();
    let s = file.section_by_name("license").expect("license section");
    assert!(s.data().unwrap().starts_with(b"Dual MIT/GPL"));
}
