//! Group ids for hash aggregation: maps each row's group key to a dense id (0, 1, 2, ...
//! in order of first appearance) through a chained hash table over the key hashes.
//!
//! Keys are stored one of three ways: a single integer-like key as an `i64`, in an
//! open-addressed index of 8-byte slots (`IntIndex`, one cache line a new key); keys whose
//! types all have a fixed-width word form (integers, dates, decimals, and strings of at
//! most 12 bytes held inline in a `Utf8View`) packed into a few `u64` words each
//! (`packed_keys.rs`); anything else in Arrow's row format. Packed keys switch to the
//! row format, keeping every id, when a longer string arrives.

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::Result;
use crate::physical::group_int_index::{IntIndex, PREFETCH_AHEAD};
use crate::physical::hash::{hash_bytes, hash_columns, prefetch};
use crate::physical::packed_keys::{hash_words, PackedKeys};
use crate::physical::word_keys::WordKeys;

/// Dense group ids by hash: a flat power-of-two bucket array chained through `next`, with
/// each group's hash stored so keys are compared only on a full hash match.
struct Buckets {
    heads: Vec<u32>,
    shift: u32,
    next: Vec<u32>,
    hashes: Vec<u64>,
}

const NONE: u32 = u32::MAX;

impl Buckets {
    fn new() -> Self {
        Self {
            heads: vec![NONE; 1 << 10],
            shift: 64 - 10,
            next: vec![],
            hashes: vec![],
        }
    }

    /// The group with hash `h` for which `same` holds.
    #[inline]
    fn find(&self, h: u64, same: impl Fn(usize) -> bool) -> Option<u32> {
        let mut g = self.heads[(h >> self.shift) as usize];
        while g != NONE {
            if self.hashes[g as usize] == h && same(g as usize) {
                return Some(g);
            }
            g = self.next[g as usize];
        }
        None
    }

    /// Prefetches the bucket of hash `h` (a group table bigger than the cache misses
    /// there first); a hint only.
    #[inline]
    fn prefetch_bucket(&self, h: u64) {
        prefetch(&self.heads[(h >> self.shift) as usize]);
    }

    /// Prefetches the first group of hash `h`'s chain (call some rows after
    /// [`Buckets::prefetch_bucket`], when the bucket is cached); returns it.
    #[inline]
    fn prefetch_chain(&self, h: u64) -> Option<usize> {
        let g = self.heads[(h >> self.shift) as usize];
        let g = (g != NONE).then_some(g as usize)?;
        prefetch(&self.hashes[g]);
        Some(g)
    }

    /// Registers the next group id under hash `h`.
    fn insert(&mut self, h: u64) -> u32 {
        let g = self.hashes.len() as u32;
        self.hashes.push(h);
        let b = (h >> self.shift) as usize;
        self.next.push(self.heads[b]);
        self.heads[b] = g;
        if self.hashes.len() * 2 > self.heads.len() {
            self.grow();
        }
        g
    }

    /// Doubles the bucket array.
    fn grow(&mut self) {
        let bits = 64 - self.shift + 1;
        self.shift = 64 - bits;
        self.heads = vec![NONE; 1 << bits];
        self.next = vec![NONE; self.hashes.len()];
        for g in 0..self.hashes.len() {
            let b = (self.hashes[g] >> self.shift) as usize;
            self.next[g] = self.heads[b];
            self.heads[b] = g as u32;
        }
    }
}

/// Stored group keys that a batch's encoded rows are compared with and added to.
trait KeyStore {
    /// Whether stored key `g` equals the batch's row `i`.
    fn same(&self, g: usize, i: usize) -> bool;
    /// Stores the batch's row `i` as the next group's key.
    fn push(&mut self, i: usize);
}

impl KeyStore for PackedKeys {
    #[inline]
    fn same(&self, g: usize, i: usize) -> bool {
        self.key(g) == self.encoded_row(i)
    }
    #[inline]
    fn push(&mut self, i: usize) {
        self.push_encoded(i)
    }
}

/// Arrow-row keys and a batch's rows.
struct RowStore<'a> {
    stored: &'a mut Rows,
    batch: &'a Rows,
}

impl KeyStore for RowStore<'_> {
    #[inline]
    fn same(&self, g: usize, i: usize) -> bool {
        self.stored.row(g) == self.batch.row(i)
    }
    #[inline]
    fn push(&mut self, i: usize) {
        self.stored.push(self.batch.row(i))
    }
}

