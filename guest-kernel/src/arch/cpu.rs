//! Processor instructions: CPUID, MSRs, control registers, the TSC, interrupts on/off, halt.

use core::arch::asm;
use core::arch::x86_64::{__cpuid_count, CpuidResult};

/// IA32_APIC_BASE (SDM Vol. 3A 11.4.4).
pub const IA32_APIC_BASE: u32 = 0x1b;
/// IA32_EFER (SDM Vol. 3A 2.2.1).
pub const IA32_EFER: u32 = 0xc000_0080;
/// EFER.NXE: execute-disable bit in page-table entries enabled.
pub const EFER_NXE: u64 = 1 << 11;
/// CR0.WP: supervisor writes honour read-only pages.
pub const CR0_WP: u64 = 1 << 16;
/// CR4.SMEP: supervisor-mode execution prevention.
pub const CR4_SMEP: u64 = 1 << 20;
/// CR4.SMAP: supervisor-mode access prevention.
pub const CR4_SMAP: u64 = 1 << 21;

/// CPUID leaf `leaf`, sub-leaf `subleaf` (CPUID is always available in 64-bit mode).
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    __cpuid_count(leaf, subleaf)
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: RDTSC only reads the counter (CR4.TSD does not matter at CPL0).
    unsafe {
        asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    };
    (u64::from(high) << 32) | u64::from(low)
}

/// Reads a model-specific register.
///
/// # Safety
/// `msr` must exist on this CPU (else #GP).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists; RDMSR at CPL0 has no other effect.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    };
    (u64::from(high) << 32) | u64::from(low)
}

/// Writes a model-specific register.
///
/// # Safety
/// `msr` must exist and `value` be valid for it, and the new value must not break anything the
/// kernel relies on (EFER, APIC base, ... change how the CPU runs this very code).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: delegated to the caller (see above). The value is split into EDX:EAX as WRMSR wants.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    };
}

macro_rules! read_control_register {
    ($(#[$doc:meta])* $name:ident, $register:literal) => {
        $(#[$doc])*
        pub fn $name() -> u64 {
            let value: u64;
            // SAFETY: the kernel runs at CPL0, where reading a control register has no effect.
            unsafe { asm!(concat!("mov {}, ", $register), out(reg) value, options(nomem, nostack, preserves_flags)) };
            value
        }
    };
}

read_control_register!(/// CR0.
    read_cr0, "cr0");
read_control_register!(/// CR2 (the last page-fault address).
    read_cr2, "cr2");
read_control_register!(/// CR3 (the page-table root).
    read_cr3, "cr3");
read_control_register!(/// CR4.
    read_cr4, "cr4");

/// Writes CR0.
///
/// # Safety
/// The new value must keep protected mode, paging and caching working for the running code.
pub unsafe fn write_cr0(value: u64) {
    // SAFETY: delegated to the caller.
    unsafe { asm!("mov cr0, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Writes CR3 (switches address space and flushes non-global TLB entries).
///
/// # Safety
/// `value` must point at page tables that map the running code, its stack and every static and
/// heap object still in use, at the same addresses, and stay alive while loaded.
pub unsafe fn write_cr3(value: u64) {
    // SAFETY: delegated to the caller.
    unsafe { asm!("mov cr3, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Writes CR4.
///
/// # Safety
/// Only features the CPU supports may be set (else #GP), and none may break the running code
/// (for example SMAP while the kernel still touches user pages).
pub unsafe fn write_cr4(value: u64) {
    // SAFETY: delegated to the caller.
    unsafe { asm!("mov cr4, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Enables maskable interrupts.
///
/// # Safety
/// An IDT with a handler for every vector that can arrive must be loaded.
pub unsafe fn enable_interrupts() {
    // SAFETY: delegated to the caller. No `nomem`: handlers may change memory from here on.
    unsafe { asm!("sti", options(nostack)) };
}

/// Disables maskable interrupts.
pub fn disable_interrupts() {
    // SAFETY: CLI only clears RFLAGS.IF; masking interrupts cannot break memory safety.
    unsafe { asm!("cli", options(nostack)) };
}

/// Waits for the next interrupt (returns at once if one is pending and IF=1).
pub fn halt() {
    // SAFETY: HLT only waits; interrupt handlers that then run were installed by the kernel.
    unsafe { asm!("hlt", options(nostack)) };
}

/// Stops this CPU for good: interrupts off, halt in a loop (an NMI or SMI returns from HLT).
pub fn halt_forever() -> ! {
    loop {
        disable_interrupts();
        halt();
    }
}

/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;

/// Runs `body` with maskable interrupts off, restoring the previous state afterwards (so a lock
/// taken inside can never be wanted by an interrupt handler that interrupted its holder).
pub fn without_interrupts<T>(body: impl FnOnce() -> T) -> T {
    let flags: u64;
    // SAFETY: reading RFLAGS through the stack has no effect beyond the push and pop.
    unsafe { asm!("pushfq", "pop {}", out(reg) flags, options(nomem, preserves_flags)) };
    disable_interrupts();
    let result = body();
    if flags & RFLAGS_IF != 0 {
        // SAFETY: interrupts were on before, so the IDT was already installed then.
        unsafe { enable_interrupts() };
    }
    result
}

/// Enables interrupts and halts until the next one, with no window in between (STI delays
/// interrupts until after the next instruction), then returns with interrupts on.
pub fn enable_and_halt() {
    // SAFETY: the IDT is installed long before the idle loop, which is the only caller.
    unsafe { asm!("sti", "hlt", options(nostack)) };
}
