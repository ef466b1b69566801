//! The host's own GDT, TSS and IDT: after ExitBootServices the firmware's tables live in memory
//! that now belongs to the guest, so the hypervisor must not depend on them.

use core::arch::naked_asm;
use core::ptr::addr_of;
use x86::bits64::segmentation::{load_cs, Descriptor64};
use x86::dtables::{lgdt, lidt, DescriptorTablePointer};
use x86::segmentation::{
    load_ds, load_es, load_fs, load_gs, load_ss, BuildDescriptor, DescriptorBuilder,
    GateDescriptorBuilder, SegmentSelector,
};

pub const HOST_CODE_SELECTOR: u16 = 0x08;
pub const HOST_DATA_SELECTOR: u16 = 0x10;
const HOST_CS: SegmentSelector = SegmentSelector::from_raw(HOST_CODE_SELECTOR);
const HOST_DS: SegmentSelector = SegmentSelector::from_raw(HOST_DATA_SELECTOR);
/// Host TR must not be 0 (SDM Vol. 3C 27.2.3 "Checks on Host Segment and Descriptor-Table
/// Registers"). CPU `i` has its own TSS at selector `0x18 + 16 * i` (a 64-bit TSS descriptor
/// takes two GDT slots), since LTR marks a descriptor busy and a busy TSS cannot be loaded on
/// a second CPU.
const FIRST_TSS_SELECTOR: u16 = 0x18;
const MAX_CPUS: usize = rampart_boot_info::MAX_CPUS;
const GDT_ENTRIES: usize = 3 + 2 * MAX_CPUS;
/// Vector of the NMI, which the hypervisor uses to reach CPUs in VMX root (`smp`).
const VECTOR_NMI: usize = 2;

use rampart_boot_info::descriptors::{
    tss_descriptor, KERNEL_CODE64 as CODE64, KERNEL_DATA as DATA,
};
/// Size of the 64-bit TSS (SDM Vol. 3A 9.7, Figure 9-11).
const TSS_SIZE: usize = 104;

#[repr(C, align(16))]
struct Gdt([u64; GDT_ENTRIES]);

#[repr(C, align(16))]
struct Tss([u8; TSS_SIZE]);

const EXCEPTIONS: usize = 32;

/// 16-byte IDT gates (SDM Vol. 3A 7.14.1).
#[repr(C, align(16))]
struct Idt([Descriptor64; EXCEPTIONS]);

static mut GDT: Gdt = Gdt([0; GDT_ENTRIES]);
static TSS: [Tss; MAX_CPUS] = [const { Tss([0; TSS_SIZE]) }; MAX_CPUS];
static mut IDT: Idt = Idt([Descriptor64::NULL; EXCEPTIONS]);

/// Addresses the VMCS host-state area needs.
#[derive(Clone, Copy, Debug)]
pub struct HostTables {
    pub gdt_base: u64,
    pub idt_base: u64,
    pub tss_base: u64,
    pub tss_selector: u16,
}

/// Fills the host GDT (a TSS descriptor per CPU) and IDT (exception handlers that report any
/// exception in the hypervisor and halt; an NMI handler that serves `smp` requests), then loads
/// them on the boot CPU ([`load`] with index 0).
///
/// # Safety
/// Call once, on the boot CPU, with interrupts disabled, before anything relies on the
/// firmware's descriptor tables and before any AP runs.
pub unsafe fn install() -> HostTables {
    let mut handlers = exception_stubs();
    handlers[VECTOR_NMI] = nmi_entry;
    // SAFETY: single-threaded boot (caller contract); nothing else references GDT/IDT yet.
    unsafe {
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        gdt.0[..3].copy_from_slice(&[0, CODE64, DATA]);
        for (slots, tss) in gdt.0[3..].chunks_exact_mut(2).zip(&TSS) {
            slots.copy_from_slice(&tss_descriptor(
                addr_of!(*tss) as u64,
                (TSS_SIZE - 1) as u32,
            ));
        }
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (gate, handler) in idt.0.iter_mut().zip(handlers) {
            let handler = handler as *const () as u64;
            // Present, DPL0 (the builder's default), 64-bit interrupt gate.
            *gate = DescriptorBuilder::interrupt_descriptor(HOST_CS, handler)
                .present()
                .finish();
        }
    }
    // SAFETY: the tables were just filled; this is the boot CPU (index 0).
    unsafe { load(0) }
}

