//! Discovery: what the firmware finds before loading anything (config, files, ACPI, memory).

pub mod acpi;
pub mod config;
pub mod files;
pub mod memory;