impl Buckets {
    /// Pushes onto `out` the group of each batch row (hash `hashes[i]`), adding new
    /// groups to `store`; prefetches ahead so a big table's cache misses overlap.
    fn assign_all(&mut self, hashes: &[u64], store: &mut impl KeyStore, out: &mut Vec<u32>) {
        let first = out.len();
        for (i, &h) in hashes.iter().enumerate() {
            if let Some(&h) = hashes.get(i + 2 * PREFETCH_AHEAD) {
                self.prefetch_bucket(h);
            }
            if let Some(&h) = hashes.get(i + PREFETCH_AHEAD) {
                self.prefetch_chain(h);
            }
            // Clustered input (sorted or grouped keys) repeats the previous row's key:
            // its group is at hand without a lookup.
            if i > 0 && hashes[i - 1] == h {
                let prev = out[first + i - 1];
                if store.same(prev as usize, i) {
                    out.push(prev);
                    continue;
                }
            }
            let g = match self.find(h, |g| store.same(g, i)) {
                Some(g) => g,
                None => {
                    store.push(i);
                    self.insert(h)
                }
            };
            out.push(g);
        }
    }
}

/// How group keys are stored.
enum Keys {
    /// No GROUP BY: one group.
    None,
    /// One integer-like key, compared as i64 (no row encoding).
    Int {
        data_type: DataType,
        index: IntIndex,
        values: Vec<i64>,
        null_group: Option<u32>,
    },
    /// Narrow keys packed into one word, grouped as one integer.
    Word {
        layout: WordKeys,
        index: IntIndex,
        values: Vec<i64>,
        /// The last batch's words.
        scratch: Vec<i64>,
    },
    /// Keys with a fixed-width word form.
    Packed(PackedKeys),
    /// Any keys, compared through Arrow's row format.
    Rows {
        conv: RowConverter,
        rows: Rows,
        /// Hash the encoded rows (some key is variable-width) rather than the columns.
        hash_rows: bool,
    },
}

/// Maps group keys to dense group ids.
pub(crate) struct GroupTable {
    keys: Keys,
    buckets: Buckets,
    /// Groups so far.
    pub(crate) num_groups: usize,
}

/// Row-format keys of `types` holding `arrays` (group `i` = row `i`), with the hashes the
/// row-format path computes.
fn row_keys(types: &[DataType], arrays: &[ArrayRef], n: usize) -> Result<(Keys, Vec<u64>)> {
    let hash_rows = types.iter().any(|t| !t.is_primitive());
    let conv = RowConverter::new(types.iter().cloned().map(SortField::new).collect())?;
    let rows = if arrays.is_empty() {
        conv.empty_rows(0, 0)
    } else {
        conv.convert_columns(arrays)?
    };
    let hashes = if hash_rows {
        (0..n).map(|i| hash_bytes(rows.row(i).as_ref())).collect()
    } else {
        hash_columns(arrays, n)?
    };
    Ok((
        Keys::Rows {
            conv,
            rows,
            hash_rows,
        },
        hashes,
    ))
}

impl GroupTable {
    /// An empty table for keys of `key_types`.
    pub(crate) fn try_new(key_types: Vec<DataType>) -> Result<Self> {
        use DataType::*;
        let (keys, num_groups) = match key_types.as_slice() {
            // Without keys there is exactly one group, even over empty input.
            [] => (Keys::None, 1),
            [t @ (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | Date32)] => (
                Keys::Int {
                    data_type: t.clone(),
                    index: IntIndex::new(),
                    values: vec![],
                    null_group: None,
                },
                0,
            ),
            types => match (WordKeys::try_new(types), PackedKeys::try_new(types)) {
                (Some(layout), _) => (
                    Keys::Word {
                        layout,
                        index: IntIndex::new(),
                        values: vec![],
                        scratch: vec![],
                    },
                    0,
                ),
                (None, Some(p)) => (Keys::Packed(p), 0),
                (None, None) => (row_keys(types, &[], 0)?.0, 0),
            },
        };
        Ok(Self {
            keys,
            buckets: Buckets::new(),
            num_groups,
        })
    }

    /// Moves the keys to a wider form (one word to packed words or the row format,
    /// packed words to the row format); every group keeps its id.
    fn widen(&mut self) -> Result<()> {
        let (types, arrays) = match &self.keys {
            Keys::Word { layout, values, .. } => {
                (layout.types().to_vec(), layout.to_arrays(values)?)
            }
            Keys::Packed(p) => (p.types().to_vec(), p.to_arrays()?),
            _ => return Ok(()),
        };
        let n = self.num_groups;
        let mut buckets = Buckets::new();
        let mut packed = match &self.keys {
            Keys::Word { .. } => PackedKeys::try_new(&types),
            _ => None,
        };
        if let Some(p) = &mut packed {
            if p.encode(&arrays, n)? {
                for i in 0..n {
                    p.push_encoded(i);
                    buckets.insert(hash_words(p.encoded_row(i)));
                }
            } else {
                packed = None;
            }
        }
        self.keys = match packed {
            Some(p) => Keys::Packed(p),
            None => {
                let (keys, hashes) = row_keys(&types, &arrays, n)?;
                for h in hashes {
                    buckets.insert(h);
                }
                keys
            }
        };
        self.buckets = buckets;
        Ok(())
    }

