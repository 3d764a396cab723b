//! The frame ledger: which of the socket's four owners holds each UMEM frame, and the free list.
//!
//! This is the bookkeeping behind the crate's frame-ownership invariant (see the crate docs).
//! Every move of a frame between owners goes through [`FramePool`], which refuses a move whose
//! `from` is not the frame's current owner. The socket relies on that refusal for soundness: it
//! only lends out bytes of a frame the ledger says the application holds, so a descriptor the
//! kernel hands back twice, or one that was never lent to it, is dropped instead of aliased.

/// Who holds a frame, from user space's point of view.
///
/// The kernel's stages are folded into two owners because user space cannot tell them apart:
/// `Fill` is "fill ring, kernel RX path or RX ring", `Tx` is "TX batch, TX ring, kernel TX path
/// or completion ring".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum Owner {
    /// On the free list.
    Free = 0,
    /// Lent to the kernel for receiving; comes back through the RX ring.
    Fill = 1,
    /// Held by the application through a [`Frame`](crate::Frame).
    App = 2,
    /// Queued for or in transmission; comes back through the completion ring.
    Tx = 3,
}

/// A move the ledger refused: `idx` is not held by `expected` (or is no frame at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Misowned {
    pub(crate) idx: u32,
    pub(crate) expected: Owner,
    /// The actual owner, `None` when `idx` is out of range.
    pub(crate) actual: Option<Owner>,
}

/// Owner of every frame, plus the free list (a LIFO stack, so recently used and cache-warm
/// frames go out first).
///
/// Invariants, checked by the property test against a map-based oracle:
/// * `free` holds exactly the frames whose owner is `Free`, each once;
/// * `count[o]` is the number of frames owned by `o`, and the counts sum to `len()`.
#[derive(Clone)]
pub(crate) struct FramePool {
    owner: Box<[Owner]>,
    free: Vec<u32>,
    count: [u32; 4],
}

impl std::fmt::Debug for FramePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramePool")
            .field("frames", &self.owner.len())
            .field("free", &self.count[Owner::Free as usize])
            .field("fill", &self.count[Owner::Fill as usize])
            .field("app", &self.count[Owner::App as usize])
            .field("tx", &self.count[Owner::Tx as usize])
            .finish()
    }
}

impl FramePool {
    /// `frames` frames, all free.
    pub(crate) fn new(frames: u32) -> Self {
        FramePool {
            owner: vec![Owner::Free; frames as usize].into_boxed_slice(),
            // Reversed so frame 0 is handed out first: easier to read in a debugger.
            free: (0..frames).rev().collect(),
            count: [frames, 0, 0, 0],
        }
    }

    /// Number of frames.
    pub(crate) fn len(&self) -> u32 {
        self.owner.len() as u32
    }

    /// Frames held by `owner`.
    pub(crate) fn count(&self, owner: Owner) -> u32 {
        self.count[owner as usize]
    }

    /// The owner of frame `idx`, `None` if there is no such frame.
    pub(crate) fn owner(&self, idx: u32) -> Option<Owner> {
        self.owner.get(idx as usize).copied()
    }

    /// Takes a frame off the free list and gives it to `to` (which is not `Free`).
    pub(crate) fn take_free(&mut self, to: Owner) -> Option<u32> {
        debug_assert_ne!(to, Owner::Free);
        let idx = self.free.pop()?;
        let slot = &mut self.owner[idx as usize];
        debug_assert_eq!(
            *slot,
            Owner::Free,
            "frame {idx} on the free list but not free"
        );
        *slot = to;
        self.count[Owner::Free as usize] -= 1;
        self.count[to as usize] += 1;
        Some(idx)
    }

    /// Moves frame `idx` from `from` to `to`, neither of which is `Free` (use
    /// [`take_free`](Self::take_free) and [`give_back`](Self::give_back) for those).
    pub(crate) fn hand_over(&mut self, idx: u32, from: Owner, to: Owner) -> Result<(), Misowned> {
        debug_assert!(from != Owner::Free && to != Owner::Free);
        self.check(idx, from)?;
        self.owner[idx as usize] = to;
        self.count[from as usize] -= 1;
        self.count[to as usize] += 1;
        Ok(())
    }

    /// Returns frame `idx`, held by `from` (not `Free`), to the free list.
    pub(crate) fn give_back(&mut self, idx: u32, from: Owner) -> Result<(), Misowned> {
        debug_assert_ne!(from, Owner::Free);
        self.check(idx, from)?;
        self.owner[idx as usize] = Owner::Free;
        self.count[from as usize] -= 1;
        self.count[Owner::Free as usize] += 1;
        self.free.push(idx);
        Ok(())
    }

