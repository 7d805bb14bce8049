//! Sink connector tables, written by `INSERT INTO`: `print` (every row to standard output
//! as Flink prints it, `+I[v1, v2, ...]`, with `-U`/`+U`/`-D` for the rows of a changelog)
//! and `blackhole` (rows are counted and dropped, for benchmarks). Both accept updating
//! queries. Neither can be read.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::catalog::TableProvider;
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::physical::ExecNode;

/// What a sink does with rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// Rows to standard output.
    Print,
    /// Rows dropped.
    Blackhole,
}

/// A write-only table.
#[derive(Debug)]
pub struct SinkTable {
    name: String,
    schema: SchemaRef,
    kind: SinkKind,
    rows: AtomicU64,
}

impl SinkTable {
    /// A sink `name` of `schema`; `options` beyond `connector` are refused.
    pub fn try_new(
        name: &str,
        schema: SchemaRef,
        kind: SinkKind,
        options: &[(String, String)],
    ) -> Result<Self> {
        if let Some((k, _)) = options.iter().find(|(k, _)| k != "connector") {
            return Err(SluiceError::plan(format!(
                "unknown option '{k}' for {kind:?} sink table '{name}' (it takes none)"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            schema,
            kind,
            rows: AtomicU64::new(0),
        })
    }

    /// Rows written since the table was created.
    pub fn rows_written(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Writes `batch` (already in the table's schema); `ops` are the row kinds of a
    /// changelog (`+I` for every row when absent).
    pub fn write(
        &self,
        batch: &RecordBatch,
        ops: Option<&StringArray>,
        out: &mut dyn Write,
    ) -> Result<()> {
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        if self.kind == SinkKind::Blackhole {
            return Ok(());
        }
        let opts = FormatOptions::default().with_null("NULL");
        let fmts = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let io = |e: std::io::Error| SluiceError::exec(format!("print sink '{}': {e}", self.name));
        for row in 0..batch.num_rows() {
            let vals: Vec<String> = fmts.iter().map(|f| f.value(row).to_string()).collect();
            let op = ops.map_or("+I", |o| o.value(row));
            writeln!(out, "{op}[{}]", vals.join(", ")).map_err(io)?;
        }
        Ok(())
    }
}

impl TableProvider for SinkTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn row_count(&self) -> Option<usize> {
        None
    }
    fn scan(
        &self,
        _projection: Option<&[usize]>,
        _filters: &[Expr],
        _partitions: usize,
        _batch_size: usize,
    ) -> Result<Arc<dyn ExecNode>> {
        Err(SluiceError::plan(format!(
            "table '{}' is a {:?} sink: it can be written with INSERT INTO, not read",
            self.name, self.kind
        )))
    }
    fn describe(&self) -> String {
        format!("{:?} sink", self.kind).to_lowercase()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
