//! The build side of a hash join: the build rows in one batch, their key columns, and a
//! chained hash table from key hash to row (`heads` + `next`, no per-row allocation).

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};

use crate::error::{Result, SluiceError};
use crate::physical::expr::PhysExpr;
use crate::physical::hash::{hash_columns, IdentityBuild};

const NONE: u32 = u32::MAX;

/// A built hash table.
#[derive(Debug)]
pub struct JoinTable {
    /// All build rows.
    pub batch: RecordBatch,
    /// Key columns of the build rows.
    pub keys: Vec<ArrayRef>,
    heads: HashMap<u64, u32, IdentityBuild>,
    next: Vec<u32>,
    /// True when some build row has a NULL key (matters for NOT IN).
    pub has_null_key: bool,
}

impl JoinTable {
    /// Builds over `batch` with key expressions `key_exprs`.
    pub fn build(batch: RecordBatch, key_exprs: &[PhysExpr]) -> Result<Self> {
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
        let hashes = hash_columns(&keys, n)?;
        let mut heads: HashMap<u64, u32, IdentityBuild> =
            HashMap::with_capacity_and_hasher(n, IdentityBuild::default());
        let mut next = vec![NONE; n];
        let mut has_null_key = false;
        // Insert in reverse so chains list rows in input order.
        for i in (0..n).rev() {
            if keys.iter().any(|k| k.is_null(i)) {
                has_null_key = true;
                continue;
            }
            let slot = heads.entry(hashes[i]).or_insert(NONE);
            next[i] = *slot;
            *slot = i as u32;
        }
        Ok(Self {
            batch,
            keys,
            heads,
            next,
            has_null_key,
        })
    }

    /// Number of build rows.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Candidate pairs (probe row, build row) whose key hashes match, for probe rows
    /// `range`; rows with NULL keys have no candidates. Equality is checked by the caller.
    pub fn candidates(
        &self,
        probe_keys: &[ArrayRef],
        hashes: &[u64],
        range: std::ops::Range<usize>,
        probe_idx: &mut Vec<u32>,
        build_idx: &mut Vec<u32>,
    ) {
        for i in range {
            if probe_keys.iter().any(|k| k.is_null(i)) {
                continue;
            }
            let mut j = match self.heads.get(&hashes[i]) {
                Some(&j) => j,
                None => continue,
            };
            while j != NONE {
                probe_idx.push(i as u32);
                build_idx.push(j);
                j = self.next[j as usize];
            }
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

/// `UInt32Array` from indices.
pub fn indices(v: &[u32]) -> UInt32Array {
    UInt32Array::from(v.to_vec())
}
