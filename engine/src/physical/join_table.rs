//! The build side of a hash join: the build rows in one batch, their key columns, and an
//! index. One integer-like key, or two whose build values fit 32 bits, is indexed on its
//! value ([`IntJoinIndex`]: its matches are exact). Other keys go into a flat chained
//! hash table — a power-of-two bucket array of row heads, a `next` link and the stored
//! hash per row — so a probe touches no allocator and compares a row's keys only when the
//! full 64-bit hashes are equal.

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::buffer::NullBuffer;

use crate::error::{Result, SluiceError};
use crate::physical::expr::PhysExpr;
use crate::physical::hash::hash_columns;
use crate::physical::join_int_index::{int_keys, is_int_key, IntJoinIndex};
use crate::physical::parallel;

const NONE: u32 = u32::MAX;

/// A built hash table.
#[derive(Debug)]
pub struct JoinTable {
    /// All build rows.
    pub batch: RecordBatch,
    /// Key columns of the build rows.
    pub keys: Vec<ArrayRef>,
    index: Index,
    /// True when some build row has a NULL key (matters for NOT IN).
    pub has_null_key: bool,
}

/// How build rows are found by key.
#[derive(Debug)]
enum Index {
    /// One integer-like key, or two packed into one, by value.
    Ints(IntJoinIndex),
    /// Any keys, by hash.
    Hashed(Hashed),
}

/// A chained hash table over the build rows' key hashes.
#[derive(Debug)]
struct Hashed {
    heads: Vec<u32>,
    shift: u32,
    next: Vec<u32>,
    hashes: Vec<u64>,
}

impl Hashed {
    fn build(keys: &[ArrayRef], n: usize) -> Result<Self> {
        let hashes = hash_columns(keys, n)?;
        let bits = (2 * n).next_power_of_two().max(16).trailing_zeros();
        let shift = 64 - bits;
        let mut heads = vec![NONE; 1 << bits];
        let mut next = vec![NONE; n];
        let valid = combined_validity(keys);
        // Insert in reverse so chains list rows in input order.
        for i in (0..n).rev() {
            if valid.as_ref().is_some_and(|v| v.is_null(i)) {
                continue;
            }
            let b = (hashes[i] >> shift) as usize;
            next[i] = heads[b];
            heads[b] = i as u32;
        }
        Ok(Self {
            heads,
            shift,
            next,
            hashes,
        })
    }

    fn memory_size(&self) -> usize {
        self.heads.len() * 4 + self.next.len() * 4 + self.hashes.len() * 8
    }

    /// Pairs of probe rows `range` and build rows whose key hashes are equal.
    fn candidates(
        &self,
        probe_keys: &[ArrayRef],
        range: std::ops::Range<usize>,
        probe_idx: &mut Vec<u32>,
        build_idx: &mut Vec<u32>,
    ) -> Result<()> {
        let n = probe_keys.first().map_or(0, |k| k.len());
        let hashes = hash_columns(probe_keys, n)?;
        let valid = combined_validity(probe_keys);
        for i in range {
            if valid.as_ref().is_some_and(|v| v.is_null(i)) {
                continue;
            }
            let h = hashes[i];
            let mut j = self.heads[(h >> self.shift) as usize];
            while j != NONE {
                if self.hashes[j as usize] == h {
                    probe_idx.push(i as u32);
                    build_idx.push(j);
                }
                j = self.next[j as usize];
            }
        }
        Ok(())
    }
}

impl JoinTable {
    /// Builds over `batch` with key expressions `key_exprs`.
    pub fn build(batch: RecordBatch, key_exprs: &[PhysExpr]) -> Result<Self> {
        // Every output batch gathers from these columns: keep their view buffers few.
        let batch = sluice_flight_shuffle::compact_views(batch);
        Self::build_with(batch, key_exprs, false, |_| Ok(()))
    }

    /// Builds over `batch` (its view columns already compacted) with key expressions
    /// `key_exprs`, running `alongside` on the key columns meanwhile: on a thread of its
    /// own when `two_threads`.
    pub fn build_with(
        batch: RecordBatch,
        key_exprs: &[PhysExpr],
        two_threads: bool,
        alongside: impl FnOnce(&[ArrayRef]) -> Result<()> + Send,
    ) -> Result<Self> {
        let n = batch.num_rows();
        if n >= NONE as usize {
            return Err(SluiceError::exec(
                "hash join build side exceeds 4 billion rows",
            ));
        }
        let keys = key_exprs
            .iter()
            .map(|e| e.evaluate_array(&batch))
            .collect::<Result<Vec<_>>>()?;
        let valid = combined_validity(&keys);
        let has_null_key = valid.as_ref().is_some_and(|v| v.null_count() > 0);
        let ints = (1..=2).contains(&keys.len())
            && keys.iter().all(|k| is_int_key(k.data_type()))
            && n < (1 << 31);
        let (index, done) = parallel::join(
            two_threads,
            || -> Result<Index> {
                Ok(match ints.then(|| int_keys(&keys)).transpose()? {
                    Some(k) if !k.wide => Index::Ints(IntJoinIndex::build(&k)),
                    _ => Index::Hashed(Hashed::build(&keys, n)?),
                })
            },
            || alongside(&keys),
        );
        let index = index?;
        done?;
        Ok(Self {
            batch,
            keys,
            index,
            has_null_key,
        })
    }

