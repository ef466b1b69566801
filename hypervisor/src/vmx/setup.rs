//! The VMCS a vCPU launches with: controls, host state and the guest's entry state (SDM Vol. 3C
//! 25.4-25.8), computed as data ([`launch_image`], host-testable and checked against chapter 27
//! by `vmx::entry_checks`) and written by one routine ([`write_image`]).
#![allow(unsafe_code)]

use super::caps::VmxCapabilities;
use super::controls::Controls;
use super::msr::{IA32_EFER, IA32_PAT};
use super::vmcs::{Vmcs, VmcsError};
use super::vmcs_image::VmcsImage;
use crate::arch::descriptors::{HostTables, HOST_CODE_SELECTOR, HOST_DATA_SELECTOR};
use crate::handoff::GuestEntry;
use crate::policy::pinned::{CR0_WP, CR4_PINNABLE};
use rampart_boot_info::{GDT_SELECTOR_CODE, GDT_SELECTOR_DATA, GDT_SELECTOR_TSS};
use x86::vmx::vmcs::control::{EntryControls, ExitControls};
use x86::vmx::vmcs::{control, guest, host};

/// The VPID of the one guest (0 is reserved for VMX root, SDM Vol. 3C 29.1).
pub const GUEST_VPID: u16 = 1;
/// Guest CR0 at entry: PE, MP, ET, NE, WP, PG (entry contract: paging on, WP = 1).
pub const GUEST_CR0: u64 = 0x8001_0033;
/// Guest CR4 at entry: PAE, OSFXSR, OSXMMEXCPT (64-bit paging needs PAE).
pub const GUEST_CR4: u64 = (1 << 5) | (1 << 9) | (1 << 10);
/// Guest EFER at entry: SCE off, LME, LMA, NXE (entry contract: NXE = 1).
const GUEST_EFER: u64 = (1 << 8) | (1 << 10) | (1 << 11);
/// Power-on PAT (SDM Vol. 3A 13.12.4): WB, WT, UC-, UC, repeated.
const DEFAULT_PAT: u64 = 0x0007_0406_0007_0406;
/// RFLAGS bit 1 is reserved and always 1.
const RFLAGS_RESERVED: u64 = 1 << 1;
/// DR7 at reset.
const DR7_INIT: u64 = 0x400;

/// Segment access rights in VMCS format (SDM Vol. 3C 25.4.1, Table 25-2).
const AR_CODE64: u64 = 0xa09b; // type 11 (execute/read, accessed), S, P, L, G
const AR_DATA: u64 = 0xc093; // type 3 (read/write, accessed), S, P, D/B, G
const AR_TSS_BUSY: u64 = 0x8b; // type 11 (busy 64-bit TSS), P
const AR_UNUSABLE: u64 = 1 << 16;
const FLAT_LIMIT: u64 = 0xffff_ffff;

/// Where the VMCS's physical pointers go.
#[derive(Clone, Copy, Debug)]
pub struct Structures {
    pub eptp: u64,
    pub msr_bitmap: u64,
    pub io_bitmap_a: u64,
    pub io_bitmap_b: u64,
    /// 0 when VPID is off.
    pub vpid: u16,
}

/// Where the host resumes on exits.
#[derive(Clone, Copy, Debug)]
pub struct HostSetup {
    pub cr3: u64,
    pub tables: HostTables,
    pub exit_stack_top: u64,
    pub exit_entry: u64,
    /// This CPU's slot, kept in host GS base (`smp::this_cpu`).
    pub cpu_slot: u64,
}

/// The host CPU state the host-state area copies (read once per launch: [`host_cpu`]).
#[derive(Clone, Copy, Debug)]
pub struct HostCpu {
    pub cr0: u64,
    pub cr4: u64,
    pub efer: u64,
    pub pat: u64,
}

/// This CPU's CR0, CR4, IA32_EFER and IA32_PAT.
pub fn host_cpu() -> HostCpu {
    // SAFETY: reading control registers and these MSRs at CPL0 has no side effects.
    unsafe {
        HostCpu {
            cr0: x86::controlregs::cr0().bits() as u64,
            cr4: x86::controlregs::cr4().bits() as u64,
            efer: x86::msr::rdmsr(IA32_EFER),
            pat: x86::msr::rdmsr(IA32_PAT),
        }
    }
}

/// The whole VMCS a vCPU is launched with (controls, host state, guest entry state), as data.
pub fn launch_image(
    caps: &VmxCapabilities,
    controls: &Controls,
    structures: &Structures,
    host: &HostSetup,
    cpu: &HostCpu,
    entry: &GuestEntry,
) -> VmcsImage {
    let mut image = VmcsImage::new();
    control_fields(&mut image, caps, controls, structures);
    host_fields(&mut image, controls, host, cpu);
    guest_fields(&mut image, caps, controls, entry);
    image
}

