//! The time-stamp counter, for benchmarks: `lfence; rdtsc`, so the read is not hoisted above
//! earlier instructions (SDM Vol. 2B, RDTSC: "If software requires RDTSC to be executed only
//! after all previous instructions have executed ... it can execute LFENCE immediately before
//! RDTSC").
#![allow(unsafe_code)]

/// The TSC after every earlier instruction has completed locally.
pub fn now() -> u64 {
    let low: u32;
    let high: u32;
    // SAFETY: LFENCE and RDTSC only read the counter into EDX:EAX (CR4.TSD is clear: the
    // kernel lets ring 3 read it); no memory is touched and the flags are kept.
    unsafe {
        core::arch::asm!(
            "lfence",
            "rdtsc",
            out("eax") low,
            out("edx") high,
            options(nomem, nostack, preserves_flags),
        );
    }
    (u64::from(high) << 32) | u64::from(low)
}
