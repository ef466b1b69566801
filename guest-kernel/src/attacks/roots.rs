//! The root-table attacks on per-CPU roots: a forged top-level table loaded into CR3 and
//! another CPU's root loaded into CR3 (under `pagetables = locked` a vCPU may load its own
//! declared roots only: #GP, rule `cr3-load`), a kernel-half entry written into the CPU's own
//! root (read-only in EPT: rule `page-table`), and kernel rodata aliased writable through the
//! CPU's guest-writable directory table (the store meets EPT). Natively and under `pagetables
//! = off` they go through and are undone at once.
#![allow(unsafe_code)] // the attacks themselves; each block says why it is harmless natively

use super::forge;
use super::remap::{forge_idt_page, forged_breakpoint_runs, scratch_copy};
use super::verdict::Attempt;
use crate::arch::phys::Frames;
use crate::arch::{attack, cpu, cpu_roots, paging};
use crate::mm::address_space::PhysMemory;
use crate::mm::layout::{phys_to_virt, DIRECT_MAP_BASE};
use crate::mm::page_table::{self, ADDRESS_MASK, HUGE_PAGE, PAGE_SIZE, PRESENT};
use core::sync::atomic::{AtomicU64, Ordering};

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

/// A kernel-half entry written into the root this CPU runs on (its per-CPU root): under
/// `pagetables = locked` the root is read-only in EPT and the write ends the thread.
pub fn pml4_kernel_entry() -> Attempt {
    let root = cpu::read_cr3() & ADDRESS_MASK;
    let kernel = paging::kernel_pml4_entries();
    if kernel[UNUSED_KERNEL_SLOT] != 0 {
        return Attempt::NotApplicable("kernel slot in use");
    }
    // All physical memory at a second kernel address, writable.
    let forged = kernel[page_table::index(DIRECT_MAP_BASE, 4)];
    let written = cpu::without_interrupts(|| {
        // The forbidden step. Natively harmless: the slot is unused and cleared at once,
        // interrupts off.
        Frames.write(root, UNUSED_KERNEL_SLOT, forged);
        let written = Frames.read(root, UNUSED_KERNEL_SLOT) == forged;
        Frames.write(root, UNUSED_KERNEL_SLOT, 0);
        written
    });
    match written {
        true => Attempt::Done,
        false => Attempt::NotApplicable("the entry did not stick"),
    }
}

/// A MOV to CR3 of another CPU's kernel-mode root: under `pagetables = locked` each vCPU may
/// load its own roots only (#GP, rule `cr3-load`).
pub fn other_cpu_root() -> Attempt {
    let me = crate::arch::percpu::index();
    let other = crate::smp::online().find(|&(index, _)| index != me);
    let Some(values) = other.and_then(|(index, _)| cpu_roots::values(index)) else {
        return Attempt::NotApplicable("one CPU");
    };
    cpu::without_interrupts(|| {
        let previous = cpu::read_cr3();
        // SAFETY: the other CPU's root has the same kernel half (code, stack, data mapped
        // alike); its lower half is that CPU's process, which this kernel code never touches;
        // interrupts off, this CPU's own root back at once.
        unsafe { cpu::write_cr3(values.kernel) };
        // SAFETY: the root this thread ran on a moment ago.
        unsafe { cpu::write_cr3(previous) };
    });
    Attempt::Done
}

