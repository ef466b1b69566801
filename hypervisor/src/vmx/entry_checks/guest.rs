//! SDM Vol. 3C 27.3.1: checks on the guest-state area.

use super::{canonical, has, pat_ok, Checked, Report, CR4_PAE, EFER_DEFINED, EFER_LMA, EFER_LME};
use super::{
    CR0_PE, CR0_PG, CR4_PCIDE, PENDING_DEBUG_RESERVED, RFLAGS_RESERVED_ZERO, RIGHTS_RESERVED,
};
use x86::vmx::vmcs::control::{EntryControls, SecondaryControls};
use x86::vmx::vmcs::{control, guest};

/// Runs the 27.3.1 checks into `r`.
pub(super) fn check(r: &mut Report, vmcs: &Checked<'_>) {
    control_registers(r, vmcs);
    segment_selectors_and_bases(r, vmcs);
    segment_rights(r, vmcs);
    tables_rip_and_state(r, vmcs);
}

/// True if the VM-entry controls make an IA-32e mode guest.
fn ia32e_guest(vmcs: &Checked<'_>) -> bool {
    has(
        vmcs.v(control::VMENTRY_CONTROLS),
        EntryControls::IA32E_MODE_GUEST.bits(),
    )
}

/// 27.3.1.1 guest control registers, debug registers and MSRs.
fn control_registers(r: &mut Report, vmcs: &Checked<'_>) {
    let v = |field| vmcs.v(field);
    let caps = vmcs.caps;
    let entry = v(control::VMENTRY_CONTROLS);
    let ia32e_guest = ia32e_guest(vmcs);
    let unrestricted = has(vmcs.secondary, SecondaryControls::UNRESTRICTED_GUEST.bits());
    const GUEST_CR: &str = "27.3.1.1";
    let (cr0, cr4) = (v(guest::CR0), v(guest::CR4));
    let cr0_fixed0 = if unrestricted {
        caps.cr0_fixed0 & !(CR0_PE | CR0_PG)
    } else {
        caps.cr0_fixed0
    };
    r.rule(
        GUEST_CR,
        "guest CR0 has the bits IA32_VMX_CR0_FIXED0/1 fix",
        cr0 & cr0_fixed0 == cr0_fixed0 && cr0 & !caps.cr0_fixed1 == 0,
    );
    r.rule(
        GUEST_CR,
        "guest CR0.PG only with CR0.PE",
        cr0 & CR0_PG == 0 || cr0 & CR0_PE != 0,
    );
    r.rule(
        GUEST_CR,
        "guest CR4 has the bits IA32_VMX_CR4_FIXED0/1 fix",
        cr4 & caps.cr4_fixed0 == caps.cr4_fixed0 && cr4 & !caps.cr4_fixed1 == 0,
    );
    r.rule(
        GUEST_CR,
        "IA-32e mode guest: CR0.PG and CR4.PAE 1; otherwise CR4.PCIDE 0",
        if ia32e_guest {
            cr0 & CR0_PG != 0 && cr4 & CR4_PAE != 0
        } else {
            cr4 & CR4_PCIDE == 0
        },
    );
    r.rule(
        GUEST_CR,
        "guest CR3 bits beyond the physical-address width 0",
        !vmcs.beyond_width(v(guest::CR3) & !0xfff),
    );
    if has(entry, EntryControls::LOAD_DEBUG_CONTROLS.bits()) {
        r.rule(GUEST_CR, "guest DR7 bits 63:32 0", v(guest::DR7) >> 32 == 0);
    }
    r.rule(
        GUEST_CR,
        "guest IA32_SYSENTER_ESP and _EIP canonical",
        canonical(v(guest::IA32_SYSENTER_ESP)) && canonical(v(guest::IA32_SYSENTER_EIP)),
    );
    if has(entry, EntryControls::LOAD_IA32_PAT.bits()) {
        r.rule(
            GUEST_CR,
            "guest IA32_PAT: every entry a valid memory type",
            pat_ok(v(guest::IA32_PAT_FULL)),
        );
    }
    if has(entry, EntryControls::LOAD_IA32_EFER.bits()) {
        let efer = v(guest::IA32_EFER_FULL);
        r.rule(
            GUEST_CR,
            "guest IA32_EFER reserved bits 0",
            efer & !EFER_DEFINED == 0,
        );
        r.rule(
            GUEST_CR,
            "guest IA32_EFER.LMA equals the IA-32e mode guest control",
            (efer & EFER_LMA != 0) == ia32e_guest,
        );
        r.rule(
            GUEST_CR,
            "guest IA32_EFER.LME equals .LMA when CR0.PG is 1",
            cr0 & CR0_PG == 0 || (efer & EFER_LME != 0) == (efer & EFER_LMA != 0),
        );
    }
}

