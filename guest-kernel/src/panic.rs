//! The panic handler: report over serial, emit the FAIL result line, halt.

use crate::arch::cpu;
use crate::console::emergency_line;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cpu::disable_interrupts();
    match info.location() {
        Some(at) => emergency_line(
            true,
            format_args!("PANIC: {} at {}:{}", info.message(), at.file(), at.line()),
        ),
        None => emergency_line(true, format_args!("PANIC: {}", info.message())),
    }
    emergency_line(false, format_args!("RAMPART-RESULT: FAIL kernel-panic"));
    cpu::halt_forever()
}
