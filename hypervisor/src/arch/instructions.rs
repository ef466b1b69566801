//! Single instructions not wrapped by the `x86` crate.

use core::arch::asm;

/// Stops this CPU for good: interrupts off, then HLT forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: CLI and HLT touch no memory; the hypervisor's end state is a halted CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// INVEPT type (SDM Vol. 3C 31.3 "INVEPT"): 1 = single-context, 2 = all-context.
#[derive(Clone, Copy)]
#[repr(u64)]
pub enum InveptType {
    SingleContext = 1,
    AllContext = 2,
}

/// Invalidates cached EPT translations for `eptp` (single-context) or all EPTPs.
///
/// # Safety
/// VMX operation must be on and the CPU must support the chosen INVEPT type
/// (IA32_VMX_EPT_VPID_CAP bits 25/26).
pub unsafe fn invept(kind: InveptType, eptp: u64) {
    let descriptor: [u64; 2] = [eptp, 0];
    // SAFETY: the caller guarantees VMX operation and support; the descriptor is a valid
    // 16-byte memory operand on our stack.
    unsafe {
        asm!("invept {0}, [{1}]", in(reg) kind as u64, in(reg) descriptor.as_ptr(),
             options(nostack));
    }
}

/// INVVPID type (SDM Vol. 3C 31.3 "INVVPID"): 1 = single-context, 2 = all-context,
/// 3 = single-context retaining global translations.
#[derive(Clone, Copy)]
#[repr(u64)]
pub enum InvvpidType {
    SingleContext = 1,
    AllContext = 2,
    SingleContextRetainingGlobals = 3,
}

/// Invalidates the linear and combined translations cached for `vpid` (single-context) or
/// for every VPID but 0.
///
/// # Safety
/// VMX operation must be on and the CPU must support the chosen INVVPID type
/// (IA32_VMX_EPT_VPID_CAP bits 41/42); `vpid` must be non-zero for single-context.
pub unsafe fn invvpid(kind: InvvpidType, vpid: u16) {
    let descriptor: [u64; 2] = [u64::from(vpid), 0];
    // SAFETY: the caller guarantees VMX operation and support; the descriptor is a valid
    // 16-byte memory operand on our stack.
    unsafe {
        asm!("invvpid {0}, [{1}]", in(reg) kind as u64, in(reg) descriptor.as_ptr(),
             options(nostack));
    }
}

/// Writes back and invalidates all caches (used to emulate the guest's INVD safely).
pub fn wbinvd() {
    // SAFETY: WBINVD only flushes caches; it loses no data and touches no Rust-visible state.
    unsafe { asm!("wbinvd", options(nostack)) };
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects and is always available in 64-bit mode.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Waits for the next NMI (or SMI/INIT) with interrupts off: HLT with RFLAGS.IF = 0.
pub fn halt_until_nmi() {
    // SAFETY: HLT touches no memory; with IF = 0 only an NMI (served by the host IDT's NMI
    // handler, which returns here) or INIT/SMI ends it.
    unsafe { asm!("hlt", options(nomem, nostack)) };
}

/// Busy-waits `cycles` TSC cycles (the TSC is the only clock the hypervisor keeps).
pub fn delay_cycles(cycles: u64) {
    spin_until(cycles, || false);
}

/// Spins until `done()` holds or `cycles` TSC cycles have passed; returns whether it held.
pub fn spin_until(cycles: u64, mut done: impl FnMut() -> bool) -> bool {
    let start = rdtsc();
    while !done() {
        if rdtsc().wrapping_sub(start) >= cycles {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Ends NMI blocking with an IRETQ to the next instruction. A VM exit caused by an NMI leaves
/// NMIs blocked in VMX root until the next IRET (SDM Vol. 3C, "Event Blocking" after VM exits,
/// and KVM's `vmx_do_nmi_irqoff` for the same reason); without this the next NMI, the
/// hypervisor's only way to reach a running vCPU, would stay pending.
pub fn unblock_nmis() {
    // SAFETY: builds a 64-bit interrupt frame (SS, RSP, RFLAGS, CS, RIP) on the current stack
    // that returns to the label right after IRETQ with every register as it was; RAX and RCX
    // are declared clobbered.
    unsafe {
        asm!(
            "mov rcx, rsp",
            "mov eax, ss",
            "push rax",
            "push rcx",
            "pushfq",
            "mov eax, cs",
            "push rax",
            "lea rax, [rip + 2f]",
            "push rax",
            "iretq",
            "2:",
            out("rax") _,
            out("rcx") _,
        );
    }
}

/// The host needs CR4.OSXSAVE so that it can execute the guest's validated XSETBV.
pub fn enable_host_xsave() {
    let cpuid = raw_cpuid::CpuId::new();
    if cpuid.get_feature_info().is_some_and(|f| f.has_xsave()) {
        // SAFETY: the CPU supports XSAVE (CPUID.1:ECX.XSAVE), so setting CR4.OSXSAVE is valid;
        // it only enables instructions.
        unsafe {
            x86::controlregs::cr4_write(
                x86::controlregs::cr4() | x86::controlregs::Cr4::CR4_ENABLE_OS_XSAVE,
            )
        };
    }
}
