//! Hash aggregation in three modes: `Partial` (raw rows → per-group partial states),
//! `Final` (partial states → results, after a hash exchange on the group keys) and
//! `Complete` (raw rows → results in one phase; used for DISTINCT aggregates).
//!
//! Groups are found through a chained hash table over the key hashes (`group_table.rs`).
//! A `Partial` aggregation over input clustered by its keys (a batch finds under 5% of
//! its groups among those from before it) emits and starts over at [`PARTIAL_GROUPS`]
//! groups, so that its table stays small while the final phase holds every group once.
//!
//! A `Partial` or `Complete` aggregation may take over the filter below it
//! ([`AggregateExec::with_filter`]). When most of a batch's rows pass (at least
//! [`SELECTION_SHARE`]), only the group keys are cut to them: the aggregate arguments are
//! computed over the whole batch, the other rows are parked in a group past the last,
//! and the accumulators add the selected rows alone, so the rest of the batch is never
//! copied (TPC-H q1 keeps 98% of `lineitem`). Fewer passing rows are cut as the filter
//! cuts them, and so is a batch on which a key or argument fails over a row the filter
//! drops (`SUM(10 / x) ... WHERE x <> 0`).
//!
//! Under a memory limit: a `Partial` aggregation whose reservation is refused emits what it
//! has and starts over (the final phase merges duplicates anyway). `Final` and `Complete`
//! aggregations spill their groups as state batches into hash buckets and merge the
//! buckets one by one at the end (`aggregate_spill.rs`); DISTINCT aggregates and
//! aggregations without GROUP BY do not spill and fail with the reservation's error.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{filter_record_batch, FilterBuilder};
use arrow::datatypes::{DataType, SchemaRef};

use crate::error::{Result, SluiceError};
use crate::logical::expr::AggFunc;
use crate::physical::agg_accs::GroupAccs;
use crate::physical::aggregate_spill::AggSpill;
use crate::physical::common_exprs::CommonExprs;
use crate::physical::exchange::SPILL_BUCKETS;
use crate::physical::expr::PhysExpr;
use crate::physical::filter::FilterOp;
use crate::physical::group_table::GroupTable;
use crate::physical::memory::Reservation;
use crate::physical::{
    cast_to_schema, Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext,
};

/// Groups past which a `Partial` aggregation over input clustered by its keys
/// (`lineitem` by `l_orderkey`) emits its states and starts over: a key's rows still meet
/// in one table, and the final phase, which holds every group anyway, is not joined by a
/// partial table as large. On unclustered input the table keeps growing, so that rows of a
/// key seen long apart still merge.
const PARTIAL_GROUPS: usize = 1 << 18;

/// Share of a batch's rows at or above which a taken-over filter selects them in place
/// rather than cutting the batch: carrying the others along costs less than the copy.
const SELECTION_SHARE: f64 = 0.5;

/// Whether a batch whose rows went to groups `ids` found almost none of them among the
/// `known` groups from before it: the input comes clustered by its keys.
fn clustered(ids: &[u32], known: usize) -> bool {
    let old = ids.iter().filter(|&&g| (g as usize) < known).count();
    old * 20 < ids.len()
}

/// The group ids of every row of `sel` into `out`: the selected rows' ids (`picked`, in
/// order), and `parked` for the others.
fn park(picked: &[u32], sel: &BooleanBuffer, parked: u32, out: &mut Vec<u32>) {
    out.clear();
    out.resize(sel.len(), parked);
    for (row, &g) in sel.set_indices().zip(picked) {
        out[row] = g;
    }
}

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
    /// The predicate of a filter taken over (over `input`'s rows).
    filter: Option<PhysExpr>,
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
            filter: None,
        }
    }

    /// This aggregation over the rows of `input` that pass `predicate` (bound to
    /// `input`'s schema), taking over the filter's work; in `Final` mode, whose input
    /// rows are partial states, the predicate is refused.
    pub fn with_filter(mut self, input: Arc<dyn ExecNode>, predicate: PhysExpr) -> Result<Self> {
        if self.mode == AggMode::Final {
            return Err(SluiceError::exec(
                "aggregate: a final aggregation cannot take over a filter",
            ));
        }
        self.input = input;
        self.filter = Some(predicate);
        Ok(self)
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
        // Arguments that repeat a subexpression (q1's discounted price) compute it once.
        let mut aggs = self.aggs.clone();
        let mut args: Vec<PhysExpr> = aggs.iter().flat_map(|a| a.args.clone()).collect();
        let common = CommonExprs::extract(&mut args, &self.input.schema())?;
        let mut args = args.into_iter();
        for a in &mut aggs {
            a.args = args.by_ref().take(a.args.len()).collect();
        }
        let accs = fresh_accs(self.mode, &aggs)?;
        let op = AggregateOp {
            mode: self.mode,
            group_exprs: self.group_exprs.clone(),
            aggs,
            common,
            accs,
            groups: GroupTable::try_new(key_types.clone())?,
            filter: self.filter.clone().map(FilterOp::new),
            key_types,
            schema: self.schema.clone(),
            batch_size: ctx.config.batch_size,
            group_ids: vec![],
            selected_ids: vec![],
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
        let filter = match &self.filter {
            Some(p) => format!(", filter={p}"),
            None => String::new(),
        };
        format!(
            "mode={:?}, gby=[{}], aggr=[{}]{filter}",
            self.mode,
            g.join(", "),
            a.join(", ")
        )
    }
}

