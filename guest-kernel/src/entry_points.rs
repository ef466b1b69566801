//! The kernel's side of `arch`'s entry points (`arch::kernel::Kernel`): which module each way
//! into the kernel continues in. Bound here, at the top, so `arch` imports nothing above it.

use crate::arch::kernel::{bind, Kernel};
use crate::arch::syscall_entry::SyscallFrame;
use crate::trap::InterruptFrame;
use crate::{boot, process, smp, syscall, time};
use rampart_boot_info::BootInfo;

/// The Rampart guest kernel, as `arch` sees it.
pub struct Rampart;

impl Kernel for Rampart {
    fn start(boot_info_address: u64, boot_info: Option<&'static BootInfo>) -> ! {
        boot::start(boot_info_address, boot_info)
    }

    fn ap_main(apic_id: u32) -> ! {
        smp::ap_main(apic_id)
    }

    #[inline(always)]
    fn syscall(frame: &mut SyscallFrame) {
        syscall::dispatch(frame)
    }

    fn heap_fault_in(address: u64) -> bool {
        syscall::memory::fault_in(address)
    }

    fn user_fault(frame: &InterruptFrame, cr2: u64) -> ! {
        process::user_fault(frame, cr2)
    }

    fn in_kernel_thread() -> bool {
        process::in_kernel_thread()
    }

    fn kernel_thread_fault(frame: &InterruptFrame, cr2: u64) -> ! {
        process::kernel_thread_fault(frame, cr2)
    }

    fn clock_tick() {
        time::tick()
    }

    fn timer_tick(from_user: bool, cpu: usize) {
        process::timer_tick(from_user, cpu)
    }

    fn kicked_in_user_mode() {
        process::kicked_in_user_mode()
    }
}

bind!(Rampart);
