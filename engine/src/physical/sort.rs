//! Sort (full, or top-k when a fetch is given) over a single partition.
//!
//! A full sort buffers its input under a memory reservation. When the reservation is
//! refused, the buffer is sorted and spilled as a run (`sort_spill.rs`), and at the end
//! the runs are merged. Only a single batch larger than the limit makes it fail.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{
    concat_batches, lexsort_to_indices, take_record_batch, SortColumn, SortOptions,
};
use arrow::datatypes::SchemaRef;

use crate::error::{Result, SluiceError};
use crate::physical::expr::PhysExpr;
use crate::physical::memory::{batch_bytes, Reservation};
use crate::physical::sort_spill::{spill_run, Merge, SpilledRun};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};
use sluice_flight_shuffle::compact_views;

/// A sort key bound to the input.
#[derive(Debug, Clone)]
pub struct PhysSortExpr {
    /// The value sorted by.
    pub expr: PhysExpr,
    /// Direction and NULL placement.
    pub options: SortOptions,
}

/// The plan node.
#[derive(Debug)]
pub struct SortExec {
    input: Arc<dyn ExecNode>,
    keys: Vec<PhysSortExpr>,
    fetch: Option<usize>,
}

impl SortExec {
    /// Sorts a single-partition `input`; with `fetch`, keeps only the first rows (top-k).
    pub fn new(input: Arc<dyn ExecNode>, keys: Vec<PhysSortExpr>, fetch: Option<usize>) -> Self {
        Self { input, keys, fetch }
    }
}

impl ExecNode for SortExec {
    fn name(&self) -> &'static str {
        "SortExec"
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
            return Err(SluiceError::exec("SortExec runs on one partition"));
        }
        let input = self.input.execute(0, ctx)?;
        Ok(OperatorStream::boxed(
            input,
            SortOp {
                keys: self.keys.clone(),
                fetch: self.fetch,
                schema: self.input.schema(),
                buffered: vec![],
                buffered_rows: 0,
                batch_size: ctx.config.batch_size,
                reservation: ctx.memory.reservation("SortExec"),
                bytes: 0,
                spill_dir: ctx.config.spill_dir.clone(),
                runs: vec![],
                merge: None,
            },
        ))
    }
    fn details(&self) -> String {
        let k: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                format!(
                    "{} {}",
                    k.expr,
                    if k.options.descending { "DESC" } else { "ASC" }
                )
            })
            .collect();
        match self.fetch {
            Some(f) => format!("[{}], fetch={f}", k.join(", ")),
            None => format!("[{}]", k.join(", ")),
        }
    }
}

struct SortOp {
    keys: Vec<PhysSortExpr>,
    fetch: Option<usize>,
    schema: SchemaRef,
    buffered: Vec<RecordBatch>,
    buffered_rows: usize,
    batch_size: usize,
    reservation: Reservation,
    bytes: usize,
    spill_dir: PathBuf,
    /// Sorted runs spilled so far.
    runs: Vec<SpilledRun>,
    /// The merge of the runs, once the input ended.
    merge: Option<Merge>,
}

/// Sorts `batch` by `keys`, keeping the first `fetch` rows.
pub fn sort_batch(
    batch: &RecordBatch,
    keys: &[PhysSortExpr],
    fetch: Option<usize>,
) -> Result<RecordBatch> {
    let cols = keys
        .iter()
        .map(|k| {
            Ok(SortColumn {
                values: k.expr.evaluate_array(batch)?,
                options: Some(k.options),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let idx = lexsort_to_indices(&cols, fetch)?;
    Ok(take_record_batch(batch, &idx)?)
}

impl SortOp {
    fn compact(&mut self) -> Result<RecordBatch> {
        let all = compact_views(concat_batches(&self.schema, &self.buffered)?);
        self.buffered.clear();
        let sorted = sort_batch(&all, &self.keys, self.fetch)?;
        self.buffered_rows = sorted.num_rows();
        self.bytes = batch_bytes(&sorted);
        Ok(sorted)
    }
}

impl SortOp {
    /// Sorts the buffer into a run on disk and releases its memory.
    fn spill(&mut self) -> Result<()> {
        let sorted = self.compact()?;
        let run = spill_run(&sorted, self.batch_size, &self.spill_dir)?;
        self.runs.push(run);
        self.buffered_rows = 0;
        self.bytes = 0;
        self.reservation.resize(0)
    }
}

impl Operator for SortOp {
    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<Element>) -> Result<()> {
        let size = batch_bytes(&batch);
        if self
            .reservation
            .resize_spillable(self.bytes + size)
            .is_err()
        {
            // Past the spillable share a full sort spills its buffer and goes on (runs
            // under a sixteenth of the limit are not worth a file: such a buffer grows
            // into the rest of the limit first), and a top-k buffer shrinks to its k rows.
            // Only a buffer that still does not fit fails, naming the operator and limit.
            let min_run = self.reservation.limit().unwrap_or(0) / 16;
            if !self.buffered.is_empty() {
                if self.fetch.is_some() {
                    let kept = self.compact()?;
                    self.buffered.push(kept);
                    self.reservation.resize(self.bytes)?;
                } else if self.bytes >= min_run {
                    self.spill()?;
                }
            }
            if let Err(e) = self.reservation.resize(self.bytes + size) {
                if self.fetch.is_some() || self.buffered.is_empty() {
                    return Err(e);
                }
                self.spill()?;
                self.reservation.resize(size)?;
            }
        }
        self.buffered_rows += batch.num_rows();
        self.bytes += size;
        self.buffered.push(batch);
        if let Some(k) = self.fetch {
            // Top-k: bound the buffer by sorting and truncating whenever it grows.
            if self.buffered_rows > (2 * k).max(4 * self.batch_size) {
                let kept = self.compact()?;
                self.buffered.push(kept);
            }
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        if !self.runs.is_empty() {
            if !self.buffered.is_empty() {
                self.spill()?;
            }
            let runs = std::mem::take(&mut self.runs);
            self.merge = Some(Merge::new(self.keys.clone(), &self.schema, runs)?);
            return Ok(());
        }
        let sorted = self.compact()?;
        let n = sorted.num_rows();
        let mut off = 0;
        while off < n {
            let len = self.batch_size.min(n - off);
            out.push(Element::Batch(sorted.slice(off, len)));
            off += len;
        }
        Ok(())
    }

    fn has_pending(&self) -> bool {
        self.merge.is_some()
    }

    fn resume(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let Some(merge) = self.merge.as_mut() else {
            return Ok(());
        };
        match merge.next_batch(self.batch_size)? {
            Some(b) => out.push(Element::Batch(b)),
            None => self.merge = None,
        }
        Ok(())
    }
}
