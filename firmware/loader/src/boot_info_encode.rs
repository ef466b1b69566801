//! Serialises a [`BootInfo`] into guest memory bytes with exactly its `repr(C)` layout, without
//! unsafe code: every field lands at its `offset_of!`, little-endian.

use core::mem::{offset_of, size_of};

use rampart_boot_info::{BootInfo, MemoryRegion, Module};

/// Bytes [`encode`] writes.
pub const ENCODED_SIZE: usize = size_of::<BootInfo>();

/// `put_le!(out, base, Type, value, field, ...)`: each integer field of `value` (a `Type`)
/// little-endian at `base` plus the field's offset.
macro_rules! put_le {
    ($out:expr, $base:expr, $type:ty, $value:expr, $($field:ident),*) => {
        $(put($out, $base + offset_of!($type, $field), &$value.$field.to_le_bytes());)*
    };
}

/// Writes `info` to `out[..ENCODED_SIZE]`; `None` if `out` is too short.
pub fn encode(info: &BootInfo, out: &mut [u8]) -> Option<()> {
    let out = out.get_mut(..ENCODED_SIZE)?;
    out.fill(0);
    #[rustfmt::skip]
    put_le!(out, 0, BootInfo, info, magic, version, boot_mode, acpi_rsdp, serial_port,
        log_level, kernel_start, kernel_end, memory_region_count, module_count,
        command_line_len, cpu_count, ap_trampoline);
    put(
        out,
        offset_of!(BootInfo, kernel_sha256),
        &info.kernel_sha256,
    );
    put(out, offset_of!(BootInfo, command_line), &info.command_line);
    for (index, region) in info.memory_map.iter().enumerate() {
        let base = offset_of!(BootInfo, memory_map) + index * size_of::<MemoryRegion>();
        put_le!(out, base, MemoryRegion, region, start, length, kind);
    }
    for (index, module) in info.modules.iter().enumerate() {
        let base = offset_of!(BootInfo, modules) + index * size_of::<Module>();
        put_le!(out, base, Module, module, start, length);
        put(out, base + offset_of!(Module, sha256), &module.sha256);
        put(out, base + offset_of!(Module, name), &module.name);
    }
    for (index, id) in info.apic_ids.iter().enumerate() {
        let at = offset_of!(BootInfo, apic_ids) + index * size_of::<u32>();
        put(out, at, &id.to_le_bytes());
    }
    Some(())
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    out[at..at + bytes.len()].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_boot_info::{MemoryKind, BOOT_INFO_MAGIC};

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn fields_land_at_their_offsets() {
        let mut info = BootInfo::empty();
        info.acpi_rsdp = 0xE_0000;
        info.log_level = 4;
        info.kernel_sha256 = [0xAB; 32];
        info.memory_region_count = 2;
        info.memory_map[1] = MemoryRegion::new(0x10_0000, 0x20_0000, MemoryKind::KernelImage);
        info.module_count = 1;
        info.modules[0].name[..6].copy_from_slice(b"initrd");
        info.modules[0].length = 77;
        info.command_line_len = 3;
        info.command_line[..3].copy_from_slice(b"a=b");
        info.cpu_count = 2;
        info.apic_ids[1] = 6;
        info.ap_trampoline = 0x9_f000;
        let mut bytes = vec![0xFFu8; ENCODED_SIZE + 8];
        encode(&info, &mut bytes).unwrap();
        assert_eq!(&bytes[..8], b"RAMPBOOT");
        assert_eq!(u64_at(&bytes, 0), BOOT_INFO_MAGIC);
        assert_eq!(
            u64_at(&bytes, 16),
            0xE_0000,
            "acpi_rsdp follows magic, version, boot_mode"
        );
        assert_eq!(
            &bytes[24..27],
            &[0xF8, 0x03, 4],
            "serial_port 0x3f8 then log_level"
        );
        assert_eq!(&bytes[32..64], &[0xAB; 32]);
        let region = offset_of!(BootInfo, memory_map) + size_of::<MemoryRegion>();
        assert_eq!(u64_at(&bytes, region), 0x10_0000);
        assert_eq!(u64_at(&bytes, region + 8), 0x20_0000);
        assert_eq!(bytes[region + 16], MemoryKind::KernelImage as u8);
        let module = offset_of!(BootInfo, modules);
        assert_eq!(u64_at(&bytes, module + 8), 77);
        assert_eq!(&bytes[module + 48..module + 54], b"initrd");
        let line = offset_of!(BootInfo, command_line);
        assert_eq!(&bytes[line..line + 4], b"a=b\0");
        let cpus = offset_of!(BootInfo, cpu_count);
        assert_eq!(&bytes[cpus..cpus + 4], &2u32.to_le_bytes());
        let ids = offset_of!(BootInfo, apic_ids);
        assert_eq!(&bytes[ids + 4..ids + 8], &6u32.to_le_bytes());
        assert_eq!(
            u64_at(&bytes, offset_of!(BootInfo, ap_trampoline)),
            0x9_f000
        );
        assert_eq!(bytes[ENCODED_SIZE], 0xFF, "nothing written past the block");
        assert!(encode(&info, &mut bytes[..ENCODED_SIZE - 1]).is_none());
    }
}