/// 27.3.1.2 guest segment registers.
const SEG: &str = "27.3.1.2";

/// 27.3.1.2: selectors and bases.
fn segment_selectors_and_bases(r: &mut Report, vmcs: &Checked<'_>) {
    let Segments {
        cs,
        ss,
        tr,
        ldtr,
        data,
    } = Segments::read(vmcs);
    r.rule(
        SEG,
        "TR's TI flag 0; LDTR's too when usable",
        tr.selector & 0b100 == 0 && (!ldtr.usable() || ldtr.selector & 0b100 == 0),
    );
    r.rule(
        SEG,
        "SS.RPL equals CS.RPL",
        ss.selector & 0b11 == cs.selector & 0b11,
    );
    r.rule(
        SEG,
        "TR, FS and GS bases canonical; LDTR's when usable",
        canonical(tr.base)
            && canonical(data[3].base)
            && canonical(data[4].base)
            && (!ldtr.usable() || canonical(ldtr.base)),
    );
    r.rule(
        SEG,
        "CS base bits 63:32 0; SS, DS, ES bases too when usable",
        cs.base >> 32 == 0 && data[..3].iter().all(|s| !s.usable() || s.base >> 32 == 0),
    );
}

/// 27.3.1.2: access rights and limits.
fn segment_rights(r: &mut Report, vmcs: &Checked<'_>) {
    let ia32e_guest = ia32e_guest(vmcs);
    let Segments {
        cs,
        ss,
        tr,
        ldtr,
        data,
    } = Segments::read(vmcs);
    r.rule(
        SEG,
        "CS usable, type 9, 11, 13 or 15, S 1, P 1",
        cs.usable() && matches!(cs.kind(), 9 | 11 | 13 | 15) && cs.system_bit() && cs.present(),
    );
    r.rule(
        SEG,
        "usable SS, DS, ES, FS, GS: S 1, P 1, accessed, SS writable",
        data.iter()
            .all(|s| !s.usable() || (s.system_bit() && s.present() && s.kind() & 1 == 1))
            && (!data[0].usable() || matches!(data[0].kind(), 3 | 7)),
    );
    r.rule(
        SEG,
        "SS.DPL equals its RPL; non-conforming CS.DPL equals SS.DPL",
        (!data[0].usable() || data[0].dpl() == ss.selector & 0b11)
            && (!matches!(cs.kind(), 9 | 11) || cs.dpl() == ss.dpl()),
    );
    r.rule(
        SEG,
        "access-rights reserved bits 11:8 and 31:17 0 in usable segments",
        [cs, tr]
            .iter()
            .chain(&data)
            .all(|s| !s.usable() || s.rights & RIGHTS_RESERVED == 0),
    );
    r.rule(SEG, "limit and granularity agree (G 0 if limit[11:0] is not all ones, 1 if limit[31:20] is not 0)", [cs, tr].iter().chain(&data).all(|s| !s.usable() || s.granularity_ok()));
    r.rule(
        SEG,
        "IA-32e mode guest with CS.L 1: CS.D 0",
        !ia32e_guest || !cs.long() || cs.rights & (1 << 14) == 0,
    );
    r.rule(
        SEG,
        "TR usable, type 11 (busy 64-bit TSS), S 0, P 1",
        tr.usable() && tr.kind() == 11 && !tr.system_bit() && tr.present(),
    );
    r.rule(
        SEG,
        "usable LDTR: type 2, S 0, P 1",
        !ldtr.usable() || (ldtr.kind() == 2 && !ldtr.system_bit() && ldtr.present()),
    );
}

