//! MSRs are default-deny (hypervisor/DESIGN.md "Devices and interrupts"): the MSR bitmap (SDM Vol.
//! 3C 25.6.9) makes every RDMSR and WRMSR exit except a short allowlist of per-thread state and
//! the x2APIC registers the guest needs at native speed (timer, EOI, task priority). Exits then
//! go to `msr`, which emulates what the guest may do (EFER, the SYSCALL/SYSENTER MSRs until
//! locked, checked IPIs and LVT entries) and refuses the rest with #GP and an audit record.
//! MSRs outside the bitmap's two ranges always exit.

/// Bitmap layout (25.6.9): read bitmap for MSRs 0-1FFFH at byte 0, for C0000000H-C0001FFFH at
/// byte 1024; the write bitmaps at 2048 and 3072.
const READ_LOW: usize = 0;
const READ_HIGH: usize = 1024;
const WRITE_LOW: usize = 2048;
const WRITE_HIGH: usize = 3072;
const HIGH_BASE: u32 = 0xc000_0000;
const RANGE_LENGTH: u32 = 0x2000;

use x86::msr::{
    IA32_APIC_BASE, IA32_EFER, IA32_FMASK, IA32_FS_BASE, IA32_STAR, IA32_SYSENTER_CS,
    IA32_SYSENTER_EIP, IA32_TSC_AUX,
};

/// x2APIC registers (SDM Vol. 3A 11.12.1.2, Table 11-6), by their short names.
pub mod x2apic {
    pub use x86::msr::{
        IA32_X2APIC_APICID as ID, IA32_X2APIC_CUR_COUNT as TIMER_CURRENT,
        IA32_X2APIC_DIV_CONF as TIMER_DIVIDE, IA32_X2APIC_EOI as EOI, IA32_X2APIC_ESR as ESR,
        IA32_X2APIC_ICR as ICR, IA32_X2APIC_INIT_COUNT as TIMER_INITIAL,
        IA32_X2APIC_IRR7 as IRR_LAST, IA32_X2APIC_ISR0 as ISR_FIRST, IA32_X2APIC_LDR as LDR,
        IA32_X2APIC_LVT_CMCI as LVT_CMCI, IA32_X2APIC_LVT_ERROR as LVT_ERROR,
        IA32_X2APIC_LVT_LINT0 as LVT_LINT0, IA32_X2APIC_LVT_LINT1 as LVT_LINT1,
        IA32_X2APIC_LVT_PMI as LVT_PERFORMANCE, IA32_X2APIC_LVT_THERMAL as LVT_THERMAL,
        IA32_X2APIC_LVT_TIMER as LVT_TIMER, IA32_X2APIC_PPR as PPR,
        IA32_X2APIC_SELF_IPI as SELF_IPI, IA32_X2APIC_SIVR as SVR, IA32_X2APIC_TPR as TPR,
        IA32_X2APIC_VERSION as VERSION,
    };
}

/// Reads that never exit: per-thread bases, the registers whose values the guest set itself
/// (EFER, SYSCALL MSRs: the CPU holds the guest's values in VMX non-root), and the x2APIC.
pub fn read_passes(msr: u32) -> bool {
    use x2apic::*;
    matches!(
        msr,
        IA32_APIC_BASE
            | IA32_EFER
            | IA32_STAR..=IA32_FMASK // STAR, LSTAR, CSTAR, FMASK
            | IA32_SYSENTER_CS..=IA32_SYSENTER_EIP // loaded from the VMCS on entry
            | IA32_FS_BASE..=IA32_TSC_AUX
            | ID | VERSION | TPR | PPR | LDR | SVR
            | ISR_FIRST..=IRR_LAST
            | ESR | LVT_CMCI | ICR
            | LVT_TIMER..=TIMER_CURRENT
            | TIMER_DIVIDE
    )
}

/// Writes that never exit: per-thread bases, and the x2APIC registers that cannot deliver
/// anything but a fixed interrupt to this CPU (timer, EOI, priority, self-IPI; the timer LVT
/// has no delivery-mode field, 11.5.1). LVTs with a delivery mode and the ICR are checked.
pub fn write_passes(msr: u32) -> bool {
    use x2apic::*;
    matches!(
        msr,
        IA32_FS_BASE
            ..=IA32_TSC_AUX
                | TPR
                | EOI
                | SVR
                | ESR
                | LVT_TIMER
                | TIMER_INITIAL
                | TIMER_DIVIDE
                | SELF_IPI
    )
}

