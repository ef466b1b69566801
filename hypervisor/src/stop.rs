//! Stopping cleanly: every path that cannot continue the guest (a fatal hypervisor error, an
//! unexpected exit, a guest triple fault, a requested shutdown) reports over serial, prints
//! the exit counters and halts the CPU. Never a silent hang, never a reset loop.

use crate::console;
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::exit_reason;
use crate::vmx::instruction_error;
use crate::vmx::vmcs::Vmcs;
use core::fmt;
use x86::vmx::vmcs::{guest, ro};

const RFLAGS_CF: u64 = 1 << 0;
const RFLAGS_ZF: u64 = 1 << 6;

/// Reports `reason`, prints the counters, emits the FAIL result line and halts.
pub fn fatal(reason: fmt::Arguments<'_>) -> ! {
    log::error!("FATAL: {}", reason);
    log::error!("exits: {}", state::STATS);
    console::result_line(format_args!("FAIL hv: {}", reason));
    crate::cpus::halt_others();
    crate::arch::instructions::halt_forever()
}

/// The guest asked to stop (Shutdown hypercall).
pub fn shutdown() -> ! {
    log::error!("exits: {}", state::STATS);
    log::error!("exits by vCPU: {}", crate::cpus::ExitsByVcpu);
    log::error!("guest requested shutdown; halting");
    crate::cpus::halt_others();
    crate::arch::instructions::halt_forever()
}

/// VMLAUNCH or VMRESUME fell through with VMfail.
pub fn entry_failed(instruction: &str, rflags: u64) -> ! {
    if rflags & RFLAGS_ZF != 0 {
        // SAFETY: VMfailValid means a VMCS is current, so its error field is readable.
        #[allow(unsafe_code)]
        let vmcs = unsafe { Vmcs::assume_current() };
        let number = vmcs.read(ro::VM_INSTRUCTION_ERROR).unwrap_or(0);
        let text = instruction_error::describe(number);
        fatal!("{instruction} failed: VM-instruction error {number} ({text})")
    } else if rflags & RFLAGS_CF != 0 {
        fatal!("{instruction} failed: VMfailInvalid (no current VMCS)")
    } else {
        fatal!("{instruction} returned without VMfail flags (rflags {rflags:#x})")
    }
}

/// A VM exit whose reason has bit 31 set: the entry itself failed (SDM Vol. 3C 27.8).
pub fn entry_failure_exit(vmcs: &Vmcs, regs: &GuestRegisters, basic: u16) -> ! {
    let qualification = vmcs.read(ro::EXIT_QUALIFICATION).unwrap_or(0);
    dump_guest(vmcs, regs);
    // Development builds name the SDM chapter 27 checks the VMCS fails.
    #[cfg(feature = "gdb")]
    fatal!(
        "VM entry failed: {} (qualification {qualification:#x}); failing checks: {}",
        exit_reason::name(basic),
        crate::vmx::entry_checks::current_vmcs_failures(vmcs, &state::get().caps)
    );
    #[cfg(not(feature = "gdb"))]
    fatal!(
        "VM entry failed: {} (qualification {qualification:#x})",
        exit_reason::name(basic)
    )
}

pub fn triple_fault(vmcs: &Vmcs, regs: &GuestRegisters) -> ! {
    dump_guest(vmcs, regs);
    fatal!("guest triple fault at RIP {:#x}", vmcs.get(guest::RIP))
}

pub fn unexpected(vmcs: &Vmcs, regs: &GuestRegisters, basic: u16) -> ! {
    let qualification = vmcs.read(ro::EXIT_QUALIFICATION).unwrap_or(0);
    dump_guest(vmcs, regs);
    fatal!(
        "unexpected VM exit {} ({basic}), qualification {qualification:#x}",
        exit_reason::name(basic)
    )
}

/// An exception inside the hypervisor itself (host IDT).
pub fn host_fault(vector: u64, error: u64, rip: u64, cr2: u64) -> ! {
    fatal!("hypervisor exception vector {vector} error {error:#x} at RIP {rip:#x} CR2 {cr2:#x}")
}

fn dump_guest(vmcs: &Vmcs, r: &GuestRegisters) {
    let f = |field| vmcs.read(field).unwrap_or(0);
    let (rip, rsp, rflags) = (f(guest::RIP), f(guest::RSP), f(guest::RFLAGS));
    let (cs, ss) = (f(guest::CS_SELECTOR), f(guest::SS_SELECTOR));
    log::error!("guest RIP={rip:#018x} RSP={rsp:#018x} RFLAGS={rflags:#x} CS={cs:#x} SS={ss:#x}");
    let (cr0, cr3, cr4) = (f(guest::CR0), f(guest::CR3), f(guest::CR4));
    let efer = f(guest::IA32_EFER_FULL);
    log::error!("guest CR0={cr0:#x} CR3={cr3:#x} CR4={cr4:#x} EFER={efer:#x}");
    let (rax, rbx, rcx, rdx) = (r.rax, r.rbx, r.rcx, r.rdx);
    let (rsi, rdi, rbp) = (r.rsi, r.rdi, r.rbp);
    log::error!(
        "guest RAX={rax:#x} RBX={rbx:#x} RCX={rcx:#x} RDX={rdx:#x} RSI={rsi:#x} RDI={rdi:#x} \
         RBP={rbp:#x}"
    );
    let (r8, r9, r10, r11) = (r.r8, r.r9, r.r10, r.r11);
    let (r12, r13, r14, r15) = (r.r12, r.r13, r.r14, r.r15);
    log::error!(
        "guest R8={r8:#x} R9={r9:#x} R10={r10:#x} R11={r11:#x} R12={r12:#x} R13={r13:#x} \
         R14={r14:#x} R15={r15:#x}"
    );
}
