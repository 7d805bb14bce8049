//! Dynamic filters: a hash join, once its build side is in memory, knows every key a probe
//! row can match. For an integer key the planner traces the probe key back to the scan
//! that produces it (through projections, filters, group keys and the row-keeping side of
//! joins) and puts a [`DynamicFilterExec`] over that scan; the join fills in the key set
//! when its build completes, and from then on the scan's rows whose key no build row has
//! are dropped at once, before they are hashed, exchanged or aggregated. (TPC-H q17 joins
//! 200 parts with an aggregate of all 6 M lineitem rows: the filter cuts it to 6 000.)
//!
//! The filter is only an early copy of what the join does anyway, so it applies only
//! where dropping a non-matching probe row cannot change the result: inner and semi joins
//! and joins that preserve only the build side. Batches the scan produced before the
//! build finished pass unfiltered, and a partition stops testing rows once the filter
//! has kept nearly all of its first rows (an unfiltered build side). No filter is planned
//! at all where the estimates say the build side holds every key its probe rows can
//! have ([`keeps_everything`]). The key set is a bitmap over `[min, max]` when that
//! range is small, a hash set when the build is small, and the range alone otherwise.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};

use crate::error::Result;
use crate::logical::expr::Expr;
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::optimizer::estimate::estimate;
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// Widest key range kept as a bitmap (bits; 8 MiB).
const MAX_BITMAP_BITS: i64 = 1 << 26;
/// Most distinct keys kept in a hash set when the range is too wide for a bitmap.
const MAX_SET_KEYS: usize = 1 << 20;
/// Rows a partition tests before judging whether the filter is worth its cost.
const TRIAL_ROWS: u64 = 100_000;
/// The share of rows kept above which a partition stops testing (after the trial).
const USELESS_KEPT: f64 = 0.95;

/// The keys of a join's build side, as the probe-side scan tests them.
#[derive(Debug)]
enum KeySet {
    /// No build row has a (non-NULL) key: nothing matches.
    Empty,
    /// Bit `k - min` is set for each key `k`.
    Bitmap { min: i64, bits: Vec<u64> },
    /// The keys, with their range to reject most rows before hashing.
    Set {
        min: i64,
        max: i64,
        keys: HashSet<i64, ahash::RandomState>,
    },
    /// Only the keys' range.
    Range { min: i64, max: i64 },
}

impl KeySet {
    fn from_keys(keys: &ArrayRef) -> Result<Self> {
        let keys = arrow::compute::cast(keys, &DataType::Int64)?;
        let keys = keys.as_primitive::<Int64Type>();
        let (Some(min), Some(max)) = (arrow::compute::min(keys), arrow::compute::max(keys)) else {
            return Ok(KeySet::Empty);
        };
        let valid = || keys.iter().flatten();
        if max.checked_sub(min).is_some_and(|r| r < MAX_BITMAP_BITS) {
            let mut bits = vec![0u64; ((max - min) as usize) / 64 + 1];
            for k in valid() {
                let o = (k - min) as usize;
                bits[o / 64] |= 1 << (o % 64);
            }
            Ok(KeySet::Bitmap { min, bits })
        } else if keys.len() <= MAX_SET_KEYS {
            Ok(KeySet::Set {
                min,
                max,
                keys: valid().collect(),
            })
        } else {
            Ok(KeySet::Range { min, max })
        }
    }

    /// Which of `keys` (NULL matches nothing) are in the set. Matches on the kind once a
    /// batch, not once a row.
    fn mask(&self, keys: &Int64Array) -> BooleanArray {
        let values = keys.values();
        let valid = |i: usize| keys.is_valid(i);
        let bits = match self {
            KeySet::Empty => BooleanBuffer::new_unset(keys.len()),
            KeySet::Bitmap { min, bits } => BooleanBuffer::collect_bool(keys.len(), |i| {
                let o = values[i].wrapping_sub(*min) as u64;
                valid(i)
                    && bits
                        .get((o / 64) as usize)
                        .is_some_and(|w| w & (1 << (o % 64)) != 0)
            }),
            KeySet::Set {
                min,
                max,
                keys: set,
            } => BooleanBuffer::collect_bool(keys.len(), |i| {
                let k = values[i];
                valid(i) && (*min..=*max).contains(&k) && set.contains(&k)
            }),
            KeySet::Range { min, max } => BooleanBuffer::collect_bool(keys.len(), |i| {
                valid(i) && (*min..=*max).contains(&values[i])
            }),
        };
        BooleanArray::new(bits, None)
    }

    /// Whether `k` is in the set (through [`KeySet::mask`]).
    #[cfg(test)]
    fn contains(&self, k: i64) -> bool {
        self.mask(&Int64Array::from(vec![k])).value(0)
    }
}

