//! The remap attacks: a protected kernel page keeps its physical frame (EPT guards it), but its
//! virtual address is pointed at a forged copy by rewriting the leaf entry in the kernel's own
//! page tables. Under `pagetables = locked` those tables are read-only in EPT: the entry write
//! faults (#VE, rule `page-table`) and ends the thread. Natively and under `pagetables = off`
//! the forged copy is live until the attack restores the entry and flushes it on every CPU.
#![allow(unsafe_code)] // the attacks themselves; each block says why it is harmless natively

use super::forge;
use super::list::scratch_frame;
use super::verdict::Attempt;
use crate::arch::phys::Frames;
use crate::arch::{attack, attack_paging, cpu, hypercall, paging, phys};
use crate::mm::address_space::PhysMemory;
use crate::mm::layout::phys_to_virt;
use crate::mm::page_table::{self, HUGE_PAGE, PAGE_SIZE, PRESENT};
use rampart_kernel_abi::syscall::Syscall;

/// Vector 3 (#BP): the gate the IDT attacks forge (nothing else raises it in this kernel).
const BREAKPOINT_VECTOR: usize = 3;
const GATE_SIZE: usize = 16;
const IA32_LSTAR: u32 = 0xc000_0082;
/// The attacker's filler for a forged text page.
const INT3: u8 = 0xcc;

/// Where the leaf entry of kernel page `virt` is: (page-table frame, index, entry), walking the
/// kernel root like the MMU. `None` for a page mapped by a large page or not at all.
pub(super) fn kernel_leaf(virt: u64) -> Option<(u64, usize, u64)> {
    let mut table = paging::kernel_root();
    for level in [4, 3, 2] {
        let entry = Frames.read(table, page_table::index(virt, level));
        if entry & PRESENT == 0 || entry & HUGE_PAGE != 0 {
            return None;
        }
        table = page_table::entry_address(entry);
    }
    let index = page_table::index(virt, 1);
    let entry = Frames.read(table, index);
    (entry & PRESENT != 0).then_some((table, index, entry))
}

/// A fresh scratch frame holding a copy of the 4 KiB page at `source` (read through that
/// virtual address), or `fill` bytes: the frame and its bytes in the direct map. Built in
/// place: a kernel thread's stack has no room for page-sized copies.
pub(super) fn scratch_copy(source: Option<u64>, fill: u8) -> Option<(u64, &'static mut [u8])> {
    let frame = scratch_frame(&[])?;
    // SAFETY: the frame was just allocated for this attack alone (freed by `list::cleanup`
    // after the thread ended), and the direct map covers it.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(phys_to_virt(frame) as *mut u8, PAGE_SIZE as usize)
    };
    match source {
        // SAFETY: the callers name mapped, readable kernel pages (EPT may refuse the read,
        // which ends this thread); they cannot overlap a fresh frame.
        Some(page) => unsafe {
            core::ptr::copy_nonoverlapping(page as *const u8, bytes.as_mut_ptr(), bytes.len())
        },
        None => bytes.fill(fill),
    }
    Some((frame, bytes))
}

/// Points the page at `virt` at `frame` (a forged copy), runs `live` (which says whether the
/// copy is what `virt` now reaches), and restores the entry everywhere.
fn remap(virt: u64, frame: u64, live: impl FnOnce() -> bool) -> Attempt {
    let page = virt & !(PAGE_SIZE - 1);
    let Some((table, index, entry)) = kernel_leaf(page) else {
        return Attempt::NotApplicable("page not mapped by a 4 KiB entry");
    };
    let seen = cpu::without_interrupts(|| {
        // The forbidden step: under `pagetables = locked` this write to a kernel page table
        // faults and ends the thread here.
        Frames.write(table, index, forge::repoint(entry, frame));
        phys::invalidate_page(page);
        let seen = live();
        Frames.write(table, index, entry);
        phys::invalidate_page(page);
        seen
    });
    // Another CPU may have cached the forged translation meanwhile.
    crate::smp::flush_kernel_page(page);
    match seen {
        true => Attempt::Done,
        false => Attempt::NotApplicable("the forged copy was not reached"),
    }
}

/// The #BP gate of the IDT at `base`, read through its virtual address.
fn breakpoint_gate(base: u64) -> [u64; 2] {
    let gate = base + (BREAKPOINT_VECTOR * GATE_SIZE) as u64;
    // SAFETY: the IDT is mapped readable; gates are 8-byte aligned.
    unsafe { [0, 8].map(|offset| core::ptr::read_volatile((gate + offset) as *const u64)) }
}

