//! The boot sequence: console, BootInfo, hypervisor detection, own CPU tables, memory, timer
//! interrupts, the other CPUs, hypercall checks, locks, then `init` from the initrd; and the result line the
//! boot tests wait for, printed when init exits.

use crate::arch::address_spaces::{self, LockOutcome};
use crate::arch::hypercall::{self, Rampart, UNASSIGNED_NUMBER};
use crate::arch::syscall_entry;
use crate::arch::{cpu, cpu_roots, gdt, idt, interrupts, kpti, lapic, paging, phys, pic};
use crate::console::{self, kprintln};
use crate::hv::Detection;
use crate::mm::memory_map::Summary;
use crate::mm::{frames, kernel_map};
use crate::{cmdline, process, time, trap};
use core::fmt;
use rampart_boot_info::MemoryKind;
use rampart_boot_info::{BootInfo, BootMode};
use rampart_hv_abi::{DescriptorLock, HypercallError, ABI_VERSION};

/// Timer ticks to see before declaring the timer working.
const TICKS_TO_WAIT: u64 = 10;
/// TSC cycles to wait for the first tick (a few seconds at any clock rate we run at).
const FIRST_TICK_TIMEOUT_CYCLES: u64 = 5_000_000_000;
/// Polls to wait for the first tick, in case the TSC itself does not advance.
const FIRST_TICK_MAX_POLLS: u64 = 1 << 28;

/// Physical memory the frame allocator never hands out: with the attack suite, the default
/// SMRAM its SMI attack writes (`attacks::ipi`); else nothing.
#[cfg(feature = "attacks")]
const KEPT_OUT: (u64, u64) = crate::attacks::ipi::SMRAM_WINDOW;
#[cfg(not(feature = "attacks"))]
const KEPT_OUT: (u64, u64) = (0, 0);

/// Bytes of kernel heap, carved from the first usable range large enough.
const HEAP_SIZE: u64 = 8 << 20;

/// The firmware's BootInfo, copied into the kernel so boot memory can be reclaimed later.
pub static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();
/// The `mode=` and `hypervisor=` values of the result line.
static RESULT_NAMES: spin::Once<(&'static str, &'static str)> = spin::Once::new();

/// Runs the boot sequence; called once by `arch::entry` with RDI and the BootInfo it points to.
/// Never inlined: the gdb boot test breaks at it by name.
#[inline(never)]
pub fn start(address: u64, boot_info: Option<&'static BootInfo>) -> ! {
    // Boot cost: the TSC counts from reset, so this is everything before the kernel (OVMF,
    // firmware, and the hypervisor's set-up under Rampart).
    let entry_tsc = cpu::rdtsc();
    crate::smp::init_boot_cpu();
    console::init();
    let info = keep_boot_info(address, boot_info);
    let mode = match info.boot_mode() {
        BootMode::Hypervisor => "hv",
        BootMode::Native => "native",
    };
    kprintln!(
        "Rampart guest kernel {} (boot mode: {mode})",
        env!("CARGO_PKG_VERSION")
    );
    kprintln!("tsc at entry: {entry_tsc}");
    let memory = Summary::of(info.memory_regions());
    kprintln!(
        "memory: {} MiB usable in {} regions",
        memory.usable_mib(),
        memory.usable_regions
    );

    let (vendor, rampart) = hypercall::detect();
    let detection = Detection::classify(vendor);
    kprintln!("hypervisor: {detection}");
    #[cfg(feature = "attacks")]
    if cmdline::crash(info.command_line()) == Some(cmdline::Crash::TripleFault) {
        kprintln!("crash=triple-fault: INT3 before any IDT is loaded");
        crate::arch::attack::breakpoint_without_idt();
    }

    RESULT_NAMES.call_once(|| (mode, detection.result_name()));

    install_cpu_tables(info);
    init_memory(info.memory_regions());
    enter_cpu_roots();
    syscall_entry::init();
    let hz = timer_hz(info);
    time::set_hz(hz);
    let timer_count = start_timer(hz);
    // Every CPU must be set up before the hypervisor locks the entry points.
    cpu::without_interrupts(|| crate::smp::start_all(info, timer_count));
    if let Some(rampart) = &rampart {
        check_hypercalls(rampart);
        check_rejections(rampart);
        lock_entry_points(rampart);
    }
    #[cfg(feature = "attacks")]
    if cmdline::crash(info.command_line()) == Some(cmdline::Crash::UncheckedRoot) {
        crate::attacks::unchecked_root::detour_waiting_aps();
    }
    #[cfg(feature = "attacks")]
    if cmdline::crash(info.command_line()) == Some(cmdline::Crash::AliasCpuTable) {
        crate::attacks::roots::alias_cpu_table_before_lock();
    }
    // After the entry-point locks, with every CPU started and on the kernel root.
    lock_kernel_mappings();
    interrupts::disable();
    process::init();
    crate::smp::release_aps();
    kprintln!("ready");
    #[cfg(feature = "attacks")]
    if cmdline::crash(info.command_line()) == Some(cmdline::Crash::Panic) {
        panic!("crash=panic on the command line");
    }
    start_init(info);
    process::idle_loop()
}