/// 27.3.1.3 guest descriptor-table registers, 27.3.1.4 RIP and RFLAGS, 27.3.1.5 non-register
/// state.
fn tables_rip_and_state(r: &mut Report, vmcs: &Checked<'_>) {
    let v = |field| vmcs.v(field);
    let ia32e_guest = ia32e_guest(vmcs);
    let cs = Segment::read(vmcs, guest::CS_SELECTOR);
    const TABLES: &str = "27.3.1.3";
    r.rule(
        TABLES,
        "GDTR and IDTR bases canonical",
        canonical(v(guest::GDTR_BASE)) && canonical(v(guest::IDTR_BASE)),
    );
    r.rule(
        TABLES,
        "GDTR and IDTR limits bits 31:16 0",
        v(guest::GDTR_LIMIT) >> 16 == 0 && v(guest::IDTR_LIMIT) >> 16 == 0,
    );

    // 27.3.1.4 guest RIP and RFLAGS.
    const RIP: &str = "27.3.1.4";
    let rip = v(guest::RIP);
    r.rule(
        RIP,
        "RIP canonical in 64-bit mode, bits 63:32 0 otherwise",
        if ia32e_guest && cs.long() {
            canonical(rip)
        } else {
            rip >> 32 == 0
        },
    );
    let rflags = v(guest::RFLAGS);
    r.rule(
        RIP,
        "RFLAGS reserved bits 0 (63:22, 15, 5, 3) and bit 1 set",
        rflags & RFLAGS_RESERVED_ZERO == 0 && rflags & 0b10 != 0,
    );
    r.rule(
        RIP,
        "RFLAGS.VM 0 in an IA-32e mode guest",
        !ia32e_guest || rflags & (1 << 17) == 0,
    );

    // 27.3.1.5 guest non-register state.
    const STATE: &str = "27.3.1.5";
    let activity = v(guest::ACTIVITY_STATE);
    let supported = activity == 0 || (activity <= 3 && vmcs.caps.misc & (1 << (5 + activity)) != 0);
    r.rule(
        STATE,
        "activity state active, or one IA32_VMX_MISC[8:6] supports",
        supported,
    );
    let interruptibility = v(guest::INTERRUPTIBILITY_STATE);
    r.rule(
        STATE,
        "interruptibility state bits 31:5 0, not both STI and MOV-SS blocking",
        interruptibility >> 5 == 0 && interruptibility & 0b11 != 0b11,
    );
    r.rule(
        STATE,
        "pending debug exceptions reserved bits 0",
        v(guest::PENDING_DBG_EXCEPTIONS) & PENDING_DEBUG_RESERVED == 0,
    );
    r.rule(
        STATE,
        "VMCS link pointer all ones (no shadow VMCS)",
        vmcs.image.get(guest::LINK_PTR_FULL) == Some(u64::MAX),
    );
}

/// The guest's segment registers: CS, SS, TR, LDTR, and the data segments SS, DS, ES, FS, GS.
struct Segments {
    cs: Segment,
    ss: Segment,
    tr: Segment,
    ldtr: Segment,
    data: [Segment; 5],
}

impl Segments {
    fn read(vmcs: &Checked<'_>) -> Self {
        let segment = |selector| Segment::read(vmcs, selector);
        Segments {
            cs: segment(guest::CS_SELECTOR),
            ss: segment(guest::SS_SELECTOR),
            tr: segment(guest::TR_SELECTOR),
            ldtr: segment(guest::LDTR_SELECTOR),
            data: [
                guest::SS_SELECTOR,
                guest::DS_SELECTOR,
                guest::ES_SELECTOR,
                guest::FS_SELECTOR,
                guest::GS_SELECTOR,
            ]
            .map(segment),
        }
    }
}

/// A guest segment register's four fields.
#[derive(Clone, Copy)]
struct Segment {
    selector: u64,
    base: u64,
    limit: u64,
    rights: u64,
}

impl Segment {
    /// The segment whose selector field is `selector` (its other fields sit at the same
    /// distance from ES's, `vmx::setup::segment_fields`).
    fn read(vmcs: &Checked<'_>, selector: u32) -> Self {
        let offset = selector - guest::ES_SELECTOR;
        Segment {
            selector: vmcs.v(selector),
            base: vmcs.v(guest::ES_BASE + offset),
            limit: vmcs.v(guest::ES_LIMIT + offset),
            rights: vmcs.v(guest::ES_ACCESS_RIGHTS + offset),
        }
    }

    fn usable(&self) -> bool {
        self.rights & (1 << 16) == 0
    }
    fn kind(&self) -> u64 {
        self.rights & 0xf
    }
    /// The descriptor type bit S (1: code or data).
    fn system_bit(&self) -> bool {
        self.rights & (1 << 4) != 0
    }
    fn dpl(&self) -> u64 {
        (self.rights >> 5) & 0b11
    }
    fn present(&self) -> bool {
        self.rights & (1 << 7) != 0
    }
    fn long(&self) -> bool {
        self.rights & (1 << 13) != 0
    }
    fn granularity_ok(&self) -> bool {
        let granular = self.rights & (1 << 15) != 0;
        (self.limit & 0xfff == 0xfff || !granular) && (self.limit >> 20 == 0 || granular)
    }
}