    fn check(&self, idx: u32, expected: Owner) -> Result<(), Misowned> {
        match self.owner(idx) {
            Some(actual) if actual == expected => Ok(()),
            actual => Err(Misowned {
                idx,
                expected,
                actual,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    const OWNERS: [Owner; 4] = [Owner::Free, Owner::Fill, Owner::App, Owner::Tx];

    #[derive(Debug, Clone)]
    enum Op {
        Take(Owner),
        HandOver(u32, Owner, Owner),
        GiveBack(u32, Owner),
    }

    fn busy_owner() -> impl Strategy<Value = Owner> {
        prop::sample::select(vec![Owner::Fill, Owner::App, Owner::Tx])
    }

    fn op(frames: u32) -> impl Strategy<Value = Op> {
        // Indices go a little past the end so out-of-range moves are exercised too.
        let idx = 0..frames + 3;
        prop_oneof![
            busy_owner().prop_map(Op::Take),
            (idx.clone(), busy_owner(), busy_owner()).prop_map(|(i, f, t)| Op::HandOver(i, f, t)),
            (idx, busy_owner()).prop_map(|(i, f)| Op::GiveBack(i, f)),
        ]
    }

    fn check_against(pool: &FramePool, oracle: &BTreeMap<u32, Owner>) {
        // None lost: every frame has exactly one owner, and the counts agree with the oracle.
        assert_eq!(oracle.len() as u32, pool.len());
        for o in OWNERS {
            let n = oracle.values().filter(|&&v| v == o).count() as u32;
            assert_eq!(pool.count(o), n, "count of {o:?}");
        }
        assert_eq!(
            OWNERS.iter().map(|&o| pool.count(o)).sum::<u32>(),
            pool.len()
        );
        for (&idx, &o) in oracle {
            assert_eq!(pool.owner(idx), Some(o), "owner of frame {idx}");
        }
        // The free list holds exactly the free frames, each once.
        let free: BTreeSet<u32> = pool.free.iter().copied().collect();
        assert_eq!(
            free.len(),
            pool.free.len(),
            "a frame is on the free list twice"
        );
        let expected: BTreeSet<u32> = oracle
            .iter()
            .filter(|(_, &o)| o == Owner::Free)
            .map(|(&i, _)| i)
            .collect();
        assert_eq!(free, expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Against a map from frame to owner: a frame is never handed out twice (`take_free` only
        /// returns frames the oracle has as free), moves from the wrong owner are refused and
        /// change nothing, and no frame is ever lost.
        #[test]
        fn ledger_matches_oracle(frames in 1u32..48, ops in prop::collection::vec(op(48), 0..400)) {
            let mut pool = FramePool::new(frames);
            let mut oracle: BTreeMap<u32, Owner> = (0..frames).map(|i| (i, Owner::Free)).collect();
            for op in ops {
                match op {
                    Op::Take(to) => match pool.take_free(to) {
                        Some(idx) => {
                            let was = oracle.insert(idx, to);
                            prop_assert_eq!(was, Some(Owner::Free), "frame {} handed out twice", idx);
                        }
                        None => prop_assert!(oracle.values().all(|&o| o != Owner::Free)),
                    },
                    Op::HandOver(idx, from, to) => {
                        let legal = oracle.get(&idx) == Some(&from);
                        let got = pool.hand_over(idx, from, to);
                        prop_assert_eq!(got.is_ok(), legal);
                        if legal {
                            oracle.insert(idx, to);
                        } else {
                            let e = got.unwrap_err();
                            prop_assert_eq!(e.actual, oracle.get(&idx).copied());
                        }
                    }
                    Op::GiveBack(idx, from) => {
                        let legal = oracle.get(&idx) == Some(&from);
                        prop_assert_eq!(pool.give_back(idx, from).is_ok(), legal);
                        if legal {
                            oracle.insert(idx, Owner::Free);
                        }
                    }
                }
                check_against(&pool, &oracle);
            }
        }
    }

    #[test]
    fn free_frames_go_out_lifo() {
        let mut pool = FramePool::new(4);
        assert_eq!(pool.take_free(Owner::Fill), Some(0));
        assert_eq!(pool.take_free(Owner::App), Some(1));
        pool.give_back(0, Owner::Fill).unwrap();
        assert_eq!(pool.take_free(Owner::Tx), Some(0));
        assert_eq!(
            pool.give_back(0, Owner::Fill),
            Err(Misowned {
                idx: 0,
                expected: Owner::Fill,
                actual: Some(Owner::Tx)
            })
        );
        assert_eq!(pool.give_back(9, Owner::Tx).unwrap_err().actual, None);
    }
}
