//! Stopping the CPU for good.

/// Disables interrupts and halts forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli and hlt touch no memory; the firmware has nothing left to run, which is
        // the point of stopping here.
        unsafe {
            x86::irq::disable();
            x86::halt();
        }
    }
}
