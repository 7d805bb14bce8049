//! Scans of data held in memory (registered batches, VALUES) and of CSV files.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Result, SluiceError};
use crate::physical::{batches_stream, Element, ElementStream, ExecNode, TaskContext};

/// Batches in memory, dealt round-robin into partitions (sliced to the batch size).
#[derive(Debug)]
pub struct MemoryExec {
    schema: SchemaRef,
    partitions: Vec<Vec<RecordBatch>>,
}

impl MemoryExec {
    /// Projects `batches` and deals them into `partitions` partitions.
    pub fn try_new(
        schema: SchemaRef,
        batches: &[RecordBatch],
        projection: Option<&[usize]>,
        partitions: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let schema = match projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => schema,
        };
        let n = partitions.max(1);
        let mut parts = vec![Vec::new(); n];
        let mut i = 0;
        for b in batches {
            let b = match projection {
                Some(p) => b.project(p)?,
                None => b.clone(),
            };
            let mut off = 0;
            while off < b.num_rows() {
                let len = batch_size.max(1).min(b.num_rows() - off);
                parts[i % n].push(b.slice(off, len));
                i += 1;
                off += len;
            }
        }
        parts.retain(|p| !p.is_empty());
        if parts.is_empty() {
            parts.push(vec![]);
        }
        Ok(Self {
            schema,
            partitions: parts,
        })
    }

    /// One partition holding `batches` as they are.
    pub fn single(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self {
            schema,
            partitions: vec![batches],
        }
    }
}

impl ExecNode for MemoryExec {
    fn name(&self) -> &'static str {
        "MemoryExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![]
    }
    fn output_partitions(&self) -> usize {
        self.partitions.len()
    }
    fn execute(&self, partition: usize, _ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let p = self
            .partitions
            .get(partition)
            .ok_or_else(|| SluiceError::exec("memory scan partition out of range"))?;
        Ok(batches_stream(p.clone()))
    }
    fn details(&self) -> String {
        let rows: usize = self
            .partitions
            .iter()
            .flatten()
            .map(RecordBatch::num_rows)
            .sum();
        format!("rows={rows}")
    }
}

/// CSV files with a header line, one file per partition (files dealt round-robin).
#[derive(Debug)]
pub struct CsvExec {
    files: Vec<PathBuf>,
    file_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    partitions: usize,
    batch_size: usize,
}

impl CsvExec {
    /// Scans `files` (all with `file_schema`).
    pub fn try_new(
        files: Vec<PathBuf>,
        file_schema: SchemaRef,
        projection: Option<&[usize]>,
        partitions: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let schema = match projection {
            Some(p) => Arc::new(file_schema.project(p)?),
            None => file_schema.clone(),
        };
        let partitions = partitions.clamp(1, files.len().max(1));
        Ok(Self {
            files,
            file_schema,
            projection: projection.map(<[usize]>::to_vec),
            schema,
            partitions,
            batch_size,
        })
    }
}

impl ExecNode for CsvExec {
    fn name(&self) -> &'static str {
        "CsvExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![]
    }
    fn output_partitions(&self) -> usize {
        self.partitions
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let files: Vec<PathBuf> = self
            .files
            .iter()
            .skip(partition)
            .step_by(self.partitions)
            .cloned()
            .collect();
        let file_schema = self.file_schema.clone();
        let projection = self.projection.clone();
        let batch_size = self.batch_size;
        let iter = files.into_iter().flat_map(move |path| {
            let reader = File::open(&path)
                .map_err(|source| SluiceError::Io {
                    path: path.clone(),
                    source,
                })
                .and_then(|f| {
                    let mut b = arrow::csv::ReaderBuilder::new(file_schema.clone())
                        .with_header(true)
                        .with_batch_size(batch_size);
                    if let Some(p) = &projection {
                        b = b.with_projection(p.clone());
                    }
                    b.build(f).map_err(SluiceError::from)
                });
            let items: Box<dyn Iterator<Item = Result<Element>> + Send> = match reader {
                Ok(r) => {
                    let p = path.clone();
                    Box::new(r.map(move |b| {
                        b.map(Element::Batch).map_err(|e| {
                            SluiceError::exec(format!("cannot read CSV file {}: {e}", p.display()))
                        })
                    }))
                }
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
            items
        });
        Ok(ctx.cancellable(Box::new(iter.chain(std::iter::once(Ok(Element::End))))))
    }
    fn details(&self) -> String {
        format!("files={}", self.files.len())
    }
}
