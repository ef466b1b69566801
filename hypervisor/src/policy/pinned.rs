//! The control-register bits the hypervisor pins (`hypervisor/DESIGN.md` invariant 5): CR0.WP
//! from the first instruction, CR4's UMIP, SMEP and SMAP once the guest sets them.
#![forbid(unsafe_code)]

use x86::controlregs::{Cr0, Cr4};

/// CR0.WP: pinned from the first instruction.
pub const CR0_WP: u64 = Cr0::CR0_WRITE_PROTECT.bits() as u64;
/// CR4 bits pinned once the guest sets them: UMIP, SMEP, SMAP.
pub const CR4_PINNABLE: u64 = (Cr4::CR4_ENABLE_UMIP.bits()
    | Cr4::CR4_ENABLE_SMEP.bits()
    | Cr4::CR4_ENABLE_SMAP.bits()) as u64;
