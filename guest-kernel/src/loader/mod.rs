//! Program loading: ELF validation (pure) here; mapping into an address space in `process`.

pub mod elf;
