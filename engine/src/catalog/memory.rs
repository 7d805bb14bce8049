//! In-memory tables: record batches held by the session.

use std::sync::{Arc, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};

use crate::catalog::TableProvider;
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::physical::scan::MemoryExec;
use crate::physical::ExecNode;

/// A table of batches in memory; INSERT appends in place, so plans and views that refer
/// to the table see the new rows.
#[derive(Debug)]
pub struct MemTable {
    schema: SchemaRef,
    batches: RwLock<Vec<RecordBatch>>,
}

/// Checks that data of schema `got` fits a table of schema `want`: the same column names
/// and types (nullability aside). The error lists both schemas.
pub fn check_schema(want: &Schema, got: &Schema) -> Result<()> {
    let same = got.fields().len() == want.fields().len()
        && got
            .fields()
            .iter()
            .zip(want.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if same {
        return Ok(());
    }
    let describe = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(SluiceError::plan(format!(
        "schema mismatch: the table has ({}) but the data has ({})",
        describe(want),
        describe(got)
    )))
}

fn check_batches(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    batches
        .iter()
        .try_for_each(|b| check_schema(schema, &b.schema()))
}

impl MemTable {
    /// A table of `batches`, which must all have `schema`'s columns.
    pub fn try_new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        check_batches(&schema, &batches)?;
        Ok(Self {
            schema,
            batches: RwLock::new(batches),
        })
    }

    /// Appends batches with the table's schema.
    pub fn append(&self, batches: Vec<RecordBatch>) -> Result<()> {
        check_batches(&self.schema, &batches)?;
        self.batches
            .write()
            .map_err(|_| SluiceError::exec("table lock poisoned"))?
            .extend(batches);
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<RecordBatch>> {
        Ok(self
            .batches
            .read()
            .map_err(|_| SluiceError::exec("table lock poisoned"))?
            .clone())
    }
}

impl TableProvider for MemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn row_count(&self) -> Option<usize> {
        self.batches
            .read()
            .ok()
            .map(|b| b.iter().map(RecordBatch::num_rows).sum())
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
            &self.snapshot()?,
            projection,
            partitions,
            batch_size,
        )?))
    }
    fn describe(&self) -> String {
        format!("memory table, {} rows", self.row_count().unwrap_or(0))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
