//! Windowed aggregation over a stream: `GROUP BY window_start, window_end, keys` after a
//! window table function. Each batch is pre-aggregated (vectorized, one group per window
//! and key in the batch) and each group's partial state is appended to keyed state
//! (`sluice-state` list state: key = the arrow-row encoded group keys, namespace = the
//! window). An event-time timer at the window's last instant fires it: the window's
//! partial states are merged by the accumulators and emitted once, and its state is
//! dropped. Rows for windows that already fired are late: dropped and counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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

use super::changelog::{op_column, with_op_last, RowKind};
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
    /// Allowed lateness (µs): a fired window keeps its state this long and late rows
    /// revise it (`-U`/`+U`); the output is then a changelog.
    lateness: Option<i64>,
}

impl WindowAggregateExec {
    /// With allowed lateness `lateness` (`table.exec.emit.allow-lateness`; `None`: late
    /// rows are dropped and the output is append-only).
    pub fn with_allowed_lateness(mut self, lateness: Option<std::time::Duration>) -> Self {
        self.lateness = lateness.map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        self
    }

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
            lateness: None,
        })
    }
}

impl ExecNode for WindowAggregateExec {
    fn name(&self) -> &'static str {
        "WindowAggregateExec"
    }
    fn schema(&self) -> SchemaRef {
        match self.lateness {
            Some(_) => with_op_last(&self.schema),
            None => self.schema.clone(),
        }
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
            lateness: self.lateness,
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
        let mut d = format!("group=[{}], aggs=[{}]", g.join(", "), a.join(", "));
        if let Some(l) = self.lateness {
            d.push_str(&format!(", allowed lateness={}ms, changelog", l / 1000));
        }
        d
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
    /// Allowed lateness (µs), see [`WindowAggregateExec::with_allowed_lateness`].
    lateness: Option<i64>,
}

/// A window's revised rows: encoded keys, partial states and row kinds.
type Revisions<'a> = (Vec<&'a [u8]>, Vec<PartialRow>, Vec<RowKind>);

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
            .map(|e| {
                Some(e.is_some_and(|e| {
                    (self.to_micros(e) - 1).saturating_add(self.lateness.unwrap_or(0))
                        > self.watermark
                }))
            })
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

    /// Fires the window `ns`: merges its partial states and emits one row per key. With
    /// allowed lateness the state stays (late rows revise it) until a second timer, at
    /// the end of the lateness, drops it.
    fn fire(&mut self, ns: &[u8], out: &mut Vec<Element>) -> Result<()> {
        let mut keys: Vec<&[u8]> = Vec::new();
        let mut rows: Vec<&PartialRow> = Vec::new();
        for (k, r) in self.partials.entries_in(&self.backend, ns)? {
            keys.push(k);
            rows.push(r);
        }
        if !keys.is_empty() {
            let kinds = vec![RowKind::Insert; keys.len()];
            out.push(Element::Batch(self.window_rows(ns, &keys, &rows, &kinds)?));
        }
        match self.lateness {
            Some(l) => {
                let window = WindowNamespace::decode(ns)?;
                let drop_at = self.fire_time(window.end_ms).saturating_add(l);
                if let Some(key) = keys.first().map(|k| k.to_vec()) {
                    self.backend
                        .timers_mut()
                        .register_event_time_timer(drop_at, &key, ns)?;
                }
            }
            None => {
                self.backend.clear_namespace(ns);
            }
        }
        Ok(())
    }

    /// The watermark (µs) at which a window ending at `end` (column unit) fires.
    fn fire_time(&self, end: i64) -> i64 {
        self.to_micros(end) - 1
    }

    /// Output rows of window `ns`: group keys `keys` (encoded), values of the partial
    /// states `rows`, row kinds `kinds` (an `op` column only with allowed lateness).
    fn window_rows(
        &self,
        ns: &[u8],
        keys: &[&[u8]],
        rows: &[&PartialRow],
        kinds: &[RowKind],
    ) -> Result<RecordBatch> {
        let window = WindowNamespace::decode(ns)?;
        let ng = keys.len();
        let values = self.aggs.values_of(&self.aggs.columns_of(rows)?, ng)?;
        let parser = self.converter.parser();
        let mut key_cols = if self.key_exprs.is_empty() {
            vec![]
        } else {
            self.converter
                .convert_rows(keys.iter().map(|k| parser.parse(k)))?
        }
        .into_iter();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len() + 1);
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
        let batch = cast_to_schema(&self.schema, cols, ng)?;
        if self.lateness.is_none() {
            return Ok(batch);
        }
        let mut cols = batch.columns().to_vec();
        cols.push(op_column(kinds.iter().copied()));
        Ok(RecordBatch::try_new(with_op_last(&self.schema), cols)?)
    }
}

