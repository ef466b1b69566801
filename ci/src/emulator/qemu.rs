//! QEMU: TCG for the firmware stage and the native kernel (no VMX there), or KVM with nested VMX on an
//! Intel host (`-accel kvm -cpu host`, needs `kvm_intel nested=1`; untestable on these machines).

use std::process::Command;

use super::{DISK_IMAGE, OVMF_PATH};

/// The command line PLATFORM.md verified, run inside the run directory, with `cpus` processors
/// and COM1 a TCP server on `com1_port` that waits for the runner's console before the machine
/// starts.
pub fn command(kvm: bool, cpus: u32, com1_port: u16) -> Command {
    let mut command = Command::new("qemu-system-x86_64");
    command.args(arguments(kvm, cpus, com1_port));
    command
}

fn arguments(kvm: bool, cpus: u32, com1_port: u16) -> Vec<String> {
    let cpu: &[&str] = if kvm {
        &["-accel", "kvm", "-cpu", "host"]
    } else {
        &["-cpu", "max"]
    };
    let mut args: Vec<String> = ["-machine", "q35"].iter().map(|s| s.to_string()).collect();
    args.extend(cpu.iter().map(|s| s.to_string()));
    if cpus > 1 {
        args.extend(["-smp".to_string(), cpus.to_string()]);
    }
    args.extend(
        [
            "-m",
            "512",
            "-bios",
            OVMF_PATH,
            "-drive",
            &format!("format=raw,file={DISK_IMAGE}"),
            "-serial",
            &format!("tcp:127.0.0.1:{com1_port},server=on,wait=on"),
            "-display",
            "none",
            "-no-reboot",
            "-monitor",
            "none",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcg_and_kvm_lines() {
        let tcg = arguments(false, 1, 4556).join(" ");
        assert!(tcg.starts_with("-machine q35 -cpu max -m 512 -bios /usr/share/ovmf/OVMF.fd"));
        assert!(tcg.contains(
            "-drive format=raw,file=disk.img -serial tcp:127.0.0.1:4556,server=on,wait=on"
        ));
        let kvm = arguments(true, 1, 4556).join(" ");
        assert!(kvm.contains("-accel kvm -cpu host"));
        assert!(!kvm.contains("-cpu max"));
        assert!(!tcg.contains("-smp"));
        let smp = arguments(false, 4, 4556).join(" ");
        assert!(smp.starts_with("-machine q35 -cpu max -smp 4 -m 512"));
    }
}
