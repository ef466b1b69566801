//! The kernel's GDT and 64-bit TSS (SDM Vol. 3A 3.4.5 "Segment Descriptors", 7.7 "Task
//! Management in 64-bit Mode").
//!
//! Layout (selectors): 0x08 kernel code, 0x10 kernel data, 0x18 user data, 0x20 user code,
//! 0x28 + 16 * N the TSS of CPU N (one GDT for all CPUs, on one page). The user pair is ordered for SYSRET (STAR[63:48] + 8 = SS, + 16 = CS).

use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};
use rampart_boot_info::descriptors::{tss_descriptor, KERNEL_CODE64 as KERNEL_CODE, KERNEL_DATA};
use rampart_boot_info::MAX_CPUS;

pub const KERNEL_CODE_SELECTOR: u16 = 0x08;
pub const KERNEL_DATA_SELECTOR: u16 = 0x10;
pub const USER_DATA_SELECTOR: u16 = 0x18 | 3;
pub const USER_CODE_SELECTOR: u16 = 0x20 | 3;
pub const TSS_SELECTOR: u16 = 0x28;

/// IST slots (1-based, as IDT gates name them).
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;

// Flat descriptors: base 0, limit 0xfffff, G=1. Access byte: P, DPL, S, type.
// Every segment descriptor has its accessed bit (type bit 0) set already: the CPU would set
// it on the first load of the selector (SDM Vol. 3A 3.4.5.1), a write to the GDT, which is
// read-only in EPT once the hypervisor has locked the descriptor tables.
/// Data, DPL3.
const USER_DATA: u64 = 0x00cf_f300_0000_ffff;
/// 64-bit code, DPL3.
const USER_CODE: u64 = 0x00af_fb00_0000_ffff;

/// The 64-bit TSS: only stack pointers (RSP0-2 for privilege changes, IST1-7).
#[repr(C, packed(4))]
pub struct TaskStateSegment {
    _reserved0: u32,
    pub privilege_stacks: [u64; 3],
    _reserved1: u64,
    pub interrupt_stacks: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    /// Offset of the I/O permission bitmap; at the limit = no bitmap (all ports #GP at CPL3).
    pub io_map_base: u16,
}
const TSS_SIZE: usize = 104;
const _: () = assert!(core::mem::size_of::<TaskStateSegment>() == TSS_SIZE);

/// Entries: null, 4 segments, then one TSS (two slots) per CPU.
const SEGMENT_ENTRIES: usize = 5;
const GDT_ENTRIES: usize = SEGMENT_ENTRIES + 2 * MAX_CPUS;

/// The GDT on a page of its own, so the hypervisor can later make it read-only in EPT. One GDT
/// for all CPUs: the page `LockDescriptorTables` locks holds every CPU's TSS descriptor.
#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);
const _: () = assert!(core::mem::size_of::<Gdt>() == 4096);

/// Every CPU's TSS, on a page of their own, so the hypervisor can make it read-only in EPT
/// (`LockDescriptorTables` with `DescriptorLock::TSS`) without catching other data.
#[repr(C, align(4096))]
struct TssPage([UnsafeCell<TaskStateSegment>; MAX_CPUS]);
const _: () = assert!(core::mem::size_of::<TssPage>() == 4096);

/// Static storage the CPU also writes (LTR sets the TSS busy bit; interrupts read the TSS).
struct Tables {
    gdt: UnsafeCell<Gdt>,
    tss: TssPage,
}

// SAFETY: the GDT is written only by `init`, once (guarded by `INSTALLED`), on the boot CPU with
// interrupts off, before any other CPU loads it; afterwards only CPUs touch it (LTR's busy bits,
// each on its own descriptor). TSS N is written only by CPU N (`load`, `set_rsp0`) with
// interrupts off.
unsafe impl Sync for Tables {}

const EMPTY_TSS: TaskStateSegment = TaskStateSegment {
    _reserved0: 0,
    privilege_stacks: [0; 3],
    _reserved1: 0,
    interrupt_stacks: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    io_map_base: TSS_SIZE as u16,
};

/// In the KPTI entry data: the CPU reads the GDT and TSS on entry from ring 3, before the
/// entry stubs switch to the kernel-mode root.
#[link_section = ".data.kpti"]
static TABLES: Tables = Tables {
    gdt: UnsafeCell::new(Gdt([0; GDT_ENTRIES])),
    tss: TssPage([const { UnsafeCell::new(EMPTY_TSS) }; MAX_CPUS]),
};
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The task-register selector of CPU `index`'s TSS.
pub const fn tss_selector(index: usize) -> u16 {
    TSS_SELECTOR + 16 * index as u16
}

/// The operand of LGDT/LIDT.
#[repr(C, packed)]
pub struct DescriptorTablePointer {
    pub limit: u16,
    pub base: u64,
}

