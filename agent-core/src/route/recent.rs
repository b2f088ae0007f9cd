//! Recent paths and their templates, so a path seen again skips the segment split and the
//! pattern and tree walks.
//!
//! Direct-mapped: a path's hash picks one of [`SLOTS`] slots, and a slot holds the last path
//! that landed there (the transaction's own `Arc`, so filling a slot allocates nothing) with
//! its template (shared with the router). Only paths up to [`MAX_PATH`] bytes are kept, so
//! the cache holds at most `SLOTS × (32 B slot + 16 B Arc header + MAX_PATH)` ≈ 0.7 MiB
//! whatever the traffic, ~0.3 MiB with 30-byte paths. 4,096 slots keep ~78 % of 1,000 distinct
//! paths at once (1,024 kept ~38 %; a miss walks for ~1,000 instructions).
//!
//! The router fills it only from walks that learn and change no counter, and empties it when
//! a template could change for a known path: a collapse in the learned tree (a new
//! `generation`), loaded state or added patterns.

use std::hash::BuildHasher;
use std::sync::Arc;

/// Slots (a power of two).
pub const SLOTS: usize = 4096;
/// Longer paths are routed without the cache.
pub const MAX_PATH: usize = 128;

/// A path and its template.
type Slot = Option<(Arc<str>, Arc<str>)>;

#[derive(Clone, Debug)]
pub struct RecentRoutes {
    slots: Box<[Slot]>,
    /// What the router's generation was when the slots were filled.
    generation: u64,
    hasher: foldhash::fast::FixedState,
}

impl Default for RecentRoutes {
    fn default() -> Self {
        RecentRoutes {
            slots: vec![None; SLOTS].into_boxed_slice(),
            generation: 0,
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl RecentRoutes {
    fn slot(&self, path: &str) -> usize {
        self.hasher.hash_one(path) as usize & (SLOTS - 1)
    }

    /// The template kept for `path`, if its slot holds it and `generation` is the one the
    /// slots were filled in (otherwise the slots are emptied first).
    pub fn get(&mut self, path: &str, generation: u64) -> Option<Arc<str>> {
        if generation != self.generation {
            self.clear(generation);
            return None;
        }
        if path.len() > MAX_PATH {
            return None;
        }
        match &self.slots[self.slot(path)] {
            // A connection repeating a path shares its Arc: the pointer check settles it.
            Some((p, t)) if same(p, path) => Some(Arc::clone(t)),
            _ => None,
        }
    }

    /// Empties every slot; `generation` is the router's from now on.
    pub fn clear(&mut self, generation: u64) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.generation = generation;
    }

    /// Keeps `template` for `path` (replacing whatever its slot held); a new `generation`
    /// (a collapse in the walk that gave `template`) empties the other slots first.
    pub fn put(&mut self, path: &Arc<str>, template: &Arc<str>, generation: u64) {
        if generation != self.generation {
            self.clear(generation);
        }
        if path.len() <= MAX_PATH {
            let i = self.slot(path);
            self.slots[i] = Some((Arc::clone(path), Arc::clone(template)));
        }
    }

    /// Slots holding a path.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Equal strings; a connection repeating a path shares its `Arc`, so the address settles most.
fn same(kept: &str, path: &str) -> bool {
    (std::ptr::eq(kept.as_ptr(), path.as_ptr()) && kept.len() == path.len()) || kept == path
}
