//! Access to the current VMCS (SDM Vol. 3C 25 "Virtual Machine Control Structures").
//!
//! VMREAD is harmless. VMWRITE is safe only for fields that cannot compromise the host: the
//! guest-state area (the guest is confined by EPT whatever it holds) and event injection. All
//! other fields (host state, controls, bitmap and EPT pointers) are written through the
//! `unsafe` [`Vmcs::write_host_or_control`].
#![allow(unsafe_code)]

use x86::vmx::vmcs::control;

/// Bits 11:10 of a field encoding: the field's type (SDM Vol. 3C 25.11.2, Table 25-21).
const FIELD_TYPE_SHIFT: u32 = 10;
const FIELD_TYPE_GUEST_STATE: u32 = 2;

/// Control fields that only affect the guest: event injection and CR read shadows.
const GUEST_ONLY_CONTROLS: [u32; 5] = [
    control::VMENTRY_INTERRUPTION_INFO_FIELD,
    control::VMENTRY_EXCEPTION_ERR_CODE,
    control::VMENTRY_INSTRUCTION_LEN,
    control::CR0_READ_SHADOW,
    control::CR4_READ_SHADOW,
];

/// A VMREAD or VMWRITE failed (VMfailInvalid: no current VMCS; VMfailValid: see the
/// VM-instruction error field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} of VMCS field {field:#06x} failed", if *write { "VMWRITE" } else { "VMREAD" })]
pub struct VmcsError {
    pub field: u32,
    pub write: bool,
}

/// Proof that a VMCS is current on this CPU.
#[derive(Clone, Copy)]
pub struct Vmcs(());

impl Vmcs {
    /// # Safety
    /// VMX operation must be on and VMPTRLD must have made a VMCS current, for as long as the
    /// returned value is used.
    pub unsafe fn assume_current() -> Self {
        Self(())
    }

    pub fn read(&self, field: u32) -> Result<u64, VmcsError> {
        // SAFETY: a VMCS is current (constructor contract); VMREAD has no side effects.
        unsafe { x86::bits64::vmx::vmread(field) }.map_err(|_| VmcsError {
            field,
            write: false,
        })
    }

    /// Reads a field that the hypervisor itself set up or that every CPU with VMX has; a failure
    /// is a broken invariant.
    pub fn get(&self, field: u32) -> u64 {
        self.read(field).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes a guest-state field or a guest-only control (event injection, CR shadows).
    pub fn write(&self, field: u32, value: u64) -> Result<(), VmcsError> {
        let guest_state = (field >> FIELD_TYPE_SHIFT) & 0b11 == FIELD_TYPE_GUEST_STATE;
        assert!(
            guest_state || GUEST_ONLY_CONTROLS.contains(&field),
            "field {field:#x}"
        );
        // SAFETY: a VMCS is current; the field (checked above) only affects the guest, which EPT
        // confines, so no value can break the host.
        unsafe { self.write_host_or_control(field, value) }
    }

    /// Like [`Vmcs::write`], for fields every VMX CPU has; a failure is a broken invariant.
    pub fn set(&self, field: u32, value: u64) {
        self.write(field, value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes any field.
    ///
    /// # Safety
    /// Host-state and control fields decide where the host resumes, which memory the CPU reads
    /// for bitmaps and EPT, and which events exit: `value` must keep the host correct.
    pub unsafe fn write_host_or_control(&self, field: u32, value: u64) -> Result<(), VmcsError> {
        // SAFETY: a VMCS is current; the caller vouches for the value.
        unsafe { x86::bits64::vmx::vmwrite(field, value) }
            .map_err(|_| VmcsError { field, write: true })
    }
}
