//! SESSION windows: `SESSION(TABLE t [PARTITION BY keys], DESCRIPTOR(ts), gap)`. Rows of
//! one key whose times are at most `gap` apart form a session, from its first row's time
//! to its last row's time plus `gap` (Flink merges windows `[t, t + gap)` that touch, so a
//! row exactly `gap` after the last still joins). Unlike TUMBLE or HOP, a row's window is
//! not known when it arrives: a later row may extend its session or join two sessions.
//!
//! So the operator keeps each key's rows (arrow-row encoded, with their time) in
//! `sluice-state` list state until the watermark passes their session's end, then emits
//! them with their session's `window_start`, `window_end` and `window_time`: the output is
//! the window table function's, every row once, and a windowed GROUP BY downstream
//! aggregates it as it does TUMBLE's. An event-time timer per key, at the earliest
//! session end it may have to close, wakes it. At the end of a bounded input every
//! session closes, so batch plans use the same operator (input exchanged by the keys).
//!
//! A row whose own window `[t, t + gap)` is already behind the watermark is late, unless
//! it touches a row still held (an open session absorbs it, as in Flink): late rows are
//! dropped and counted.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::RowConverter;
use sluice_state::{
    KeyedStateBackend, ListState, MemoryStateBackend, StateDescriptor, VOID_NAMESPACE,
};

use super::exchange::StreamExchangeExec;
use super::{key_converter, operator_backend, row_converter};
use crate::error::{Result, SluiceError};
use crate::logical::time::WindowKind;
use crate::physical::expr::PhysExpr;
use crate::physical::window_tvf::{in_unit, micros_in_unit, micros_per_unit, to_micros};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// Rows of closed sessions gathered into one output batch at the end of the input.
const EMIT_ROWS: usize = 8192;

/// A held row: its time (in the time column's unit) and its arrow-row encoding.
type HeldRow = (i64, Vec<u8>);

/// The plan node.
#[derive(Debug)]
pub struct SessionWindowExec {
    input: Arc<dyn ExecNode>,
    keys: Vec<PhysExpr>,
    time_column: usize,
    /// The gap, in the time column's unit.
    gap: i64,
    kind: WindowKind,
    schema: SchemaRef,
    /// Rows dropped because their session had already closed.
    pub late_rows: Arc<AtomicU64>,
}

impl SessionWindowExec {
    /// The plan of a SESSION window table function over `child` (batch or stream): its
    /// rows exchanged by the `partition_by` columns' key groups into `partitions`
    /// partitions, then grouped into sessions.
    pub fn plan(
        child: Arc<dyn ExecNode>,
        kind: WindowKind,
        time_column: usize,
        partition_by: &[usize],
        schema: SchemaRef,
        partitions: usize,
    ) -> Result<Arc<dyn ExecNode>> {
        let in_schema = child.schema();
        let keys: Vec<PhysExpr> = partition_by
            .iter()
            .map(|&i| PhysExpr::Column(i, in_schema.field(i).name().clone()))
            .collect();
        let exchange = Arc::new(StreamExchangeExec::new(child, keys.clone(), partitions));
        Ok(Arc::new(Self::try_new(
            exchange,
            keys,
            time_column,
            kind,
            schema,
        )?))
    }

    /// Sessions of `kind` (a [`WindowKind::Session`], gap in µs) over `time_column`, per
    /// value of `keys`; `input` must be partitioned by the key groups of `keys` (a
    /// `StreamExchangeExec`); `schema` is the input's plus the three window columns.
    pub fn try_new(
        input: Arc<dyn ExecNode>,
        keys: Vec<PhysExpr>,
        time_column: usize,
        kind: WindowKind,
        schema: SchemaRef,
    ) -> Result<Self> {
        let t = input.schema().field(time_column).data_type().clone();
        let DataType::Timestamp(unit, _) = t else {
            return Err(SluiceError::plan(format!(
                "{kind}: the time column is {t}, not a TIMESTAMP"
            )));
        };
        let WindowKind::Session { gap } = in_unit(kind, unit)? else {
            return Err(SluiceError::plan(format!(
                "internal: {kind} is not a SESSION window"
            )));
        };
        Ok(Self {
            input,
            keys,
            time_column,
            gap,
            kind,
            schema,
            late_rows: Arc::new(AtomicU64::new(0)),
        })
    }
}