/// The slot a join fills with its build keys and the probe-side scan reads.
#[derive(Debug, Default)]
pub struct DynamicFilter {
    keys: OnceLock<KeySet>,
}

impl DynamicFilter {
    /// Sets the filter from the build side's key column (the first call wins).
    pub fn set(&self, build_keys: &ArrayRef) -> Result<()> {
        if self.keys.get().is_none() {
            let _ = self.keys.set(KeySet::from_keys(build_keys)?);
        }
        Ok(())
    }

    /// Which of `values` (an integer or date column) match a build key; None while the
    /// join has not set the filter.
    pub fn mask(&self, values: &ArrayRef) -> Result<Option<BooleanArray>> {
        let Some(keys) = self.keys.get() else {
            return Ok(None);
        };
        let values = arrow::compute::cast(values, &DataType::Int64)?;
        Ok(Some(keys.mask(values.as_primitive::<Int64Type>())))
    }
}

/// True when a filter by the build side's `build_key` would keep every row of probe
/// column `probe_column` by what is known: the build side is a whole table (no filter,
/// join or aggregate below it, and no dynamic filter of an enclosing join over its scan
/// in `build_exec`), and the probe column's range, from statistics, lies inside the
/// build key's. (Probe keys are taken to reference the build key, as the
/// join estimate takes them.) TPC-H q9 builds all of `orders` and `partsupp`: filters
/// by their keys would cost a pass over 3 M keys and keep every lineitem row.
pub fn keeps_everything(
    build: &LogicalPlan,
    build_exec: &dyn ExecNode,
    build_key: &Expr,
    probe: &LogicalPlan,
    probe_column: usize,
) -> bool {
    let Expr::Column(c) = build_key else {
        return false;
    };
    if !whole_table(build) || dynamically_filtered(build_exec) {
        return false;
    }
    let Ok(i) = build.schema().index_of(c) else {
        return false;
    };
    let Some(b) = estimate(build).columns.get(i).copied() else {
        return false;
    };
    let Some(p) = estimate(probe).columns.get(probe_column).copied() else {
        return false;
    };
    match (b.min, b.max, p.min, p.max) {
        (Some(bmin), Some(bmax), Some(pmin), Some(pmax)) => bmin <= pmin && pmax <= bmax,
        _ => false,
    }
}

/// True when some [`DynamicFilterExec`] is in `plan`.
fn dynamically_filtered(plan: &dyn ExecNode) -> bool {
    plan.name() == "DynamicFilterExec"
        || plan
            .children()
            .iter()
            .any(|c| dynamically_filtered(c.as_ref()))
}

/// True when `plan` outputs every row of one table.
fn whole_table(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Scan { .. } => true,
        LogicalPlan::Projection { input, .. } | LogicalPlan::Alias { input, .. } => {
            whole_table(input)
        }
        _ => false,
    }
}

/// Whether a probe key column of this type can carry a dynamic filter.
pub fn filterable(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Date32)
}

/// Where probe column `column` of `plan` comes from, if from a scan whose rows may be
/// dropped when their value of it matches no build key: the scan node and its column.
pub fn scan_origin(plan: &LogicalPlan, column: usize) -> Option<(&LogicalPlan, usize)> {
    match plan {
        LogicalPlan::Scan { .. } => Some((plan, column)),
        LogicalPlan::Projection { input, exprs, .. } => {
            let c = exprs.get(column)?.as_column()?;
            scan_origin(input, input.schema().index_of(c).ok()?)
        }
        LogicalPlan::Filter { input, .. }
        | LogicalPlan::Alias { input, .. }
        | LogicalPlan::Sort {
            input, fetch: None, ..
        } => scan_origin(input, column),
        LogicalPlan::Aggregate {
            input, group_by, ..
        } => scan_origin(
            input,
            input
                .schema()
                .index_of(group_by.get(column)?.as_column()?)
                .ok()?,
        ),
        LogicalPlan::Join {
            left,
            right,
            join_type,
            ..
        } => {
            // Rows of a join's preserved (or inner) side may go: their every output row
            // carries the key that matches no build row.
            let width = left.schema().fields().len();
            match (join_type, column.checked_sub(width)) {
                (JoinType::Right | JoinType::Full, _) => None,
                (_, None) => scan_origin(left, column),
                (JoinType::Inner, Some(c)) => scan_origin(right, c),
                _ => None,
            }
        }
        _ => None,
    }
}

/// How many times the node at `target` occurs in `plan` (a shared subtree occurs more
/// than once, and a filter meant for one use must not reach the other).
pub fn occurrences(plan: &LogicalPlan, target: &LogicalPlan) -> usize {
    usize::from(std::ptr::eq(plan, target))
        + plan
            .inputs()
            .iter()
            .map(|i| occurrences(i, target))
            .sum::<usize>()
}