/// A write through this CPU's own directory table (guest-writable: it holds the running
/// process's entries): an unused entry made to alias the kernel's rodata page writable at a
/// low address, then a store of the byte already there. The alias is the guest's to make; the
/// store meets EPT (rule `kernel-rodata`).
pub fn cpu_table_alias() -> Attempt {
    let me = crate::arch::percpu::index();
    let Some(table) = cpu_roots::directory_table(me, 0) else {
        return Attempt::NotApplicable("no per-CPU roots");
    };
    let image = paging::kernel_image();
    let target = image.text_end.next_multiple_of(PAGE_SIZE); // first rodata page
    let Some(leaf) = leaf_of(target) else {
        return Attempt::NotApplicable("rodata not mapped by 4 KiB pages");
    };
    // A directory -> table -> leaf chain for a low address in directory entry ALIAS_INDEX.
    let Some((directory, _)) = scratch_copy(None, 0) else {
        return Attempt::NotApplicable("out of memory");
    };
    let Some((page_table, _)) = scratch_copy(None, 0) else {
        return Attempt::NotApplicable("out of memory");
    };
    let flags = PRESENT | page_table::WRITABLE;
    Frames.write(
        page_table,
        0,
        page_table::entry(page_table::entry_address(leaf), flags),
    );
    Frames.write(directory, 0, page_table::entry(page_table, flags));
    let alias = ALIAS_INDEX << 30;
    let stored = cpu::without_interrupts(|| {
        if Frames.read(table, ALIAS_INDEX as usize) != 0 {
            return false;
        }
        // Blocked, this thread ends at the store below: `clear_cpu_table_alias` undoes it.
        ALIAS_ENTRY.store(table + ALIAS_INDEX * 8, Ordering::SeqCst);
        Frames.write(
            table,
            ALIAS_INDEX as usize,
            page_table::entry(directory, flags),
        );
        let pointer = alias as *mut u8;
        // SAFETY: `alias` maps the rodata page just linked (supervisor, writable); the store
        // writes back the byte read, so natively nothing changes. The entry is cleared and the
        // translation dropped before interrupts come back.
        unsafe { pointer.write_volatile(pointer.read_volatile()) };
        Frames.write(table, ALIAS_INDEX as usize, 0);
        ALIAS_ENTRY.store(0, Ordering::SeqCst);
        crate::arch::phys::invalidate_page(alias);
        true
    });
    match stored {
        true => Attempt::Done,
        false => Attempt::NotApplicable("directory entry in use"),
    }
}

/// A directory entry of the low user slot no program uses (GiB 300).
const ALIAS_INDEX: u64 = 300;
/// The directory-table entry `cpu_table_alias` set (physical address; 0: none).
static ALIAS_ENTRY: AtomicU64 = AtomicU64::new(0);

/// After the suite's attack thread ended (from `list::cleanup`, before the scratch frames go
/// back): clears the alias entry a blocked `cpu_table_alias` left in its CPU's directory table
/// and drops it from every CPU's TLB and paging-structure caches.
pub fn clear_cpu_table_alias() {
    let entry = ALIAS_ENTRY.swap(0, Ordering::SeqCst);
    if entry != 0 {
        let (table, index) = (entry & !(PAGE_SIZE - 1), (entry % PAGE_SIZE) / 8);
        Frames.write(table, index as usize, 0);
        crate::smp::flush_kernel_page(ALIAS_INDEX << 30);
    }
}

/// The 4 KiB leaf entry of kernel address `virt` in the kernel root.
fn leaf_of(virt: u64) -> Option<u64> {
    let mut table = paging::kernel_root();
    for level in [4, 3, 2, 1] {
        let entry = Frames.read(table, page_table::index(virt, level));
        if entry & PRESENT == 0 || (level > 1 && entry & HUGE_PAGE != 0) {
            return None;
        }
        if level == 1 {
            return Some(entry);
        }
        table = page_table::entry_address(entry);
    }
    None
}

/// `crash=alias-cpu-table`, on the boot CPU just before `LockKernelMappings`: links the CPU's
/// own slot-0 directory table into an unused kernel-half slot of its root, so the table the
/// kernel rewrites on every switch would also translate kernel-half addresses. Under
/// `pagetables = locked` the lock's walk makes it read-only and the lock is refused (the boot
/// fails `page-table-lock`); natively and under `off` the boot goes on (nothing maps through
/// the slot).
pub fn alias_cpu_table_before_lock() {
    let root = cpu::read_cr3() & ADDRESS_MASK;
    let Some(table) = cpu_roots::directory_table(0, 0) else {
        return;
    };
    let entry = page_table::entry(table, PRESENT | page_table::WRITABLE | page_table::ACCESSED);
    Frames.write(root, UNUSED_KERNEL_SLOT, entry);
    crate::console::kprintln!(
        "crash=alias-cpu-table: CPU 0's directory table {table:#x} is now also kernel-half slot {UNUSED_KERNEL_SLOT} of its root {root:#x}; locking the page tables"
    );
}
