//! The guest's general-purpose registers as saved by the VM-exit entry stub.
#![forbid(unsafe_code)]

/// Declares [`GuestRegisters`] from its fields in push order, each with the number that
/// instruction encodings give the register, so that the order and the numbering are each
/// written once.
macro_rules! guest_registers {
    ($($name:ident = $number:literal,)*) => {
        /// GPRs in the order the exit stub pushes them (RAX at the lowest address). RSP lives in
        /// the VMCS guest-state area, not here.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct GuestRegisters {
            $(pub $name: u64,)*
        }

        impl GuestRegisters {
            /// The register numbered as in ModRM/exit-qualification encodings (0 = RAX, 1 = RCX,
            /// 2 = RDX, 3 = RBX, 4 = RSP, 5 = RBP, 6 = RSI, 7 = RDI, 8-15 = R8-R15). `None` for
            /// RSP.
            pub fn value(&self, number: u8) -> Option<u64> {
                let mut copy = *self;
                copy.by_number(number).map(|r| *r)
            }

            /// The register numbered as in encodings, for writing (see [`GuestRegisters::value`]).
            pub fn by_number(&mut self, number: u8) -> Option<&mut u64> {
                match number {
                    $($number => Some(&mut self.$name),)*
                    _ => None,
                }
            }
        }
    };
}

guest_registers! {
    rax = 0,
    rbx = 3,
    rcx = 1,
    rdx = 2,
    rsi = 6,
    rdi = 7,
    rbp = 5,
    r8 = 8,
    r9 = 9,
    r10 = 10,
    r11 = 11,
    r12 = 12,
    r13 = 13,
    r14 = 14,
    r15 = 15,
}

// The exit stub in arch::vm_entry hard-codes these offsets.
const _: () = assert!(core::mem::size_of::<GuestRegisters>() == 15 * 8);
const _: () = assert!(core::mem::offset_of!(GuestRegisters, rdi) == 0x28);
const _: () = assert!(core::mem::offset_of!(GuestRegisters, r15) == 0x70);

/// Register number 4 in instruction encodings: RSP, which is not in [`GuestRegisters`].
#[cfg(test)]
const GPR_RSP: u8 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_order_differs_from_push_order() {
        let mut regs = GuestRegisters {
            rcx: 1,
            rbx: 3,
            ..Default::default()
        };
        assert_eq!(*regs.by_number(1).unwrap(), 1);
        assert_eq!(*regs.by_number(3).unwrap(), 3);
        assert!(regs.by_number(GPR_RSP).is_none());
        assert!(regs.by_number(16).is_none());
    }
}
