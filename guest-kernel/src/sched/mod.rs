//! Scheduling: the pure queues here; the process table and context switches use them.

pub mod queue;
