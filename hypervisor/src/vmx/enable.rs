//! Turning VMX operation on: CPUID check, IA32_FEATURE_CONTROL, CR0/CR4 fixed bits, VMXON,
//! and making a fresh VMCS current (SDM Vol. 3C 24.6-24.8, 25.2).
#![allow(unsafe_code)]

use super::caps::{ept_cap, CapsError, VmxCapabilities};
use super::controls::{Controls, FitError};
use super::msr::{FEATURE_CONTROL_LOCK, FEATURE_CONTROL_VMX_OUTSIDE_SMX, IA32_FEATURE_CONTROL};
use crate::arch::host_paging::zeroed_frame;
use crate::frames::FrameAllocator;

/// CPUID.1:ECX bit 5: VMX (SDM Vol. 3C 24.6 "Discovering Support for VMX").
const CPUID_1_ECX_VMX: u32 = 1 << 5;
const CR4_VMXE: u64 = 1 << 13;

/// Why VMX cannot be used or turned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VmxError {
    /// CPUID.1:ECX.VMX is 0.
    #[error(
        "CPUID.1:ECX.VMX=0: this CPU does not offer VT-x (QEMU TCG never does; use Bochs, or \
         QEMU/KVM with nested VMX and -cpu host)"
    )]
    NotOffered,
    /// IA32_FEATURE_CONTROL is locked with VMX outside SMX disabled.
    #[error(
        "VMX is disabled by firmware: IA32_FEATURE_CONTROL is locked without \
         VMX-outside-SMX (enable VT-x in the firmware setup)"
    )]
    DisabledByFirmware,
    #[error("{0}")]
    Capabilities(CapsError),
    #[error("unsuitable VMX controls: {0}")]
    Controls(FitError),
    /// EPT lacks 4-level walks or write-back/uncacheable paging-structure memory types.
    #[error("EPT lacks 4-level walks, a usable memory type or INVEPT")]
    EptUnusable,
    /// VMXON, VMCLEAR or VMPTRLD (named) failed.
    #[error("{0} failed")]
    InstructionFailed(&'static str),
    #[error("out of hypervisor frames")]
    OutOfFrames,
}

/// Checks CPUID and IA32_FEATURE_CONTROL, reads the capabilities and fits the controls,
/// changing nothing. Safe to call under UEFI boot services.
pub fn check() -> Result<(VmxCapabilities, Controls), VmxError> {
    if raw_cpuid::cpuid!(1).ecx & CPUID_1_ECX_VMX == 0 {
        return Err(VmxError::NotOffered);
    }
    // SAFETY: VMX is present (checked above) and we run at CPL0 (firmware or hypervisor).
    let msrs = unsafe { crate::arch::msrs::HardwareMsrs::new() };
    let feature_control = super::msr::MsrSource::read(&msrs, IA32_FEATURE_CONTROL).unwrap_or(0);
    if feature_control & FEATURE_CONTROL_LOCK != 0
        && feature_control & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0
    {
        return Err(VmxError::DisabledByFirmware);
    }
    let caps = VmxCapabilities::read(&msrs).map_err(VmxError::Capabilities)?;
    let controls = Controls::fit(&caps).map_err(VmxError::Controls)?;
    let has = |bit| caps.ept_has(bit);
    let memory_type_ok = has(ept_cap::MEMORY_TYPE_WB) || has(ept_cap::MEMORY_TYPE_UC);
    // Policy changes after launch need INVEPT (SDM Vol. 3C 31.3) of one of the two types.
    let invept_ok = has(ept_cap::INVEPT)
        && (has(ept_cap::INVEPT_SINGLE_CONTEXT) || has(ept_cap::INVEPT_ALL_CONTEXT));
    if !has(ept_cap::PAGE_WALK_4) || !memory_type_ok || !invept_ok {
        return Err(VmxError::EptUnusable);
    }
    Ok((caps, controls))
}

/// Enters VMX root operation and makes a new, clear VMCS current.
///
/// # Safety
/// Call once, at CPL0 with interrupts off, after [`check`] succeeded; `frames` must hand out
/// identity-mapped hypervisor frames.
pub unsafe fn enter(caps: &VmxCapabilities, frames: &mut FrameAllocator) -> Result<(), VmxError> {
    // SAFETY: `frames` hands out identity-mapped hypervisor frames (caller contract).
    let vmxon_region = unsafe { zeroed_frame(frames) }.ok_or(VmxError::OutOfFrames)?;
    // SAFETY: as above.
    let vmcs_region = unsafe { zeroed_frame(frames) }.ok_or(VmxError::OutOfFrames)?;
    // SAFETY: the caller's contract, with two fresh zeroed frames.
    unsafe { enter_with(caps, vmxon_region, vmcs_region) }
}

/// [`enter`] with a VMXON region and a VMCS the caller allocated (an AP's, prepared by the
/// boot CPU).
///
/// # Safety
/// As [`enter`], on the CPU that will own both regions; each a zeroed, identity-mapped 4 KiB
/// hypervisor frame used for nothing else.
pub unsafe fn enter_with(
    caps: &VmxCapabilities,
    vmxon_region: u64,
    vmcs_region: u64,
) -> Result<(), VmxError> {
    // IA32_FEATURE_CONTROL is only written while unlocked (a locked MSR would #GP), setting the
    // lock and VMX-outside-SMX bits as VMXON requires (SDM 24.7); the CR0/CR4 values honour
    // the fixed bits (A.7, A.8), which only adds bits the running host already tolerates.
    // SAFETY: VMX exists (`check`); at CPL0 these MSR and CR accesses are valid (above).
    unsafe {
        let feature_control = x86::msr::rdmsr(IA32_FEATURE_CONTROL);
        if feature_control & FEATURE_CONTROL_LOCK == 0 {
            let enabled = feature_control | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
            x86::msr::wrmsr(IA32_FEATURE_CONTROL, enabled);
        }
        let cr4 = caps.fit_cr4(x86::controlregs::cr4().bits() as u64 | CR4_VMXE);
        x86::controlregs::cr4_write(x86::controlregs::Cr4::from_bits_truncate(cr4 as usize));
        let cr0 = caps.fit_cr0(x86::controlregs::cr0().bits() as u64, false);
        x86::controlregs::cr0_write(x86::controlregs::Cr0::from_bits_truncate(cr0 as usize));
    }
    // SAFETY: both regions are zeroed, 4 KiB aligned frames we own, now stamped with the VMCS
    // revision identifier as SDM 25.2 and 25.11.5 require; CR4.VMXE is set and the fixed bits
    // hold, so VMXON, VMCLEAR and VMPTRLD see valid operands.
    unsafe {
        *(vmxon_region as *mut u32) = caps.revision_id();
        *(vmcs_region as *mut u32) = caps.revision_id();
        let failed = VmxError::InstructionFailed;
        x86::bits64::vmx::vmxon(vmxon_region).map_err(|_| failed("VMXON"))?;
        x86::bits64::vmx::vmclear(vmcs_region).map_err(|_| failed("VMCLEAR"))?;
        x86::bits64::vmx::vmptrld(vmcs_region).map_err(|_| failed("VMPTRLD"))?;
    }
    Ok(())
}