/// The firmware's BootInfo, copied into the kernel ([`BOOT_INFO`]); a missing or invalid one
/// fails the boot (`FAIL bad-boot-info`).
fn keep_boot_info(address: u64, boot_info: Option<&'static BootInfo>) -> &'static BootInfo {
    match boot_info {
        Some(raw) if raw.is_valid() => BOOT_INFO.call_once(|| *raw),
        Some(raw) => fail(
            "bad-boot-info",
            format_args!(
                "BootInfo at {address:#x} has magic {:#018x} version {} (expected {:#018x} version {})",
                raw.magic,
                raw.version,
                rampart_boot_info::BOOT_INFO_MAGIC,
                rampart_boot_info::BOOT_INFO_VERSION
            ),
        ),
        None => fail("bad-boot-info", format_args!("no usable BootInfo address in RDI ({address:#x})")),
    }
}

/// The timer rate: `hz=` from the command line, or the default (a bad value is reported).
fn timer_hz(info: &BootInfo) -> u64 {
    cmdline::hz(info.command_line()).unwrap_or_else(|text| {
        kprintln!(
            "bad hz={text} on the command line; using {}",
            cmdline::DEFAULT_HZ
        );
        cmdline::DEFAULT_HZ
    })
}

/// Spawns `init` from the initrd. A boot that cannot start init has failed, and says so: a
/// malformed initrd is `FAIL bad-initrd`, a missing or unloadable init `FAIL no-init`.
fn start_init(info: &BootInfo) {
    let initrd = info.modules().iter().find(|m| m.name() == "initrd");
    if let Some(module) = initrd.filter(|m| m.length > 0) {
        let bytes = phys::module_bytes(module.start, module.length);
        match rampart_kernel_abi::initrd::Initrd::parse(bytes) {
            Ok(archive) => kprintln!("initrd: {} files, {} bytes", archive.len(), bytes.len()),
            Err(error) => fail("bad-initrd", format_args!("initrd: {error}")),
        }
        process::set_initrd(bytes);
    }
    match process::spawn("init", b"", process::IDLE) {
        Ok(pid) => kprintln!("started init (pid {pid})"),
        Err(errno) => fail(
            "no-init",
            format_args!("cannot start init from the initrd ({})", errno.name()),
        ),
    }
}

/// The end of the run (init exited with `code`): the result line, then
/// shutdown under Rampart or halt.
pub fn finish(code: i64) -> ! {
    cpu::disable_interrupts();
    kprintln!("init exited with code {code}");
    let rampart = hypercall::rampart();
    if let Some(rampart) = &rampart {
        rampart.log_exit_stats();
    }
    let (mode, hypervisor) = RESULT_NAMES.get().copied().unwrap_or(("?", "?"));
    if code == 0 {
        console::print_result(format_args!(
            "PASS mode={mode} hypervisor={hypervisor} ticks={}",
            time::ticks()
        ));
    } else {
        console::print_result(format_args!("FAIL init-exit-{code}"));
    }
    if let Some(rampart) = rampart {
        let refused = rampart.shutdown();
        kprintln!("shutdown hypercall returned {refused}");
    }
    cpu::halt_forever()
}

/// Step 3b: the kernel heap and the frame allocator, from the usable memory (and the boot
/// area, now that the kernel runs on its own tables and stack).
fn init_memory(regions: &[rampart_boot_info::MemoryRegion]) {
    let limit = kernel_map::MAX_GIB as u64 * (1 << 30);
    let heap = frames::ranges(regions, MemoryKind::Usable, limit)
        .find(|&(start, end)| end - start >= HEAP_SIZE)
        .map(|(start, _)| start);
    let Some(heap) = heap else {
        fail(
            "no-memory",
            format_args!("no usable range for the kernel heap"),
        )
    };
    #[allow(unsafe_code)] // scheduler/boot glue over `arch`'s unsafe primitives
    // SAFETY: usable RAM (memory map), in the direct map, handed to nothing else: the frame
    // allocator below skips exactly this range.
    unsafe {
        phys::init_heap(heap, HEAP_SIZE)
    };
    for kind in [MemoryKind::Usable, MemoryKind::BootReclaimable] {
        for (start, end) in frames::ranges(regions, kind, limit) {
            let pieces = [(start, end.min(heap)), (start.max(heap + HEAP_SIZE), end)];
            let pieces = pieces.into_iter().flat_map(|(from, to)| {
                let (hole_start, hole_end) = KEPT_OUT;
                [(from, to.min(hole_start)), (from.max(hole_end), to)]
            });
            for (from, to) in pieces.filter(|(from, to)| from < to) {
                #[allow(unsafe_code)] // scheduler/boot glue over `arch`'s unsafe primitives
                // SAFETY: usable RAM outside the heap, or the firmware's boot area, which
                // nothing uses any more (BootInfo copied, own stack and page tables loaded).
                unsafe {
                    phys::add_range(from, to)
                };
            }
        }
    }
    kprintln!(
        "memory: heap {} MiB at {heap:#x}, {} free frames",
        HEAP_SIZE >> 20,
        phys::free_frames()
    );
}

/// Step 3: own GDT/TSS, IDT and page tables, and the paging protections.
fn install_cpu_tables(info: &BootInfo) {
    gdt::init();
    idt::init();
    let (map, protections) = match paging::init(info.memory_regions()) {
        Ok(result) => result,
        Err(error) => fail(
            "kernel-paging",
            format_args!("cannot build page tables: {error}"),
        ),
    };
    let image = paging::kernel_image();
    kprintln!(
        "page tables: physical 0..{:#x} direct mapped at {:#x} (2 MiB pages, NX), kernel {:#x}..{:#x} in 4 KiB pages",
        map.mapped_top,
        crate::mm::layout::DIRECT_MAP_BASE,
        image.text_start,
        image.data_end
    );
    if map.unmapped_ram > 0 {
        kprintln!(
            "warning: {} MiB of RAM above the map left unmapped",
            map.unmapped_ram >> 20
        );
    }
    kprintln!("protections enabled: {protections}");
    kprintln!("GDT, IDT and page tables installed");
    setup_kpti(info, protections.nxe);
}

/// Step 3a': kernel page-table isolation as the command line asks (`kpti=on|off`, default
/// off), before any other CPU starts and before anything is locked. Logs `KPTI: ...` always.
fn setup_kpti(info: &BootInfo, nx: bool) {
    let wanted = cmdline::kpti(info.command_line()).unwrap_or_else(|text| {
        kprintln!("bad kpti={text} on the command line; using off");
        false
    });
    if !wanted {
        // The entry stack (TSS.RSP0) is set up all the same.
        kpti::init_cpu(crate::arch::percpu::index());
        kprintln!("KPTI: off");
        return;
    }
    match kpti::init(nx) {
        Ok(status) => kprintln!(
            "KPTI: on (PCID {}, INVPCID {}), user-mode kernel half at {:#x}",
            on_off(status.pcid),
            on_off(status.invpcid),
            crate::mm::kpti::template_root().unwrap_or(status.template_root)
        ),
        Err(error) => fail(
            "kpti",
            format_args!("KPTI: cannot build the template: {error}"),
        ),
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// Step 4: legacy PIC off, LAPIC timer at `hz`, interrupts on, wait for ticks. Returns the
/// timer's initial count (the other CPUs use the same).
fn start_timer(hz: u64) -> u32 {
    pic::disable();
    let apic = lapic::init(trap::VECTOR_SPURIOUS);
    let count = match lapic::calibrate_10ms() {
        Some(count) => {
            kprintln!("LAPIC timer calibrated against PIT channel 2: {count} counts per 10 ms");
            count
        }
        None => {
            let count = lapic::FALLBACK_COUNT_PER_10MS;
            kprintln!("PIT calibration failed; LAPIC timer uses the fixed count {count}");
            count
        }
    };
    let count = u32::try_from(u64::from(count) * 100 / hz)
        .unwrap_or(u32::MAX)
        .max(1);
    lapic::start_periodic_timer(trap::VECTOR_TIMER, count);
    let kind = if apic.x2apic { "x2APIC" } else { "xAPIC" };
    kprintln!("local APIC: {kind} at {:#x}, legacy PIC masked", apic.base);
    kprintln!(
        "LAPIC timer: periodic at {hz} Hz, vector {:#04x}, initial count {count}",
        trap::VECTOR_TIMER
    );
    interrupts::enable();

    // Until the first tick proves the timer works, poll with a deadline: HLT without any
    // interrupt source would never return. Once ticks arrive, HLT between them.
    let began = cpu::rdtsc();
    let mut polls = 0u64;
    while time::ticks() == 0 {
        polls += 1;
        if cpu::rdtsc().wrapping_sub(began) > FIRST_TICK_TIMEOUT_CYCLES
            || polls > FIRST_TICK_MAX_POLLS
        {
            fail("no-timer", format_args!("no timer interrupts"));
        }
        core::hint::spin_loop();
    }
    while time::ticks() < TICKS_TO_WAIT {
        cpu::halt();
    }
    kprintln!("timer ticks: {}", time::ticks());
    count
}

/// Step 5: the version hypercall and an unknown number.
fn check_hypercalls(rampart: &Rampart) {
    let version = rampart.version();
    kprintln!("hypercall version: {version:#010x}");
    if version != i64::from(ABI_VERSION) {
        fail(
            "hypercall-version",
            format_args!("expected hypercall ABI version {ABI_VERSION:#010x}"),
        );
    }
    let result = rampart.call_unassigned();
    if HypercallError::try_from(result).ok() == Some(HypercallError::NotSupported) {
        kprintln!("hypercall {UNASSIGNED_NUMBER:#x}: NotSupported (as expected)");
    } else {
        fail(
            "hypercall-unknown",
            format_args!("hypercall {UNASSIGNED_NUMBER:#x}: expected NotSupported, got {result}"),
        );
    }
}

/// Step 5a: malformed hypercalls get their documented errors (and no fault).
fn check_rejections(rampart: &Rampart) {
    let total = crate::hypercall_checks::CASES.len();
    let mut wrong = crate::hypercall_checks::run(rampart).peekable();
    if let Some((name, result)) = wrong.next() {
        fail(
            "hypercall-arguments",
            format_args!("hypercall argument check {name}: unexpected result {result}"),
        );
    }
    kprintln!("hypercall argument checks: {total} of {total} rejected as expected");
}

/// Step 5b: SYSCALL MSRs, GDT, IDT, TR and the TSSs are final: Rampart freezes them (one-way).
/// Every CPU's TSS.RSP0 is its fixed entry stack (`arch::kpti::init_cpu`), so no switch writes
/// the TSS, and RSP0 and the IST pointers cannot be turned into a stack pivot.
fn lock_entry_points(rampart: &Rampart) {
    const NOT_SUPPORTED: i64 = HypercallError::NotSupported as i64;
    match (
        rampart.lock_syscall_msrs(),
        rampart.lock_descriptor_tables(DescriptorLock::TSS),
    ) {
        (0, 0) => kprintln!("hypervisor locks: syscall MSRs, descriptor tables"),
        (0, NOT_SUPPORTED) => kprintln!("hypervisor locks: syscall MSRs (no table exiting)"),
        (msrs, tables) => fail(
            "hypervisor-locks",
            format_args!("lock results {msrs}, {tables}"),
        ),
    }
}

/// Step 3c: the boot CPU moves onto its own roots for good (`arch::cpu_roots`; each AP does
/// the same as it starts), now that frames can be allocated.
fn enter_cpu_roots() {
    if !cpu_roots::build(0) {
        fail(
            "cpu-roots",
            format_args!("no memory for the boot CPU's roots"),
        );
    }
    cpu_roots::enter(0);
    let values = cpu_roots::values(0).expect("built");
    kprintln!(
        "per-CPU roots: CPU 0 on CR3 {:#x} (user mode {:#x}); process switches load no CR3",
        values.kernel,
        values.user
    );
}

/// Step 5c: the kernel half's page tables become read-only under Rampart (`pagetables =
/// locked`), but for the stack window's page tables, so later stacks need no table write.
/// Every started CPU's roots are declared: the only values CR3 may take from then on.
fn lock_kernel_mappings() {
    let (start, length) = kernel_map::stack_window();
    let roots: alloc::vec::Vec<_> = crate::smp::online()
        .filter_map(|(index, apic_id)| cpu_roots::declared(index, apic_id))
        .collect();
    match address_spaces::lock(start, length, &roots) {
        LockOutcome::Locked => {
            kprintln!(
                "page tables: locked (stack window {start:#x}+{length:#x}); the roots of {} CPUs declared",
                roots.len()
            )
        }
        LockOutcome::PolicyOff => {
            kprintln!("page tables: not locked (hypervisor policy pagetables = off)")
        }
        LockOutcome::NoHypervisor => kprintln!("page tables: not locked (no hypervisor)"),
        LockOutcome::Failed(error) => fail(
            "page-table-lock",
            format_args!(
                "LockKernelMappings({start:#x}, {length:#x}, {} CPUs' roots) refused: {error}",
                roots.len()
            ),
        ),
    }
}

/// Prints `[kernel] <message>` and `RAMPART-RESULT: FAIL <reason>`, then halts.
fn fail(reason: &str, message: fmt::Arguments<'_>) -> ! {
    cpu::disable_interrupts();
    console::print_line(message);
    console::print_result(format_args!("FAIL {reason}"));
    cpu::halt_forever()
}
