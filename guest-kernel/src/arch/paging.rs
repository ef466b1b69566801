//! Loads the kernel's own page tables (`mm::kernel_map`: upper-half image and direct map) and
//! turns on the paging protections: EFER.NXE, CR0.WP, and CR4.SMEP/SMAP where CPUID.7 reports
//! them.

use super::cpu;
use crate::mm::kernel_map::{KernelImage, KernelPageTables, MapError, MapSummary};
use crate::mm::layout::KERNEL_VIRT_OFFSET;
use crate::mm::page_table;
use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use rampart_boot_info::MemoryRegion;

/// CPUID.80000001H:EDX bit 20: execute-disable supported.
const CPUID_EXT_EDX_NX: u32 = 1 << 20;
/// CPUID.(EAX=7,ECX=0):EBX bit 7: SMEP.
const CPUID_7_EBX_SMEP: u32 = 1 << 7;
/// CPUID.(EAX=7,ECX=0):EBX bit 20: SMAP.
const CPUID_7_EBX_SMAP: u32 = 1 << 20;

struct TablesCell(UnsafeCell<KernelPageTables>);
// SAFETY: written only by `init`, once (guarded by `LOADED`), before CR3 points at it; from then
// on only the CPU reads it.
unsafe impl Sync for TablesCell {}

static TABLES: TablesCell = TablesCell(UnsafeCell::new(KernelPageTables::new()));
static LOADED: AtomicBool = AtomicBool::new(false);

extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

/// The running kernel's segments, from the linker script's symbols.
pub fn kernel_image() -> KernelImage {
    KernelImage {
        text_start: (&raw const __text_start) as u64,
        text_end: (&raw const __text_end) as u64,
        rodata_end: (&raw const __rodata_end) as u64,
        data_end: (&raw const __kernel_end) as u64,
        virt_offset: KERNEL_VIRT_OFFSET,
        guard_pages: super::entry::stack_guard_pages(),
    }
}

/// The protection bits that ended up on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Protections {
    pub nxe: bool,
    pub wp: bool,
    pub smep: bool,
    pub smap: bool,
}

