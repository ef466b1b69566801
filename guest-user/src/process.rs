//! Process-table helpers shared by `sh` (ps) and tests.

use rampart_kernel_abi::syscall::{
    STATE_READY, STATE_RUNNING, STATE_SLEEPING, STATE_WAITING, STATE_ZOMBIE,
};

/// The `ps` name of a [`rampart_kernel_abi::syscall::ProcessInfo::state`].
pub fn state_name(state: u32) -> &'static str {
    match state {
        STATE_RUNNING => "running",
        STATE_READY => "ready",
        STATE_SLEEPING => "sleeping",
        STATE_WAITING => "waiting",
        STATE_ZOMBIE => "zombie",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_states() {
        assert_eq!(state_name(STATE_SLEEPING), "sleeping");
        assert_eq!(state_name(99), "unknown");
    }
}
