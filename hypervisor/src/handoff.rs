//! The firmware-to-hypervisor hand-off: everything the hypervisor needs, with no UEFI types.
//! A leaf: it names nothing else of the hypervisor, so the firmware and every floor can share it
//! (the types' behaviour lives with their users: `policy::layout`, `devices::ecam`).
#![forbid(unsafe_code)]

/// A page-aligned physical range `[start, start + length)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    pub start: u64,
    pub length: u64,
}

impl PhysRange {
    pub const fn new(start: u64, length: u64) -> Self {
        Self { start, length }
    }

    pub const fn end(&self) -> u64 {
        self.start + self.length
    }

    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// How many ranges the hypervisor keeps out of EPT: its reserved range, its EFI image, and the
/// default SMBASE area (see [`HandOff::smm_area`]).
pub const HYPERVISOR_RANGES: usize = 3;

/// Bytes of RAM the firmware reserves for the hypervisor (stacks, VMXON/VMCS regions, bitmaps,
/// host and EPT page tables). Allocated as one range aligned to [`RESERVED_ALIGN`].
pub const RESERVED_BYTES: u64 = 8 << 20;
/// Alignment of the reserved range (2 MiB, so EPT can leave it out with large pages).
pub const RESERVED_ALIGN: u64 = 2 << 20;

/// The guest's register state at its first instruction, per the entry contract
/// (rampart-boot-info). The firmware builds the boot GDT (with its TSS), the identity-mapping
/// page tables and the boot stack in guest RAM; the hypervisor loads them into the VMCS guest
/// state, and the native path loads them into the CPU.
#[derive(Clone, Copy, Debug)]
pub struct GuestEntry {
    pub rip: u64,
    pub rsp: u64,
    /// RDI at entry: guest-physical address of the BootInfo.
    pub boot_info: u64,
    pub cr3: u64,
    pub gdt_base: u64,
    pub gdt_limit: u16,
    pub tss_base: u64,
    pub tss_limit: u32,
}

/// What the firmware hands to [`crate::start`] after ExitBootServices.
#[derive(Clone, Copy, Debug)]
pub struct HandOff {
    /// The range reserved for the hypervisor ([`RESERVED_BYTES`] long). Absent from EPT.
    pub reserved: PhysRange,
    /// The loaded EFI image that contains the hypervisor's code and statics. Absent from EPT.
    pub image: PhysRange,
    /// Guest entry state; `guest.boot_info` locates the guest memory map used to build EPT.
    pub guest: GuestEntry,
    /// The kernel ELF's loaded segments (guest-physical) as measured by the firmware: the
    /// policy protects text and read-only data by them from the first guest instruction.
    pub kernel_segments: [Option<KernelSegment>; MAX_SEGMENTS],
    /// I/O port of the UART the hypervisor logs to (shared with the guest, lines prefixed).
    pub serial_port: u16,
    /// 1 = error .. 5 = trace.
    pub log_level: u8,
    /// Boot config `gdb = on`: wait for a debugger on COM2 before the guest's first instruction.
    pub gdb: bool,
    /// Boot config `pagetables = locked`: `LockKernelMappings` locks the kernel's page tables
    /// and turns on checked CR3 loads; `off` refuses it (no CR3 exits).
    pub lock_page_tables: bool,
    /// The platform's CPUs' local APIC IDs as the firmware found them, the boot CPU first.
    pub cpus: [Option<u32>; rampart_boot_info::MAX_CPUS],
    /// The default SMBASE area `[0x30000, 0x40000)` (SDM Vol. 3C 32.4: SMI handler entry at
    /// SMBASE + 0x8000, save state at SMBASE + 0xFE00), kept from the guest (empty if the
    /// firmware could not reserve it): where no SMM firmware relocated SMBASE, an SMI would
    /// run whatever the guest wrote there, outside VMX and EPT.
    pub smm_area: PhysRange,
    /// A 4 KiB page below 1 MiB for the APs' real-mode start-up code (0: none, boot CPU only).
    /// Guest RAM the guest has not run on yet: the hypervisor uses it before VMLAUNCH only.
    pub ap_trampoline: u64,
    /// The ACPI MCFG's ECAM windows (PCI Firmware 3.2 4.1.2), made read-only in EPT so that
    /// configuration writes go through the filtered 0xCF8/0xCFC (none: no MCFG found).
    pub mcfg: [Option<McfgEntry>; MAX_WINDOWS],
    /// The FADT's sleep-control registers in I/O space (PM1a and PM1b control, the
    /// hardware-reduced sleep control register): writes that set SLP_EN are refused.
    pub acpi_sleep: [Option<PortBlock>; ACPI_SLEEP_REGISTERS],
}

/// PM1a control, PM1b control, sleep control.
pub const ACPI_SLEEP_REGISTERS: usize = 3;
/// A PM1 control register is 2 bytes (ACPI 6.5 Table 4.16), the sleep control register 1.
pub const PM1_CONTROL_LENGTH: u16 = 2;
pub const SLEEP_CONTROL_LENGTH: u16 = 1;

/// What a kernel ELF segment holds, from its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// Executable: R-X in EPT, never writable (invariant 1).
    Text,
    /// Read-only data (the syscall table among it): R-- (invariant 2).
    ReadOnly,
    /// Writable data: RW-, never executable.
    Data,
}

/// One loaded segment of the kernel ELF (guest-physical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSegment {
    pub range: PhysRange,
    /// The ELF segment's linear address (p_vaddr): where the kernel maps `range`.
    pub vaddr: u64,
    pub kind: SegmentKind,
}

/// At most this many kernel segments are tracked.
pub const MAX_SEGMENTS: usize = 16;

/// MCFG entries the hand-off carries (real chipsets have one per PCI segment group, usually
/// one; QEMU q35 has one).
pub const MAX_WINDOWS: usize = 4;

/// One MCFG configuration-space base address allocation entry, as the firmware found it
/// (PCI Firmware 3.2 4.1.2, Table 4-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McfgEntry {
    /// The ECAM base address: where bus 0 of the segment group would be.
    pub base: u64,
    pub segment: u16,
    pub first_bus: u8,
    pub last_bus: u8,
}

/// A trapped block of I/O ports: first port and length.
pub type PortBlock = (u16, u16);
