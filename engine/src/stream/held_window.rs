//! Windows whose rows are held until they close: `SESSION` windows and count windows.
//! Unlike TUMBLE or HOP, a row's window is not known when it arrives.
//!
//! * `SESSION(TABLE t [PARTITION BY keys], DESCRIPTOR(ts), gap)`: rows of one key whose
//!   times are at most `gap` apart form a session, from its first row's time to its last
//!   row's time plus `gap` (Flink merges windows `[t, t + gap)` that touch, so a row
//!   exactly `gap` after the last still joins). A later row may extend a session or join
//!   two. A row whose own window `[t, t + gap)` is already behind the watermark is late,
//!   unless it touches a row still held (an open session absorbs it, as in Flink).
//! * Count windows (`Window::count` in the DataFrame API): each key's rows in event-time
//!   order (ties broken by the rows' values, so the order does not depend on arrival),
//!   `size` at a time, a new window every `slide` rows. A row's place in that order is
//!   known once the watermark passes its time; a row at or behind the watermark is late.
//!   A window's `window_start` is its first row's time and `window_end` is just after its
//!   last row's (bumped past the key's previous window's end, so each window of a key has
//!   its own bounds); `window_time` is the last row's time. Rows of a window that never
//!   fills (at the end of a bounded input) are not emitted, as in Flink.
//!
//! The operator keeps each key's rows (arrow-row encoded, with their time) in
//! `sluice-state` list state until their window closes, then emits them with the window's
//! `window_start`, `window_end` and `window_time`: the output is a window table
//! function's, and a windowed GROUP BY downstream aggregates it as it does TUMBLE's. An
//! event-time timer per key, at the earliest time it may have to close a window, wakes it.
//! At the end of a bounded input every window closes, so batch plans use the same operator
//! (input exchanged by the keys). Late rows are dropped and counted.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::RowConverter;
use sluice_state::{
    KeyedStateBackend, ListState, MemoryStateBackend, StateDescriptor, ValueState, VOID_NAMESPACE,
};

use super::exchange::StreamExchangeExec;
use super::{key_converter, operator_backend, row_converter};
use crate::error::{Result, SluiceError};
use crate::logical::time::WindowKind;
use crate::physical::expr::PhysExpr;
use crate::physical::window_tvf::{in_unit, micros_in_unit, micros_per_unit, to_micros};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// Rows of closed windows gathered into one output batch at the end of the input.
const EMIT_ROWS: usize = 8192;

/// A held row: its time (in the time column's unit) and its arrow-row encoding.
type HeldRow = (i64, Vec<u8>);

/// A row of a closed window: the row, and its window's start, end and time.
type ClosedRow = (Vec<u8>, i64, i64, i64);

/// How held rows form windows (times in the time column's unit).
#[derive(Debug, Clone, Copy)]
enum Grouping {
    Session { gap: i64 },
    Count { size: usize, slide: usize },
}

/// The plan node.
#[derive(Debug)]
pub struct HeldWindowExec {
    input: Arc<dyn ExecNode>,
    keys: Vec<PhysExpr>,
    time_column: usize,
    grouping: Grouping,
    kind: WindowKind,
    schema: SchemaRef,
    /// Rows dropped because they came after their window had closed.
    pub late_rows: Arc<AtomicU64>,
}

impl HeldWindowExec {
    /// The plan of a SESSION or count window table function over `child` (batch or
    /// stream): its rows exchanged by the `partition_by` columns' key groups into
    /// `partitions` partitions, then grouped into windows.
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

