//! Hash aggregation in three modes: `Partial` (raw rows → per-group partial states),
//! `Final` (partial states → results, after a hash exchange on the group keys) and
//! `Complete` (raw rows → results in one phase; used for DISTINCT aggregates).
//!
//! Groups are found through Arrow's row format (any key types, one byte string per key)
//! and a chained hash table over the shared key hashes.
//!
//! Under a memory limit: a `Partial` aggregation whose reservation is refused emits what it
//! has and starts over (the final phase merges duplicates anyway). `Final` and `Complete`
//! aggregations spill their groups as state batches into hash buckets and merge the
//! buckets one by one at the end (`aggregate_spill.rs`); DISTINCT aggregates and
//! aggregations without GROUP BY do not spill and fail with the reservation's error.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::Result;
use crate::logical::expr::AggFunc;
use crate::physical::accumulator::{create_accumulator, state_types, Accumulator};
use crate::physical::aggregate_spill::AggSpill;
use crate::physical::exchange::SPILL_BUCKETS;
use crate::physical::expr::PhysExpr;
use crate::physical::hash::{hash_bytes, hash_columns, prefetch};
use crate::physical::memory::Reservation;
use crate::physical::{
    cast_to_schema, Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext,
};

/// Which phase an aggregation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggMode {
    /// Raw rows in, partial states out.
    Partial,
    /// Partial states in, final values out.
    Final,
    /// Raw rows in, final values out.
    Complete,
}

/// One aggregate call.
#[derive(Debug, Clone)]
pub struct AggSpec {
    /// The function.
    pub func: AggFunc,
    /// DISTINCT.
    pub distinct: bool,
    /// Arguments over the input (Partial/Complete) or state column positions (Final).
    pub args: Vec<PhysExpr>,
    /// Type of the (first) argument over the raw input.
    pub input_type: Option<DataType>,
}

/// The plan node.
#[derive(Debug)]
pub struct AggregateExec {
    input: Arc<dyn ExecNode>,
    mode: AggMode,
    group_exprs: Vec<PhysExpr>,
    aggs: Vec<AggSpec>,
    schema: SchemaRef,
}

impl AggregateExec {
    /// Aggregates `input`, producing `schema` (group columns, then one column per state
    /// (Partial) or per aggregate (Final/Complete)).
    pub fn new(
        input: Arc<dyn ExecNode>,
        mode: AggMode,
        group_exprs: Vec<PhysExpr>,
        aggs: Vec<AggSpec>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            input,
            mode,
            group_exprs,
            aggs,
            schema,
        }
    }
}

