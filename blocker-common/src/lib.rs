//! Types and small pure functions shared by the XDP program (`blocker-ebpf`) and the controller
//! (`blocker-user`). Everything that crosses the kernel/user boundary is defined here once, as
//! padding-free `#[repr(C)]` data whose size is asserted at compile time.
#![no_std]

pub mod capacity;
pub mod coarse;
pub mod config;
pub mod counters;
pub mod dns;
pub mod flow;
pub mod forward;
pub mod name;
pub mod name_filter;
pub mod prefix;
pub mod quic;
pub mod route_cache;
pub mod stop_page;
pub mod verdict;

/// Asserts at compile time that a shared type has exactly the expected size, which (with the
/// field layout chosen by hand) rules out hidden padding that the kernel and user would disagree on.
#[macro_export]
macro_rules! assert_size {
    ($t:ty, $n:expr) => {
        const _: () = assert!(core::mem::size_of::<$t>() == $n);
    };
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type listed is repr(C), Copy, has no padding (sizes asserted next to the
    // definitions) and is valid for any bit pattern.
    unsafe impl aya::Pod for crate::config::Config {}
    unsafe impl aya::Pod for crate::counters::CounterTable {}
    unsafe impl aya::Pod for crate::prefix::PrefixValue {}
    unsafe impl aya::Pod for crate::prefix::PrefixSlots {}
    unsafe impl aya::Pod for crate::name::HashKey {}
    unsafe impl aya::Pod for crate::dns::DnsConfig {}
    unsafe impl aya::Pod for crate::stop_page::StopPageTemplate {}
    unsafe impl aya::Pod for crate::name::NameKey {}
    unsafe impl aya::Pod for crate::name::NameValue {}
    unsafe impl aya::Pod for crate::name::NameSlots {}
    unsafe impl aya::Pod for crate::quic::QuicFlow {}
    unsafe impl aya::Pod for crate::quic::QuicVerdict {}
    unsafe impl aya::Pod for crate::quic::QuicConfig {}
    unsafe impl aya::Pod for crate::flow::FlowKey {}
    unsafe impl aya::Pod for crate::forward::ForwardCounts {}
    unsafe impl aya::Pod for crate::forward::PortMac {}
    unsafe impl aya::Pod for crate::route_cache::RouteCacheEntry {}
}
