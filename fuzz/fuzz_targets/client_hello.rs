//! A TCP stream's first bytes through the reference model's ClientHello reader (blocker_tests::model::tls).
//! The checks are in src/lib.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blocker_fuzz::client_hello(data));