/// Empty accumulators for `mode`'s input rows (partial states in `Final` mode).
fn fresh_accs(mode: AggMode, aggs: &[AggSpec]) -> Result<GroupAccs> {
    match mode {
        AggMode::Final => GroupAccs::for_states(aggs),
        AggMode::Partial | AggMode::Complete => GroupAccs::for_rows(aggs),
    }
}

struct AggregateOp {
    mode: AggMode,
    group_exprs: Vec<PhysExpr>,
    aggs: Vec<AggSpec>,
    /// Subexpressions the aggregate arguments share, appended to each batch first.
    common: CommonExprs,
    accs: GroupAccs,
    groups: GroupTable,
    /// The filter taken over, if any.
    filter: Option<FilterOp>,
    schema: SchemaRef,
    batch_size: usize,
    group_ids: Vec<u32>,
    /// The group ids of the selected rows, before the others are parked among them.
    selected_ids: Vec<u32>,
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
        self.accs = fresh_accs(self.mode, &self.aggs)?;
        self.reservation.resize(0)
    }

    /// Empties the group table and the accumulators after a partial emission, keeping the
    /// group index at its size: the next groups fill it again (q18's partial aggregation
    /// over `l_orderkey` starts over every 256 Ki groups).
    fn restart(&mut self) -> Result<()> {
        if !self.groups.clear() {
            self.groups = GroupTable::try_new(self.key_types.clone())?;
        }
        self.accs = fresh_accs(self.mode, &self.aggs)?;
        Ok(())
    }

    /// Reserves what the groups hold; `spillable` growth stops at the pool's spillable
    /// share (see `memory.rs`), while merging a spilled bucket may use the whole limit.
    fn reserve(&mut self, spillable: bool) -> Result<()> {
        // Group index and keys, about 16 bytes of state per aggregate and group, and the
        // value sets of DISTINCT aggregates.
        let bytes = self.groups.memory_size()
            + self.groups.num_groups * 16 * self.aggs.len()
            + self.accs.extra_memory();
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
            cols.extend(self.accs.state(ng)?);
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
        // Spilled groups come back as partial states.
        self.accs = GroupAccs::for_states(&self.aggs)?;
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
            self.accs.merge_states(&self.aggs, &cols[nk..], &ids, ng)?;
            self.group_ids = ids;
            self.reserve(false)?;
        }
        self.emit(out)
    }

    /// Adds `batch`'s rows to their groups; with a selection `sel`, only the rows where
    /// it is set: groups come from their keys alone (a row the filter drops must not
    /// make a group), and the others are parked in the group past the last.
    fn add(&mut self, batch: RecordBatch, sel: Option<&BooleanBuffer>) -> Result<()> {
        let keys = self
            .group_exprs
            .iter()
            .map(|e| e.evaluate_array(&batch))
            .collect::<Result<Vec<_>>>()?;
        let mut ids = std::mem::take(&mut self.group_ids);
        match sel {
            None => self.groups.assign(&keys, batch.num_rows(), &mut ids)?,
            Some(sel) => {
                let cut = FilterBuilder::new(&BooleanArray::new(sel.clone(), None))
                    .optimize()
                    .build();
                let keys = keys
                    .iter()
                    .map(|k| cut.filter(k))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let mut picked = std::mem::take(&mut self.selected_ids);
                self.groups.assign(&keys, cut.count(), &mut picked)?;
                park(&picked, sel, self.groups.num_groups as u32, &mut ids);
                self.selected_ids = picked;
            }
        }
        let ng = self.groups.num_groups;
        let batch = if self.common.is_empty() {
            batch
        } else {
            self.common.extend(&batch)?
        };
        let added = self.accs.update(&self.aggs, &batch, &ids, ng, sel);
        self.group_ids = ids;
        added
    }

    /// Emits the current groups: partial states (Partial) or final values.
    fn emit(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let ng = self.groups.num_groups;
        let mut cols = self.groups.keys()?;
        if self.mode == AggMode::Partial {
            cols.extend(self.accs.state(ng)?);
        } else {
            cols.extend(self.accs.evaluate(&self.aggs, ng)?);
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
        let (batch, sel) = match &self.filter {
            None => (batch, None),
            Some(f) => {
                let share = if self.accs.takes_selection() {
                    SELECTION_SHARE
                } else {
                    f64::INFINITY
                };
                match f.select(batch, share)? {
                    Some((batch, mask)) => (batch, mask.map(|m| m.values().clone())),
                    None => return Ok(()),
                }
            }
        };
        let known = self.groups.num_groups;
        let sel = match sel {
            None => {
                self.add(batch, None)?;
                None
            }
            Some(sel) => match self.add(batch.clone(), Some(&sel)) {
                Ok(()) => Some(sel),
                Err(_) => {
                    // A key or argument may fail on a row the filter drops (`10 / x`
                    // under `x <> 0`). That fails before any sum or count changes (the
                    // groups found are the passing rows' own), and errors after it are
                    // the passing rows' own, which fail again: add the batch again, cut
                    // to the passing rows.
                    let keep = BooleanArray::new(sel, None);
                    self.add(filter_record_batch(&batch, &keep)?, None)?;
                    None
                }
            },
        };
        let ng = self.groups.num_groups;
        let assigned = match sel {
            Some(_) => &self.selected_ids,
            None => &self.group_ids,
        };
        if self.mode == AggMode::Partial && ng >= PARTIAL_GROUPS && clustered(assigned, known) {
            // Sends what it has on: the final phase merges the groups it sees again.
            self.emit(out)?;
            return self.restart();
        }
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

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{Field, Int64Type, Schema};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::physical::collect_partitions;
    use crate::physical::scan::MemoryExec;

    /// The partial states (key, COUNT(v)) a one-partition `Partial` aggregation emits for
    /// `keys`, fed in batches of 8192, as (key, count) pairs in output order.
    fn partial_counts(keys: Vec<i64>) -> Vec<(i64, i64)> {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batches = keys
            .chunks(8192)
            .map(|c| {
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(c.to_vec()))])
                    .expect("batch")
            })
            .collect();
        let input = Arc::new(MemoryExec::single(schema, batches));
        let out_schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("count[state0_0]", DataType::Int64, true),
        ]));
        let k = PhysExpr::Column(0, "k".into());
        let agg: Arc<dyn ExecNode> = Arc::new(AggregateExec::new(
            input,
            AggMode::Partial,
            vec![k.clone()],
            vec![AggSpec {
                func: AggFunc::Count,
                distinct: false,
                args: vec![k],
                input_type: Some(DataType::Int64),
            }],
            out_schema,
        ));
        let out = collect_partitions(&agg, &Arc::new(TaskContext::default())).expect("run");
        out.iter()
            .flat_map(|b| {
                let k = b.column(0).as_primitive::<Int64Type>().values().to_vec();
                let c = b.column(1).as_primitive::<Int64Type>().values().to_vec();
                k.into_iter().zip(c)
            })
            .collect()
    }

    /// On input clustered by the key, a partial table emits and starts over once it holds
    /// `PARTIAL_GROUPS` groups: keys seen again later are emitted twice (the final phase
    /// adds them up). Unclustered input keeps one table, so every key is emitted once.
    #[test]
    fn partial_tables_over_clustered_input_are_bounded() {
        let n = PARTIAL_GROUPS as i64 + 50_000;
        // Clustered: each key twice in a row, then keys 0..10 again at the end.
        let mut keys: Vec<i64> = (0..n).flat_map(|k| [k, k]).collect();
        keys.extend(0..10);
        let got = partial_counts(keys);
        assert_eq!(got.len(), n as usize + 10, "keys 0..10 emitted twice");
        assert!(got.len() > PARTIAL_GROUPS);
        let first_flush = &got[..PARTIAL_GROUPS];
        assert!(first_flush.iter().all(|&(_, c)| c == 2));
        let total: i64 = got.iter().map(|&(_, c)| c).sum();
        assert_eq!(total, 2 * n + 10);
        let zeros: Vec<i64> = got.iter().filter(|p| p.0 == 0).map(|p| p.1).collect();
        assert_eq!(zeros, vec![2, 1]);

        // Unclustered: random keys, most batches meet many keys seen before.
        let mut rng = StdRng::seed_from_u64(7);
        let keys: Vec<i64> = (0..2 * n).map(|_| rng.random_range(0..n)).collect();
        let distinct = keys.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(distinct > PARTIAL_GROUPS);
        let got = partial_counts(keys);
        assert_eq!(got.len(), distinct, "every key emitted once");
        assert_eq!(got.iter().map(|&(_, c)| c).sum::<i64>(), 2 * n);
    }
}
