//! The hypervisor's size: lines of Rust in `hypervisor/src` without tests, and the `.text`
//! bytes of the EFI image it is linked into (firmware and hypervisor together: the
//! hypervisor is a library inside BOOTX64.EFI, so its code has no image of its own).

use std::fs;
use std::path::Path;

use crate::error::{Context, Result};

/// Lines of Rust without test code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceSize {
    pub files: u64,
    /// Every line outside test code.
    pub lines: u64,
    /// Those that are neither blank nor only a comment.
    pub code_lines: u64,
}

/// Test-only files by name: `*_tests.rs` and `proptests.rs` (declared `#[cfg(test)]`).
fn is_test_file(name: &str) -> bool {
    name.ends_with("_tests.rs") || name == "proptests.rs"
}

/// Sums [`count_source`] over every non-test `.rs` file under `dir`.
pub fn source_size(dir: &Path) -> Result<SourceSize> {
    let mut total = SourceSize::default();
    let entries = fs::read_dir(dir).context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .context(|| format!("cannot list {}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            let inner = source_size(&path)?;
            total.files += inner.files;
            total.lines += inner.lines;
            total.code_lines += inner.code_lines;
        } else if name.ends_with(".rs") && !is_test_file(name) {
            let text =
                fs::read_to_string(&path).context(|| format!("cannot read {}", path.display()))?;
            let (lines, code_lines) = count_source(&text);
            total.files += 1;
            total.lines += lines;
            total.code_lines += code_lines;
        }
    }
    Ok(total)
}

/// The development-only files: compiled only with the `gdb` feature (the debug exits).
const DEVELOPMENT_FILES: [&str; 1] = ["exits/debug.rs"];
/// The development-only folders besides `gdb/`: the VM-entry checker run before each VMLAUNCH.
const DEVELOPMENT_DIRS: [&str; 1] = ["vmx/entry_checks"];

/// The production build's hypervisor source: [`source_size`] without the `gdb` feature's code
/// (`gdb/`, [`DEVELOPMENT_DIRS`] and [`DEVELOPMENT_FILES`]; the small `gdb_off.rs` stand-in stays
/// counted).
pub fn production_source_size(dir: &Path) -> Result<SourceSize> {
    let mut size = source_size(dir)?;
    for folder in ["gdb"].into_iter().chain(DEVELOPMENT_DIRS) {
        let dev = source_size(&dir.join(folder))?;
        size.files -= dev.files;
        size.lines -= dev.lines;
        size.code_lines -= dev.code_lines;
    }
    for file in DEVELOPMENT_FILES {
        let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
        let (lines, code) = count_source(&text);
        size.files -= u64::from(!text.is_empty());
        size.lines -= lines;
        size.code_lines -= code;
    }
    Ok(size)
}

/// The contract crates under `hypervisor` (the folder) that the hypervisor links in:
/// `abi/src` and `boot-info/src`, without tests.
pub fn contracts_source_size(hypervisor: &Path) -> Result<SourceSize> {
    let abi = source_size(&hypervisor.join("abi/src"))?;
    let boot_info = source_size(&hypervisor.join("boot-info/src"))?;
    Ok(SourceSize {
        files: abi.files + boot_info.files,
        lines: abi.lines + boot_info.lines,
        code_lines: abi.code_lines + boot_info.code_lines,
    })
}

