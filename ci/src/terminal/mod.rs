//! The user's terminal while `cargo xtask run` attaches it to the guest console: raw mode and its
//! restoration, the `Ctrl-A` escape keys, and the thread that types keys into COM1.

pub mod escape;
pub mod keys;
pub mod raw;

/// The first line `cargo xtask run` prints when stdin is a terminal.
pub const RAW_BANNER: &str =
    "xtask: console: raw mode (keys go to the guest as typed), Ctrl-A x quits, Ctrl-A h helps";