impl ExecNode for AggregateExec {
    fn name(&self) -> &'static str {
        "AggregateExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.input.output_partitions()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let input = self.input.execute(partition, ctx)?;
        let key_types = self
            .group_exprs
            .iter()
            .map(|e| e.data_type(&self.input.schema()))
            .collect::<Result<Vec<_>>>()?;
        let accs = self
            .aggs
            .iter()
            .map(|a| create_accumulator(a.func, a.distinct, a.input_type.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let op = AggregateOp {
            mode: self.mode,
            group_exprs: self.group_exprs.clone(),
            aggs: self.aggs.clone(),
            accs,
            groups: GroupTable::try_new(key_types.clone())?,
            key_types,
            schema: self.schema.clone(),
            batch_size: ctx.config.batch_size,
            group_ids: vec![],
            reservation: ctx.memory.reservation("AggregateExec"),
            spill_dir: ctx.config.spill_dir.clone(),
            spill: None,
            next_bucket: None,
        };
        Ok(OperatorStream::boxed(input, op))
    }
    fn details(&self) -> String {
        let g: Vec<String> = self.group_exprs.iter().map(ToString::to_string).collect();
        let a: Vec<String> = self
            .aggs
            .iter()
            .map(|a| {
                let args: Vec<String> = a.args.iter().map(ToString::to_string).collect();
                format!(
                    "{}({}{})",
                    a.func,
                    if a.distinct { "DISTINCT " } else { "" },
                    args.join(", ")
                )
            })
            .collect();
        format!(
            "mode={:?}, gby=[{}], aggr=[{}]",
            self.mode,
            g.join(", "),
            a.join(", ")
        )
    }
}

/// Dense group ids by hash: a flat power-of-two bucket array chained through `next`, with
/// each group's hash stored so keys are compared only on a full hash match.
struct Buckets {
    heads: Vec<u32>,
    shift: u32,
    next: Vec<u32>,
    hashes: Vec<u64>,
    /// The one group that is not in the index (the NULL key of an integer column).
    unindexed: Option<u32>,
}

const NONE: u32 = u32::MAX;

/// How many rows ahead grouping prefetches a row's chain (and twice that, its bucket), so
/// the cache misses of a big group table overlap.
const PREFETCH_AHEAD: usize = 8;

impl Buckets {
    fn new() -> Self {
        Self {
            heads: vec![NONE; 1 << 10],
            shift: 64 - 10,
            next: vec![],
            hashes: vec![],
            unindexed: None,
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

    /// Registers the next group id under hash `h` (`indexed = false` for a group that is
    /// found some other way, like the NULL key).
    fn insert(&mut self, h: u64, indexed: bool) -> u32 {
        let g = self.hashes.len() as u32;
        self.hashes.push(h);
        if indexed {
            let b = (h >> self.shift) as usize;
            self.next.push(self.heads[b]);
            self.heads[b] = g;
        } else {
            self.next.push(NONE);
            self.unindexed = Some(g);
        }
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
            if Some(g as u32) == self.unindexed {
                continue;
            }
            let b = (self.hashes[g] >> self.shift) as usize;
            self.next[g] = self.heads[b];
            self.heads[b] = g as u32;
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
        values: Vec<i64>,
        null_group: Option<u32>,
    },
    /// Any keys, compared through Arrow's row format.
    Rows {
        conv: RowConverter,
        rows: Rows,
        /// Hash the encoded rows (some key is variable-width) rather than the columns.
        hash_rows: bool,
    },
}

/// Maps group keys to dense group ids.
struct GroupTable {
    keys: Keys,
    buckets: Buckets,
    num_groups: usize,
}

impl GroupTable {
    fn try_new(key_types: Vec<DataType>) -> Result<Self> {
        use DataType::*;
        let (keys, num_groups) = match key_types.as_slice() {
            // Without keys there is exactly one group, even over empty input.
            [] => (Keys::None, 1),
            [t @ (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | Date32)] => (
                Keys::Int {
                    data_type: t.clone(),
                    values: vec![],
                    null_group: None,
                },
                0,
            ),
            _ => {
                let hash_rows = key_types.iter().any(|t| !t.is_primitive());
                let conv = RowConverter::new(key_types.into_iter().map(SortField::new).collect())?;
                let rows = conv.empty_rows(0, 0);
                (
                    Keys::Rows {
                        conv,
                        rows,
                        hash_rows,
                    },
                    0,
                )
            }
        };
        Ok(Self {
            keys,
            buckets: Buckets::new(),
            num_groups,
        })
    }

    fn assign(&mut self, keys: &[ArrayRef], n: usize, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        let buckets = &mut self.buckets;
        match &mut self.keys {
            Keys::None => out.resize(n, 0),
            Keys::Int {
                values, null_group, ..
            } => {
                let arr = arrow::compute::cast(&keys[0], &DataType::Int64)?;
                let a = arr.as_primitive::<Int64Type>();
                let hash = |v: i64| (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let hashes: Vec<u64> = a.values().iter().map(|&v| hash(v)).collect();
                for i in 0..n {
                    if let Some(&h) = hashes.get(i + 2 * PREFETCH_AHEAD) {
                        buckets.prefetch_bucket(h);
                    }
                    if let Some(g) = hashes
                        .get(i + PREFETCH_AHEAD)
                        .and_then(|&h| buckets.prefetch_chain(h))
                    {
                        prefetch(&values[g]);
                    }
                    if a.is_null(i) {
                        let g = *null_group.get_or_insert_with(|| {
                            values.push(0);
                            buckets.insert(0, false)
                        });
                        out.push(g);
                        continue;
                    }
                    let v = a.value(i);
                    let h = hashes[i];
                    let g = match buckets.find(h, |g| values[g] == v) {
                        Some(g) => g,
                        None => {
                            values.push(v);
                            buckets.insert(h, true)
                        }
                    };
                    out.push(g);
                }
            }
            Keys::Rows {
                conv,
                rows: stored,
                hash_rows,
            } => {
                let rows = conv.convert_columns(keys)?;
                // With string keys, hashing the encoded row is one pass instead of one per
                // column (q1: -7%); fixed-width keys hash faster column by column.
                let hashes = if *hash_rows {
                    (0..n).map(|i| hash_bytes(rows.row(i).as_ref())).collect()
                } else {
                    hash_columns(keys, n)?
                };
                for (i, &h) in hashes.iter().enumerate() {
                    if let Some(&h) = hashes.get(i + 2 * PREFETCH_AHEAD) {
                        buckets.prefetch_bucket(h);
                    }
                    if let Some(&h) = hashes.get(i + PREFETCH_AHEAD) {
                        buckets.prefetch_chain(h);
                    }
                    let r = rows.row(i);
                    let g = match buckets.find(h, |g| stored.row(g) == r) {
                        Some(g) => g,
                        None => {
                            stored.push(r);
                            buckets.insert(h, true)
                        }
                    };
                    out.push(g);
                }
            }
        }
        if !matches!(self.keys, Keys::None) {
            self.num_groups = self.buckets.hashes.len();
        }
        Ok(())
    }

    /// Approximate bytes held by the index and the stored keys.
    fn memory_size(&self) -> usize {
        let b = &self.buckets;
        let index = b.heads.len() * 4 + b.next.len() * 4 + b.hashes.len() * 8;
        index
            + match &self.keys {
                Keys::None => 0,
                Keys::Int { values, .. } => values.len() * 8,
                Keys::Rows { rows, .. } => rows.size(),
            }
    }

    fn keys(&mut self) -> Result<Vec<ArrayRef>> {
        match &self.keys {
            Keys::None => Ok(vec![]),
            Keys::Int {
                data_type,
                values,
                null_group,
            } => {
                let arr = Int64Array::from_iter(
                    (0..values.len()).map(|g| (Some(g as u32) != *null_group).then(|| values[g])),
                );
                Ok(vec![arrow::compute::cast(&arr, data_type)?])
            }
            Keys::Rows { conv, rows, .. } => Ok(conv.convert_rows(rows)?),
        }
    }
}

struct AggregateOp {
    mode: AggMode,
    group_exprs: Vec<PhysExpr>,
    aggs: Vec<AggSpec>,
    accs: Vec<Box<dyn Accumulator>>,
    groups: GroupTable,
    schema: SchemaRef,
    batch_size: usize,
    group_ids: Vec<u32>,
    reservation: Reservation,
    key_types: Vec<DataType>,
    spill_dir: PathBuf,
    /// Groups spilled so far (Final / Complete under memory pressure).
    spill: Option<AggSpill>,
    /// The spill bucket to merge next, once the input ended.
    next_bucket: Option<usize>,
}

impl AggregateOp {
    /// Empties the group table and the accumulators and releases their memory.
    fn reset(&mut self) -> Result<()> {
        self.groups = GroupTable::try_new(self.key_types.clone())?;
        self.accs = self
            .aggs
            .iter()
            .map(|a| create_accumulator(a.func, a.distinct, a.input_type.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        self.reservation.resize(0)
    }

    /// Reserves what the groups hold; `spillable` growth stops at the pool's spillable
    /// share (see `memory.rs`), while merging a spilled bucket may use the whole limit.
    fn reserve(&mut self, spillable: bool) -> Result<()> {
        // Group index and keys, about 16 bytes of state per aggregate and group, and the
        // value sets of DISTINCT aggregates.
        let bytes = self.groups.memory_size()
            + self.groups.num_groups * 16 * self.accs.len()
            + self.accs.iter().map(|a| a.extra_memory()).sum::<usize>();
        if spillable && self.spillable() {
            self.reservation.resize_spillable(bytes)
        } else {
            self.reservation.resize(bytes)
        }
    }

    /// Whether the groups can go to disk as partial states.
    fn spillable(&self) -> bool {
        !self.group_exprs.is_empty() && self.aggs.iter().all(|a| !a.distinct)
    }

    /// Writes the current groups (keys and states) to the spill and starts over.
    fn spill_groups(&mut self) -> Result<()> {
        let ng = self.groups.num_groups;
        if ng > 0 {
            let mut cols = self.groups.keys()?;
            for acc in &mut self.accs {
                cols.extend(acc.state(ng)?);
            }
            let spill = match &mut self.spill {
                Some(s) => s,
                None => self.spill.insert(AggSpill::new(
                    &self.spill_dir,
                    &cols,
                    self.group_exprs.len(),
                )?),
            };
            spill.write(cols, ng)?;
        }
        self.reset()
    }

    /// Merges spill bucket `bucket` into a fresh table and emits its groups.
    fn merge_bucket(&mut self, bucket: usize, out: &mut Vec<Element>) -> Result<()> {
        self.reset()?;
        let widths = self
            .aggs
            .iter()
            .map(|a| Ok(state_types(a.func, a.input_type.as_ref())?.len()))
            .collect::<Result<Vec<_>>>()?;
        let nk = self.group_exprs.len();
        let readers = match &self.spill {
            Some(s) => s.bucket(bucket)?,
            None => return Ok(()),
        };
        for batch in readers.into_iter().flatten() {
            let batch = batch?;
            let cols = batch.columns();
            let mut ids = std::mem::take(&mut self.group_ids);
            self.groups
                .assign(&cols[..nk], batch.num_rows(), &mut ids)?;
            let ng = self.groups.num_groups;
            let mut off = nk;
            for (acc, w) in self.accs.iter_mut().zip(&widths) {
                acc.merge(&cols[off..off + w], &ids, ng)?;
                off += w;
            }
            self.group_ids = ids;
            self.reserve(false)?;
        }
        self.emit(out)
    }

    /// Emits the current groups: partial states (Partial) or final values.
    fn emit(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let ng = self.groups.num_groups;
        let mut cols = self.groups.keys()?;
        for acc in &mut self.accs {
            if self.mode == AggMode::Partial {
                cols.extend(acc.state(ng)?);
            } else {
                cols.push(acc.evaluate(ng)?);
            }
        }
        let batch = cast_to_schema(&self.schema, cols, ng)?;
        let mut off = 0;
        while off < ng {
            let len = self.batch_size.min(ng - off);
            out.push(Element::Batch(batch.slice(off, len)));
            off += len;
        }
        Ok(())
    }
}

impl Operator for AggregateOp {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        let n = batch.num_rows();
        let keys = self
            .group_exprs
            .iter()
            .map(|e| e.evaluate_array(&batch))
            .collect::<Result<Vec<_>>>()?;
        let mut ids = std::mem::take(&mut self.group_ids);
        self.groups.assign(&keys, n, &mut ids)?;
        let ng = self.groups.num_groups;
        for (spec, acc) in self.aggs.iter().zip(self.accs.iter_mut()) {
            let vals = spec
                .args
                .iter()
                .map(|e| e.evaluate_array(&batch))
                .collect::<Result<Vec<_>>>()?;
            if self.mode == AggMode::Final {
                acc.merge(&vals, &ids, ng)?;
            } else {
                acc.update(&vals, &ids, ng)?;
            }
        }
        self.group_ids = ids;
        if let Err(e) = self.reserve(true) {
            match self.mode {
                AggMode::Partial => {
                    self.emit(out)?;
                    self.reset()?;
                }
                _ if self.spillable() => self.spill_groups()?,
                _ => return Err(e),
            }
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        if self.spill.is_some() {
            self.spill_groups()?;
            self.next_bucket = Some(0);
            return Ok(());
        }
        self.emit(out)
    }

    fn has_pending(&self) -> bool {
        self.next_bucket.is_some()
    }

    fn resume(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let Some(b) = self.next_bucket else {
            return Ok(());
        };
        self.merge_bucket(b, out)?;
        if b + 1 < SPILL_BUCKETS {
            self.next_bucket = Some(b + 1);
        } else {
            self.next_bucket = None;
            self.spill = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};

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
}
