//! Creating a process from an initrd program: address space, segments, user stack with the
//! argument string, kernel stack, and the first entry into ring 3.

use super::schedule::allocate_kernel_stack;
use super::{text_cache, NewProcess, TABLE};
use crate::arch::phys::{self, Frames};
use crate::arch::{cpu_roots, hypercall, switch};
use crate::console::kprintln;
use crate::loader::elf::{self, Program};
use crate::mm::address_space::{self, OutOfMemory, PhysMemory};
use crate::mm::layout::{USER_STACK_SIZE, USER_STACK_TOP};
use crate::mm::page_table::{self, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE};
use rampart_kernel_abi::initrd::Initrd;
use rampart_kernel_abi::syscall::{Errno, MAX_NAME};

/// The initrd's bytes, if the firmware passed one.
static INITRD: spin::Once<&'static [u8]> = spin::Once::new();

/// Records the initrd (called once at boot).
pub fn set_initrd(bytes: &'static [u8]) {
    INITRD.call_once(|| bytes);
}

/// Calls `visit(name, description)` for each program in the initrd (files that are not valid
/// programs are left out), in archive order.
pub fn programs(mut visit: impl FnMut(&str, &str)) {
    let bytes = INITRD.get().copied().unwrap_or(&[]);
    let Ok(archive) = Initrd::parse(bytes) else {
        return;
    };
    for file in archive.files() {
        if let Ok(program) = elf::parse(file.data) {
            visit(
                file.name,
                elf::description(file.data, &program).unwrap_or(""),
            );
        }
    }
}

/// Starts program `name` from the initrd with argument string `args`, as a child of `parent`.
pub fn spawn(name: &str, args: &[u8], parent: u64) -> Result<u64, Errno> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Errno::NoEntry);
    }
    let bytes = INITRD.get().copied().unwrap_or(&[]);
    let archive = Initrd::parse(bytes).map_err(|_| Errno::NoEntry)?;
    let file = archive.find(name).ok_or(Errno::NoEntry)?;
    let program = elf::parse(file.data)?;

    // The private root: lower half only (no CPU loads it; a CPU running the process copies its
    // directory entries into its own tables, `arch::cpu_roots`). No hypercall.
    let mut frames = Frames;
    let root =
        address_space::new_root(&mut frames, &[0; page_table::ENTRIES]).ok_or(Errno::NoMemory)?;
    let source = Source {
        archive: bytes,
        file_offset: file.offset as u64,
        file: file.data,
    };
    let args_address = match load(&mut frames, root, &program, &source, args) {
        Ok(address) => address,
        Err(OutOfMemory) => {
            discard(&mut frames, root);
            return Err(Errno::NoMemory);
        }
    };
    if let Err(errno) = grant_text(&mut frames, root, &program, &source) {
        discard(&mut frames, root);
        return Err(errno);
    }

    let mut table = TABLE.lock();
    let Some((slot, kernel_top)) = allocate_kernel_stack(&mut table) else {
        discard(&mut frames, root);
        return Err(Errno::NoMemory);
    };
    let rsp = args_address & !0xf;
    let saved_rsp = switch::prepare_user_stack(
        kernel_top,
        program.entry,
        rsp,
        args_address,
        args.len() as u64,
    );
    Ok(table.add_ready(NewProcess {
        parent,
        name,
        root,
        used: cpu_roots::used_by(root),
        kernel_stack: (slot, kernel_top),
        saved_rsp,
        brk: program.brk_start(),
    }))
}

/// Where a program comes from: the initrd archive and the file's place in it.
struct Source<'a> {
    archive: &'a [u8],
    file_offset: u64,
    file: &'a [u8],
}

/// Under Rampart, user pages are not executable in EPT until the hypervisor has checked that
/// they hold the measured initrd bytes (`GrantExecute`; hypervisor/DESIGN.md invariant 3). Text
/// pages are copies of the initrd's bytes for exactly that reason (see `load`): whole pages, and
/// the last page up to the segment's file end with zeros after it (a grant may end short of a page
/// only there, so no prefix of a text page becomes executable). A read-only text page
/// some earlier process already had granted is shared instead (`text_cache`): the fresh copy
/// is dropped and the cached frame mapped, with no VMCALL.
/// Frees an address space that never ran.
fn discard(frames: &mut Frames, root: u64) {
    address_space::destroy(frames, root);
}

