//! The attacks, each a function run in a kernel thread of its own. Each does what a kernel
//! under an attacker's control would, but writes back the value that is there and restores any
//! register it changed, so natively (where every non-hypercall attack succeeds) nothing breaks.
//! Under Rampart the forbidden step faults and the thread ends there.
#![allow(unsafe_code)] // the attacks themselves; each block says why it is harmless natively

use super::hole;
use super::verdict::Attempt;
use crate::arch::phys::{self, Frames};
use crate::arch::{attack, cpu, hypercall, paging};
use crate::mm::address_space::{self, PhysMemory};
use crate::mm::layout::{phys_to_virt, KERNEL_VIRT_OFFSET, SPARE_KERNEL_PAGE};
use crate::mm::page_table::{NO_EXECUTE, PAGE_SIZE, PRESENT, WRITABLE};
use core::sync::atomic::{AtomicU64, Ordering};
use rampart_hv_abi::{Access, Hypercall};

/// One attack: its table name, what it tries, whether it is a hypercall, and its code.
pub struct Attack {
    pub name: &'static str,
    pub tried: &'static str,
    pub vmcall: bool,
    /// A race over many rounds: every lost round may leave an audit record (`judge_race`).
    pub race: bool,
    pub run: fn() -> Attempt,
}

const fn attack(name: &'static str, tried: &'static str, run: fn() -> Attempt) -> Attack {
    Attack {
        name,
        tried,
        vmcall: false,
        race: false,
        run,
    }
}

const fn hypercall(name: &'static str, tried: &'static str, run: fn() -> Attempt) -> Attack {
    Attack {
        name,
        tried,
        vmcall: true,
        race: false,
        run,
    }
}

const fn race(name: &'static str, tried: &'static str, run: fn() -> Attempt) -> Attack {
    Attack {
        name,
        tried,
        vmcall: false,
        race: true,
        run,
    }
}

