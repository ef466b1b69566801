//! The boot tests that must fail, and say why: corrupt or swapped images, a bad config, a
//! kernel that cannot start init or panics, a guest the hypervisor must stop, no VMX.

use super::catalog::{BootTest, Variant};
use super::expect::Expectations;
use crate::emulator::Emulator;
use crate::image::Mode;

const KERNEL_REJECTED: Expectations = Expectations {
    ordered: &[&["[fw] error: \\rampart\\kernel.elf:"]],
    absent: &["[kernel]"],
    pass: false,
    result_words: &["boot-error"],
    checks: &[],
};

pub const CORRUPT_KERNEL: BootTest =
    native_failure("corrupt-kernel", Variant::CorruptMagic, KERNEL_REJECTED);

pub const TRUNCATED_KERNEL: BootTest =
    native_failure("truncated-kernel", Variant::Truncated, KERNEL_REJECTED);

pub const NO_INIT: BootTest = native_failure(
    "no-init",
    Variant::NoInit,
    Expectations {
        ordered: &[
            &["[kernel] ready"],
            &["[kernel] cannot start init from the initrd (ENOENT)"],
        ],
        absent: &["[kernel] started init", "RAMPART-RESULT: PASS"],
        pass: false,
        result_words: &["no-init"],
        checks: &[],
    },
);

pub const KERNEL_PANIC: BootTest = native_failure(
    "kernel-panic",
    Variant::CrashPanic,
    Expectations {
        ordered: &[
            &["[kernel] ready"],
            &["[kernel] PANIC: crash=panic on the command line"],
        ],
        absent: &["[kernel] started init"],
        pass: false,
        result_words: &["kernel-panic"],
        checks: &[],
    },
);

pub const TRIPLE_FAULT: BootTest = BootTest {
    name: "triple-fault-bochs",
    emulator: Emulator::Bochs,
    mode: Mode::Hv,
    cpu: "tigerlake",
    cpus: 1,
    variant: Variant::CrashTripleFault,
    expect: Expectations {
        ordered: &[
            &["[kernel] crash=triple-fault: INT3 before any IDT is loaded"],
            &["[hv] FATAL: guest triple fault at RIP "],
        ],
        absent: &["[kernel] ready"],
        pass: false,
        result_words: &["hv:", "guest", "triple", "fault"],
        checks: &[],
    },
};

/// Two vCPUs; the kernel moves CPU 1 to an undeclared copy of the boot CPU's root just before
/// `LockKernelMappings` (`cmdline = crash=unchecked-root`): the lock's shootdown finds vCPU 1 on
/// tables it never walked and the hypervisor stops the machine (fail closed).
/// One vCPU; the kernel links the boot CPU's own directory table (a per-CPU lower-half table,
/// guest-writable for its switches) into an unused kernel-half slot of its root just before
/// `LockKernelMappings` (`cmdline = crash=alias-cpu-table`): the lock's walk makes that table
/// read-only, finds it again below the root's lower half, and refuses the lock (audited), so
/// the boot fails rather than run with a table that is both.
pub const ALIAS_CPU_TABLE: BootTest = BootTest {
    name: "alias-cpu-table-bochs",
    emulator: Emulator::Bochs,
    mode: Mode::Hv,
    cpu: "tigerlake",
    cpus: 1,
    variant: Variant::CrashAliasCpuTable,
    expect: Expectations {
        ordered: &[
            &["[kernel] crash=alias-cpu-table: CPU 0's directory table "],
            &["[hv] audit #", "by rule page-table"],
            &["[kernel] LockKernelMappings(", "1 CPUs' roots) refused: -4"],
        ],
        absent: &["[kernel] page tables: locked", "[kernel] ready"],
        pass: false,
        result_words: &["page-table-lock"],
        checks: &[],
    },
};

pub const UNCHECKED_ROOT: BootTest = BootTest {
    name: "unchecked-root-bochs-smp2",
    emulator: Emulator::Bochs,
    mode: Mode::Hv,
    cpu: "tigerlake",
    cpus: 2,
    variant: Variant::CrashUncheckedRoot,
    expect: Expectations {
        ordered: &[
            &["[kernel] crash=unchecked-root: CPUs 0x2 of 0x2 now run on "],
            &[
                "[hv] FATAL: vCPU 1 runs on CR3 ",
                "not one of its declared roots",
                "stopping rather than trusting unchecked tables",
            ],
        ],
        absent: &["[kernel] page tables: locked", "[kernel] ready"],
        pass: false,
        result_words: &["hv:", "vCPU", "1", "runs", "on", "CR3"],
        checks: &[],
    },
};

pub const SWAPPED_KERNEL: BootTest = native_failure(
    "swapped-kernel",
    Variant::SwappedKernel,
    Expectations {
        ordered: &[&[
            "[fw] error: \\rampart\\kernel.elf: SHA-256 ",
            "does not match ",
            "built into BOOTX64.EFI (verified boot)",
        ]],
        absent: &["[kernel]", "[fw] booting natively"],
        pass: false,
        result_words: &["boot-error"],
        checks: &[],
    },
);

pub const BAD_CONFIG: BootTest = native_failure(
    "bad-config",
    Variant::BadConfig,
    Expectations {
        ordered: &[&["[fw] error: \\rampart\\boot.cfg"]],
        absent: &["[kernel]"],
        pass: false,
        result_words: &["boot-error"],
        checks: &[],
    },
);

pub const NO_VMX: BootTest = BootTest {
    name: "no-vmx-qemu",
    emulator: Emulator::Qemu,
    mode: Mode::Hv,
    cpu: "",
    cpus: 1,
    variant: Variant::Normal,
    expect: Expectations {
        ordered: &[&["[fw] no VMX:"]],
        absent: &["[kernel]"],
        pass: false,
        result_words: &["no-vmx"],
        checks: &[],
    },
};

const fn native_failure(name: &'static str, variant: Variant, expect: Expectations) -> BootTest {
    BootTest {
        name,
        emulator: Emulator::Qemu,
        mode: Mode::Native,
        cpu: "",
        cpus: 1,
        variant,
        expect,
    }
}