fn grant_text(
    frames: &mut Frames,
    root: u64,
    program: &Program,
    source: &Source,
) -> Result<(), Errno> {
    let rampart = hypercall::rampart();
    for segment in program.segments().iter().filter(|s| s.executable) {
        for page in address_space::pages(segment.vaddr, segment.vaddr + segment.memsz) {
            let entry = address_space::leaf(frames, root, page).ok_or(Errno::NoMemory)?;
            let frame = page_table::entry_address(entry);
            let (offset, length) = text_page(segment, page, source);
            // A page shared with a writable segment stays private to this process.
            let shareable = entry & WRITABLE == 0;
            match text_cache::lookup(offset).filter(|_| shareable) {
                Some(cached) if cached == frame => continue,
                Some(cached) => {
                    let flags = entry & !page_table::ADDRESS_MASK;
                    address_space::map(frames, root, page, cached, flags)
                        .map_err(|_| Errno::NoMemory)?;
                    // The fresh copy was never granted: plain free.
                    frames.free(frame);
                    continue;
                }
                None => {}
            }
            if let Some(rampart) = &rampart {
                let result = rampart.grant_execute(frame, length, offset);
                if result != 0 {
                    kprintln!(
                        "GrantExecute of {page:#x} (initrd offset {offset:#x}) refused: {result}"
                    );
                    return Err(Errno::NotExecutable);
                }
            }
            if shareable {
                text_cache::insert(offset, frame);
            }
        }
    }
    Ok(())
}

/// File offset of the page-aligned file page that `page` of executable `segment` maps (the
/// ELF guarantees `vaddr ≡ offset` modulo the page size).
fn text_page_offset(segment: &elf::Segment, page: u64) -> u64 {
    (segment.offset & !(PAGE_SIZE - 1)) + (page - (segment.vaddr & !(PAGE_SIZE - 1)))
}

/// The initrd offset and length of the text bytes that `page` of executable `segment` holds:
/// a whole page, or up to the segment's file end on its last page (0 bytes past it).
fn text_page(segment: &elf::Segment, page: u64, source: &Source) -> (u64, u64) {
    let offset = source.file_offset + text_page_offset(segment, page);
    let file_end = source.file_offset + segment.offset + segment.filesz;
    (offset, file_end.saturating_sub(offset).min(PAGE_SIZE))
}

/// Maps the segments and the stack; returns the user address of the argument string.
fn load(
    frames: &mut Frames,
    root: u64,
    program: &Program,
    source: &Source,
    args: &[u8],
) -> Result<u64, OutOfMemory> {
    let file = source.file;
    for segment in program.segments() {
        let mut flags = PRESENT | USER;
        if segment.writable {
            flags |= WRITABLE;
        }
        if !segment.executable {
            flags |= NO_EXECUTE;
        }
        let data_end = segment.vaddr + segment.filesz;
        for page in address_space::pages(segment.vaddr, segment.vaddr + segment.memsz) {
            let (frame, flags) = match address_space::leaf(frames, root, page) {
                // Two segments share this page: keep the union of their rights.
                Some(existing) => {
                    let nx = existing & flags & NO_EXECUTE;
                    let merged = ((existing | flags) & !NO_EXECUTE) | nx;
                    (
                        page_table::entry_address(existing),
                        merged & !page_table::ADDRESS_MASK,
                    )
                }
                None => (frames.allocate().ok_or(OutOfMemory)?, flags),
            };
            let start = page.max(segment.vaddr);
            let end = (page + PAGE_SIZE).min(data_end);
            if segment.executable {
                // The page's text bytes as they are in the initrd (what GrantExecute compares
                // against), zeros after the segment's end (the frame comes zeroed).
                let (offset, length) = text_page(segment, page, source);
                let from = offset as usize;
                let to = (from + length as usize).min(source.archive.len());
                phys::write_bytes(frame, &source.archive[from.min(to)..to]);
            } else if start < end {
                let from = (segment.offset + (start - segment.vaddr)) as usize;
                phys::write_bytes(
                    frame + (start - page),
                    &file[from..from + (end - start) as usize],
                );
            }
            address_space::map(frames, root, page, frame, flags)?;
        }
    }
    let stack_flags = PRESENT | USER | WRITABLE | NO_EXECUTE;
    let mut top_frame = 0;
    for page in address_space::pages(USER_STACK_TOP - USER_STACK_SIZE, USER_STACK_TOP) {
        let frame = frames.allocate().ok_or(OutOfMemory)?;
        address_space::map(frames, root, page, frame, stack_flags)?;
        top_frame = frame;
    }
    // The argument string sits at the top of the stack, 16-byte aligned (at most MAX_ARGS bytes,
    // so it fits in the top page); RSP starts right below it.
    let args_address = (USER_STACK_TOP - args.len() as u64 - 1) & !0xf;
    phys::write_bytes(top_frame + (args_address % PAGE_SIZE), args);
    Ok(args_address)
}
