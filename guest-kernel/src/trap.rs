//! Interrupt vectors, the saved register frame every interrupt stub builds, and the text of a
//! fatal exception report. Pure: the stubs and the handlers live in `arch::interrupts`.

use core::fmt;

/// Vectors 0..32 are the architecture's exceptions (SDM Vol. 3A 6.3.1, Table 6-1).
pub const EXCEPTION_COUNT: u8 = 32;
/// The LAPIC timer.
pub const VECTOR_TIMER: u8 = 0x20;
/// First of the 16 vectors the legacy 8259 PICs are remapped to (masked; only spurious IRQ7 and
/// IRQ15 can still arrive there).
pub const VECTOR_LEGACY_PIC_BASE: u8 = 0xE0;
/// TLB shootdown requests between the kernel's CPUs (`arch::tlb`).
pub const VECTOR_TLB_SHOOTDOWN: u8 = 0xF0;
/// Wakes an idle CPU from HLT because a process became ready (`smp::kick_idle`).
pub const VECTOR_RESCHEDULE: u8 = 0xF1;
/// The LAPIC spurious-interrupt vector (low nibble all ones, as P6-era LAPICs required).
pub const VECTOR_SPURIOUS: u8 = 0xFF;

/// Vector 2 (non-maskable interrupt).
pub const VECTOR_NMI: u8 = 2;
/// Vector 8 (double fault).
pub const VECTOR_DOUBLE_FAULT: u8 = 8;
/// Vector 14 (page fault).
pub const VECTOR_PAGE_FAULT: u8 = 14;
/// Vector 18 (machine check).
pub const VECTOR_MACHINE_CHECK: u8 = 18;

/// Exceptions that push an error code (SDM Vol. 3A 6.13): #DF, #TS, #NP, #SS, #GP, #PF, #AC,
/// #CP, #VC, #SX. The stubs push a zero for every other vector so the frame is uniform.
// The stub macro in `arch::interrupts` spells out the same list; this is its tested statement.
#[cfg_attr(target_os = "none", allow(dead_code))]
pub const fn pushes_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Mnemonic of an exception vector (`#GP`), or `#??` for reserved vectors and interrupts.
pub const fn exception_mnemonic(vector: u8) -> &'static str {
    match vector {
        0 => "#DE",
        1 => "#DB",
        2 => "NMI",
        3 => "#BP",
        4 => "#OF",
        5 => "#BR",
        6 => "#UD",
        7 => "#NM",
        8 => "#DF",
        9 => "#CSO",
        10 => "#TS",
        11 => "#NP",
        12 => "#SS",
        13 => "#GP",
        14 => "#PF",
        16 => "#MF",
        17 => "#AC",
        18 => "#MC",
        19 => "#XM",
        20 => "#VE",
        21 => "#CP",
        28 => "#HV",
        29 => "#VC",
        30 => "#SX",
        _ => "#??",
    }
}

/// The state an interrupt stub saves, lowest address first: the general-purpose registers it
/// pushes, the vector and error code, then what the CPU pushed (SDM Vol. 3A 6.14.1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterruptFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// The stubs in `arch::interrupts` push exactly this many bytes; keep both in step.
pub const INTERRUPT_FRAME_SIZE: usize = 22 * 8;
const _: () = assert!(core::mem::size_of::<InterruptFrame>() == INTERRUPT_FRAME_SIZE);

/// `#PF` error code bits (SDM Vol. 3A 4.7): W/R and I/D.
const PF_WRITE: u64 = 1 << 1;
const PF_INSTRUCTION: u64 = 1 << 4;

/// What a process did wrong, as the kernel's kill message names it: `page fault (write to
/// 0x0)`, `general protection fault`, `invalid opcode`, `divide error`, ...
pub struct UserFault {
    pub vector: u64,
    pub error_code: u64,
    pub cr2: u64,
}

impl fmt::Display for UserFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vector {
            0 => f.write_str("divide error"),
            6 => f.write_str("invalid opcode"),
            13 => f.write_str("general protection fault"),
            14 if self.error_code & PF_INSTRUCTION != 0 => {
                write!(f, "page fault (execute at {:#x})", self.cr2)
            }
            14 if self.error_code & PF_WRITE != 0 => {
                write!(f, "page fault (write to {:#x})", self.cr2)
            }
            14 => write!(f, "page fault (read of {:#x})", self.cr2),
            vector => {
                let mnemonic = exception_mnemonic(u8::try_from(vector).unwrap_or(u8::MAX));
                write!(f, "exception {mnemonic} (vector {vector})")
            }
        }
    }
}

