//! The hypervisor's global state, set once at boot and read by the exit handlers.

use crate::handoff::PhysRange;
use crate::stats::ExitStats;
use crate::vmx::caps::VmxCapabilities;
use crate::vmx::controls::Controls;

/// What the exit handlers need to know about this CPU and the memory layout.
#[derive(Debug)]
pub struct HypervisorState {
    pub caps: VmxCapabilities,
    pub controls: Controls,
    /// Ranges the guest may never reach (absent from EPT).
    pub hypervisor_ranges: [PhysRange; 2],
}

static STATE: spin::Once<HypervisorState> = spin::Once::new();

/// VM-exit counters.
pub static STATS: ExitStats = ExitStats::new();

/// Records the state; the first call wins.
pub fn init(state: HypervisorState) -> &'static HypervisorState {
    STATE.call_once(|| state)
}

/// The state recorded at boot. Exit handlers run only after boot recorded it.
pub fn get() -> &'static HypervisorState {
    match STATE.get() {
        Some(state) => state,
        None => panic!("hypervisor state used before boot recorded it"),
    }
}
