//! SDM Vol. 3C 27.2: checks on the VMX controls (27.2.1) and the host-state area (27.2.2-27.2.4).

use super::{canonical, has, pat_ok, Checked, Report, CR4_PAE, EFER_DEFINED, EFER_LMA, EFER_LME};
use crate::vmx::caps::ept_cap;
use x86::vmx::vmcs::control::{
    EntryControls, ExitControls, PinbasedControls, PrimaryControls, SecondaryControls,
};
use x86::vmx::vmcs::{control, host};

/// The section of the execution-control checks.
const EXEC: &str = "27.2.1.1";

/// Runs the 27.2 checks into `r`.
pub(super) fn check(r: &mut Report, vmcs: &Checked<'_>) {
    execution_controls(r, vmcs);
    ept_and_vpid(r, vmcs);
    exit_and_entry_controls(r, vmcs);
    host_registers(r, vmcs);
    host_segments(r, vmcs);
}

/// True if a control field's value has the bits its capability MSR fixes (allowed 0-settings
/// in bits 31:0, allowed 1-settings in 63:32, SDM Vol. 3D A.3-A.5).
fn fits(value: u64, capability: u64) -> bool {
    let (must_be_one, may_be_one) = (capability & 0xffff_ffff, capability >> 32);
    value & must_be_one == must_be_one && value & !may_be_one == 0
}

/// 27.2.1.1 VM-execution control fields.
fn execution_controls(r: &mut Report, vmcs: &Checked<'_>) {
    let v = |field| vmcs.v(field);
    let beyond_width = |address: u64| vmcs.beyond_width(address);
    let (caps, secondary) = (vmcs.caps, vmcs.secondary);
    let page_address_ok = |address: u64| address.is_multiple_of(4096) && !beyond_width(address);
    let pin = v(control::PINBASED_EXEC_CONTROLS);
    let primary = v(control::PRIMARY_PROCBASED_EXEC_CONTROLS);
    r.rule(
        EXEC,
        "pin-based controls within the allowed 0/1 settings",
        fits(pin, caps.pinbased),
    );
    r.rule(
        EXEC,
        "primary processor-based controls within the allowed settings",
        fits(primary, caps.procbased),
    );
    r.rule(
        EXEC,
        "secondary processor-based controls within the allowed settings",
        fits(secondary, caps.procbased2),
    );
    r.rule(
        EXEC,
        "CR3-target count at most the CPU's (IA32_VMX_MISC[24:16])",
        v(control::CR3_TARGET_COUNT) as usize <= caps.cr3_target_count(),
    );
    if has(primary, PrimaryControls::USE_IO_BITMAPS.bits()) {
        let both = page_address_ok(v(control::IO_BITMAP_A_ADDR_FULL))
            && page_address_ok(v(control::IO_BITMAP_B_ADDR_FULL));
        r.rule(
            EXEC,
            "I/O-bitmap addresses 4-KByte aligned, within the physical-address width",
            both,
        );
    }
    if has(primary, PrimaryControls::USE_MSR_BITMAPS.bits()) {
        let ok = page_address_ok(v(control::MSR_BITMAPS_ADDR_FULL));
        r.rule(
            EXEC,
            "MSR-bitmap address 4-KByte aligned, within the physical-address width",
            ok,
        );
    }
    let nmi_exiting = has(pin, PinbasedControls::NMI_EXITING.bits());
    let virtual_nmis = has(pin, PinbasedControls::VIRTUAL_NMIS.bits());
    r.rule(
        EXEC,
        "virtual NMIs only with NMI exiting",
        !virtual_nmis || nmi_exiting,
    );
    let nmi_window = has(primary, PrimaryControls::NMI_WINDOW_EXITING.bits());
    r.rule(
        EXEC,
        "NMI-window exiting only with virtual NMIs",
        !nmi_window || virtual_nmis,
    );
    let unrestricted = has(secondary, SecondaryControls::UNRESTRICTED_GUEST.bits());
    let ept = has(secondary, SecondaryControls::ENABLE_EPT.bits());
    r.rule(
        EXEC,
        "unrestricted guest only with EPT",
        !unrestricted || ept,
    );
    let unused = SecondaryControls::VIRTUAL_INTERRUPT_DELIVERY
        | SecondaryControls::VMCS_SHADOWING
        | SecondaryControls::ENABLE_PML
        | SecondaryControls::EPT_VIOLATION_VE
        | SecondaryControls::ENABLE_VM_FUNCTIONS;
    r.rule(
        EXEC,
        "controls whose structures Rampart never sets up are 0",
        secondary & u64::from(unused.bits()) == 0
            && !has(pin, PinbasedControls::POSTED_INTERRUPTS.bits()),
    );
}

