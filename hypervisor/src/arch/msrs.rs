//! Reading capability MSRs on the real CPU.

/// Reads MSRs. The hardware implementation is [`HardwareMsrs`]; tests read captured fixtures.
pub trait MsrSource {
    /// The MSR's value, or `None` where reading it would fault (the MSR does not exist).
    fn read(&self, msr: u32) -> Option<u64>;
}

/// Reads MSRs with RDMSR. Only constructed after CPUID reports VMX, and
/// [`crate::vmx::caps::VmxCapabilities::read`] only asks for MSRs whose existence the VMX
/// capability MSRs already imply (SDM Vol. 3D A.1-A.10).
pub struct HardwareMsrs(());

impl HardwareMsrs {
    /// # Safety
    /// CPUID.1:ECX.VMX must be 1, so that IA32_VMX_BASIC and the MSRs it implies exist, and
    /// the caller must run at CPL0.
    pub unsafe fn new() -> Self {
        Self(())
    }
}

impl MsrSource for HardwareMsrs {
    fn read(&self, msr: u32) -> Option<u64> {
        // SAFETY: `new`'s contract (VMX present, CPL0) makes the VMX capability MSRs and
        // IA32_FEATURE_CONTROL readable; `VmxCapabilities::read` asks only for those.
        Some(unsafe { x86::msr::rdmsr(msr) })
    }
}