    /// Sets `out` to the group id of each of the first `n` rows of `keys`, adding groups.
    pub(crate) fn assign(&mut self, keys: &[ArrayRef], n: usize, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        if let Keys::Word {
            layout, scratch, ..
        } = &mut self.keys
        {
            if !layout.encode(keys, n, scratch)? {
                self.widen()?;
            }
        }
        if let Keys::Packed(p) = &mut self.keys {
            if !p.encode(keys, n)? {
                self.widen()?;
            }
        }
        let buckets = &mut self.buckets;
        match &mut self.keys {
            Keys::None => out.resize(n, 0),
            Keys::Int {
                index,
                values,
                null_group,
                ..
            } => {
                let arr = arrow::compute::cast(&keys[0], &DataType::Int64)?;
                let a = arr.as_primitive::<Int64Type>();
                let null = |values: &mut Vec<i64>, i: usize| {
                    a.is_null(i).then(|| {
                        *null_group.get_or_insert_with(|| {
                            values.push(0);
                            values.len() as u32 - 1
                        })
                    })
                };
                index.assign_all(&a.values()[..n], values, null, out);
            }
            Keys::Word {
                index,
                values,
                scratch,
                ..
            } => {
                // A few groups in random order (q1's flags): a lookup that always hits
                // its first slot beats guessing that a row repeats the last key. A
                // table past the cache prefetches ahead, as single integer keys do.
                if index.slot_count() <= 1 << 16 {
                    out.extend(scratch.iter().map(|&k| index.find_or_insert(k, values)));
                } else {
                    for (i, &k) in scratch.iter().enumerate() {
                        if let Some(&ahead) = scratch.get(i + 4 * PREFETCH_AHEAD) {
                            index.prefetch(ahead);
                        }
                        out.push(index.find_or_insert(k, values));
                    }
                }
            }
            Keys::Packed(p) => {
                let w = p.width();
                let hashes: Vec<u64> = p.encoded().chunks_exact(w).map(hash_words).collect();
                buckets.assign_all(&hashes, p, out);
            }
            Keys::Rows {
                conv,
                rows: stored,
                hash_rows,
            } => {
                let rows = conv.convert_columns(keys)?;
                // With string keys, hashing the encoded row is one pass instead of one per
                // column (q1: -7%); fixed-width keys hash faster column by column.
                let hashes: Vec<u64> = if *hash_rows {
                    (0..n).map(|i| hash_bytes(rows.row(i).as_ref())).collect()
                } else {
                    hash_columns(keys, n)?
                };
                let mut store = RowStore {
                    stored,
                    batch: &rows,
                };
                buckets.assign_all(&hashes, &mut store, out);
            }
        }
        self.num_groups = match &self.keys {
            Keys::None => 1,
            Keys::Int { values, .. } | Keys::Word { values, .. } => values.len(),
            Keys::Packed(_) | Keys::Rows { .. } => self.buckets.hashes.len(),
        };
        Ok(())
    }

    /// Forgets every group but keeps an integer or word index at the size it grew to (a
    /// partial aggregation that starts over fills it again); false for the other key
    /// layouts, which the caller replaces.
    pub(crate) fn clear(&mut self) -> bool {
        match &mut self.keys {
            Keys::Int {
                index,
                values,
                null_group,
                ..
            } => {
                *null_group = None;
                index.clear();
                values.clear();
            }
            Keys::Word { index, values, .. } => {
                index.clear();
                values.clear();
            }
            Keys::None | Keys::Packed(_) | Keys::Rows { .. } => return false,
        }
        self.num_groups = 0;
        true
    }

    /// Approximate bytes held by the index and the stored keys.
    pub(crate) fn memory_size(&self) -> usize {
        let b = &self.buckets;
        let index = b.heads.len() * 4 + b.next.len() * 4 + b.hashes.len() * 8;
        index
            + match &self.keys {
                Keys::None => 0,
                Keys::Int { index, values, .. } => index.memory_size() + values.len() * 8,
                Keys::Word {
                    index,
                    values,
                    scratch,
                    ..
                } => index.memory_size() + (values.len() + scratch.capacity()) * 8,
                Keys::Packed(p) => p.memory_size(),
                Keys::Rows { rows, .. } => rows.size(),
            }
    }

