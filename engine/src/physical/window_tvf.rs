//! Window table functions (`TUMBLE`, `HOP`, `CUMULATE`): every row once per window that
//! holds it, with `window_start`, `window_end` and `window_time` appended. Stateless, so
//! batch and streaming plans share it and control elements pass through. (`SESSION`
//! windows depend on other rows: see `session_window.rs`.)

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};

use crate::error::{Result, SluiceError};
use crate::logical::time::WindowKind;
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// The plan node.
#[derive(Debug)]
pub struct WindowTvfExec {
    input: Arc<dyn ExecNode>,
    kind: WindowKind,
    time_column: usize,
    schema: SchemaRef,
}

impl WindowTvfExec {
    /// Windows of `kind` (sizes in microseconds) over the timestamp column `time_column`.
    pub fn try_new(
        input: Arc<dyn ExecNode>,
        kind: WindowKind,
        time_column: usize,
        schema: SchemaRef,
    ) -> Result<Self> {
        let t = input.schema().field(time_column).data_type().clone();
        let DataType::Timestamp(unit, _) = &t else {
            return Err(SluiceError::plan(format!(
                "{kind}: the time column is {t}, not a TIMESTAMP"
            )));
        };
        if kind.is_held() {
            return Err(SluiceError::plan(
                "internal: SESSION and count windows are grouped by HeldWindowExec, not row by row",
            ));
        }
        let kind = in_unit(kind, *unit)?;
        Ok(Self {
            input,
            kind,
            time_column,
            schema,
        })
    }
}

/// Microseconds per unit of a timestamp type (0 for nanoseconds, see [`to_micros`]);
/// `None` for other types.
pub fn micros_per_unit(t: &DataType) -> Option<i64> {
    match t {
        DataType::Timestamp(TimeUnit::Second, _) => Some(1_000_000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(1000),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Some(1),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(0),
        _ => None,
    }
}

/// A timestamp value `v` in microseconds, given [`micros_per_unit`] of its type.
pub fn to_micros(v: i64, micros_per_unit: i64) -> i64 {
    if micros_per_unit == 0 {
        v / 1000
    } else {
        v.saturating_mul(micros_per_unit)
    }
}

/// Microseconds as a count of `unit`.
pub fn micros_in_unit(us: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => (us % 1_000_000 == 0).then_some(us / 1_000_000),
        TimeUnit::Millisecond => (us % 1000 == 0).then_some(us / 1000),
        TimeUnit::Microsecond => Some(us),
        TimeUnit::Nanosecond => us.checked_mul(1000),
    }
}

/// `kind` with its sizes in `unit` instead of microseconds.
pub(crate) fn in_unit(kind: WindowKind, unit: TimeUnit) -> Result<WindowKind> {
    let c = |us: i64| {
        micros_in_unit(us, unit).ok_or_else(|| {
            SluiceError::plan(format!(
                "{kind}: window sizes must be whole units of the time column ({unit:?})"
            ))
        })
    };
    Ok(match kind {
        WindowKind::Tumble { size } => WindowKind::Tumble { size: c(size)? },
        WindowKind::Hop { slide, size } => WindowKind::Hop {
            slide: c(slide)?,
            size: c(size)?,
        },
        WindowKind::Cumulate { step, size } => WindowKind::Cumulate {
            step: c(step)?,
            size: c(size)?,
        },
        WindowKind::Session { gap } => WindowKind::Session { gap: c(gap)? },
        WindowKind::Count { .. } => kind,
    })
}

impl ExecNode for WindowTvfExec {
    fn name(&self) -> &'static str {
        "WindowTvfExec"
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
        let DataType::Timestamp(unit, _) = self.schema.field(self.time_column).data_type() else {
            return Err(SluiceError::exec("window time column is not a timestamp"));
        };
        let one_ms = micros_in_unit(1000, *unit).unwrap_or(1).max(1);
        Ok(OperatorStream::boxed(
            input,
            WindowAssign {
                kind: self.kind,
                time_column: self.time_column,
                schema: self.schema.clone(),
                one_ms,
            },
        ))
    }
    fn details(&self) -> String {
        format!(
            "{} on {}",
            self.kind,
            self.input.schema().field(self.time_column).name()
        )
    }
}

/// The operator.
struct WindowAssign {
    kind: WindowKind,
    time_column: usize,
    schema: SchemaRef,
    /// One millisecond in the time column's unit (`window_time` is `window_end` minus it).
    one_ms: i64,
}

impl Operator for WindowAssign {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        // Timestamp → Int64 reuses the buffer.
        let times = arrow::compute::cast(batch.column(self.time_column), &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>();
        let n = batch.num_rows();
        let mut rows = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n);
        let mut ends = Vec::with_capacity(n);
        for i in 0..n {
            if times.is_null(i) {
                continue; // a row without event time belongs to no window
            }
            self.kind.assign(times.value(i), |s, e| {
                rows.push(i as u32);
                starts.push(s);
                ends.push(e);
            });
        }
        if rows.is_empty() {
            return Ok(());
        }
        let base = if rows.len() == n && rows.iter().enumerate().all(|(i, r)| i as u32 == *r) {
            batch
        } else {
            take_record_batch(&batch, &UInt32Array::from(rows))?
        };
        let ts_type = self.schema.field(self.time_column).data_type().clone();
        let one_ms = self.one_ms;
        let times: Vec<i64> = ends.iter().map(|e| e - one_ms).collect();
        let mut columns = base.columns().to_vec();
        for v in [starts, ends, times] {
            let a: ArrayRef = Arc::new(PrimitiveArray::<Int64Type>::from(v));
            columns.push(arrow::compute::cast(&a, &ts_type)?);
        }
        out.push(Element::Batch(RecordBatch::try_new(
            self.schema.clone(),
            columns,
        )?));
        Ok(())
    }
}
