//! Hypervisor detection (CPUID) and Rampart hypercalls (VMCALL), per `rampart_hv_abi`.

use super::cpu;
use crate::mm::layout;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use rampart_hv_abi::{
    AuditRecord, CpuRoots, DescriptorLock, Hypercall, Registers, Request, CPUID_LEAF_VENDOR,
    EXIT_COUNT_TOTAL,
};

/// Set once [`detect`] has found Rampart.
static PRESENT: AtomicBool = AtomicBool::new(false);

/// A hypercall number the ABI will never assign: used to check that unknown numbers fail
/// cleanly with `NotSupported`.
pub const UNASSIGNED_NUMBER: u64 = 0xdead;

/// Proof that the Rampart hypervisor is present, so VMCALL exits to it instead of raising #UD.
/// Only [`detect`] makes one.
pub struct Rampart(());

/// CPUID.1:ECX bit 31: "hypervisor present", reserved as 0 on bare metal.
const CPUID_1_ECX_HYPERVISOR: u32 = 1 << 31;

/// Detects the hypervisor: the EBX, ECX, EDX of its vendor leaf (0x40000000), read only if
/// CPUID.1:ECX says one is present (on bare metal that leaf aliases the highest basic leaf),
/// and the hypercall handle if they are Rampart's signature (`hv` names the others).
pub fn detect() -> (Option<(u32, u32, u32)>, Option<Rampart>) {
    let vendor = (cpu::cpuid(1, 0).ecx & CPUID_1_ECX_HYPERVISOR != 0).then(|| {
        let vendor = cpu::cpuid(CPUID_LEAF_VENDOR, 0);
        (vendor.ebx, vendor.ecx, vendor.edx)
    });
    let is_rampart =
        vendor.is_some_and(|(ebx, ecx, edx)| rampart_hv_abi::is_rampart_signature(ebx, ecx, edx));
    let handle = is_rampart.then_some(Rampart(()));
    PRESENT.store(handle.is_some(), Ordering::SeqCst);
    (vendor, handle)
}

/// The hypercall handle, if [`detect`] found Rampart earlier.
pub fn rampart() -> Option<Rampart> {
    PRESENT.load(Ordering::SeqCst).then_some(Rampart(()))
}

/// VMCALL with RAX = `number`, RDI, RSI, RDX = `a`, `b`, `c` and R10 = 0, whether or not a
/// hypervisor is there (natively it raises #UD); returns RAX. Under Rampart the ABI preserves
/// every register but RAX. For the attacks, which send what no typed request would.
///
/// # Safety
/// Rampart must be present, or the caller must be a kernel thread that may die of #UD. Any guest
/// memory the call makes the hypervisor write must be the caller's to hand out, exclusively.
pub unsafe fn vmcall(number: u64, a: u64, b: u64, c: u64) -> i64 {
    let registers = Registers {
        rax: number,
        rdi: a,
        rsi: b,
        rdx: c,
        r10: 0,
    };
    // SAFETY: delegated to the caller.
    unsafe { vmcall_registers(registers) }
}

/// VMCALL with `registers`; returns RAX. The asm is not `nomem`: the compiler re-reads memory
/// after it.
///
/// # Safety
/// As [`vmcall`].
unsafe fn vmcall_registers(registers: Registers) -> i64 {
    let result: u64;
    // SAFETY: delegated to the caller (Rampart there or #UD survivable; memory written is the
    // caller's); the asm names every register the ABI changes (RAX).
    unsafe {
        asm!(
            "vmcall",
            inout("rax") registers.rax => result,
            in("rdi") registers.rdi, in("rsi") registers.rsi, in("rdx") registers.rdx,
            in("r10") registers.r10,
            options(nostack)
        )
    };
    result as i64
}

impl Rampart {
    /// Makes `request`, one that names no guest memory for the hypervisor to write (see the
    /// callers); returns RAX.
    fn request(&self, request: Request) -> i64 {
        // SAFETY: Rampart is present (this handle exists), so VMCALL exits to it; the request
        // makes it write no guest memory.
        unsafe { vmcall_registers(request.encode()) }
    }

    /// `Hypercall::Version`: the hypercall ABI version.
    pub fn version(&self) -> i64 {
        self.request(Request::Version {})
    }

    /// `Hypercall::LogExitStats`: the hypervisor prints its VM-exit counters.
    pub fn log_exit_stats(&self) -> i64 {
        self.request(Request::LogExitStats {})
    }

    /// `Hypercall::ExitCount` for the total: VM exits so far, not counting these queries.
    pub fn exit_count(&self) -> i64 {
        self.request(Request::ExitCount {
            reason: EXIT_COUNT_TOTAL,
        })
    }

    /// `Hypercall::ExitCycles`: TSC cycles spent in exit handlers so far.
    pub fn exit_cycles(&self) -> i64 {
        self.request(Request::ExitCycles {})
    }

    /// `Hypercall::GrantExecute`: the `length` bytes at guest-physical `gpa` become R-X in EPT
    /// if they equal the initrd's bytes at `initrd_offset`. Returns 0 or the error.
    pub fn grant_execute(&self, gpa: u64, length: u64, initrd_offset: u64) -> i64 {
        self.request(Request::GrantExecute {
            gpa,
            length,
            initrd_offset,
        })
    }

