//! Spill storage of hash aggregation: when the group table's reservation is refused, its
//! groups are written out as *state batches* (key columns, then every accumulator's
//! state columns), hash-partitioned into [`SPILL_BUCKETS`] buckets. At the end each
//! bucket is read back and merged on its own, so only one bucket's groups are in memory
//! at a time. A key always lands in the same bucket, so merging buckets separately is exact.
//!
//! Each spill is a one-producer blocking exchange of `sluice-flight-shuffle` whose
//! partitions are the buckets: Arrow IPC files in the spill directory, read back with
//! `mmap`, deleted when the spill is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Field, Schema, SchemaRef};
use sluice_flight_shuffle::{Exchange, ShuffleReader};

use crate::error::Result;
use crate::physical::exchange::{spill_bucket, spill_storage, split_rows, SPILL_BUCKETS};
use crate::physical::hash::hash_columns;

/// Spilled state batches of one aggregation.
///
/// Each spill is an exchange of its own, finished right away: its files are closed once
/// written (and mmap-read later), so an aggregation holds no open files between spills
/// however many partitions run.
pub struct AggSpill {
    spill_dir: PathBuf,
    schema: SchemaRef,
    spills: Vec<Exchange>,
    num_keys: usize,
}

impl AggSpill {
    /// A spill for state batches with `num_keys` leading key columns of types like
    /// `columns`' (the first state batch fixes the schema).
    pub fn new(spill_dir: &Path, columns: &[ArrayRef], num_keys: usize) -> Result<Self> {
        let schema: SchemaRef = Arc::new(Schema::new(
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        Ok(Self {
            spill_dir: spill_dir.to_path_buf(),
            schema,
            spills: Vec::new(),
            num_keys,
        })
    }

    /// Writes one state batch (`columns`, `n` groups), split by key bucket.
    pub fn write(&mut self, columns: Vec<ArrayRef>, n: usize) -> Result<()> {
        let exchange = spill_storage(&self.spill_dir, self.schema.clone(), SPILL_BUCKETS)?;
        let mut writer = exchange.writer(0)?;
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), columns, &opts)?;
        let hashes = hash_columns(&batch.columns()[..self.num_keys], n)?;
        for (bucket, rows) in split_rows(&batch, &hashes, SPILL_BUCKETS, spill_bucket)? {
            writer.write(bucket, rows)?;
        }
        writer.finish()?;
        self.spills.push(exchange);
        Ok(())
    }

    /// The state batches of `bucket`, from every spill.
    pub fn bucket(&self, bucket: usize) -> Result<Vec<Box<dyn ShuffleReader>>> {
        self.spills.iter().map(|e| Ok(e.reader(bucket)?)).collect()
    }
}
