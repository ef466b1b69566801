//! The panic handler: a broken invariant is reported on serial like any fatal error.

use core::panic::PanicInfo;

use crate::fail::{self, Outcome};

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    fail::stop(Outcome::Panic, format_args!("panic: {info}"))
}
