//! The root-table attacks: a forged top-level table loaded into CR3 (under `pagetables =
//! locked` the hypervisor checks every CR3 load against the registered roots: #GP, rule
//! `cr3-load`), and a kernel-half entry written into a process's registered root (read-only in
//! EPT: #VE, rule `page-table`; `SetRootEntry` refuses the upper half too). Natively and under
//! `pagetables = off` both go through and are undone at once.
#![allow(unsafe_code)] // the attacks themselves; each block says why it is harmless natively

use super::forge;
use super::remap::{forge_idt_page, forged_breakpoint_runs, scratch_copy};
use super::verdict::Attempt;
use crate::arch::phys::Frames;
use crate::arch::{attack, cpu, hypercall, paging};
use crate::mm::address_space::PhysMemory;
use crate::mm::layout::{phys_to_virt, DIRECT_MAP_BASE};
use crate::mm::page_table::{self, ADDRESS_MASK, HUGE_PAGE, PAGE_SIZE, PRESENT};

/// A kernel-half PML4 slot nothing uses (the direct map is 256, stacks 510, the image 511).
const UNUSED_KERNEL_SLOT: usize = 257;

pub fn forged_cr3() -> Attempt {
    let (idt, _) = attack::sidt();
    let current = cpu::read_cr3() & ADDRESS_MASK;
    let Some((root, _)) = scratch_copy(Some(phys_to_virt(current)), 0) else {
        return Attempt::NotApplicable("out of memory");
    };
    // Copy each table on the IDT's path, each copy pointing at the next, the leaf at a copy of
    // the IDT whose #BP gate leads to the forged handler.
    let mut table = root;
    for level in [4, 3, 2] {
        let index = page_table::index(idt, level);
        let entry = Frames.read(table, index);
        if entry & PRESENT == 0 || entry & HUGE_PAGE != 0 {
            return Attempt::NotApplicable("IDT not mapped by 4 KiB pages");
        }
        let source = phys_to_virt(page_table::entry_address(entry));
        let Some((copy, _)) = scratch_copy(Some(source), 0) else {
            return Attempt::NotApplicable("out of memory");
        };
        Frames.write(table, index, forge::repoint(entry, copy));
        table = copy;
    }
    let Some((idt_copy, bytes)) = scratch_copy(Some(idt & !(PAGE_SIZE - 1)), 0) else {
        return Attempt::NotApplicable("out of memory");
    };
    forge_idt_page(bytes, (idt % PAGE_SIZE) as usize);
    let leaf_index = page_table::index(idt, 1);
    let leaf = Frames.read(table, leaf_index);
    Frames.write(table, leaf_index, forge::repoint(leaf, idt_copy));
    let hit = cpu::without_interrupts(|| {
        let previous = cpu::read_cr3();
        // Under `pagetables = locked` the load faults (#GP) and ends this thread.
        // SAFETY: a copy of the current root but for the IDT's page (the same IDT but the #BP
        // gate): code, stack and data stay mapped; interrupts off, old CR3 back at once.
        unsafe { cpu::write_cr3(root) };
        let hit = forged_breakpoint_runs(idt);
        // SAFETY: the root this thread ran on a moment ago.
        unsafe { cpu::write_cr3(previous) };
        hit
    });
    match hit {
        true => Attempt::Done,
        false => Attempt::NotApplicable("the forged IDT was not reached"),
    }
}

pub fn pml4_kernel_entry() -> Attempt {
    let Some(root) = crate::process::parent_root() else {
        return Attempt::NotApplicable("no process root");
    };
    let kernel = paging::kernel_pml4_entries();
    if kernel[UNUSED_KERNEL_SLOT] != 0 {
        return Attempt::NotApplicable("kernel slot in use");
    }
    // All physical memory at a second kernel address, writable, for this process only.
    let forged = kernel[page_table::index(DIRECT_MAP_BASE, 4)];
    // The forbidden step: under `pagetables = locked` the root is read-only in EPT and this
    // write ends the thread. The process (the suite's `attacks`) waits in its system call
    // meanwhile, so nothing walks the slot before it is cleared again.
    Frames.write(root, UNUSED_KERNEL_SLOT, forged);
    let written = Frames.read(root, UNUSED_KERNEL_SLOT) == forged;
    Frames.write(root, UNUSED_KERNEL_SLOT, 0);
    // The same through the hypervisor (`pagetables = off`: NotSupported); an acceptance is
    // undone the same way.
    if let Some(rampart) = hypercall::rampart() {
        let slot = UNUSED_KERNEL_SLOT as u64;
        if rampart.set_root_entry(root, slot, forged) == 0 {
            rampart.set_root_entry(root, slot, 0);
            Frames.write(root, UNUSED_KERNEL_SLOT, 0);
        }
    }
    match written {
        true => Attempt::Done,
        false => Attempt::NotApplicable("the entry did not stick"),
    }
}
