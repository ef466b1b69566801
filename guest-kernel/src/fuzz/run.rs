//! The `Fuzz` system call: one kernel thread per online CPU, each drawing its share of the
//! operations from its own generator (seed, thread index) and checking every outcome; then
//! one summary. Faults of the fuzzer's own instructions are fixed up (`arch::fuzz`), so a
//! thread survives them; an unexpected fault elsewhere ends only that thread (counted).
#![allow(unsafe_code)] // the probes; each block says why the operation is harmless

use super::plan::{self, Op, Outcome, Tally, Targets};
use super::rng::Rng;
use crate::arch::{cpu, fuzz, hypercall, percpu};
use crate::console::kprintln;
use crate::mm::layout::{phys_to_virt, KERNEL_VIRT_OFFSET};
use crate::process;
use alloc::vec::Vec;
use rampart_kernel_abi::syscall::Errno;
use spin::Mutex;

/// What the threads add up to, and the parameters they read.
static TOTAL: Mutex<Tally> = Mutex::new(Tally(
    [plan::Count {
        ops: 0,
        faults: 0,
        unexpected: 0,
    }; plan::KINDS.len()],
));
static JOB: Mutex<Job> = Mutex::new(Job {
    seed: 0,
    count: 0,
    threads: 1,
    targets: Targets {
        hole: None,
        kernel_text: 0,
        rampart: false,
    },
});
/// Unexpected outcomes printed in detail, at most (all are counted).
const MAX_REPORTED: u64 = 16;

#[derive(Clone, Copy)]
struct Job {
    seed: u64,
    count: u64,
    threads: u64,
    targets: Targets,
}

