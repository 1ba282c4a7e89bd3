//! A frame through the reference model's verdict (blocker_tests::model::judge).
//! The checks are in src/lib.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blocker_fuzz::verdict_model(data));
