use super::*;

fn error_text(input: &[u8]) -> String {
    parse(input)
        .expect_err("config should be rejected")
        .to_string()
}

#[test]
fn empty_file_gives_defaults() {
    let config = parse(b"").unwrap();
    assert_eq!(config, BootConfig::default());
    assert_eq!(config.mode, BootMode::Hypervisor);
    assert_eq!(config.log, LogLevel::Info);
    assert_eq!(config.cmdline.as_str(), "");
}

#[test]
fn full_file_with_comments_blank_lines_and_crlf() {
    let text = b"\xEF\xBB\xBF# Rampart\r\n\r\n  mode = native\r\nlog=trace\n\tcmdline =  init=/bin/sh  # kept \n";
    let config = parse(text).unwrap();
    assert_eq!(config.mode, BootMode::Native);
    assert_eq!(config.log, LogLevel::Trace);
    assert_eq!(config.cmdline.as_str(), "init=/bin/sh  # kept");
}

#[test]
fn cmdline_may_contain_equals_and_be_empty() {
    assert_eq!(
        parse(b"cmdline = a=b c=d").unwrap().cmdline.as_str(),
        "a=b c=d"
    );
    assert_eq!(parse(b"cmdline =").unwrap().cmdline.as_str(), "");
}

#[test]
fn unknown_key_names_the_line_and_the_known_keys() {
    assert_eq!(
        error_text(b"# c\nmode = hv\nmoed = native\n"),
        "boot.cfg line 3: unknown key 'moed' (expected mode, log, cmdline, gdb, pagetables)"
    );
}

#[test]
fn bad_values_are_rejected() {
    assert_eq!(
        error_text(b"mode = vm"),
        "boot.cfg line 1: bad value 'vm' for mode (expected hv, native)"
    );
    assert_eq!(
        error_text(b"\nlog = loud"),
        "boot.cfg line 2: bad value 'loud' for log (expected error, warn, info, debug, trace)"
    );
    assert!(error_text(b"mode =").contains("bad value '' for mode"));
    assert!(error_text(b"mode = HV").contains("bad value 'HV'"));
    assert!(error_text(b"mode = hv # inline").contains("bad value"));
}

#[test]
fn duplicate_key_is_rejected() {
    assert_eq!(
        error_text(b"log = info\nmode = hv\nlog = debug\n"),
        "boot.cfg line 3: duplicate key 'log' (first set on line 1)"
    );
}

#[test]
fn line_without_equals_or_key_is_rejected() {
    assert_eq!(
        error_text(b"mode hv"),
        "boot.cfg line 1: expected 'key = value'"
    );
    assert_eq!(
        error_text(b"= hv"),
        "boot.cfg line 1: missing key before '='"
    );
}

#[test]
fn non_utf8_is_rejected_with_its_line() {
    assert_eq!(
        error_text(b"mode = hv\nlog = \xFF\xFE\n"),
        "boot.cfg line 2: not valid UTF-8"
    );
}

#[test]
fn cmdline_length_limit() {
    let mut ok = b"cmdline = ".to_vec();
    ok.extend(std::iter::repeat_n(b'x', MAX_CMDLINE));
    assert_eq!(parse(&ok).unwrap().cmdline.as_bytes().len(), MAX_CMDLINE);
    ok.push(b'y');
    assert_eq!(
        error_text(&ok),
        "boot.cfg line 1: cmdline is 256 bytes (max 255)"
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x1234_5678_9abc_def0u64;
    for _ in 0..2000 {
        let mut bytes = Vec::new();
        for _ in 0..(state % 64) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(b"mode=hvnative\n#log cmdline \xFF="[(state % 29) as usize]);
        }
        let _ = parse(&bytes).map_err(|error| error.to_string());
    }
}

#[test]
fn gdb_is_off_by_default_and_takes_on_or_off() {
    assert!(!parse(b"").unwrap().gdb);
    assert!(parse(b"gdb = on").unwrap().gdb);
    assert!(!parse(b"gdb=off\n").unwrap().gdb);
    assert_eq!(
        error_text(b"gdb = yes"),
        "boot.cfg line 1: bad value 'yes' for gdb (expected on, off)"
    );
    assert_eq!(
        error_text(b"gdb = on\ngdb = off"),
        "boot.cfg line 2: duplicate key 'gdb' (first set on line 1)"
    );
}

#[test]
fn page_tables_policy_defaults_to_locked() {
    assert!(parse(b"").unwrap().lock_page_tables);
    assert!(!parse(b"pagetables = off\n").unwrap().lock_page_tables);
    assert!(parse(b"pagetables = locked\n").unwrap().lock_page_tables);
    let err = parse(b"pagetables = maybe\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "boot.cfg line 1: bad value 'maybe' for pagetables (expected locked, off)"
    );
}
