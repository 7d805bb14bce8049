//! Projection: computes output columns from input columns.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::physical::expr::PhysExpr;
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// The plan node.
#[derive(Debug)]
pub struct ProjectionExec {
    input: Arc<dyn ExecNode>,
    exprs: Vec<PhysExpr>,
    schema: SchemaRef,
}

impl ProjectionExec {
    /// Computes `exprs` over `input`, producing `schema`.
    pub fn new(input: Arc<dyn ExecNode>, exprs: Vec<PhysExpr>, schema: SchemaRef) -> Self {
        Self {
            input,
            exprs,
            schema,
        }
    }
}

impl ExecNode for ProjectionExec {
    fn name(&self) -> &'static str {
        "ProjectionExec"
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
        Ok(OperatorStream::boxed(
            input,
            ProjectOp {
                exprs: self.exprs.clone(),
                schema: self.schema.clone(),
                templates: self
                    .exprs
                    .iter()
                    .any(PhysExpr::uses_watermark)
                    .then(|| self.exprs.clone()),
            },
        ))
    }
    fn details(&self) -> String {
        let names: Vec<String> = self
            .exprs
            .iter()
            .zip(self.schema.fields())
            .map(|(e, f)| format!("{e} as {}", f.name()))
            .collect();
        names.join(", ")
    }
}

/// The operator.
pub struct ProjectOp {
    /// Output expressions.
    pub exprs: Vec<PhysExpr>,
    /// Output schema.
    pub schema: SchemaRef,
    /// The expressions as planned, when one calls `CURRENT_WATERMARK`: each watermark
    /// binds them anew.
    pub templates: Option<Vec<PhysExpr>>,
}

impl Operator for ProjectOp {
    fn on_watermark(&mut self, ts: i64, out: &mut Vec<Element>) -> Result<()> {
        if let Some(t) = &self.templates {
            self.exprs = t.iter().map(|e| e.bind_watermark(ts)).collect();
        }
        out.push(Element::Watermark(ts));
        Ok(())
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        out.push(Element::Batch(project_batch(
            &batch,
            &self.exprs,
            &self.schema,
        )?));
        Ok(())
    }
}

/// Evaluates `exprs` over `batch` into a batch of `schema` (casting where the declared
/// type differs only in nullability-preserving ways).
pub fn project_batch(
    batch: &RecordBatch,
    exprs: &[PhysExpr],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let cols = exprs
        .iter()
        .zip(schema.fields())
        .map(|(e, f)| {
            let a = e.evaluate_array(batch)?;
            if a.data_type() != f.data_type() {
                Ok(arrow::compute::cast(&a, f.data_type())?)
            } else {
                Ok(a)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &opts,
    )?)
}
