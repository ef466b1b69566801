//! The GDB stub's input from COM2: packet framing (`gdb::framing`) and `monitor` command
//! parsing (`gdb::monitor`). Any byte stream: no panic, nothing forwarded but a single
//! `+`/`-`/Ctrl-C or a `$body#xx` packet with a correct checksum that fits the packet buffer;
//! well-formed packets between line noise all get through, in order.

use proptest::prelude::*;
use rampart_hypervisor::internals::framing::{Frame, Framer, CTRL_C, MAX_PACKET};
use rampart_hypervisor::internals::monitor::{parse, Command};

fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

fn packet(body: &[u8]) -> Vec<u8> {
    let mut p = vec![b'$'];
    p.extend_from_slice(body);
    p.extend_from_slice(format!("#{:02x}", checksum(body)).as_bytes());
    p
}

/// What the framer produced, as owned values.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Control(u8),
    Packet(Vec<u8>),
    Reject,
}

/// Feeds `input`, checking every forwarded frame on the way.
fn run(input: &[u8]) -> Result<Vec<Out>, TestCaseError> {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    for &byte in input {
        match framer.push(byte) {
            Frame::Pending => {}
            Frame::Reject => out.push(Out::Reject),
            Frame::Forward(frame) => {
                prop_assert!(!frame.is_empty() && frame.len() <= MAX_PACKET);
                if let [single] = frame {
                    prop_assert!(matches!(*single, b'+' | b'-' | CTRL_C), "{frame:?}");
                    out.push(Out::Control(*single));
                    continue;
                }
                let [b'$', body @ .., b'#', high, low] = frame else {
                    return Err(TestCaseError::fail(format!("not a packet: {frame:?}")));
                };
                let sum = std::str::from_utf8(&[*high, *low])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                prop_assert_eq!(
                    sum,
                    Some(checksum(body)),
                    "bad checksum forwarded: {:?}",
                    frame
                );
                prop_assert!(!body.contains(&b'$') && !body.contains(&b'#'));
                out.push(Out::Packet(frame.to_vec()));
            }
        }
    }
    Ok(out)
}

/// Bytes the framer reacts to, mixed with anything.
fn noisy_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => proptest::sample::select(b"$#+-\x030123456789abcdefABCDEFgmMX,:".to_vec()),
        1 => any::<u8>(),
    ]
}

/// A piece of a stream: line noise without `$`, or a well-formed packet.
#[derive(Clone, Debug)]
enum Piece {
    Noise(Vec<u8>),
    Packet(Vec<u8>),
    /// A body longer than the buffer holds.
    Overlong(usize),
}

fn piece() -> impl Strategy<Value = Piece> {
    let body_byte = any::<u8>().prop_filter("no framing bytes", |b| *b != b'$' && *b != b'#');
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>().prop_filter("no $", |b| *b != b'$'), 0..16)
            .prop_map(Piece::Noise),
        // Bodies starting with `m` are memory reads, which the framer may clamp (see below).
        3 => proptest::collection::vec(body_byte, 0..64)
            .prop_filter("no memory read", |b| b.first() != Some(&b'm'))
            .prop_map(Piece::Packet),
        1 => (MAX_PACKET - 8..MAX_PACKET + 8).prop_map(Piece::Overlong),
    ]
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn random_streams(input in proptest::collection::vec(noisy_byte(), 0..512)) {
        run(&input)?;
    }

    #[test]
    fn packets_between_noise_get_through_in_order(pieces in proptest::collection::vec(piece(), 0..12)) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for piece in &pieces {
            match piece {
                Piece::Noise(noise) => {
                    input.extend_from_slice(noise);
                    // Between packets only the control bytes come out.
                    expected.extend(noise.iter().filter(|b| matches!(**b, b'+' | b'-' | CTRL_C)).map(|b| Out::Control(*b)));
                }
                Piece::Packet(body) => {
                    input.extend(packet(body));
                    expected.push(Out::Packet(packet(body)));
                }
                Piece::Overlong(len) => {
                    let body = vec![b'a'; *len];
                    input.extend(packet(&body));
                    // `$`, body, `#` and two digits: what fits in the buffer passes.
                    expected.push(if len + 4 <= MAX_PACKET { Out::Packet(packet(&body)) } else { Out::Reject });
                }
            }
        }
        prop_assert_eq!(run(&input)?, expected);
    }

    /// A packet cut short by a new `$` is dropped and the new one is framed.
    #[test]
    fn truncated_packets_resync(cut in proptest::collection::vec(any::<u8>().prop_filter("body", |b| *b != b'$' && *b != b'#'), 0..40), body in "([a-ln-zA-Z0-9,:][a-zA-Z0-9,:]{0,39})?") {
        let mut input = vec![b'$'];
        input.extend_from_slice(&cut);
        input.extend(packet(body.as_bytes()));
        prop_assert_eq!(run(&input)?, vec![Out::Packet(packet(body.as_bytes()))]);
    }

    #[test]
    fn monitor_random_lines(line in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse(&line);
    }

    #[test]
    fn monitor_ept_takes_any_64_bit_address(address in any::<u64>(), prefix in proptest::sample::select(vec!["", "0x", "0X"]), pad in "[ \t]{0,3}") {
        let line = format!("{pad}ept{pad} {prefix}{address:x}{pad}");
        prop_assert_eq!(parse(line.as_bytes()), Command::Ept(address));
        // A 65-bit number or a third word is no address.
        let too_big = format!("ept 1{address:016x}");
        prop_assert_eq!(parse(too_big.as_bytes()), Command::Unknown);
        let extra = format!("ept {address:x} now");
        prop_assert_eq!(parse(extra.as_bytes()), Command::Unknown);
    }
}

/// Hostile memory packets pass framing (non-canonical addresses are refused later, by the
/// walker: see `walker`), except that a read longer than one reply packet is clamped to
/// `MAX_READ` bytes, so a huge `m` cannot keep the stub streaming for good.
#[test]
fn hostile_memory_packets_are_framed_intact() {
    for body in [
        &b"Mffff800000000000,10000000000:00"[..],
        b"Xdeadbeefdeadbeef,ffffffff:}\x5d",
        b"m0,0",
    ] {
        let out = run(&packet(body)).unwrap();
        assert_eq!(out, vec![Out::Packet(packet(body))]);
    }
    let out = run(&packet(b"m8000000000000000,ffffffffffffffff")).unwrap();
    assert_eq!(out, vec![Out::Packet(packet(b"m8000000000000000,7fe"))]);
}
