//! `bar-over-ram`: moves a device's memory BAR over a RAM page holding a known marker (the
//! smallest 32-bit memory BAR on bus 0, so the least RAM is covered) and reads the BAR back.
//! Natively the BAR moves (on real hardware the device would then shadow or capture that RAM;
//! QEMU lets RAM win, so the marker is only reported); under Rampart the write is refused and
//! audited (`device-bar`). The BAR gets its old value back either way.
#![allow(unsafe_code)] // the attack itself; each block says why it is harmless natively

use super::pci::{self, Function, BAR_COUNT, BAR_TYPE_64, FIRST_BAR};
use super::verdict::Attempt;
use crate::console::kprintln;
use crate::mm::layout::phys_to_virt;

/// What the RAM page holds before the move.
const MARKER: u8 = 0x5a;
/// BARs smaller than this are left alone (none of the platform's are).
const MIN_SIZE: u32 = 16;

/// The smallest 32-bit memory BAR on bus 0: (function, index, size).
fn smallest_memory_bar() -> Option<(Function, u8, u32)> {
    let mut best: Option<(Function, u8, u32)> = None;
    for function in pci::functions().filter(|f| f.is_endpoint()) {
        let mut index = 0;
        while index < BAR_COUNT {
            let raw = function.read32(FIRST_BAR + 4 * index);
            let size = function.memory_bar_size(index);
            let base = function.bar(index).0;
            if size >= MIN_SIZE && base != 0 && best.is_none_or(|(_, _, s)| size < s) {
                best = Some((function, index, size));
            }
            // The upper half of a 64-bit BAR is no BAR of its own.
            index += if raw & pci::BAR_IO == 0 && raw & BAR_TYPE_64 != 0 {
                2
            } else {
                1
            };
        }
    }
    best
}

pub fn bar_over_ram() -> Attempt {
    let before = super::ipi::audit_count();
    let Some((function, index, size)) = smallest_memory_bar() else {
        return Attempt::NotApplicable("no 32-bit memory BAR");
    };
    let Some(frame) = super::list::scratch_frame(&[MARKER; 16]) else {
        return Attempt::NotApplicable("out of memory");
    };
    let register = FIRST_BAR + 4 * index;
    let old = function.read32(register);
    let new_base = (frame as u32) & !(size - 1);
    let new = new_base | (old & 0xf);
    // SAFETY: natively the BAR covers the scratch page (and, for a BAR larger than a page, RAM
    // around it) only until the write-back below; nothing here touches the device meanwhile.
    unsafe { function.write32(register, new) };
    let readback = function.read32(register);
    // SAFETY: the scratch frame is RAM this attack allocated, in the direct map.
    let seen = unsafe { core::ptr::read_volatile(phys_to_virt(frame) as *const u8) };
    if readback != old {
        // SAFETY: the BAR's own value: the device decodes where it did before.
        unsafe { function.write32(register, old) };
    }
    kprintln!(
        "attacks: detail: bar-over-ram: 00:{:02x}.{} BAR{index} size {size:#x}: {old:#x} -> {new:#x}, read back {readback:#x}, RAM marker reads {seen:#x}",
        function.device,
        function.function
    );
    if readback == new {
        Attempt::Done
    } else if super::ipi::audit_count() > before && readback == old {
        Attempt::NoEffect
    } else {
        Attempt::NotApplicable("BAR did not move")
    }
}
