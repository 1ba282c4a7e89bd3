//! Frame builders shared by the privileged tests and the benchmarks: Ethernet/VLAN/IPv4/IPv6/
//! TCP/UDP frames with correct checksums (`frames`), TLS ClientHellos split into segments
//! (`tls`) and DNS queries (`dns`).

pub mod dns;
pub mod frames;
pub mod tls;
