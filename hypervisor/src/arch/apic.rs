//! The local APIC in x2APIC mode (SDM Vol. 3A 11.12): mode switch, own APIC ID, and the ICR the
//! hypervisor uses to start APs (INIT-SIPI-SIPI) and to interrupt them with NMIs.

/// IA32_APIC_BASE (SDM Vol. 3A 11.4.4): bit 11 global enable, bit 10 x2APIC mode.
pub const IA32_APIC_BASE: u32 = 0x1b;
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
pub const APIC_BASE_X2APIC: u64 = 1 << 10;
/// x2APIC ID register (MSR 0x802) and interrupt command register (MSR 0x830).
const X2APIC_ID: u32 = 0x802;
pub const X2APIC_ICR: u32 = 0x830;
/// CPUID.1:ECX bit 21: x2APIC.
const CPUID_1_ECX_X2APIC: u32 = 1 << 21;

/// True if this CPU offers x2APIC mode.
pub fn has_x2apic() -> bool {
    raw_cpuid::cpuid!(1).ecx & CPUID_1_ECX_X2APIC != 0
}

/// Switches this CPU's local APIC to x2APIC mode (enabled first, as the xAPIC -> x2APIC
/// transition requires, SDM Vol. 3A 11.12.5). Returns false if the CPU lacks x2APIC.
pub fn enable_x2apic() -> bool {
    if !has_x2apic() {
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

/// This CPU's x2APIC ID. Call only after [`enable_x2apic`] succeeded.
pub fn x2apic_id() -> u32 {
    // SAFETY: x2APIC mode is on (caller contract), so the ID MSR exists; reading it has no
    // side effects.
    unsafe { x86::msr::rdmsr(X2APIC_ID) as u32 }
}

/// Writes the x2APIC ICR: `low` (vector, delivery mode, level, trigger, shorthand) to
/// `destination` (SDM Vol. 3A 11.12.9; x2APIC has no delivery-status bit to poll).
///
/// # Safety
/// x2APIC mode must be on, and the interrupt must be one the hypervisor means to send: an
/// INIT or SIPI restarts the target CPU, an NMI enters its NMI handler.
pub unsafe fn send_ipi(destination: u32, low: u32) {
    // SAFETY: forwarded contract.
    unsafe { x86::msr::wrmsr(X2APIC_ICR, (u64::from(destination) << 32) | u64::from(low)) };
}

/// Writes the ICR on the guest's behalf with a value [`crate::exits::ipi`] accepted.
///
/// # Safety
/// As [`send_ipi`]; `value` must have passed the guest IPI filter.
pub unsafe fn forward_guest_icr(value: u64) {
    // SAFETY: forwarded contract.
    unsafe { x86::msr::wrmsr(X2APIC_ICR, value) };
}