/// 27.2.1.1, continued: the EPT pointer and the VPID.
fn ept_and_vpid(r: &mut Report, vmcs: &Checked<'_>) {
    let (caps, secondary) = (vmcs.caps, vmcs.secondary);
    if has(secondary, SecondaryControls::ENABLE_EPT.bits()) {
        let eptp = vmcs.v(control::EPTP_FULL);
        let memory_type_ok = match eptp & 0b111 {
            0 => caps.ept_has(ept_cap::MEMORY_TYPE_UC),
            6 => caps.ept_has(ept_cap::MEMORY_TYPE_WB),
            _ => false,
        };
        r.rule(
            EXEC,
            "EPTP memory type UC or WB, as IA32_VMX_EPT_VPID_CAP allows",
            memory_type_ok,
        );
        let walk_ok = (eptp >> 3) & 0b111 == 3 && caps.ept_has(ept_cap::PAGE_WALK_4);
        r.rule(
            EXEC,
            "EPTP page-walk length 4 (value 3), as the CPU supports",
            walk_ok,
        );
        let ad_ok = eptp & (1 << 6) == 0 || caps.ept_has(ept_cap::ACCESSED_DIRTY);
        r.rule(
            EXEC,
            "EPTP accessed/dirty enable only where supported",
            ad_ok,
        );
        let reserved_ok = (eptp >> 7) & 0x1f == 0 && !vmcs.beyond_width(eptp & !0xfff);
        r.rule(
            EXEC,
            "EPTP bits 11:7 and beyond the physical-address width 0",
            reserved_ok,
        );
    }
    if has(secondary, SecondaryControls::ENABLE_VPID.bits()) {
        r.rule(
            EXEC,
            "VPID not 0 when VPID is enabled",
            vmcs.v(control::VPID) != 0,
        );
    }
}

/// 27.2.1.2 VM-exit control fields, 27.2.1.3 VM-entry control fields.
fn exit_and_entry_controls(r: &mut Report, vmcs: &Checked<'_>) {
    let v = |field| vmcs.v(field);
    let (exit, entry) = (v(control::VMEXIT_CONTROLS), v(control::VMENTRY_CONTROLS));
    r.rule(
        "27.2.1.2",
        "VM-exit controls within the allowed settings",
        fits(exit, vmcs.caps.exit),
    );
    let counts = v(control::VMEXIT_MSR_STORE_COUNT) | v(control::VMEXIT_MSR_LOAD_COUNT);
    r.rule(
        "27.2.1.2",
        "no VM-exit MSR-store or MSR-load area (counts 0)",
        counts == 0,
    );
    r.rule(
        "27.2.1.3",
        "VM-entry controls within the allowed settings",
        fits(entry, vmcs.caps.entry),
    );
    let injection = v(control::VMENTRY_INTERRUPTION_INFO_FIELD);
    r.rule(
        "27.2.1.3",
        "VM-entry interruption information: nothing injected at launch",
        injection & (1 << 31) == 0,
    );
    r.rule(
        "27.2.1.3",
        "no VM-entry MSR-load area (count 0)",
        v(control::VMENTRY_MSR_LOAD_COUNT) == 0,
    );
    r.rule(
        "27.2.1.3",
        "entry to SMM and deactivate dual-monitor treatment 0 outside SMM",
        entry
            & u64::from(
                (EntryControls::ENTRY_TO_SMM | EntryControls::DEACTIVATE_DUAL_MONITOR).bits(),
            )
            == 0,
    );
}

