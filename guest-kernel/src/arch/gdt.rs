//! The kernel's GDT and 64-bit TSS (SDM Vol. 3A 3.4.5 "Segment Descriptors", 7.7 "Task
//! Management in 64-bit Mode").
//!
//! Layout (selectors): 0x08 kernel code, 0x10 kernel data, 0x18 user data, 0x20 user code,
//! 0x28 TSS. The user pair is ordered for SYSRET (STAR[63:48] + 8 = SS, + 16 = CS).

use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};
use rampart_boot_info::descriptors::{tss_descriptor, KERNEL_CODE64 as KERNEL_CODE, KERNEL_DATA};

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

/// Entries: null, 4 segments, the TSS (two slots).
const GDT_ENTRIES: usize = 7;

/// The GDT on a page of its own, so the hypervisor can later make it read-only in EPT.
#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);

/// Static storage the CPU also writes (LTR sets the TSS busy bit; interrupts read the TSS).
struct Tables {
    gdt: UnsafeCell<Gdt>,
    tss: UnsafeCell<TaskStateSegment>,
}

// SAFETY: both cells are written only by `init`, once (guarded by `INSTALLED`), on the boot CPU
// with interrupts off; afterwards only the CPU touches them.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables {
    gdt: UnsafeCell::new(Gdt([0; GDT_ENTRIES])),
    tss: UnsafeCell::new(TaskStateSegment {
        _reserved0: 0,
        privilege_stacks: [0; 3],
        _reserved1: 0,
        interrupt_stacks: [0; 7],
        _reserved2: 0,
        _reserved3: 0,
        io_map_base: TSS_SIZE as u16,
    }),
};
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The operand of LGDT/LIDT.
#[repr(C, packed)]
pub struct DescriptorTablePointer {
    pub limit: u16,
    pub base: u64,
}

/// Installs the GDT and TSS: LGDT, reload every segment register (CS by far return), LTR.
/// The IST stacks are those of `arch::entry`. Panics if called twice.
pub fn init() {
    assert!(
        !INSTALLED.swap(true, Ordering::SeqCst),
        "GDT installed twice"
    );
    let (double_fault, nmi, machine_check) = super::entry::ist_stack_tops();
    let tss_base = TABLES.tss.get() as u64;
    // SAFETY: first and only call (checked above) on the only CPU, interrupts off: nothing else
    // holds a reference into TABLES, and the CPU does not use them until the LGDT/LTR below.
    unsafe {
        let tss = &mut *TABLES.tss.get();
        tss.interrupt_stacks[usize::from(IST_DOUBLE_FAULT - 1)] = double_fault;
        tss.interrupt_stacks[usize::from(IST_NMI - 1)] = nmi;
        tss.interrupt_stacks[usize::from(IST_MACHINE_CHECK - 1)] = machine_check;
        let [tss_low, tss_high] = tss_descriptor(tss_base, TSS_SIZE as u32 - 1);
        (*TABLES.gdt.get()).0 = [
            0,
            KERNEL_CODE,
            KERNEL_DATA,
            USER_DATA,
            USER_CODE,
            tss_low,
            tss_high,
        ];
    }
    let pointer = DescriptorTablePointer {
        limit: (GDT_ENTRIES * core::mem::size_of::<u64>() - 1) as u16,
        base: TABLES.gdt.get() as u64,
    };
    // The far return pops the pushed RIP and CS (the asm may use the stack); LTR marks the TSS
    // busy in the GDT, which is writable.
    // SAFETY: the GDT is static and valid (filled above); its code and data selectors describe
    // the same flat segments the firmware's GDT did, so reloading them moves no address in use.
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
            tss = in(reg) u64::from(TSS_SELECTOR),
            tmp = out(reg) _,
            options(preserves_flags)
        );
    }
}

/// Sets TSS.RSP0, the stack for interrupts and exceptions from ring 3.
pub fn set_rsp0(top: u64) {
    // SAFETY: one CPU with interrupts off (callers are the scheduler): the CPU reads RSP0 only
    // when an interrupt arrives from ring 3, which cannot happen during this store.
    unsafe { (*TABLES.tss.get()).privilege_stacks[0] = top };
}
