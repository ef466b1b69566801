//! x86-64 hardware access: the only modules with `asm!` and `unsafe`. Each owns one piece of
//! hardware and exposes safe functions only where the wrapper itself enforces the invariant.
#![allow(unsafe_code)]

pub mod address_spaces;
#[cfg(feature = "attacks")]
pub mod attack;
#[cfg(feature = "attacks")]
pub mod attack_paging;
pub mod cpu;
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