    /// The keys of every group, in id order.
    pub(crate) fn keys(&mut self) -> Result<Vec<ArrayRef>> {
        match &self.keys {
            Keys::None => Ok(vec![]),
            Keys::Int {
                data_type,
                values,
                null_group,
                ..
            } => {
                let nulls = null_group.map(|null| {
                    NullBuffer::new(BooleanBuffer::collect_bool(values.len(), |g| {
                        g != null as usize
                    }))
                });
                let arr = Int64Array::new(values.clone().into(), nulls);
                Ok(vec![arrow::compute::cast(&arr, data_type)?])
            }
            Keys::Word { layout, values, .. } => layout.to_arrays(values),
            Keys::Packed(p) => p.to_arrays(),
            Keys::Rows { conv, rows, .. } => Ok(conv.convert_rows(rows)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray, StringViewArray};

    /// Group ids must be stable across bucket growth, and a NULL key is its own group even
    /// next to the key 0 (whose stored placeholder value it shares).
    #[test]
    fn int_keys_with_null_and_zero_survive_growth() {
        let mut t = GroupTable::try_new(vec![DataType::Int32]).expect("table");
        let mut first = vec![];
        let keys: ArrayRef = Arc::new(Int32Array::from_iter(
            (0..5000).map(|i| (i % 7 != 3).then_some(i % 2500)),
        ));
        t.assign(std::slice::from_ref(&keys), 5000, &mut first)
            .expect("assign");
        let mut again = vec![];
        t.assign(&[keys], 5000, &mut again).expect("assign");
        assert_eq!(first, again);
        // 2500 distinct values seen among non-null rows, plus one NULL group.
        assert_eq!(t.num_groups, 2501);
        let out = t.keys().expect("keys");
        assert_eq!(out[0].null_count(), 1);
        assert_eq!(out[0].data_type(), &DataType::Int32);
        let zero = (0..5000)
            .find(|&i| i % 2500 == 0 && i % 7 != 3)
            .expect("zero row");
        let null = (0..5000).find(|&i| i % 7 == 3).expect("null row");
        assert_ne!(first[zero], first[null]);
    }

    /// A cleared table keeps its grown index but none of its groups: ids start at 0
    /// again, a key seen before the clear is new, and NULL gets a group of its own again.
    #[test]
    fn cleared_tables_forget_their_groups() {
        // One integer key, and two narrow ones packed into a word.
        for types in [
            vec![DataType::Int64],
            vec![DataType::Int16, DataType::Int16],
        ] {
            let int = |v: Vec<Option<i64>>| -> ArrayRef {
                let a: ArrayRef = Arc::new(Int64Array::from(v));
                arrow::compute::cast(&a, &types[0]).expect("cast")
            };
            let mut t = GroupTable::try_new(types.clone()).expect("table");
            let many = int((0..5000).map(Some).collect());
            let cols = vec![many; types.len()];
            let mut ids = vec![];
            t.assign(&cols, 5000, &mut ids).expect("assign");
            let size = t.memory_size();
            assert!(
                t.clear(),
                "{types:?}: integer and word keys keep their index"
            );
            assert_eq!(t.num_groups, 0);
            let few = int(vec![Some(4000), None, Some(4000), Some(3)]);
            t.assign(&vec![few; types.len()], 4, &mut ids)
                .expect("assign");
            assert_eq!(ids, [0, 1, 0, 2], "{types:?}");
            assert_eq!(t.num_groups, 3);
            assert!(
                t.memory_size() >= size - 5000 * 8,
                "the index kept its size"
            );
            let keys = t.keys().expect("keys");
            let want = int(vec![Some(4000), None, Some(3)]);
            assert!(
                keys.iter().all(|k| k.as_ref() == want.as_ref()),
                "{types:?}"
            );
        }
        let mut rows = GroupTable::try_new(vec![DataType::Utf8]).expect("table");
        assert!(!rows.clear(), "row keys are replaced, not cleared");
    }

    /// Runs of one key (sorted or clustered input) take the previous row's group; a NULL
    /// inside a run, or a key differing in one column, does not.
    #[test]
    fn repeated_keys_reuse_the_previous_group() {
        let mut t = GroupTable::try_new(vec![DataType::Int64]).expect("table");
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(0),
            None,
            Some(0),
            Some(0),
            None,
            None,
            Some(7),
            Some(7),
            Some(0),
        ]));
        let mut ids = vec![];
        t.assign(&[keys], 9, &mut ids).expect("assign");
        assert_eq!(ids, vec![0, 1, 0, 0, 1, 1, 2, 2, 0]);

