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

/// One CPU's block. The SYSCALL stub addresses the first two fields as `gs:[0]` and `gs:[8]`.
#[repr(C, align(64))]
pub struct PerCpu {
    /// Kernel stack top of the process running on this CPU (the SYSCALL stack).
    pub kernel_rsp: u64,
    /// Scratch: the user RSP while the SYSCALL stub switches stacks.
    pub user_rsp: u64,
    /// This CPU's index (0 = the boot CPU), read by [`index`] as `gs:[16]`.
    pub index: u64,
}

/// `gs:` offset of [`PerCpu::index`].
const INDEX_OFFSET: usize = 16;
const _: () = assert!(core::mem::offset_of!(PerCpu, index) == INDEX_OFFSET);

struct Blocks([UnsafeCell<PerCpu>; MAX_CPUS]);
// SAFETY: block N is written only by CPU N (its own `init` and `set_kernel_rsp`, and its
// SYSCALL stub), always with interrupts off; no other CPU touches it.
unsafe impl Sync for Blocks {}

static BLOCKS: Blocks = Blocks(
    [const {
        UnsafeCell::new(PerCpu {
            kernel_rsp: 0,
            user_rsp: 0,
            index: 0,
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
