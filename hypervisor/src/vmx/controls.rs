//! VM-execution, VM-exit and VM-entry controls, fitted to what the CPU allows (SDM Vol. 3C
//! 24.6-24.8, Vol. 3D A.3-A.5).
//!
//! Every control is derived from the capability MSRs, never assumed: each capability MSR holds
//! allowed-0 settings in bits 31:0 (a 1 means the control must be 1) and allowed-1 settings in
//! bits 63:32 (a 0 means the control must be 0).

use super::caps::VmxCapabilities;
use core::fmt;
use x86::vmx::vmcs::control::{
    EntryControls, ExitControls, PinbasedControls, PrimaryControls, SecondaryControls,
};

/// Which control field a fitting problem is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlField {
    Pinbased,
    Primary,
    Secondary,
    Exit,
    Entry,
}

/// A control the hypervisor cannot run without is unavailable, or one it must keep clear is
/// forced on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitError {
    /// These required bits are not allowed to be 1.
    Unsupported { field: ControlField, bits: u32 },
    /// These bits must be 0 for Rampart's design but the CPU forces them to 1.
    ForcedOn { field: ControlField, bits: u32 },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (field, bits, problem) = match *self {
            Self::Unsupported { field, bits } => (field, bits, "are required but not supported"),
            Self::ForcedOn { field, bits } => (field, bits, "must be 0 but the CPU forces them on"),
        };
        write!(f, "{field:?} controls {bits:#010x} {problem}")
    }
}

/// What one control field needs: bits that must be set, bits set if the CPU allows them, and
/// bits that must stay clear.
#[derive(Clone, Copy, Debug)]
pub struct ControlRequest {
    pub required: u32,
    pub optional: u32,
    pub forbidden: u32,
}

/// Fits a request to a capability MSR value: `(wanted | allowed0) & allowed1`, failing where
/// a required bit is not allowed-1 or a forbidden bit is allowed-0 (forced on).
pub fn fit(field: ControlField, request: ControlRequest, capability: u64) -> Result<u32, FitError> {
    let must_be_one = capability as u32;
    let may_be_one = (capability >> 32) as u32;
    let bits = request.required & !may_be_one;
    if bits != 0 {
        return Err(FitError::Unsupported { field, bits });
    }
    let bits = request.forbidden & must_be_one;
    if bits != 0 {
        return Err(FitError::ForcedOn { field, bits });
    }
    Ok((request.required | (request.optional & may_be_one) | must_be_one) & may_be_one)
}

/// The five control fields as programmed into the VMCS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controls {
    pub pinbased: u32,
    pub primary: u32,
    pub secondary: u32,
    pub exit: u32,
    pub entry: u32,
}

impl Controls {
    /// Rampart's controls: EPT on, the guest owns maskable interrupts, HLT and CR3 loads, so none of
    /// these exit (DESIGN.md "Devices and interrupts"); MSR and I/O bitmaps decide which MSRs
    /// and ports exit; a 64-bit host and a 64-bit guest with EFER/PAT switched on entry/exit.
    pub fn fit(caps: &VmxCapabilities) -> Result<Self, FitError> {
        let pinbased = ControlRequest {
            required: 0,
            // NMIs are how the hypervisor reaches other vCPUs (EPT shootdowns, lock
            // propagation, `smp::shootdown`); guest NMIs are re-injected.
            optional: PinbasedControls::NMI_EXITING.bits(),
            forbidden: PinbasedControls::EXTERNAL_INTERRUPT_EXITING.bits(),
        };
        let primary = ControlRequest {
            required: (PrimaryControls::USE_MSR_BITMAPS
                | PrimaryControls::USE_IO_BITMAPS
                | PrimaryControls::SECONDARY_CONTROLS)
                .bits(),
            optional: 0,
            forbidden: (PrimaryControls::HLT_EXITING
                | PrimaryControls::CR3_LOAD_EXITING
                | PrimaryControls::CR3_STORE_EXITING
                | PrimaryControls::INVLPG_EXITING
                | PrimaryControls::RDTSC_EXITING
                | PrimaryControls::UNCOND_IO_EXITING)
                .bits(),
        };
        let secondary = ControlRequest {
            required: SecondaryControls::ENABLE_EPT.bits(),
            // Instructions the guest would otherwise see #UD for when the CPU has them.
            // Mode-based execute control (bit 22, SDM Vol. 3C 26.6.2): where present, kernel
            // text executes for supervisor-mode addresses only and program text for user-mode
            // ones only (`ProtectedLayout::program_text_rights`).
            optional: (SecondaryControls::ENABLE_VPID
                | SecondaryControls::ENABLE_RDTSCP
                | SecondaryControls::ENABLE_INVPCID
                | SecondaryControls::ENABLE_XSAVES_XRSTORS
                | SecondaryControls::MODE_BASED_EPT)
                .bits(),
            forbidden: SecondaryControls::WBINVD_EXITING.bits(),
        };
        let exit = ControlRequest {
            required: (ExitControls::HOST_ADDRESS_SPACE_SIZE
                | ExitControls::SAVE_IA32_EFER
                | ExitControls::LOAD_IA32_EFER)
                .bits(),
            // Save debug controls: the guest's DR7 survives exits (the GDB stub's
            // hardware breakpoints live there, SDM Vol. 3C 28.3.1).
            optional: (ExitControls::SAVE_IA32_PAT
                | ExitControls::LOAD_IA32_PAT
                | ExitControls::SAVE_DEBUG_CONTROLS)
                .bits(),
            forbidden: 0,
        };
        let entry = ControlRequest {
            required: (EntryControls::IA32E_MODE_GUEST | EntryControls::LOAD_IA32_EFER).bits(),
            // Load debug controls: entry loads the guest's DR7 (27.3.2.1); without it
            // the guest runs with the host's DR7.
            optional: (EntryControls::LOAD_IA32_PAT | EntryControls::LOAD_DEBUG_CONTROLS).bits(),
            forbidden: EntryControls::ENTRY_TO_SMM.bits(),
        };
        Ok(Self {
            pinbased: fit(ControlField::Pinbased, pinbased, caps.pinbased)?,
            primary: fit(ControlField::Primary, primary, caps.procbased)?,
            secondary: fit(ControlField::Secondary, secondary, caps.procbased2)?,
            exit: fit(ControlField::Exit, exit, caps.exit)?,
            entry: fit(ControlField::Entry, entry, caps.entry)?,
        })
    }

    pub fn has_secondary(&self, control: SecondaryControls) -> bool {
        self.secondary & control.bits() == control.bits()
    }

    pub fn has_entry(&self, control: EntryControls) -> bool {
        self.entry & control.bits() == control.bits()
    }

    pub fn has_exit(&self, control: ExitControls) -> bool {
        self.exit & control.bits() == control.bits()
    }
}
