//! The blocker XDP program.
//!
//! One pass per frame: parse the headers into a `Packet` (parse.rs), decide (decide.rs), then
//! act and count (verdict.rs). Anything unexpected passes the frame and is counted: the program
//! fails open, and it never returns XDP_ABORTED. In inline mode a second program,
//! `blocker_wire`, sits on the internet port and forwards what it receives, unjudged, to the
//! subscriber port.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]

#[cfg(target_arch = "bpf")]
mod atomic;
#[cfg(target_arch = "bpf")]
mod csum;
#[cfg(target_arch = "bpf")]
mod cursor;
#[cfg(target_arch = "bpf")]
mod decide;
#[cfg(target_arch = "bpf")]
mod dns;
#[cfg(target_arch = "bpf")]
mod flow;
#[cfg(target_arch = "bpf")]
mod forward;
#[cfg(target_arch = "bpf")]
mod http;
#[cfg(target_arch = "bpf")]
mod looping;
#[cfg(target_arch = "bpf")]
mod names;
#[cfg(target_arch = "bpf")]
mod tls;
#[cfg(target_arch = "bpf")]
mod tls_quick;
#[cfg(target_arch = "bpf")]
mod tcp_names;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod quic;
#[cfg(target_arch = "bpf")]
mod reader;
#[cfg(target_arch = "bpf")]
mod reply;
#[cfg(target_arch = "bpf")]
mod resize;
#[cfg(target_arch = "bpf")]
mod stop_page;
#[cfg(target_arch = "bpf")]
mod verdict;

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

    use crate::decide::{Decision, Verdict};
    use blocker_common::verdict::Reason;

    /// The blocking program attached to the subscriber-facing port.
    #[xdp]
    pub fn blocker(ctx: XdpContext) -> u32 {
        // The configuration is read once per packet: judging, acting and counting all see the
        // same generation and switches (`blocker_tcp` gets it from here).
        let cfg = crate::decide::config();
        match crate::decide::judge(&ctx, cfg) {
            Decision::Verdict(v) => crate::verdict::apply(&ctx, v, cfg),
            Decision::Tcp => {
                // SAFETY: a tail call to a program of the same type; on success it does not
                // return.
                unsafe { crate::maps::TCP_JUDGE.tail_call(&ctx, 0) };
                // Not there (never, once the controller has loaded the object): the segment
                // passes unjudged, counted.
                crate::verdict::apply(&ctx, Verdict::pass(Reason::Internal), cfg)
            }
        }
    }

    /// The names a TCP segment carries (a ClientHello's server name, an HTTP request's host,
    /// across segments: tcp_names.rs), tail-called by `blocker` for the segments that need
    /// them. A program of its own: the reader and the name matching are most of the
    /// verifier's work, and each program has its own budget; and the other frames' path does
    /// not carry them.
    #[xdp]
    pub fn blocker_tcp(ctx: XdpContext) -> u32 {
        let (verdict, cfg) = crate::decide::judge_tcp(&ctx);
        crate::verdict::apply(&ctx, verdict, cfg)
    }

    /// Inline mode's internet port: forwards every frame to the subscriber port through
    /// `PORTS[1]`, unjudged (blocking applies to the subscriber-to-internet direction only),
    /// counted as `from_internet`.
    #[xdp]
    pub fn blocker_wire(ctx: XdpContext) -> u32 {
        crate::verdict::from_internet(&ctx)
    }

    /// Passes everything. Attached to the far end of a veth pair it enables the NAPI path that
    /// receives XDP_TX frames (the resets); benchmarks use it as the empty baseline.
    #[xdp]
    pub fn blocker_pass(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_PASS
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        // The verifier rejects any reachable panic path, so this is never executed.
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("blocker-ebpf is an eBPF object; it is built for bpfel-unknown-none by blocker-user");
}