impl ExecNode for SessionWindowExec {
    fn name(&self) -> &'static str {
        "SessionWindowExec"
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
        let time_type = in_schema.field(self.time_column).data_type().clone();
        let DataType::Timestamp(unit, _) = &time_type else {
            return Err(SluiceError::exec("session time column is not a timestamp"));
        };
        let mut backend = operator_backend(self.output_partitions(), partition)?;
        let rows = backend.register_list::<HeldRow>(&StateDescriptor::new("session-rows"))?;
        let op = SessionOp {
            keys: self.keys.clone(),
            time_column: self.time_column,
            gap: self.gap,
            micros_per_unit: micros_per_unit(&time_type).unwrap_or(1),
            one_ms: micros_in_unit(1000, *unit).unwrap_or(1).max(1),
            time_type: time_type.clone(),
            schema: self.schema.clone(),
            key_conv: key_converter(&self.keys, &in_schema)?,
            row_conv: row_converter(&in_schema)?,
            backend,
            rows,
            watermark: i64::MIN,
            late_rows: self.late_rows.clone(),
            closed: Vec::new(),
        };
        Ok(OperatorStream::boxed(input, op))
    }
    fn metrics(&self) -> String {
        format!("late_rows={}", self.late_rows.load(Ordering::Relaxed))
    }
    fn details(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
        format!(
            "{} on {}, keys=[{}]",
            self.kind,
            self.input.schema().field(self.time_column).name(),
            keys.join(", ")
        )
    }
}

struct SessionOp {
    keys: Vec<PhysExpr>,
    time_column: usize,
    gap: i64,
    micros_per_unit: i64,
    /// One millisecond in the time unit (`window_time` is `window_end` minus it).
    one_ms: i64,
    time_type: DataType,
    schema: SchemaRef,
    key_conv: RowConverter,
    row_conv: RowConverter,
    backend: MemoryStateBackend,
    /// Each key's held rows, in arrival order.
    rows: ListState<HeldRow>,
    /// The current watermark (µs).
    watermark: i64,
    late_rows: Arc<AtomicU64>,
    /// Rows of closed sessions not yet emitted: (row, window start, window end).
    closed: Vec<(Vec<u8>, i64, i64)>,
}

/// The sessions of `rows` sorted by time: `(first, last + 1)` index ranges and their
/// window `(start, end)`.
fn sessions(rows: &[HeldRow], gap: i64) -> Vec<(std::ops::Range<usize>, i64, i64)> {
    let mut out: Vec<(std::ops::Range<usize>, i64, i64)> = Vec::new();
    for (i, (t, _)) in rows.iter().enumerate() {
        match out.last_mut() {
            Some((range, _, end)) if *t <= *end => {
                range.end = i + 1;
                *end = (*end).max(t + gap);
            }
            _ => out.push((i..i + 1, *t, t + gap)),
        }
    }
    out
}

impl SessionOp {
    /// The last instant (µs) of a window ending at `end` (in the time unit).
    fn last_micros(&self, end: i64) -> i64 {
        to_micros(end, self.micros_per_unit) - 1
    }

    /// Closes `key`'s sessions that end at or before `watermark` (all of them for
    /// `None`), moving their rows to `self.closed`; keeps the rest and sets a timer for
    /// the earliest of them.
    fn close(&mut self, key: &[u8], watermark: Option<i64>) -> Result<()> {
        let mut held = self.rows.get(&self.backend, key, VOID_NAMESPACE)?.to_vec();
        held.sort_by_key(|(t, _)| *t);
        let mut keep = Vec::new();
        let mut next_timer = None;
        for (range, start, end) in sessions(&held, self.gap) {
            if watermark.is_none_or(|w| self.last_micros(end) <= w) {
                for (_, row) in &held[range] {
                    self.closed.push((row.clone(), start, end));
                }
            } else {
                next_timer.get_or_insert(end);
                keep.extend_from_slice(&held[range]);
            }
        }
        if let Some(end) = next_timer {
            let at = self.last_micros(end);
            self.backend
                .timers_mut()
                .register_event_time_timer(at, key, VOID_NAMESPACE)?;
        }
        self.rows
            .update(&mut self.backend, key, VOID_NAMESPACE, keep)?;
        Ok(())
    }

