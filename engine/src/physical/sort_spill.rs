//! External sort: sorted runs spilled to Arrow IPC files and merged back.
//!
//! A run goes through a one-producer, one-partition blocking exchange of
//! `sluice-flight-shuffle`, which writes Arrow IPC files into the spill directory, reads
//! them back zero-copy through `mmap` and deletes them when the run is dropped. The merge
//! compares rows in the `arrow-row` format (one binary key per row, so a multi-column key
//! compares with `memcmp`), keeps each run's next row in a binary heap and gathers output
//! with `interleave`, one batch at a time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::compute::interleave_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};
use sluice_flight_shuffle::{Exchange, ShuffleReader};

use crate::error::Result;
use crate::physical::exchange::spill_storage;
use crate::physical::sort::PhysSortExpr;

/// One sorted run on disk.
pub struct SpilledRun {
    /// Owns the files; they are deleted when the run is dropped.
    _exchange: Exchange,
    reader: Box<dyn ShuffleReader>,
}

/// Writes the sorted `batch` as a run, in slices of `batch_size` rows.
pub fn spill_run(batch: &RecordBatch, batch_size: usize, spill_dir: &Path) -> Result<SpilledRun> {
    let exchange = spill_storage(spill_dir, batch.schema(), 1)?;
    let mut writer = exchange.writer(0)?;
    let mut off = 0;
    while off < batch.num_rows() {
        let len = batch_size.min(batch.num_rows() - off);
        writer.write(0, batch.slice(off, len))?;
        off += len;
    }
    writer.finish()?;
    let reader = exchange.reader(0)?;
    Ok(SpilledRun {
        _exchange: exchange,
        reader,
    })
}

/// Where one run stands in the merge.
struct Cursor {
    run: SpilledRun,
    batch: RecordBatch,
    rows: Rows,
    pos: usize,
    /// Index of `batch` in the merge's current sources.
    source: usize,
}

/// A k-way merge of sorted runs, yielding sorted batches.
pub struct Merge {
    keys: Vec<PhysSortExpr>,
    converter: RowConverter,
    /// One per run; `None` once the run is exhausted.
    cursors: Vec<Option<Cursor>>,
    /// The next row of every live run, smallest first.
    heap: BinaryHeap<Reverse<(OwnedRow, usize)>>,
    sources: Vec<RecordBatch>,
}

impl Merge {
    /// Starts merging `runs` (each sorted by `keys` over rows of `schema`).
    pub fn new(keys: Vec<PhysSortExpr>, schema: &SchemaRef, runs: Vec<SpilledRun>) -> Result<Self> {
        let fields = keys
            .iter()
            .map(|k| {
                Ok(SortField::new_with_options(
                    k.expr.data_type(schema)?,
                    k.options,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let converter = RowConverter::new(fields)?;
        let mut merge = Self {
            keys,
            converter,
            cursors: Vec::with_capacity(runs.len()),
            heap: BinaryHeap::with_capacity(runs.len()),
            sources: Vec::new(),
        };
        for run in runs {
            if let Some(c) = merge.open(run)? {
                merge
                    .heap
                    .push(Reverse((c.rows.row(0).owned(), merge.cursors.len())));
                merge.cursors.push(Some(c));
            }
        }
        merge.reset_sources();
        Ok(merge)
    }

    /// The next non-empty batch of `run` with its row keys, or `None` at its end.
    fn load(&self, run: &mut SpilledRun) -> Result<Option<(RecordBatch, Rows)>> {
        for batch in run.reader.by_ref() {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let cols = self
                .keys
                .iter()
                .map(|k| k.expr.evaluate_array(&batch))
                .collect::<Result<Vec<_>>>()?;
            let rows = self.converter.convert_columns(&cols)?;
            return Ok(Some((batch, rows)));
        }
        Ok(None)
    }

    fn open(&self, mut run: SpilledRun) -> Result<Option<Cursor>> {
        Ok(self.load(&mut run)?.map(|(batch, rows)| Cursor {
            run,
            batch,
            rows,
            pos: 0,
            source: 0,
        }))
    }

    /// Makes the cursors' current batches the only sources.
    fn reset_sources(&mut self) {
        self.sources.clear();
        for c in self.cursors.iter_mut().flatten() {
            c.source = self.sources.len();
            self.sources.push(c.batch.clone());
        }
    }

    /// Up to `batch_size` next rows in order; `None` once every run is exhausted.
    pub fn next_batch(&mut self, batch_size: usize) -> Result<Option<RecordBatch>> {
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(batch_size);
        while picks.len() < batch_size {
            let Some(Reverse((_, i))) = self.heap.pop() else {
                break;
            };
            let Some(mut c) = self.cursors[i].take() else {
                continue;
            };
            picks.push((c.source, c.pos));
            c.pos += 1;
            if c.pos == c.batch.num_rows() {
                let Some((batch, rows)) = self.load(&mut c.run)? else {
                    continue; // this run is exhausted
                };
                c.source = self.sources.len();
                self.sources.push(batch.clone());
                c.batch = batch;
                c.rows = rows;
                c.pos = 0;
            }
            self.heap.push(Reverse((c.rows.row(c.pos).owned(), i)));
            self.cursors[i] = Some(c);
        }
        if picks.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&RecordBatch> = self.sources.iter().collect();
        let out = interleave_record_batch(&refs, &picks)?;
        self.reset_sources();
        Ok(Some(out))
    }
}
