//! Basic VM-exit reasons (SDM Vol. 3D Appendix C "VMX Basic Exit Reasons").
#![forbid(unsafe_code)]

/// Number of basic exit reasons the counters track (0..=75 are defined in Appendix C).
pub const EXIT_REASON_COUNT: usize = 76;

/// Exit reason field (SDM 28.2.1): bits 15:0 basic reason, bit 31 VM-entry failure.
pub const EXIT_REASON_ENTRY_FAILURE: u32 = 1 << 31;

/// Declares every basic exit reason once: its Appendix C number, its SDM name, and, for the
/// reasons Rampart handles by name, the [`ExitReason`] variant.
macro_rules! exit_reasons {
    ($($number:literal $name:ident $(=> $variant:ident)?,)*) => {
        /// Names of the basic exit reasons, indexed by number.
        const NAMES: [&str; EXIT_REASON_COUNT] = {
            let mut names = ["UNKNOWN"; EXIT_REASON_COUNT];
            $(names[$number] = stringify!($name);)*
            names
        };

        /// The basic exit reasons Rampart handles by name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum ExitReason {
            $($($variant = $number,)?)*
        }

        impl ExitReason {
            /// Decodes a basic exit reason; `None` for the reasons Rampart does not handle by name.
            pub fn from_basic(basic: u16) -> Option<Self> {
                match basic {
                    $($($number => Some(Self::$variant),)?)*
                    _ => None,
                }
            }
        }
    };
}

exit_reasons! {
    0 EXCEPTION_OR_NMI => ExceptionOrNmi,
    1 EXTERNAL_INTERRUPT,
    2 TRIPLE_FAULT => TripleFault,
    3 INIT => Init,
    4 SIPI => Sipi,
    5 IO_SMI,
    6 OTHER_SMI,
    7 INTERRUPT_WINDOW,
    8 NMI_WINDOW,
    9 TASK_SWITCH,
    10 CPUID => Cpuid,
    11 GETSEC => Getsec,
    12 HLT => Hlt,
    13 INVD => Invd,
    14 INVLPG,
    15 RDPMC,
    16 RDTSC,
    17 RSM,
    18 VMCALL => Vmcall,
    19 VMCLEAR => Vmclear,
    20 VMLAUNCH => Vmlaunch,
    21 VMPTRLD => Vmptrld,
    22 VMPTRST => Vmptrst,
    23 VMREAD => Vmread,
    24 VMRESUME => Vmresume,
    25 VMWRITE => Vmwrite,
    26 VMXOFF => Vmxoff,
    27 VMXON => Vmxon,
    28 CR_ACCESS => CrAccess,
    29 DR_ACCESS,
    30 IO_INSTRUCTION => IoInstruction,
    31 RDMSR => Rdmsr,
    32 WRMSR => Wrmsr,
    33 ENTRY_FAIL_GUEST_STATE => EntryFailGuestState,
    34 ENTRY_FAIL_MSR_LOADING,
    35 RESERVED_35,
    36 MWAIT,
    37 MONITOR_TRAP_FLAG => MonitorTrapFlag,
    38 RESERVED_38,
    39 MONITOR,
    40 PAUSE,
    41 ENTRY_FAIL_MACHINE_CHECK,
    42 RESERVED_42,
    43 TPR_BELOW_THRESHOLD,
    44 APIC_ACCESS,
    45 VIRTUALIZED_EOI,
    46 GDTR_IDTR_ACCESS => GdtrIdtrAccess,
    47 LDTR_TR_ACCESS => LdtrTrAccess,
    48 EPT_VIOLATION => EptViolation,
    49 EPT_MISCONFIG => EptMisconfig,
    50 INVEPT => Invept,
    51 RDTSCP,
    52 PREEMPTION_TIMER => PreemptionTimer,
    53 INVVPID => Invvpid,
    54 WBINVD => Wbinvd,
    55 XSETBV => Xsetbv,
    56 APIC_WRITE,
    57 RDRAND,
    58 INVPCID,
    59 VMFUNC => Vmfunc,
    60 ENCLS,
    61 RDSEED,
    62 PML_FULL,
    63 XSAVES,
    64 XRSTORS,
    65 PCONFIG,
    66 SPP_EVENT,
    67 UMWAIT,
    68 TPAUSE,
    69 LOADIWKEY,
    70 ENCLV,
    71 RESERVED_71,
    72 ENQCMD_PASID_FAIL,
    73 ENQCMDS_PASID_FAIL,
    74 BUS_LOCK,
    75 INSTRUCTION_TIMEOUT,
}

impl ExitReason {
    /// VMX and SMX instructions: they exit unconditionally in VMX non-root, even from ring 3
    /// (SDM Vol. 3C 26.1.2, before the CPL check), and Rampart offers no nested VMX or SMX, so
    /// the guest gets #UD exactly as on a CPU without them (CPUID hides VMX and SMX).
    pub fn is_unoffered_instruction(self) -> bool {
        use ExitReason::*;
        [
            Getsec, Vmclear, Vmlaunch, Vmptrld, Vmptrst, Vmread, Vmresume, Vmwrite, Vmxoff, Vmxon,
            Invept, Invvpid, Vmfunc,
        ]
        .contains(&self)
    }
}

/// The SDM name of a basic exit reason, or "UNKNOWN".
pub fn name(basic: u16) -> &'static str {
    NAMES.get(usize::from(basic)).copied().unwrap_or("UNKNOWN")
}

/// The basic exit reason (bits 15:0) of the exit-reason field.
pub fn basic(exit_reason_field: u32) -> u16 {
    exit_reason_field as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_appendix_c_numbering() {
        assert_eq!(name(10), "CPUID");
        assert_eq!(name(18), "VMCALL");
        assert_eq!(name(48), "EPT_VIOLATION");
        assert_eq!(name(55), "XSETBV");
        assert_eq!(name(75), "INSTRUCTION_TIMEOUT");
        assert_eq!(name(76), "UNKNOWN");
        assert_eq!(name(u16::MAX), "UNKNOWN");
    }

    #[test]
    fn every_defined_reason_has_a_name() {
        assert!(NAMES.iter().all(|&n| n != "UNKNOWN"));
    }

    #[test]
    fn named_reasons_match_their_names() {
        for basic in 0..EXIT_REASON_COUNT as u16 {
            if let Some(reason) = ExitReason::from_basic(basic) {
                assert_eq!(reason as u16, basic);
                let debug = alloc_free_upper(reason);
                assert!(
                    name(basic).replace('_', "").eq_ignore_ascii_case(&debug),
                    "{basic}"
                );
            }
        }
    }

    fn alloc_free_upper(reason: ExitReason) -> String {
        format!("{reason:?}")
    }

    #[test]
    fn entry_failure_bit_is_not_part_of_the_basic_reason() {
        assert_eq!(basic(EXIT_REASON_ENTRY_FAILURE | 33), 33);
    }
}
