use super::*;

const MIB: u64 = 1024 * 1024;
const DISK: [u8; 16] = [0x11; 16];
const PART: [u8; 16] = [0x22; 16];

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The header's own CRC, recomputed with its CRC field zeroed.
fn header_crc_ok(sector: &[u8]) -> bool {
    let mut header = sector[..92].to_vec();
    let stored = u32_at(&header, 16);
    header[16..20].fill(0);
    crc32(&header) == stored
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn esp_type_guid_on_disk() {
    assert_eq!(
        ESP_TYPE,
        [
            0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
            0xC9, 0x3B
        ]
    );
    let guid = guid_from([0xFF; 16]);
    assert_eq!(guid[7] >> 4, 4, "version 4");
    assert_eq!(guid[8] >> 6, 0b10, "RFC 4122 variant");
}

#[test]
fn layout_aligns_the_partition_and_leaves_room_for_the_backup() {
    let layout = Layout::for_partition(64 * MIB);
    assert_eq!(layout.first_lba, 2048);
    assert_eq!(layout.last_lba, 2048 + 131_072 - 1);
    assert_eq!(layout.disk_sectors, 66 * MIB / SECTOR);
    assert!(layout.backup_entries_lba() > layout.last_lba);
    // A partition ending right at a MiB boundary still gets its backup space.
    let odd = Layout::for_partition(SECTOR * 3);
    assert_eq!(odd.last_lba, 2050);
    assert!(odd.backup_entries_lba() > odd.last_lba);
}

#[test]
fn protective_mbr_covers_the_disk() {
    let gpt = encode(64 * MIB, DISK, PART);
    let mbr = &gpt.protective_mbr;
    assert_eq!(&mbr[510..], &[0x55, 0xAA]);
    assert_eq!(mbr[446 + 4], 0xEE);
    assert_eq!(u32_at(mbr, 446 + 8), 1);
    assert_eq!(
        u64::from(u32_at(mbr, 446 + 12)),
        gpt.layout.disk_sectors - 1
    );
    assert!(mbr[462..510].iter().all(|&b| b == 0), "one record only");
}

#[test]
fn headers_have_valid_crcs_and_point_at_each_other() {
    let gpt = encode(64 * MIB, DISK, PART);
    let layout = gpt.layout;
    let last = layout.disk_sectors - 1;
    let primary = &gpt.primary[..512];
    let entries = &gpt.primary[512..];
    assert_eq!(gpt.primary.len() as u64, (1 + ENTRY_SECTORS) * SECTOR);
    assert_eq!(gpt.backup.len() as u64, (ENTRY_SECTORS + 1) * SECTOR);
    let backup = &gpt.backup[gpt.backup.len() - 512..];
    assert_eq!(&gpt.backup[..gpt.backup.len() - 512], entries);
    for header in [primary, backup] {
        assert_eq!(&header[..8], b"EFI PART");
        assert_eq!(u32_at(header, 8), 0x0001_0000);
        assert_eq!(u32_at(header, 12), 92);
        assert!(header_crc_ok(header));
        assert_eq!(u64_at(header, 40), 34, "first usable LBA");
        assert_eq!(u64_at(header, 48), last - 33, "last usable LBA");
        assert_eq!(&header[56..72], &DISK);
        assert_eq!(u32_at(header, 80), 128);
        assert_eq!(u32_at(header, 84), 128);
        assert_eq!(u32_at(header, 88), crc32(entries), "entry array CRC");
        assert!(header[92..].iter().all(|&b| b == 0));
    }
    assert_eq!((u64_at(primary, 24), u64_at(primary, 32)), (1, last));
    assert_eq!(u64_at(primary, 72), 2);
    // The backup header sits at the last LBA, its entries right before it.
    assert_eq!((u64_at(backup, 24), u64_at(backup, 32)), (last, 1));
    assert_eq!(u64_at(backup, 72), last - 32);
    assert_eq!(layout.backup_entries_lba(), last - 32);
    // A changed byte breaks the header's CRC.
    let mut broken = primary.to_vec();
    broken[40] ^= 1;
    assert!(!header_crc_ok(&broken));
}

#[test]
fn esp_entry_bounds_and_name() {
    let gpt = encode(64 * MIB, DISK, PART);
    let entry = &gpt.primary[512..512 + 128];
    assert_eq!(&entry[..16], &ESP_TYPE);
    assert_eq!(&entry[16..32], &PART);
    let (first, last) = (u64_at(entry, 32), u64_at(entry, 40));
    assert_eq!((first, last), (gpt.layout.first_lba, gpt.layout.last_lba));
    assert_eq!((last - first + 1) * SECTOR, 64 * MIB);
    assert!(first >= 34 && last <= gpt.layout.disk_sectors - 1 - 33);
    let name: Vec<u16> = entry[56..128]
        .chunks(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    assert_eq!(String::from_utf16(&name).unwrap(), "EFI System Partition");
    assert!(
        gpt.primary[512 + 128..].iter().all(|&b| b == 0),
        "one entry"
    );
}

/// gdisk's own verification of a disk the encoder laid out (skipped, saying so, where gdisk is
/// not installed; `.ci/run` installs it).
#[test]
fn sgdisk_finds_no_problems() {
    let Ok(version) = std::process::Command::new("sgdisk")
        .arg("--version")
        .output()
    else {
        println!("sgdisk_finds_no_problems: skipped, sgdisk (gdisk) not installed");
        return;
    };
    assert!(version.status.success());
    let gpt = encode(3 * MIB, DISK, guid_from([0x33; 16]));
    let path = std::env::temp_dir().join(format!("rampart-gpt-{}.img", std::process::id()));
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut disk = std::fs::File::create(&path).unwrap();
        disk.set_len(gpt.layout.disk_sectors * SECTOR).unwrap();
        for (lba, bytes) in [
            (0, &gpt.protective_mbr[..]),
            (1, &gpt.primary[..]),
            (gpt.layout.backup_entries_lba(), &gpt.backup[..]),
        ] {
            disk.seek(SeekFrom::Start(lba * SECTOR)).unwrap();
            disk.write_all(bytes).unwrap();
        }
    }
    let verify = std::process::Command::new("sgdisk")
        .arg("-v")
        .arg(&path)
        .output()
        .unwrap();
    let info = std::process::Command::new("sgdisk")
        .args(["-i", "1"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let verify = String::from_utf8_lossy(&verify.stdout);
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(verify.contains("No problems found"), "{verify}");
    assert!(
        info.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
        "{info}"
    );
    assert!(info.contains("First sector: 2048"), "{info}");
    assert!(info.contains("'EFI System Partition'"), "{info}");
}
