//! The guest entry contract shared by the firmware (producer) and the guest kernel (consumer).
//!
//! At entry, in both hv and native mode, the guest kernel runs in 64-bit mode at CPL0 with
//! paging on, an identity map covering all guest RAM, CR0.WP=1, EFER.NXE=1, RFLAGS.IF=0, a flat
//! 64-bit GDT (see [`GDT_SELECTOR_CODE`]), RSP on a boot stack in guest RAM, and RDI holding the
//! guest-physical address of a [`BootInfo`]. Every address in this block is guest-physical and
//! identity-mapped, so the kernel may read it directly before it replaces the page tables.
//!
//! The kernel ELF may be linked at virtual addresses other than its physical ones (Rampart's
//! kernel runs in the upper half at `0xFFFF_FFFF_8000_0000 + physical`): besides the identity
//! map, the boot page tables then map every page of each PT_LOAD segment at its `p_vaddr`
//! (4 KiB pages, present + writable), and RIP is the virtual `e_entry`. Such virtual ranges must
//! not overlap the identity map (below 4 GiB or the top of RAM). A kernel linked at its physical
//! addresses sees no difference.
//!
//! Everything here is `repr(C)` plain data: no pointers, only physical addresses and counts, so
//! the layout does not depend on which Rust target built either side.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

pub mod initrd;

pub mod descriptors;

/// `BootInfo::magic`: the ASCII bytes "RAMPBOOT" read as a little-endian u64.
pub const BOOT_INFO_MAGIC: u64 = u64::from_le_bytes(*b"RAMPBOOT");
/// Bumped whenever the layout of anything in this crate changes.
pub const BOOT_INFO_VERSION: u32 = 2;

/// Selector of the flat 64-bit code segment in the boot GDT.
pub const GDT_SELECTOR_CODE: u16 = 0x08;
/// Selector of the flat data segment in the boot GDT (DS, ES, SS, FS, GS).
pub const GDT_SELECTOR_DATA: u16 = 0x10;
/// Selector of the 64-bit TSS in the boot GDT (required for VM entry; SDM Vol. 3C 27.3.1.2).
pub const GDT_SELECTOR_TSS: u16 = 0x18;

/// Maximum number of entries in [`BootInfo::memory_map`].
pub const MAX_MEMORY_REGIONS: usize = 256;
/// Maximum number of boot modules.
pub const MAX_MODULES: usize = 8;
/// Maximum length of the kernel command line in bytes.
pub const MAX_COMMAND_LINE: usize = 256;
/// Length of a module name in bytes (NUL padded).
pub const MODULE_NAME_LEN: usize = 32;
/// Maximum number of CPUs in [`BootInfo::apic_ids`].
pub const MAX_CPUS: usize = 16;

/// What a physical range holds, from the guest kernel's point of view.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemoryKind {
    /// Free RAM the kernel may use for anything.
    Usable = 1,
    /// Firmware-reserved or otherwise unusable; do not touch.
    Reserved = 2,
    /// ACPI tables; usable once the kernel has parsed them.
    AcpiReclaimable = 3,
    /// ACPI non-volatile storage; never usable.
    AcpiNvs = 4,
    /// Memory-mapped I/O described by the firmware.
    Mmio = 5,
    /// The loaded segments of the guest kernel ELF.
    KernelImage = 6,
    /// A boot module (for example the initrd).
    BootModule = 7,
    /// This BootInfo, the boot GDT/TSS, boot page tables and boot stack: reclaimable once the
    /// kernel runs on its own structures.
    BootReclaimable = 8,
    /// UEFI runtime services code and data; keep if runtime services are to be used.
    FirmwareRuntime = 9,
}

impl MemoryKind {
    /// Decodes a raw kind; `None` for values this version does not know.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::Usable,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Mmio,
            6 => Self::KernelImage,
            7 => Self::BootModule,
            8 => Self::BootReclaimable,
            9 => Self::FirmwareRuntime,
            _ => return None,
        })
    }

    /// True for RAM (any kind the guest may cache write-back), false for MMIO.
    pub fn is_ram(self) -> bool {
        !matches!(self, Self::Mmio)
    }
}

