//! Descriptor-table locking (hypervisor/DESIGN.md invariant 6): after the `LockDescriptorTables`
//! hypercall, descriptor-table exiting is on (secondary control bit 2, SDM Vol. 3C 26.1.3):
//! LGDT/LIDT/LLDT/LTR are refused with #GP and audited, SGDT/SIDT/SLDT/STR are emulated, and
//! the GDT and IDT pages are read-only in EPT, so neither the registers nor the tables move.

use super::resume::{audit_register, guest_cpl, Exception, Resume};
use crate::ept::entry::Permissions;
use crate::guest_memory::{Gpa, GuestBytes, GuestPhysical};
use crate::guest_paging::walker;
use crate::locks;
use crate::policy::operations;
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::instruction_info::{decode_operand, Operand, TableInstruction};
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{Access, DescriptorLock, HypercallError, Rule};
use x86::vmx::vmcs::{guest, ro};

const PAGE: u64 = 4096;

/// The hypercall: protect the current GDT and IDT (and TSS) pages, then turn exiting on.
pub fn lock(vmcs: &Vmcs, flags: u64) -> rampart_hv_abi::HypercallResult {
    if locks::descriptor_tables_locked() {
        return Ok(0);
    }
    let count = protect_tables(vmcs, flags)?;
    // The other vCPUs get descriptor-table exiting before this hypercall returns.
    crate::smp::shootdown::tighten_all();
    log::info!("descriptor tables locked ({count} pages read-only)");
    Ok(0)
}

/// Makes the table pages read-only and turns exiting on in this VMCS; returns the page count.
fn protect_tables(vmcs: &Vmcs, flags: u64) -> Result<usize, HypercallError> {
    use HypercallError::{InvalidArgument, NotSupported, OutOfRange};
    let s = state::get();
    if !s.caps.secondary_allows(locks::vmcs::DTABLE_EXITING) {
        return Err(NotSupported);
    }
    let flags = DescriptorLock::from_bits(flags).ok_or(InvalidArgument)?;
    let tables = [
        (vmcs.get(guest::GDTR_BASE), vmcs.get(guest::GDTR_LIMIT) + 1),
        (vmcs.get(guest::IDTR_BASE), vmcs.get(guest::IDTR_LIMIT) + 1),
        (vmcs.get(guest::TR_BASE), vmcs.get(guest::TR_LIMIT) + 1),
    ];
    let table_count = 2 + usize::from(flags.contains(DescriptorLock::TSS));
    // Translate every page first, so that a bad table changes nothing.
    let (cr3, cr4) = (vmcs.get(guest::CR3), vmcs.get(guest::CR4));
    let mut frames = locks::TableFrames::new();
    for (base, length) in tables.into_iter().take(table_count) {
        for page in (base & !(PAGE - 1)..base + length).step_by(PAGE as usize) {
            let mapping =
                walker::translate(&GuestPhysical, cr3, cr4, page).map_err(|_| OutOfRange)?;
            frames
                .push(mapping.gpa & !(PAGE - 1))
                .map_err(|_| OutOfRange)?;
        }
    }
    let mut guard = state::EPT.lock();
    let ept = guard.as_mut().ok_or(OutOfRange)?;
    for &frame in &frames {
        // Keep only read: never loosens (a read-only page stays read-only).
        operations::protect_range(ept, &s.layout, frame, PAGE, Permissions::READ)
            .map_err(|_| OutOfRange)?;
    }
    drop(guard);
    crate::smp::shootdown::tighten_all();
    // SAFETY: the capability MSR allows descriptor-table exiting (checked above).
    #[allow(unsafe_code)]
    unsafe { locks::vmcs::enable_descriptor_table_exiting(vmcs) }.map_err(|_| NotSupported)?;
    let count = frames.len();
    locks::lock_descriptor_tables(frames);
    Ok(count)
}