pub const ATTACKS: [Attack; 38] = [
    attack(
        "text-write",
        "write kernel text via the direct map",
        text_write,
    ),
    attack("cr0-wp", "clear CR0.WP, write kernel text", cr0_wp),
    attack(
        "text-alias",
        "map kernel text writable at a new address, write",
        text_alias,
    ),
    attack(
        "heap-shellcode",
        "write `ret` to a heap page mapped executable, call it",
        shellcode,
    ),
    attack(
        "syscall-table",
        "write the syscall table via the direct map",
        syscall_table,
    ),
    attack(
        "idt-entry",
        "write the #PF gate of the IDT via the direct map",
        idt_entry,
    ),
    attack(
        "lidt-forged",
        "LIDT to a forged copy of the IDT",
        lidt_forged,
    ),
    attack("wrmsr-lstar", "WRMSR IA32_LSTAR (same value)", wrmsr_lstar),
    attack("cr4-smep", "clear CR4.SMEP", cr4_smep),
    attack(
        "hv-read",
        "read the hypervisor's memory (memory-map hole)",
        hv_read,
    ),
    attack(
        "hv-write",
        "write the hypervisor's memory (memory-map hole)",
        hv_write,
    ),
    attack(
        "tss-rsp0",
        "rewrite this CPU's TSS.RSP0 (same value) via its kernel mapping",
        tss_rsp0,
    ),
    hypercall(
        "vmcall-protect",
        "ProtectRange kernel text to RWX",
        vmcall_protect,
    ),
    hypercall("vmcall-revoke", "RevokeExecute kernel text", vmcall_revoke),
    hypercall(
        "grant-unmeasured",
        "GrantExecute a heap page of shellcode",
        grant_unmeasured,
    ),
    hypercall(
        "grant-header",
        "GrantExecute a heap copy of the initrd's first program page (ELF header)",
        super::ept::grant_header,
    ),
    hypercall(
        "grant-prefix",
        "GrantExecute the first 16 bytes of a measured text page (the rest zero)",
        super::grants::grant_prefix,
    ),
    race(
        "grant-race",
        "GrantExecute a copy of a text page while another CPU writes `mov eax, 0x1337c0de; ret` into it, call it",
        super::grants::grant_race,
    ),
    attack(
        "grant-cpl0",
        "GrantExecute a copy of a measured text page, map it as a supervisor page, call it at CPL0",
        super::grants::grant_cpl0,
    ),
    attack(
        "stale-tlb",
        "ProtectRange a page read-only while another CPU writes it; count later writes",
        super::ept::stale_tlb,
    ),
    attack(
        "msr-unknown-write",
        "WRMSR IA32_MTRR_PHYSBASE7 (an MSR no kernel of ours needs)",
        super::msr::msr_unknown_write,
    ),
    attack(
        "msr-unknown-read",
        "RDMSR IA32_MTRR_DEF_TYPE",
        super::msr::msr_unknown_read,
    ),
    attack(
        "apic-base-move",
        "WRMSR IA32_APIC_BASE: move the local APIC window 1 MiB up, read back",
        super::msr::apic_base_move,
    ),
    attack(
        "bar-over-ram",
        "move the smallest memory BAR over a RAM page, read the BAR back",
        super::bar::bar_over_ram,
    ),
    attack(
        "pci-unaligned",
        "OUT 0xCFD, EAX=5 with the Command register selected (natively bytes 5-7 and port 0xD00)",
        super::pci::unaligned_command_write,
    ),
    attack(
        "acpi-s3",
        "PM1 control: SLP_TYP 5 (S3 on Intel chipsets) with SLP_EN, read SLP_TYP back",
        super::pci::acpi_sleep_request,
    ),
    attack(
        "ide-dma",
        "set IDE bus mastering, READ DMA sector 0 into a kernel rodata page",
        super::ide_dma::ide_dma,
    ),
    attack(
        "smi-self",
        "SMI to itself via the ICR (natively a handler at SMBASE+0x8000 writes rodata)",
        super::ipi::smi_self,
    ),
    attack(
        "apm-smi",
        "enable APM SMIs, OUT 0xB2 (natively the SMBASE+0x8000 handler writes rodata)",
        super::smi_port::apm_smi,
    ),
    attack(
        "idt-remap",
        "point the IDT's page entry at a copy with a forged #BP gate, INT3",
        super::remap::idt_remap,
    ),
    attack(
        "gdt-remap",
        "point the GDT's page entry at a copy with a changed byte, read it back",
        super::remap::gdt_remap,
    ),
    attack(
        "syscall-table-remap",
        "point the syscall table's page entry at a copy with one entry changed, read it back",
        super::remap::syscall_table_remap,
    ),
    attack(
        "lstar-page-remap",
        "point the entry of the page LSTAR points into at a copy with a changed byte, read it",
        super::remap::lstar_page_remap,
    ),
    attack(
        "forged-cr3",
        "MOV CR3 to a copy of the root whose IDT path leads to a forged #BP gate, INT3",
        super::roots::forged_cr3,
    ),
    attack(
        "pml4-kernel-entry",
        "write a kernel-half entry into the per-CPU root CR3 holds",
        super::roots::pml4_kernel_entry,
    ),
    attack(
        "cr3-other-cpu",
        "MOV CR3 to another CPU's per-CPU root",
        super::roots::other_cpu_root,
    ),
    attack(
        "cpu-table-alias",
        "alias kernel rodata writable through the CPU's own directory table, store to it",
        super::roots::cpu_table_alias,
    ),
    // Last: natively it costs the kernel the CPU it restarts.
    attack(
        "init-sipi-wake",
        "INIT-SIPI-SIPI to a parked CPU, its code writes rodata",
        super::ipi::init_sipi_wake,
    ),
];

/// A kernel address no one else maps, for alias mappings: the stack window's spare page, so
/// mapping it writes a leaf of a pre-built table only and the attack meets the protection of
/// the page it aliases (`pagetables = locked` leaves those tables writable, as for stacks).
const ALIAS_PAGE: u64 = SPARE_KERNEL_PAGE;
/// Frames an attack allocated (0 = none), freed by [`cleanup`] whether or not it survived.
static SCRATCH_FRAMES: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
/// `ret`.
const SHELLCODE: [u8; 1] = [0xc3];
/// Vector 14's gate: 16 bytes each.
const PAGE_FAULT_GATE_OFFSET: u64 = 14 * 16;
const IA32_LSTAR: u32 = 0xc000_0082;

/// Undoes what the last attack left: the alias mapping and the scratch frame.
pub fn cleanup() {
    // The attack thread may have run on another CPU, which may still cache the alias.
    if address_space::unmap(&mut Frames, paging::kernel_root(), ALIAS_PAGE).is_some() {
        crate::smp::flush_kernel_page(ALIAS_PAGE);
    }
    super::roots::clear_cpu_table_alias();
    for slot in &SCRATCH_FRAMES {
        let frame = slot.swap(0, Ordering::SeqCst);
        if frame != 0 {
            Frames.free(frame);
        }
    }
}

