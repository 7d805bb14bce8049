//! Windowed aggregation over a stream: `GROUP BY window_start, window_end, keys` after a
//! window table function. Each batch is pre-aggregated (vectorized, one group per window
//! and key in the batch) and each group's partial state is appended to keyed state
//! (`sluice-state` list state: key = the arrow-row encoded group keys, namespace = the
//! window). An event-time timer at the window's last instant fires it: the window's
//! partial states are merged by the accumulators and emitted once, and its state is
//! dropped. Rows for windows that already fired are late: dropped and counted.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use arrow::compute::{filter, filter_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::RowConverter;
use sluice_state::{
    KeyedStateBackend, MemoryStateBackend, StateDescriptor, ValueState, WindowNamespace,
    WINDOW_NAMESPACE_LEN,
};

use super::partial::{row_of, AggCalls, PartialRow};
use super::{key_converter, operator_backend};
use crate::error::{Result, SluiceError};
use crate::physical::aggregate::AggSpec;
use crate::physical::expr::PhysExpr;
use crate::physical::window_tvf::{micros_per_unit, to_micros};
use crate::physical::{
    cast_to_schema, Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext,
};

/// The plan node.
#[derive(Debug)]
pub struct WindowAggregateExec {
    input: Arc<dyn ExecNode>,
    group_exprs: Vec<PhysExpr>,
    /// Positions of `window_start` and `window_end` among `group_exprs`.
    window: (usize, usize),
    aggs: AggCalls,
    schema: SchemaRef,
    /// Microseconds per unit of the window columns (0: nanoseconds).
    micros_per_unit: i64,
    /// Rows dropped because their window had already fired.
    pub late_rows: Arc<AtomicU64>,
}

impl WindowAggregateExec {
    /// Aggregates `input` (partitioned by the non-window keys' key groups) per window.
    pub fn try_new(
        input: Arc<dyn ExecNode>,
        group_exprs: Vec<PhysExpr>,
        window: (usize, usize),
        aggs: Vec<AggSpec>,
        schema: SchemaRef,
    ) -> Result<Self> {
        let aggs = AggCalls::try_new(aggs)?;
        let t = group_exprs[window.1].data_type(&input.schema())?;
        let micros_per_unit = micros_per_unit(&t)
            .ok_or_else(|| SluiceError::plan(format!("window_end must be a TIMESTAMP, got {t}")))?;
        Ok(Self {
            input,
            group_exprs,
            window,
            aggs,
            schema,
            micros_per_unit,
            late_rows: Arc::new(AtomicU64::new(0)),
        })
    }
}

impl ExecNode for WindowAggregateExec {
    fn name(&self) -> &'static str {
        "WindowAggregateExec"
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
        let in_schema = self.input.schema();
        let key_exprs: Vec<PhysExpr> = self
            .group_exprs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.window.0 && *i != self.window.1)
            .map(|(_, e)| e.clone())
            .collect();
        let converter = key_converter(&key_exprs, &in_schema)?;
        let mut backend = operator_backend(self.output_partitions(), partition)?;
        let partials = backend.register_value::<PartialRow>(&StateDescriptor::new("partials"))?;
        let op = WindowAggOp {
            group_exprs: self.group_exprs.clone(),
            window: self.window,
            converter,
            key_exprs,
            aggs: self.aggs.clone(),
            schema: self.schema.clone(),
            micros_per_unit: self.micros_per_unit,
            backend,
            partials,
            watermark: i64::MIN,
            late_rows: self.late_rows.clone(),
            pending: Vec::new(),
            pending_rows: 0,
            pending_fire: i64::MAX,
        };
        Ok(OperatorStream::boxed(input, op))
    }
    fn metrics(&self) -> String {
        format!("late_rows={}", self.late_rows.load(Ordering::Relaxed))
    }
    fn details(&self) -> String {
        let g: Vec<String> = self.group_exprs.iter().map(ToString::to_string).collect();
        let a: Vec<String> = self
            .aggs
            .specs()
            .iter()
            .map(|a| a.func.to_string())
            .collect();
        format!("group=[{}], aggs=[{}]", g.join(", "), a.join(", "))
    }
}

