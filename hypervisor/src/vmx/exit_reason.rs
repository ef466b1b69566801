//! Basic VM-exit reasons (SDM Vol. 3D Appendix C "VMX Basic Exit Reasons").

/// Number of basic exit reasons the counters track (0..=75 are defined in Appendix C).
pub const EXIT_REASON_COUNT: usize = 76;

/// Exit reason field (SDM 28.2.1): bits 15:0 basic reason, bit 31 VM-entry failure.
pub const EXIT_REASON_ENTRY_FAILURE: u32 = 1 << 31;

/// Names of the basic exit reasons, indexed by number.
const NAMES: [&str; EXIT_REASON_COUNT] = [
    "EXCEPTION_OR_NMI",
    "EXTERNAL_INTERRUPT",
    "TRIPLE_FAULT",
    "INIT",
    "SIPI",
    "IO_SMI",
    "OTHER_SMI",
    "INTERRUPT_WINDOW",
    "NMI_WINDOW",
    "TASK_SWITCH",
    "CPUID",
    "GETSEC",
    "HLT",
    "INVD",
    "INVLPG",
    "RDPMC",
    "RDTSC",
    "RSM",
    "VMCALL",
    "VMCLEAR",
    "VMLAUNCH",
    "VMPTRLD",
    "VMPTRST",
    "VMREAD",
    "VMRESUME",
    "VMWRITE",
    "VMXOFF",
    "VMXON",
    "CR_ACCESS",
    "DR_ACCESS",
    "IO_INSTRUCTION",
    "RDMSR",
    "WRMSR",
    "ENTRY_FAIL_GUEST_STATE",
    "ENTRY_FAIL_MSR_LOADING",
    "RESERVED_35",
    "MWAIT",
    "MONITOR_TRAP_FLAG",
    "RESERVED_38",
    "MONITOR",
    "PAUSE",
    "ENTRY_FAIL_MACHINE_CHECK",
    "RESERVED_42",
    "TPR_BELOW_THRESHOLD",
    "APIC_ACCESS",
    "VIRTUALIZED_EOI",
    "GDTR_IDTR_ACCESS",
    "LDTR_TR_ACCESS",
    "EPT_VIOLATION",
    "EPT_MISCONFIG",
    "INVEPT",
    "RDTSCP",
    "PREEMPTION_TIMER",
    "INVVPID",
    "WBINVD",
    "XSETBV",
    "APIC_WRITE",
    "RDRAND",
    "INVPCID",
    "VMFUNC",
    "ENCLS",
    "RDSEED",
    "PML_FULL",
    "XSAVES",
    "XRSTORS",
    "PCONFIG",
    "SPP_EVENT",
    "UMWAIT",
    "TPAUSE",
    "LOADIWKEY",
    "ENCLV",
    "RESERVED_71",
    "ENQCMD_PASID_FAIL",
    "ENQCMDS_PASID_FAIL",
    "BUS_LOCK",
    "INSTRUCTION_TIMEOUT",
];

/// The basic exit reasons Rampart handles by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ExitReason {
    ExceptionOrNmi = 0,
    TripleFault = 2,
    Init = 3,
    Sipi = 4,
    Cpuid = 10,
    Hlt = 12,
    Invd = 13,
    Vmcall = 18,
    CrAccess = 28,
    IoInstruction = 30,
    Rdmsr = 31,
    Wrmsr = 32,
    EntryFailGuestState = 33,
    MonitorTrapFlag = 37,
    GdtrIdtrAccess = 46,
    LdtrTrAccess = 47,
    EptViolation = 48,
    EptMisconfig = 49,
    PreemptionTimer = 52,
    Wbinvd = 54,
    Xsetbv = 55,
}

impl ExitReason {
    /// Decodes a basic exit reason; `None` for the reasons Rampart does not handle by name.
    pub fn from_basic(basic: u16) -> Option<Self> {
        use ExitReason::*;
        Some(match basic {
            0 => ExceptionOrNmi,
            2 => TripleFault,
            3 => Init,
            4 => Sipi,
            10 => Cpuid,
            12 => Hlt,
            13 => Invd,
            18 => Vmcall,
            28 => CrAccess,
            30 => IoInstruction,
            31 => Rdmsr,
            32 => Wrmsr,
            33 => EntryFailGuestState,
            37 => MonitorTrapFlag,
            46 => GdtrIdtrAccess,
            47 => LdtrTrAccess,
            48 => EptViolation,
            49 => EptMisconfig,
            52 => PreemptionTimer,
            54 => Wbinvd,
            55 => Xsetbv,
            _ => return None,
        })
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
