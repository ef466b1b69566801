//! Process roots whose release the hypervisor answered `Busy` (under `pagetables = locked` a
//! root still loaded on some vCPU cannot be unregistered, and a registered root is read-only in
//! EPT, so it must not go back to the frame allocator): kept here, never freed, and retried
//! later (the next spawn or exit, and the idle loop) until the release goes through. Pure: the
//! release and the free are the caller's closures.

/// Roots kept at most (a root is Busy only until the vCPU that last ran it switches away).
pub const CAPACITY: usize = 32;

/// What the hypervisor answered to a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Unregistered: the frame may be freed.
    Released,
    /// Still loaded somewhere: try again later.
    Busy,
    /// Any other error: the frame can never be freed safely (the caller reports it).
    Refused,
}

/// The kept roots.
#[derive(Debug)]
pub struct DeferredRoots {
    roots: [u64; CAPACITY],
    /// Each root's KPTI user-mode root (0: none): released with it, freed with it.
    partners: [u64; CAPACITY],
    count: usize,
}

impl DeferredRoots {
    pub const fn new() -> Self {
        Self {
            roots: [0; CAPACITY],
            partners: [0; CAPACITY],
            count: 0,
        }
    }

    /// Roots kept now.
    pub fn len(&self) -> usize {
        self.count
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Keeps `root` (and its KPTI `partner`, 0 for none) for a later retry; `false` if the
    /// list is full (the caller leaks it).
    pub fn push(&mut self, root: u64, partner: u64) -> bool {
        if self.roots[..self.count].contains(&root) {
            return true;
        }
        if self.count == CAPACITY {
            return false;
        }
        self.roots[self.count] = root;
        self.partners[self.count] = partner;
        self.count += 1;
        true
    }

    /// Tries to release every kept root: `free` gets each one `release` answers `Released`
    /// for; `Busy` ones stay; `Refused` ones are dropped (never freed). Returns how many were
    /// freed.
    pub fn retry(
        &mut self,
        mut release: impl FnMut(u64) -> Release,
        mut free: impl FnMut(u64),
    ) -> usize {
        let mut freed = 0;
        let mut kept = 0;
        for i in 0..self.count {
            let (root, partner) = (self.roots[i], self.partners[i]);
            match release(root) {
                Release::Released => {
                    free(root);
                    if partner != 0 {
                        free(partner);
                    }
                    freed += 1;
                }
                Release::Busy => {
                    self.roots[kept] = root;
                    self.partners[kept] = partner;
                    kept += 1;
                }
                Release::Refused => {}
            }
        }
        self.count = kept;
        freed
    }
}

impl Default for DeferredRoots {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn busy_roots_stay_until_released_and_are_freed_once() {
        let mut list = DeferredRoots::new();
        assert!(list.push(0x1000, 0x1800) && list.push(0x2000, 0) && list.push(0x3000, 0));
        assert!(
            list.push(0x2000, 0),
            "a root already kept is not kept twice"
        );
        assert_eq!(list.len(), 3);
        let mut freed = Vec::new();
        // 0x1000 still busy, 0x2000 released, 0x3000 refused (dropped, never freed).
        let answer = |root| match root {
            0x1000 => Release::Busy,
            0x2000 => Release::Released,
            _ => Release::Refused,
        };
        assert_eq!(list.retry(answer, |r| freed.push(r)), 1);
        assert_eq!(freed, [0x2000]);
        assert_eq!(list.len(), 1);
        assert_eq!(list.retry(|_| Release::Released, |r| freed.push(r)), 1);
        assert_eq!(
            freed,
            [0x2000, 0x1000, 0x1800],
            "the partner goes with its root"
        );
        assert!(list.is_empty());
        assert_eq!(list.retry(|_| unreachable!(), |_| unreachable!()), 0);
    }

    #[test]
    fn a_full_list_refuses() {
        let mut list = DeferredRoots::new();
        for i in 0..CAPACITY as u64 {
            assert!(list.push((i + 1) << 12, 0));
        }
        assert!(!list.push(0xdead_0000, 0));
        assert_eq!(list.len(), CAPACITY);
    }
}
