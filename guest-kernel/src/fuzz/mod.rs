//! The in-guest exit fuzzer (`run fuzz [N] [SEED]`, cargo feature `attacks`): random VM exits
//! from ring 0, each result checked against what the CPU or the hypercall ABI defines. The
//! generator and the expectations are pure and host-tested; `run` executes them.

#[cfg(any(test, feature = "attacks"))]
pub mod plan;
#[cfg(any(test, feature = "attacks"))]
pub mod rng;
#[cfg(all(target_os = "none", feature = "attacks"))]
pub mod run;