/// The copy of an IDT page whose #BP gate leads to `attack_paging::forged_breakpoint`.
pub(super) fn forge_idt_page(page: &mut [u8], idt_offset: usize) {
    let at = idt_offset + BREAKPOINT_VECTOR * GATE_SIZE;
    let mut gate = [0u64; 2];
    for (word, bytes) in gate
        .iter_mut()
        .zip(page[at..at + GATE_SIZE].chunks_exact(8))
    {
        *word = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
    }
    let handler = attack_paging::forged_breakpoint as *const () as u64;
    let forged = forge::gate_with_handler(gate, handler);
    page[at..at + 8].copy_from_slice(&forged[0].to_le_bytes());
    page[at + 8..at + GATE_SIZE].copy_from_slice(&forged[1].to_le_bytes());
}

/// INT3 reaches the forged handler (and SIDT still names the real IDT).
pub(super) fn forged_breakpoint_runs(idt_base: u64) -> bool {
    let before = attack_paging::forged_hits();
    // SAFETY: the #BP gate as now reached leads to `forged_breakpoint` (which returns) or to
    // the kernel's own handler, which reports the breakpoint and returns.
    unsafe { attack_paging::breakpoint() };
    attack_paging::forged_hits() != before && attack::sidt().0 == idt_base
}

pub fn idt_remap() -> Attempt {
    let (base, _) = attack::sidt();
    let Some((frame, copy)) = scratch_copy(Some(base & !(PAGE_SIZE - 1)), 0) else {
        return Attempt::NotApplicable("out of memory");
    };
    forge_idt_page(copy, (base % PAGE_SIZE) as usize);
    let live = || {
        let handler = forge::gate_handler(breakpoint_gate(base));
        handler == attack_paging::forged_breakpoint as *const () as u64
            && forged_breakpoint_runs(base)
    };
    remap(base, frame, live)
}

/// Reads the byte at `address` (a kernel page) through the current mapping.
fn byte_at(address: u64) -> u8 {
    // SAFETY: the callers name bytes of mapped kernel pages.
    unsafe { attack::read_byte(address) }
}

/// Remaps the page of `live` to a copy of it (`source`: read through its address, else
/// `fill` bytes) with the byte farthest from `live` flipped, and reads that byte back through
/// the page's virtual address.
fn remap_changed_byte(live: u64, source: bool, fill: u8) -> Attempt {
    let page = live & !(PAGE_SIZE - 1);
    let Some((frame, copy)) = scratch_copy(source.then_some(page), fill) else {
        return Attempt::NotApplicable("out of memory");
    };
    let far = forge::far_offset(live);
    copy[far] = !copy[far];
    let forged = copy[far];
    remap(page, frame, || byte_at(page + far as u64) == forged)
}

pub fn gdt_remap() -> Attempt {
    // The GDT sits at the start of its own page; the last byte is beyond its limit, so the CPU
    // never reads it (SDM Vol. 3A 3.5.1).
    let base = attack_paging::sgdt().0;
    remap_changed_byte(base, true, 0)
}

pub fn syscall_table_remap() -> Attempt {
    // The entry of the `Attacks` call: only the `attacks` program makes it, and it is blocked
    // in that very call until the suite ends, so no CPU dispatches through the forged entry.
    let size = core::mem::size_of::<u64>() as u64;
    let entry = crate::syscall::table_address() + Syscall::Attacks as u64 * size;
    let forged = crate::syscall::table_address() + Syscall::GetPid as u64 * size;
    // SAFETY: both are entries of the syscall table in kernel rodata, 8-byte aligned.
    let (original, replacement) = unsafe {
        (
            core::ptr::read_volatile(entry as *const u64),
            core::ptr::read_volatile(forged as *const u64),
        )
    };
    let offset = (entry % PAGE_SIZE) as usize;
    let Some((frame, copy)) = scratch_copy(Some(entry & !(PAGE_SIZE - 1)), 0) else {
        return Attempt::NotApplicable("out of memory");
    };
    copy[offset..offset + 8].copy_from_slice(&replacement.to_le_bytes());
    // SAFETY: as above, through the forged mapping.
    remap(entry, frame, || unsafe {
        core::ptr::read_volatile(entry as *const u64) != original
    })
}

pub fn lstar_page_remap() -> Attempt {
    // SAFETY: IA32_LSTAR exists on every 64-bit CPU; reading it changes nothing (Rampart lets
    // the read through: the guest set the value itself).
    let lstar = unsafe { cpu::rdmsr(IA32_LSTAR) };
    // The copy is only read, never run. Natively it is the page with one byte changed, the one
    // farthest from the entry point (another CPU may enter a system call meanwhile). Under
    // Rampart kernel text may be execute-only in EPT, so reading it would be refused (rule
    // kernel-text) before the remap is even tried: the copy is the attacker's own page of INT3.
    remap_changed_byte(lstar, hypercall::rampart().is_none(), INT3)
}
