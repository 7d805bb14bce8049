//! Filter: keeps the rows for which a predicate is true (NULL counts as false).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::physical::expr::{to_mask, PhysExpr};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// The plan node.
#[derive(Debug)]
pub struct FilterExec {
    input: Arc<dyn ExecNode>,
    predicate: PhysExpr,
}

impl FilterExec {
    /// Filters `input` by a boolean `predicate` bound to the input schema.
    pub fn new(input: Arc<dyn ExecNode>, predicate: PhysExpr) -> Self {
        Self { input, predicate }
    }
}

impl ExecNode for FilterExec {
    fn name(&self) -> &'static str {
        "FilterExec"
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
            FilterOp {
                predicate: self.predicate.clone(),
                template: self
                    .predicate
                    .uses_watermark()
                    .then(|| self.predicate.clone()),
            },
        ))
    }
    fn details(&self) -> String {
        self.predicate.to_string()
    }
}

/// The operator: stateless, so control elements pass through unchanged.
pub struct FilterOp {
    /// The predicate.
    pub predicate: PhysExpr,
    /// The predicate as planned, when it calls `CURRENT_WATERMARK`: each watermark binds
    /// it anew.
    pub template: Option<PhysExpr>,
}

impl Operator for FilterOp {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        let mask = to_mask(&self.predicate.evaluate_array(&batch)?)?;
        let filtered = filter_record_batch(&batch, &mask)?;
        if filtered.num_rows() > 0 {
            out.push(Element::Batch(filtered));
        }
        Ok(())
    }

    fn on_watermark(&mut self, ts: i64, out: &mut Vec<Element>) -> Result<()> {
        if let Some(t) = &self.template {
            self.predicate = t.bind_watermark(ts);
        }
        out.push(Element::Watermark(ts));
        Ok(())
    }
}
