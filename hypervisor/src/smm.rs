//! SMM, as far as a hypervisor without an SMM monitor (STM) can reach it: SMBASE and the SMRAM
//! lock can only be read inside SMM, so the hypervisor cannot tell from VMX root whether
//! firmware relocated SMBASE into locked SMRAM. Where it did not (Debian's OVMF has no SMM:
//! SMBASE stays at its reset value 0x30000 in ordinary RAM, PLATFORM.md), any SMI would run
//! the code at SMBASE + 0x8000 outside VMX and EPT. So the default SMBASE area is taken from
//! the guest (absent from EPT, like the hypervisor's own memory) and holds a handler that
//! only executes RSM: whatever raises an SMI, no guest-written code runs in SMM. SMIs the
//! guest could raise directly are refused too (the ICR and LVT filter in `exits::ipi`, the
//! APM port in `exits::io`).
#![allow(unsafe_code)]

use crate::handoff::PhysRange;

/// The default SMBASE (SDM Vol. 3C 32.11 "SMBASE Relocation") and the handler entry offset
/// (32.4.1: CS base = SMBASE, EIP = 0x8000).
pub const DEFAULT_SMBASE: u64 = 0x3_0000;
const HANDLER_OFFSET: u64 = 0x8000;
/// RSM (0F AA): returns from SMM to the interrupted context.
const RSM: [u8; 2] = [0x0f, 0xaa];

/// Installs the RSM-only handler if the firmware reserved the default SMBASE area; returns
/// whether it did.
///
/// # Safety
/// `area` must be the range the firmware reserved for the hypervisor (absent from EPT and
/// from the guest memory map), identity-mapped.
pub unsafe fn install_rsm_handler(area: PhysRange) -> bool {
    let entry = DEFAULT_SMBASE + HANDLER_OFFSET;
    if area.start > DEFAULT_SMBASE || area.end() < entry + RSM.len() as u64 {
        return false;
    }
    // SAFETY: the entry lies inside `area`, which the hypervisor owns (caller contract).
    unsafe { core::ptr::copy_nonoverlapping(RSM.as_ptr(), entry as *mut u8, RSM.len()) };
    true
}