    /// `Hypercall::RevokeExecute`: granted pages at `gpa` return to RW- (before reuse).
    pub fn revoke_execute(&self, gpa: u64, length: u64) -> i64 {
        self.request(Request::RevokeExecute { gpa, length })
    }

    /// `Hypercall::ProtectRange`: the pages `[gpa, gpa + length)` keep only the `keep` rights
    /// (`rampart_hv_abi::Access` bits; a subset of the current ones). Returns 0 or the error.
    pub fn protect_range(&self, gpa: u64, length: u64, keep: u64) -> i64 {
        self.request(Request::ProtectRange { gpa, length, keep })
    }

    /// `Hypercall::LockSyscallMsrs`: STAR/LSTAR/CSTAR/SFMASK/SYSENTER_* keep their values.
    pub fn lock_syscall_msrs(&self) -> i64 {
        self.request(Request::LockSyscallMsrs {})
    }

    /// `Hypercall::LockDescriptorTables` with `flags`.
    pub fn lock_descriptor_tables(&self, flags: DescriptorLock) -> i64 {
        self.request(Request::LockDescriptorTables {
            flags: flags.bits(),
        })
    }

    /// `Hypercall::StartVcpu`: starts the vCPU with local APIC ID `apic_id` in 64-bit mode at
    /// `rip` with `rsp` and `cr3` (RDI = its APIC ID). Returns 0 or the error.
    ///
    /// # Safety
    /// `rip` must be code that runs without GDT, IDT or TR loaded until it has loaded its own
    /// (`arch::smp`'s AP entry), `rsp` the top of a stack nothing else uses, and `cr3` page
    /// tables mapping both (the kernel's).
    pub unsafe fn start_vcpu(&self, apic_id: u32, rip: u64, rsp: u64, cr3: u64) -> i64 {
        let apic_id = u64::from(apic_id);
        let request = Request::StartVcpu {
            apic_id,
            rip,
            rsp,
            cr3,
        };
        // SAFETY: Rampart is present (this handle exists); StartVcpu writes no guest memory,
        // and what the new vCPU runs is the caller's guarantee (above).
        unsafe { vmcall_registers(request.encode()) }
    }

    /// `Hypercall::LockKernelMappings`: the kernel half of every declared root becomes
    /// read-only in EPT except the page tables inside the stack window `[start, start +
    /// length)`; `roots` names each started CPU's roots (in the direct map: the heap). Returns
    /// 0 or the error (`NotSupported` under `pagetables = off`).
    pub fn lock_kernel_mappings(&self, start: u64, length: u64, roots: &[CpuRoots]) -> i64 {
        let virt = roots.as_ptr() as u64;
        let direct_map = layout::DIRECT_MAP_BASE..layout::KERNEL_STACKS_BASE;
        assert!(
            direct_map.contains(&virt),
            "roots table outside the direct map"
        );
        // The hypervisor only reads the table (`roots.len()` entries at its guest-physical
        // address: direct map).
        self.request(Request::LockKernelMappings {
            window_start: start,
            window_length: length,
            table: layout::virt_to_phys(virt),
            count: roots.len() as u64,
        })
    }

    /// `Hypercall::AuditCount`: audit records so far.
    #[cfg_attr(not(feature = "attacks"), allow(dead_code))]
    pub fn audit_count(&self) -> i64 {
        self.request(Request::AuditCount {})
    }

    /// `Hypercall::ReadAuditLog`: copies the records from sequence number `first` on into
    /// `buffer`; returns how many (or the error).
    #[cfg_attr(not(feature = "attacks"), allow(dead_code))]
    pub fn read_audit_log(&self, buffer: &mut [AuditRecord], first: u64) -> i64 {
        let virt = buffer.as_mut_ptr() as u64;
        let direct_map = layout::DIRECT_MAP_BASE..layout::KERNEL_STACKS_BASE;
        assert!(
            direct_map.contains(&virt),
            "audit buffer outside the direct map"
        );
        let request = Request::ReadAuditLog {
            buffer: layout::virt_to_phys(virt),
            capacity: buffer.len() as u64,
            first,
        };
        // SAFETY: Rampart is present (this handle exists). `buffer` is exclusively borrowed and
        // in the linear direct map (asserted), so `request.buffer` is its guest-physical
        // address; the hypervisor writes at most `buffer.len()` records (plain integers) there.
        unsafe { vmcall_registers(request.encode()) }
    }

    /// A request from `hypercall_checks::CASES`: every one names only addresses outside guest
    /// RAM or fails an argument check first, so the hypervisor writes no guest memory.
    pub fn call_rejected(&self, call: Hypercall, a: u64, b: u64, c: u64) -> i64 {
        // SAFETY: Rampart is present (this handle exists); the case's arguments make the
        // hypervisor write no guest memory (above).
        unsafe { vmcall(call as u64, a, b, c) }
    }

    /// A call with [`UNASSIGNED_NUMBER`]; the hypervisor must answer `NotSupported`.
    pub fn call_unassigned(&self) -> i64 {
        // SAFETY: Rampart is present (this handle exists); an unknown number does nothing.
        unsafe { vmcall(UNASSIGNED_NUMBER, 0, 0, 0) }
    }

    /// `Hypercall::Shutdown`: stops the virtual machine. Returns the error if it refuses.
    pub fn shutdown(self) -> i64 {
        self.request(Request::Shutdown {})
    }
}
