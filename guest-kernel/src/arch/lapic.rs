//! The local APIC (SDM Vol. 3A chapter 11): software enable, the periodic LVT timer, EOI.
//! xAPIC through MMIO at the base from IA32_APIC_BASE; if the firmware left the APIC in x2APIC
//! mode, the same registers through MSRs 0x800+ (SDM Vol. 3A 11.12.1).

use super::{cpu, pit};
use core::sync::atomic::{AtomicU64, Ordering};

// Register offsets in the xAPIC page (x2APIC MSR = 0x800 + offset / 16).
const ID: u32 = 0x020;
const INTERRUPT_COMMAND_LOW: u32 = 0x300;
const INTERRUPT_COMMAND_HIGH: u32 = 0x310;
const TASK_PRIORITY: u32 = 0x080;
const EOI: u32 = 0x0b0;
const SPURIOUS_VECTOR: u32 = 0x0f0;
const LVT_TIMER: u32 = 0x320;
const TIMER_INITIAL_COUNT: u32 = 0x380;
const TIMER_CURRENT_COUNT: u32 = 0x390;
const TIMER_DIVIDE: u32 = 0x3e0;
const X2APIC_MSR_BASE: u32 = 0x800;

/// The x2APIC ICR: one 64-bit MSR, destination in bits 63:32 (SDM Vol. 3A 11.12.9).
const X2APIC_INTERRUPT_COMMAND: u32 = 0x830;
/// xAPIC ICR high: destination in bits 31:24 (SDM Vol. 3A 11.6.1).
const XAPIC_DESTINATION_SHIFT: u32 = 24;
/// ICR bit 12: delivery status (send pending), xAPIC only.
const ICR_SEND_PENDING: u32 = 1 << 12;
/// Polls of the delivery status before giving up on an xAPIC IPI.
const SEND_PENDING_POLLS: u32 = 1_000_000;

/// ICR command words (SDM Vol. 3A 11.6.1, Figure 11-12): delivery mode in bits 10:8, level
/// (bit 14) asserted; physical destination mode, no shorthand.
pub mod command {
    /// Level assert (bit 14): required for every mode but INIT de-assert.
    const ASSERT: u32 = 1 << 14;
    /// Fixed delivery of `vector`.
    pub const fn fixed(vector: u8) -> u32 {
        ASSERT | vector as u32
    }
    /// SMI (delivery mode 010; vector field must be 0).
    #[cfg_attr(not(feature = "attacks"), allow(dead_code))]
    pub const SMI: u32 = ASSERT | (0b010 << 8);
    /// INIT (delivery mode 101).
    pub const INIT: u32 = ASSERT | (0b101 << 8);
    /// Start-up (delivery mode 110) at physical page `page` (the vector field).
    pub const fn startup(page: u8) -> u32 {
        ASSERT | (0b110 << 8) | page as u32
    }
}

/// IA32_APIC_BASE bit 11: APIC globally enabled; bit 10: x2APIC mode; bits 51:12: base.
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const APIC_BASE_ADDRESS: u64 = 0x000f_ffff_ffff_f000;
/// SVR bit 8: APIC software enable.
const SVR_ENABLE: u32 = 1 << 8;
/// LVT bit 16: masked; timer mode bits 18:17 = 01: periodic.
const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// Divide configuration 0b0011: divide by 16.
pub const TIMER_DIVIDE_BY_16: u32 = 0b0011;
/// Used when the PIT cannot calibrate: QEMU's APIC timer counts at 1 GHz, so at divide-by-16
/// this is 10 ms there; on other platforms the rate is only roughly right.
pub const FALLBACK_COUNT_PER_10MS: u32 = 625_000;

/// 0: not initialised; 1: x2APIC; else the xAPIC MMIO base address (through the direct map, UC).
static MODE: AtomicU64 = AtomicU64::new(0);
const MODE_X2APIC: u64 = 1;

fn read(register: u32) -> u32 {
    match MODE.load(Ordering::Relaxed) {
        0 => 0,
        // SAFETY: x2APIC mode is on (IA32_APIC_BASE said so), so this x2APIC register MSR exists.
        MODE_X2APIC => unsafe { cpu::rdmsr(X2APIC_MSR_BASE + register / 16) as u32 },
        // SAFETY: `base` is the xAPIC page from IA32_APIC_BASE, mapped uncacheable in the direct map by
        // `arch::paging` (device window); `register` is one of the offsets above.
        base => unsafe { core::ptr::read_volatile((base + u64::from(register)) as *const u32) },
    }
}

