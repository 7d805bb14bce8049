//! Union: the partitions of all inputs side by side (UNION ALL; UNION adds a distinct
//! aggregation above).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Result, SluiceError};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// The plan node.
#[derive(Debug)]
pub struct UnionExec {
    inputs: Vec<Arc<dyn ExecNode>>,
    schema: SchemaRef,
}

impl UnionExec {
    /// Unions inputs whose columns already have the output types.
    pub fn new(inputs: Vec<Arc<dyn ExecNode>>, schema: SchemaRef) -> Self {
        Self { inputs, schema }
    }
}

impl ExecNode for UnionExec {
    fn name(&self) -> &'static str {
        "UnionExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        self.inputs.clone()
    }
    fn output_partitions(&self) -> usize {
        self.inputs.iter().map(|i| i.output_partitions()).sum()
    }
    fn execute(&self, mut partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        for input in &self.inputs {
            let n = input.output_partitions();
            if partition < n {
                let stream = input.execute(partition, ctx)?;
                return Ok(OperatorStream::boxed(stream, Rename(self.schema.clone())));
            }
            partition -= n;
        }
        Err(SluiceError::exec("union partition out of range"))
    }
}

/// Gives batches the union's schema (names and nullability of the first input).
struct Rename(SchemaRef);

impl Operator for Rename {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        out.push(Element::Batch(crate::physical::with_schema(
            &self.0, batch,
        )?));
        Ok(())
    }
}
