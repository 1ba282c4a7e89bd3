//! Frame builders shared by the privileged tests and the benchmarks: Ethernet/VLAN/IPv4/IPv6/
//! TCP/UDP frames with correct checksums (`frames`), and TLS ClientHellos split into segments
//! (`tls`).

pub mod frames;
pub mod tls;