/// Fills the GDT (every CPU's TSS descriptor) and loads it on the boot CPU with TSS 0, whose
/// IST stacks are those of `arch::entry`. Panics if called twice.
pub fn init() {
    assert!(
        !INSTALLED.swap(true, Ordering::SeqCst),
        "GDT installed twice"
    );
    // SAFETY: first and only call (checked above) on the boot CPU, interrupts off, before any
    // other CPU runs kernel code: nothing else holds a reference into the GDT, and the CPU does
    // not use it until the LGDT in `load`.
    let gdt = unsafe { &mut *TABLES.gdt.get() };
    gdt.0[..SEGMENT_ENTRIES].copy_from_slice(&[0, KERNEL_CODE, KERNEL_DATA, USER_DATA, USER_CODE]);
    for (index, tss) in TABLES.tss.0.iter().enumerate() {
        let slot = SEGMENT_ENTRIES + 2 * index;
        let descriptor = tss_descriptor(tss.get() as u64, TSS_SIZE as u32 - 1);
        gdt.0[slot..slot + 2].copy_from_slice(&descriptor);
    }
    let (double_fault, nmi, machine_check) = super::entry::ist_stack_tops();
    load(0, [double_fault, nmi, machine_check]);
}

/// Loads the GDT on this CPU, CPU `index`, with TSS `index` and its IST stacks `ist_tops`
/// (double fault, NMI, machine check): LGDT, reload every segment register (CS by far return),
/// LTR. Call once per CPU, with interrupts off, after [`init`]. Panics if `init` has not run.
pub fn load(index: usize, ist_tops: [u64; 3]) {
    assert!(INSTALLED.load(Ordering::SeqCst), "GDT not built yet");
    // SAFETY: TSS `index` is this CPU's own (callers give every CPU its own index); interrupts
    // are off and the TR does not point at it yet, so the CPU does not read it meanwhile.
    unsafe {
        let tss = &mut *TABLES.tss.0[index].get();
        tss.interrupt_stacks[usize::from(IST_DOUBLE_FAULT - 1)] = ist_tops[0];
        tss.interrupt_stacks[usize::from(IST_NMI - 1)] = ist_tops[1];
        tss.interrupt_stacks[usize::from(IST_MACHINE_CHECK - 1)] = ist_tops[2];
    }
    let pointer = DescriptorTablePointer {
        limit: (GDT_ENTRIES * core::mem::size_of::<u64>() - 1) as u16,
        base: TABLES.gdt.get() as u64,
    };
    // The far return pops the pushed RIP and CS (the asm may use the stack); LTR marks this
    // CPU's TSS descriptor busy in the GDT, which is writable until the hypervisor locks it.
    // The GDT's code and data selectors describe the same flat segments the firmware's (or the
    // hypervisor's start-up) GDT did, so reloading them moves no address in use.
    // SAFETY: the GDT is static and valid (filled by `init`), see above; descriptor `index` is
    // an available 64-bit TSS no other CPU loads.
    unsafe {
        asm!(
            "lgdt [{pointer}]",
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {data:x}",
            "mov es, {data:x}",
            "mov ss, {data:x}",
            "mov fs, {data:x}",
            "mov gs, {data:x}",
            "ltr {tss:x}",
            pointer = in(reg) &raw const pointer,
            code = const KERNEL_CODE_SELECTOR as u64,
            data = in(reg) u64::from(KERNEL_DATA_SELECTOR),
            tss = in(reg) u64::from(tss_selector(index)),
            tmp = out(reg) _,
            options(preserves_flags)
        );
    }
}

/// The GDT's base (for the KPTI template check).
pub fn base() -> u64 {
    TABLES.gdt.get() as u64
}

/// The address of CPU `index`'s TSS (for the KPTI template check).
pub fn tss_address(index: usize) -> u64 {
    TABLES.tss.0[index].get() as u64
}

/// Sets this CPU's IST stacks (double fault, NMI, machine check), as [`load`] did.
pub fn set_ist(ist_tops: [u64; 3]) {
    let tss = TABLES.tss.0[super::percpu::index()].get();
    // SAFETY: this CPU's own TSS, with interrupts off (callers: CPU set-up); an NMI or machine
    // check meanwhile finds either the old or the new stack, both mapped and unused.
    unsafe {
        (*tss).interrupt_stacks[usize::from(IST_DOUBLE_FAULT - 1)] = ist_tops[0];
        (*tss).interrupt_stacks[usize::from(IST_NMI - 1)] = ist_tops[1];
        (*tss).interrupt_stacks[usize::from(IST_MACHINE_CHECK - 1)] = ist_tops[2];
    }
}

/// Sets this CPU's TSS.RSP0, the stack for interrupts and exceptions from ring 3.
pub fn set_rsp0(top: u64) {
    let tss = TABLES.tss.0[super::percpu::index()].get();
    // SAFETY: this CPU's own TSS, with interrupts off (callers are the scheduler): the CPU
    // reads RSP0 only when an interrupt arrives from ring 3, which cannot happen during this
    // store, and no other CPU touches this TSS.
    unsafe { (*tss).privilege_stacks[0] = top };
}
