//! What `arch`'s entry points continue in: the kernel above `arch`, named by one trait and bound
//! at link time, so `arch` imports nothing above it.
//!
//! `_start`, the AP entry, the SYSCALL stub and the interrupt stubs are asm that must call into
//! the kernel. The composition root implements [`Kernel`] and invokes [`bind!`], which defines
//! the symbols those stubs call, each a direct call into the implementation: no writable
//! function pointer sits on an entry path (the hypervisor locks the IDT, the SYSCALL MSRs and
//! the kernel text, not the kernel's data), and the calls cost what the former direct calls did.

use super::syscall_entry::SyscallFrame;
use crate::trap::InterruptFrame;
use rampart_boot_info::BootInfo;

/// The kernel's side of every way into it.
pub trait Kernel {
    /// The boot CPU's continuation of `_start` (`arch::entry`), on the kernel stack: RDI and the
    /// BootInfo it points to, if the address is non-null and aligned (nothing else is checked).
    fn start(boot_info_address: u64, boot_info: Option<&'static BootInfo>) -> !;
    /// An application processor's first Rust code (`arch::smp`), on its idle stack, interrupts
    /// off.
    fn ap_main(apic_id: u32) -> !;
    /// A system call (`arch::syscall_entry`), interrupts off; the result goes to `frame.rax`.
    fn syscall(frame: &mut SyscallFrame);
    /// A ring-3 #PF that may be the first touch of a lazily mapped heap page: true if the page
    /// at `address` is mapped now and the access can be retried.
    fn heap_fault_in(address: u64) -> bool;
    /// Any other exception in ring 3: ends the process.
    fn user_fault(frame: &InterruptFrame, cr2: u64) -> !;
    /// True if this CPU runs a kernel thread (an exception there ends only that thread).
    fn in_kernel_thread() -> bool;
    /// An exception in a kernel thread: ends the thread.
    fn kernel_thread_fault(frame: &InterruptFrame, cr2: u64) -> !;
    /// The boot CPU's timer interrupt, before EOI: kernel time advances.
    fn clock_tick();
    /// CPU `cpu`'s timer interrupt, after EOI (may switch to another process).
    fn timer_tick(from_user: bool, cpu: usize);
    /// A reschedule IPI interrupted ring 3.
    fn kicked_in_user_mode();
}

/// `bind!(K)`: defines the symbols `arch`'s stubs call, continuing in `K: Kernel`. Invoked
/// exactly once, by the composition root (a second invocation is a duplicate-symbol link error,
/// none a missing-symbol one).
macro_rules! bind {
    ($kernel:ty) => {
        /// Called once by `_start` (`arch::entry`) with RDI from the firmware.
        #[allow(unsafe_code)] // `no_mangle`: the name `_start` calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_kernel_entry(boot_info_address: u64) -> ! {
            // SAFETY: only `_start` calls this symbol, with RDI as the firmware set it.
            unsafe { $crate::arch::entry::enter::<$kernel>(boot_info_address) }
        }

        /// Called by the AP entry (`arch::smp`) with RDI = the AP's APIC ID.
        #[allow(unsafe_code)] // `no_mangle`: the name the AP entry calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_ap_entry(apic_id: u64) -> ! {
            <$kernel as $crate::arch::kernel::Kernel>::ap_main(apic_id as u32)
        }

        /// Called by the SYSCALL stub (`arch::syscall_entry`) with the frame it built.
        #[allow(unsafe_code)] // `no_mangle`: the name the stub calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_syscall_dispatch(
            frame: *mut $crate::arch::syscall_entry::SyscallFrame,
        ) {
            // SAFETY: the stub passes the frame it has just pushed on this kernel stack; it
            // stays valid and unaliased until this returns.
            let frame = unsafe { &mut *frame };
            <$kernel as $crate::arch::kernel::Kernel>::syscall(frame)
        }

        /// Called by the common interrupt stub (`arch::interrupts`) with the frame it built.
        #[allow(unsafe_code)] // `no_mangle`: the name the stub calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_interrupt_dispatch(frame: *mut $crate::trap::InterruptFrame) {
            // SAFETY: the common stub passes the address of the frame it has just pushed; it
            // stays valid and unaliased until this returns and the stub pops it.
            let frame = unsafe { &mut *frame };
            $crate::arch::interrupts::dispatch::<$kernel>(frame)
        }
    };
}
pub(crate) use bind;