struct WindowAggOp {
    group_exprs: Vec<PhysExpr>,
    window: (usize, usize),
    key_exprs: Vec<PhysExpr>,
    converter: RowConverter,
    aggs: AggCalls,
    schema: SchemaRef,
    micros_per_unit: i64,
    backend: MemoryStateBackend,
    /// Each (key, window)'s merged partial state.
    partials: ValueState<PartialRow>,
    /// The current watermark (µs).
    watermark: i64,
    late_rows: Arc<AtomicU64>,
    /// On-time rows not aggregated yet (see [`MINI_BATCH_ROWS`]).
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// The earliest watermark (µs) at which a window of a pending row fires: the buffer
    /// is aggregated before such a watermark is handled.
    pending_fire: i64,
}

/// Rows buffered before they are aggregated into keyed state. The buffer is also
/// aggregated before a watermark that fires one of its windows, before a checkpoint
/// barrier and at the end, so results and their timing do not change.
const MINI_BATCH_ROWS: usize = 65_536;

impl WindowAggOp {
    fn to_micros(&self, v: i64) -> i64 {
        to_micros(v, self.micros_per_unit)
    }

    /// The window bounds of every row, as i64 in the column's unit.
    fn bounds(&self, batch: &RecordBatch) -> Result<(ArrayRef, ArrayRef)> {
        let get = |i: usize| -> Result<ArrayRef> {
            let a = self.group_exprs[i].evaluate_array(batch)?;
            Ok(arrow::compute::cast(&a, &DataType::Int64)?)
        };
        Ok((get(self.window.0)?, get(self.window.1)?))
    }

    /// The rows whose window has not fired yet, with their window bounds; the others are
    /// late: dropped and counted.
    fn on_time(&self, batch: RecordBatch) -> Result<(RecordBatch, ArrayRef, ArrayRef)> {
        let (starts, ends) = self.bounds(&batch)?;
        if self.watermark == i64::MIN {
            return Ok((batch, starts, ends));
        }
        let keep: BooleanArray = ends
            .as_primitive::<Int64Type>()
            .iter()
            .map(|e| Some(e.is_some_and(|e| self.to_micros(e) - 1 > self.watermark)))
            .collect();
        let late = keep.false_count();
        if late == 0 {
            return Ok((batch, starts, ends));
        }
        self.late_rows.fetch_add(late as u64, Ordering::Relaxed);
        Ok((
            filter_record_batch(&batch, &keep)?,
            filter(&starts, &keep)?,
            filter(&ends, &keep)?,
        ))
    }

    /// Fires the window `ns`: merges its partial states and emits one row per key.
    fn fire(&mut self, ns: &[u8], out: &mut Vec<Element>) -> Result<()> {
        let window = WindowNamespace::decode(ns)?;
        let mut keys: Vec<&[u8]> = Vec::new();
        let mut rows: Vec<&PartialRow> = Vec::new();
        for (k, r) in self.partials.entries_in(&self.backend, ns)? {
            keys.push(k);
            rows.push(r);
        }
        if keys.is_empty() {
            return Ok(());
        }
        let ng = keys.len();
        let values = self.aggs.values_of(&self.aggs.columns_of(&rows)?, ng)?;
        let parser = self.converter.parser();
        let mut key_cols = if self.key_exprs.is_empty() {
            vec![]
        } else {
            self.converter
                .convert_rows(keys.iter().map(|k| parser.parse(k)))?
        }
        .into_iter();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for i in 0..self.group_exprs.len() {
            let c: ArrayRef = if i == self.window.0 {
                Arc::new(Int64Array::from(vec![window.start_ms; ng]))
            } else if i == self.window.1 {
                Arc::new(Int64Array::from(vec![window.end_ms; ng]))
            } else {
                key_cols
                    .next()
                    .ok_or_else(|| SluiceError::exec("window aggregate: missing key column"))?
            };
            cols.push(c);
        }
        cols.extend(values);
        out.push(Element::Batch(cast_to_schema(&self.schema, cols, ng)?));
        self.backend.clear_namespace(ns);
        Ok(())
    }
}