    /// Windows of `kind` (a [`WindowKind::Session`], gap in µs, or a
    /// [`WindowKind::Count`]) over `time_column`, per value of `keys`; `input` must be
    /// partitioned by the key groups of `keys` (a `StreamExchangeExec`); `schema` is the
    /// input's plus the three window columns.
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
        let rows = |n: i64| {
            usize::try_from(n)
                .map_err(|_| SluiceError::plan(format!("{kind}: a count must be positive")))
        };
        let grouping = match in_unit(kind, unit)? {
            WindowKind::Session { gap } => Grouping::Session { gap },
            WindowKind::Count { size, slide } => Grouping::Count {
                size: rows(size)?,
                slide: rows(slide)?,
            },
            _ => {
                return Err(SluiceError::plan(format!(
                    "internal: {kind} windows are assigned row by row, not held"
                )))
            }
        };
        Ok(Self {
            input,
            keys,
            time_column,
            grouping,
            kind,
            schema,
            late_rows: Arc::new(AtomicU64::new(0)),
        })
    }
}

impl ExecNode for HeldWindowExec {
    fn name(&self) -> &'static str {
        "HeldWindowExec"
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
            return Err(SluiceError::exec("window time column is not a timestamp"));
        };
        let mut backend = operator_backend(self.output_partitions(), partition)?;
        let rows = backend.register_list::<HeldRow>(&StateDescriptor::new("held-rows"))?;
        let last_end = backend.register_value::<i64>(&StateDescriptor::new("last-end"))?;
        let op = HeldWindowOp {
            keys: self.keys.clone(),
            time_column: self.time_column,
            grouping: self.grouping,
            micros_per_unit: micros_per_unit(&time_type).unwrap_or(1),
            one_ms: micros_in_unit(1000, *unit).unwrap_or(1).max(1),
            time_type: time_type.clone(),
            schema: self.schema.clone(),
            key_conv: key_converter(&self.keys, &in_schema)?,
            row_conv: row_converter(&in_schema)?,
            backend,
            rows,
            last_end,
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

struct HeldWindowOp {
    keys: Vec<PhysExpr>,
    time_column: usize,
    grouping: Grouping,
    micros_per_unit: i64,
    /// One millisecond in the time unit (a session's `window_time` is `window_end` minus
    /// it).
    one_ms: i64,
    time_type: DataType,
    schema: SchemaRef,
    key_conv: RowConverter,
    row_conv: RowConverter,
    backend: MemoryStateBackend,
    /// Each key's held rows.
    rows: ListState<HeldRow>,
    /// Each key's last count window's end (count windows only).
    last_end: ValueState<i64>,
    /// The current watermark (µs).
    watermark: i64,
    late_rows: Arc<AtomicU64>,
    /// Rows of closed windows not yet emitted.
    closed: Vec<ClosedRow>,
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

/// The count windows among the first `ready` of `rows` (sorted; the first row starts a
/// window): index ranges `size` long, every `slide` rows, while they fit.
fn count_windows(ready: usize, size: usize, slide: usize) -> Vec<std::ops::Range<usize>> {
    (0..)
        .map(|w| w * slide..w * slide + size)
        .take_while(|r| r.end <= ready)
        .collect()
}

impl HeldWindowOp {
    fn micros(&self, t: i64) -> i64 {
        to_micros(t, self.micros_per_unit)
    }

    /// The last instant (µs) of a window ending at `end` (in the time unit).
    fn last_micros(&self, end: i64) -> i64 {
        self.micros(end) - 1
    }

    /// The watermark (µs) at which a row at `t` may close a window.
    fn due_at(&self, t: i64) -> i64 {
        match self.grouping {
            Grouping::Session { gap } => self.last_micros(t.saturating_add(gap)),
            Grouping::Count { .. } => self.micros(t),
        }
    }

    /// Closes `key`'s windows that end at or before `watermark` (all of them for `None`),
    /// moving their rows to `self.closed`; keeps the rest and sets a timer for the
    /// earliest of them.
    fn close(&mut self, key: &[u8], watermark: Option<i64>) -> Result<()> {
        let mut held = self.rows.get(&self.backend, key, VOID_NAMESPACE)?.to_vec();
        let (keep, next_timer) = match self.grouping {
            Grouping::Session { gap } => {
                held.sort_by_key(|(t, _)| *t);
                let mut keep = Vec::new();
                let mut next_timer = None;
                for (range, start, end) in sessions(&held, gap) {
                    if watermark.is_none_or(|w| self.last_micros(end) <= w) {
                        for (_, row) in &held[range] {
                            self.closed
                                .push((row.clone(), start, end, end - self.one_ms));
                        }
                    } else {
                        next_timer.get_or_insert(self.last_micros(end));
                        keep.extend_from_slice(&held[range]);
                    }
                }
                (keep, next_timer)
            }
            Grouping::Count { size, slide } => {
                held.sort_unstable();
                let ready = watermark.map_or(held.len(), |w| {
                    held.partition_point(|(t, _)| self.micros(*t) <= w)
                });
                let mut last_end = self
                    .last_end
                    .get(&self.backend, key, VOID_NAMESPACE)?
                    .copied();
                let windows = count_windows(ready, size, slide);
                for range in &windows {
                    let window = &held[range.clone()];
                    let (first, last) = (window[0].0, window[size - 1].0);
                    let end = last_end.map_or(last + 1, |e| (last + 1).max(e + 1));
                    last_end = Some(end);
                    for (_, row) in window {
                        self.closed.push((row.clone(), first, end, last));
                    }
                }
                if let Some(end) = last_end {
                    self.last_end
                        .update(&mut self.backend, key, VOID_NAMESPACE, end)?;
                }
                let done = windows.len() * slide;
                let next_timer = held.get(ready).map(|(t, _)| self.micros(*t));
                (held.split_off(done.min(held.len())), next_timer)
            }
        };
        if let Some(at) = next_timer {
            self.backend
                .timers_mut()
                .register_event_time_timer(at, key, VOID_NAMESPACE)?;
        }
        self.rows
            .update(&mut self.backend, key, VOID_NAMESPACE, keep)?;
        Ok(())
    }

    /// The rows of closed windows as one batch, with their window columns.
    fn emit(&mut self, out: &mut Vec<Element>) -> Result<()> {
        if self.closed.is_empty() {
            return Ok(());
        }
        let closed = std::mem::take(&mut self.closed);
        let parser = self.row_conv.parser();
        let mut cols = self
            .row_conv
            .convert_rows(closed.iter().map(|c| parser.parse(&c.0)))?;
        let starts = Int64Array::from_iter_values(closed.iter().map(|c| c.1));
        let ends = Int64Array::from_iter_values(closed.iter().map(|c| c.2));
        let times = Int64Array::from_iter_values(closed.iter().map(|c| c.3));
        for a in [starts, ends, times] {
            cols.push(arrow::compute::cast(&a, &self.time_type)?);
        }
        out.push(Element::Batch(RecordBatch::try_new(
            self.schema.clone(),
            cols,
        )?));
        Ok(())
    }

    /// True when a row of `key` at `t` comes after its window closed: for a session,
    /// when its own window is behind the watermark and it touches no row still held (an
    /// open session); for a count window, when its time is.
    fn is_late(&self, key: &[u8], t: i64) -> Result<bool> {
        if self.watermark == i64::MIN || self.due_at(t) > self.watermark {
            return Ok(false);
        }
        Ok(match self.grouping {
            Grouping::Session { gap } => !self
                .rows
                .get(&self.backend, key, VOID_NAMESPACE)?
                .iter()
                .any(|(h, _)| (h - t).abs() <= gap),
            Grouping::Count { .. } => true,
        })
    }
}

impl Operator for HeldWindowOp {
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
            if self.is_late(key, t)? {
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
            // The window holding the earliest row closes no earlier than this.
            let at = self.due_at(first);
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

    /// The input ended: every window closes (a count window only if it is full).
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
    fn count_windows_fill_then_slide() {
        assert_eq!(count_windows(7, 3, 3), [0..3, 3..6]);
        assert_eq!(count_windows(7, 3, 2), [0..3, 2..5, 4..7]);
        assert!(count_windows(2, 3, 1).is_empty());
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
