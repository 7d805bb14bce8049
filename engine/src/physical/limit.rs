//! Limit: skips `skip` rows then passes at most `fetch`, and stops pulling input once satisfied.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Result, SluiceError};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// The plan node (over a single partition).
#[derive(Debug)]
pub struct LimitExec {
    input: Arc<dyn ExecNode>,
    skip: usize,
    fetch: Option<usize>,
}

impl LimitExec {
    /// Limits a single-partition `input`.
    pub fn new(input: Arc<dyn ExecNode>, skip: usize, fetch: Option<usize>) -> Self {
        Self { input, skip, fetch }
    }
}

impl ExecNode for LimitExec {
    fn name(&self) -> &'static str {
        "LimitExec"
    }
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        1
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        if partition != 0 || self.input.output_partitions() != 1 {
            return Err(SluiceError::exec("LimitExec runs on one partition"));
        }
        let input = self.input.execute(0, ctx)?;
        Ok(OperatorStream::boxed(
            input,
            LimitOp {
                to_skip: self.skip,
                remaining: self.fetch,
            },
        ))
    }
    fn details(&self) -> String {
        format!("skip={}, fetch={:?}", self.skip, self.fetch)
    }
}

/// The operator.
pub struct LimitOp {
    to_skip: usize,
    remaining: Option<usize>,
}

impl Operator for LimitOp {
    fn process_batch(&mut self, mut batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        if self.to_skip > 0 {
            let s = self.to_skip.min(batch.num_rows());
            self.to_skip -= s;
            batch = batch.slice(s, batch.num_rows() - s);
        }
        if let Some(r) = self.remaining.as_mut() {
            let take = (*r).min(batch.num_rows());
            *r -= take;
            batch = batch.slice(0, take);
        }
        if batch.num_rows() > 0 {
            out.push(Element::Batch(batch));
        }
        Ok(())
    }
    fn is_finished(&self) -> bool {
        self.remaining == Some(0)
    }
}
