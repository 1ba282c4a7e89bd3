//! A DNS message through the reference model's query reader (blocker_tests::model::dns).
//! The checks are in src/lib.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blocker_fuzz::dns_query(data));
