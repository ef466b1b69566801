//! The hypervisor's global state, set once at boot and read by the exit handlers.

use crate::ept::builder::{Ept, TableMemory};
use crate::frames::FrameAllocator;
use crate::handoff::PhysRange;
use crate::policy::ProtectedLayout;
use crate::stats::ExitStats;
use crate::vmx::caps::VmxCapabilities;
use crate::vmx::controls::Controls;
use spin::Mutex;

/// What the exit handlers need to know about this CPU and the memory layout.
#[derive(Debug)]
pub struct HypervisorState {
    pub caps: VmxCapabilities,
    pub controls: Controls,
    /// Ranges the guest may never reach (absent from EPT).
    pub hypervisor_ranges: [PhysRange; crate::handoff::HYPERVISOR_RANGES],
    /// The measured layout the policy protects.
    pub layout: ProtectedLayout,
    /// The EPT pointer in the VMCS.
    pub eptp: u64,
    /// `[start, end)` where PCI memory BARs may lie: above RAM below 4 GiB, below the
    /// platform's interrupt controllers (`devices::pci`).
    pub mmio_window: (u64, u64),
    /// The PCI ECAM windows, read-only in EPT (`devices::ecam`).
    pub ecam: crate::devices::ecam::Windows,
    /// Where the initrd's executable segments are (`GrantExecute` offsets).
    pub program_text: crate::policy::program_text::ProgramText,
}

static STATE: spin::Once<HypervisorState> = spin::Once::new();

/// VM-exit counters.
pub static STATS: ExitStats = ExitStats::new();

/// The guest's EPT, changed by policy requests after boot (then INVEPT, see `exits::policy`).
pub static EPT: Mutex<Option<Ept<EptFrames>>> = Mutex::new(None);

/// Records the state; the first call wins.
pub fn init(state: HypervisorState) -> &'static HypervisorState {
    STATE.call_once(|| state)
}

/// The state recorded at boot. Exit handlers run only after boot recorded it.
pub fn get() -> &'static HypervisorState {
    STATE
        .get()
        .expect("hypervisor state used before boot recorded it")
}

/// EPT paging structures in a pool of hypervisor frames, reached through the host's identity
/// map; the pool also serves the page splits that later permission changes need.
pub struct EptFrames(FrameAllocator);

impl EptFrames {
    /// # Safety
    /// `pool` must be identity-mapped hypervisor memory used for nothing else.
    #[allow(unsafe_code)]
    pub unsafe fn new(pool: FrameAllocator) -> Self {
        Self(pool)
    }
}

impl TableMemory for EptFrames {
    fn allocate(&mut self) -> Option<u64> {
        // SAFETY: the pool is identity-mapped hypervisor memory (constructor contract).
        #[allow(unsafe_code)]
        unsafe {
            crate::arch::host_paging::zeroed_frame(&mut self.0)
        }
    }

    fn table(&mut self, physical: u64) -> &mut [u64; 512] {
        // SAFETY: `Ept` only passes addresses this pool returned (the PML4 or addresses it
        // stored in entries itself): identity-mapped, 4 KiB aligned hypervisor frames.
        #[allow(unsafe_code)]
        unsafe {
            &mut *(physical as *mut [u64; 512])
        }
    }
}
