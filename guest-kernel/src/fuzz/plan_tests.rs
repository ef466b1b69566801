use super::*;

const TARGETS: Targets = Targets {
    hole: Some((0x1000_0000, 0x1100_0000)),
    kernel_text: 0x20_0000,
    rampart: true,
};

#[test]
fn never_shutdown_nor_locks_nor_spared_msrs() {
    let mut rng = Rng::new(7);
    for _ in 0..100_000 {
        let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
        match Op::generate(kind, &mut rng, &TARGETS) {
            Op::Hypercall { number, .. } => {
                let never = [1, 2, 7, 11, 13, 14, 15, 16];
                assert!(!never.contains(&(number & 0xffff)), "{number:#x}")
            }
            Op::Wrmsr { msr, .. } | Op::Rdmsr { msr } => assert!(!msr_spared(msr)),
            Op::PhysRead { address } => assert!(
                (0x3_0000..0x4_0000).contains(&address)
                    || (0x1000_0000..0x1100_0000).contains(&address)
            ),
            _ => {}
        }
    }
}

#[test]
fn policy_hypercalls_get_only_refusable_addresses() {
    let mut rng = Rng::new(3);
    for _ in 0..10_000 {
        if let Op::Hypercall {
            number: 4..=6,
            arguments,
        } = Op::generate(Kind::Hypercall, &mut rng, &TARGETS)
        {
            let address = arguments[0];
            assert!(
                address & 0xfff != 0 || address >= OUTSIDE_RAM || address > u64::MAX - 0x1_0000
            );
        }
    }
}

#[test]
fn expectations() {
    assert!(expected(&Op::Rdmsr { msr: 0x2ff }, true, Err(GP)));
    assert!(!expected(&Op::Rdmsr { msr: 0x2ff }, true, Ok(6)));
    assert!(expected(&Op::Rdmsr { msr: 0x2ff }, false, Ok(6)));
    assert!(expected(
        &Op::Hypercall {
            number: 99,
            arguments: [0; 4]
        },
        true,
        Ok(-1i64 as u64)
    ));
    assert!(!expected(
        &Op::Hypercall {
            number: 4,
            arguments: [0; 4]
        },
        true,
        Ok(0)
    ));
    assert!(expected(
        &Op::Hypercall {
            number: 4,
            arguments: [0; 4]
        },
        false,
        Err(UD)
    ));
    assert!(expected(&Op::PhysRead { address: 0x3_0000 }, true, Err(VE)));
}

#[test]
fn first_unassigned_follows_the_abi() {
    use rampart_hv_abi::Hypercall;
    assert!(Hypercall::try_from(number::FIRST_UNASSIGNED - 1)
        .ok()
        .is_some());
    assert!(Hypercall::try_from(number::FIRST_UNASSIGNED).ok().is_none());
}