/// Loads the host GDT and IDT that [`install`] filled on this CPU, with CPU `cpu`'s TSS in TR,
/// and reloads every segment register.
///
/// # Safety
/// [`install`] must have run; `cpu` < MAX_CPUS must be this CPU's own index (each TSS is loaded
/// on one CPU only); interrupts disabled.
pub unsafe fn load(cpu: usize) -> HostTables {
    let tables = tables_of(cpu);
    // SAFETY: the GDT and IDT are statics (live forever) holding valid descriptors (`install`);
    // CS is reloaded (by a far return) with the 64-bit code selector of that GDT, the other
    // segment registers get its data selector, and LTR gets this CPU's own, still available, TSS.
    unsafe {
        lgdt(&DescriptorTablePointer::new(&*addr_of!(GDT)));
        lidt(&DescriptorTablePointer::new(&*addr_of!(IDT)));
        load_cs(HOST_CS);
        load_ds(HOST_DS);
        load_es(HOST_DS);
        load_ss(HOST_DS);
        load_fs(HOST_DS);
        load_gs(HOST_DS);
        x86::task::load_tr(SegmentSelector::from_raw(tables.tss_selector));
    }
    tables
}

/// The host tables of CPU `cpu` as [`load`] returns them, without loading anything.
pub fn tables_of(cpu: usize) -> HostTables {
    let cpu = cpu.min(MAX_CPUS - 1);
    HostTables {
        gdt_base: addr_of!(GDT) as u64,
        idt_base: addr_of!(IDT) as u64,
        tss_base: addr_of!(TSS[cpu]) as u64,
        tss_selector: FIRST_TSS_SELECTOR + 16 * cpu as u16,
    }
}

/// NMI in VMX root: saves the general-purpose registers and the SSE state, lets `smp` serve its
/// request (an EPT shootdown or a vCPU start), and returns with IRETQ (which also ends NMI
/// blocking, SDM Vol. 3A 7.7.1).
#[unsafe(naked)]
extern "sysv64" fn nmi_entry() {
    naked_asm!(
        super::vm_entry::push_gprs!(),
        "mov rbp, rsp",
        "and rsp, -16",
        "sub rsp, 512",
        "fxsave64 [rsp]",
        // `rampart_nmi_in_root`: defined by `entry_points::bind!`, a direct call.
        "call rampart_nmi_in_root",
        "fxrstor64 [rsp]",
        "mov rsp, rbp",
        super::vm_entry::pop_gprs!(),
        "iretq",
    )
}

/// Called by every exception stub with the vector and the interrupted stack.
extern "sysv64" fn host_exception(vector: u64, frame: *const u64) -> ! {
    // Vectors 8, 10-14, 17, 21, 29, 30 push an error code before RIP (SDM Vol. 3A 7.15).
    let has_error_code = matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30);
    let rip_slot = usize::from(has_error_code);
    // SAFETY: the stub passes the RSP at which the CPU pushed the exception frame, at least
    // RIP, CS, RFLAGS (plus the error code), so these reads stay inside that frame.
    let (error, rip) = unsafe {
        let error = if has_error_code { *frame } else { 0 };
        (error, *frame.add(rip_slot))
    };
    // SAFETY: reading CR2 has no side effects.
    let cr2 = unsafe { x86::controlregs::cr2() } as u64;
    // SAFETY: `rampart_host_fault` is the hypervisor's fault report, bound by
    // `entry_points::bind!`; it has no precondition.
    unsafe { super::entry_points::rampart_host_fault(vector, error, rip, cr2) }
}

/// One stub per listed vector, which calls [`host_exception`] with that vector and the
/// interrupted stack, in vector order.
macro_rules! exception_stubs {
    ($($vector:literal),*) => {
        [$({
            #[unsafe(naked)]
            extern "sysv64" fn stub() {
                naked_asm!(
                    "mov rsi, rsp",
                    "and rsp, -16",
                    "mov edi, {vector}",
                    "call {handler}",
                    "ud2",
                    vector = const $vector,
                    handler = sym host_exception,
                )
            }
            stub as extern "sysv64" fn()
        }),*]
    };
}

fn exception_stubs() -> [extern "sysv64" fn(); EXCEPTIONS] {
    exception_stubs![
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31
    ]
}
