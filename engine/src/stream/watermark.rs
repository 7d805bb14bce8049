//! Watermark generation for a source with event time: bounded out-of-orderness. After each
//! batch the watermark is `max(event time seen) - delay - 1 µs` (no row at or before it is
//! still expected); at the end of a bounded input it jumps to `i64::MAX`, so every window
//! fires — the batch result.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};

use crate::error::{Result, SluiceError};
use crate::physical::window_tvf::{micros_per_unit, to_micros};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// The plan node.
#[derive(Debug)]
pub struct WatermarkExec {
    input: Arc<dyn ExecNode>,
    column: usize,
    delay_micros: i64,
    /// Microseconds per unit of the time column.
    micros_per_unit: i64,
}

impl WatermarkExec {
    /// Watermarks on timestamp column `column`, `delay_micros` behind its maximum.
    pub fn try_new(input: Arc<dyn ExecNode>, column: usize, delay_micros: i64) -> Result<Self> {
        let t = input.schema().field(column).data_type().clone();
        let micros_per_unit = micros_per_unit(&t).ok_or_else(|| {
            SluiceError::plan(format!("watermark column must be a TIMESTAMP, got {t}"))
        })?;
        Ok(Self {
            input,
            column,
            delay_micros,
            micros_per_unit,
        })
    }
}

impl ExecNode for WatermarkExec {
    fn name(&self) -> &'static str {
        "WatermarkExec"
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
        let input = self.input.execute(partition, ctx)?;
        Ok(OperatorStream::boxed(
            input,
            WatermarkOp {
                column: self.column,
                delay_micros: self.delay_micros,
                micros_per_unit: self.micros_per_unit,
                current: i64::MIN,
            },
        ))
    }
    fn details(&self) -> String {
        format!(
            "{} - {} ms",
            self.input.schema().field(self.column).name(),
            self.delay_micros / 1000
        )
    }
}

struct WatermarkOp {
    column: usize,
    delay_micros: i64,
    /// See [`micros_per_unit`].
    micros_per_unit: i64,
    current: i64,
}

impl Operator for WatermarkOp {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        let times = arrow::compute::cast(batch.column(self.column), &DataType::Int64)?;
        let max = arrow::compute::max(times.as_primitive::<Int64Type>());
        out.push(Element::Batch(batch));
        if let Some(max) = max {
            let wm = to_micros(max, self.micros_per_unit)
                .saturating_sub(self.delay_micros)
                .saturating_sub(1);
            if wm > self.current {
                self.current = wm;
                out.push(Element::Watermark(wm));
            }
        }
        Ok(())
    }

    /// Watermarks come from the data here; upstream ones are not forwarded.
    fn on_watermark(&mut self, _ts: i64, _out: &mut Vec<Element>) -> Result<()> {
        Ok(())
    }

    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        self.current = i64::MAX;
        out.push(Element::Watermark(i64::MAX));
        Ok(())
    }
}
