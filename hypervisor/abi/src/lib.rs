//! The guest-visible interface of the Rampart hypervisor, shared with the guest kernel.
//!
//! Detection: CPUID.1:ECX bit 31 ("hypervisor present") is set, and CPUID leaf
//! [`CPUID_LEAF_VENDOR`] returns the highest hypervisor leaf in EAX and [`CPUID_SIGNATURE`] in
//! EBX, ECX, EDX (12 ASCII bytes, like the CPU vendor string).
//!
//! Hypercalls: `VMCALL` from CPL0 with RAX = a [`Hypercall`] number and arguments in RDI, RSI,
//! RDX, R10. The result comes back in RAX: a non-negative value on success, a negative
//! [`HypercallError`] on failure. Other registers are preserved. VMCALL from CPL3 raises #UD in
//! the guest.
#![no_std]
#![forbid(unsafe_code)]

/// First hypervisor CPUID leaf (the range 0x40000000-0x400000FF is reserved for hypervisors).
pub const CPUID_LEAF_VENDOR: u32 = 0x4000_0000;
/// Leaf returning the hypercall ABI version in EAX and the feature bits in EBX.
pub const CPUID_LEAF_FEATURES: u32 = 0x4000_0001;
/// The vendor signature in EBX:ECX:EDX of leaf [`CPUID_LEAF_VENDOR`].
pub const CPUID_SIGNATURE: [u8; 12] = *b"RampartVMXhv";

/// Hypercall ABI version: major in bits 31:16, minor in bits 15:0.
pub const ABI_VERSION: u32 = 0x0001_0000;

/// `ExitCount` argument selecting the total over all reasons.
pub const EXIT_COUNT_TOTAL: u64 = u64::MAX;
/// Basic exit reason of VMCALL (SDM Vol. 3D Appendix C), for `ExitCount`.
pub const EXIT_REASON_VMCALL: u64 = 18;

/// Hypercall numbers (RAX at VMCALL).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    /// Returns [`ABI_VERSION`].
    Version = 0,
    /// Prints the VM-exit counters by reason on the hypervisor's log. Returns 0.
    LogExitStats = 1,
    /// Stops the virtual machine cleanly (prints the exit counters first). Does not return.
    Shutdown = 2,
    /// Returns the number of VM exits so far, not counting `ExitCount` hypercalls, so that two
    /// reads bracket exactly the exits caused in between. RDI = a basic exit reason (SDM Vol.
    /// 3D Appendix C) for that reason's count, or `u64::MAX` for the total.
    ExitCount = 3,
}

impl Hypercall {
    /// Decodes RAX; `None` for numbers this version does not know.
    pub fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            0 => Self::Version,
            1 => Self::LogExitStats,
            2 => Self::Shutdown,
            3 => Self::ExitCount,
            _ => return None,
        })
    }
}

/// Negative results of a hypercall (RAX as i64).
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HypercallError {
    /// Unknown hypercall number.
    NotSupported = -1,
    /// An argument is malformed (bad alignment, bad flag bits).
    InvalidArgument = -2,
    /// A range lies outside guest RAM or overlaps memory the guest may not name.
    OutOfRange = -3,
    /// The request would weaken a protection that is already locked.
    Denied = -4,
}

impl HypercallError {
    /// Decodes a negative RAX value.
    pub fn from_raw(raw: i64) -> Option<Self> {
        Some(match raw {
            -1 => Self::NotSupported,
            -2 => Self::InvalidArgument,
            -3 => Self::OutOfRange,
            -4 => Self::Denied,
            _ => return None,
        })
    }
}

/// Splits [`CPUID_SIGNATURE`] into the (EBX, ECX, EDX) values of leaf [`CPUID_LEAF_VENDOR`].
pub const fn signature_registers() -> (u32, u32, u32) {
    let s = CPUID_SIGNATURE;
    (
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
        u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
    )
}

/// True if (EBX, ECX, EDX) of leaf [`CPUID_LEAF_VENDOR`] carry the Rampart signature.
pub fn is_rampart_signature(ebx: u32, ecx: u32, edx: u32) -> bool {
    (ebx, ecx, edx) == signature_registers()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_through_registers() {
        let (ebx, ecx, edx) = signature_registers();
        assert!(is_rampart_signature(ebx, ecx, edx));
        assert!(!is_rampart_signature(ebx, edx, ecx));
    }

    #[test]
    fn unknown_hypercall_numbers_are_rejected() {
        assert_eq!(Hypercall::from_raw(0), Some(Hypercall::Version));
        assert_eq!(Hypercall::from_raw(3), Some(Hypercall::ExitCount));
        assert_eq!(Hypercall::from_raw(4), None);
        assert_eq!(Hypercall::from_raw(u64::MAX), None);
    }

    #[test]
    fn errors_are_negative() {
        for e in [
            HypercallError::NotSupported,
            HypercallError::InvalidArgument,
            HypercallError::OutOfRange,
            HypercallError::Denied,
        ] {
            assert!((e as i64) < 0);
            assert_eq!(HypercallError::from_raw(e as i64), Some(e));
        }
    }
}
