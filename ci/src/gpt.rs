//! A GPT disk around one EFI System Partition (pure encoding; UEFI 2.10 §5.2.3 "Protective MBR"
//! and §5.3 "GUID Partition Table (GPT) Disk Layout"): the protective MBR at LBA 0, the primary
//! header at LBA 1 and its 128-entry array at LBA 2-33, the partition from LBA 2048 (1 MiB
//! aligned), then the backup entry array and the backup header in the disk's last 33 sectors.
//!
//! Written here rather than with the `gpt` crate: that crate edits a disk through a file or
//! device handle (open, read the headers back, add a partition, write), where the runner needs
//! the bytes of one fixed layout to place around a FAT volume it holds in memory; this encoder
//! is that layout and nothing else, pure and host-tested, and `sgdisk -v` (gdisk) checks what it
//! writes (`gpt_tests::sgdisk_finds_no_problems`). The CRC is `crc32fast`'s.

/// Logical block size: 512-byte sectors (what USB sticks and emulated disks report).
pub const SECTOR: u64 = 512;
/// Partition entries in the array, and bytes per entry (the minimum the spec allows: 16 KiB).
const ENTRY_COUNT: u32 = 128;
const ENTRY_BYTES: u32 = 128;
/// Sectors the entry array takes: 128 x 128 bytes / 512.
pub const ENTRY_SECTORS: u64 = (ENTRY_COUNT as u64 * ENTRY_BYTES as u64) / SECTOR;
/// The partition and the disk's end are aligned to 1 MiB (what partitioning tools do).
const ALIGN_SECTORS: u64 = 2048;
/// `EFI PART`, revision 1.0, 92-byte header.
const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION: u32 = 0x0001_0000;
const HEADER_BYTES: u32 = 92;
/// The protective MBR's one partition record: type 0xEE from LBA 1, CHS fields as the spec
/// gives them, and the boot signature.
const MBR_RECORD: usize = 446;
const MBR_TYPE_GPT_PROTECTIVE: u8 = 0xEE;
const MBR_START_CHS: [u8; 3] = [0x00, 0x02, 0x00];
const MBR_END_CHS: [u8; 3] = [0xFF, 0xFF, 0xFF];
const MBR_SIGNATURE: [u8; 2] = [0x55, 0xAA];

/// The EFI System Partition type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B, as stored on disk
/// (the first three fields little-endian).
pub const ESP_TYPE: [u8; 16] = guid_bytes(
    0xC12A_7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// The partition's name in its entry.
const ESP_NAME: &str = "EFI System Partition";

/// Where everything lies, in sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Sectors on the whole disk.
    pub disk_sectors: u64,
    /// The partition's first and last LBA (inclusive).
    pub first_lba: u64,
    pub last_lba: u64,
}

impl Layout {
    /// A disk holding a partition of `partition_bytes` (rounded up to whole sectors).
    pub fn for_partition(partition_bytes: u64) -> Layout {
        let sectors = partition_bytes.div_ceil(SECTOR);
        let first_lba = ALIGN_SECTORS;
        let last_lba = first_lba + sectors - 1;
        // The backup array and header follow the partition, in the next 1 MiB step.
        let needed = last_lba + 1 + ENTRY_SECTORS + 1;
        let disk_sectors = needed.div_ceil(ALIGN_SECTORS) * ALIGN_SECTORS;
        Layout {
            disk_sectors,
            first_lba,
            last_lba,
        }
    }

    pub fn last_disk_lba(&self) -> u64 {
        self.disk_sectors - 1
    }

    /// The backup entry array's first LBA.
    pub fn backup_entries_lba(&self) -> u64 {
        self.last_disk_lba() - ENTRY_SECTORS
    }
}

/// The encoded metadata, each part to be written at its LBA.
pub struct Gpt {
    pub layout: Layout,
    /// LBA 0.
    pub protective_mbr: [u8; SECTOR as usize],
    /// LBA 1 (header) and LBA 2-33 (entries).
    pub primary: Vec<u8>,
    /// The backup entries then the backup header, from [`Layout::backup_entries_lba`] to the end.
    pub backup: Vec<u8>,
}