/// A descriptor-table exit (reasons 46 and 47).
pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters, tr_ldtr: bool) -> Resume {
    let info = vmcs.get(ro::VMEXIT_INSTRUCTION_INFO) as u32;
    let instruction = TableInstruction::decode(info, tr_ldtr);
    if instruction.is_load() {
        let rule = Rule::LockedDescriptorTable;
        audit_register(vmcs, rule, Access::WRITE, 0, instruction as u64);
        return Resume::Inject(Exception::GeneralProtection);
    }
    let (limit, base) = match instruction {
        TableInstruction::Sgdt => (vmcs.get(guest::GDTR_LIMIT), vmcs.get(guest::GDTR_BASE)),
        TableInstruction::Sidt => (vmcs.get(guest::IDTR_LIMIT), vmcs.get(guest::IDTR_BASE)),
        TableInstruction::Sldt => (vmcs.get(guest::LDTR_SELECTOR), 0),
        _ => (vmcs.get(guest::TR_SELECTOR), 0),
    };
    match decode_operand(info, tr_ldtr) {
        Operand::Register(number) => {
            if let Some(register) = regs.by_number(number) {
                *register = limit; // a selector, zero-extended (SDM Vol. 2B "STR"/"SLDT")
            }
        }
        Operand::Memory(operand) => {
            let displacement = vmcs.get(ro::EXIT_QUALIFICATION);
            let effective = operand.effective_address(displacement, |r| regs.value(r).unwrap_or(0));
            let segment_base = match operand.segment {
                4 => vmcs.get(guest::FS_BASE),
                5 => vmcs.get(guest::GS_BASE),
                _ => 0,
            };
            // The pseudo-descriptor: 16-bit limit, then 64-bit base, little-endian (SDM Vol. 2B
            // "SGDT"); SGDT/SIDT store all 10 bytes, SLDT/STR the 16-bit selector only.
            let bytes = ((u128::from(base) << 16) | u128::from(limit as u16)).to_le_bytes();
            let table = matches!(instruction, TableInstruction::Sgdt | TableInstruction::Sidt);
            let length = if table { 10 } else { 2 };
            if store(vmcs, segment_base.wrapping_add(effective), &bytes[..length]).is_none() {
                return Resume::Inject(Exception::GeneralProtection);
            }
        }
    }
    Resume::NextInstruction
}

/// Writes `data` at guest-virtual `gva` as the guest itself could: its page tables must allow
/// the write at its CPL, and EPT must allow it (no confused deputy). The EPT lock is held from
/// the EPT check through the copy, so no other vCPU's request (ProtectRange, GrantExecute,
/// a page-table lock) can take the write right away in between (hypervisor/DESIGN.md invariant 9).
fn store(vmcs: &Vmcs, gva: u64, data: &[u8]) -> Option<()> {
    let (cr3, cr4) = (vmcs.get(guest::CR3), vmcs.get(guest::CR4));
    let user = guest_cpl(vmcs) == 3;
    let layout = &state::get().layout;
    let mut done = 0;
    while done < data.len() {
        let address = gva.wrapping_add(done as u64);
        let mapping = walker::translate(&GuestPhysical, cr3, cr4, address).ok()?;
        if !mapping.writable || (user && !mapping.user) {
            return None;
        }
        let take = (data.len() - done).min((PAGE - mapping.gpa % PAGE) as usize);
        let mut guard = state::EPT.lock();
        let page = mapping.gpa & !(PAGE - 1);
        // Write-back guest RAM outside the hypervisor that the guest may write.
        let rights = operations::ram_page(guard.as_mut()?, layout, page).ok()?;
        if !rights.writable() {
            return None;
        }
        // The EPT lock (held) keeps the write right in place until the copy is done.
        #[allow(unsafe_code)]
        // SAFETY: `ram_page` found the page in guest RAM outside the hypervisor, and EPT lets
        // the guest write it; `take` stays inside the page.
        let target = unsafe { GuestBytes::vouched(Gpa(mapping.gpa), take) };
        target.write(&data[done..done + take]);
        drop(guard);
        done += take;
    }
    Some(())
}
