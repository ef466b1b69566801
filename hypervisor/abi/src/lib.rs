//! The guest-visible interface of the Rampart hypervisor, shared with the guest kernel.
//!
//! Detection: CPUID.1:ECX bit 31 ("hypervisor present") is set, and CPUID leaf
//! [`CPUID_LEAF_VENDOR`] returns the highest hypervisor leaf in EAX and [`CPUID_SIGNATURE`] in
//! EBX, ECX, EDX (12 ASCII bytes, like the CPU vendor string).
//!
//! Hypercalls: `VMCALL` from CPL0 with RAX = a [`Hypercall`] number and arguments in RDI, RSI,
//! RDX, R10. The result comes back in RAX: a non-negative value on success, a negative
//! [`HypercallError`] on failure. Other registers are preserved. VMCALL from CPL3 raises #UD in
//! the guest.
#![no_std]
#![forbid(unsafe_code)]

mod request;

pub use num_enum::{TryFromPrimitive, TryFromPrimitiveError};
pub use request::{decode_result, encode_result, HypercallResult, Registers, Request};

/// First hypervisor CPUID leaf (the range 0x40000000-0x400000FF is reserved for hypervisors).
pub const CPUID_LEAF_VENDOR: u32 = 0x4000_0000;
/// Leaf returning the hypercall ABI version in EAX and the feature bits in EBX.
pub const CPUID_LEAF_FEATURES: u32 = 0x4000_0001;
/// The vendor signature in EBX:ECX:EDX of leaf [`CPUID_LEAF_VENDOR`].
pub const CPUID_SIGNATURE: [u8; 12] = *b"RampartVMXhv";

/// Hypercall ABI version: major in bits 31:16, minor in bits 15:0.
pub const ABI_VERSION: u32 = 0x0002_0000;

/// `ExitCount` argument selecting the total over all reasons.
pub const EXIT_COUNT_TOTAL: u64 = u64::MAX;
/// Basic exit reason of VMCALL (SDM Vol. 3D Appendix C), for `ExitCount`.
pub const EXIT_REASON_VMCALL: u64 = 18;