/// Drops the rows of its input whose `column` matches no build key, once the join has
/// set its [`DynamicFilter`].
#[derive(Debug)]
pub struct DynamicFilterExec {
    input: Arc<dyn ExecNode>,
    column: usize,
    filter: Arc<DynamicFilter>,
    rows_in: Arc<AtomicU64>,
    rows_out: Arc<AtomicU64>,
}

impl DynamicFilterExec {
    /// Filters `input` on `column` by `filter`.
    pub fn new(input: Arc<dyn ExecNode>, column: usize, filter: Arc<DynamicFilter>) -> Self {
        Self {
            input,
            column,
            filter,
            rows_in: Arc::default(),
            rows_out: Arc::default(),
        }
    }
}

impl ExecNode for DynamicFilterExec {
    fn name(&self) -> &'static str {
        "DynamicFilterExec"
    }
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.input.output_partitions()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let op = FilterOp {
            column: self.column,
            filter: self.filter.clone(),
            rows_in: self.rows_in.clone(),
            rows_out: self.rows_out.clone(),
            tested: 0,
            kept: 0,
        };
        Ok(OperatorStream::boxed(
            self.input.execute(partition, ctx)?,
            op,
        ))
    }
    fn details(&self) -> String {
        format!(
            "{} in the join's build keys",
            self.input.schema().field(self.column).name()
        )
    }
    fn metrics(&self) -> String {
        format!(
            "rows_in={}, rows_out={}",
            self.rows_in.load(Ordering::Relaxed),
            self.rows_out.load(Ordering::Relaxed)
        )
    }
}

struct FilterOp {
    column: usize,
    filter: Arc<DynamicFilter>,
    rows_in: Arc<AtomicU64>,
    rows_out: Arc<AtomicU64>,
    /// Rows this partition tested, and kept.
    tested: u64,
    kept: u64,
}

impl FilterOp {
    /// True once the trial showed the filter keeps nearly every row.
    fn useless(&self) -> bool {
        self.tested >= TRIAL_ROWS && self.kept as f64 > USELESS_KEPT * self.tested as f64
    }
}

impl Operator for FilterOp {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        self.rows_in
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        let mask = match self.useless() {
            true => None,
            false => self.filter.mask(batch.column(self.column))?,
        };
        let Some(mask) = mask else {
            self.rows_out
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            out.push(Element::Batch(batch));
            return Ok(());
        };
        let kept = filter_record_batch(&batch, &mask)?;
        self.tested += batch.num_rows() as u64;
        self.kept += kept.num_rows() as u64;
        self.rows_out
            .fetch_add(kept.num_rows() as u64, Ordering::Relaxed);
        if kept.num_rows() > 0 {
            out.push(Element::Batch(kept));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[Option<i64>]) -> KeySet {
        KeySet::from_keys(&(Arc::new(Int64Array::from(keys.to_vec())) as ArrayRef))
            .expect("key set")
    }

    #[test]
    fn each_kind_of_key_set_holds_exactly_the_build_keys() {
        let narrow = set(&[Some(5), None, Some(70), Some(5)]);
        assert!(matches!(narrow, KeySet::Bitmap { .. }));
        let wide = set(&[Some(-1 << 40), Some(1 << 40), Some(3)]);
        assert!(matches!(wide, KeySet::Set { .. }));
        for (s, keys) in [(&narrow, vec![5, 70]), (&wide, vec![-1 << 40, 1 << 40, 3])] {
            for k in [
                -1 << 40,
                -1,
                0,
                3,
                4,
                5,
                6,
                69,
                70,
                71,
                // Past the bitmap's last word (it ends at 5 + 128).
                132,
                133,
                1 << 40,
                i64::MAX,
                i64::MIN,
            ] {
                assert_eq!(s.contains(k), keys.contains(&k), "{k} in {s:?}");
            }
        }
        let empty = set(&[None]);
        assert!(!empty.contains(0));
        let range = KeySet::Range { min: 1, max: 3 };
        assert!(range.contains(2) && !range.contains(4));
    }

    #[test]
    fn null_probe_keys_match_nothing() {
        // The NULL slot holds a value that is in every set.
        let probe = Int64Array::new(
            vec![5, 5, 70, 6].into(),
            Some(vec![true, false, true, true].into()),
        );
        let expected = [true, false, true, false];
        let bitmap = set(&[Some(5), Some(70)]);
        let hashed = set(&[Some(5), Some(70), Some(1 << 40)]);
        let range = KeySet::Range { min: 5, max: 70 };
        for s in [&bitmap, &hashed] {
            let m = s.mask(&probe);
            assert_eq!(m.null_count(), 0);
            assert_eq!(m.iter().flatten().collect::<Vec<_>>(), expected, "{s:?}");
        }
        let m = range.mask(&probe);
        assert_eq!(
            m.iter().flatten().collect::<Vec<_>>(),
            [true, false, true, true]
        );
    }
}
