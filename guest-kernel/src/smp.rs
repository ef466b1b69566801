//! Bringing up the other CPUs: the boot CPU starts each one (INIT-SIPI-SIPI through the AP
//! trampoline natively, `StartVcpu` under Rampart) and waits until it has its own GDT/TSS, IDT,
//! page tables, SYSCALL MSRs and LAPIC timer, all before the hypervisor locks them; each then
//! waits for the scheduler and runs its own idle loop. Also the set of online CPUs, for TLB
//! shootdowns.

use crate::arch::{cpu, gdt, hypercall, idt, lapic, paging, percpu, smp, syscall_entry, tlb};
use crate::console::kprintln;
use crate::{cpu_list, process, time, trap};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use rampart_boot_info::{BootInfo, MAX_CPUS};

/// Local APIC ID of each CPU index (index 0 = boot CPU).
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(u32::MAX) }; MAX_CPUS];
/// Bit N: CPU N has finished its set-up.
static ONLINE: AtomicU32 = AtomicU32::new(0);
/// Bit N: CPU N was given up on (it halts if it ever arrives).
static ABANDONED: AtomicU32 = AtomicU32::new(0);
/// IST stack tops (double fault, NMI, machine check) of each AP.
static IST_TOPS: [[AtomicU64; 3]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; 3] }; MAX_CPUS];
/// The LAPIC timer's initial count, as the boot CPU calibrated it.
static TIMER_COUNT: AtomicU32 = AtomicU32::new(0);
/// Set once the process table exists: APs wait for it before their idle loops.
static SCHEDULER_READY: AtomicBool = AtomicBool::new(false);

/// How long the boot CPU waits for each AP to finish its set-up.
const START_TIMEOUT_MS: u64 = 2000;

/// Registers the boot CPU (index 0): its per-CPU block. Call first thing at boot.
pub fn init_boot_cpu() {
    percpu::init(0);
}

/// Starts every CPU the BootInfo lists and logs `CPUs: N started (APIC IDs ...)`.
/// `timer_count` is the boot CPU's LAPIC timer count. Call with interrupts off once the boot
/// CPU's timer runs: the waits enable them only while halted (this code takes the table lock,
/// which the timer interrupt wants too).
pub fn start_all(info: &BootInfo, timer_count: u32) {
    let boot_id = lapic::id();
    APIC_IDS[0].store(boot_id, Ordering::SeqCst);
    ONLINE.fetch_or(1, Ordering::SeqCst);
    TIMER_COUNT.store(timer_count, Ordering::SeqCst);
    let aps = cpu_list::application_processors(info.cpus(), boot_id, MAX_CPUS);
    let mut started = alloc::vec![boot_id];
    if !aps.is_empty() {
        match Starter::new(info) {
            Ok(starter) => {
                for (slot, &apic_id) in aps.iter().enumerate() {
                    if starter.start(slot + 1, apic_id) {
                        started.push(apic_id);
                    }
                }
            }
            Err(why) => kprintln!("CPUs: {} more listed, none started: {why}", aps.len()),
        }
    }
    kprintln!("{}", cpu_list::started_line(&started));
}

/// How APs are started here.
enum Starter {
    Hypervisor(hypercall::Rampart),
    /// Natively: the trampoline page and the tables it runs on.
    Native {
        page: u64,
        root: u64,
    },
}

impl Starter {
    fn new(info: &BootInfo) -> Result<Self, &'static str> {
        if let Some(rampart) = hypercall::rampart() {
            return Ok(Self::Hypervisor(rampart));
        }
        let page = info.ap_trampoline;
        if page == 0 {
            return Err("no AP trampoline page in the BootInfo");
        }
        let root = paging::trampoline_root(page).ok_or("no memory for the trampoline's tables")?;
        Ok(Self::Native { page, root })
    }

    /// Starts CPU `index` (APIC ID `apic_id`) and waits for it; false (logged) if it failed.
    fn start(&self, index: usize, apic_id: u32) -> bool {
        let mut tops = [0u64; 4];
        for top in tops.iter_mut() {
            match process::allocate_stack_top() {
                Some(value) => *top = value,
                None => {
                    kprintln!("CPU with APIC ID {apic_id} not started: no memory for its stacks");
                    return false;
                }
            }
        }
        if !crate::arch::cpu_roots::build(index) {
            kprintln!("CPU with APIC ID {apic_id} not started: no memory for its roots");
            return false;
        }
        let [idle, ists @ ..] = tops;
        for (slot, top) in IST_TOPS[index].iter().zip(ists) {
            slot.store(top, Ordering::SeqCst);
        }
        APIC_IDS[index].store(apic_id, Ordering::SeqCst);
        let sent = match self {
            Self::Hypervisor(rampart) => {
                #[allow(unsafe_code)] // boot glue over `arch`'s unsafe primitives
                // SAFETY: the entry is `arch::smp`'s AP entry, which loads its own GDT, IDT and
                // TR first; `idle` is a fresh kernel stack; the kernel root maps both.
                let result = unsafe {
                    rampart.start_vcpu(apic_id, smp::entry64_address(), idle, paging::kernel_root())
                };
                if result != 0 {
                    kprintln!(
                        "CPU with APIC ID {apic_id} not started: StartVcpu returned {result}"
                    );
                }
                result == 0
            }
            Self::Native { page, root } => {
                let parameters = smp::TrampolineParameters {
                    cr3: *root,
                    rsp: idle,
                    apic_id,
                };
                smp::install_trampoline(*page, &parameters);
                #[allow(unsafe_code)] // boot glue over `arch`'s unsafe primitives
                // SAFETY: `apic_id` is a CPU the firmware parked and the kernel has not started
                // (listed once, not the boot CPU); the trampoline is installed above.
                let sent = unsafe { smp::wake(apic_id, *page, wait_ms) };
                if !sent {
                    kprintln!("CPU with APIC ID {apic_id}: INIT/SIPI not delivered");
                }
                sent
            }
        };
        if sent && wait_online(index) {
            return true;
        }
        ABANDONED.fetch_or(1 << index, Ordering::SeqCst);
        if sent {
            kprintln!("CPU with APIC ID {apic_id} did not start within {START_TIMEOUT_MS} ms");
        }
        false
    }
}