/// The full report of a fatal exception: a headline, then the registers, over several lines.
/// Each line is yielded to `line` without the `[kernel] ` prefix or a newline.
pub struct ExceptionReport<'a> {
    pub frame: &'a InterruptFrame,
    pub cr2: u64,
    pub cr3: u64,
}

impl ExceptionReport<'_> {
    /// Writes the report as lines through `line`.
    pub fn write_lines(&self, mut line: impl FnMut(fmt::Arguments<'_>)) {
        let f = self.frame;
        let vector = u8::try_from(f.vector).unwrap_or(u8::MAX);
        line(format_args!(
            "EXCEPTION {} (vector {}) error={:#x} at rip={:#018x}",
            exception_mnemonic(vector),
            f.vector,
            f.error_code,
            f.rip
        ));
        line(format_args!(
            "  rip={:#018x} rsp={:#018x} rflags={:#018x}",
            f.rip, f.rsp, f.rflags
        ));
        line(format_args!(
            "  cs={:#06x} ss={:#06x} cr2={:#018x} cr3={:#018x}",
            f.cs, f.ss, self.cr2, self.cr3
        ));
        let rows: [[(&str, u64); 4]; 4] = [
            [
                ("rax", f.rax),
                ("rbx", f.rbx),
                ("rcx", f.rcx),
                ("rdx", f.rdx),
            ],
            [
                ("rsi", f.rsi),
                ("rdi", f.rdi),
                ("rbp", f.rbp),
                ("r8 ", f.r8),
            ],
            [
                ("r9 ", f.r9),
                ("r10", f.r10),
                ("r11", f.r11),
                ("r12", f.r12),
            ],
            [("r13", f.r13), ("r14", f.r14), ("r15", f.r15), ("", 0)],
        ];
        for row in &rows {
            line(format_args!("  {}", RegisterRow(row)));
        }
    }
}

/// One dump line of up to four `name=value` pairs; an empty name ends the row.
struct RegisterRow<'a>(&'a [(&'a str, u64); 4]);

impl fmt::Display for RegisterRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, value) in self.0.iter().filter(|(name, _)| !name.is_empty()) {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{name}={value:#018x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{string::String, vec::Vec};

    #[test]
    fn error_code_vectors_match_the_sdm() {
        let with: Vec<u8> = (0..EXCEPTION_COUNT)
            .filter(|&v| pushes_error_code(v))
            .collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }

    #[test]
    fn user_faults_are_named() {
        let name = |vector, error_code, cr2| {
            UserFault {
                vector,
                error_code,
                cr2,
            }
            .to_string()
        };
        assert_eq!(name(14, 0b110, 0), "page fault (write to 0x0)");
        assert_eq!(name(14, 0b100, 0x40_1000), "page fault (read of 0x401000)");
        assert_eq!(name(14, 0b10101, 0x7000), "page fault (execute at 0x7000)");
        assert_eq!(name(13, 0, 0), "general protection fault");
        assert_eq!(name(6, 0, 0), "invalid opcode");
        assert_eq!(name(0, 0, 0), "divide error");
        assert_eq!(name(3, 0, 0), "exception #BP (vector 3)");
    }

    #[test]
    fn report_headline_names_the_exception() {
        let frame = InterruptFrame {
            vector: 13,
            error_code: 0x18,
            rip: 0x100_0123,
            ..Default::default()
        };
        let report = ExceptionReport {
            frame: &frame,
            cr2: 0,
            cr3: 0x1000,
        };
        let mut lines = Vec::new();
        report.write_lines(|args| lines.push(std::fmt::format(args)));
        assert_eq!(
            lines[0],
            "EXCEPTION #GP (vector 13) error=0x18 at rip=0x0000000001000123"
        );
        assert_eq!(lines.len(), 7);
        let last: &String = &lines[6];
        assert!(last.starts_with("  r13=") && last.ends_with("r15=0x0000000000000000"));
    }
}