/// Fills a 4 KiB MSR bitmap: every bit set (exit), then the allowlists cleared.
pub fn build(bitmap: &mut [u8; 4096]) {
    bitmap.fill(0xff);
    let quarters = [
        (READ_LOW, 0, read_passes as fn(u32) -> bool),
        (READ_HIGH, HIGH_BASE, read_passes),
        (WRITE_LOW, 0, write_passes),
        (WRITE_HIGH, HIGH_BASE, write_passes),
    ];
    for (offset, base, passes) in quarters {
        for msr in (base..base + RANGE_LENGTH).filter(|&m| passes(m)) {
            clear(bitmap, offset, msr - base);
        }
    }
}

fn clear(bitmap: &mut [u8; 4096], offset: usize, index: u32) {
    bitmap[offset + (index / 8) as usize] &= !(1 << (index % 8));
}

/// True if the bitmap makes this access exit (MSRs outside both ranges always do): the
/// hardware's reading, for the host tests and fuzz targets.
#[cfg(any(test, feature = "internals"))]
pub fn exits(bitmap: &[u8; 4096], msr: u32, write: bool) -> bool {
    let (offset, index) = match msr {
        0..RANGE_LENGTH => (0, msr),
        _ if (HIGH_BASE..HIGH_BASE + RANGE_LENGTH).contains(&msr) => (READ_HIGH, msr - HIGH_BASE),
        _ => return true,
    };
    let offset = offset + if write { WRITE_LOW } else { READ_LOW };
    bitmap[offset + (index / 8) as usize] & (1 << (index % 8)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> [u8; 4096] {
        let mut bitmap = [0u8; 4096];
        build(&mut bitmap);
        bitmap
    }

    #[test]
    fn the_hot_paths_do_not_exit() {
        let b = built();
        for msr in [
            x2apic::TIMER_INITIAL,
            x2apic::TPR,
            x86::msr::IA32_KERNEL_GSBASE,
            IA32_FS_BASE,
        ] {
            assert!(!exits(&b, msr, true), "write {msr:#x}");
            assert!(!exits(&b, msr, false), "read {msr:#x}");
        }
        assert!(!exits(&b, x2apic::TIMER_CURRENT, false));
        // EOI is write-only.
        assert!(!exits(&b, x2apic::EOI, true));
    }

    #[test]
    fn everything_that_reaches_memory_interrupts_or_features_exits() {
        let b = built();
        // ICR, LINT0 (SMI/NMI/INIT delivery), APIC base, EFER, LSTAR, SYSENTER_EIP, RTIT_CTL
        // (Intel PT), DS_AREA (PEBS), PEBS_ENABLE, DEBUGCTL (LBR/BTS), PERF_GLOBAL_CTRL, MTRR,
        // MISC_ENABLE, FEATURE_CONTROL, BIOS_UPDT_TRIG, SMBASE-related SMM_MONITOR_CTL.
        for msr in [
            x2apic::ICR,
            x2apic::LVT_LINT0,
            IA32_APIC_BASE,
            IA32_EFER,
            0xc000_0082,
            0x176,
            0x570,
            0x600,
            0x3f1,
            0x1d9,
            0x38f,
            0x200,
            0x1a0,
            0x3a,
            0x79,
            0x9b,
        ] {
            assert!(exits(&b, msr, true), "write {msr:#x} must exit");
        }
        for msr in [0x570, 0x600, 0x1a0, 0x3a, 0x8b, 0x4b56_4d00] {
            assert!(exits(&b, msr, false), "read {msr:#x} must exit");
        }
    }

    #[test]
    fn allowlists_are_short() {
        let b = built();
        let passing = b.iter().map(|byte| byte.count_zeros()).sum::<u32>();
        // 53 reads (24 of them the ISR/TMR/IRR banks) and 14 writes.
        assert!(passing <= 67, "{passing} MSR accesses pass through");
    }
}