/// Writes every field of `image` (VMWRITE, SDM Vol. 3C 25.11.4).
///
/// # Safety
/// A VMCS is current; the image's pointers name hypervisor-owned, initialised bitmaps and EPT
/// tables that map no hypervisor memory, and its host state the hypervisor's own tables, an
/// exit stack nothing else uses and the VM-exit stub ([`launch_image`] from such inputs).
pub unsafe fn write_image(vmcs: &Vmcs, image: &VmcsImage) -> Result<(), VmcsError> {
    for &(field, value) in image.fields() {
        // SAFETY: delegated to the caller.
        unsafe { vmcs.write_host_or_control(field, value)? };
    }
    Ok(())
}

/// The control fields.
fn control_fields(
    image: &mut VmcsImage,
    caps: &VmxCapabilities,
    controls: &Controls,
    structures: &Structures,
) {
    // Owned bits: those VMX fixes, plus the pinned ones (CR0.WP; CR4.SMEP/SMAP/UMIP, pinned
    // once set), so every write that changes one exits (exits::cr_access).
    let cr0_mask = caps.cr0_fixed0 | !caps.cr0_fixed1 | CR0_WP;
    let cr4_mask =
        caps.cr4_fixed0 | (!caps.cr4_fixed1 & 0xffff_ffff) | (CR4_PINNABLE & caps.cr4_fixed1);
    let fields = [
        (
            control::PINBASED_EXEC_CONTROLS,
            u64::from(controls.pinbased),
        ),
        (
            control::PRIMARY_PROCBASED_EXEC_CONTROLS,
            u64::from(controls.primary),
        ),
        (
            control::SECONDARY_PROCBASED_EXEC_CONTROLS,
            u64::from(controls.secondary),
        ),
        (control::VMEXIT_CONTROLS, u64::from(controls.exit)),
        (control::VMENTRY_CONTROLS, u64::from(controls.entry)),
        (control::EXCEPTION_BITMAP, 0),
        (control::PAGE_FAULT_ERR_CODE_MASK, 0),
        (control::PAGE_FAULT_ERR_CODE_MATCH, 0),
        (control::CR3_TARGET_COUNT, 0),
        (control::VMEXIT_MSR_STORE_COUNT, 0),
        (control::VMEXIT_MSR_LOAD_COUNT, 0),
        (control::VMENTRY_MSR_LOAD_COUNT, 0),
        (control::VMENTRY_INTERRUPTION_INFO_FIELD, 0),
        (control::TSC_OFFSET_FULL, 0),
        // Bits the CPU pins in VMX operation are owned by the hypervisor: the guest reads the
        // shadow, and a write that changes them exits (SDM 25.6.6).
        (control::CR0_GUEST_HOST_MASK, cr0_mask & 0xffff_ffff),
        (control::CR4_GUEST_HOST_MASK, cr4_mask),
        (control::CR0_READ_SHADOW, GUEST_CR0),
        (control::CR4_READ_SHADOW, GUEST_CR4),
        (control::MSR_BITMAPS_ADDR_FULL, structures.msr_bitmap),
        (control::IO_BITMAP_A_ADDR_FULL, structures.io_bitmap_a),
        (control::IO_BITMAP_B_ADDR_FULL, structures.io_bitmap_b),
        (control::EPTP_FULL, structures.eptp),
    ];
    for (field, value) in fields {
        image.set(field, value);
    }
    if structures.vpid != 0 {
        image.set(control::VPID, u64::from(structures.vpid));
    }
}

/// The host-state area: `cpu`'s control registers and MSRs, and `host`.
fn host_fields(image: &mut VmcsImage, controls: &Controls, host: &HostSetup, cpu: &HostCpu) {
    let fields = [
        (host::CR0, cpu.cr0),
        (host::CR3, host.cr3),
        (host::CR4, cpu.cr4),
        (host::CS_SELECTOR, u64::from(HOST_CODE_SELECTOR)),
        (host::SS_SELECTOR, u64::from(HOST_DATA_SELECTOR)),
        (host::DS_SELECTOR, u64::from(HOST_DATA_SELECTOR)),
        (host::ES_SELECTOR, u64::from(HOST_DATA_SELECTOR)),
        (host::FS_SELECTOR, u64::from(HOST_DATA_SELECTOR)),
        (host::GS_SELECTOR, u64::from(HOST_DATA_SELECTOR)),
        (host::TR_SELECTOR, u64::from(host.tables.tss_selector)),
        (host::FS_BASE, 0),
        (host::GS_BASE, host.cpu_slot),
        (host::TR_BASE, host.tables.tss_base),
        (host::GDTR_BASE, host.tables.gdt_base),
        (host::IDTR_BASE, host.tables.idt_base),
        (host::IA32_SYSENTER_CS, 0),
        (host::IA32_SYSENTER_ESP, 0),
        (host::IA32_SYSENTER_EIP, 0),
        (host::IA32_EFER_FULL, cpu.efer),
        (host::RSP, host.exit_stack_top),
        (host::RIP, host.exit_entry),
        (host::IA32_PAT_FULL, cpu.pat),
    ];
    let count = fields.len() - usize::from(!controls.has_exit(ExitControls::LOAD_IA32_PAT));
    for &(field, value) in &fields[..count] {
        image.set(field, value);
    }
}

