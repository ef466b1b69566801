//! Reading and parsing `\rampart\boot.cfg` (absent file = defaults).

use rampart_boot_info::BootMode;
use rampart_loader::config::{self, BootConfig};

use super::files::{Esp, CONFIG_PATH};
use crate::fail::{BootError, Problem};

pub fn load(esp: &mut Esp) -> Result<BootConfig, BootError> {
    let Some(bytes) = esp.read_optional(CONFIG_PATH)? else {
        return Ok(BootConfig::default());
    };
    // Leaked (a few bytes of loader data, handed to the guest as usable RAM) so the error,
    // which borrows the offending text, can travel up to the reporting code.
    let bytes: &'static [u8] = bytes.leak();
    config::parse(bytes).map_err(|error| BootError::new(CONFIG_PATH, Problem::Config(error)))
}

pub fn mode_name(mode: BootMode) -> &'static str {
    match mode {
        BootMode::Hypervisor => "hv",
        BootMode::Native => "native",
    }
}