        let mut t = GroupTable::try_new(vec![DataType::Utf8View, DataType::Int32]).expect("table");
        assert!(matches!(t.keys, Keys::Word { .. }));
        let keys: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![
                Some("a"),
                Some("a"),
                Some("a"),
                None,
                None,
                Some("a"),
            ])),
            Arc::new(Int32Array::from(vec![1, 1, 2, 2, 2, 2])),
        ];
        t.assign(&keys, 6, &mut ids).expect("assign");
        assert_eq!(ids, vec![0, 0, 1, 2, 2, 1]);
    }

    /// Many groups of two narrow columns: one-word keys keep their ids as the index
    /// grows past the size where it prefetches, and read back as they went in.
    #[test]
    fn many_word_keys_survive_growth() {
        let mut t = GroupTable::try_new(vec![DataType::Int32, DataType::Int16]).expect("table");
        assert!(matches!(t.keys, Keys::Word { .. }));
        let n = 100_000;
        let keys: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values((0..n).map(|i| i / 7 - 5000))),
            Arc::new(arrow::array::Int16Array::from_iter_values(
                (0..n).map(|i| (i % 7) as i16 - 3),
            )),
        ];
        let mut first = vec![];
        t.assign(&keys, n as usize, &mut first).expect("assign");
        assert_eq!(t.num_groups, n as usize);
        let mut again = vec![];
        t.assign(&keys, n as usize, &mut again).expect("assign");
        assert_eq!(first, again);
        let back = t.keys().expect("keys");
        for (g, &row) in first.iter().enumerate().step_by(997) {
            assert_eq!(row as usize, g);
            for (b, k) in back.iter().zip(&keys) {
                assert_eq!(b.slice(g, 1).as_ref(), k.slice(g, 1).as_ref());
            }
        }
    }

    #[test]
    fn row_keys_group_strings() {
        let mut t = GroupTable::try_new(vec![DataType::Utf8, DataType::Int32]).expect("table");
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("x"),
            Some("y"),
            Some("x"),
            None,
            None,
        ]));
        let b: ArrayRef = Arc::new(Int32Array::from(vec![1, 1, 1, 2, 2]));
        let mut ids = vec![];
        t.assign(&[a, b], 5, &mut ids).expect("assign");
        assert_eq!(ids, vec![0, 1, 0, 2, 2]);
    }

    /// One-word keys give the same ids as row keys, and keep them when a longer string
    /// moves the table to packed words, then a long one to the row format, mid-stream.
    #[test]
    fn narrow_keys_widen_keeping_ids() {
        let types = vec![DataType::Utf8View, DataType::Int32];
        let mut t = GroupTable::try_new(types).expect("table");
        assert!(matches!(t.keys, Keys::Word { .. }));
        let batch = |s: Vec<Option<&str>>, i: Vec<i32>| -> Vec<ArrayRef> {
            vec![
                Arc::new(StringViewArray::from(s)),
                Arc::new(Int32Array::from(i)),
            ]
        };
        let mut ids = vec![];
        let first = batch(
            vec![Some("x"), None, Some("x"), Some("y"), None],
            vec![1, 2, 1, 1, 2],
        );
        t.assign(&first, 5, &mut ids).expect("assign");
        assert_eq!(ids, vec![0, 1, 0, 2, 1]);
        let middle = batch(vec![Some("y"), Some("eight by"), None], vec![1, 1, 2]);
        t.assign(&middle, 3, &mut ids).expect("assign");
        assert!(matches!(t.keys, Keys::Packed(_)));
        assert_eq!(ids, vec![2, 3, 1]);
        let second = batch(
            vec![
                Some("a string longer than twelve"),
                Some("y"),
                None,
                Some("x"),
            ],
            vec![1, 1, 2, 1],
        );
        t.assign(&second, 4, &mut ids).expect("assign");
        assert!(matches!(t.keys, Keys::Rows { .. }));
        assert_eq!(ids, vec![4, 2, 1, 0]);
        let keys = t.keys().expect("keys");
        let strings = keys[0].as_string_view();
        assert_eq!(strings.value(3), "eight by");
        assert_eq!(strings.value(4), "a string longer than twelve");
        assert!(strings.is_null(1));
        assert_eq!(
            keys[1]
                .as_primitive::<arrow::datatypes::Int32Type>()
                .value(1),
            2
        );
    }
}