/// Encodes a disk with one EFI System Partition of `partition_bytes`; `disk_guid` and
/// `partition_guid` are the identities (in on-disk byte order).
pub fn encode(partition_bytes: u64, disk_guid: [u8; 16], partition_guid: [u8; 16]) -> Gpt {
    let layout = Layout::for_partition(partition_bytes);
    let entries = entry_array(&layout, partition_guid);
    let entries_crc = crc32(&entries);
    let primary_header = header(&layout, disk_guid, entries_crc, true);
    let backup_header = header(&layout, disk_guid, entries_crc, false);
    let mut primary = primary_header.to_vec();
    primary.extend_from_slice(&entries);
    let mut backup = entries;
    backup.extend_from_slice(&backup_header);
    Gpt {
        layout,
        protective_mbr: protective_mbr(&layout),
        primary,
        backup,
    }
}

/// The CRC-32 of the GPT (IEEE 802.3, reflected polynomial 0xEDB88320), from `crc32fast`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// A GUID's on-disk bytes from its text fields.
pub const fn guid_bytes(first: u32, second: u16, third: u16, rest: [u8; 8]) -> [u8; 16] {
    let a = first.to_le_bytes();
    let b = second.to_le_bytes();
    let c = third.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], rest[0], rest[1], rest[2], rest[3],
        rest[4], rest[5], rest[6], rest[7],
    ]
}

/// A random-looking version-4 GUID made from `seed` (the image's digest: same files, same GUIDs).
pub fn guid_from(seed: [u8; 16]) -> [u8; 16] {
    let mut guid = seed;
    guid[7] = (guid[7] & 0x0F) | 0x40; // version 4 (the high nibble of the third field)
    guid[8] = (guid[8] & 0x3F) | 0x80; // RFC 4122 variant
    guid
}

fn protective_mbr(layout: &Layout) -> [u8; SECTOR as usize] {
    let mut mbr = [0u8; SECTOR as usize];
    let record = &mut mbr[MBR_RECORD..MBR_RECORD + 16];
    record[1..4].copy_from_slice(&MBR_START_CHS);
    record[4] = MBR_TYPE_GPT_PROTECTIVE;
    record[5..8].copy_from_slice(&MBR_END_CHS);
    record[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(layout.disk_sectors - 1).unwrap_or(u32::MAX);
    record[12..16].copy_from_slice(&size.to_le_bytes());
    mbr[510..].copy_from_slice(&MBR_SIGNATURE);
    mbr
}

fn entry_array(layout: &Layout, partition_guid: [u8; 16]) -> Vec<u8> {
    let mut entries = vec![0u8; (ENTRY_COUNT * ENTRY_BYTES) as usize];
    let entry = &mut entries[..ENTRY_BYTES as usize];
    entry[0..16].copy_from_slice(&ESP_TYPE);
    entry[16..32].copy_from_slice(&partition_guid);
    entry[32..40].copy_from_slice(&layout.first_lba.to_le_bytes());
    entry[40..48].copy_from_slice(&layout.last_lba.to_le_bytes());
    for (index, unit) in ESP_NAME.encode_utf16().enumerate() {
        entry[56 + 2 * index..58 + 2 * index].copy_from_slice(&unit.to_le_bytes());
    }
    entries
}

/// The primary (at LBA 1) or backup (at the last LBA) header sector.
fn header(
    layout: &Layout,
    disk_guid: [u8; 16],
    entries_crc: u32,
    primary: bool,
) -> [u8; SECTOR as usize] {
    let (my_lba, alternate_lba, entries_lba) = match primary {
        true => (1, layout.last_disk_lba(), 2),
        false => (layout.last_disk_lba(), 1, layout.backup_entries_lba()),
    };
    let first_usable = 2 + ENTRY_SECTORS;
    let last_usable = layout.backup_entries_lba() - 1;
    let mut sector = [0u8; SECTOR as usize];
    let h = &mut sector[..HEADER_BYTES as usize];
    h[0..8].copy_from_slice(SIGNATURE);
    h[8..12].copy_from_slice(&REVISION.to_le_bytes());
    h[12..16].copy_from_slice(&HEADER_BYTES.to_le_bytes());
    h[24..32].copy_from_slice(&u64::to_le_bytes(my_lba));
    h[32..40].copy_from_slice(&u64::to_le_bytes(alternate_lba));
    h[40..48].copy_from_slice(&first_usable.to_le_bytes());
    h[48..56].copy_from_slice(&last_usable.to_le_bytes());
    h[56..72].copy_from_slice(&disk_guid);
    h[72..80].copy_from_slice(&u64::to_le_bytes(entries_lba));
    h[80..84].copy_from_slice(&ENTRY_COUNT.to_le_bytes());
    h[84..88].copy_from_slice(&ENTRY_BYTES.to_le_bytes());
    h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let crc = crc32(h);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    sector
}

#[cfg(test)]
#[path = "gpt_tests.rs"]
mod tests;
