//! The local APIC as the hypervisor uses it: x2APIC mode where the CPU has it (SDM Vol. 3A
//! 11.12), so that guest IPIs go through MSRs the hypervisor checks; else xAPIC through its
//! MMIO page. Own APIC ID, and the ICR the hypervisor uses to start APs (INIT-SIPI-SIPI) and to
//! interrupt them with NMIs.

use core::sync::atomic::{AtomicU64, Ordering};

/// IA32_APIC_BASE (SDM Vol. 3A 11.4.4): bit 11 global enable, bit 10 x2APIC mode.
pub const IA32_APIC_BASE: u32 = 0x1b;
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
pub const APIC_BASE_X2APIC: u64 = 1 << 10;
/// x2APIC ID register (MSR 0x802) and interrupt command register (MSR 0x830).
const X2APIC_ID: u32 = 0x802;
pub const X2APIC_ICR: u32 = 0x830;
/// CPUID.1:ECX bit 21: x2APIC.
const CPUID_1_ECX_X2APIC: u32 = 1 << 21;
const APIC_BASE_ADDRESS: u64 = 0x000f_ffff_ffff_f000;
/// xAPIC registers (Table 11-1): ID, ICR low and high; ICR bit 12: delivery status (pending).
const XAPIC_ID: u64 = 0x20;
const XAPIC_ICR_LOW: u64 = 0x300;
const XAPIC_ICR_HIGH: u64 = 0x310;
const XAPIC_ID_SHIFT: u32 = 24;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
/// 0: x2APIC; else the xAPIC MMIO base (identity-mapped uncacheable by `host_paging`). Set on
/// the boot CPU before any AP starts; every CPU uses the same mode.
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0);

/// Switches this CPU's local APIC to x2APIC mode (enabled first, as the xAPIC -> x2APIC
/// transition requires, SDM Vol. 3A 11.12.5). Returns false if the CPU lacks x2APIC: then the
/// hypervisor drives the APIC through its xAPIC page.
pub fn enable_x2apic() -> bool {
    if raw_cpuid::cpuid!(1).ecx & CPUID_1_ECX_X2APIC == 0 {
        // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU; reading it has no side effects.
        let base = unsafe { x86::msr::rdmsr(IA32_APIC_BASE) } & APIC_BASE_ADDRESS;
        XAPIC_BASE.store(base, Ordering::SeqCst);
        return false;
    }
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU; setting EN then EXTD is a valid
    // transition (Figure 11-27), the base address is kept, and the hypervisor runs with
    // interrupts off, so no interrupt is lost to the switch.
    unsafe {
        let base = x86::msr::rdmsr(IA32_APIC_BASE);
        if base & APIC_BASE_ENABLE == 0 {
            x86::msr::wrmsr(IA32_APIC_BASE, base | APIC_BASE_ENABLE);
        }
        x86::msr::wrmsr(IA32_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
    }
    true
}

/// This CPU's APIC ID. Call after [`enable_x2apic`].
pub fn apic_id() -> u32 {
    match XAPIC_BASE.load(Ordering::SeqCst) {
        // SAFETY: x2APIC mode is on, so the ID MSR exists; reading it has no side effects.
        0 => unsafe { x86::msr::rdmsr(X2APIC_ID) as u32 },
        base => {
            // SAFETY: the xAPIC page from IA32_APIC_BASE, identity-mapped uncacheable; reading
            // the ID register has no side effects.
            let id = unsafe { core::ptr::read_volatile((base + XAPIC_ID) as *const u32) };
            id >> XAPIC_ID_SHIFT
        }
    }
}

/// Writes the ICR: `low` (vector, delivery mode, level, trigger, shorthand) to `destination`
/// (SDM Vol. 3A 11.6.1; in x2APIC mode one MSR with no delivery-status bit to poll, 11.12.9).
///
/// # Safety
/// x2APIC mode must be on, and the interrupt must be one the hypervisor means to send: an
/// INIT or SIPI restarts the target CPU, an NMI enters its NMI handler.
pub unsafe fn send_ipi(destination: u32, low: u32) {
    match XAPIC_BASE.load(Ordering::SeqCst) {
        // SAFETY: forwarded contract.
        0 => unsafe {
            x86::msr::wrmsr(X2APIC_ICR, (u64::from(destination) << 32) | u64::from(low))
        },
        // SAFETY: forwarded contract; the xAPIC page is identity-mapped uncacheable. Writing
        // the low half sends (11.6.1), after which the delivery-status bit is polled.
        base => unsafe {
            let high = (base + XAPIC_ICR_HIGH) as *mut u32;
            let low_register = (base + XAPIC_ICR_LOW) as *mut u32;
            core::ptr::write_volatile(high, destination << XAPIC_ID_SHIFT);
            core::ptr::write_volatile(low_register, low);
            while core::ptr::read_volatile(low_register) & ICR_DELIVERY_PENDING != 0 {
                core::hint::spin_loop();
            }
        },
    }
}

/// Writes the ICR on the guest's behalf with a value [`crate::exits::ipi`] accepted.
///
/// # Safety
/// As [`send_ipi`]; `value` must have passed the guest IPI filter.
pub unsafe fn forward_guest_icr(value: u64) {
    // SAFETY: forwarded contract.
    unsafe { x86::msr::wrmsr(X2APIC_ICR, value) };
}
