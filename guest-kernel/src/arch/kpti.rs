//! KPTI, the hardware side: the entry stacks, the template's tables, CR4.PCIDE. The pure part
//! (template layout, PCIDs) is `mm::kpti` and `mm::pcid`; each CPU's user-mode root is
//! `arch::cpu_roots`'; the entry stubs that switch CR3 are `arch::syscall_entry`,
//! `arch::interrupts` and `arch::switch`.

use super::{cpu, gdt, idt, paging, percpu};
use crate::mm::kpti::{self as template, EntryRange, TemplateError, TemplateTables};
use crate::mm::layout::KERNEL_VIRT_OFFSET;
use crate::mm::page_table::{Access, ADDRESS_MASK, ENTRIES, NO_EXECUTE, PRESENT};
use crate::mm::pcid::NO_FLUSH;
use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use rampart_boot_info::MAX_CPUS;

/// CPUID.01H:ECX bit 17: PCIDs (SDM Vol. 2A, CPUID, Table 3-10).
const CPUID_1_ECX_PCID: u32 = 1 << 17;
/// CPUID.(EAX=7,ECX=0):EBX bit 10: INVPCID.
const CPUID_7_EBX_INVPCID: u32 = 1 << 10;
/// CR4 bit 17: PCIDE (SDM Vol. 3A 2.5 "Control Registers").
const CR4_PCIDE: u64 = 1 << 17;
/// CR4 bit 7: PGE; changing it invalidates all TLB entries of all PCIDs (SDM Vol. 3A 4.10.4.1).
const CR4_PGE: u64 = 1 << 7;
/// INVPCID type 2: all contexts, global translations included (SDM Vol. 2A, INVPCID).
const INVPCID_ALL_CONTEXTS: u64 = 2;
/// Bytes of each CPU's entry stack: an interrupt frame and a few saved registers on entry, the
/// 22-word frame on the way out; handlers run on the process's kernel stack. Also the size of
/// each of its IST stacks (#DF, NMI, #MC: all fatal, so a report's worth of stack).
const ENTRY_STACK_SIZE: usize = 4096;
/// IST stacks per CPU (`gdt::IST_*`).
const IST_STACKS: usize = 3;

/// Nonzero with `kpti=on`. Read (RIP-relative) by the entry stubs before they switch CR3, so it
/// lives in the entry data, mapped in user-mode roots.
#[link_section = ".data.kpti"]
pub static KPTI_ON: AtomicU8 = AtomicU8::new(0);

/// One CPU's stacks for entries from ring 3 on the user-mode root: RSP0 and the IST stacks
/// (which the CPU switches to whatever the mode, so they too must be mapped there).
#[repr(C, align(4096))]
struct EntryStacks {
    entry: [u8; ENTRY_STACK_SIZE],
    ist: [[u8; ENTRY_STACK_SIZE]; IST_STACKS],
}
struct AllEntryStacks([UnsafeCell<EntryStacks>; MAX_CPUS]);
// SAFETY: the stacks are used by the CPU (TSS.RSP0/IST) and the entry stubs only, stacks N by
// CPU N.
unsafe impl Sync for AllEntryStacks {}
#[link_section = ".bss.kpti"]
static ENTRY_STACKS: AllEntryStacks = AllEntryStacks(
    [const {
        UnsafeCell::new(EntryStacks {
            entry: [0; ENTRY_STACK_SIZE],
            ist: [[0; ENTRY_STACK_SIZE]; IST_STACKS],
        })
    }; MAX_CPUS],
);

struct TemplateCell(UnsafeCell<TemplateTables>);
// SAFETY: written only by `init`, once (guarded by `BUILT`), before any CR3 points at it; read
// only afterwards.
unsafe impl Sync for TemplateCell {}
static TEMPLATE: TemplateCell = TemplateCell(UnsafeCell::new(TemplateTables::new()));
static BUILT: AtomicBool = AtomicBool::new(false);
static PCID: AtomicBool = AtomicBool::new(false);
static INVPCID: AtomicBool = AtomicBool::new(false);