/// Hypercall numbers (RAX at VMCALL); `Hypercall::try_from(rax)` decodes one.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, TryFromPrimitive)]
pub enum Hypercall {
    /// Returns [`ABI_VERSION`].
    Version = 0,
    /// Prints the VM-exit counters by reason on the hypervisor's log. Returns 0.
    LogExitStats = 1,
    /// Stops the virtual machine cleanly (prints the exit counters first). Does not return.
    Shutdown = 2,
    /// Returns the number of VM exits so far, not counting `ExitCount`/`ExitCycles` hypercalls, so
    /// that two reads bracket exactly the exits caused in between. RDI = a basic exit reason (SDM
    /// Vol. 3D Appendix C) for that reason's count, or `u64::MAX` for the total.
    ExitCount = 3,
    /// Adds protection to guest-physical pages: RDI = GPA, RSI = length (both 4 KiB aligned),
    /// RDX = the [`Access`] rights to keep (`Access::RWX` bits only; a subset of the current
    /// ones: only removes rights). Asking for a right the range does not have is `Denied` and
    /// audited.
    ProtectRange = 4,
    /// Makes pages executable and no longer writable: RDI = GPA, RSI = length (4 KiB aligned),
    /// RDX = offset in the initrd module. The pages must hold exactly the initrd's bytes at that
    /// offset (the measured program text), else `Denied` and audited.
    GrantExecute = 5,
    /// Returns granted pages to read/write, no execute: RDI = GPA, RSI = length. Only pages
    /// granted by `GrantExecute` qualify (never kernel text): else `Denied` and audited.
    RevokeExecute = 6,
    /// Locks the SYSCALL/SYSENTER MSRs (STAR, LSTAR, CSTAR, SFMASK, SYSENTER_CS/ESP/EIP) at
    /// their current values: later writes raise #GP in the guest and are audited. One-way.
    LockSyscallMsrs = 7,
    /// Copies audit records into guest memory: RDI = GPA of a buffer, RSI = its capacity in
    /// records, RDX = the first sequence number wanted. Returns the number of records written.
    ReadAuditLog = 8,
    /// Returns the number of audit records so far.
    AuditCount = 9,
    /// Returns the TSC cycles the hypervisor has spent handling VM exits so far (from exit
    /// dispatch to resume, so the hardware's own entry/exit transitions are not included).
    /// Like `ExitCount`, these queries are left out of `ExitCount`'s answers.
    ExitCycles = 10,
    /// Locks the descriptor tables: from now on LGDT, LIDT, LLDT and LTR raise #GP in the guest
    /// and are audited, and the pages of the current GDT and IDT become read-only in EPT (RDI =
    /// [`DescriptorLock`] flags: with `TSS`, the TSS's pages too). One-way. `NotSupported` where
    /// the CPU lacks descriptor-table exiting.
    LockDescriptorTables = 11,
    /// Starts a virtual CPU on one of the CPUs the BootInfo lists (each waits in VMX root until
    /// then): RDI = its local APIC ID, RSI = RIP (must lie in the measured kernel text), RDX =
    /// RSP, R10 = CR3 (4 KiB aligned, in guest RAM). The vCPU starts under the boot CPU's entry
    /// contract (64-bit mode, CPL0, RFLAGS.IF=0, CR0/CR4/EFER as the boot CPU had them at entry,
    /// flat code selector 0x08 and data 0x10, a placeholder TSS at selector 0x18, GDTR and IDTR
    /// empty: its first instructions must load its own GDT, IDT and TR) with RDI = its APIC ID.
    /// It shares the EPT and every lock with the other vCPUs. Returns 0 once the vCPU has been
    /// handed its state; `OutOfRange` for an unknown APIC ID, a RIP outside kernel text or a
    /// CR3 outside RAM, `Denied` for a vCPU already started (or the caller itself), and for
    /// any start after `LockDescriptorTables` (start every vCPU before locking).
    StartVcpu = 12,
    /// Locks the kernel half of every root the guest will ever run on (boot policy `pagetables
    /// = locked`; under `pagetables = off` it returns `NotSupported` and nothing below
    /// applies). Call it once, after `LockDescriptorTables` and `LockSyscallMsrs` (else
    /// `InvalidArgument`), with every vCPU started and running on one of its declared roots.
    ///
    /// RDI = start of the stack window (linear, 2 MiB aligned), RSI = its length (a multiple
    /// of 2 MiB, 0 for none; it may not contain a protected range), RDX = guest-physical
    /// address (8-byte aligned) of a table of [`CpuRoots`] entries, R10 = their number: one per
    /// started vCPU, naming its roots for the rest of the run (per-CPU roots, as in Xen's
    /// XPTI: a process switch rewrites tables below the root instead of loading another one).
    /// Every root must be a distinct 4 KiB frame of guest RAM outside the kernel image, the
    /// initrd and the hypervisor; the kernel-mode roots must share one kernel half (PML4
    /// entries 256-511), the user-mode roots (KPTI) another.
    ///
    /// The hypervisor copies the table, walks the kernel half of every root and makes every
    /// paging-structure page it reaches read-only in EPT, the roots included, except the page
    /// tables (level 1) wholly inside the stack window, which stay writable so kernel stacks
    /// can be mapped there; it sets the accessed bit of every present entry and the dirty bit
    /// of every writable leaf in the locked pages (the CPU would otherwise write them). The
    /// roots' lower-half entries are then fixed: none may map a large page or point at a
    /// locked page (`Denied`); the tables they point at stay the guest's to write. It records
    /// the translations of kernel text, rodata, the locked GDT and IDT and the page LSTAR
    /// points into (they must match the measured image from every root, else `Denied`), and
    /// from then on checks every MOV to CR3: a vCPU may load its own roots only (any PCID;
    /// #GP and audit `cr3-load` otherwise). The declared CR3 values, with and without bit 63,
    /// are that vCPU's CR3-target values (as many as the CPU offers), so loading them costs
    /// no exit. One-way. A refused lock may leave some of the walked pages read-only (rights
    /// are never given back); the kernel should treat any error as fatal.
    LockKernelMappings = 13,
}

/// Bit 63 of a CR3 value under CR4.PCIDE: do not flush the PCID's TLB entries (SDM Vol. 3A
/// 4.10.4.1).
pub const CR3_NO_FLUSH: u64 = 1 << 63;

/// One entry of `LockKernelMappings`' table: a vCPU (by local APIC ID) and the CR3 values of
/// its roots. Three little-endian u64 words in guest memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuRoots {
    pub apic_id: u64,
    /// Kernel-mode root (CR3 value: bits 51:12 the root, 11:0 a PCID or flags).
    pub kernel_cr3: u64,
    /// User-mode root under KPTI, or 0.
    pub user_cr3: u64,
}

impl CpuRoots {
    /// Bytes per entry.
    pub const SIZE: u64 = 24;
}

bitflags::bitflags! {
    /// The flags argument of [`Hypercall::LockDescriptorTables`] (RDI); other bits are
    /// `InvalidArgument`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DescriptorLock: u64 {
        /// Also make the TSS read-only (only for kernels whose TSS never changes after boot,
        /// i.e. that do not switch RSP0 per thread).
        const TSS = 1 << 0;
    }
}

