//! Bochs 2.7 with the configuration PLATFORM.md verified: OVMF as the ROM, the image as an ATA disk, COM1 on
//! a TCP socket (the runner's console), and the built-in debugger told to continue at once.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::{DISK_IMAGE, OVMF_PATH};
use crate::error::{Context, Error, Result};

/// The VGA BIOS from Debian's `vgabios` package.
pub const VGABIOS_PATH: &str = "/usr/share/vgabios/vgabios.bin";
/// Debugger commands run at start-up: `c` (continue). Debian's Bochs is built with the debugger.
const COMMANDS: &str = "c\n";
const BOCHSRC: &str = "bochsrc";
const COMMANDS_FILE: &str = "bochs.cmds";

/// The bochsrc for one CPU model with `cpus` processors, COM1 listening on `com1_port`. All paths are relative to the run
/// directory (Bochs runs there).
///
/// `rfb` with `timeout=0` needs no viewer and no X server; its server takes the first free TCP port in
/// 5900-5949 (rfb.cc, BX_RFB_PORT_MIN..MAX) and its options accept only `timeout=` and `hideIPS`, so parallel
/// runs need no port option. COM1 is a socket server the runner connects to (Bochs waits for that
/// connection before it starts the CPU); the runner logs it to `serial.log`. COM2 stays off until
/// the hypervisor's GDB stub needs it.
pub fn config(cpu_model: &str, cpus: u32, com1_port: u16) -> String {
    format!(
        r#"display_library: rfb, options="timeout=0"
memory: host=512, guest=512
romimage: file="{OVMF_PATH}", address=0xffe00000, options=none
vgaromimage: file="{VGABIOS_PATH}"
boot: disk
ata0: enabled=true, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=disk, path="{DISK_IMAGE}", mode=flat
pci: enabled=1, chipset=i440fx
vga: extension=vbe, update_freq=5
cpu: count={cpus}, ips=50000000, model={cpu_model}, reset_on_triple_fault=0, ignore_bad_msrs=1
clock: sync=none, time0=local
log: bochs.log
panic: action=fatal
com1: enabled=true, mode=socket-server, dev="localhost:{com1_port}"
com2: enabled=false
"#
    )
}

/// Writes the bochsrc and debugger commands into `run_dir`, removes a stale lock, and returns the command.
pub fn command(
    run_dir: &Path,
    cpu_model: &str,
    cpus: u32,
    com1_port: u16,
    com2_port: Option<u16>,
) -> Result<Command> {
    if !Path::new(VGABIOS_PATH).is_file() {
        return Err(Error::Setup(format!(
            "{VGABIOS_PATH} is missing: install Debian's `vgabios` package"
        )));
    }
    let mut rc = config(cpu_model, cpus, com1_port);
    if let Some(port) = com2_port {
        rc = rc.replace("com2: enabled=false", &com2_socket(port));
    }
    write(run_dir, BOCHSRC, &rc)?;
    write(run_dir, COMMANDS_FILE, COMMANDS)?;
    // Bochs refuses an image whose lock file survived a killed run.
    let _ = fs::remove_file(run_dir.join(format!("{DISK_IMAGE}.lock")));
    let mut command = Command::new("bochs");
    command.args(["-q", "-rc", COMMANDS_FILE, "-f", BOCHSRC]);
    Ok(command)
}

/// COM2 as a socket server for the hypervisor's GDB stub (Bochs waits for a client before the
/// CPU starts, and OVMF writes its console to COM2 too: `crate::gdb::link` drains it).
pub fn com2_socket(port: u16) -> String {
    format!(r#"com2: enabled=true, mode=socket-server, dev="localhost:{port}""#)
}

fn write(run_dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = run_dir.join(name);
    fs::write(&path, text).context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_model_and_files() {
        let rc = config("corei7_sandy_bridge_2600k", 1, 4555);
        assert!(rc.contains(
            "cpu: count=1, ips=50000000, model=corei7_sandy_bridge_2600k, reset_on_triple_fault=0"
        ));
        assert!(rc.contains(r#"romimage: file="/usr/share/ovmf/OVMF.fd", address=0xffe00000"#));
        assert!(rc.contains(r#"com1: enabled=true, mode=socket-server, dev="localhost:4555""#));
        assert!(rc.contains(r#"display_library: rfb, options="timeout=0""#));
        assert!(
            config("tigerlake", 4, 4555).contains("cpu: count=4, ips=50000000, model=tigerlake")
        );
    }
}
