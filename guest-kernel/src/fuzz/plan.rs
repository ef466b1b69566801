//! What the fuzzer does and what it must see: [`Op::generate`] draws one operation from the
//! generator, [`expected`] says whether an outcome is what the CPU (natively) or the CPU plus
//! the hypervisor's rules (under Rampart) define for it. Pure, host-tested.

use super::rng::Rng;
use rampart_hv_abi::{HypercallError, ABI_VERSION};

/// Exception vectors the fuzzer expects (SDM Vol. 3A 6.3.1, Table 6-1).
pub const UD: u8 = 6;
pub const GP: u8 = 13;
pub const VE: u8 = 20;

/// An outcome: the instruction's value, or the vector it faulted with.
pub type Outcome = Result<u64, u8>;

/// The kinds of operation, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cpuid,
    Rdmsr,
    Wrmsr,
    Cr4,
    Xsetbv,
    Cache,
    Vmx,
    Port,
    Hypercall,
    HoleRead,
}

pub const KINDS: [Kind; 10] = [
    Kind::Cpuid,
    Kind::Rdmsr,
    Kind::Wrmsr,
    Kind::Cr4,
    Kind::Xsetbv,
    Kind::Cache,
    Kind::Vmx,
    Kind::Port,
    Kind::Hypercall,
    Kind::HoleRead,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cpuid => "cpuid",
            Kind::Rdmsr => "rdmsr",
            Kind::Wrmsr => "wrmsr",
            Kind::Cr4 => "cr4",
            Kind::Xsetbv => "xsetbv",
            Kind::Cache => "invd-wbinvd",
            Kind::Vmx => "vmx-getsec",
            Kind::Port => "port-io",
            Kind::Hypercall => "hypercall",
            Kind::HoleRead => "hole-read",
        }
    }
}

/// Trapped ports: the APM control port (SMI), the first 8237 DMA controller, PCI config.
pub const PORT_APM: u16 = 0xb2;
pub const PORT_DMA_LAST: u16 = 0x0f;
pub const PORT_PCI_ADDRESS: u16 = 0xcf8;
pub const PORT_PCI_DATA: u16 = 0xcfc;
/// CONFIG_ADDRESS enable bit; register offsets are dword-aligned.
const PCI_ENABLE: u32 = 1 << 31;
const PCI_ADDRESS_MASK: u32 = 0x00ff_fffc;

/// Hypercall numbers the fuzzer uses (`rampart_hv_abi::Hypercall`); 2 (Shutdown), 1 (exit
/// statistics, pages of output) and the locks (7, 11, 13) are never called.
pub mod number {
    pub const VERSION: u64 = 0;
    pub const EXIT_COUNT: u64 = 3;
    pub const PROTECT_RANGE: u64 = 4;
    pub const GRANT_EXECUTE: u64 = 5;
    pub const REVOKE_EXECUTE: u64 = 6;
    pub const READ_AUDIT_LOG: u64 = 8;
    pub const AUDIT_COUNT: u64 = 9;
    pub const EXIT_CYCLES: u64 = 10;
    pub const START_VCPU: u64 = 12;
    /// The first number the ABI does not assign.
    pub const FIRST_UNASSIGNED: u64 = 14;
}

/// Physical addresses the generator aims at: a hole in the memory map (the hypervisor's
/// memory, under Rampart), the default SMBASE area, a kernel text page.
#[derive(Clone, Copy, Debug)]
pub struct Targets {
    pub hole: Option<(u64, u64)>,
    pub kernel_text: u64,
    pub rampart: bool,
}

/// SMRAM's default area (SDM Vol. 3C 32.4): absent from EPT under Rampart.
const SMBASE_AREA: (u64, u64) = (0x3_0000, 0x4_0000);
/// Far outside any guest RAM (32 TiB and up).
const OUTSIDE_RAM: u64 = 1 << 45;

