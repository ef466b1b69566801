//! VMX capability MSR numbers (SDM Vol. 4, Table 2-2; Vol. 3D Appendix A).

pub const IA32_FEATURE_CONTROL: u32 = 0x3a;
pub const IA32_VMX_BASIC: u32 = 0x480;
pub const IA32_VMX_PINBASED_CTLS: u32 = 0x481;
pub const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
pub const IA32_VMX_EXIT_CTLS: u32 = 0x483;
pub const IA32_VMX_ENTRY_CTLS: u32 = 0x484;
pub const IA32_VMX_MISC: u32 = 0x485;
pub const IA32_VMX_CR0_FIXED0: u32 = 0x486;
pub const IA32_VMX_CR0_FIXED1: u32 = 0x487;
pub const IA32_VMX_CR4_FIXED0: u32 = 0x488;
pub const IA32_VMX_CR4_FIXED1: u32 = 0x489;
pub const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48b;
pub const IA32_VMX_EPT_VPID_CAP: u32 = 0x48c;
pub const IA32_VMX_TRUE_PINBASED_CTLS: u32 = 0x48d;
pub const IA32_VMX_TRUE_PROCBASED_CTLS: u32 = 0x48e;
pub const IA32_VMX_TRUE_EXIT_CTLS: u32 = 0x48f;
pub const IA32_VMX_TRUE_ENTRY_CTLS: u32 = 0x490;
/// Tertiary processor-based controls, allowed-1 bits only (A.3.4).
pub const IA32_VMX_PROCBASED_CTLS3: u32 = 0x492;
pub const IA32_EFER: u32 = 0xc000_0080;
pub const IA32_PAT: u32 = 0x277;

/// IA32_FEATURE_CONTROL bit 0: lock (SDM Vol. 3C 24.7 "Enabling and Entering VMX Operation").
pub const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
/// IA32_FEATURE_CONTROL bit 2: VMXON allowed outside SMX operation.
pub const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;

/// Reads MSRs. The hardware implementation lives in `arch`; tests read captured fixtures.
pub trait MsrSource {
    /// The MSR's value, or `None` where reading it would fault (the MSR does not exist).
    fn read(&self, msr: u32) -> Option<u64>;
}