/// 27.2.2 host control registers and MSRs, 27.2.4 address-space size.
fn host_registers(r: &mut Report, vmcs: &Checked<'_>) {
    let v = |field| vmcs.v(field);
    let caps = vmcs.caps;
    let (exit, entry) = (v(control::VMEXIT_CONTROLS), v(control::VMENTRY_CONTROLS));
    const HOST_CR: &str = "27.2.2";
    let (host_cr0, host_cr4) = (v(host::CR0), v(host::CR4));
    r.rule(
        HOST_CR,
        "host CR0 has the bits IA32_VMX_CR0_FIXED0/1 fix",
        host_cr0 & caps.cr0_fixed0 == caps.cr0_fixed0 && host_cr0 & !caps.cr0_fixed1 == 0,
    );
    r.rule(
        HOST_CR,
        "host CR4 has the bits IA32_VMX_CR4_FIXED0/1 fix",
        host_cr4 & caps.cr4_fixed0 == caps.cr4_fixed0 && host_cr4 & !caps.cr4_fixed1 == 0,
    );
    r.rule(
        HOST_CR,
        "host CR3 bits beyond the physical-address width 0",
        !vmcs.beyond_width(v(host::CR3) & !0xfff),
    );
    r.rule(
        HOST_CR,
        "host IA32_SYSENTER_ESP and _EIP canonical",
        canonical(v(host::IA32_SYSENTER_ESP)) && canonical(v(host::IA32_SYSENTER_EIP)),
    );
    let host_64 = has(exit, ExitControls::HOST_ADDRESS_SPACE_SIZE.bits());
    if has(exit, ExitControls::LOAD_IA32_PAT.bits()) {
        r.rule(
            HOST_CR,
            "host IA32_PAT: every entry a valid memory type",
            pat_ok(v(host::IA32_PAT_FULL)),
        );
    }
    if has(exit, ExitControls::LOAD_IA32_EFER.bits()) {
        let efer = v(host::IA32_EFER_FULL);
        r.rule(
            HOST_CR,
            "host IA32_EFER reserved bits 0",
            efer & !EFER_DEFINED == 0,
        );
        let modes = (efer & EFER_LMA != 0) == host_64 && (efer & EFER_LME != 0) == host_64;
        r.rule(
            HOST_CR,
            "host IA32_EFER.LMA and .LME equal the host address-space size control",
            modes,
        );
    }

    // 27.2.4 address-space size.
    let ia32e_guest = has(entry, EntryControls::IA32E_MODE_GUEST.bits());
    r.rule(
        "27.2.4",
        "a 64-bit host (host address-space size 1) with CR4.PAE and a canonical RIP",
        host_64 && host_cr4 & CR4_PAE != 0 && canonical(v(host::RIP)),
    );
    r.rule(
        "27.2.4",
        "IA-32e mode guest only on a 64-bit host",
        !ia32e_guest || host_64,
    );
}

/// 27.2.3 host segment and descriptor-table registers.
fn host_segments(r: &mut Report, vmcs: &Checked<'_>) {
    let v = |field| vmcs.v(field);
    const HOST_SEG: &str = "27.2.3";
    let selectors = [
        host::CS_SELECTOR,
        host::SS_SELECTOR,
        host::DS_SELECTOR,
        host::ES_SELECTOR,
        host::FS_SELECTOR,
        host::GS_SELECTOR,
        host::TR_SELECTOR,
    ];
    r.rule(
        HOST_SEG,
        "host selectors with RPL 0 and TI 0",
        selectors.iter().all(|&f| v(f) & 0b111 == 0),
    );
    r.rule(
        HOST_SEG,
        "host CS and TR selectors not 0",
        v(host::CS_SELECTOR) != 0 && v(host::TR_SELECTOR) != 0,
    );
    let bases = [
        host::FS_BASE,
        host::GS_BASE,
        host::GDTR_BASE,
        host::IDTR_BASE,
        host::TR_BASE,
    ];
    r.rule(
        HOST_SEG,
        "host FS, GS, GDTR, IDTR and TR bases canonical",
        bases.iter().all(|&f| canonical(v(f))),
    );
}
