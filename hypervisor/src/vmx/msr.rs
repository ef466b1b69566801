//! VMX capability MSR numbers (SDM Vol. 4, Table 2-2; Vol. 3D Appendix A).
#![forbid(unsafe_code)]

pub use x86::msr::{
    IA32_EFER, IA32_FEATURE_CONTROL, IA32_PAT, IA32_VMX_BASIC, IA32_VMX_CR0_FIXED0,
    IA32_VMX_CR0_FIXED1, IA32_VMX_CR4_FIXED0, IA32_VMX_CR4_FIXED1, IA32_VMX_ENTRY_CTLS,
    IA32_VMX_EPT_VPID_CAP, IA32_VMX_EXIT_CTLS, IA32_VMX_MISC, IA32_VMX_PINBASED_CTLS,
    IA32_VMX_PROCBASED_CTLS, IA32_VMX_PROCBASED_CTLS2, IA32_VMX_TRUE_ENTRY_CTLS,
    IA32_VMX_TRUE_EXIT_CTLS, IA32_VMX_TRUE_PINBASED_CTLS, IA32_VMX_TRUE_PROCBASED_CTLS,
};

/// Tertiary processor-based controls, allowed-1 bits only (A.3.4; not in the `x86` crate).
pub const IA32_VMX_PROCBASED_CTLS3: u32 = 0x492;

/// IA32_FEATURE_CONTROL bit 0: lock (SDM Vol. 3C 24.7 "Enabling and Entering VMX Operation").
pub const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
/// IA32_FEATURE_CONTROL bit 2: VMXON allowed outside SMX operation.
pub const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;

/// Where MSR values come from: `arch`'s RDMSR, or captured fixtures in tests.
pub use crate::arch::msrs::MsrSource;