impl fmt::Display for Protections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.nxe, "EFER.NXE"),
            (self.wp, "CR0.WP"),
            (self.smep, "CR4.SMEP"),
            (self.smap, "CR4.SMAP"),
        ];
        let mut first = true;
        for (_, name) in names.iter().filter(|(on, _)| *on) {
            f.write_str(if first { "" } else { " " })?;
            f.write_str(name)?;
            first = false;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Builds the identity map for the RAM in `regions`, loads it, and enables the protections.
/// Panics if called twice.
pub fn init(regions: &[MemoryRegion]) -> Result<(MapSummary, Protections), MapError> {
    assert!(
        !LOADED.swap(true, Ordering::SeqCst),
        "page tables loaded twice"
    );
    let mut protections = Protections {
        nxe: enable_nxe(),
        ..Protections::default()
    };

    // SAFETY: first and only call (checked above): no other reference to TABLES exists, and the
    // CPU does not use them until the CR3 write below.
    let tables = unsafe { &mut *TABLES.0.get() };
    let image = kernel_image();
    let summary = tables.build(&image, regions, protections.nxe)?;
    check_kernel_mapping(tables, &image);
    // The identity map goes away: the BootInfo was copied before, and every later physical
    // access goes through the direct map.
    // SAFETY: the new tables (checked above) map the kernel image where it runs (text executable,
    // stack and statics writable) and RAM in the direct map; they are static, so outlive use.
    unsafe { cpu::write_cr3(kernel_root()) };

    protections.wp = true;
    let features = cpu::cpuid(7, 0).ebx;
    protections.smep = features & CPUID_7_EBX_SMEP != 0;
    protections.smap = features & CPUID_7_EBX_SMAP != 0;
    enable_write_protection(&protections);
    super::user_copy::set_smap(protections.smap);
    PROTECTIONS.call_once(|| protections);
    Ok((summary, protections))
}

/// The protections `init` turned on, for the other CPUs to copy.
static PROTECTIONS: spin::Once<Protections> = spin::Once::new();

/// On another CPU, after the boot CPU's [`init`]: loads the kernel's tables and turns on the
/// same protections (EFER.NXE, CR0.WP, CR4.SMEP/SMAP). Panics before `init`.
pub fn init_ap() {
    let protections = *PROTECTIONS.get().expect("boot CPU paging first");
    // SAFETY: the kernel tables are built and map everything the kernel uses at the addresses
    // it runs at (this CPU arrives on tables that share the kernel half); they are static.
    unsafe { load_root(kernel_root()) };
    if protections.nxe {
        enable_nxe();
    }
    enable_write_protection(&protections);
}

/// CR0.WP, and CR4.SMEP/SMAP as `protections` says, on this CPU (the boot CPU decides from
/// CPUID.7; every CPU of the machine has the same features).
fn enable_write_protection(protections: &Protections) {
    // SAFETY: CR0.WP only makes supervisor writes honour read-only pages; the only read-only
    // pages are kernel text and rodata, which the kernel never writes.
    unsafe { cpu::write_cr0(cpu::read_cr0() | cpu::CR0_WP) };
    let mut cr4 = cpu::read_cr4();
    if protections.smep {
        cr4 |= cpu::CR4_SMEP;
    }
    if protections.smap {
        cr4 |= cpu::CR4_SMAP;
    }
    // SAFETY: SMEP and SMAP are set only where CPUID.7 reports them, and the kernel's tables
    // hold no user page; user accesses go through `user_copy` (STAC/CLAC).
    unsafe { cpu::write_cr4(cr4) };
}

/// Page tables for the AP trampoline: the kernel half of every root, plus physical page `page`
/// identity-mapped (read, write, execute, supervisor) so the trampoline keeps running when it
/// turns paging on. Returns the root, or `None` without memory. Never freed (a few frames).
pub fn trampoline_root(page: u64) -> Option<u64> {
    use crate::mm::address_space;
    let mut frames = super::phys::Frames;
    let root = address_space::new_root(&mut frames, &kernel_pml4_entries())?;
    let flags = page_table::PRESENT | page_table::WRITABLE;
    address_space::map(&mut frames, root, page, page, flags).ok()?;
    Some(root)
}

/// Physical address of the kernel's PML4 (CR3 of the idle context).
pub fn kernel_root() -> u64 {
    TABLES.0.get() as u64 - KERNEL_VIRT_OFFSET
}

/// The kernel PML4's entries; the upper half is copied into every process's root.
pub fn kernel_pml4_entries() -> [u64; crate::mm::page_table::ENTRIES] {
    assert!(LOADED.load(Ordering::SeqCst));
    // SAFETY: built once by `init` (checked loaded); later changes are only to lower-level
    // tables, never to the PML4 itself, so reading it races with nothing.
    unsafe { (*TABLES.0.get()).pml4().0 }
}

/// Loads `root` into CR3.
///
/// # Safety
/// `root` must be the kernel root or a process root made by `mm::address_space::new_root`
/// (sharing the kernel's upper half), alive until CR3 changes again.
pub unsafe fn load_root(root: u64) {
    if cpu::read_cr3() & page_table::ADDRESS_MASK != root {
        // SAFETY: delegated to the caller: the kernel half is the same in every root.
        unsafe { cpu::write_cr3(root) };
    }
}

/// Checks the built tables before CR3 points at them: a mistake here would otherwise be a
/// triple fault with no output.
fn check_kernel_mapping(tables: &KernelPageTables, image: &KernelImage) {
    let text = tables
        .leaf(image.text_start, image.virt_offset)
        .unwrap_or(0);
    assert!(
        text & page_table::PRESENT != 0
            && text & page_table::NO_EXECUTE == 0
            && page_table::entry_address(text) == image.text_start - image.virt_offset,
        "kernel text not mapped executable: {text:#x}"
    );
    let data = tables
        .leaf(image.data_end - page_table::PAGE_SIZE, image.virt_offset)
        .unwrap_or(0);
    assert!(
        data & page_table::WRITABLE != 0,
        "kernel data not mapped writable: {data:#x}"
    );
}

/// Sets EFER.NXE if the CPU has NX (the entry contract says it is on already). Returns whether
/// it is on.
fn enable_nxe() -> bool {
    if cpu::cpuid(0x8000_0000, 0).eax < 0x8000_0001
        || cpu::cpuid(0x8000_0001, 0).edx & CPUID_EXT_EDX_NX == 0
    {
        return false;
    }
    // SAFETY: IA32_EFER exists on every CPU with long mode, which we are running in.
    let efer = unsafe { cpu::rdmsr(cpu::IA32_EFER) };
    if efer & cpu::EFER_NXE == 0 {
        // SAFETY: NX is supported (checked above); setting NXE only gives page-table bit 63 its
        // meaning, and the current tables have it clear (it was reserved until now).
        unsafe { cpu::wrmsr(cpu::IA32_EFER, efer | cpu::EFER_NXE) };
    }
    true
}
