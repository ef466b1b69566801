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
    Getsec = 11,
    Hlt = 12,
    Invd = 13,
    Vmcall = 18,
    Vmclear = 19,
    Vmlaunch = 20,
    Vmptrld = 21,
    Vmptrst = 22,
    Vmread = 23,
    Vmresume = 24,
    Vmwrite = 25,
    Vmxoff = 26,
    Vmxon = 27,
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
    Invept = 50,
    PreemptionTimer = 52,
    Invvpid = 53,
    Wbinvd = 54,
    Xsetbv = 55,
    Vmfunc = 59,
}

impl ExitReason {
    /// VMX and SMX instructions: they exit unconditionally in VMX non-root, even from ring 3
    /// (SDM Vol. 3C 26.1.2, before the CPL check), and Rampart offers no nested VMX or SMX, so
    /// the guest gets #UD exactly as on a CPU without them (CPUID hides VMX and SMX).
    pub fn is_unoffered_instruction(self) -> bool {
        use ExitReason::*;
        matches!(
            self,
            Getsec
                | Vmclear
                | Vmlaunch
                | Vmptrld
                | Vmptrst
                | Vmread
                | Vmresume
                | Vmwrite
                | Vmxoff
                | Vmxon
                | Invept
                | Invvpid
                | Vmfunc
        )
    }
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
            11 => Getsec,
            12 => Hlt,
            13 => Invd,
            18 => Vmcall,
            19 => Vmclear,
            20 => Vmlaunch,
            21 => Vmptrld,
            22 => Vmptrst,
            23 => Vmread,
            24 => Vmresume,
            25 => Vmwrite,
            26 => Vmxoff,
            27 => Vmxon,
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
            50 => Invept,
            52 => PreemptionTimer,
            53 => Invvpid,
            54 => Wbinvd,
            55 => Xsetbv,
            59 => Vmfunc,
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
