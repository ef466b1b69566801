//! Guest memory as the debugger sees it: guest-virtual addresses walked through the guest's
//! page tables, then checked against the hypervisor's ranges and EPT (guest-physical equals
//! host-physical under the identity EPT, and the host identity-maps all of it); the bytes are
//! read and written through `guest_memory::GuestBytes`.
#![allow(unsafe_code)] // the current VMCS in the write hook

use super::registers::GuestFrame;
use crate::guest_memory::{Gpa, GuestBytes, GuestPhysical};
use crate::guest_paging::walker::{self, Mapping, WalkError};
use crate::state;

const PAGE_4K: u64 = 4096;

/// The next piece of `[gva, gva + len)` that stays in one 4 KiB page, translated and checked.
fn piece(frame: &GuestFrame, gva: u64, len: usize) -> Result<(Mapping, GuestBytes), WalkError> {
    let mapping = walker::translate(&GuestPhysical, frame.cr3, frame.cr4, gva)?;
    let in_page = (PAGE_4K - (mapping.gpa % PAGE_4K)).min(mapping.bytes_to_page_end());
    let take = (len as u64).min(in_page) as usize;
    let bytes = GuestBytes::checked(Gpa(mapping.gpa), take, false)?;
    Ok((mapping, bytes))
}

/// Reads guest-virtual memory into `buffer`; returns how many bytes could be read (0 and the
/// error if not even the first one).
pub fn read(frame: &GuestFrame, gva: u64, buffer: &mut [u8]) -> Result<usize, WalkError> {
    let mut done = 0;
    while done < buffer.len() {
        let address = gva.wrapping_add(done as u64);
        let bytes = match piece(frame, address, buffer.len() - done) {
            Ok((_, bytes)) => bytes,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        bytes.read(&mut buffer[done..]);
        done += bytes.len();
    }
    Ok(done)
}

/// Writes `data` to guest-virtual memory, whatever the guest's or EPT's write permissions
/// (breakpoints go into read-only text). All or nothing: every piece is checked first.
pub fn write(frame: &GuestFrame, gva: u64, data: &[u8]) -> Result<(), WalkError> {
    let mut done = 0;
    while done < data.len() {
        let (_, bytes) = piece(frame, gva.wrapping_add(done as u64), data.len() - done)?;
        done += bytes.len();
    }
    done = 0;
    while done < data.len() {
        let (mapping, bytes) = piece(frame, gva.wrapping_add(done as u64), data.len() - done)?;
        debugger_write_hook(
            gva.wrapping_add(done as u64),
            mapping.gpa,
            bytes.len() as u64,
        );
        // The guest is stopped, so nothing executes or reads these bytes while they change.
        bytes.write(&data[done..]);
        done += bytes.len();
    }
    Ok(())
}

/// Called before every debugger write to guest memory. Writes to pages EPT keeps read-only
/// for the guest (kernel text and read-only data: software breakpoints, patched constants) are
/// allowed, because the person at the debugger owns the machine, and audited (issue 5): an
/// audit record with rule `debugger-write` and access bit DEBUGGER, so the guest and
/// `monitor audit` can tell them from the guest's own blocked attempts, and a log line
/// `gdb: debugger write to protected page ... (audit #N, rule debugger-write)` that is not an
/// `audit #N: blocked` line.
pub fn debugger_write_hook(gva: u64, gpa: u64, len: u64) {
    let permissions = state::EPT
        .try_lock()
        .and_then(|mut ept| ept.as_mut().and_then(|e| e.translate(gpa)))
        .map(|t| t.permissions);
    match permissions {
        Some(p) if !p.writable() => {
            // SAFETY: the stub only writes guest memory inside a VM exit, with the VMCS current.
            let vmcs = unsafe { crate::vmx::vmcs::Vmcs::assume_current() };
            let record = crate::audit::append(crate::audit::Attempt {
                rule: rampart_hv_abi::Rule::DebuggerWrite,
                access: rampart_hv_abi::Access::WRITE | rampart_hv_abi::Access::DEBUGGER,
                rip: vmcs.read(x86::vmx::vmcs::guest::RIP).unwrap_or(0),
                gva,
                gpa,
                detail: len,
            });
            log::info!("gdb: debugger write to protected page: {len} bytes at GVA {gva:#x} (GPA {gpa:#x}, \
                 EPT {p:?}), allowed (audit #{}, rule debugger-write)",
                record.sequence
            );
        }
        _ => log::debug!("gdb: debugger writes {len} bytes at GVA {gva:#x} (GPA {gpa:#x})"),
    }
}
