//! The VMX capabilities of this CPU, read once from the capability MSRs (SDM Vol. 3D Appendix A).
#![forbid(unsafe_code)]

use super::msr::*;
use core::fmt;

/// IA32_VMX_BASIC bit 55: the TRUE_* control MSRs exist (A.1).
const BASIC_TRUE_CONTROLS: u64 = 1 << 55;
/// Primary processor-based control bit 31: activate secondary controls (24.6.2).
const PRIMARY_ACTIVATE_SECONDARY: u64 = 1 << 31;
/// Primary processor-based control bit 17: activate tertiary controls (24.6.2).
const PRIMARY_ACTIVATE_TERTIARY: u64 = 1 << 17;
/// Secondary controls bit 1 (enable EPT) and bit 5 (enable VPID), in the allowed-1 half.
const SECONDARY_EPT_ALLOWED: u64 = 1 << (32 + 1);
const SECONDARY_VPID_ALLOWED: u64 = 1 << (32 + 5);

/// IA32_VMX_EPT_VPID_CAP bits (A.10).
pub mod ept_cap {
    pub const EXECUTE_ONLY: u64 = 1 << 0;
    pub const PAGE_WALK_4: u64 = 1 << 6;
    pub const MEMORY_TYPE_UC: u64 = 1 << 8;
    pub const MEMORY_TYPE_WB: u64 = 1 << 14;
    pub const PAGE_2M: u64 = 1 << 16;
    pub const PAGE_1G: u64 = 1 << 17;
    pub const INVEPT: u64 = 1 << 20;
    pub const ACCESSED_DIRTY: u64 = 1 << 21;
    pub const INVEPT_SINGLE_CONTEXT: u64 = 1 << 25;
    pub const INVEPT_ALL_CONTEXT: u64 = 1 << 26;
    pub const INVVPID_SINGLE_CONTEXT: u64 = 1 << 41;
    pub const INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS: u64 = 1 << 43;
}

/// Why the capabilities could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapsError {
    /// A capability MSR that must exist when CPUID reports VMX could not be read.
    #[error("VMX capability MSR {0:#x} is not readable")]
    MissingMsr(u32),
}

/// Raw values of every capability MSR the hypervisor uses. The control MSRs are the TRUE_*
/// variants when IA32_VMX_BASIC bit 55 says they exist (A.2): they allow clearing some
/// default-1 controls (CR3-load/store exiting among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxCapabilities {
    pub basic: u64,
    pub pinbased: u64,
    pub procbased: u64,
    pub exit: u64,
    pub entry: u64,
    /// 0 when secondary controls cannot be activated.
    pub procbased2: u64,
    /// 0 when neither EPT nor VPID can be enabled.
    pub ept_vpid: u64,
    pub misc: u64,
    /// IA32_VMX_PROCBASED_CTLS3 (allowed-1 bits of the tertiary controls, A.3.4); 0 when
    /// the primary controls cannot activate them (bit 17).
    pub tertiary: u64,
    pub cr0_fixed0: u64,
    pub cr0_fixed1: u64,
    pub cr4_fixed0: u64,
    pub cr4_fixed1: u64,
}

impl VmxCapabilities {
    /// Reads the capability MSRs, only those whose existence the others imply.
    pub fn read(msrs: &impl MsrSource) -> Result<Self, CapsError> {
        let read = |msr| msrs.read(msr).ok_or(CapsError::MissingMsr(msr));
        let basic = read(IA32_VMX_BASIC)?;
        let true_controls = basic & BASIC_TRUE_CONTROLS != 0;
        let pick = |plain, true_msr| read(if true_controls { true_msr } else { plain });
        let procbased = pick(IA32_VMX_PROCBASED_CTLS, IA32_VMX_TRUE_PROCBASED_CTLS)?;
        // An MSR that only exists when another MSR's allowed-1 bit says so; 0 otherwise.
        let read_if = |allowed, msr| if allowed { read(msr) } else { Ok(0) };
        let procbased2 = read_if(
            procbased & (PRIMARY_ACTIVATE_SECONDARY << 32) != 0,
            IA32_VMX_PROCBASED_CTLS2,
        )?;
        let ept_vpid = read_if(
            procbased2 & (SECONDARY_EPT_ALLOWED | SECONDARY_VPID_ALLOWED) != 0,
            IA32_VMX_EPT_VPID_CAP,
        )?;
        let tertiary = read_if(
            procbased & (PRIMARY_ACTIVATE_TERTIARY << 32) != 0,
            IA32_VMX_PROCBASED_CTLS3,
        )?;
        Ok(Self {
            basic,
            tertiary,
            pinbased: pick(IA32_VMX_PINBASED_CTLS, IA32_VMX_TRUE_PINBASED_CTLS)?,
            procbased,
            exit: pick(IA32_VMX_EXIT_CTLS, IA32_VMX_TRUE_EXIT_CTLS)?,
            entry: pick(IA32_VMX_ENTRY_CTLS, IA32_VMX_TRUE_ENTRY_CTLS)?,
            procbased2,
            ept_vpid,
            misc: read(IA32_VMX_MISC)?,
            cr0_fixed0: read(IA32_VMX_CR0_FIXED0)?,
            cr0_fixed1: read(IA32_VMX_CR0_FIXED1)?,
            cr4_fixed0: read(IA32_VMX_CR4_FIXED0)?,
            cr4_fixed1: read(IA32_VMX_CR4_FIXED1)?,
        })
    }