/// Waits at least `ms` milliseconds on the boot CPU's timer (interrupts on only while halted).
fn wait_ms(ms: u64) {
    let until = time::ticks() + crate::sched::queue::ticks_for(ms, time::hz()) + 1;
    while time::ticks() < until {
        cpu::enable_and_halt();
        cpu::disable_interrupts();
    }
}

fn wait_online(index: usize) -> bool {
    let until = time::ticks() + crate::sched::queue::ticks_for(START_TIMEOUT_MS, time::hz());
    while time::ticks() < until {
        if ONLINE.load(Ordering::SeqCst) & (1 << index) != 0 {
            return true;
        }
        cpu::enable_and_halt();
        cpu::disable_interrupts();
    }
    ONLINE.load(Ordering::SeqCst) & (1 << index) != 0
}

/// Bit N: CPU N sits in its idle loop with nothing to run (kept under the process table lock).
static IDLE: AtomicU32 = AtomicU32::new(0);

/// Records whether CPU `index` is about to idle (called by the scheduler under its lock).
pub fn set_idle(index: usize, idle: bool) {
    match idle {
        true => IDLE.fetch_or(1 << index, Ordering::SeqCst),
        false => IDLE.fetch_and(!(1 << index), Ordering::SeqCst),
    };
}

/// A process became ready: wake one idle CPU other than this one with an IPI, so it does not
/// wait for its next tick (called by the scheduler under its lock). Nothing when no other CPU
/// idles, which is always the case on one CPU: no IPI, no VM exit. Returns whether it kicked.
pub fn kick_idle() -> bool {
    let me = percpu::index();
    let idle = IDLE.load(Ordering::SeqCst) & ONLINE.load(Ordering::SeqCst) & !(1 << me);
    if idle == 0 {
        return false;
    }
    let index = idle.trailing_zeros() as usize;
    IDLE.fetch_and(!(1 << index), Ordering::SeqCst);
    let apic_id = APIC_IDS[index].load(Ordering::SeqCst);
    #[allow(unsafe_code)] // scheduler glue over `arch`'s unsafe primitives
    // SAFETY: a fixed IPI with a vector `arch::interrupts` handles (it only ends a HLT).
    unsafe {
        lapic::send_ipi(apic_id, lapic::command::fixed(trap::VECTOR_RESCHEDULE))
    };
    true
}

/// Interrupts CPU `index` (a process there has something to do: `kill_pending`).
pub fn kick(index: usize) {
    if index == percpu::index() || ONLINE.load(Ordering::SeqCst) & (1 << index) == 0 {
        return;
    }
    let apic_id = APIC_IDS[index].load(Ordering::SeqCst);
    #[allow(unsafe_code)] // glue over `arch`'s unsafe primitives
    // SAFETY: a fixed IPI with a vector `arch::interrupts` handles.
    unsafe {
        lapic::send_ipi(apic_id, lapic::command::fixed(trap::VECTOR_RESCHEDULE))
    };
}

/// One step of a wait for another CPU (interrupts off, no lock held): serves TLB shootdown
/// requests meanwhile, so the other CPU never waits for this one.
pub fn wait_politely() {
    tlb::service(percpu::index());
    core::hint::spin_loop();
}

/// Bit N: CPU N is asked to leave the scheduler and wait in [`parked`].
static PARK_REQUESTS: AtomicU32 = AtomicU32::new(0);
/// Bit N: CPU N waits in [`parked`] (off the online set, running nothing).
static PARKED: AtomicU32 = AtomicU32::new(0);

/// Whether CPU `index` is asked to park (the scheduler then runs its idle context only).
pub fn park_requested(index: usize) -> bool {
    PARK_REQUESTS.load(Ordering::SeqCst) & (1 << index) != 0
}