/// One guest segment register: selector, base, limit and access rights. Each segment's four
/// fields sit at the same distance from ES's (SDM Vol. 3D Appendix B: ES, CS, SS, DS, FS, GS,
/// LDTR, TR, 2 apart in every field group).
fn segment_fields(
    image: &mut VmcsImage,
    selector_field: u32,
    (selector, base, limit, rights): (u16, u64, u64, u64),
) {
    let offset = selector_field - guest::ES_SELECTOR;
    image.set(selector_field, u64::from(selector));
    image.set(guest::ES_BASE + offset, base);
    image.set(guest::ES_LIMIT + offset, limit);
    image.set(guest::ES_ACCESS_RIGHTS + offset, rights);
}

/// The guest-state area per the entry contract (rampart-boot-info).
fn guest_fields(
    image: &mut VmcsImage,
    caps: &VmxCapabilities,
    controls: &Controls,
    entry: &GuestEntry,
) {
    let flat_data = (GDT_SELECTOR_DATA, 0, FLAT_LIMIT, AR_DATA);
    let code = (GDT_SELECTOR_CODE, 0, FLAT_LIMIT, AR_CODE64);
    let tss = (
        GDT_SELECTOR_TSS,
        entry.tss_base,
        u64::from(entry.tss_limit),
        AR_TSS_BUSY,
    );
    for (selector_field, segment) in [
        (guest::CS_SELECTOR, code),
        (guest::SS_SELECTOR, flat_data),
        (guest::DS_SELECTOR, flat_data),
        (guest::ES_SELECTOR, flat_data),
        (guest::FS_SELECTOR, flat_data),
        (guest::GS_SELECTOR, flat_data),
        (guest::TR_SELECTOR, tss),
        (guest::LDTR_SELECTOR, (0, 0, 0, AR_UNUSABLE)),
    ] {
        segment_fields(image, selector_field, segment);
    }
    let fields = [
        (guest::GDTR_BASE, entry.gdt_base),
        (guest::GDTR_LIMIT, u64::from(entry.gdt_limit)),
        (guest::IDTR_BASE, 0),
        (guest::IDTR_LIMIT, 0),
        (guest::CR0, caps.fit_cr0(GUEST_CR0, false)),
        (guest::CR3, entry.cr3),
        (guest::CR4, caps.fit_cr4(GUEST_CR4)),
        (guest::DR7, DR7_INIT),
        (guest::RSP, entry.rsp),
        (guest::RIP, entry.rip),
        (guest::RFLAGS, RFLAGS_RESERVED),
        (guest::IA32_DEBUGCTL_FULL, 0),
        (guest::IA32_SYSENTER_CS, 0),
        (guest::IA32_SYSENTER_ESP, 0),
        (guest::IA32_SYSENTER_EIP, 0),
        (guest::IA32_EFER_FULL, GUEST_EFER),
        (guest::LINK_PTR_FULL, u64::MAX),
        (guest::ACTIVITY_STATE, 0),
        (guest::INTERRUPTIBILITY_STATE, 0),
        (guest::PENDING_DBG_EXCEPTIONS, 0),
    ];
    for (field, value) in fields {
        image.set(field, value);
    }
    if controls.has_entry(EntryControls::LOAD_IA32_PAT) {
        image.set(guest::IA32_PAT_FULL, DEFAULT_PAT);
    }
}

#[cfg(test)]
mod tests {
    use super::guest;

    #[test]
    fn segment_fields_share_their_distance_from_es() {
        for (selector, base, limit, rights) in [
            (
                guest::CS_SELECTOR,
                guest::CS_BASE,
                guest::CS_LIMIT,
                guest::CS_ACCESS_RIGHTS,
            ),
            (
                guest::SS_SELECTOR,
                guest::SS_BASE,
                guest::SS_LIMIT,
                guest::SS_ACCESS_RIGHTS,
            ),
            (
                guest::DS_SELECTOR,
                guest::DS_BASE,
                guest::DS_LIMIT,
                guest::DS_ACCESS_RIGHTS,
            ),
            (
                guest::ES_SELECTOR,
                guest::ES_BASE,
                guest::ES_LIMIT,
                guest::ES_ACCESS_RIGHTS,
            ),
            (
                guest::FS_SELECTOR,
                guest::FS_BASE,
                guest::FS_LIMIT,
                guest::FS_ACCESS_RIGHTS,
            ),
            (
                guest::GS_SELECTOR,
                guest::GS_BASE,
                guest::GS_LIMIT,
                guest::GS_ACCESS_RIGHTS,
            ),
            (
                guest::TR_SELECTOR,
                guest::TR_BASE,
                guest::TR_LIMIT,
                guest::TR_ACCESS_RIGHTS,
            ),
            (
                guest::LDTR_SELECTOR,
                guest::LDTR_BASE,
                guest::LDTR_LIMIT,
                guest::LDTR_ACCESS_RIGHTS,
            ),
        ] {
            let offset = selector - guest::ES_SELECTOR;
            assert_eq!(base, guest::ES_BASE + offset);
            assert_eq!(limit, guest::ES_LIMIT + offset);
            assert_eq!(rights, guest::ES_ACCESS_RIGHTS + offset);
        }
    }
}
