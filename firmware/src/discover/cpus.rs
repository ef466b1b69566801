//! The CPUs of the platform, from the UEFI PI MP Services protocol (PI 1.8 Vol. 2 13.4), listed
//! while boot services still run (after ExitBootServices the firmware parks its APs, and the
//! hypervisor or the native kernel wakes them itself).

use rampart_boot_info::MAX_CPUS;
use uefi::boot;
use uefi::proto::pi::mp::MpServices;

/// Local APIC IDs of the enabled CPUs, the boot CPU first, at most [`MAX_CPUS`].
#[derive(Clone, Copy, Debug)]
pub struct CpuList {
    pub apic_ids: [u32; MAX_CPUS],
    pub count: usize,
    /// Enabled CPUs the firmware reported beyond [`MAX_CPUS`] (left parked).
    pub dropped: usize,
    /// How the list was obtained, for the log.
    pub source: &'static str,
}

impl CpuList {
    pub fn ids(&self) -> &[u32] {
        &self.apic_ids[..self.count]
    }
}

/// Lists the CPUs through MP Services; without the protocol, only the boot CPU (its APIC ID
/// from CPUID leaf 1, EBX bits 31:24).
pub fn discover() -> CpuList {
    let mut list = CpuList {
        apic_ids: [0; MAX_CPUS],
        count: 1,
        dropped: 0,
        source: "MP services",
    };
    list.apic_ids[0] = boot_cpu_apic_id();
    let Some(mp) = boot::get_handle_for_protocol::<MpServices>()
        .ok()
        .and_then(|handle| boot::open_protocol_exclusive::<MpServices>(handle).ok())
    else {
        list.source = "boot CPU only (no MP services)";
        return list;
    };
    let Ok(counts) = mp.get_number_of_processors() else {
        list.source = "boot CPU only (MP services failed)";
        return list;
    };
    for number in 0..counts.total {
        let Ok(info) = mp.get_processor_info(number) else {
            continue;
        };
        let Ok(apic_id) = u32::try_from(info.processor_id) else {
            continue;
        };
        if info.is_bsp() {
            list.apic_ids[0] = apic_id;
        } else if !info.is_enabled() || list.ids().contains(&apic_id) {
            continue;
        } else if list.count < MAX_CPUS {
            list.apic_ids[list.count] = apic_id;
            list.count += 1;
        } else {
            list.dropped += 1;
        }
    }
    list
}

fn boot_cpu_apic_id() -> u32 {
    const CPUID_1_EBX_APIC_ID_SHIFT: u32 = 24;
    raw_cpuid::cpuid!(1).ebx >> CPUID_1_EBX_APIC_ID_SHIFT
}