    /// A table without rows (a placeholder while a spilled join loads its parts).
    pub fn empty(schema: arrow::datatypes::SchemaRef) -> Self {
        Self {
            batch: RecordBatch::new_empty(schema),
            keys: Vec::new(),
            index: Index::Hashed(Hashed {
                heads: vec![NONE; 16],
                shift: 60,
                next: Vec::new(),
                hashes: Vec::new(),
            }),
            has_null_key: false,
        }
    }

    /// Approximate bytes held: the build rows and the index.
    pub fn memory_size(&self) -> usize {
        crate::physical::memory::batch_bytes(&self.batch)
            + match &self.index {
                Index::Ints(i) => i.memory_size(),
                Index::Hashed(h) => h.memory_size(),
            }
    }

    /// Number of build rows.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// True when [`JoinTable::candidates`] gives only pairs whose keys are equal.
    pub fn exact(&self) -> bool {
        matches!(self.index, Index::Ints(_))
    }

    /// Candidate pairs (probe row, build row) for probe rows `range` of the probe key
    /// columns: every matching pair, and (unless [`JoinTable::exact`]) pairs whose key
    /// hashes are equal but keys not, which the caller checks. Rows with NULL keys have
    /// no candidates.
    pub fn candidates(
        &self,
        probe_keys: &[ArrayRef],
        range: std::ops::Range<usize>,
        probe_idx: &mut Vec<u32>,
        build_idx: &mut Vec<u32>,
    ) -> Result<()> {
        match &self.index {
            Index::Ints(i) => {
                i.matches(&int_keys(probe_keys)?, range, probe_idx, build_idx);
                Ok(())
            }
            Index::Hashed(h) => h.candidates(probe_keys, range, probe_idx, build_idx),
        }
    }

    /// All pairs of probe rows `range` with every build row (a join without keys).
    pub fn cross(
        &self,
        range: std::ops::Range<usize>,
        probe_idx: &mut Vec<u32>,
        build_idx: &mut Vec<u32>,
    ) {
        for i in range {
            for j in 0..self.num_rows() as u32 {
                probe_idx.push(i as u32);
                build_idx.push(j);
            }
        }
    }
}

/// Where any of `cols` is NULL (`None` when none can be).
pub fn combined_validity(cols: &[ArrayRef]) -> Option<NullBuffer> {
    cols.iter().fold(None, |acc, c| {
        NullBuffer::union(acc.as_ref(), c.logical_nulls().as_ref())
    })
}

/// `UInt32Array` from indices.
pub fn indices(v: &[u32]) -> UInt32Array {
    UInt32Array::from(v.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    /// Every (probe row, build row) pair `table` gives for `probe`, sorted.
    fn pairs(table: &JoinTable, probe: &[ArrayRef]) -> Vec<(u32, u32)> {
        let (mut p, mut b) = (Vec::new(), Vec::new());
        let n = probe[0].len();
        table
            .candidates(probe, 0..n, &mut p, &mut b)
            .expect("candidates");
        let mut out: Vec<_> = p.into_iter().zip(b).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn a_build_on_two_threads_indexes_as_one_does_and_passes_the_keys_alongside() {
        let n = 100_000i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Utf8, false),
        ]));
        // Keys repeat (k / 3) and every hundredth is NULL.
        let keys = Int64Array::from_iter((0..n).map(|i| (i % 100 != 0).then_some(i / 3)));
        let strings = StringArray::from_iter_values((0..n).map(|i| format!("s{i}")));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(keys), Arc::new(strings)]).expect("batch");
        let key_exprs = [PhysExpr::Column(0, "k".into())];
        let probe: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter(
            [0, 1, 5, 33_333, 40_000, n]
                .into_iter()
                .map(Some)
                .chain([None]),
        ))];
        let serial = JoinTable::build(batch.clone(), &key_exprs).expect("serial build");
        let seen = Mutex::new(0);
        let parallel = JoinTable::build_with(batch, &key_exprs, true, |k| {
            *seen.lock().expect("lock") = k[0].len();
            Ok(())
        })
        .expect("parallel build");
        assert_eq!(*seen.lock().expect("lock"), n as usize);
        assert_eq!(pairs(&parallel, &probe), pairs(&serial, &probe));
        // Key 1 is on rows 3, 4 and 5; key 0 on rows 1 and 2 (row 0's key is NULL).
        let found = pairs(&parallel, &probe);
        assert!(found.contains(&(1, 3)) && found.contains(&(1, 5)));
        assert!(found.contains(&(0, 1)) && !found.contains(&(0, 0)));
        assert!(found.iter().all(|(p, _)| *p < 5), "{found:?}");
        let failing = JoinTable::build_with(
            RecordBatch::new_empty(Arc::new(Schema::new(vec![Field::new(
                "k",
                DataType::Int64,
                true,
            )]))),
            &key_exprs,
            true,
            |_| Err(SluiceError::exec("filter failed")),
        );
        assert!(failing.is_err(), "an error alongside is the build's error");
    }
}
