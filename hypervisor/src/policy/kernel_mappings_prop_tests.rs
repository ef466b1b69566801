//! Issue 12's property: no sequence of guest page-table writes (EPT refuses those to locked
//! pages and registered roots), registrations, root-entry requests, releases and CR3 loads
//! lets a protected linear address reach another page than the one recorded at lock time,
//! from any root a vCPU has loaded or could load.

use super::kernel_mappings::tests::{copy_root, kernel, window, FakeMemory, ROOT, RW};
use super::kernel_mappings::tests::{TEXT_GPA, TEXT_PT, TEXT_VA};
use super::kernel_mappings::*;
use proptest::prelude::*;

const VCPUS: usize = 2;
/// Frames the guest plays with: the kernel's tables (0x100000..) and fresh frames.
const FRAMES: [u64; 11] = [
    ROOT, 0x10_1000, 0x10_2000, TEXT_PT, 0x10_4000, 0x10_5000, 0x10_6000, 0x20_0000, 0x21_0000,
    0x22_0000, 0x23_0000,
];

#[derive(Clone, Debug)]
enum Op {
    /// A guest store of `value` into entry `index` of `frame` (refused if EPT read-only).
    Write {
        frame: usize,
        index: usize,
        value: u64,
    },
    /// The guest copies the kernel half into `frame` (if `copy`: else the frame holds what
    /// earlier writes left, a forged table), then registers it.
    Register {
        frame: usize,
        user: Option<usize>,
        copy: bool,
    },
    SetRootEntry {
        frame: usize,
        index: u64,
        value: u64,
    },
    Release {
        frame: usize,
    },
    LoadCr3 {
        vcpu: usize,
        frame: usize,
        pcid: u64,
    },
}

/// Entry values that matter: pointers at the frames (as tables) with random flags, the
/// protected page's neighbours, and noise.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0..FRAMES.len(), 0u64..0x200).prop_map(|(f, flags)| FRAMES[f] | flags | 1),
        (0u64..16).prop_map(|p| (TEXT_GPA + p * 4096) | RW),
        any::<u64>(),
        Just(0),
    ]
}

/// Entry indexes, biased to the ones on the protected path (PML4 511, PDPT 510, PD 0, PT 0-3).
fn index() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..512, Just(511), Just(510), 0usize..4]
}

fn op() -> impl Strategy<Value = Op> {
    let frame = 0..FRAMES.len();
    prop_oneof![
        4 => (frame.clone(), index(), value())
            .prop_map(|(frame, index, value)| Op::Write { frame, index, value }),
        2 => (frame.clone(), proptest::option::of(frame.clone()), any::<bool>())
            .prop_map(|(frame, user, copy)| Op::Register { frame, user, copy }),
        2 => (frame.clone(), index(), value())
            .prop_map(|(frame, index, value)| Op::SetRootEntry { frame, index: index as u64, value }),
        1 => frame.clone().prop_map(|frame| Op::Release { frame }),
        2 => (0..VCPUS, frame, 0u64..4)
            .prop_map(|(vcpu, frame, pcid)| Op::LoadCr3 { vcpu, frame, pcid }),
    ]
}

struct Model {
    memory: FakeMemory,
    registry: Registry,
    cr3: [u64; VCPUS],
    loaded: [usize; VCPUS],
}

impl Model {
    fn new() -> Self {
        let mut memory = kernel();
        let locked = collect_and_preset(&mut memory, &[ROOT], window()).unwrap();
        memory.read_only.extend(locked.frames());
        let half = kernel_half(&memory, ROOT).unwrap();
        Self {
            memory,
            registry: Registry::new(locked, half, Some(half), ROOT),
            cr3: [ROOT; VCPUS],
            loaded: [0; VCPUS],
        }
    }

    fn guest_write(&mut self, frame: u64, index: usize, value: u64) {
        if !self.memory.read_only.contains(&frame) {
            self.memory.words.insert(frame + index as u64 * 8, value);
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write {
                frame,
                index,
                value,
            } => self.guest_write(FRAMES[frame], index, value),
            Op::Register { frame, user, copy } => {
                let roots = [Some(frame), user].into_iter().flatten();
                for root in roots.map(|f| FRAMES[f]) {
                    if copy && !self.memory.read_only.contains(&root) {
                        for index in 0..KERNEL_HALF_FIRST {
                            self.memory.words.remove(&(root + index as u64 * 8));
                        }
                        copy_root(&mut self.memory, root);
                    }
                }
                let space = Space {
                    kernel_cr3: FRAMES[frame],
                    user_cr3: user.map_or(0, |u| FRAMES[u]),
                };
                if self
                    .registry
                    .register(&self.memory, &|f| self.memory.is_plain_ram(f), space)
                    .is_ok()
                {
                    self.memory.read_only.extend(space.roots());
                }
            }
            Op::SetRootEntry {
                frame,
                index,
                value,
            } => {
                let root = FRAMES[frame];
                if let Ok(space) = self.registry.check_root_entry(
                    &|f| self.memory.is_plain_ram(f),
                    root,
                    index,
                    value,
                ) {
                    for root in space.roots() {
                        self.memory.words.insert(root + index * 8, value);
                    }
                }
            }
            Op::Release { frame } => {
                let loaded = self.loaded;
                if let Ok(space) = self
                    .registry
                    .release(FRAMES[frame], |slot| loaded.contains(&slot))
                {
                    for root in space.roots() {
                        self.memory.read_only.remove(&root);
                    }
                }
            }
            Op::LoadCr3 { vcpu, frame, pcid } => {
                if let Some(slot) = self.registry.cr3_load(FRAMES[frame] | pcid) {
                    self.cr3[vcpu] = FRAMES[frame];
                    self.loaded[vcpu] = slot;
                }
            }
        }
    }

    /// Every root a vCPU has or could load.
    fn roots(&self) -> Vec<u64> {
        let mut roots = self.cr3.to_vec();
        roots.extend(
            FRAMES
                .iter()
                .filter(|&&f| self.registry.cr3_load(f).is_some()),
        );
        roots
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn protected_addresses_keep_their_recorded_translation(ops in prop::collection::vec(op(), 1..60)) {
        let mut model = Model::new();
        let text = Protected { va: TEXT_VA, gpa: TEXT_GPA, length: 4 * 4096 };
        for op in &ops {
            model.apply(op);
            for root in model.roots() {
                prop_assert_eq!(
                    translates_as_recorded(&model.memory, root, &text, false),
                    Ok(()),
                    "root {:#x} after {:?}", root, op
                );
            }
        }
    }
}
