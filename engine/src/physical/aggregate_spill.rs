//! Spill storage of hash aggregation: when the group table's reservation is refused, its
//! groups are written out as *state batches* (key columns, then every accumulator's
//! state columns), hash-partitioned into [`SPILL_BUCKETS`] buckets. At the end each
//! bucket is read back and merged on its own, so only one bucket's groups are in memory
//! at a time. A key always lands in the same bucket, so merging buckets separately is exact.
//!
//! The buckets are the partitions of a one-producer blocking exchange of
//! `sluice-flight-shuffle`: Arrow IPC files in the spill directory, read back with `mmap`,
//! deleted when the spill is dropped.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use sluice_flight_shuffle::{Exchange, PartitionKind, ShuffleReader, ShuffleWriter};

use crate::error::{Result, SluiceError};
use crate::physical::hash::hash_columns;

/// How many buckets spilled groups are spread over.
pub const SPILL_BUCKETS: usize = 64;

/// The bucket of a key hash (independent of the exchange's partition choice).
fn bucket_of(hash: u64) -> usize {
    (hash.rotate_left(21).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SPILL_BUCKETS
}

/// Spilled state batches of one aggregation.
pub struct AggSpill {
    exchange: Exchange,
    writer: Option<Box<dyn ShuffleWriter>>,
    num_keys: usize,
    /// Rows written so far.
    pub rows: usize,
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
        let exchange = Exchange::new(
            PartitionKind::Blocking {
                spill_dir: spill_dir.to_path_buf(),
            },
            schema,
            1,
            SPILL_BUCKETS,
        )?;
        let writer = Some(exchange.writer(0)?);
        Ok(Self {
            exchange,
            writer,
            num_keys,
            rows: 0,
        })
    }

    /// Writes one state batch (`columns`, `n` groups), split by key bucket.
    pub fn write(&mut self, columns: Vec<ArrayRef>, n: usize) -> Result<()> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| SluiceError::exec("aggregate spill already finished"))?;
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        let batch = RecordBatch::try_new_with_options(self.exchange.schema(), columns, &opts)?;
        let hashes = hash_columns(&batch.columns()[..self.num_keys], n)?;
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); SPILL_BUCKETS];
        for (i, h) in hashes.iter().enumerate() {
            rows[bucket_of(*h)].push(i as u32);
        }
        for (bucket, idx) in rows.into_iter().enumerate() {
            if !idx.is_empty() {
                writer.write(bucket, take_record_batch(&batch, &UInt32Array::from(idx))?)?;
            }
        }
        self.rows += n;
        Ok(())
    }

    /// Ends writing; buckets can be read from now on.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(mut w) = self.writer.take() {
            w.finish()?;
        }
        Ok(())
    }

    /// The state batches of `bucket`.
    pub fn bucket(&self, bucket: usize) -> Result<Box<dyn ShuffleReader>> {
        Ok(self.exchange.reader(bucket)?)
    }
}
