//! Per-CPU roots, the hardware side: each CPU's roots built before it starts, entered once for
//! good, the process switch (copy the incoming directory entries, flush), the copy after a
//! mapping that added a directory entry, and the table `LockKernelMappings` declares. The pure
//! part is `mm::cpu_roots`.
//!
//! After [`enter`], a CPU's CR3 only ever holds its own root values: the switch reloads the
//! kernel-mode value to flush (a CR3-target value under Rampart: no exit) and KPTI's entry
//! stubs move between the kernel-mode and user-mode values.

use super::{cpu, kpti, paging, percpu, phys::Frames};
use crate::mm::cpu_roots::{self, CpuRoots, Loaded, Used};
use crate::mm::pcid::{Cr3Pair, NO_FLUSH};
use rampart_boot_info::MAX_CPUS;

/// Each CPU's roots, built by the boot CPU before that CPU runs on them.
static ROOTS: [spin::Once<CpuRoots>; MAX_CPUS] = [const { spin::Once::new() }; MAX_CPUS];
/// What each CPU's directory tables hold (only that CPU locks its own, interrupts off).
static LOADED: [spin::Mutex<Loaded>; MAX_CPUS] = [const {
    spin::Mutex::new(Loaded {
        root: 0,
        used: Used::EMPTY,
    })
}; MAX_CPUS];

/// Builds CPU `index`'s roots (on the boot CPU, after `paging::init` and `kpti::init`, before
/// that CPU starts). False without memory.
pub fn build(index: usize) -> bool {
    let template = kpti::enabled().then(kpti::template_entries);
    let entries = paging::kernel_pml4_entries();
    match cpu_roots::build(&mut Frames, &entries, template.as_ref()) {
        Some(roots) => {
            ROOTS[index].call_once(|| roots);
            true
        }
        None => false,
    }
}

/// CPU `index`'s CR3 values (PCIDs if KPTI runs with them), once built.
pub fn values(index: usize) -> Option<Cr3Pair> {
    let roots = ROOTS[index].get()?;
    Some(Cr3Pair::of_cpu(roots.kernel, roots.user, kpti::pcid()))
}

/// Moves CPU `index` (this one, interrupts off, after `kpti::init_cpu`) onto its kernel-mode
/// root for good. Panics if its roots were not built.
pub fn enter(index: usize) {
    let values = values(index).expect("per-CPU roots built before the CPU enters them");
    // SAFETY: the root shares the kernel half of the root this CPU runs on (copied from it,
    // never changed after boot) and maps nothing in the lower half yet; it lives for good.
    unsafe { cpu::write_cr3(values.kernel) };
    set_entry_values(values);
}

/// KPTI: the values the entry stubs load (the user-mode one flushed at its next load).
fn set_entry_values(values: Cr3Pair) {
    if kpti::enabled() {
        let no_flush = if kpti::pcid() { NO_FLUSH } else { 0 };
        percpu::set_cr3_values(values.kernel | no_flush, values.user);
    }
}

/// Makes this CPU's lower half the process whose private root is `root` (0: none, for the
/// idle context and kernel threads) with directory entries `used`, and flushes the outgoing
/// process's translations. Interrupts must be off.
pub fn switch_to(root: u64, used: &Used) {
    let index = percpu::index();
    let Some(roots) = ROOTS[index].get() else {
        return;
    };
    let mut loaded = LOADED[index].lock();
    // The same process back (or idle after idle): the tables hold it already, and no other
    // CPU ran it since (this one would have loaded another or none), so nothing is stale.
    if loaded.root == root {
        return;
    }
    cpu_roots::load(&mut Frames, roots, &mut loaded, root, used);
    drop(loaded);
    flush(index);
}

/// Drops this CPU's cached translations of the lower half (the kernel maps nothing global):
/// INVPCID single-context for the kernel-mode PCID where the CPU has it (SDM Vol. 2A INVPCID:
/// its non-global entries and paging-structure caches; no VM exit under Rampart, whatever the
/// CR3-target count), else a reload of the kernel-mode value without the no-flush bit
/// (Vol. 3A 4.10.4.1; a CR3-target value under Rampart). Under KPTI the user-mode PCID is
/// flushed at the next return to ring 3.
fn flush(index: usize) {
    let Some(values) = values(index) else {
        return;
    };
    if *HAS_INVPCID.call_once(|| cpu::cpuid(7, 0).ebx & CPUID_7_EBX_INVPCID != 0) {
        let descriptor = [values.kernel & PCID_MASK, 0];
        // SAFETY: INVPCID exists (CPUID.7:EBX[10], which Rampart clears where the guest may
        // not run it); type 1 only drops cached translations of one PCID (this CPU's own,
        // 0 when CR4.PCIDE is off, as the instruction requires); the descriptor is readable.
        unsafe {
            core::arch::asm!("invpcid {kind}, [{descriptor}]", kind = in(reg) INVPCID_SINGLE_CONTEXT,
                descriptor = in(reg) descriptor.as_ptr(), options(nostack, preserves_flags))
        };
    } else {
        // SAFETY: this CPU's own root, which it already runs on: the same translations, fewer
        // cached.
        unsafe { cpu::write_cr3(values.kernel) };
    }
    set_entry_values(values);
}

/// CPUID.(EAX=7,ECX=0):EBX bit 10: INVPCID.
const CPUID_7_EBX_INVPCID: u32 = 1 << 10;
/// INVPCID type 1: one PCID's non-global translations.
const INVPCID_SINGLE_CONTEXT: u64 = 1;
const PCID_MASK: u64 = 0xfff;
static HAS_INVPCID: spin::Once<bool> = spin::Once::new();

/// After a page at `virt` was mapped into the process running on this CPU: its directory
/// entry reaches the CPU's table if it is new (no flush: the entry was not present). Returns
/// that entry's (user slot, index) then: the process must record it in its [`Used`].
pub fn mapped(virt: u64) -> Option<(usize, usize)> {
    let index = percpu::index();
    let roots = ROOTS[index].get()?;
    let new = cpu_roots::sync(&mut Frames, roots, &mut LOADED[index].lock(), virt);
    new.then(|| {
        (
            cpu_roots::slot_of(virt).unwrap_or(0),
            crate::mm::page_table::index(virt, 3),
        )
    })
}

/// The directory entries a process root uses (after a spawn built it).
pub fn used_by(root: u64) -> Used {
    cpu_roots::scan(&Frames, root)
}

/// The roots of CPU `index` as `LockKernelMappings` declares them, if built.
pub fn declared(index: usize, apic_id: u32) -> Option<rampart_hv_abi::CpuRoots> {
    let values = values(index)?;
    let kpti = kpti::enabled();
    Some(rampart_hv_abi::CpuRoots {
        apic_id: u64::from(apic_id),
        kernel_cr3: values.kernel,
        user_cr3: if kpti { values.user } else { 0 },
    })
}

/// CPU `index`'s directory table for user slot `slot` (physical), once built (the attack
/// suite writes through it).
#[cfg(feature = "attacks")]
pub fn directory_table(index: usize, slot: usize) -> Option<u64> {
    ROOTS[index].get().map(|roots| roots.tables[slot])
}
