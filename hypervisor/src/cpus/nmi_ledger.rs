//! Which NMI is the hypervisor's (pure). The hypervisor sends NMIs to carry shootdowns, vCPU
//! starts and the stop; the guest may receive NMIs of its own (the platform's), which must
//! reach it. A per-CPU flag ("an NMI of ours is on its way") is not enough: two senders set
//! it once, send two NMIs, and the second, taken after the first cleared the flag, would be
//! injected into the guest (which treats NMIs as fatal).
//!
//! The ledger counts instead: each sender adds one before it sends, and each NMI the CPU takes
//! while the count is above zero is the hypervisor's and takes one off. An NMI taken at zero
//! is the guest's. So no NMI the hypervisor sent is ever taken for the guest's: at any time the
//! NMIs classified as the guest's are at most the NMIs that did not come from the hypervisor.
//! The price: NMIs coalesce (one can wait while the CPU blocks NMIs, SDM Vol. 3A 11.5.1), and
//! when one of ours merges with another, the count stays one too high until a later NMI,
//! which is then taken for ours: a guest NMI may be lost, as natively when NMIs coalesce,
//! but never a hypervisor NMI delivered to the guest.

use core::sync::atomic::{AtomicU32, Ordering};

/// NMIs the hypervisor sent to one CPU that it has not yet taken.
pub struct NmiLedger {
    outstanding: AtomicU32,
}

impl NmiLedger {
    pub const fn new() -> Self {
        Self {
            outstanding: AtomicU32::new(0),
        }
    }

    /// Records an NMI about to be sent: call before sending it.
    pub fn note_sent(&self) {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
    }

    /// Classifies an NMI this CPU takes: true if it is the hypervisor's (and counts it taken).
    pub fn take(&self) -> bool {
        self.outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl Default for NmiLedger {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicBool;

    /// One send protocol: how a sender marks an NMI, how the target classifies one it takes.
    trait Protocol: Default {
        fn note_sent(&self);
        fn take(&self) -> bool;
    }

    impl Protocol for NmiLedger {
        fn note_sent(&self) {
            NmiLedger::note_sent(self)
        }
        fn take(&self) -> bool {
            NmiLedger::take(self)
        }
    }

    /// The protocol before the ledger: one flag per CPU.
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Protocol for Flag {
        fn note_sent(&self) {
            self.0.store(true, Ordering::SeqCst)
        }
        fn take(&self) -> bool {
            self.0.swap(false, Ordering::SeqCst)
        }
    }

    /// The world of one interleaving: each hypervisor sender notes, then sends; the guest's
    /// source sends without noting; NMIs in flight reach the target one at a time, and two
    /// in flight may coalesce into one (SDM Vol. 3A 11.5.1).
    #[derive(Clone, Copy, Debug, Default)]
    struct World {
        /// Per hypervisor sender: 0 = nothing done, 1 = noted, 2 = sent.
        senders: [u8; 3],
        guest_sent: bool,
        in_flight: u8,
        coalesced: u8,
        taken_as_guest: u8,
    }

    /// Explores every interleaving of `hypervisor_senders` senders, an optional guest NMI,
    /// deliveries and coalescing; returns the worst count of NMIs taken as the guest's beyond
    /// the guest NMIs sent.
    fn worst_excess<P: Protocol>(hypervisor_senders: usize, guest: bool, coalescing: bool) -> i32 {
        let mut worst = i32::MIN;
        let (start, mut replay) = (World::default(), Vec::new());
        explore::<P>(
            start,
            &mut replay,
            hypervisor_senders,
            guest,
            coalescing,
            &mut worst,
        );
        worst
    }

    /// One step of the search from `world` (reached by the steps in `replay`): records the
    /// excess so far, then tries every step possible next.
    fn explore<P: Protocol>(
        world: World,
        replay: &mut Vec<u8>,
        n: usize,
        guest: bool,
        coalescing: bool,
        worst: &mut i32,
    ) {
        // Re-run the steps on a fresh protocol state (atomics are not Clone).
        let excess = {
            let protocol = P::default();
            let mut w = World::default();
            for &step in replay.iter() {
                apply(&protocol, &mut w, step);
            }
            i32::from(w.taken_as_guest) - i32::from(w.guest_sent)
        };
        *worst = (*worst).max(excess);
        let mut steps = Vec::new();
        for i in 0..n {
            if world.senders[i] < 2 {
                steps.push(i as u8);
            }
        }
        if guest && !world.guest_sent {
            steps.push(10);
        }
        if world.in_flight > 0 {
            steps.push(11);
        }
        if coalescing && world.in_flight > 1 {
            steps.push(12);
        }
        for step in steps {
            let mut next = world;
            apply_world(&mut next, step);
            replay.push(step);
            explore::<P>(next, replay, n, guest, coalescing, worst);
            replay.pop();
        }
    }

    /// A step's effect on the model: a sender noting (1) then sending (2), the guest's NMI
    /// (10), a delivery (11), two in-flight NMIs coalescing into one (12).
    fn apply_world(w: &mut World, step: u8) {
        match step {
            0..=2 => {
                let s = &mut w.senders[step as usize];
                *s += 1;
                if *s == 2 {
                    w.in_flight += 1;
                }
            }
            10 => {
                w.guest_sent = true;
                w.in_flight += 1;
            }
            11 => w.in_flight -= 1,
            _ => {
                w.in_flight -= 1;
                w.coalesced += 1;
            }
        }
    }

    /// A step on the protocol under test and on the model.
    fn apply<P: Protocol>(protocol: &P, w: &mut World, step: u8) {
        match step {
            0..=2 if w.senders[step as usize] == 0 => protocol.note_sent(),
            11 if !protocol.take() => w.taken_as_guest += 1,
            _ => {}
        }
        apply_world(w, step);
    }

    #[test]
    fn no_hypervisor_nmi_is_ever_taken_for_the_guests() {
        for senders in 1..=3 {
            for guest in [false, true] {
                for coalescing in [false, true] {
                    assert!(
                        worst_excess::<NmiLedger>(senders, guest, coalescing) <= 0,
                        "{senders} senders, guest NMI {guest}, coalescing {coalescing}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_flag_it_replaces_injects_the_second_senders_nmi() {
        assert_eq!(worst_excess::<Flag>(1, true, true), 0, "one sender is fine");
        assert!(
            worst_excess::<Flag>(2, false, false) > 0,
            "two senders are not"
        );
    }

    #[test]
    fn a_guest_nmi_after_ours_reaches_the_guest() {
        let ledger = NmiLedger::new();
        ledger.note_sent();
        assert!(ledger.take(), "ours");
        assert!(!ledger.take(), "the guest's");
        ledger.note_sent();
        ledger.note_sent();
        assert!(ledger.take() && ledger.take() && !ledger.take());
    }
}