/// Physical kernel text: (start, length).
/// Guest-physical start and length of the kernel's text.
fn text() -> (u64, u64) {
    let image = paging::kernel_image();
    (
        image.text_start - KERNEL_VIRT_OFFSET,
        image.text_end - image.text_start,
    )
}

/// Guest-physical address of [`attack::text_target`], a byte of kernel text whose value is known.
fn text_target() -> u64 {
    attack::text_target as *const () as u64 - KERNEL_VIRT_OFFSET
}

/// Writes the known byte of [`attack::text_target`] at `address` (a mapping of it): natively
/// nothing changes; under Rampart the write faults and ends this thread. No read comes first.
fn rewrite_text_byte(address: u64) -> Attempt {
    // SAFETY: the address maps `text_target`, whose first byte is TEXT_TARGET_BYTE already.
    unsafe { attack::write_byte(address, attack::TEXT_TARGET_BYTE) };
    Attempt::Done
}

/// Rewrites the byte at `address` with itself.
fn rewrite_byte(address: u64) -> Attempt {
    // SAFETY: the address is mapped (the caller's mapping); the same value goes back, so
    // natively nothing changes; under Rampart the write faults and ends this thread.
    unsafe { attack::write_byte(address, attack::read_byte(address)) };
    Attempt::Done
}

/// Maps `frame` at [`ALIAS_PAGE`] with `flags` in the kernel's tables.
pub(super) fn alias(frame: u64, flags: u64) -> Option<u64> {
    address_space::map(&mut Frames, paging::kernel_root(), ALIAS_PAGE, frame, flags).ok()?;
    phys::invalidate_page(ALIAS_PAGE);
    Some(ALIAS_PAGE)
}

/// A fresh frame holding `bytes` (freed by [`cleanup`]); `None` without memory or once an
/// attack holds eight.
pub(super) fn scratch_frame(bytes: &[u8]) -> Option<u64> {
    let slot = SCRATCH_FRAMES
        .iter()
        .find(|slot| slot.load(Ordering::SeqCst) == 0)?;
    let frame = Frames.allocate()?;
    slot.store(frame, Ordering::SeqCst);
    phys::write_bytes(frame, bytes);
    Some(frame)
}

fn text_write() -> Attempt {
    rewrite_text_byte(phys_to_virt(text_target()))
}

fn cr0_wp() -> Attempt {
    let cr0 = cpu::read_cr0();
    let target = attack::text_target as *const () as u64;
    // SAFETY: interrupts are off; with WP clear only this thread's write to read-only text
    // differs, and it writes the byte that is there before WP is set again.
    unsafe {
        cpu::write_cr0(cr0 & !cpu::CR0_WP);
        attack::write_byte(target, attack::TEXT_TARGET_BYTE);
        cpu::write_cr0(cr0);
    }
    Attempt::Done
}

fn text_alias() -> Attempt {
    let target = text_target();
    match alias(target & !(PAGE_SIZE - 1), PRESENT | WRITABLE | NO_EXECUTE) {
        Some(page) => rewrite_text_byte(page + (target & (PAGE_SIZE - 1))),
        None => Attempt::NotApplicable("out of memory"),
    }
}

fn shellcode() -> Attempt {
    let Some(page) = scratch_frame(&SHELLCODE).and_then(|frame| alias(frame, PRESENT)) else {
        return Attempt::NotApplicable("out of memory");
    };
    // SAFETY: the page holds a bare `ret` (written above), mapped executable.
    unsafe { attack::call(page) };
    Attempt::Done
}

/// The TSS's RSP0 field (offset 4, SDM Vol. 3A 7.7 Figure 7-11): a new value would be a stack
/// pivot on the next interrupt from ring 3; the same value changes nothing natively.
fn tss_rsp0() -> Attempt {
    const RSP0_OFFSET: u64 = 4;
    rewrite_byte(crate::arch::gdt::tss_address(crate::arch::percpu::index()) + RSP0_OFFSET)
}

fn syscall_table() -> Attempt {
    rewrite_byte(phys_to_virt(
        crate::syscall::table_address() - KERNEL_VIRT_OFFSET,
    ))
}

fn idt_entry() -> Attempt {
    let (base, _) = attack::sidt();
    rewrite_byte(phys_to_virt(base - KERNEL_VIRT_OFFSET) + PAGE_FAULT_GATE_OFFSET)
}

