//! `blocker_user::lists::parse_source` in the json format never panics, and every entry it
//! accepts reads back the same from its own list syntax (Display → parse).
#![no_main]

use blocker_user::lists::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blocker_fuzz::list_round_trip(data, Format::Json));
