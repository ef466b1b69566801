//! The initrd (`\rampart\initrd`): the user programs from guest-user/, each with its SHA-256, packed
//! with `rampart_kernel_abi::initrd::build` (the format the kernel parses).

use std::fs;

use rampart_kernel_abi::initrd;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::paths;

/// The programs of the `rampart-user` package that go into the initrd (`init` must be there: the
/// kernel starts it as pid 1).
pub const PROGRAMS: [&str; 14] = [
    "init", "sh", "hello", "spin", "sleeper", "faulty", "badptr", "sysloop", "pingpong", "bench",
    "true", "attacks", "vmxinsn", "fuzz",
];

/// Packs `(name, bytes)` files into an archive, hashing each.
pub fn pack(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    if files.len() > initrd::MAX_FILES {
        return Err(Error::Image(format!(
            "initrd: {} files, at most {}",
            files.len(),
            initrd::MAX_FILES
        )));
    }
    if let Some((name, _)) = files
        .iter()
        .find(|(name, _)| name.is_empty() || name.len() >= initrd::NAME_LEN)
    {
        return Err(Error::Image(format!(
            "initrd: bad file name `{name}` (1 to {} bytes)",
            initrd::NAME_LEN - 1
        )));
    }
    let entries: Vec<(&str, &[u8], [u8; 32])> = files
        .iter()
        .map(|(name, data)| (name.as_str(), data.as_slice(), sha256(data)))
        .collect();
    Ok(initrd::build(&entries))
}

/// The built user programs (`cargo xtask build`), packed.
pub fn from_build() -> Result<Vec<u8>> {
    let mut files = Vec::new();
    for name in PROGRAMS {
        let path = paths::user_program(name);
        let data = fs::read(&path).map_err(|err| {
            Error::Setup(format!(
                "cannot read user program {}: {err} (run `cargo xtask build`)",
                paths::display(&path)
            ))
        })?;
        files.push((name.to_string(), data));
    }
    pack(&files)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_files_the_kernel_can_parse() {
        let files = vec![
            ("init".to_string(), b"\x7fELF init".to_vec()),
            ("sh".to_string(), vec![0xab; 5000]),
        ];
        let bytes = pack(&files).unwrap();
        assert_eq!(bytes.len() % initrd::ALIGN, 0);
        let archive = initrd::Initrd::parse(&bytes).unwrap();
        assert_eq!(archive.len(), 2);
        for (name, data) in &files {
            let file = archive.find(name).unwrap();
            assert_eq!(file.data, data.as_slice());
            assert_eq!(file.sha256, sha256(data));
            assert_eq!(file.offset % initrd::ALIGN, 0);
        }
    }

    #[test]
    fn known_digest() {
        let hex: String = sha256(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn rejects_bad_names_and_too_many_files() {
        let long = vec![("x".repeat(initrd::NAME_LEN), Vec::new())];
        assert!(pack(&long).is_err());
        assert!(pack(&[(String::new(), Vec::new())]).is_err());
        let many: Vec<(String, Vec<u8>)> = (0..=initrd::MAX_FILES)
            .map(|i| (format!("f{i}"), Vec::new()))
            .collect();
        assert!(pack(&many).is_err());
    }
}
