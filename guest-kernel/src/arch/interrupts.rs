//! Interrupt entry: 256 fixed-size stubs that build a `trap::InterruptFrame`, and the dispatcher
//! they call (through `rampart_interrupt_dispatch`, `arch::kernel::bind!`). An exception in
//! ring 3 kills only that process, one in a kernel thread only that thread (both decided by the
//! kernel, `Kernel`); anywhere else in ring 0 it is fatal: a register dump, the FAIL result
//! line, halt.

use super::kernel::Kernel;
use super::log::emergency_line;
use super::{cpu, lapic, percpu};
use crate::trap::{self, ExceptionReport, InterruptFrame};
use core::arch::global_asm;

/// Bytes between consecutive stubs (each is at most 12 bytes: push 0, push imm32, jmp rel32).
const STUB_SIZE: u64 = 16;

// Stub for vector N: push a zero error code unless the CPU pushed one, push N, and join the
// common path, which saves the GPRs (the frame is then exactly `InterruptFrame`), calls
// `rampart_interrupt_dispatch(&mut frame)` with DF clear and RSP 16-aligned, and restores and IRETQs.
// The CPU aligns RSP to 16 before pushing its 5 (or 6 with the error code) words, so after
// 22 words the call sees RSP % 16 == 0, as the SysV ABI wants.
// An interrupt from ring 3 arrives on this CPU's fixed entry stack (TSS.RSP0, or an IST stack;
// TSS.RSP0 never changes after start-up, so the hypervisor can lock the TSS): the common path,
// seeing CS's RPL 3, does SWAPGS, saves four registers there, with `kpti=on` loads the
// kernel-mode root (`gs:[24]`), copies the 7-word frame (vector, error code, the CPU's 5
// words) to the process's kernel stack (`gs:[0]`), restores the registers and SWAPGS back. The
// way out to ring 3 (`__interrupt_exit`, also the first entry of a process, `arch::switch`)
// copies the whole 22-word frame to the entry stack (`gs:[48]`), with `kpti=on` loads the
// user-mode root (`gs:[32]`, then ORs `gs:[40]` into it: see `arch::syscall_entry`), and pops
// and IRETQs from there. Interrupts are off throughout (interrupt gates). DF may be set by
// ring 3, hence CLD before the copy.
global_asm!(
    ".macro INTERRUPT_STUB vector",
    // Places the stub, and fails the build if the previous one outgrew its slot.
    "    .org __interrupt_stubs + \\vector * {stub_size}",
    "    .if !((\\vector == 8) || ((\\vector >= 10) && (\\vector <= 14)) || (\\vector == 17) || (\\vector == 21) || (\\vector == 29) || (\\vector == 30))",
    "    push 0",
    "    .endif",
    "    push \\vector",
    "    jmp interrupt_common",
    ".endm",
    ".section .text.kpti, \"ax\"",
    ".balign {stub_size}",
    ".global __interrupt_stubs",
    "__interrupt_stubs:",
    ".altmacro",
    ".set stub_vector, 0",
    ".rept 256",
    "    INTERRUPT_STUB %stub_vector",
    "    .set stub_vector, stub_vector + 1",
    ".endr",
    ".noaltmacro",
    ".org __interrupt_stubs + 256 * {stub_size}",
    "interrupt_common:",
    "    test byte ptr [rsp + {cs_on_entry}], 3",
    "    jz 1f",
    "    swapgs",
    "    push rax", "push rcx", "push rsi", "push rdi",
    "    cmp byte ptr [rip + {kpti_on}], 0",
    "    je 4f",
    "    mov rax, gs:[{kernel_cr3}]",
    "    mov cr3, rax",
    "4:",
    "    mov rdi, gs:[{kernel_rsp}]",
    "    sub rdi, {entry_bytes}",
    "    lea rsi, [rsp + 32]",
    "    mov ecx, {entry_words}",
    "    cld",
    "    rep movsq",
    "    mov rax, rsp",
    "    lea rsp, [rdi - {entry_bytes}]",
    "    mov rdi, [rax]", "mov rsi, [rax + 8]", "mov rcx, [rax + 16]", "mov rax, [rax + 24]",
    "    swapgs",
    "1:",
    "    push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
    "    push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14", "push r15",
    "    cld",
    "    mov rdi, rsp",
    "    call rampart_interrupt_dispatch",
    ".global __interrupt_exit",
    "__interrupt_exit:",
    "    test byte ptr [rsp + {cs_in_frame}], 3",
    "    jnz 3f",
    "2:",
    "    pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
    "    pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
    "    add rsp, 16",
    "    iretq",
    "3:",
    "    swapgs",
    "    mov rdi, gs:[{entry_rsp}]",
    "    sub rdi, {frame_bytes}",
    "    mov rsi, rsp",
    "    mov ecx, {frame_words}",
    "    rep movsq",
    "    lea rsp, [rdi - {frame_bytes}]",
    "    cmp byte ptr [rip + {kpti_on}], 0",
    "    je 5f",
    "    mov rax, gs:[{user_cr3}]",
    "    mov cr3, rax",
    "    mov rax, gs:[{no_flush}]",
    "    or gs:[{user_cr3}], rax",
    "5:",
    "    swapgs",
    "    jmp 2b",
    ".previous",
    stub_size = const STUB_SIZE,
    kpti_on = sym super::kpti::KPTI_ON,
    cs_on_entry = const 3 * 8,
    cs_in_frame = const (15 + 3) * 8,
    entry_words = const 7,
    entry_bytes = const 7 * 8,
    frame_words = const 22,
    frame_bytes = const 22 * 8,
    kernel_rsp = const percpu::KERNEL_RSP_OFFSET,
    kernel_cr3 = const percpu::KERNEL_CR3_OFFSET,
    user_cr3 = const percpu::USER_CR3_OFFSET,
    no_flush = const percpu::NO_FLUSH_OFFSET,
    entry_rsp = const percpu::ENTRY_RSP_OFFSET,
);