#[inline] // with `end_of_interrupt`, into the interrupt dispatcher
fn write(register: u32, value: u32) {
    match MODE.load(Ordering::Relaxed) {
        0 => {}
        // SAFETY: as in `read`; the registers written here only steer the local APIC's timer
        // and interrupt acceptance, which the kernel owns.
        MODE_X2APIC => unsafe { cpu::wrmsr(X2APIC_MSR_BASE + register / 16, u64::from(value)) },
        // SAFETY: as in `read`.
        base => unsafe {
            core::ptr::write_volatile((base + u64::from(register)) as *mut u32, value)
        },
    }
}

/// Whether the APIC runs in x2APIC mode, and its xAPIC base.
#[derive(Clone, Copy, Debug)]
pub struct ApicInfo {
    pub x2apic: bool,
    pub base: u64,
}

/// Enables the local APIC: globally (IA32_APIC_BASE) and by software (SVR, spurious vector
/// `spurious_vector`), accepting every priority. Call after `arch::paging::init` (the MMIO page
/// must be mapped uncacheable) and with the IDT loaded.
pub fn init(spurious_vector: u8) -> ApicInfo {
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC, which x86-64 requires.
    let mut apic_base = unsafe { cpu::rdmsr(cpu::IA32_APIC_BASE) };
    if apic_base & APIC_BASE_ENABLE == 0 {
        apic_base |= APIC_BASE_ENABLE;
        // SAFETY: setting only the global enable bit keeps the base and mode.
        unsafe { cpu::wrmsr(cpu::IA32_APIC_BASE, apic_base) };
    }
    let x2apic = apic_base & APIC_BASE_X2APIC != 0;
    let base = apic_base & APIC_BASE_ADDRESS;
    let mapped = crate::mm::layout::phys_to_virt(base);
    MODE.store(if x2apic { MODE_X2APIC } else { mapped }, Ordering::Relaxed);
    write(TASK_PRIORITY, 0);
    write(SPURIOUS_VECTOR, SVR_ENABLE | u32::from(spurious_vector));
    ApicInfo { x2apic, base }
}

/// LAPIC timer counts (divide by 16) in 10 ms, measured against PIT channel 2; `None` if the
/// PIT did not count.
pub fn calibrate_10ms() -> Option<u32> {
    write(TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(LVT_TIMER, LVT_MASKED);
    pit::measure_interval(
        || write(TIMER_INITIAL_COUNT, u32::MAX),
        || {
            let elapsed = u32::MAX - read(TIMER_CURRENT_COUNT);
            write(TIMER_INITIAL_COUNT, 0);
            elapsed
        },
    )
    .filter(|&counts| counts > 0)
}

/// Starts the timer in periodic mode on `vector`, divide by 16, reloading `initial_count`.
pub fn start_periodic_timer(vector: u8, initial_count: u32) {
    write(TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(LVT_TIMER, LVT_TIMER_PERIODIC | u32::from(vector));
    write(TIMER_INITIAL_COUNT, initial_count);
}

/// Signals end of interrupt for the interrupt being handled.
#[inline] // into the interrupt dispatcher: on every interrupt's path
pub fn end_of_interrupt() {
    write(EOI, 0);
}

/// This CPU's local APIC ID (x2APIC: the 32-bit ID; xAPIC: bits 31:24 of the ID register).
pub fn id() -> u32 {
    if MODE.load(Ordering::Relaxed) == MODE_X2APIC {
        read(ID)
    } else {
        read(ID) >> XAPIC_DESTINATION_SHIFT
    }
}

/// Sends the interprocessor interrupt `command` (see [`command`]) to the CPU with local APIC ID
/// `destination`: in x2APIC mode one write of the 64-bit ICR, in xAPIC mode the high then the
/// low half, then a wait for the delivery status to clear. Returns false if an xAPIC send was
/// still pending after the wait.
///
/// # Safety
/// INIT, start-up and SMI IPIs reset or divert the destination CPU: the caller must own that
/// CPU's state (a CPU the kernel has not started, or one it may lose). A fixed vector needs a
/// handler on the destination (every vector has a stub in `arch::interrupts`).
pub unsafe fn send_ipi(destination: u32, command: u32) -> bool {
    if MODE.load(Ordering::Relaxed) == MODE_X2APIC {
        let value = (u64::from(destination) << 32) | u64::from(command);
        // SAFETY: x2APIC mode is on, so the ICR MSR exists; what the IPI does to the
        // destination is the caller's to allow (see above).
        unsafe { cpu::wrmsr(X2APIC_INTERRUPT_COMMAND, value) };
        return true;
    }
    write(
        INTERRUPT_COMMAND_HIGH,
        destination << XAPIC_DESTINATION_SHIFT,
    );
    write(INTERRUPT_COMMAND_LOW, command);
    (0..SEND_PENDING_POLLS).any(|_| {
        core::hint::spin_loop();
        read(INTERRUPT_COMMAND_LOW) & ICR_SEND_PENDING == 0
    })
}
