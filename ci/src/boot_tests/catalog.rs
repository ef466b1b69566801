//! The boot tests: which emulator and image each boots, and the serial lines each asserts.
//! The markers are the contract with firmware/, hypervisor/ and guest-kernel/.

use super::expect::{Check, Expectations, LinePattern};
use super::failures;
use super::session::Session;
use super::shell::{self, Flavour};
use crate::emulator::Emulator;
use crate::image::Mode;

/// How the image differs from a normal build.
#[derive(Clone, Copy, Debug)]
pub enum Variant {
    Normal,
    /// The kernel's ELF magic overwritten with `XELF`.
    CorruptMagic,
    /// The kernel cut to half its size.
    Truncated,
    /// `mode = turbo` in boot.cfg.
    BadConfig,
    /// The initrd without `init` (stamped as it is: the kernel, not the firmware, must notice).
    NoInit,
    /// Two minutes of `crate::soak` rounds (spawn/exit, the exit fuzzer, the attack suite).
    Soak,
    /// `cmdline = crash=panic`: the kernel panics after `ready`.
    CrashPanic,
    /// `cmdline = crash=triple-fault`: an exception with no IDT at boot.
    CrashTripleFault,
    /// `cmdline = crash=unchecked-root`: the APs leave the kernel root just before the lock.
    CrashUncheckedRoot,
    /// `cmdline = crash=alias-cpu-table`: the boot CPU's directory table also in the kernel half.
    CrashAliasCpuTable,
    /// Verified boot: the firmware is stamped with the built kernel's digest, then one byte of
    /// the kernel changes (a kernel swapped on a built image).
    SwappedKernel,
    /// `gdb = on` in boot.cfg: real gdb against the hypervisor's stub (`crate::gdb::test`).
    Gdb,
    /// `gdb = on`, and gdb kills the guest (`crate::gdb::test::Kind::Kill`).
    GdbKill,
    /// `gdb = on`: a step that faults into `cli; hlt`, the red team's packets, `kill`
    /// (`crate::gdb::wedge`).
    GdbStepWedge,
    /// `gdb = on` on several CPUs: each vCPU a gdb thread (`crate::gdb::test::Kind::Threads`).
    GdbThreads,
    /// `pagetables = off` in boot.cfg: the hypervisor leaves the kernel's page tables unlocked.
    PagetablesOff,
    /// `cmdline = kpti=on` (`super::kpti`).
    Kpti,
    /// The production firmware (hypervisor without the GDB stub) and `gdb = on` in boot.cfg: the
    /// hypervisor must say it has no stub and run the guest as usual.
    Production,
}

/// One boot test.
#[derive(Clone, Copy)]
pub struct BootTest {
    pub name: &'static str,
    pub emulator: Emulator,
    pub mode: Mode,
    /// The Bochs CPU model (ignored by QEMU).
    pub cpu: &'static str,
    /// Processors of the machine.
    pub cpus: u32,
    pub variant: Variant,
    pub expect: Expectations,
}