extern "C" {
    static __interrupt_stubs: u8;
}

/// The entry point of `vector`'s stub (for the IDT).
pub fn stub_address(vector: u8) -> u64 {
    (&raw const __interrupt_stubs) as u64 + u64::from(vector) * STUB_SIZE
}

/// Called by the common stub (through `rampart_interrupt_dispatch`) with the frame it built on
/// the current stack; what is not the hardware's to handle goes to `K`. Inlined there, so the
/// stubs reach it with one call, as before `K` existed.
#[inline(always)]
pub fn dispatch<K: Kernel>(frame: &mut InterruptFrame) {
    let from_user = frame.cs & RING_MASK == RING_USER;
    match u8::try_from(frame.vector).unwrap_or(0) {
        // A first touch of a heap page: map it and retry the access.
        trap::VECTOR_PAGE_FAULT
            if from_user
                && crate::mm::heap::is_first_touch(frame.error_code)
                && K::heap_fault_in(cpu::read_cr2()) => {}
        vector if vector < trap::EXCEPTION_COUNT && from_user && !is_machine_fault(vector) => {
            K::user_fault(frame, cpu::read_cr2())
        }
        // The exit fuzzer's own instruction faulted as it may: resume at its recovery point.
        #[cfg(feature = "attacks")]
        vector
            if vector < trap::EXCEPTION_COUNT
                && !from_user
                && !is_machine_fault(vector)
                && super::fuzz::fixup(frame) => {}
        // A kernel thread (the attack suite's): only that thread ends.
        vector
            if vector < trap::EXCEPTION_COUNT
                && !is_machine_fault(vector)
                && K::in_kernel_thread() =>
        {
            K::kernel_thread_fault(frame, cpu::read_cr2())
        }
        vector if vector < trap::EXCEPTION_COUNT => fatal_exception(frame),
        trap::VECTOR_TIMER => {
            // One clock: only the boot CPU's timer advances kernel time.
            let cpu = super::percpu::index();
            if cpu == 0 {
                K::clock_tick();
            }
            lapic::end_of_interrupt();
            K::timer_tick(from_user, cpu);
        }
        trap::VECTOR_TLB_SHOOTDOWN => {
            super::tlb::service(super::percpu::index());
            lapic::end_of_interrupt();
        }
        // Ends the HLT of an idle loop (which then looks at the ready queue), or asks the
        // process it interrupted in ring 3 whether it was killed meanwhile.
        trap::VECTOR_RESCHEDULE => {
            lapic::end_of_interrupt();
            if from_user {
                K::kicked_in_user_mode();
            }
        }
        // Spurious LAPIC interrupts and (masked) legacy-PIC spurious IRQs: no EOI.
        trap::VECTOR_SPURIOUS => {}
        vector
            if (trap::VECTOR_LEGACY_PIC_BASE..trap::VECTOR_LEGACY_PIC_BASE + 16)
                .contains(&vector) => {}
        vector => {
            emergency_line(
                true,
                format_args!("unexpected interrupt vector {vector:#x}"),
            );
            lapic::end_of_interrupt();
        }
    }
}

/// The requested privilege level bits of a selector, and ring 3's value.
const RING_MASK: u64 = 0b11;
const RING_USER: u64 = 0b11;

/// NMI, #DF and #MC are the machine's problem, not the interrupted process's.
fn is_machine_fault(vector: u8) -> bool {
    matches!(
        vector,
        trap::VECTOR_NMI | trap::VECTOR_DOUBLE_FAULT | trap::VECTOR_MACHINE_CHECK
    )
}

/// Reports an exception over serial and stops the machine.
fn fatal_exception(frame: &InterruptFrame) -> ! {
    let report = ExceptionReport {
        frame,
        cr2: cpu::read_cr2(),
        cr3: cpu::read_cr3(),
    };
    report.write_lines(|line| emergency_line(true, line));
    emergency_line(false, format_args!("RAMPART-RESULT: FAIL kernel-exception"));
    cpu::halt_forever()
}

/// Disables maskable interrupts (the kernel runs with them off once processes exist).
pub fn disable() {
    cpu::disable_interrupts();
}

/// Enables maskable interrupts. Panics if the IDT is not installed yet.
pub fn enable() {
    assert!(
        super::idt::is_installed(),
        "interrupts enabled before the IDT"
    );
    // SAFETY: the IDT is loaded (checked above) and has a gate for all 256 vectors.
    unsafe { cpu::enable_interrupts() };
}
