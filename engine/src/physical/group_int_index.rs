//! The group table's index of one integer key (or a word of several narrow keys): open
//! addressing over 8-byte slots, so a lookup costs one cache line.

use crate::physical::hash::prefetch;

/// How many rows ahead grouping prefetches a row's chain (and twice that, its bucket), so
/// the cache misses of a big group table overlap.
pub(crate) const PREFETCH_AHEAD: usize = 8;

/// Open-addressed index of one integer key. A slot is 8 bytes: the group id and the top
/// 32 bits of the key's hash (its tag), so a lookup reads one slot per probe and the
/// stored key (`values[g]`) only when the tag matches; a new key costs one cache line
/// where the group table's chained buckets read three (bucket, stored hash, stored
/// key). Linear probing, at most half full: about as much memory per group as the
/// chained index.
/// A key's home slot is its hash's top bits, which the tag holds: growing the table
/// re-places each slot without reading its key, in nearly sequential order.
pub(crate) struct IntIndex {
    /// `tag << 32 | group`; [`EMPTY`] marks a free slot.
    slots: Vec<u64>,
    shift: u32,
    len: usize,
}

const EMPTY: u64 = u64::MAX;
/// The tag half of a slot.
const TAG: u64 = !(u32::MAX as u64);

impl IntIndex {
    /// An empty index of 1024 slots.
    pub(crate) fn new() -> Self {
        Self {
            slots: vec![EMPTY; 1 << 10],
            shift: 64 - 10,
            len: 0,
        }
    }

    /// The slot where a lookup of `v` starts, and `v`'s tag (in a slot's upper half).
    #[inline]
    fn home(&self, v: i64) -> (usize, u64) {
        let h = (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h >> self.shift) as usize, h & TAG)
    }

    /// Prefetches the slot where a lookup of `v` starts; a hint only.
    #[inline]
    pub(crate) fn prefetch(&self, v: i64) {
        prefetch(&self.slots[self.home(v).0]);
    }

    /// The group of key `v`; a new key becomes the next group and is pushed onto
    /// `values` (each group's key, by id).
    #[inline(always)]
    pub(crate) fn find_or_insert(&mut self, v: i64, values: &mut Vec<i64>) -> u32 {
        let mask = self.slots.len() - 1;
        let (mut i, tag) = self.home(v);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                let g = values.len() as u32;
                values.push(v);
                self.slots[i] = tag | u64::from(g);
                self.len += 1;
                if self.len * 2 > self.slots.len() {
                    self.grow(values);
                }
                return g;
            }
            if s & TAG == tag && values[(s as u32) as usize] == v {
                return s as u32;
            }
            i = (i + 1) & mask;
        }
    }

    /// Doubles the slots. Up to 2^32 slots a slot's tag holds all of its home's bits;
    /// past that the key is read from `values`.
    pub(crate) fn grow(&mut self, values: &[i64]) {
        self.shift -= 1;
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; 1 << (64 - self.shift)]);
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            let mut i = if self.shift >= 32 {
                (s >> self.shift) as usize
            } else {
                self.home(values[(s as u32) as usize]).0
            };
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    /// The number of slots (twice the groups, at most).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Bytes the slots take.
    pub(crate) fn memory_size(&self) -> usize {
        self.slots.len() * 8
    }

    /// Empties the index, keeping its size.
    pub(crate) fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.len = 0;
    }

    /// Pushes onto `out` the group of each key in `v`, adding new keys to `values`;
    /// `null(i)` gives row `i`'s group when its key is NULL (`v[i]` is then ignored).
    pub(crate) fn assign_all(
        &mut self,
        v: &[i64],
        values: &mut Vec<i64>,
        mut null: impl FnMut(&mut Vec<i64>, usize) -> Option<u32>,
        out: &mut Vec<u32>,
    ) {
        // The last non-NULL key and its group: clustered input repeats it.
        let mut last: Option<(i64, u32)> = None;
        for (i, &k) in v.iter().enumerate() {
            if let Some(&ahead) = v.get(i + 4 * PREFETCH_AHEAD) {
                self.prefetch(ahead);
            }
            if let Some(g) = null(values, i) {
                out.push(g);
                continue;
            }
            let g = match last {
                Some((lk, lg)) if lk == k => lg,
                _ => {
                    let g = self.find_or_insert(k, values);
                    last = Some((k, g));
                    g
                }
            };
            out.push(g);
        }
    }
}
