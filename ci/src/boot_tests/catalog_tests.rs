use super::*;

#[test]
fn selects_by_name_in_catalog_order() {
    let picked = select(Some("corrupt-kernel,native-qemu")).unwrap();
    let names: Vec<&str> = picked.iter().map(|t| t.name).collect();
    assert_eq!(names, vec!["native-qemu", "corrupt-kernel"]);
    let err = select(Some("native-qemu,nope")).err().unwrap();
    assert!(err.contains("`nope`"));
    assert_eq!(select(None).unwrap().len(), BOOT_TESTS.len());
}

#[test]
fn passing_boots_drive_the_shell() {
    // The soak types its own rounds (`crate::soak`) instead of a session.
    for test in BOOT_TESTS
        .iter()
        .filter(|t| !matches!(t.variant, Variant::Soak))
    {
        let driven = session(test).is_some();
        assert_eq!(driven, test.expect.pass, "{}", test.name);
    }
    let native = select(Some("native-qemu")).unwrap();
    assert!(matches!(
        session(native[0]),
        Some((_, Some(Flavour::Native)))
    ));
}

#[test]
fn names_are_unique() {
    for (i, test) in BOOT_TESTS.iter().enumerate() {
        assert!(BOOT_TESTS[i + 1..]
            .iter()
            .all(|other| other.name != test.name));
    }
}

#[test]
fn kvm_takes_only_the_hv_bochs_tests() {
    let hv = select(Some("hv-bochs-tigerlake")).unwrap();
    let moved = under_kvm(&hv).unwrap();
    assert_eq!(moved[0].emulator, Emulator::Kvm);
    assert_eq!(moved[0].name, "hv-bochs-tigerlake");
    let native = select(Some("native-qemu")).unwrap();
    let refused = under_kvm(&native).err().unwrap();
    assert!(
        refused.contains("--emulator kvm") && refused.contains("native-qemu"),
        "{refused}"
    );
}