/// One operation with its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Cpuid {
        leaf: u32,
        subleaf: u32,
    },
    Rdmsr {
        msr: u32,
    },
    Wrmsr {
        msr: u32,
        value: u64,
    },
    /// Sets CR4 bit `bit` (reserved: 32-63) on top of the current value.
    Cr4 {
        bit: u32,
    },
    Xsetbv {
        index: u32,
        value: u64,
    },
    Wbinvd,
    Invd,
    /// `arch::fuzz::vmx`'s instruction index, and the register operand.
    Vmx {
        which: usize,
        operand: u64,
    },
    InByte {
        port: u16,
    },
    OutByte {
        port: u16,
        value: u8,
    },
    /// CONFIG_ADDRESS write of `address` (enable bit set), then a CONFIG_DATA read.
    PciRead {
        address: u32,
    },
    Hypercall {
        number: u64,
        arguments: [u64; 4],
    },
    /// A byte read of physical `address` through the direct map.
    PhysRead {
        address: u64,
    },
}

/// MSRs the fuzzer never writes with random values: the hypervisor lets them through or
/// emulates them (FS/GS/KERNEL_GS base, TSC_AUX, the x2APIC range, APIC base, EFER) or the
/// kernel needs them (SYSCALL and SYSENTER MSRs). Their reads may pass too.
pub fn msr_spared(msr: u32) -> bool {
    matches!(
        msr,
        0x1b | 0x174..=0x176 | 0x800..=0x8ff | 0xc000_0080..=0xc000_0084 | 0xc000_0100..=0xc000_0103
    )
}

fn random_msr(rng: &mut Rng) -> u32 {
    loop {
        let msr = match rng.below(4) {
            0 | 1 => rng.below(0x2000) as u32,
            2 => 0xc000_0000 + rng.below(0x2000) as u32,
            _ => rng.next() as u32,
        };
        if !msr_spared(msr) {
            return msr;
        }
    }
}

/// A random value that is often a special one (0, all ones, a single bit, a wrapped length).
fn random_value(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0 => 0,
        1 => u64::MAX,
        2 => 1 << rng.below(64),
        3 => rng.below(0x1_0000),
        _ => rng.next(),
    }
}

/// A guest-physical address that every policy hypercall must refuse: unaligned, outside RAM,
/// wrapping, in the hypervisor's hole, or kernel text with an unaligned offset.
fn refused_address(rng: &mut Rng, targets: &Targets) -> u64 {
    let unaligned = 1 + rng.below(0xfff);
    match rng.below(4) {
        0 => OUTSIDE_RAM + (rng.next() & !0xfff) % (1 << 50),
        1 => u64::MAX - rng.below(0x1_0000),
        2 => targets.hole.map_or(OUTSIDE_RAM, |(start, _)| start) + unaligned,
        _ => targets.kernel_text + unaligned,
    }
}