fn lidt_forged() -> Attempt {
    let (base, limit) = attack::sidt();
    // SAFETY: the IDT (a page in the kernel image) is mapped and readable.
    let idt = unsafe { core::slice::from_raw_parts(base as *const u8, PAGE_SIZE as usize) };
    let Some(forged) = scratch_frame(idt).map(phys_to_virt) else {
        return Attempt::NotApplicable("out of memory");
    };
    // SAFETY: the copy has the same gates as the real IDT; interrupts are off, and the real
    // IDT is loaded again right after.
    unsafe { attack::lidt(forged, limit) };
    let loaded = attack::sidt().0;
    // SAFETY: the kernel's own IDT, as it was.
    unsafe { attack::lidt(base, limit) };
    if loaded == forged {
        Attempt::Done
    } else {
        Attempt::NotApplicable("LIDT ignored")
    }
}

fn wrmsr_lstar() -> Attempt {
    // SAFETY: IA32_LSTAR exists on every 64-bit CPU; the same value goes back.
    unsafe { cpu::wrmsr(IA32_LSTAR, cpu::rdmsr(IA32_LSTAR)) };
    Attempt::Done
}

fn cr4_smep() -> Attempt {
    let cr4 = cpu::read_cr4();
    if cr4 & cpu::CR4_SMEP == 0 {
        return Attempt::NotApplicable("CPU lacks SMEP");
    }
    // SAFETY: without SMEP the kernel only loses a protection (no user page is executed in
    // between); CR4 is restored at once.
    unsafe {
        cpu::write_cr4(cr4 & !cpu::CR4_SMEP);
        cpu::write_cr4(cr4);
    }
    Attempt::Done
}

/// Where the hypervisor's memory must be: the largest hole in the memory map (firmware maps
/// can have small gaps of their own). No hypervisor, no hypervisor memory: natively N/A.
fn hypervisor_guess() -> Result<u64, Attempt> {
    if hypercall::rampart().is_none() {
        return Err(Attempt::NotApplicable("no hypervisor"));
    }
    let info = crate::boot::BOOT_INFO.get();
    let holes = info.map(|info| hole::ram_holes(info.memory_regions()));
    holes
        .and_then(|holes| holes.max_by_key(|(start, end)| end - start))
        .map(|(start, _)| start)
        .ok_or(Attempt::NotApplicable("no hole in the memory map"))
}

fn hv_read() -> Attempt {
    let hole = match hypervisor_guess() {
        Ok(hole) => hole,
        Err(not_applicable) => return not_applicable,
    };
    // SAFETY: the direct map covers all physical memory below its top, holes included.
    unsafe { attack::read_byte(phys_to_virt(hole)) };
    Attempt::Done
}

fn hv_write() -> Attempt {
    let hole = match hypervisor_guess() {
        Ok(hole) => hole,
        Err(not_applicable) => return not_applicable,
    };
    // SAFETY: a blind write (reading first would be blocked as a read): only ever made where
    // the memory map has a hole, which is the hypervisor's and absent from EPT.
    unsafe { attack::write_byte(phys_to_virt(hole), 0) };
    Attempt::Done
}

/// The result of a policy hypercall as an attempt.
fn hypercall_result(result: i64) -> Attempt {
    match result {
        0 => Attempt::Done,
        error => Attempt::Refused(error),
    }
}

fn vmcall_protect() -> Attempt {
    let (start, length) = text();
    let all = u64::from(Access::RWX.bits());
    let number = Hypercall::ProtectRange as u64;
    // SAFETY: ProtectRange writes no guest memory; natively VMCALL raises #UD, ending this
    // thread.
    hypercall_result(unsafe { hypercall::vmcall(number, start, length, all) })
}

fn vmcall_revoke() -> Attempt {
    let (start, length) = text();
    let number = Hypercall::RevokeExecute as u64;
    // SAFETY: as in `vmcall_protect`.
    hypercall_result(unsafe { hypercall::vmcall(number, start, length, 0) })
}

fn grant_unmeasured() -> Attempt {
    let Some(frame) = scratch_frame(&SHELLCODE) else {
        return Attempt::NotApplicable("out of memory");
    };
    let number = Hypercall::GrantExecute as u64;
    // SAFETY: as in `vmcall_protect`.
    hypercall_result(unsafe { hypercall::vmcall(number, frame, PAGE_SIZE, 0) })
}
