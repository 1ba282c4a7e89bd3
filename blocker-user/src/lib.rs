//! The blocker controller library: list parsing (`lists`), the kernel datapath (`datapath`),
//! captures (`capture`) and offline replay through the real program (`replay`). The `blocker`
//! binary (main.rs, cli/) is a thin layer over these.

pub mod capture;
pub mod config;
pub mod control;
pub mod daemon;
pub mod datapath;
pub mod lists;
pub mod metrics;
pub mod quic;
pub mod replay;
pub mod selftest;
pub mod stoppage;
pub mod update;
