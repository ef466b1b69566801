//! Discovery: what the firmware finds before loading anything (config, files, ACPI, memory,
//! the platform tables: MADT, MCFG, DMAR, FADT).

pub mod acpi;
pub mod config;
pub mod cpus;
pub mod files;
pub mod madt;
pub mod memory;
pub mod platform;