/// One physical range, page aligned, sorted by `start`, never overlapping another.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub start: u64,
    pub length: u64,
    /// A [`MemoryKind`] as u32.
    pub kind: u32,
    pub _reserved: u32,
}

impl MemoryRegion {
    pub const EMPTY: Self = Self {
        start: 0,
        length: 0,
        kind: 0,
        _reserved: 0,
    };

    pub fn new(start: u64, length: u64, kind: MemoryKind) -> Self {
        Self {
            start,
            length,
            kind: kind as u32,
            _reserved: 0,
        }
    }

    pub fn end(&self) -> u64 {
        self.start + self.length
    }

    pub fn kind(&self) -> Option<MemoryKind> {
        MemoryKind::from_raw(self.kind)
    }
}

/// A file loaded by the firmware into guest RAM (the initrd, for example), with its SHA-256.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    pub start: u64,
    pub length: u64,
    pub sha256: [u8; 32],
    /// NUL-padded UTF-8 name, for example `initrd`.
    pub name: [u8; MODULE_NAME_LEN],
}

impl Module {
    pub const EMPTY: Self = Self {
        start: 0,
        length: 0,
        sha256: [0; 32],
        name: [0; MODULE_NAME_LEN],
    };

    /// The name without its NUL padding (empty if it is not valid UTF-8).
    pub fn name(&self) -> &str {
        let len = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MODULE_NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("")
    }
}

/// Boot mode chosen in the boot config.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMode {
    /// The guest kernel runs without a hypervisor (the performance baseline).
    Native = 0,
    /// The guest kernel runs in VMX non-root under the Rampart hypervisor.
    Hypervisor = 1,
}

/// The block RDI points to at guest entry.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// [`BOOT_INFO_MAGIC`].
    pub magic: u64,
    /// [`BOOT_INFO_VERSION`].
    pub version: u32,
    /// The mode the firmware booted in ([`BootMode`] as u32). The kernel still detects the
    /// hypervisor itself (CPUID leaf 0x40000000); this is for reporting.
    pub boot_mode: u32,
    /// Guest-physical address of the ACPI RSDP (0 if the firmware found none).
    pub acpi_rsdp: u64,
    /// I/O port of the console UART (COM1 = 0x3f8).
    pub serial_port: u16,
    /// Log level from the boot config: 1 = error .. 5 = trace.
    pub log_level: u8,
    pub _pad: [u8; 5],
    /// SHA-256 of the kernel ELF file as loaded.
    pub kernel_sha256: [u8; 32],
    /// Guest-physical range of the kernel image (lowest to highest loaded segment).
    pub kernel_start: u64,
    pub kernel_end: u64,
    pub memory_region_count: u64,
    pub memory_map: [MemoryRegion; MAX_MEMORY_REGIONS],
    pub module_count: u64,
    pub modules: [Module; MAX_MODULES],
    pub command_line_len: u64,
    pub command_line: [u8; MAX_COMMAND_LINE],
    /// The CPUs the kernel may run on: `cpu_count` local APIC IDs, the boot CPU first. Natively,
    /// every CPU the firmware found (parked by the firmware; the kernel wakes them with
    /// INIT-SIPI-SIPI through [`BootInfo::ap_trampoline`]). Under Rampart, the CPUs the
    /// hypervisor brought up: each waits in VMX root for the `StartVcpu` hypercall, and the guest
    /// cannot send INIT or SIPI.
    pub cpu_count: u32,
    pub _pad2: u32,
    pub apic_ids: [u32; MAX_CPUS],
    /// Natively: physical address of a 4 KiB page below 1 MiB, reserved (memory kind
    /// `Reserved`) for the kernel's real-mode AP start-up code. 0 under Rampart.
    pub ap_trampoline: u64,
}