/// The generator of thread `index` for `seed`.
fn thread_seed(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Runs `count` operations from `seed` on every CPU; 0 if all matched, 1 otherwise.
pub fn run(count: u64, seed: u64) -> Result<u64, Errno> {
    let rampart = hypercall::rampart().is_some();
    let hole = crate::boot::BOOT_INFO.get().and_then(|info| {
        crate::attacks::hole::ram_holes(info.memory_regions()).max_by_key(|(s, e)| e - s)
    });
    let targets = Targets {
        hole: hole.filter(|_| rampart),
        kernel_text: (run as *const () as u64 - KERNEL_VIRT_OFFSET) & !0xfff,
        rampart,
    };
    let threads = crate::smp::online().count().max(1) as u64;
    *JOB.lock() = Job {
        seed,
        count,
        threads,
        targets,
    };
    *TOTAL.lock() = Tally::default();
    let where_ = if rampart { "under Rampart" } else { "natively" };
    kprintln!("fuzz: seed {seed}, {count} operations, {threads} threads (one per CPU), {where_}");
    let start = cpu::rdtsc();
    let me = process::current_pid();
    let mut pids = Vec::new();
    for index in 0..threads {
        pids.push(process::spawn_kernel_thread(
            "fuzz",
            fuzz_thread,
            index,
            me,
        )?);
    }
    let mut lost = 0;
    for pid in pids {
        let (_, code) = process::wait(pid)?;
        lost += u64::from(code != 0);
    }
    let cycles = cpu::rdtsc() - start;
    let total = *TOTAL.lock();
    for kind in plan::kinds(rampart) {
        let c = total.0[*kind as usize];
        kprintln!(
            "fuzz: kind={} ops={} faults={} unexpected={}",
            kind.name(),
            c.ops,
            c.faults,
            c.unexpected
        );
    }
    let unexpected = total.unexpected() + lost;
    kprintln!(
        "fuzz: {} operations, {unexpected} unexpected, seed {seed} ({} threads lost, {cycles} TSC cycles)",
        total.ops(),
        lost
    );
    Ok(u64::from(unexpected != 0))
}

/// One thread: its share of the operations, then its tally into the total.
extern "sysv64" fn fuzz_thread(index: u64) -> ! {
    let job = *JOB.lock();
    let share = job.count / job.threads + u64::from(index < job.count % job.threads);
    let mut rng = Rng::new(thread_seed(job.seed, index));
    let kinds = plan::kinds(job.targets.rampart);
    let cpu = percpu::index();
    let mut tally = Tally::default();
    let mut reported = 0;
    for step in 0..share {
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let op = Op::generate(kind, &mut rng, &job.targets);
        let outcome = execute(&op);
        let ok = plan::expected(&op, job.targets.rampart, outcome);
        tally.add(kind, outcome, ok);
        if !ok && reported < MAX_REPORTED {
            reported += 1;
            kprintln!(
                "fuzz: UNEXPECTED thread {index} cpu {cpu} step {step}: {op:x?} -> {outcome:x?}"
            );
        }
    }
    kprintln!(
        "fuzz: thread {index} on cpu {cpu}: {share} operations, {} unexpected",
        tally.unexpected()
    );
    TOTAL.lock().merge(&tally);
    process::exit_current(0)
}

/// Runs `op` once.
fn execute(op: &Op) -> Outcome {
    let unit = |r: fuzz::Probe<()>| r.map(|()| 0);
    match *op {
        Op::Cpuid { leaf, subleaf } => fuzz::cpuid(leaf, subleaf).map(|r| u64::from(r[0])),
        Op::Rdmsr { msr } => fuzz::rdmsr(msr),
        Op::Wrmsr { msr, value } => {
            // Natively only MSRs that do not read either (no random value lands in a real one).
            if !job_rampart() && fuzz::rdmsr(msr).is_ok() {
                return Ok(0);
            }
            // SAFETY: under Rampart the MSR is outside the allowlist and must be refused;
            // natively it does not exist (its read faulted).
            unit(unsafe { fuzz::wrmsr(msr, value) })
        }
        Op::Cr4 { bit } => {
            // SAFETY: only a reserved bit is added: the CPU refuses the write.
            unit(unsafe { fuzz::write_cr4(cpu::read_cr4() | (1 << bit)) })
        }
        // SAFETY: CR4.OSXSAVE is clear in this kernel: XSETBV raises #UD whatever the value.
        Op::Xsetbv { index, value } => unit(unsafe { fuzz::xsetbv(index, value) }),
        Op::Wbinvd => unit(fuzz::wbinvd()),
        // SAFETY: only emulators run this kernel (no cache contents to lose), or Rampart.
        Op::Invd => unit(unsafe { fuzz::invd() }),
        // SAFETY: no VMX or SMX operation is enabled in the guest: each raises #UD.
        Op::Vmx { which, operand } => unit(unsafe { fuzz::vmx(which, operand) }),
        // SAFETY: reads of the APM and DMA controller ports change nothing.
        Op::InByte { port } => unsafe { fuzz::inb(port) }.map(u64::from),
        // SAFETY: only generated under Rampart, which must drop these writes.
        Op::OutByte { port, value } => unit(unsafe { fuzz::outb(port, value) }),
        Op::PciRead { address } => cpu::without_interrupts(|| {
            // SAFETY: a configuration-space read; no configuration write is made.
            unsafe { fuzz::outl(plan::PORT_PCI_ADDRESS, address) }
                // SAFETY: as above.
                .and_then(|()| unsafe { fuzz::inl(plan::PORT_PCI_DATA) })
                .map(u64::from)
        }),
        Op::Hypercall { number, arguments } => {
            // SAFETY: never Shutdown or a lock; every buffer or range argument is one the
            // hypervisor must refuse (outside RAM, its own memory, unaligned, kernel text).
            unsafe { fuzz::vmcall(number, arguments) }.map(|v| v as u64)
        }
        Op::PhysRead { address } => {
            // SAFETY: the direct map covers all physical memory below its top, holes included.
            unsafe { fuzz::read_byte(phys_to_virt(address)) }.map(u64::from)
        }
    }
}

fn job_rampart() -> bool {
    hypercall::rampart().is_some()
}