impl WindowAggOp {
    /// Aggregates the buffered rows into keyed state.
    fn flush(&mut self, out: &mut Vec<Element>) -> Result<()> {
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
        self.aggregate(batch, starts, ends, out)
    }

    /// Aggregates `batch` (on-time rows with their window bounds) into keyed state.
    fn aggregate(
        &mut self,
        batch: RecordBatch,
        starts: ArrayRef,
        ends: ArrayRef,
        out: &mut Vec<Element>,
    ) -> Result<()> {
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
        // Groups of windows that fired already (allowed lateness): their results are
        // revised, so their state before the merge is kept to retract it.
        let mut revised: Vec<(usize, Option<PartialRow>)> = Vec::new();
        if self.lateness.is_some() {
            for (g, &i) in firsts.iter().enumerate() {
                if self.fire_time(ends.value(i)) <= self.watermark {
                    let old = self.partials.get(&self.backend, key_of(i), &nss[g])?;
                    revised.push((g, old.cloned()));
                }
            }
        }
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
        self.emit_revisions(&revised, &firsts, &nss, &key_of, out)?;
        self.register_timers(&firsts, starts, ends, &nss, &key_of)
    }

    /// `-U`/`+U` (or `+I` for a key new to the window) for each group of a fired window
    /// whose state a late row changed; `revised` holds each such group's state before.
    fn emit_revisions<'k>(
        &self,
        revised: &[(usize, Option<PartialRow>)],
        firsts: &[usize],
        nss: &[[u8; WINDOW_NAMESPACE_LEN]],
        key_of: &dyn Fn(usize) -> &'k [u8],
        out: &mut Vec<Element>,
    ) -> Result<()> {
        let mut by_window: BTreeMap<&[u8], Revisions> = BTreeMap::new();
        for (g, old) in revised {
            let (key, ns) = (key_of(firsts[*g]), &nss[*g][..]);
            let Some(new) = self.partials.get(&self.backend, key, ns)? else {
                continue;
            };
            if old.as_ref() == Some(new) {
                continue;
            }
            let (keys, rows, kinds) = by_window.entry(ns).or_default();
            if let Some(old) = old {
                keys.push(key);
                rows.push(old.clone());
                kinds.push(RowKind::UpdateBefore);
            }
            keys.push(key);
            rows.push(new.clone());
            kinds.push(match old {
                Some(_) => RowKind::UpdateAfter,
                None => RowKind::Insert,
            });
        }
        for (ns, (keys, rows, kinds)) in by_window {
            let rows: Vec<&PartialRow> = rows.iter().collect();
            out.push(Element::Batch(self.window_rows(ns, &keys, &rows, &kinds)?));
        }
        Ok(())
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
            let fire_at = self.fire_time(ends.value(i));
            // A window that fired already (allowed lateness) does not fire again.
            if !windows.contains(&w) && fire_at > self.watermark {
                windows.push(w);
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
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        let (batch, _, ends) = self.on_time(batch)?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let first_end = arrow::compute::min(ends.as_primitive::<Int64Type>()).unwrap_or(i64::MAX);
        self.pending_fire = self.pending_fire.min(self.to_micros(first_end) - 1);
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
        if self.pending_rows >= MINI_BATCH_ROWS {
            self.flush(out)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, ts: i64, out: &mut Vec<Element>) -> Result<()> {
        // Before the watermark moves: which windows fired is judged by the old one.
        if self.pending_fire <= ts {
            self.flush(out)?;
        }
        self.watermark = self.watermark.max(ts);
        let due = self.backend.timers_mut().advance_watermark(ts);
        let mut seen = BTreeSet::new();
        for t in due {
            if !seen.insert((t.namespace.clone(), t.timestamp)) {
                continue;
            }
            let window = WindowNamespace::decode(&t.namespace)?;
            if t.timestamp == self.fire_time(window.end_ms) {
                self.fire(&t.namespace, out)?;
            } else {
                // The end of a fired window's allowed lateness.
                self.backend.clear_namespace(&t.namespace);
            }
        }
        out.push(Element::Watermark(ts));
        Ok(())
    }

    /// A checkpoint's snapshot must hold every row that came before the barrier.
    fn on_barrier(&mut self, id: u64, out: &mut Vec<Element>) -> Result<()> {
        self.flush(out)?;
        out.push(Element::Barrier(id));
        Ok(())
    }

    /// The input ended: every window that has not fired fires (as at a final `i64::MAX`
    /// watermark); fired windows kept for late rows are done.
    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        self.flush(out)?;
        let open: BTreeSet<Vec<u8>> = self
            .partials
            .entries(&self.backend)?
            .map(|(_, ns, _)| ns.to_vec())
            .collect();
        for ns in open {
            let window = WindowNamespace::decode(&ns)?;
            if self.fire_time(window.end_ms) > self.watermark {
                self.fire(&ns, out)?;
            }
        }
        Ok(())
    }
}