impl Op {
    /// Draws the operation for `kind`.
    pub fn generate(kind: Kind, rng: &mut Rng, targets: &Targets) -> Op {
        match kind {
            Kind::Cpuid => {
                let leaf = match rng.below(3) {
                    0 => rng.below(0x20) as u32,
                    1 => 0x4000_0000 + rng.below(0x20) as u32,
                    _ => rng.next() as u32,
                };
                Op::Cpuid {
                    leaf,
                    subleaf: random_value(rng) as u32,
                }
            }
            Kind::Rdmsr => Op::Rdmsr {
                msr: random_msr(rng),
            },
            Kind::Wrmsr => Op::Wrmsr {
                msr: random_msr(rng),
                value: random_value(rng),
            },
            Kind::Cr4 => Op::Cr4 {
                bit: 32 + rng.below(32) as u32,
            },
            Kind::Xsetbv => Op::Xsetbv {
                index: rng.below(4) as u32,
                value: random_value(rng),
            },
            Kind::Cache if rng.below(2) == 0 => Op::Wbinvd,
            Kind::Cache => Op::Invd,
            Kind::Vmx => Op::Vmx {
                which: rng.below(12) as usize,
                operand: random_value(rng),
            },
            Kind::Port => match rng.below(4) {
                // Natively only reads of the DMA controller and APM port (writes could start
                // a transfer or an SMI); under Rampart the writes must be dropped.
                0 if targets.rampart => Op::OutByte {
                    port: PORT_APM,
                    value: rng.next() as u8,
                },
                1 if targets.rampart => Op::OutByte {
                    port: rng.below(u64::from(PORT_DMA_LAST) + 1) as u16,
                    value: rng.next() as u8,
                },
                0 => Op::InByte { port: PORT_APM },
                1 => Op::InByte {
                    port: rng.below(u64::from(PORT_DMA_LAST) + 1) as u16,
                },
                _ => Op::PciRead {
                    address: PCI_ENABLE | (rng.next() as u32 & PCI_ADDRESS_MASK),
                },
            },
            Kind::Hypercall => Op::Hypercall {
                number: hypercall_number(rng),
                arguments: [0; 4],
            }
            .with_arguments(rng, targets),
            Kind::HoleRead => {
                let (start, end) = match (rng.below(2), targets.hole) {
                    (0, Some(hole)) => hole,
                    _ => SMBASE_AREA,
                };
                Op::PhysRead {
                    address: start + rng.below(end - start),
                }
            }
        }
    }

    fn with_arguments(self, rng: &mut Rng, targets: &Targets) -> Op {
        let Op::Hypercall { number, .. } = self else {
            return self;
        };
        let arguments = match number {
            number::PROTECT_RANGE | number::GRANT_EXECUTE | number::REVOKE_EXECUTE => [
                refused_address(rng, targets),
                random_value(rng),
                random_value(rng),
                random_value(rng),
            ],
            // A buffer the hypervisor may not write: outside RAM, its own memory, kernel text.
            number::READ_AUDIT_LOG => [
                match rng.below(3) {
                    0 => OUTSIDE_RAM + rng.below(1 << 40),
                    1 => targets.hole.map_or(OUTSIDE_RAM, |(start, _)| start),
                    _ => targets.kernel_text,
                },
                1 + rng.below(u64::MAX - 1),
                random_value(rng),
                random_value(rng),
            ],
            // No such local APIC (IDs stop at 255 in xAPIC mode and at our CPU count in x2APIC):
            // refused whatever the other arguments.
            number::START_VCPU => [
                0x1_0000 + rng.below(1 << 32),
                random_value(rng),
                random_value(rng),
                random_value(rng),
            ],
            _ => [
                random_value(rng),
                random_value(rng),
                random_value(rng),
                random_value(rng),
            ],
        };
        Op::Hypercall { number, arguments }
    }
}

/// A number among those the fuzzer may call, or an unassigned one (whose low 16 bits are never
/// an assigned number, so even a hypervisor that decoded RAX short could not run Shutdown).
fn hypercall_number(rng: &mut Rng) -> u64 {
    use number::*;
    const CALLED: [u64; 9] = [
        VERSION,
        EXIT_COUNT,
        PROTECT_RANGE,
        GRANT_EXECUTE,
        REVOKE_EXECUTE,
        READ_AUDIT_LOG,
        AUDIT_COUNT,
        EXIT_CYCLES,
        START_VCPU,
    ];
    match rng.below(3) {
        0 => FIRST_UNASSIGNED + rng.below(0x1_0000 - FIRST_UNASSIGNED),
        1 => (rng.next() & !0xffff) | (FIRST_UNASSIGNED + rng.below(0x1_0000 - FIRST_UNASSIGNED)),
        _ => CALLED[rng.below(CALLED.len() as u64) as usize],
    }
}