/// Asks the online CPU with the highest index other than this one to park; returns its (index,
/// APIC ID). It parks from its idle loop: at once if idle (kicked), else at its next timer tick
/// in ring 3 or when its process blocks. `None` if no other CPU is online.
#[cfg(feature = "attacks")]
pub fn request_park() -> Option<(usize, u32)> {
    let me = percpu::index();
    let (index, apic_id) = online().filter(|&(index, _)| index != me).last()?;
    PARK_REQUESTS.fetch_or(1 << index, Ordering::SeqCst);
    #[allow(unsafe_code)] // glue over `arch`'s unsafe primitives
    // SAFETY: a fixed IPI with a vector `arch::interrupts` handles (it only ends a HLT).
    unsafe {
        lapic::send_ipi(apic_id, lapic::command::fixed(trap::VECTOR_RESCHEDULE))
    };
    Some((index, apic_id))
}

/// Whether CPU `index` has parked.
#[cfg(feature = "attacks")]
pub fn is_parked(index: usize) -> bool {
    PARKED.load(Ordering::SeqCst) & (1 << index) != 0
}

/// Lets parked CPU `index` return to its scheduler.
#[cfg(feature = "attacks")]
pub fn unpark(index: usize) {
    PARK_REQUESTS.fetch_and(!(1 << index), Ordering::SeqCst);
}

/// This CPU's parking place (from its idle loop): off the online set (no TLB shootdown waits
/// for it), halting with interrupts on until the request is withdrawn, then back with a full
/// TLB flush (it missed the shootdowns meanwhile). A CPU restarted by INIT never comes back.
pub fn parked(index: usize) {
    ONLINE.fetch_and(!(1 << index), Ordering::SeqCst);
    PARKED.fetch_or(1 << index, Ordering::SeqCst);
    while park_requested(index) {
        cpu::enable_and_halt();
        cpu::disable_interrupts();
    }
    #[allow(unsafe_code)] // glue over `arch`'s unsafe primitives
    // SAFETY: reloading the same CR3 (the kernel root: this is the idle context) only drops
    // non-global translations; no page is global in this kernel.
    unsafe {
        cpu::write_cr3(cpu::read_cr3())
    };
    ONLINE.fetch_or(1 << index, Ordering::SeqCst);
    PARKED.fetch_and(!(1 << index), Ordering::SeqCst);
}

/// Lets the APs leave their start-up wait for their idle loops (after `process::init`).
pub fn release_aps() {
    SCHEDULER_READY.store(true, Ordering::SeqCst);
}

/// The online CPUs: (index, local APIC ID).
#[cfg_attr(not(feature = "attacks"), allow(dead_code))]
pub fn online() -> impl Iterator<Item = (usize, u32)> + Clone {
    let mask = ONLINE.load(Ordering::SeqCst);
    (0..MAX_CPUS)
        .filter(move |index| mask & (1 << index) != 0)
        .map(|index| (index, APIC_IDS[index].load(Ordering::SeqCst)))
}

/// Invalidates the kernel-half page `address` on every online CPU (`arch::tlb`). Call with no
/// lock held.
#[cfg_attr(not(feature = "attacks"), allow(dead_code))]
pub fn flush_kernel_page(address: u64) {
    let late = tlb::flush_everywhere(
        address,
        percpu::index(),
        online(),
        trap::VECTOR_TLB_SHOOTDOWN,
    );
    if late != 0 {
        let cpus: Vec<usize> = (0..MAX_CPUS).filter(|i| late & (1 << i) != 0).collect();
        kprintln!("TLB shootdown of {address:#x}: CPUs {cpus:?} did not answer");
    }
}

/// An AP's first Rust code (from `arch::smp`'s entry), on its idle stack, interrupts off.
pub fn ap_main(apic_id: u32) -> ! {
    let index = (1..MAX_CPUS).find(|&i| APIC_IDS[i].load(Ordering::SeqCst) == apic_id);
    let Some(index) = index.filter(|&i| ABANDONED.load(Ordering::SeqCst) & (1 << i) == 0) else {
        cpu::halt_forever()
    };
    percpu::init(index);
    paging::init_ap();
    let ists = IST_TOPS[index]
        .each_ref()
        .map(|top| top.load(Ordering::SeqCst));
    gdt::load(index, ists);
    idt::load();
    syscall_entry::init();
    crate::arch::kpti::init_cpu(index);
    crate::arch::cpu_roots::enter(index);
    lapic::init(trap::VECTOR_SPURIOUS);
    lapic::start_periodic_timer(trap::VECTOR_TIMER, TIMER_COUNT.load(Ordering::SeqCst));
    ONLINE.fetch_or(1 << index, Ordering::SeqCst);
    while !SCHEDULER_READY.load(Ordering::SeqCst) {
        #[cfg(feature = "attacks")]
        crate::attacks::unchecked_root::take_detour(index);
        cpu::enable_and_halt();
    }
    cpu::disable_interrupts();
    // Back on this CPU's own root if `crash=unchecked-root` moved it (natively or under
    // `pagetables = off`, where the boot goes on); otherwise a reload of the same value.
    #[cfg(feature = "attacks")]
    crate::arch::cpu_roots::enter(index);
    process::idle_loop()
}
