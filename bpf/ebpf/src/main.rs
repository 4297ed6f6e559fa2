//! Stockade's kernel-side eBPF programs: the connect/sendmsg hooks that
//! decide every outgoing flow of this node's cgroup subtree, the ingress hook
//! that decides new inbound flows, and the process tracepoints that keep the
//! process-identity map current. The decision procedure is the one of
//! `stockade_policy::DataplaneEntries::decide`, over the same map contents.
#![no_std]
#![no_main]

mod decide;
mod ingress;
mod maps;
mod process;
mod sock_addr;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach this, so it is never
    // executed; an endless loop satisfies the `!` return type.
    loop {}
}
