//! Recent paths and their templates, so a path seen again skips the segment split and the
//! pattern and tree walks.
//!
//! Direct-mapped: a path's hash picks one of [`SLOTS`] slots, and a slot keeps one path (the
//! transaction's own `Arc`, so keeping it allocates nothing) with its template (shared with
//! the router). A path is kept at its second miss in a row in its slot, so paths seen once
//! (ids) cost a hash and one written word, and never evict a kept path. Only paths up to
//! [`MAX_PATH`] bytes are kept, so the cache holds at most
//! `SLOTS × (48 B slot + 16 B Arc header + MAX_PATH)` ≈ 0.8 MiB whatever the traffic, ~0.4 MiB
//! with 30-byte paths. 4,096 slots keep ~78 % of 1,000 distinct paths at once (1,024 would keep
//! ~38 %; a miss walks for ~1,000 instructions).
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

/// One slot: the path kept there, and the hash of the last path that missed there.
#[derive(Clone, Debug, Default)]
struct Slot {
    /// A path is kept at its second miss in a row here: a stream of paths seen once (ids)
    /// writes this word per request and never touches, replaces or frees a kept path.
    seen: u64,
    kept: Option<Kept>,
}

#[derive(Clone, Debug)]
struct Kept {
    hash: u64,
    path: Arc<str>,
    template: Arc<str>,
}

/// A look-up that found nothing: what [`RecentRoutes::put`] needs.
pub struct Miss {
    /// `None` for a path too long to keep.
    hash: Option<u64>,
}

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
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
            generation: 0,
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl RecentRoutes {
    /// The template kept for `path`, if its slot holds it and `generation` is the one the
    /// slots were filled in (otherwise the slots are emptied first).
    pub fn get(&mut self, path: &str, generation: u64) -> Result<&Arc<str>, Miss> {
        if generation != self.generation {
            self.clear(generation);
        }
        if path.len() > MAX_PATH {
            return Err(Miss { hash: None });
        }
        let hash = self.hasher.hash_one(path);
        match &self.slots[hash as usize & (SLOTS - 1)].kept {
            // The hash first: the kept path's bytes are read only when it is likely the one.
            Some(k) if k.hash == hash && same(&k.path, path) => Ok(&k.template),
            _ => Err(Miss { hash: Some(hash) }),
        }
    }

    /// Empties every slot; `generation` is the router's from now on.
    pub fn clear(&mut self, generation: u64) {
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
        self.generation = generation;
    }

    /// After a [`get`](Self::get) missed: keeps `template` for `path` if the slot's previous
    /// miss was this path too (replacing what it kept), else remembers this miss. A new
    /// `generation` (a collapse in the walk that gave `template`) empties the slots first.
    pub fn put(&mut self, miss: Miss, path: &Arc<str>, template: &Arc<str>, generation: u64) {
        if generation != self.generation {
            self.clear(generation);
        }
        let Some(hash) = miss.hash else { return };
        let slot = &mut self.slots[hash as usize & (SLOTS - 1)];
        if slot.seen == hash {
            slot.kept = Some(Kept {
                hash,
                path: Arc::clone(path),
                template: Arc::clone(template),
            });
        } else {
            slot.seen = hash;
        }
    }

    /// Slots keeping a path.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.kept.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Equal strings; a connection repeating a path shares its `Arc`, so the address settles most.
fn same(kept: &str, path: &str) -> bool {
    (std::ptr::eq(kept.as_ptr(), path.as_ptr()) && kept.len() == path.len()) || kept == path
}
