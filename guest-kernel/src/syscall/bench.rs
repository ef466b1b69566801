//! The `Bench` system call: what the `bench` program needs from the kernel for its SMP rows
//! (`rampart_kernel_abi::syscall::bench`): the CPU count and the caller's CPU, round trips of
//! the TLB-shootdown IPI, and `ProtectRange` hypercalls that make the hypervisor shoot down
//! every other vCPU. Nothing here changes what any process can reach: the IPI invalidates a
//! kernel page that stays mapped, and the scratch frame keeps the rights it had (RW-).

use super::Arguments;
use crate::arch::hypercall;
use crate::arch::percpu;
use crate::arch::phys::Frames;
use crate::mm::address_space::PhysMemory;
use crate::mm::page_table::PAGE_SIZE;
use crate::smp;
use core::sync::atomic::{AtomicU64, Ordering};
use rampart_hv_abi::Access;
use rampart_kernel_abi::syscall::{bench as op, Errno};

/// The frame `SHOOTDOWN` protects (allocated once, never freed; 0 until then).
static SCRATCH_FRAME: AtomicU64 = AtomicU64::new(0);
/// A kernel-half page that stays mapped: the IPI round trip invalidates its translation.
static IPI_TARGET: u64 = 0;

/// `bench(op, count)`.
pub fn bench(arguments: &Arguments) -> Result<u64, Errno> {
    let [operation, count, ..] = *arguments;
    if count > op::MAX_COUNT {
        return Err(Errno::Invalid);
    }
    match operation {
        op::CPUS => Ok((smp::online().count() as u64) << 32 | percpu::index() as u64),
        op::IPI => Ok(ipi_round_trips(count)),
        op::SHOOTDOWN => shootdowns(count),
        _ => Err(Errno::Invalid),
    }
}

/// `count` shootdown IPIs to every other online CPU, each waited for; returns how many CPUs
/// each reached (0 on one CPU: then only the local INVLPG runs).
fn ipi_round_trips(count: u64) -> u64 {
    let address = core::ptr::addr_of!(IPI_TARGET) as u64;
    for _ in 0..count {
        smp::flush_kernel_page(address);
    }
    smp::online().count() as u64 - 1
}

/// `count` `ProtectRange` hypercalls on the scratch frame, keeping read and write.
fn shootdowns(count: u64) -> Result<u64, Errno> {
    let rampart = hypercall::rampart().ok_or(Errno::NoSys)?;
    let frame = scratch_frame()?;
    let keep = u64::from((Access::READ | Access::WRITE).bits());
    for _ in 0..count {
        if rampart.protect_range(frame, PAGE_SIZE, keep) != 0 {
            return Err(Errno::Invalid);
        }
    }
    Ok(0)
}

fn scratch_frame() -> Result<u64, Errno> {
    let frame = SCRATCH_FRAME.load(Ordering::SeqCst);
    if frame != 0 {
        return Ok(frame);
    }
    let fresh = Frames.allocate().ok_or(Errno::NoMemory)?;
    match SCRATCH_FRAME.compare_exchange(0, fresh, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => Ok(fresh),
        Err(winner) => {
            Frames.free(fresh);
            Ok(winner)
        }
    }
}