    /// The rows of closed sessions as one batch, with their window columns.
    fn emit(&mut self, out: &mut Vec<Element>) -> Result<()> {
        if self.closed.is_empty() {
            return Ok(());
        }
        let closed = std::mem::take(&mut self.closed);
        let parser = self.row_conv.parser();
        let mut cols = self
            .row_conv
            .convert_rows(closed.iter().map(|(r, _, _)| parser.parse(r)))?;
        let starts = Int64Array::from_iter_values(closed.iter().map(|c| c.1));
        let ends = Int64Array::from_iter_values(closed.iter().map(|c| c.2));
        let times = Int64Array::from_iter_values(closed.iter().map(|c| c.2 - self.one_ms));
        for a in [starts, ends, times] {
            cols.push(arrow::compute::cast(&a, &self.time_type)?);
        }
        out.push(Element::Batch(RecordBatch::try_new(
            self.schema.clone(),
            cols,
        )?));
        Ok(())
    }

    /// True when a row at `t` touches a row `key` still holds (an open session).
    fn touches_held(&self, key: &[u8], t: i64) -> Result<bool> {
        Ok(self
            .rows
            .get(&self.backend, key, VOID_NAMESPACE)?
            .iter()
            .any(|(h, _)| (h - t).abs() <= self.gap))
    }
}

impl Operator for SessionOp {
    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<Element>) -> Result<()> {
        let times = arrow::compute::cast(batch.column(self.time_column), &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>();
        let key_cols = self
            .keys
            .iter()
            .map(|e| e.evaluate_array(&batch))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let encoded_keys = (!key_cols.is_empty())
            .then(|| self.key_conv.convert_columns(&key_cols))
            .transpose()?;
        let key_of = |i: usize| -> &[u8] { encoded_keys.as_ref().map_or(&[], |r| r.row(i).data()) };
        let rows = self.row_conv.convert_columns(batch.columns())?;
        // Per key: the earliest time in this batch and the rows.
        let mut by_key: HashMap<&[u8], (i64, Vec<HeldRow>), ahash::RandomState> =
            HashMap::default();
        let mut late = 0;
        for i in 0..batch.num_rows() {
            if times.is_null(i) {
                continue; // a row without event time belongs to no window
            }
            let t = times.value(i);
            let key = key_of(i);
            if self.watermark != i64::MIN
                && self.last_micros(t.saturating_add(self.gap)) <= self.watermark
                && !self.touches_held(key, t)?
            {
                late += 1;
                continue;
            }
            let entry = by_key.entry(key).or_insert((t, Vec::new()));
            entry.0 = entry.0.min(t);
            entry.1.push((t, rows.row(i).data().to_vec()));
        }
        if late > 0 {
            self.late_rows.fetch_add(late, Ordering::Relaxed);
        }
        for (key, (first, held)) in by_key {
            self.rows
                .add_all(&mut self.backend, key, VOID_NAMESPACE, held)?;
            // The session holding the earliest row ends no earlier than this.
            let at = self.last_micros(first.saturating_add(self.gap));
            self.backend
                .timers_mut()
                .register_event_time_timer(at, key, VOID_NAMESPACE)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, ts: i64, out: &mut Vec<Element>) -> Result<()> {
        self.watermark = self.watermark.max(ts);
        let due: BTreeSet<Vec<u8>> = self
            .backend
            .timers_mut()
            .advance_watermark(ts)
            .into_iter()
            .map(|t| t.key)
            .collect();
        for key in due {
            self.close(&key, Some(ts))?;
        }
        self.emit(out)?;
        out.push(Element::Watermark(ts));
        Ok(())
    }

    /// The input ended: every session closes.
    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let keys: Vec<Vec<u8>> = self
            .rows
            .keys(&self.backend, VOID_NAMESPACE)?
            .map(<[u8]>::to_vec)
            .collect();
        for key in keys {
            self.close(&key, None)?;
            if self.closed.len() >= EMIT_ROWS {
                self.emit(out)?;
            }
        }
        self.emit(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(times: &[i64]) -> Vec<HeldRow> {
        times.iter().map(|&t| (t, vec![])).collect()
    }

    #[test]
    fn rows_within_the_gap_share_a_session_and_touching_windows_merge() {
        let s = sessions(&held(&[0, 3, 8, 20, 30]), 5);
        let bounds: Vec<(i64, i64)> = s.iter().map(|(_, a, b)| (*a, *b)).collect();
        // 3 → 8 is exactly the gap: one session; 8 → 20 is not.
        assert_eq!(bounds, [(0, 13), (20, 25), (30, 35)]);
        assert_eq!(s[0].0, 0..3);
        assert!(sessions(&[], 5).is_empty());
    }
}