/// The tests of `tests` that boot the hv image under Bochs, moved to QEMU/KVM on the host's CPU
/// (`cargo xtask test --emulator kvm`, for runners that offer VT-x to their guests; untested on
/// these machines, which have no VT-x); refuses a selection with any other test.
pub fn under_kvm(tests: &[&'static BootTest]) -> Result<Vec<&'static BootTest>, String> {
    let mut moved = Vec::new();
    for test in tests {
        if test.emulator != Emulator::Bochs || test.mode != Mode::Hv {
            return Err(format!(
                "--emulator kvm moves hv tests off Bochs; `{}` is not one (choose with --only)",
                test.name
            ));
        }
        // Leaked once per run: the runner's tests are 'static, and a run moves a few.
        moved.push(&*Box::leak(Box::new(BootTest {
            emulator: Emulator::Kvm,
            ..**test
        })));
    }
    Ok(moved)
}

/// The native QEMU boot's lines in order. QEMU q35 has an ACPI MCFG (its MMCONFIG window at
/// 0xB0000000, buses 0-255) and an FADT whose reset register is port 0xCF9; no DMAR without
/// `-device intel-iommu`. The firmware must keep reporting all three.
const NATIVE_LINES: &[LinePattern] = &[
    &["[fw] Rampart firmware"],
    &["[fw] kernel \\rampart\\kernel.elf:", "sha256="],
    &["[fw] MCFG: ECAM 0xb0000000-0xbfffffff (segment 0, buses 0-255)"],
    &["[fw] DMAR: "],
    &["[fw] FADT reset register: I/O 0xcf9 value "],
    &["[fw] booting natively"],
    &["[kernel] Rampart guest kernel"],
    // QEMU TCG's `-cpu max` sets the hypervisor bit with vendor "TCGTCGTCGTCG", so the kernel
    // honestly reports `unknown 'TCGTCGTCGTCG'` there and `none (native)` on bare metal; either
    // way it must not find Rampart (see `absent`).
    &["[kernel] hypervisor: "],
    &["[kernel] KPTI: off"],
    &["[kernel] per-CPU roots: CPU 0 on CR3 "],
    &["[kernel] timer ticks: "],
    &[NOT_LOCKED_NATIVELY],
    &["[kernel] ready"],
];

/// The kernel's page-table lock line natively, and under Rampart's default `pagetables = locked`.
const NOT_LOCKED_NATIVELY: &str = "[kernel] page tables: not locked (no hypervisor)";
const LOCKED: &str = "[kernel] page tables: locked (stack window 0xffffff0000000000+0x1400000)";

/// The hv boot's lines in order; with several CPUs also the kernel's count of those it started
/// (`[kernel] CPUs: N started`).
macro_rules! hv_lines {
    ($($started:literal)?) => {
        hv_lines!(@lock LOCKED $(, $started)?)
    };
    (@lock $lock:expr $(, $started:literal)?) => {
        hv_lines!(@lines $lock, ENTRY_CHECKS_PASS $(, $started)?)
    };
    // Production builds have no checker: the hand-off's cost line stands in its place.
    (@production) => {
        hv_lines!(@lines LOCKED, "[hv] hand-off to VMLAUNCH: ")
    };
    (@lines $lock:expr, $entry_checks:expr $(, $started:literal)?) => {
        &[
            &["[fw] VMX: "],
            &["[fw] handing off to the hypervisor"],
            &["[hv] VMX capabilities: "],
            &["[hv] VMXON ok"],
            &["[hv] EPT: "],
            &[$entry_checks],
            &["[hv] launching guest"],
            &["[kernel] hypervisor: Rampart detected via CPUID 0x40000000 (running in VMX non-root)"],
            &["[kernel] KPTI: off"],
            &["[kernel] per-CPU roots: CPU 0 on CR3 "],
    &["[kernel] timer ticks: "],
            $(&[$started],)?
            &["[kernel] hypercall version: 0x00020000"],
            &["[kernel] hypercall argument checks: 7 of 7 rejected as expected"],
            &[$lock],
            &["[kernel] ready"],
            &[SELF_CHECK_UNCHANGED],
        ]
    };
}

const HV_LINES: &[LinePattern] = hv_lines!();

/// Development builds check the boot vCPU's VMCS against SDM Vol. 3C chapter 27 before its
/// VMLAUNCH (`vmx::entry_checks`); production builds carry no checker.
const ENTRY_CHECKS_PASS: &str =
    "[hv] VM-entry checks (SDM Vol. 3C 27.2-27.3): 65 of 65 pass for vCPU 0";

/// The hypervisor's self-check at the end of a run (`LogExitStats`, before the result line).
const SELF_CHECK_UNCHANGED: &str =
    "[hv] self-check: hypervisor code and read-only data unchanged since launch";

const HV_PASS: Expectations = Expectations {
    ordered: HV_LINES,
    absent: &[],
    pass: true,
    result_words: &["mode=hv", "hypervisor=rampart"],
    checks: &[Check::Ticks, Check::Exits],
};

/// The production firmware asked for a debugger: one warning, no stub, the usual boot.
const HV_PRODUCTION_PASS: Expectations = Expectations {
    ordered: hv_lines!(@production),
    absent: &["[hv] gdb: waiting for debugger", "[hv] VM-entry checks"],
    checks: &[
        Check::Ticks,
        Check::Exits,
        Check::Present(&[
            "[hv] gdb: boot.cfg asks for a debugger, but this is a production build without the GDB stub",
        ]),
    ],
    ..HV_PASS
};

const HV_SMP2_PASS: Expectations = Expectations {
    ordered: hv_lines!("[kernel] CPUs: 2 started"),
    checks: &[
        Check::Ticks,
        Check::Exits,
        Check::Present(&["[hv] CPUs: 2 online"]),
    ],
    ..HV_PASS
};

const HV_SMP4_PASS: Expectations = Expectations {
    ordered: hv_lines!("[kernel] CPUs: 4 started"),
    checks: &[
        Check::Ticks,
        Check::Exits,
        Check::Present(&["[hv] CPUs: 4 online"]),
    ],
    ..HV_PASS
};

const NATIVE_SMP4_LINES: &[LinePattern] = &[
    &["[fw] Rampart firmware"],
    &["[fw] kernel \\rampart\\kernel.elf:", "sha256="],
    &["[fw] booting natively"],
    &["[kernel] Rampart guest kernel"],
    &["[kernel] hypervisor: "],
    &["[kernel] KPTI: off"],
    &["[kernel] per-CPU roots: CPU 0 on CR3 "],
    &["[kernel] timer ticks: "],
    &["[kernel] CPUs: 4 started"],
    &[NOT_LOCKED_NATIVELY],
    &["[kernel] ready"],
];

/// Every boot test, longest first so the two Bochs runs share the two cores.
pub const BOOT_TESTS: &[BootTest] = &[
    // SMP under Rampart: the slowest boots first.
    BootTest {
        cpus: 4,
        expect: HV_SMP4_PASS,
        ..hv_bochs(HV_BOCHS_TIGERLAKE_SMP4, "tigerlake")
    },
    BootTest {
        cpus: 2,
        expect: HV_SMP2_PASS,
        ..hv_bochs(HV_BOCHS_HASWELL_SMP2, "corei7_haswell_4770")
    },
    hv_bochs("hv-bochs-tigerlake", "tigerlake"),
    hv_bochs("hv-bochs-sandybridge", "corei7_sandy_bridge_2600k"),
    // SMEP without SMAP, and other VMX features again (see hypervisor/tests/vmx-caps).
    // ... and the production build: everything but the GDB stub.
    BootTest {
        variant: Variant::Production,
        expect: HV_PRODUCTION_PASS,
        ..hv_bochs("hv-bochs-haswell", "corei7_haswell_4770")
    },
    super::kpti::HV,
    BootTest {
        name: GDB_BOCHS,
        emulator: Emulator::Bochs,
        mode: Mode::Hv,
        cpu: "tigerlake",
        cpus: 1,
        variant: Variant::Gdb,
        expect: HV_PASS,
    },
    BootTest {
        name: "gdb-threads-bochs-smp2",
        emulator: Emulator::Bochs,
        mode: Mode::Hv,
        cpu: "tigerlake",
        cpus: 2,
        variant: Variant::GdbThreads,
        expect: Expectations {
            ordered: &[
                &["[hv] CPUs: 2 online"],
                &["[hv] vCPU 1 (APIC ID 1) launching"],
                &["[hv] gdb: killed by the debugger; halting"],
            ],
            absent: &["[kernel] ready"],
            pass: false,
            result_words: &["killed-by-debugger"],
            checks: &[],
        },
    },
    BootTest {
        name: GDB_KILL_BOCHS,
        emulator: Emulator::Bochs,
        mode: Mode::Hv,
        cpu: "tigerlake",
        cpus: 1,
        variant: Variant::GdbKill,
        expect: Expectations {
            ordered: &[
                &["[hv] launching guest"],
                &["[hv] gdb: killed by the debugger; halting"],
                &["[hv] exits: total="],
            ],
            absent: &["[kernel] ready"],
            pass: false,
            result_words: &["killed-by-debugger"],
            checks: &[],
        },
    },
    // The stub answers a step that faults into `cli; hlt`, and the step-hang reproduction.
    BootTest {
        name: GDB_STEP_WEDGE_BOCHS,
        emulator: Emulator::Bochs,
        mode: Mode::Hv,
        cpu: "tigerlake",
        cpus: 1,
        variant: Variant::GdbStepWedge,
        expect: Expectations {
            ordered: &[
                &["[hv] launching guest"],
                &["[init] starting sh"],
                &["[hv] gdb: killed by the debugger; halting"],
            ],
            absent: &[],
            pass: false,
            result_words: &["killed-by-debugger"],
            checks: &[],
        },
    },
    // `pagetables = off`: the page-table attack rows succeed (`attacks::pagetables_off`).
    BootTest {
        name: HV_BOCHS_PAGETABLES_OFF,
        emulator: Emulator::Bochs,
        mode: Mode::Hv,
        cpu: "tigerlake",
        cpus: 1,
        variant: Variant::PagetablesOff,
        expect: Expectations {
            ordered: hv_lines!(@lock super::attacks::NOT_LOCKED_BY_POLICY),
            ..HV_PASS
        },
    },
    // `bench quick` under Rampart: 0 VM exits in the syscall, switch and fault benchmarks.
    hv_bochs(BENCH_ZERO_EXITS, "tigerlake"),
    // `bench smp quick` on two vCPUs: 0 VM exits in parallel syscalls and timer ticks.
    BootTest {
        cpus: 2,
        expect: HV_SMP2_PASS,
        ..hv_bochs(BENCH_ZERO_EXITS_SMP2, "tigerlake")
    },
    BootTest {
        name: NATIVE_QEMU_SMP4,
        emulator: Emulator::Qemu,
        mode: Mode::Native,
        cpu: "",
        cpus: 4,
        variant: Variant::Normal,
        expect: Expectations {
            ordered: NATIVE_SMP4_LINES,
            absent: &["[hv]", "Rampart detected", "did not start"],
            pass: true,
            result_words: &["mode=native", "hypervisor=none"],
            checks: &[Check::Ticks],
        },
    },
    BootTest {
        name: "native-qemu",
        emulator: Emulator::Qemu,
        mode: Mode::Native,
        cpu: "",
        cpus: 1,
        variant: Variant::Normal,
        expect: Expectations {
            ordered: NATIVE_LINES,
            absent: &["[hv]", "Rampart detected"],
            pass: true,
            result_words: &["mode=native", "hypervisor=none"],
            checks: &[Check::Ticks],
        },
    },
    super::kpti::NATIVE,
    failures::CORRUPT_KERNEL,
    failures::TRUNCATED_KERNEL,
    failures::NO_INIT,
    failures::KERNEL_PANIC,
    BootTest {
        name: "soak-bochs",
        emulator: Emulator::Bochs,
        mode: Mode::Hv,
        cpu: "tigerlake",
        cpus: 1,
        variant: Variant::Soak,
        expect: HV_PASS,
    },
    failures::TRIPLE_FAULT,
    failures::UNCHECKED_ROOT,
    failures::ALIAS_CPU_TABLE,
    failures::SWAPPED_KERNEL,
    failures::BAD_CONFIG,
    failures::NO_VMX,
];

/// Four CPUs natively (QEMU `-smp 4`): the full session with a `ps` while two spins run.
pub const NATIVE_QEMU_SMP4: &str = "native-qemu-smp4";
/// Four vCPUs under Rampart on Bochs tigerlake, the full session with the SMP `ps` check.
pub const HV_BOCHS_TIGERLAKE_SMP4: &str = "hv-bochs-tigerlake-smp4";
/// Two vCPUs under Rampart on Bochs haswell, the full session.
pub const HV_BOCHS_HASWELL_SMP2: &str = "hv-bochs-haswell-smp2";

/// Under `pagetables = off`: boot, `pingpong` (no exit per switch), the attack suite, exit.
pub const HV_BOCHS_PAGETABLES_OFF: &str = "hv-bochs-pagetables-off";

/// The boot test that runs `bench quick` and checks `crate::bench::check::zero_exits`.
pub const BENCH_ZERO_EXITS: &str = "bench-zero-exits";
/// Two vCPUs, `bench smp quick`, checked by `crate::bench::check::zero_exits_smp`.
pub const BENCH_ZERO_EXITS_SMP2: &str = "bench-zero-exits-smp2";

/// Batch gdb against the hypervisor's GDB stub, then `exit` in the shell.
pub const GDB_BOCHS: &str = "gdb-bochs";
/// Batch gdb that breaks, then `kill`s the guest: the hypervisor stops the machine.
pub const GDB_KILL_BOCHS: &str = "gdb-kill-bochs";
/// A step that faults into `cli; hlt`, then the red team's step-hang packets (`gdb::wedge`).
pub const GDB_STEP_WEDGE_BOCHS: &str = "gdb-step-wedge-bochs";

const fn hv_bochs(name: &'static str, cpu: &'static str) -> BootTest {
    BootTest {
        name,
        emulator: Emulator::Bochs,
        mode: Mode::Hv,
        cpu,
        cpus: 1,
        variant: Variant::Normal,
        expect: HV_PASS,
    }
}

/// The console session a test types: the full shell session (and its checks, for `Flavour`) in the
/// native and hv shell tests; just `exit` in any other boot expected to pass (the kernel waits in
/// the shell); none where the boot is meant to fail before the kernel.
pub fn session(test: &BootTest) -> Option<(&'static Session, Option<Flavour>)> {
    match test.name {
        "native-qemu" => Some((&shell::FULL, Some(Flavour::Native))),
        NATIVE_QEMU_SMP4 => Some((&shell::FULL_SMP, Some(Flavour::Native))),
        "hv-bochs-tigerlake" | "hv-bochs-sandybridge" | "hv-bochs-haswell" => {
            Some((&shell::FULL, Some(Flavour::Hypervisor)))
        }
        HV_BOCHS_TIGERLAKE_SMP4 | HV_BOCHS_HASWELL_SMP2 => {
            Some((&shell::FULL_SMP, Some(Flavour::Hypervisor)))
        }
        BENCH_ZERO_EXITS => Some((&crate::bench::sessions::QUICK, None)),
        BENCH_ZERO_EXITS_SMP2 => Some((&crate::bench::sessions::SMP_QUICK, None)),
        GDB_BOCHS => Some((&shell::EXIT_ONLY, None)),
        HV_BOCHS_PAGETABLES_OFF => Some((&shell::PINGPONG_AND_ATTACKS, None)),
        super::kpti::NATIVE_QEMU_KPTI | super::kpti::HV_BOCHS_KPTI => {
            Some((&super::kpti::SESSION, None))
        }
        _ if test.expect.pass && matches!(test.variant, Variant::Normal) => {
            Some((&shell::EXIT_ONLY, None))
        }
        _ => None,
    }
}

/// A check over the serial lines beyond `shell::check_full`, run once the session finished:
/// failures and figures.
pub type SessionCheck = fn(&[String]) -> (Vec<String>, Vec<(String, u64)>);

/// The extra check of a test's session, if it has one.
pub fn session_check(test: &BootTest) -> Option<SessionCheck> {
    match test.name {
        BENCH_ZERO_EXITS => Some(crate::bench::check::zero_exits),
        BENCH_ZERO_EXITS_SMP2 => Some(crate::bench::check::zero_exits_smp),
        super::kpti::HV_BOCHS_KPTI => Some(crate::bench::check::zero_exits),
        GDB_BOCHS => Some(crate::gdb::stops::attack_table),
        HV_BOCHS_PAGETABLES_OFF => Some(super::attacks::pagetables_off),
        NATIVE_QEMU_SMP4 | HV_BOCHS_TIGERLAKE_SMP4 => Some(shell::spins_on_two_cpus),
        _ => None,
    }
}

/// The tests named in `--only a,b` (all when `None`); an unknown name is an error message.
pub fn select(only: Option<&str>) -> Result<Vec<&'static BootTest>, String> {
    let Some(list) = only else {
        return Ok(BOOT_TESTS.iter().collect());
    };
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(unknown) = names
        .iter()
        .find(|n| BOOT_TESTS.iter().all(|t| t.name != **n))
    {
        return Err(format!(
            "unknown boot test `{unknown}` (see `cargo xtask test --list`)"
        ));
    }
    Ok(BOOT_TESTS
        .iter()
        .filter(|t| names.contains(&t.name))
        .collect())
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
