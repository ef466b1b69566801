//! XSETBV (unconditional exit, SDM Vol. 3C 26.1.2): validated exactly as the CPU would (SDM
//! Vol. 2D "XSETBV"), so the hypervisor's own XSETBV can never fault.
#![allow(unsafe_code)] // XSETBV

use super::resume::{guest_cpl, Exception, Resume};
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;

const XCR0_X87: u64 = 1 << 0;
const XCR0_SSE: u64 = 1 << 1;
const XCR0_AVX: u64 = 1 << 2;
const XCR0_BNDREGS: u64 = 1 << 3;
const XCR0_BNDCSR: u64 = 1 << 4;
const XCR0_AVX512: u64 = 0b111 << 5;

/// True if `value` may be loaded into XCR0 on a CPU supporting `supported`
/// (CPUID.(EAX=0DH,ECX=0):EDX:EAX).
pub fn valid_xcr0(value: u64, supported: u64) -> bool {
    let avx512 = value & XCR0_AVX512;
    let mpx = value & (XCR0_BNDREGS | XCR0_BNDCSR);
    value & !supported == 0
        && value & XCR0_X87 != 0
        && (value & XCR0_AVX == 0 || value & XCR0_SSE != 0)
        && (avx512 == 0 || (avx512 == XCR0_AVX512 && value & XCR0_AVX != 0))
        && (mpx == 0 || mpx == XCR0_BNDREGS | XCR0_BNDCSR)
}

pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let value = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
    let leaf = raw_cpuid::cpuid!(0xd, 0);
    let supported = (u64::from(leaf.edx) << 32) | u64::from(leaf.eax);
    if regs.rcx as u32 != 0 || guest_cpl(vmcs) != 0 || !valid_xcr0(value, supported) {
        return Resume::Inject(Exception::GeneralProtection);
    }
    // The guest's XSETBV exits only if the CPU has XSAVE, and then boot set the host's
    // CR4.OSXSAVE (arch::instructions::enable_host_xsave).
    // SAFETY: XSETBV with ECX = 0: `value` passed the architectural checks above (bit 0 set,
    // only supported bits, AVX needs SSE) and host CR4.OSXSAVE is set, so it cannot fault.
    unsafe { core::arch::x86_64::_xsetbv(0, value) };
    Resume::NextInstruction
}

#[cfg(test)]
mod tests {
    use super::valid_xcr0;

    const SUPPORTED: u64 = 0b1110_0111;

    #[test]
    fn architectural_rules_are_enforced() {
        assert!(valid_xcr0(0b011, SUPPORTED));
        assert!(valid_xcr0(0b111, SUPPORTED));
        assert!(!valid_xcr0(0b010, SUPPORTED), "x87 must stay on");
        assert!(!valid_xcr0(0b101, SUPPORTED), "AVX needs SSE");
        assert!(
            !valid_xcr0(0b0010_0111, SUPPORTED),
            "AVX-512 is all or nothing"
        );
        assert!(valid_xcr0(0b1110_0111, SUPPORTED));
        assert!(!valid_xcr0(1 << 9, SUPPORTED), "unsupported bit");
    }
}