/// Whether `outcome` is what `op` must give: natively (`rampart` false) what the CPU defines,
/// under Rampart also what the hypervisor's rules and the hypercall ABI define.
pub fn expected(op: &Op, rampart: bool, outcome: Outcome) -> bool {
    let refused = |value: u64| {
        matches!(
            HypercallError::try_from(value as i64).ok(),
            Some(
                HypercallError::InvalidArgument
                    | HypercallError::OutOfRange
                    | HypercallError::Denied
            )
        )
    };
    match *op {
        Op::Cpuid { .. } | Op::Wbinvd | Op::Invd => outcome.is_ok(),
        Op::InByte { .. } | Op::OutByte { .. } | Op::PciRead { .. } => outcome.is_ok(),
        // Default-deny: every MSR the fuzzer picks (none is allowlisted) must #GP.
        Op::Rdmsr { .. } | Op::Wrmsr { .. } if rampart => outcome == Err(GP),
        Op::Rdmsr { .. } | Op::Wrmsr { .. } => matches!(outcome, Ok(_) | Err(GP)),
        // Reserved CR4 bits (SDM Vol. 3A 2.5): #GP.
        Op::Cr4 { .. } => outcome == Err(GP),
        // The kernel leaves CR4.OSXSAVE clear: #UD before anything else (SDM Vol. 2D XSETBV).
        Op::Xsetbv { .. } => outcome == Err(UD),
        // VMX is off in the guest (natively) or hidden by the hypervisor: #UD; GETSEC with
        // CR4.SMXE clear: #UD.
        Op::Vmx { .. } => outcome == Err(UD),
        Op::Hypercall { .. } if !rampart => outcome == Err(UD),
        Op::Hypercall { number, arguments } => {
            let Ok(value) = outcome else { return false };
            match number {
                number::VERSION => value == u64::from(ABI_VERSION),
                number::EXIT_COUNT => {
                    (value as i64) >= 0 || value as i64 == HypercallError::InvalidArgument as i64
                }
                number::AUDIT_COUNT | number::EXIT_CYCLES => (value as i64) >= 0,
                number::PROTECT_RANGE | number::GRANT_EXECUTE | number::REVOKE_EXECUTE => {
                    refused(value)
                }
                number::READ_AUDIT_LOG | number::START_VCPU => {
                    let _ = arguments;
                    refused(value)
                }
                _ => value as i64 == HypercallError::NotSupported as i64,
            }
        }
        // The hypervisor's memory and SMRAM's default area are absent from EPT: #VE.
        Op::PhysRead { .. } => outcome == Err(VE),
    }
}

/// The kinds drawn natively: no hole reads (no hypervisor memory to miss), and no CR4 writes
/// (under QEMU TCG `-cpu max` a MOV to CR4 setting a reserved bit 32-63 never returns: the
/// guest hangs instead of taking #GP; Bochs raises #GP, as the SDM defines).
const NATIVE_KINDS: [Kind; 8] = [
    Kind::Cpuid,
    Kind::Rdmsr,
    Kind::Wrmsr,
    Kind::Xsetbv,
    Kind::Cache,
    Kind::Vmx,
    Kind::Port,
    Kind::Hypercall,
];

/// The kinds drawn with or without the hypervisor.
pub fn kinds(rampart: bool) -> &'static [Kind] {
    if rampart {
        &KINDS
    } else {
        &NATIVE_KINDS
    }
}

/// Per-kind counts: operations, faults taken, unexpected outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub ops: u64,
    pub faults: u64,
    pub unexpected: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally(pub [Count; KINDS.len()]);

impl Tally {
    pub fn add(&mut self, kind: Kind, outcome: Outcome, ok: bool) {
        let count = &mut self.0[kind as usize];
        count.ops += 1;
        count.faults += u64::from(outcome.is_err());
        count.unexpected += u64::from(!ok);
    }

    pub fn merge(&mut self, other: &Tally) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            mine.ops += theirs.ops;
            mine.faults += theirs.faults;
            mine.unexpected += theirs.unexpected;
        }
    }

    pub fn ops(&self) -> u64 {
        self.0.iter().map(|c| c.ops).sum()
    }

    pub fn unexpected(&self) -> u64 {
        self.0.iter().map(|c| c.unexpected).sum()
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
