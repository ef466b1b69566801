//! A little-endian x86_64 ET_EXEC builder, shared by the loader's unit tests (`src/elf_tests.rs`)
//! and its fuzz target (`tests/fuzz/elf.rs`), which include this file by path.

pub const PT_LOAD: u32 = 1;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;
/// Files are at least this long.
pub const FILE_LEN: usize = 0x3000;
/// Program headers start right after the ELF64 header and are 56 bytes each.
const PHOFF: usize = 64;
const PHENT: usize = 56;

/// One program header.
#[derive(Clone, Copy, Debug)]
pub struct Ph {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// A text segment at 16 MiB.
pub const TEXT: Ph = Ph {
    p_type: PT_LOAD,
    flags: PF_R | PF_X,
    offset: 0x1000,
    vaddr: 0x0100_0000,
    paddr: 0x0100_0000,
    filesz: 0x20,
    memsz: 0x20,
    align: 0x1000,
};
/// A data segment after it, with bss.
pub const DATA: Ph = Ph {
    p_type: PT_LOAD,
    flags: PF_R | PF_W,
    offset: 0x2000,
    vaddr: 0x0100_2000,
    paddr: 0x0100_2000,
    filesz: 0x10,
    memsz: 0x3000,
    align: 0x1000,
};

/// The ELF with entry point `entry` and these program headers.
pub fn build(entry: u64, headers: &[Ph]) -> Vec<u8> {
    let mut file = vec![0u8; FILE_LEN.max(PHOFF + headers.len() * PHENT)];
    let mut put = |at: usize, bytes: &[u8]| file[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"\x7fELF\x02\x01\x01"); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
    put(16, &2u16.to_le_bytes()); // ET_EXEC
    put(18, &0x3eu16.to_le_bytes()); // EM_X86_64
    put(20, &1u32.to_le_bytes());
    put(24, &entry.to_le_bytes());
    put(32, &(PHOFF as u64).to_le_bytes());
    put(52, &64u16.to_le_bytes()); // e_ehsize
    put(54, &(PHENT as u16).to_le_bytes());
    put(56, &(headers.len() as u16).to_le_bytes());
    for (index, ph) in headers.iter().enumerate() {
        let at = PHOFF + index * PHENT;
        put(at, &ph.p_type.to_le_bytes());
        put(at + 4, &ph.flags.to_le_bytes());
        put(at + 8, &ph.offset.to_le_bytes());
        put(at + 16, &ph.vaddr.to_le_bytes());
        put(at + 24, &ph.paddr.to_le_bytes());
        put(at + 32, &ph.filesz.to_le_bytes());
        put(at + 40, &ph.memsz.to_le_bytes());
        put(at + 48, &ph.align.to_le_bytes());
    }
    file
}