bitflags::bitflags! {
    /// Access rights of guest-physical pages ([`Hypercall::ProtectRange`]) and the kind of an
    /// audited attempt ([`AuditRecord::access`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Access: u32 {
        const READ = 1 << 0;
        const WRITE = 1 << 1;
        const EXECUTE = 1 << 2;
        /// Audit records only: a register write (CR, MSR, descriptor-table register).
        const REGISTER = 1 << 3;
        /// Audit records only: a policy hypercall asking for the R/W/X bits also set.
        const HYPERCALL = 1 << 4;
        /// Audit records only: a write by the attached debugger (allowed, recorded).
        const DEBUGGER = 1 << 5;
        /// The page rights a hypercall may name.
        const RWX = Self::READ.bits() | Self::WRITE.bits() | Self::EXECUTE.bits();
    }
}

/// Which protection blocked an attempt (an [`AuditRecord`]'s `rule`; `Rule::try_from(u32)`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, TryFromPrimitive)]
pub enum Rule {
    /// Kernel text is never writable (hypervisor/DESIGN.md invariant 1).
    KernelText = 1,
    /// Kernel read-only data is never writable (invariant 2).
    KernelReadOnly = 2,
    /// Execute on a page that was never granted execute (W^X, invariant 3).
    NotExecutable = 3,
    /// Write to a page that is executable (W^X, invariant 3).
    ExecutableNotWritable = 4,
    /// Hypervisor memory is not reachable (invariant 4).
    HypervisorMemory = 5,
    /// A pinned CR0/CR4 bit would be cleared (invariant 5).
    PinnedControlRegister = 6,
    /// A pinned EFER bit would be cleared (invariant 5).
    PinnedEfer = 7,
    /// A locked SYSCALL/SYSENTER MSR would change (invariant 6).
    LockedMsr = 8,
    /// A hypercall asked to weaken a protection (invariant 7).
    HypercallDenied = 9,
    /// Execute grant for content that is not measured program text.
    UnmeasuredCode = 10,
    /// The measured initrd is read-only.
    MeasuredModule = 11,
    /// A range protected by `ProtectRange`.
    ProtectedRange = 12,
    /// LGDT/LIDT/LLDT/LTR after `LockDescriptorTables` (invariant 6).
    LockedDescriptorTable = 13,
    /// Not a block: the debugger wrote to a page the guest may not write (allowed, recorded).
    DebuggerWrite = 14,
    /// An interprocessor interrupt the guest may not send: INIT, SIPI, SMI, or a destination
    /// that is not one of its CPUs. The ICR write is dropped; `detail` holds the ICR value.
    IpiDelivery = 15,
    /// A write to an MSR the hypervisor has not vetted for the guest (MSRs are default-deny).
    Msr = 16,
    /// Device DMA the hypervisor has not vetted: PCI bus mastering (through 0xCF8/0xCFC, or a
    /// write to a Command register in the read-only PCI ECAM window), the ISA DMA controllers.
    Dma = 17,
    /// A PCI BAR moved over RAM, the hypervisor or the platform's interrupt controllers, or any
    /// other configuration write to the read-only PCI ECAM window.
    DeviceBar = 18,
    /// An SMI source the guest may not use (APM control port).
    Smi = 19,
    /// Not a block: `ReadAuditLog` asked for records the full ring has overwritten; this
    /// record stands for them (`sequence` = the first lost, `detail` = how many).
    RecordsDropped = 20,
    /// A write to a platform interrupt source the guest may not program (IOAPIC redirection
    /// entries and HPET FSB delivery can send SMI, INIT or NMI).
    PlatformDevice = 21,
    /// A write to a locked paging-structure page or root table, or a `LockKernelMappings`
    /// whose roots would break a locked translation (`pagetables = locked`).
    PageTable = 22,
    /// A MOV to CR3 of a table that is not one of the vCPU's own declared roots (`pagetables =
    /// locked`); the guest gets #GP, `detail` holds the value.
    Cr3Load = 23,
    /// An I/O access that spans a mediated port and another port, or crosses the PCI
    /// configuration data dword (0xCFC-0xCFF): the platform's answer is not defined, so the
    /// write is dropped rather than reshaped. `detail` = port << 32 | size << 24 | low 24 bits
    /// of the value.
    PortAccess = 24,
    /// An ACPI sleep-state request (SLP_EN in a PM1 control register or the sleep control
    /// register) the hypervisor cannot resume into itself: dropped; `detail` = port << 32 | value.
    SleepState = 25,
}

