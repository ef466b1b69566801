//! `\rampart\boot.cfg` (`config::parse`): any bytes give a config or an error naming a line
//! of the file; accepted configs survive a write-out and re-parse unchanged.

use proptest::prelude::*;
use rampart_boot_info::BootMode;
use rampart_loader::config::{parse, BootConfig, CommandLine, LogLevel, MAX_CMDLINE};

/// Number of lines `parse` sees (it splits on every `\n`).
fn line_count(text: &[u8]) -> usize {
    text.iter().filter(|&&b| b == b'\n').count() + 1
}

/// Writes a config back as `key = value` lines.
fn write_out(config: &BootConfig) -> String {
    let mode = match config.mode {
        BootMode::Hypervisor => "hv",
        BootMode::Native => "native",
    };
    format!(
        "mode = {mode}\nlog = {}\ncmdline = {}\ngdb = {}\npagetables = {}\n",
        config.log.name(),
        config.cmdline.as_str(),
        if config.gdb { "on" } else { "off" },
        if config.lock_page_tables {
            "locked"
        } else {
            "off"
        }
    )
}

/// Checks one parse: no panic, errors on a real line with a message naming it, accepted
/// configs round-trip.
fn check(text: &[u8]) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(config) => {
            prop_assert!(config.cmdline.as_bytes().len() <= MAX_CMDLINE);
            let written = write_out(&config);
            prop_assert_eq!(
                parse(written.as_bytes()),
                Ok(config),
                "re-parse of {:?}",
                written
            );
        }
        Err(error) => {
            prop_assert!(error.line >= 1 && error.line <= line_count(text));
            let message = error.to_string();
            let prefix = format!("boot.cfg line {}: ", error.line);
            prop_assert!(message.starts_with(&prefix), "{message}");
        }
    }
    Ok(())
}

/// Pieces the parser reacts to, so random lines reach every branch.
fn token() -> impl Strategy<Value = Vec<u8>> {
    let words: &[&[u8]] = &[
        b"mode",
        b"log",
        b"cmdline",
        b"gdb",
        b"hv",
        b"native",
        b"error",
        b"warn",
        b"info",
        b"debug",
        b"trace",
        b"on",
        b"off",
        b"=",
        b" ",
        b"\t",
        b"#",
        b"\r",
        b"\n",
        b"\xEF\xBB\xBF",
        b"\xFF",
        b"\xC3\xA9",
        b"moed",
        b"x",
    ];
    prop_oneof![
        4 => proptest::sample::select(words).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 1..4),
        1 => (1usize..300).prop_map(|n| vec![b'y'; n]),
    ]
}

/// A valid config's fields.
fn boot_config() -> impl Strategy<Value = BootConfig> {
    let log = proptest::sample::select(vec![
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ]);
    // Printable command lines without leading or trailing blanks (the parser trims values).
    let cmdline = "([!-~]([ -~]{0,253}[!-~])?)?";
    let flags = (any::<bool>(), any::<bool>());
    (any::<bool>(), log, cmdline, flags).prop_map(|(hv, log, cmdline, (gdb, lock))| BootConfig {
        mode: if hv {
            BootMode::Hypervisor
        } else {
            BootMode::Native
        },
        log,
        cmdline: CommandLine::new(&cmdline).expect("at most 255 bytes"),
        gdb,
        lock_page_tables: lock,
    })
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn random_bytes(text in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&text)?;
    }

    #[test]
    fn random_token_soup(tokens in proptest::collection::vec(token(), 0..48)) {
        check(&tokens.concat())?;
    }

    #[test]
    fn valid_configs_round_trip(config in boot_config(), crlf in any::<bool>(), bom in any::<bool>()) {
        let mut text = write_out(&config);
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        if bom {
            text.insert(0, '\u{feff}');
        }
        prop_assert_eq!(parse(text.as_bytes()), Ok(config));
    }

    /// A bad line anywhere is reported on that line, whatever valid lines surround it.
    #[test]
    fn errors_name_the_bad_line(
        before in 0usize..6,
        after in 0usize..6,
        bad in proptest::sample::select(vec!["mode = turbo", "nokey", "= x", "color = red", "gdb = yes"]),
    ) {
        let good = ["# comment", "", "  "];
        let mut lines: Vec<&str> = (0..before).map(|i| good[i % good.len()]).collect();
        lines.push(bad);
        lines.extend((0..after).map(|i| good[i % good.len()]));
        let text = lines.join("\n");
        let error = parse(text.as_bytes()).unwrap_err();
        prop_assert_eq!(error.line, before + 1);
    }
}