    /// VMCS revision identifier, written at the start of the VMXON region and each VMCS (A.1).
    pub fn revision_id(&self) -> u32 {
        (self.basic & 0x7fff_ffff) as u32
    }

    pub fn has_true_controls(&self) -> bool {
        self.basic & BASIC_TRUE_CONTROLS != 0
    }

    pub fn ept_has(&self, bit: u64) -> bool {
        self.ept_vpid & bit != 0
    }

    /// True if `bit` of the secondary processor-based controls may be set.
    pub fn secondary_allows(&self, bit: u32) -> bool {
        (self.procbased2 >> 32) & u64::from(bit) != 0
    }

    /// CR3-target values the CPU supports (IA32_VMX_MISC bits 24:16, A.6).
    pub fn cr3_target_count(&self) -> usize {
        ((self.misc >> 16) & 0x1ff) as usize
    }

    /// Hypervisor-managed linear-address translation (tertiary control bit 1, SDM Vol. 3C
    /// 26.6.2): detected and reported, not used (no CPU model here offers it).
    pub fn has_hlat(&self) -> bool {
        self.tertiary & (1 << 1) != 0
    }

    /// VMX-preemption timer rate: the timer counts down once every 2^rate TSC ticks (A.6).
    pub fn preemption_timer_rate(&self) -> u32 {
        (self.misc & 0x1f) as u32
    }

    /// Applies the CR0 fixed bits: bits set in FIXED0 forced to 1, bits clear in FIXED1 to 0
    /// (A.7). `unrestricted` relaxes PE and PG (24.8: unrestricted guests may clear them).
    pub fn fit_cr0(&self, value: u64, unrestricted: bool) -> u64 {
        const CR0_PE_PG: u64 = (1 << 0) | (1 << 31);
        let forced_one = if unrestricted {
            self.cr0_fixed0 & !CR0_PE_PG
        } else {
            self.cr0_fixed0
        };
        (value | forced_one) & self.cr0_fixed1
    }

    /// Applies the CR4 fixed bits (A.8).
    pub fn fit_cr4(&self, value: u64) -> u64 {
        (value | self.cr4_fixed0) & self.cr4_fixed1
    }
}

/// One-line summary of what the CPU offers, for the boot log.
impl fmt::Display for VmxCapabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use x86::vmx::vmcs::control::{PinbasedControls as P, SecondaryControls as S};
        write!(f, "revision {:#x}", self.revision_id())?;
        let secondary = |control: S| self.secondary_allows(control.bits());
        let preemption_timer =
            (self.pinbased >> 32) & u64::from(P::VMX_PREEMPTION_TIMER.bits()) != 0;
        for (on, name) in [
            (self.has_true_controls(), "true-ctls"),
            (secondary(S::ENABLE_EPT), "ept"),
            (self.ept_has(ept_cap::PAGE_2M), "ept-2m"),
            (self.ept_has(ept_cap::PAGE_1G), "ept-1g"),
            (self.ept_has(ept_cap::EXECUTE_ONLY), "ept-xo"),
            (self.ept_has(ept_cap::ACCESSED_DIRTY), "ept-ad"),
            (secondary(S::ENABLE_VPID), "vpid"),
            (secondary(S::UNRESTRICTED_GUEST), "unrestricted"),
            (secondary(S::MODE_BASED_EPT), "mbec"),
            (secondary(S::VMCS_SHADOWING), "vmcs-shadow"),
            (preemption_timer, "preempt-timer"),
            (self.has_hlat(), "hlat"),
        ] {
            write!(f, " {}{name}", if on { "" } else { "-" })?;
        }
        write!(
            f,
            " cr3-targets {} (timer rate 2^{})",
            self.cr3_target_count(),
            self.preemption_timer_rate()
        )
    }
}
