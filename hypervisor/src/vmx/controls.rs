//! VM-execution, VM-exit and VM-entry controls, fitted to what the CPU allows (SDM Vol. 3C
//! 24.6-24.8, Vol. 3D A.3-A.5).
//!
//! Every control is derived from the capability MSRs, never assumed: each capability MSR holds
//! allowed-0 settings in bits 31:0 (a 1 means the control must be 1) and allowed-1 settings in
//! bits 63:32 (a 0 means the control must be 0).
#![forbid(unsafe_code)]

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

/// Why a control field cannot be fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// These required bits are not allowed to be 1.
    Unsupported,
    /// These bits must be 0 for Rampart's design but the CPU forces them to 1.
    ForcedOn,
}

/// A control the hypervisor cannot run without is unavailable, or one it must keep clear is
/// forced on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FitError {
    pub problem: Problem,
    pub field: ControlField,
    pub bits: u32,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (field, bits) = (self.field, self.bits);
        write!(f, "{field:?} controls {bits:#010x} (")?;
        let mut named = NAMES
            .iter()
            .filter(|(n_field, bit, _)| *n_field == field && bits & bit != 0);
        if let Some((_, _, name)) = named.next() {
            f.write_str(name)?;
        }
        for (_, _, name) in named {
            write!(f, ", {name}")?;
        }
        match self.problem {
            Problem::Unsupported => f.write_str(") are required but not supported")?,
            Problem::ForcedOn => f.write_str(") must be 0 but the CPU forces them on")?,
        }
        match self.missing_feature() {
            Some(hint) => write!(f, ": {hint}"),
            None => Ok(()),
        }
    }
}

impl FitError {
    /// What the refusal means for a user, where one feature explains it (SDM Vol. 3D A.3).
    pub fn missing_feature(&self) -> Option<&'static str> {
        use ControlField::{Entry, Exit, Primary, Secondary};
        use Problem::{ForcedOn, Unsupported};
        let ept = SecondaryControls::ENABLE_EPT.bits();
        let secondary = PrimaryControls::SECONDARY_CONTROLS.bits();
        let cr3 = (PrimaryControls::CR3_LOAD_EXITING | PrimaryControls::CR3_STORE_EXITING).bits();
        match (self.problem, self.field) {
            (Unsupported, Secondary) if self.bits & ept != 0 => Some(NO_EPT),
            (Unsupported, Primary) if self.bits & secondary != 0 => Some(NO_EPT),
            (ForcedOn, Primary) if self.bits & cr3 != 0 => Some(
                "this CPU has no IA32_VMX_TRUE_* capability MSRs (IA32_VMX_BASIC bit 55 is 0, as on VT-x \
                 before Nehalem) and forces CR3 exiting on; Rampart needs a CPU that lets the guest own \
                 CR3 loads (every Intel CPU with EPT does)",
            ),
            (Unsupported, Exit | Entry) => Some(
                "this CPU cannot switch IA32_EFER or run a 64-bit guest on VM entry and exit (VT-x \
                 before Nehalem); Rampart needs both",
            ),
            _ => None,
        }
    }
}

const NO_EPT: &str = "this CPU's VT-x has no EPT (extended page tables: Intel CPUs before \
    Nehalem, 2008, and some Atoms lack it; under nested KVM, the host lacks it or KVM was loaded \
    with ept=0); Rampart protects the kernel with EPT and does not run without it";

/// The controls Rampart asks for or refuses, by name (SDM Vol. 3C 25.6, 25.7, 25.8).
const NAMES: &[(ControlField, u32, &str)] = {
    use ControlField::{Entry, Exit, Pinbased, Primary, Secondary};
    use EntryControls as N;
    use ExitControls as X;
    use PinbasedControls as I;
    use PrimaryControls as P;
    use SecondaryControls as S;
    &[
        (
            Pinbased,
            I::EXTERNAL_INTERRUPT_EXITING.bits(),
            "external-interrupt exiting",
        ),
        (Primary, P::HLT_EXITING.bits(), "HLT exiting"),
        (Primary, P::INVLPG_EXITING.bits(), "INVLPG exiting"),
        (Primary, P::RDTSC_EXITING.bits(), "RDTSC exiting"),
        (Primary, P::CR3_LOAD_EXITING.bits(), "CR3-load exiting"),
        (Primary, P::CR3_STORE_EXITING.bits(), "CR3-store exiting"),
        (
            Primary,
            P::UNCOND_IO_EXITING.bits(),
            "unconditional I/O exiting",
        ),
        (Primary, P::USE_IO_BITMAPS.bits(), "use I/O bitmaps"),
        (Primary, P::USE_MSR_BITMAPS.bits(), "use MSR bitmaps"),
        (
            Primary,
            P::SECONDARY_CONTROLS.bits(),
            "activate secondary controls",
        ),
        (Secondary, S::ENABLE_EPT.bits(), "enable EPT"),
        (Secondary, S::WBINVD_EXITING.bits(), "WBINVD exiting"),
        (
            Exit,
            X::HOST_ADDRESS_SPACE_SIZE.bits(),
            "host address-space size",
        ),
        (Exit, X::SAVE_IA32_EFER.bits(), "save IA32_EFER"),
        (Exit, X::LOAD_IA32_EFER.bits(), "load IA32_EFER"),
        (Entry, N::IA32E_MODE_GUEST.bits(), "IA-32e mode guest"),
        (Entry, N::LOAD_IA32_EFER.bits(), "load IA32_EFER"),
        (Entry, N::ENTRY_TO_SMM.bits(), "entry to SMM"),
    ]
};

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
        return Err(FitError {
            problem: Problem::Unsupported,
            field,
            bits,
        });
    }
    let bits = request.forbidden & must_be_one;
    if bits != 0 {
        return Err(FitError {
            problem: Problem::ForcedOn,
            field,
            bits,
        });
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
    /// Rampart's controls: EPT on, the guest owns maskable interrupts, HLT and CR3 loads, so none
    /// of these exit (hypervisor/DESIGN.md "Devices and interrupts"); MSR and I/O bitmaps decide
    /// which MSRs and ports exit; a 64-bit host and a 64-bit guest with EFER/PAT switched on
    /// entry/exit.
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
        let fits = [
            fit(ControlField::Pinbased, pinbased, caps.pinbased),
            fit(ControlField::Primary, primary, caps.procbased),
            fit(ControlField::Secondary, secondary, caps.procbased2),
            fit(ControlField::Exit, exit, caps.exit),
            fit(ControlField::Entry, entry, caps.entry),
        ];
        // A missing feature explains more than a control forced on (a CPU without EPT also
        // lacks the TRUE capability MSRs): report the first unsupported one first.
        let unsupported = fits
            .iter()
            .find(|f| matches!(f, Err(e) if e.problem == Problem::Unsupported));
        if let Some(Err(e)) = unsupported.or_else(|| fits.iter().find(|f| f.is_err())) {
            return Err(*e);
        }
        let [pinbased, primary, secondary, exit, entry] = fits.map(|f| f.unwrap_or(0));
        Ok(Self {
            pinbased,
            primary,
            secondary,
            exit,
            entry,
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
