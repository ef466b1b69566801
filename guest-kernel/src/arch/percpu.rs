//! Per-CPU blocks, one per CPU the kernel runs on, reached through IA32_KERNEL_GS_BASE.
//!
//! The kernel keeps GS base 0 while it runs and this CPU's block in IA32_KERNEL_GS_BASE (ring 3
//! never sets GS), so SWAPGS gives the SYSCALL stub (`arch::syscall_entry`) its block, and
//! [`index`] finds this CPU's number with SWAPGS, a load, SWAPGS (no MSR access, so no VM exit
//! under Rampart).

use super::cpu;
use core::arch::asm;
use core::cell::UnsafeCell;
use rampart_boot_info::MAX_CPUS;

const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;

/// One CPU's block. The entry stubs address its fields as `gs:[N]` (the `*_OFFSET`s). With
/// `kpti=on` they read it before switching CR3, so the blocks live in the KPTI entry data
/// (`.data.kpti`, mapped in user-mode roots).
#[repr(C, align(64))]
pub struct PerCpu {
    /// Kernel stack top of the process running on this CPU (the SYSCALL stack).
    pub kernel_rsp: u64,
    /// Scratch: the user RSP while the SYSCALL stub switches stacks.
    pub user_rsp: u64,
    /// This CPU's index (0 = the boot CPU), read by [`index`] as `gs:[16]`.
    pub index: u64,
    /// KPTI: the CR3 value the entry stubs load on entry from ring 3 (kernel-mode root of the
    /// running process, with `mm::pcid::NO_FLUSH` when PCIDs are on).
    pub kernel_cr3: u64,
    /// KPTI: the CR3 value loaded last thing before returning to ring 3 (user-mode root); the
    /// exit stubs OR [`PerCpu::no_flush`] into it after each load, so only the first load
    /// after a switch (or a user unmap) flushes that PCID.
    pub user_cr3: u64,
    /// KPTI: `mm::pcid::NO_FLUSH` with PCIDs, else 0 (bit 63 is reserved without CR4.PCIDE).
    pub no_flush: u64,
    /// KPTI: top of this CPU's entry stack (TSS.RSP0).
    pub entry_rsp: u64,
}

/// `gs:` offset of [`PerCpu::index`].
const INDEX_OFFSET: usize = 16;
const _: () = assert!(core::mem::offset_of!(PerCpu, index) == INDEX_OFFSET);
/// `gs:` offsets the KPTI entry stubs use.
pub const KERNEL_RSP_OFFSET: usize = 0;
pub const USER_RSP_OFFSET: usize = 8;
pub const KERNEL_CR3_OFFSET: usize = 24;
pub const USER_CR3_OFFSET: usize = 32;
pub const NO_FLUSH_OFFSET: usize = 40;
pub const ENTRY_RSP_OFFSET: usize = 48;
const _: () = assert!(core::mem::offset_of!(PerCpu, kernel_rsp) == KERNEL_RSP_OFFSET);
const _: () = assert!(core::mem::offset_of!(PerCpu, user_rsp) == USER_RSP_OFFSET);
const _: () = assert!(core::mem::offset_of!(PerCpu, kernel_cr3) == KERNEL_CR3_OFFSET);
const _: () = assert!(core::mem::offset_of!(PerCpu, user_cr3) == USER_CR3_OFFSET);
const _: () = assert!(core::mem::offset_of!(PerCpu, no_flush) == NO_FLUSH_OFFSET);
const _: () = assert!(core::mem::offset_of!(PerCpu, entry_rsp) == ENTRY_RSP_OFFSET);

struct Blocks([UnsafeCell<PerCpu>; MAX_CPUS]);
// SAFETY: block N is written only by CPU N (its own `init` and `set_kernel_rsp`, and its
// SYSCALL stub), always with interrupts off; no other CPU touches it.
unsafe impl Sync for Blocks {}

#[link_section = ".data.kpti"]
static BLOCKS: Blocks = Blocks(
    [const {
        UnsafeCell::new(PerCpu {
            kernel_rsp: 0,
            user_rsp: 0,
            index: 0,
            kernel_cr3: 0,
            user_cr3: 0,
            no_flush: 0,
            entry_rsp: 0,
        })
    }; MAX_CPUS],
);

/// Makes block `index` this CPU's (IA32_KERNEL_GS_BASE). Call once per CPU, first thing,
/// with interrupts off. Panics if `index` is out of range.
pub fn init(index: usize) {
    let block = BLOCKS.0[index].get();
    // SAFETY: only this CPU uses block `index` (callers give every CPU its own index), and
    // interrupts are off, so no SYSCALL stub or `index` reader runs meanwhile.
    unsafe { (*block).index = index as u64 };
    // SAFETY: IA32_KERNEL_GS_BASE exists on every x86-64 CPU; it only takes effect at SWAPGS,
    // and the block is a static that lives forever.
    unsafe { cpu::wrmsr(IA32_KERNEL_GS_BASE, block as u64) };
}

/// This CPU's index (0 = boot CPU). Valid once [`init`] ran on this CPU.
pub fn index() -> usize {
    let index: u64;
    // Interrupts are off between the two SWAPGS (saved and restored flags), so no handler can
    // run with the swapped GS; NMIs are fatal in this kernel and do not read the block.
    // SAFETY: GS base is 0 and IA32_KERNEL_GS_BASE this CPU's block (kernel convention,
    // `init`), so `gs:[16]` after SWAPGS is its `index` field; the second SWAPGS restores both.
    unsafe {
        asm!(
            "pushfq",
            "cli",
            "swapgs",
            "mov {index}, gs:[{offset}]",
            "swapgs",
            "popfq",
            index = out(reg) index,
            offset = const INDEX_OFFSET,
            options(readonly)
        )
    };
    index as usize
}

/// Sets this CPU's SYSCALL stack top.
pub fn set_kernel_rsp(top: u64) {
    let block = BLOCKS.0[index()].get();
    // SAFETY: this CPU's own block; callers (the scheduler) run with interrupts off, so the
    // SYSCALL stub does not run on this CPU meanwhile.
    unsafe { (*block).kernel_rsp = top };
}

/// KPTI: sets this CPU's entry stack top and whether CR3 loads may skip the flush.
pub fn set_kpti_entry(entry_rsp: u64, no_flush: u64) {
    let block = BLOCKS.0[index()].get();
    // SAFETY: this CPU's own block, with interrupts off (callers: CPU set-up), so no entry
    // stub reads it meanwhile.
    unsafe {
        (*block).entry_rsp = entry_rsp;
        (*block).no_flush = no_flush;
    }
}

/// KPTI: the CR3 values the entry stubs of this CPU load from now on (`user` flushed on its
/// next load: it carries no `NO_FLUSH`).
pub fn set_cr3_values(kernel: u64, user: u64) {
    let block = BLOCKS.0[index()].get();
    // SAFETY: this CPU's own block; callers (the scheduler, user unmaps) run with interrupts
    // off, so no entry stub of this CPU runs meanwhile.
    unsafe {
        (*block).kernel_cr3 = kernel;
        (*block).user_cr3 = user;
    }
}

/// KPTI: makes the next return to ring 3 flush the user-mode PCID (after a user unmap, which
/// INVLPG removed from the kernel-mode PCID only).
pub fn flush_user_on_exit() {
    let block = BLOCKS.0[index()].get();
    // SAFETY: as in `set_cr3_values`.
    unsafe { (*block).user_cr3 &= !(*block).no_flush };
}

/// The address of block `index` (for the KPTI template check).
pub fn block_address(index: usize) -> u64 {
    BLOCKS.0[index].get() as u64
}