extern "C" {
    static __kpti_text_start: u8;
    static __kpti_text_end: u8;
    static __kpti_data_start: u8;
    static __kpti_data_end: u8;
    static __kpti_bss_start: u8;
    static __kpti_bss_end: u8;
}

/// What [`init`] turned on.
#[derive(Clone, Copy, Debug)]
pub struct Status {
    pub pcid: bool,
    pub invpcid: bool,
    pub template_root: u64,
}

/// The linker's entry ranges (text R-X, data and stacks RW- NX).
fn entry_ranges() -> [EntryRange; 3] {
    let range = |start: *const u8, end: *const u8, access| EntryRange {
        start: start as u64,
        end: end as u64,
        access,
    };
    [
        range(
            &raw const __kpti_text_start,
            &raw const __kpti_text_end,
            Access::ReadExecute,
        ),
        range(
            &raw const __kpti_data_start,
            &raw const __kpti_data_end,
            Access::ReadWrite,
        ),
        range(
            &raw const __kpti_bss_start,
            &raw const __kpti_bss_end,
            Access::ReadWrite,
        ),
    ]
}

/// With `kpti=on`, on the boot CPU after `paging::init`, `gdt::init`, `idt::init` and before any
/// other CPU starts or anything is locked: builds the template, turns on PCIDs where the CPU has
/// them, and sets up this CPU ([`init_cpu`]). Panics if called twice.
pub fn init(nx: bool) -> Result<Status, TemplateError> {
    assert!(!BUILT.swap(true, Ordering::SeqCst), "KPTI set up twice");
    let ranges = entry_ranges();
    let inside = |address: u64, size: u64| {
        ranges
            .iter()
            .any(|r| r.start <= address && address + size <= r.end)
    };
    let entry_stacks = ENTRY_STACKS.0.as_ptr() as u64;
    let stacks_size = core::mem::size_of::<AllEntryStacks>() as u64;
    let last = MAX_CPUS - 1;
    let block = core::mem::size_of::<percpu::PerCpu>() as u64;
    let blocks_ok =
        inside(percpu::block_address(0), block) && inside(percpu::block_address(last), block);
    let tss = core::mem::size_of::<gdt::TaskStateSegment>() as u64;
    let tss_ok = inside(gdt::tss_address(0), tss) && inside(gdt::tss_address(last), tss);
    let tables_ok = tss_ok && inside(gdt::base(), 4096) && inside(idt::base(), 4096);
    if !(blocks_ok && tables_ok && inside(entry_stacks, stacks_size)) {
        return Err(TemplateError::BadRange);
    }
    // SAFETY: first and only call (checked above): nothing else references the template, and
    // no CR3 points at it yet.
    let tables = unsafe { &mut *TEMPLATE.0.get() };
    tables.build(&ranges, KERNEL_VIRT_OFFSET, nx)?;
    // A mistake here would be a triple fault at the first entry from ring 3: check the stubs
    // are there and executable, and the kernel's own tables are not.
    let stub = tables.leaf(super::interrupts::stub_address(0), KERNEL_VIRT_OFFSET);
    let kernel_tables = tables.leaf(
        paging::kernel_root() + KERNEL_VIRT_OFFSET,
        KERNEL_VIRT_OFFSET,
    );
    if stub & PRESENT == 0 || (nx && stub & NO_EXECUTE != 0) || kernel_tables != 0 {
        return Err(TemplateError::BadRange);
    }
    let root = core::ptr::from_ref(tables.pml4()) as u64 - KERNEL_VIRT_OFFSET;
    template::set_template_root(root);
    PCID.store(
        cpu::cpuid(1, 0).ecx & CPUID_1_ECX_PCID != 0,
        Ordering::SeqCst,
    );
    INVPCID.store(
        cpu::cpuid(7, 0).ebx & CPUID_7_EBX_INVPCID != 0,
        Ordering::SeqCst,
    );
    KPTI_ON.store(1, Ordering::SeqCst);
    init_cpu(percpu::index());
    Ok(Status {
        pcid: pcid(),
        invpcid: INVPCID.load(Ordering::SeqCst),
        template_root: root,
    })
}