impl BootInfo {
    /// An empty, valid BootInfo (no regions, no modules).
    pub const fn empty() -> Self {
        Self {
            magic: BOOT_INFO_MAGIC,
            version: BOOT_INFO_VERSION,
            boot_mode: BootMode::Native as u32,
            acpi_rsdp: 0,
            serial_port: 0x3f8,
            log_level: 3,
            _pad: [0; 5],
            kernel_sha256: [0; 32],
            kernel_start: 0,
            kernel_end: 0,
            memory_region_count: 0,
            memory_map: [MemoryRegion::EMPTY; MAX_MEMORY_REGIONS],
            module_count: 0,
            modules: [Module::EMPTY; MAX_MODULES],
            command_line_len: 0,
            command_line: [0; MAX_COMMAND_LINE],
            cpu_count: 0,
            _pad2: 0,
            apic_ids: [0; MAX_CPUS],
            ap_trampoline: 0,
        }
    }

    /// True if magic and version match what this crate describes.
    pub fn is_valid(&self) -> bool {
        self.magic == BOOT_INFO_MAGIC && self.version == BOOT_INFO_VERSION
    }

    /// The used part of the memory map (clamped to the array, whatever the count says).
    pub fn memory_regions(&self) -> &[MemoryRegion] {
        let count = (self.memory_region_count as usize).min(MAX_MEMORY_REGIONS);
        &self.memory_map[..count]
    }

    /// The used part of the module table (clamped to the array).
    pub fn modules(&self) -> &[Module] {
        let count = (self.module_count as usize).min(MAX_MODULES);
        &self.modules[..count]
    }

    /// The command line (empty if it is not valid UTF-8).
    pub fn command_line(&self) -> &str {
        let len = (self.command_line_len as usize).min(MAX_COMMAND_LINE);
        core::str::from_utf8(&self.command_line[..len]).unwrap_or("")
    }

    /// The APIC IDs of the CPUs the kernel may use, the boot CPU first (clamped to the array).
    pub fn cpus(&self) -> &[u32] {
        let count = (self.cpu_count as usize).min(MAX_CPUS);
        &self.apic_ids[..count]
    }

    /// The mode the firmware booted in.
    pub fn boot_mode(&self) -> BootMode {
        if self.boot_mode == BootMode::Hypervisor as u32 {
            BootMode::Hypervisor
        } else {
            BootMode::Native
        }
    }
}

/// APIC IDs separated by spaces, for log lines.
pub struct ApicIds<'a>(pub &'a [u32]);

impl core::fmt::Display for ApicIds<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

// The layout is an ABI between separately built images: keep it fixed.
const _: () = assert!(core::mem::size_of::<MemoryRegion>() == 24);
const _: () = assert!(core::mem::size_of::<Module>() == 80);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_spells_rampboot() {
        assert_eq!(&BOOT_INFO_MAGIC.to_le_bytes(), b"RAMPBOOT");
    }

    #[test]
    fn accessors_clamp_corrupt_counts() {
        let mut info = BootInfo::empty();
        info.memory_region_count = u64::MAX;
        info.module_count = 1000;
        info.command_line_len = 9999;
        info.cpu_count = u32::MAX;
        assert_eq!(info.cpus().len(), MAX_CPUS);
        assert_eq!(info.memory_regions().len(), MAX_MEMORY_REGIONS);
        assert_eq!(info.modules().len(), MAX_MODULES);
        assert_eq!(info.command_line().len(), MAX_COMMAND_LINE);
    }

    #[test]
    fn memory_kind_round_trips() {
        for raw in 1..=9 {
            assert_eq!(MemoryKind::from_raw(raw).map(|k| k as u32), Some(raw));
        }
        assert_eq!(MemoryKind::from_raw(0), None);
        assert_eq!(MemoryKind::from_raw(10), None);
    }

    #[test]
    fn apic_ids_read_as_a_list() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(ApicIds(&[0, 1, 6]).to_string(), "0 1 6");
        assert_eq!(ApicIds(&[]).to_string(), "");
    }

    #[test]
    fn module_name_strips_padding() {
        let mut module = Module::EMPTY;
        module.name[..6].copy_from_slice(b"initrd");
        assert_eq!(module.name(), "initrd");
    }
}
