//! Issue 12's property, for per-CPU roots (issue 19): no sequence of guest page-table
//! writes (EPT refuses those to locked pages and roots) and CR3 loads lets a protected linear
//! address reach another page than the one recorded at lock time, from any root a vCPU has
//! loaded or could load. The guest writes anywhere it may: its per-CPU lower-half tables,
//! fresh frames, and every locked page (refused).

use super::kernel_mappings::tests::{kernel, per_cpu_lock, FakeMemory, ROOT, RW};
use super::kernel_mappings::tests::{TEXT_GPA, TEXT_PT, TEXT_VA};
use super::kernel_mappings::*;
use proptest::prelude::*;

const VCPUS: usize = 2;
/// Frames the guest plays with: the kernel's tables (0x100000..), the per-CPU roots
/// (0x200000..), their lower tables (0x300000..) and fresh frames.
const FRAMES: [u64; 16] = [
    ROOT, 0x10_1000, 0x10_2000, TEXT_PT, 0x10_4000, 0x10_5000, 0x10_6000, 0x20_0000, 0x21_0000,
    0x22_0000, 0x23_0000, 0x30_0000, 0x30_1000, 0x30_2000, 0x40_0000, 0x41_0000,
];

#[derive(Clone, Debug)]
enum Op {
    /// A guest store of `value` into entry `index` of `frame` (refused if EPT read-only).
    Write {
        frame: usize,
        index: usize,
        value: u64,
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
        6 => (frame.clone(), index(), value())
            .prop_map(|(frame, index, value)| Op::Write { frame, index, value }),
        2 => (0..VCPUS, frame, 0u64..4)
            .prop_map(|(vcpu, frame, pcid)| Op::LoadCr3 { vcpu, frame, pcid }),
    ]
}

struct Model {
    memory: FakeMemory,
    lock: LockedRoots,
    cr3: [u64; VCPUS],
}

impl Model {
    fn new() -> Self {
        let mut memory = kernel();
        let lock = per_cpu_lock(&mut memory);
        Self {
            memory,
            lock,
            cr3: [0x20_0000, 0x21_0000],
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write {
                frame,
                index,
                value,
            } => {
                let frame = FRAMES[frame];
                if !self.memory.read_only.contains(&frame) {
                    self.memory.words.insert(frame + index as u64 * 8, value);
                }
            }
            Op::LoadCr3 { vcpu, frame, pcid } => {
                if self.lock.may_load(vcpu, FRAMES[frame] | pcid) {
                    self.cr3[vcpu] = FRAMES[frame];
                }
            }
        }
    }

    /// Every root a vCPU has or could load.
    fn roots(&self) -> Vec<u64> {
        let mut roots = self.cr3.to_vec();
        for vcpu in 0..VCPUS {
            roots.extend(FRAMES.iter().filter(|&&f| self.lock.may_load(vcpu, f)));
        }
        roots
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn protected_addresses_keep_their_recorded_translation(ops in prop::collection::vec(op(), 1..80)) {
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
