//! CPUID exits (unconditional in VMX non-root, SDM Vol. 3C 26.1.2): the host's answer, with
//! VMX hidden, the hypervisor-present bit set and the Rampart leaves added.

use super::resume::Resume;
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{signature_registers, ABI_VERSION, CPUID_LEAF_FEATURES, CPUID_LEAF_VENDOR};
use raw_cpuid::CpuIdResult;
use x86::vmx::vmcs::control::SecondaryControls;
use x86::vmx::vmcs::guest;

const LEAF_FEATURES: u32 = 1;
const LEAF_EXTENDED_FEATURES: u32 = 7;
/// CPUID.1:ECX bits (SDM Vol. 2A, Table 3-10).
const ECX_VMX: u32 = 1 << 5;
const ECX_SMX: u32 = 1 << 6;
const ECX_XSAVE: u32 = 1 << 26;
const ECX_OSXSAVE: u32 = 1 << 27;
const ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID.7.0:ECX bit 4: OSPKE.
const ECX7_OSPKE: u32 = 1 << 4;
/// CPUID.7.0:EBX bit 10: INVPCID. In VMX non-root INVPCID raises #UD unless the "enable
/// INVPCID" secondary control is 1 (SDM Vol. 3C 26.3), so the bit goes where it is 0.
const EBX7_INVPCID: u32 = 1 << 10;
const CR4_OSXSAVE: u64 = 1 << 18;
const CR4_PKE: u64 = 1 << 22;
const HYPERVISOR_RANGE_END: u32 = 0x4000_00ff;

/// The answer to a leaf that does not exist.
const ZERO: CpuIdResult = CpuIdResult {
    eax: 0,
    ebx: 0,
    ecx: 0,
    edx: 0,
};

/// What the guest sees for `leaf`, given what the CPU answered and the guest's CR4 (bits that
/// mirror OS state come from the guest's CR4, not the host's); `invpcid`: the guest may run
/// INVPCID (its secondary control is on).
pub fn virtualize(leaf: u32, host: CpuIdResult, guest_cr4: u64, invpcid: bool) -> CpuIdResult {
    let mut out = host;
    match leaf {
        LEAF_FEATURES => {
            out.ecx &= !(ECX_VMX | ECX_SMX | ECX_OSXSAVE);
            out.ecx |= ECX_HYPERVISOR;
            if guest_cr4 & CR4_OSXSAVE != 0 && host.ecx & ECX_XSAVE != 0 {
                out.ecx |= ECX_OSXSAVE;
            }
        }
        LEAF_EXTENDED_FEATURES => {
            if !invpcid {
                out.ebx &= !EBX7_INVPCID;
            }
            out.ecx &= !ECX7_OSPKE;
            if guest_cr4 & CR4_PKE != 0 {
                out.ecx |= ECX7_OSPKE;
            }
        }
        CPUID_LEAF_VENDOR => {
            let (ebx, ecx, edx) = signature_registers();
            out = CpuIdResult {
                eax: CPUID_LEAF_FEATURES,
                ebx,
                ecx,
                edx,
            };
        }
        CPUID_LEAF_FEATURES => {
            out = CpuIdResult {
                eax: ABI_VERSION,
                ..ZERO
            }
        }
        l if (CPUID_LEAF_VENDOR..=HYPERVISOR_RANGE_END).contains(&l) => out = ZERO,
        _ => {}
    }
    out
}

/// A CPUID exit: the virtualized answer in EAX, EBX, ECX, EDX.
pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let host = raw_cpuid::cpuid!(regs.rax, regs.rcx);
    // OSXSAVE and PKE are not owned by the hypervisor, so the guest's CR4 holds them as set.
    let controls = &crate::state::get().controls;
    let invpcid = controls.has_secondary(SecondaryControls::ENABLE_INVPCID);
    let out = virtualize(regs.rax as u32, host, vmcs.get(guest::CR4), invpcid);
    regs.rax = u64::from(out.eax);
    regs.rbx = u64::from(out.ebx);
    regs.rcx = u64::from(out.ecx);
    regs.rdx = u64::from(out.edx);
    Resume::NextInstruction
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: CpuIdResult = CpuIdResult {
        eax: !0,
        ebx: !0,
        ecx: !0,
        edx: !0,
    };

    #[test]
    fn vmx_is_hidden_and_hypervisor_bit_set() {
        let out = virtualize(
            1,
            CpuIdResult {
                ecx: ECX_VMX,
                ..ALL
            },
            0,
            true,
        );
        assert_eq!(out.ecx & ECX_VMX, 0);
        assert_ne!(out.ecx & ECX_HYPERVISOR, 0);
    }

    #[test]
    fn osxsave_follows_the_guest_cr4() {
        assert_eq!(virtualize(1, ALL, 0, true).ecx & ECX_OSXSAVE, 0);
        assert_ne!(virtualize(1, ALL, CR4_OSXSAVE, true).ecx & ECX_OSXSAVE, 0);
    }

    #[test]
    fn vendor_leaf_carries_the_signature() {
        let out = virtualize(CPUID_LEAF_VENDOR, ALL, 0, true);
        assert!(rampart_hv_abi::is_rampart_signature(
            out.ebx, out.ecx, out.edx
        ));
        assert_eq!(out.eax, CPUID_LEAF_FEATURES);
        assert_eq!(
            virtualize(CPUID_LEAF_FEATURES, ALL, 0, true).eax,
            ABI_VERSION
        );
        assert_eq!(virtualize(0x4000_0042, ALL, 0, true), ZERO);
    }

    #[test]
    fn other_leaves_pass_through() {
        assert_eq!(virtualize(0, ALL, 0, true), ALL);
        assert_eq!(virtualize(0x8000_0001, ALL, 0, true), ALL);
    }

    #[test]
    fn invpcid_shows_only_where_the_guest_may_run_it() {
        assert_ne!(virtualize(7, ALL, 0, true).ebx & EBX7_INVPCID, 0);
        assert_eq!(virtualize(7, ALL, 0, false).ebx & EBX7_INVPCID, 0);
        assert_eq!(virtualize(1, ALL, 0, false).ebx, !0, "leaf 7 only");
    }
}
