//! The KPTI boot tests: `cmdline = kpti=on` natively under QEMU TCG (two CPUs) and under
//! Rampart on Bochs, each a short shell session (hello, ps, the quick bench, two background
//! spins) after the kernel's `KPTI: on (PCID ...)` line.

use super::catalog::{BootTest, Variant};
use super::expect::{Check, Expectations};
use super::session::{Session, Step};
use crate::emulator::Emulator;
use crate::image::Mode;

/// Native, QEMU TCG `-cpu max` (PCID and INVPCID), two CPUs.
pub const NATIVE_QEMU_KPTI: &str = "native-qemu-kpti";
/// Under Rampart on Bochs tigerlake, one vCPU.
pub const HV_BOCHS_KPTI: &str = "hv-bochs-kpti";
/// The boot.cfg line of [`Variant::Kpti`].
pub const CMDLINE: &str = "cmdline = kpti=on\n";

const KPTI_ON: &str = "[kernel] KPTI: on (PCID ";
const PROMPT: &str = "sh> ";

pub const NATIVE: BootTest = BootTest {
    name: NATIVE_QEMU_KPTI,
    emulator: Emulator::Qemu,
    mode: Mode::Native,
    cpu: "",
    cpus: 2,
    variant: Variant::Kpti,
    expect: Expectations {
        ordered: &[
            &["[fw] booting natively"],
            &[KPTI_ON],
            &["[kernel] CPUs: 2 started"],
            &["[kernel] ready"],
        ],
        absent: &["[hv]", "Rampart detected", "PANIC", "killed"],
        pass: true,
        result_words: &["mode=native", "hypervisor=none"],
        checks: &[Check::Ticks],
    },
};

pub const HV: BootTest = BootTest {
    name: HV_BOCHS_KPTI,
    emulator: Emulator::Bochs,
    mode: Mode::Hv,
    cpu: "tigerlake",
    cpus: 1,
    variant: Variant::Kpti,
    expect: Expectations {
        ordered: &[&["[hv] launching guest"], &[KPTI_ON], &["[kernel] ready"]],
        absent: &["PANIC", "killed"],
        pass: true,
        result_words: &["mode=hv", "hypervisor=rampart"],
        checks: &[Check::Ticks, Check::Exits],
    },
};

/// The session: every kind of kernel entry from ring 3 (SYSCALL, timer and other interrupts,
/// the lazy-heap page fault, first entry) on the two roots.
pub const SESSION: Session = Session {
    steps: &[
        Step {
            label: "boot-to-prompt",
            send: None,
            expect: &[
                &[KPTI_ON],
                &["[kernel] ready"],
                &["[init] starting sh"],
                &[PROMPT],
            ],
        },
        Step {
            label: "hello",
            send: Some("run hello kpti"),
            expect: &[
                &["Hello from ring 3!"],
                &["[sh] hello exited with code 0"],
                &[PROMPT],
            ],
        },
        Step {
            label: "ps",
            send: Some("ps"),
            expect: &[&[super::shell::PS_HEADER], &[PROMPT]],
        },
        Step {
            label: "bench",
            send: Some("run bench quick"),
            expect: &[
                &[
                    "bench: name=syscall",
                    "bench: name=switch",
                    "bench: name=fault",
                ],
                &["bench: done"],
                &["[sh] bench exited with code 0"],
                &[PROMPT],
            ],
        },
        Step {
            label: "spin-a",
            send: Some("run spin A 10 &"),
            expect: &[&["[sh] started spin as pid"], &[PROMPT]],
        },
        Step {
            label: "spin-b",
            send: Some("run spin B 10 &"),
            expect: &[&["[sh] started spin as pid"], &[PROMPT]],
        },
        Step {
            label: "spins-done",
            send: None,
            expect: &[&["A 9", "B 9"]],
        },
        Step {
            label: "exit",
            send: Some("exit"),
            expect: &[&["[init] sh exited with code 0"]],
        },
    ],
};
