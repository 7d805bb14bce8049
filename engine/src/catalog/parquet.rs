//! Parquet tables: a file or a directory of `.parquet` files sharing one schema.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::PageIndexPolicy;

use crate::catalog::statistics::{parquet_statistics, ColumnStatistics};
use crate::catalog::{list_files, TableProvider};
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::physical::parquet::{ParquetExec, ParquetFile};
use crate::physical::ExecNode;

/// A Parquet table; file footers are read once, at registration.
#[derive(Debug)]
pub struct ParquetTable {
    path: PathBuf,
    files: Vec<ParquetFile>,
    schema: SchemaRef,
    rows: usize,
    statistics: Vec<ColumnStatistics>,
}

/// Reads a file's footer and its offset index (where each page is, so a scan of part of a
/// row group skips the other pages), naming the file on failure.
pub fn read_metadata(path: &Path) -> Result<ArrowReaderMetadata> {
    let f = File::open(path).map_err(|source| SluiceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
    ArrowReaderMetadata::load(&f, options).map_err(|e| SluiceError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl ParquetTable {
    /// Opens `path` (a file, or a directory of `.parquet` files).
    pub fn try_new(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let paths = list_files(&path, "parquet")?;
        if paths.is_empty() {
            return Err(SluiceError::plan(format!(
                "no .parquet files in {}",
                path.display()
            )));
        }
        let mut files = Vec::new();
        let mut schema: Option<SchemaRef> = None;
        for p in paths {
            let meta = read_metadata(&p)?;
            let s = meta.schema().clone();
            if let Some(first) = &schema {
                if first.fields() != s.fields() {
                    return Err(SluiceError::Parquet {
                        path: p,
                        message: format!("schema {s} differs from the other files' {first}"),
                    });
                }
            } else {
                schema = Some(s);
            }
            files.push(ParquetFile {
                path: p,
                metadata: meta,
            });
        }
        let schema = schema.ok_or_else(|| SluiceError::plan("no parquet files"))?;
        let rows = files
            .iter()
            .map(|f| f.metadata.metadata().file_metadata().num_rows() as usize)
            .sum();
        let metas: Vec<_> = files.iter().map(|f| &f.metadata).collect();
        let statistics = parquet_statistics(&metas);
        Ok(Self {
            path,
            files,
            schema,
            rows,
            statistics,
        })
    }
}

impl TableProvider for ParquetTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn row_count(&self) -> Option<usize> {
        Some(self.rows)
    }
    fn column_statistics(&self) -> &[ColumnStatistics] {
        &self.statistics
    }
    fn scan(
        &self,
        projection: Option<&[usize]>,
        filters: &[Expr],
        partitions: usize,
        batch_size: usize,
    ) -> Result<Arc<dyn ExecNode>> {
        Ok(Arc::new(ParquetExec::try_new(
            self.files.clone(),
            self.schema.clone(),
            projection,
            filters,
            partitions,
            batch_size,
        )?))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn describe(&self) -> String {
        format!("parquet {}", self.path.display())
    }
}