/// True with `kpti=on`.
pub fn enabled() -> bool {
    KPTI_ON.load(Ordering::Relaxed) != 0
}

/// True if KPTI runs with PCIDs (CR4.PCIDE on every CPU).
pub fn pcid() -> bool {
    enabled() && PCID.load(Ordering::Relaxed)
}

/// The template PML4's entries: the upper half of every user-mode root.
pub fn template_entries() -> [u64; ENTRIES] {
    assert!(enabled(), "no KPTI template");
    // SAFETY: built once by `init` (enabled only after), never written again.
    unsafe { (*TEMPLATE.0.get()).pml4().0 }
}

/// Sets up KPTI on this CPU (index `index`), with interrupts off, on the kernel root, after its
/// GDT/TSS and per-CPU block: CR4.PCIDE if PCIDs are used, TSS.RSP0 and the per-CPU block on
/// the entry stack, the IST stacks in the entry data (the CR3 values come with the CPU's roots,
/// `arch::cpu_roots::enter`). With `kpti=off` only the entry stack.
pub fn init_cpu(index: usize) {
    let base = ENTRY_STACKS.0[index].get() as u64;
    let top = |stack: usize| base + ((stack + 1) * ENTRY_STACK_SIZE) as u64;
    // With or without KPTI: TSS.RSP0 is this fixed entry stack for good (the stubs move the
    // frame to the process's kernel stack), so the TSS never changes once set up.
    percpu::set_kpti_entry(top(0), if enabled() && pcid() { NO_FLUSH } else { 0 });
    gdt::set_rsp0(top(0));
    if !enabled() {
        return;
    }
    if pcid() {
        // SDM Vol. 3A 4.10.1: setting CR4.PCIDE needs IA32_EFER.LMA=1 and CR3[11:0]=0; the
        // kernel root is page aligned with PWT/PCD clear, and this CPU runs on it.
        assert_eq!(cpu::read_cr3() & !ADDRESS_MASK, 0, "CR3 flags before PCIDE");
        // SAFETY: see above (64-bit mode, CR3[11:0] = 0); PCIDE only tags TLB entries with
        // PCID 0 until CR3 loads name another.
        unsafe { cpu::write_cr4(cpu::read_cr4() | CR4_PCIDE) };
    }
    gdt::set_ist([top(1), top(2), top(3)]);
}

/// After a user mapping of the running process was removed or reduced (INVLPG reached only the
/// kernel-mode PCID): the next return to ring 3 flushes the user-mode PCID.
pub fn user_mapping_removed() {
    if pcid() {
        percpu::flush_user_on_exit();
    }
}

/// Invalidates the kernel-half page `address` on this CPU in every PCID (TLB shootdown with
/// KPTI; without PCIDs, INVLPG is enough).
pub fn invalidate_kernel_page(address: u64) {
    if !pcid() {
        super::phys::invalidate_page(address);
    } else if INVPCID.load(Ordering::Relaxed) {
        let descriptor = [0u64; 2];
        // SAFETY: INVPCID exists (CPUID.7:EBX[10]); type 2 only drops cached translations,
        // the descriptor is ignored for it but must be readable memory.
        unsafe {
            asm!("invpcid {kind}, [{descriptor}]", kind = in(reg) INVPCID_ALL_CONTEXTS,
                descriptor = in(reg) descriptor.as_ptr(), options(nostack, preserves_flags))
        };
    } else {
        let cr4 = cpu::read_cr4();
        // SAFETY: toggling CR4.PGE twice leaves CR4 as it was and invalidates all TLB entries of
        // all PCIDs (SDM Vol. 3A 4.10.4.1); the kernel uses no global pages.
        unsafe {
            cpu::write_cr4(cr4 ^ CR4_PGE);
            cpu::write_cr4(cr4);
        }
    }
}
