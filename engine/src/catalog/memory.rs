//! In-memory tables: record batches held by the session.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::catalog::TableProvider;
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::physical::scan::MemoryExec;
use crate::physical::ExecNode;

/// A table of batches in memory.
#[derive(Debug)]
pub struct MemTable {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl MemTable {
    /// A table of `batches`, which must all have `schema`'s columns.
    pub fn try_new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        for b in &batches {
            let bs = b.schema();
            let same = bs.fields().len() == schema.fields().len()
                && bs
                    .fields()
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
            if !same {
                return Err(SluiceError::plan(format!(
                    "batch schema {bs} does not match table schema {schema}"
                )));
            }
        }
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        Ok(Self { schema, batches, rows })
    }
}

impl TableProvider for MemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn row_count(&self) -> Option<usize> {
        Some(self.rows)
    }
    fn scan(
        &self,
        projection: Option<&[usize]>,
        _filters: &[Expr],
        partitions: usize,
        batch_size: usize,
    ) -> Result<Arc<dyn ExecNode>> {
        Ok(Arc::new(MemoryExec::try_new(
            self.schema.clone(),
            &self.batches,
            projection,
            partitions,
            batch_size,
        )?))
    }
    fn describe(&self) -> String {
        format!("memory table, {} rows", self.rows)
    }
}
