//! The `run vmxinsn` step of the shell sessions: a ring-3 program tries each VMX, SMX and
//! privileged instruction in a child of its own; each child must die with its fault, natively
//! and under Rampart, and the parent see it.

use super::shell::{expect_exit, Flavour};

/// The instructions `vmxinsn` tries, one child each, and the `killed:` description the kernel
/// prints for each: natively and under Rampart alike (VMX instructions and GETSEC: #UD, VMX
/// being off natively and the hypervisor injecting #UD; XSETBV: #UD as CR4.OSXSAVE is clear;
/// the privileged ones: #GP at CPL 3).
pub const VMX_FAULTS: [(&str, &str); 15] = [
    ("vmxon", "invalid opcode"),
    ("vmxoff", "invalid opcode"),
    ("vmread", "invalid opcode"),
    ("vmwrite", "invalid opcode"),
    ("vmlaunch", "invalid opcode"),
    ("invept", "invalid opcode"),
    ("invvpid", "invalid opcode"),
    ("vmfunc", "invalid opcode"),
    ("getsec", "invalid opcode"),
    ("rdmsr", "general protection fault"),
    ("wrmsr", "general protection fault"),
    // Per emulator (`vmx_fault`): the kernel leaves CR4.OSXSAVE clear.
    ("xsetbv", "general protection fault"),
    ("hlt", "general protection fault"),
    ("invd", "general protection fault"),
    ("mov-cr0", "general protection fault"),
];

/// The fault expected for `name`. XSETBV in ring 3 with CR4.OSXSAVE clear: QEMU TCG (the
/// native tests) checks the CPL first (#GP), Bochs (the hv tests) CR4.OSXSAVE first (#UD).
pub fn vmx_fault(name: &str, what: &'static str, flavour: Flavour) -> &'static str {
    match (name, flavour) {
        ("xsetbv", Flavour::Hypervisor) => "invalid opcode",
        _ => what,
    }
}

/// `run vmxinsn`: every instruction's child was killed with its expected fault, and the
/// parent saw exit code -11 for each.
pub fn check(part: &[String], flavour: Flavour, fail: &mut impl FnMut(String)) {
    for (name, what) in VMX_FAULTS {
        let what = vmx_fault(name, what, flavour);
        let trying = format!("vmxinsn: trying {name}");
        let Some(start) = part.iter().position(|l| l.trim_end().ends_with(&trying)) else {
            fail(format!("run vmxinsn: no `{trying}` line"));
            continue;
        };
        let killed = part[start + 1..]
            .iter()
            .find(|l| l.contains("(vmxinsn) killed: "));
        match killed {
            Some(line) if line.contains(&format!("killed: {what}")) => {}
            Some(line) => fail(format!("run vmxinsn: {name}: want `{what}`, got `{line}`")),
            None => fail(format!("run vmxinsn: {name}: no `(vmxinsn) killed:` line")),
        }
        let code = format!("vmxinsn: {name}: exit code -11");
        if !part.iter().any(|l| l.trim_end().ends_with(&code)) {
            fail(format!("run vmxinsn: no `{code}` line"));
        }
        if part
            .iter()
            .any(|l| l.contains(&format!("vmxinsn: {name} survived")))
        {
            fail(format!("run vmxinsn: {name} survived"));
        }
    }
    let all = format!("vmxinsn: all {} killed", VMX_FAULTS.len());
    if !part.iter().any(|l| l.trim_end().ends_with(&all)) {
        fail(format!("run vmxinsn: no `{all}` line"));
    }
    expect_exit(part, "vmxinsn", 0, fail);
}