/// (lines, code lines) of `text`, leaving out each `#[cfg(test)]` item: the attribute and
/// the item after it, up to its closing brace (or its `;` for `mod name;`).
pub fn count_source(text: &str) -> (u64, u64) {
    let (mut lines, mut code) = (0, 0);
    let mut skipping = false;
    let mut depth: i64 = 0;
    let mut opened = false;
    for line in text.lines() {
        let mut trimmed = line.trim();
        if !skipping {
            if let Some(rest) = trimmed.strip_prefix("#[cfg(test)]") {
                (skipping, depth, opened) = (true, 0, false);
                trimmed = rest.trim();
                if trimmed.is_empty() {
                    continue;
                }
            }
        }
        if skipping {
            for c in trimmed.chars() {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let done = (opened && depth <= 0) || (!opened && trimmed.ends_with(';'));
            if done {
                skipping = false;
            }
            continue;
        }
        lines += 1;
        if !trimmed.is_empty() && !trimmed.starts_with("//") {
            code += 1;
        }
    }
    (lines, code)
}

/// Section `.text` of a PE/COFF image: (virtual size, raw size) in bytes.
pub fn pe_text_size(image: &[u8]) -> Option<(u64, u64)> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(image.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(image.get(at..at + 4)?.try_into().ok()?));
    // PE format: e_lfanew at 0x3c points at "PE\0\0", then the 20-byte COFF header
    // (sections at +2, optional header size at +16), then the optional header, then the
    // 40-byte section headers (name, VirtualSize at +8, SizeOfRawData at +16).
    if image.get(..2)? != b"MZ" {
        return None;
    }
    let pe = u32_at(0x3c)? as usize;
    if image.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let coff = pe + 4;
    let sections = usize::from(u16_at(coff + 2)?);
    let table = coff + 20 + usize::from(u16_at(coff + 16)?);
    (0..sections).find_map(|index| {
        let header = table + index * 40;
        let name = image.get(header..header + 8)?;
        (name.starts_with(b".text") && name[5..].iter().all(|&b| b == 0)).then(|| {
            let virtual_size = u64::from(u32_at(header + 8)?);
            let raw_size = u64::from(u32_at(header + 16)?);
            Some((virtual_size, raw_size))
        })?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_modules_and_files_are_left_out() {
        let text = "//! Doc.\nfn a() {}\n\n#[cfg(test)]\nmod tests {\n    fn b() {\n    }\n}\nfn c() {}\n#[cfg(test)]\n#[path = \"x_tests.rs\"]\nmod x;\n";
        assert_eq!(count_source(text), (4, 2));
        assert_eq!(count_source("#[cfg(test)] mod t;\nfn d() {}\n"), (1, 1));
        assert!(is_test_file("walker_tests.rs") && is_test_file("proptests.rs"));
        assert!(!is_test_file("walker.rs"));
    }

    /// A minimal PE: MZ header, PE signature, COFF header with two sections.
    fn pe(sections: &[(&[u8], u32, u32)]) -> Vec<u8> {
        let mut image = vec![0u8; 0x80];
        image[..2].copy_from_slice(b"MZ");
        image[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        image[0x40..0x44].copy_from_slice(b"PE\0\0");
        let coff = 0x44;
        image[coff + 2..coff + 4].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        image[coff + 16..coff + 18].copy_from_slice(&8u16.to_le_bytes());
        image.resize(coff + 20 + 8, 0);
        for (name, virtual_size, raw_size) in sections {
            let mut header = [0u8; 40];
            header[..name.len()].copy_from_slice(name);
            header[8..12].copy_from_slice(&virtual_size.to_le_bytes());
            header[16..20].copy_from_slice(&raw_size.to_le_bytes());
            image.extend_from_slice(&header);
        }
        image
    }

    /// The trusted computing base's budget in code lines, as counted here: the production
    /// hypervisor alone, and with its contract crates. Both are their size before the layering
    /// work of issue 21, which was to leave them no larger. A change that must grow the TCB raises
    /// these deliberately (and says why in README "Hypervisor size"); the host test below fails
    /// on any other growth.
    const PRODUCTION_BUDGET: u64 = 6_340;
    const TCB_BUDGET: u64 = 6_340 + 551;

    #[test]
    fn the_trusted_code_stays_within_its_budget() {
        let hypervisor = crate::paths::repo_root().join("hypervisor");
        let production = production_source_size(&hypervisor.join("src"))
            .unwrap()
            .code_lines;
        let contracts = contracts_source_size(&hypervisor).unwrap().code_lines;
        assert!(
            production <= PRODUCTION_BUDGET && production + contracts <= TCB_BUDGET,
            "production hypervisor {production} code lines (budget {PRODUCTION_BUDGET}), with \
             the contracts {} (budget {TCB_BUDGET}): trim, or raise the budget with a reason",
            production + contracts
        );
    }

    #[test]
    fn finds_the_text_section() {
        let image = pe(&[(b".rdata", 10, 512), (b".text", 0x1234, 0x1400)]);
        assert_eq!(pe_text_size(&image), Some((0x1234, 0x1400)));
        assert_eq!(pe_text_size(&pe(&[(b".textbss", 1, 2)])), None);
        assert_eq!(pe_text_size(b"not a PE"), None);
    }
}
