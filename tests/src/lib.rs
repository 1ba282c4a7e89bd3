//! Test support for blocker.
//!
//! [`lab`] builds the namespace lab of design.md §1 (client ── appliance ── internet) that the
//! privileged tests in `tests/` and `cargo xtask demo` run real clients through. Privileged
//! tests are `#[ignore = "needs root and a kernel with BPF: run with cargo xtask test"]`, so
//! plain `cargo test` skips them and `cargo xtask test` runs them. [`conformance`] generates the
//! conformance corpus in `tests/conformance/` that `blocker selftest` runs.

pub mod conformance;
pub mod lab;
pub mod model;
pub mod packets;
pub mod rawbpf;
pub mod signing;
