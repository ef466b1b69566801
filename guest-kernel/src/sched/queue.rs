//! The scheduler's queues (pure): a round-robin ready queue and a sleep queue ordered by wake
//! tick. Process ids only; the process table lives in `process`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

pub type Pid = u64;

/// Round-robin ready queue: run the front, requeue at the back.
#[derive(Default)]
pub struct ReadyQueue {
    queue: VecDeque<Pid>,
}

impl ReadyQueue {
    pub const fn new() -> Self {
        Self {
            queue: VecDeque::new(),
        }
    }

    /// Makes `pid` runnable (once: a pid already queued is not added twice).
    pub fn push(&mut self, pid: Pid) {
        if !self.queue.contains(&pid) {
            self.queue.push_back(pid);
        }
    }

    /// The next process to run.
    pub fn pop(&mut self) -> Option<Pid> {
        self.queue.pop_front()
    }

    pub fn remove(&mut self, pid: Pid) {
        self.queue.retain(|&p| p != pid);
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Sleepers sorted by wake tick (ties in arrival order).
#[derive(Default)]
pub struct SleepQueue {
    sleepers: Vec<(u64, Pid)>,
}

impl SleepQueue {
    pub const fn new() -> Self {
        Self {
            sleepers: Vec::new(),
        }
    }

    /// `pid` sleeps until tick `wake`.
    pub fn insert(&mut self, wake: u64, pid: Pid) {
        let at = self.sleepers.partition_point(|&(w, _)| w <= wake);
        self.sleepers.insert(at, (wake, pid));
    }

    /// Removes and returns (in wake order) every sleeper due at tick `now`.
    pub fn wake_due(&mut self, now: u64) -> impl Iterator<Item = Pid> + '_ {
        let due = self.sleepers.partition_point(|&(w, _)| w <= now);
        self.sleepers.drain(..due).map(|(_, pid)| pid)
    }

    pub fn remove(&mut self, pid: Pid) {
        self.sleepers.retain(|&(_, p)| p != pid);
    }
}

/// Ticks to sleep for `milliseconds` at `hz`, rounded up, at least one tick for a non-zero time.
pub fn ticks_for(milliseconds: u64, hz: u64) -> u64 {
    milliseconds.saturating_mul(hz).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_queue_is_round_robin_without_duplicates() {
        let mut queue = ReadyQueue::new();
        for pid in [1, 2, 3, 2] {
            queue.push(pid);
        }
        let first = queue.pop().unwrap();
        queue.push(first);
        queue.remove(2);
        assert_eq!(
            [queue.pop(), queue.pop(), queue.pop()],
            [Some(3), Some(1), None]
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn sleepers_wake_in_order_when_due() {
        let mut sleep = SleepQueue::new();
        sleep.insert(30, 1);
        sleep.insert(10, 2);
        sleep.insert(30, 3);
        sleep.insert(20, 4);
        sleep.remove(4);
        assert_eq!(sleep.wake_due(9).count(), 0);
        assert_eq!(sleep.wake_due(10).collect::<Vec<_>>(), [2]);
        assert_eq!(sleep.wake_due(100).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn sleep_time_rounds_up_to_ticks() {
        assert_eq!(ticks_for(0, 100), 0);
        assert_eq!(ticks_for(1, 100), 1);
        assert_eq!(ticks_for(100, 100), 10);
        assert_eq!(ticks_for(15, 250), 4);
    }
}