impl Rule {
    /// Short name for logs and tables.
    pub fn name(self) -> &'static str {
        use Rule::*;
        match self {
            KernelText => "kernel-text",
            KernelReadOnly => "kernel-rodata",
            NotExecutable => "w^x-no-exec",
            ExecutableNotWritable => "w^x-no-write",
            HypervisorMemory => "hypervisor-memory",
            PinnedControlRegister => "pinned-cr",
            PinnedEfer => "pinned-efer",
            LockedMsr => "locked-msr",
            HypercallDenied => "hypercall-denied",
            UnmeasuredCode => "unmeasured-code",
            MeasuredModule => "measured-module",
            ProtectedRange => "protected-range",
            LockedDescriptorTable => "locked-descriptor-table",
            DebuggerWrite => "debugger-write",
            IpiDelivery => "ipi-delivery",
            Msr => "msr",
            Dma => "dma",
            DeviceBar => "device-bar",
            Smi => "smi",
            RecordsDropped => "records-dropped",
            PlatformDevice => "platform-device",
            PageTable => "page-table",
            Cr3Load => "cr3-load",
            PortAccess => "port-access",
            SleepState => "sleep-state",
        }
    }
}

/// One blocked attempt, as [`Hypercall::ReadAuditLog`] copies it out.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AuditRecord {
    /// 0, 1, 2, ... in the order the attempts happened.
    pub sequence: u64,
    /// Time stamp counter at the attempt.
    pub tsc: u64,
    /// Guest RIP of the attempt.
    pub rip: u64,
    /// Guest-linear address involved (0 if none).
    pub gva: u64,
    /// Guest-physical address involved (0 if none).
    pub gpa: u64,
    /// Register number (CR or MSR) or other detail of a register attempt.
    pub detail: u64,
    /// The [`Access`] bits of the attempt (`Access::from_bits_retain`).
    pub access: u32,
    /// A [`Rule`] as u32.
    pub rule: u32,
    /// Virtual CPU number.
    pub vcpu: u32,
    pub _reserved: u32,
}

const _: () = assert!(core::mem::size_of::<AuditRecord>() == 64);

/// Negative results of a hypercall (RAX as i64; `HypercallError::try_from(i64)`).
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, TryFromPrimitive)]
pub enum HypercallError {
    /// Unknown hypercall number.
    NotSupported = -1,
    /// An argument is malformed (bad alignment, bad flag bits).
    InvalidArgument = -2,
    /// A range lies outside guest RAM or overlaps memory the guest may not name.
    OutOfRange = -3,
    /// The request would weaken a protection that is already locked.
    Denied = -4,
    /// The request is valid but cannot be done now (an address space still loaded on a vCPU);
    /// retry later.
    Busy = -5,
}

/// Splits [`CPUID_SIGNATURE`] into the (EBX, ECX, EDX) values of leaf [`CPUID_LEAF_VENDOR`].
pub const fn signature_registers() -> (u32, u32, u32) {
    let s = CPUID_SIGNATURE;
    (
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
        u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
    )
}

/// True if (EBX, ECX, EDX) of leaf [`CPUID_LEAF_VENDOR`] carry the Rampart signature.
pub fn is_rampart_signature(ebx: u32, ecx: u32, edx: u32) -> bool {
    (ebx, ecx, edx) == signature_registers()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_through_registers() {
        let (ebx, ecx, edx) = signature_registers();
        assert!(is_rampart_signature(ebx, ecx, edx));
        assert!(!is_rampart_signature(ebx, edx, ecx));
    }

    #[test]
    fn unknown_hypercall_numbers_are_rejected() {
        assert_eq!(Hypercall::try_from(0).ok(), Some(Hypercall::Version));
        assert_eq!(Hypercall::try_from(3).ok(), Some(Hypercall::ExitCount));
        assert_eq!(Hypercall::try_from(9).ok(), Some(Hypercall::AuditCount));
        assert_eq!(Hypercall::try_from(10).ok(), Some(Hypercall::ExitCycles));
        assert_eq!(
            Hypercall::try_from(11).ok(),
            Some(Hypercall::LockDescriptorTables)
        );
        assert_eq!(Hypercall::try_from(12).ok(), Some(Hypercall::StartVcpu));
        assert_eq!(
            Hypercall::try_from(13).ok(),
            Some(Hypercall::LockKernelMappings)
        );
        // 14-16 were the address-space registry (ABI 1.0), gone with per-CPU roots.
        for gone in 14..=17 {
            assert_eq!(Hypercall::try_from(gone).ok(), None);
        }
        assert_eq!(Hypercall::try_from(u64::MAX).ok(), None);
    }

    #[test]
    fn errors_are_negative() {
        for e in [
            HypercallError::NotSupported,
            HypercallError::InvalidArgument,
            HypercallError::OutOfRange,
            HypercallError::Denied,
            HypercallError::Busy,
        ] {
            assert!((e as i64) < 0);
            assert_eq!(HypercallError::try_from(e as i64).ok(), Some(e));
        }
    }
}
