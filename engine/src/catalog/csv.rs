//! CSV tables: a file or a directory of `.csv` files with a header line; the schema is
//! inferred from the first file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::catalog::{list_files, TableProvider};
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::physical::scan::CsvExec;
use crate::physical::ExecNode;

/// A CSV table.
#[derive(Debug)]
pub struct CsvTable {
    path: PathBuf,
    files: Vec<PathBuf>,
    schema: SchemaRef,
}

impl CsvTable {
    /// Opens `path` and infers the schema (from up to 1000 records of the first file).
    pub fn try_new(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let files = list_files(&path, "csv")?;
        let first = files
            .first()
            .ok_or_else(|| SluiceError::plan(format!("no .csv files in {}", path.display())))?;
        let f = File::open(first).map_err(|source| SluiceError::Io {
            path: first.clone(),
            source,
        })?;
        let (schema, _) = arrow::csv::reader::Format::default()
            .with_header(true)
            .infer_schema(f, Some(1000))
            .map_err(|e| {
                SluiceError::exec(format!("cannot read CSV file {}: {e}", first.display()))
            })?;
        Ok(Self {
            path,
            files,
            schema: Arc::new(schema),
        })
    }
}

impl TableProvider for CsvTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn row_count(&self) -> Option<usize> {
        None
    }
    fn scan(
        &self,
        projection: Option<&[usize]>,
        _filters: &[Expr],
        partitions: usize,
        batch_size: usize,
    ) -> Result<Arc<dyn ExecNode>> {
        Ok(Arc::new(CsvExec::try_new(
            self.files.clone(),
            self.schema.clone(),
            projection,
            partitions,
            batch_size,
        )?))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn describe(&self) -> String {
        format!("csv {}", self.path.display())
    }
}
