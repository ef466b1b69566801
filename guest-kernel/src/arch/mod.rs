//! x86-64 hardware access: the only modules with `asm!` and `unsafe`. Each owns one piece of
//! hardware and exposes safe functions only where the wrapper itself enforces the invariant.
//!
//! # Layering
//! The guest kernel has three layers; imports point down only.
//! - **Below `arch`**: the contract crates (`rampart_boot_info`, `rampart_hv_abi`,
//!   `rampart_kernel_abi`) and the pure, host-tested modules that import nothing above them:
//!   `mm` (layout, page-table format and walks, kernel map, KPTI template, PCIDs, per-CPU
//!   roots, heap and frame arithmetic) and `trap` (vectors, `InterruptFrame`, the exception
//!   report's text).
//! - **`arch`**: imports only itself, the layer below, and `spin`/`buddy_system_allocator`.
//!   Types both sides need and whose layout the stubs fix live here (`syscall_entry::
//!   SyscallFrame`) or below (`trap::InterruptFrame`).
//! - **Above `arch`**: everything else (`boot`, `console`, `hv`, `cmdline`, `time`, `smp`,
//!   `process`, `syscall`, `loader`, `sched`, `attacks`, `fuzz`, ...), and at the top the
//!   composition root, `main.rs` with `entry_points`.
//!
//! `arch` reaches the kernel only through what the upper layer passes in:
//! - the entry points (`_start`, the AP entry, the SYSCALL stub, the interrupt stubs) continue
//!   in the [`kernel::Kernel`] implementation that `entry_points` binds at link time with
//!   [`kernel::bind!`]: direct calls, no writable function pointer on an entry path;
//! - `arch`'s own console lines go to the sink the console sets once ([`log::set_sink`]); the
//!   lock-free emergency path for fatal reports is `arch`'s ([`log::emergency_line`]);
//! - the frame allocator asks the process module's text cache, registered once by
//!   `process::init` ([`phys::set_shared_text`]), which user text frames to keep;
//! - hypervisor detection returns the CPUID values and the handle; `hv` names the hypervisor.
//!
//! `layering_tests` (a host test) fails if a file here names a module outside `arch`, `mm` and
//! `trap`, or if `mm` or `trap` names one outside themselves.
#![allow(unsafe_code)]

pub mod address_spaces;
#[cfg(feature = "attacks")]
pub mod attack;
#[cfg(feature = "attacks")]
pub mod attack_paging;
pub mod cpu;
pub mod cpu_roots;
pub mod entry;
#[cfg(feature = "attacks")]
pub mod fuzz;
pub mod gdt;
pub mod hypercall;
pub mod idt;
pub mod interrupts;
pub mod kernel;
pub mod kpti;
pub mod kthread;
pub mod lapic;
pub mod log;
pub mod paging;
pub mod percpu;
pub mod phys;
pub mod pic;
pub mod pit;
pub mod port;
pub mod smp;
pub mod switch;
pub mod syscall_entry;
pub mod tlb;
pub mod uart;
pub mod user_copy;