impl WindowAggOp {
    /// Aggregates the buffered rows into keyed state.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        self.pending_fire = i64::MAX;
        let batch = match batches.as_slice() {
            [one] => one.clone(),
            _ => arrow::compute::concat_batches(&batches[0].schema(), &batches)?,
        };
        let (starts, ends) = self.bounds(&batch)?;
        self.aggregate(batch, starts, ends)
    }

    /// Aggregates `batch` (on-time rows with their window bounds) into keyed state.
    fn aggregate(&mut self, batch: RecordBatch, starts: ArrayRef, ends: ArrayRef) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let (starts, ends) = (
            starts.as_primitive::<Int64Type>(),
            ends.as_primitive::<Int64Type>(),
        );
        let key_cols = self
            .key_exprs
            .iter()
            .map(|e| e.evaluate_array(&batch))
            .collect::<Result<Vec<_>>>()?;
        let rows = (!key_cols.is_empty())
            .then(|| self.converter.convert_columns(&key_cols))
            .transpose()?;
        let key_of = |i: usize| -> &[u8] { rows.as_ref().map_or(&[], |r| r.row(i).data()) };
        // One group per (window, key) in this batch.
        let mut index: HashMap<(i64, i64, &[u8]), u32, ahash::RandomState> = HashMap::default();
        let mut firsts: Vec<usize> = Vec::new();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let k = (starts.value(i), ends.value(i), key_of(i));
            let next = firsts.len() as u32;
            let id = *index.entry(k).or_insert_with(|| {
                firsts.push(i);
                next
            });
            ids.push(id);
        }
        let ng = firsts.len();
        let nss: Vec<[u8; WINDOW_NAMESPACE_LEN]> = firsts
            .iter()
            .map(|&i| WindowNamespace::new(starts.value(i), ends.value(i)).encode())
            .collect();
        // The batch's partial state of each (key, window), merged into the stored one in
        // place (one lookup, no allocation for a group seen before).
        let mut accs = self.aggs.update(&batch, &ids, ng)?;
        let states = self.aggs.states(&mut accs, ng)?;
        let mut failed = None;
        for (g, &i) in firsts.iter().enumerate() {
            self.partials.upsert(
                &mut self.backend,
                key_of(i),
                &nss[g],
                || row_of(&states, g),
                |stored| {
                    if let Err(e) = self.aggs.merge_into(stored, &states, g) {
                        failed = Some(e);
                    }
                },
            )?;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.register_timers(&firsts, starts, ends, &nss, &key_of)
    }

    /// One timer per window of this batch (a batch spans few windows: a linear scan is
    /// enough); `firsts[g]` is a row of group `g`, whose namespace is `nss[g]`.
    fn register_timers<'k>(
        &mut self,
        firsts: &[usize],
        starts: &Int64Array,
        ends: &Int64Array,
        nss: &[[u8; WINDOW_NAMESPACE_LEN]],
        key_of: &dyn Fn(usize) -> &'k [u8],
    ) -> Result<()> {
        let mut windows: Vec<(i64, i64)> = Vec::new();
        for (g, &i) in firsts.iter().enumerate() {
            let w = (starts.value(i), ends.value(i));
            if !windows.contains(&w) {
                windows.push(w);
                let fire_at = self.to_micros(ends.value(i)) - 1;
                self.backend
                    .timers_mut()
                    .register_event_time_timer(fire_at, key_of(i), &nss[g])?;
            }
        }
        Ok(())
    }
}

impl Operator for WindowAggOp {
    /// Buffers the batch's on-time rows (a mini-batch): aggregating many batches at once
    /// revises each (key, window) state once for many rows.
    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<Element>) -> Result<()> {
        let (batch, _, ends) = self.on_time(batch)?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let first_end = arrow::compute::min(ends.as_primitive::<Int64Type>()).unwrap_or(i64::MAX);
        self.pending_fire = self.pending_fire.min(self.to_micros(first_end) - 1);
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
        if self.pending_rows >= MINI_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, ts: i64, out: &mut Vec<Element>) -> Result<()> {
        self.watermark = self.watermark.max(ts);
        if self.pending_fire <= ts {
            self.flush()?;
        }
        let fired = self.backend.timers_mut().advance_watermark(ts);
        let mut seen = BTreeSet::new();
        for t in fired {
            if seen.insert(t.namespace.clone()) {
                self.fire(&t.namespace, out)?;
            }
        }
        out.push(Element::Watermark(ts));
        Ok(())
    }

    /// A checkpoint's snapshot must hold every row that came before the barrier.
    fn on_barrier(&mut self, id: u64, out: &mut Vec<Element>) -> Result<()> {
        self.flush()?;
        out.push(Element::Barrier(id));
        Ok(())
    }

    /// The input ended: every window still open fires (as at a final `i64::MAX` watermark).
    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        self.flush()?;
        let open: BTreeSet<Vec<u8>> = self
            .partials
            .entries(&self.backend)?
            .map(|(_, ns, _)| ns.to_vec())
            .collect();
        for ns in open {
            self.fire(&ns, out)?;
        }
        Ok(())
    }
}
