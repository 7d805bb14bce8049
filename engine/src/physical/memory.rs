//! Memory accounting: a pool with an optional limit that operators reserve their buffered
//! data from (sort and window buffers, aggregation state, hash-join build sides). A
//! reservation that would pass the limit fails with an error naming the operator and the
//! limit, so a query that does not fit stops cleanly instead of being killed by the OS.
//!
//! Operators that can spill (sort, aggregation) grow with [`Reservation::resize_spillable`],
//! which is refused once the pool is [`SPILLABLE_SHARE`] full: they spill then, leaving the
//! rest of the limit to what cannot spill (hash-join builds, an aggregation merging one
//! spilled bucket). Without that, a sort filling the pool would starve them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;

use crate::error::{Result, SluiceError};

/// Part of the limit (in quarters) that spillable growth may fill.
pub const SPILLABLE_SHARE: usize = 3;

/// Bytes reserved by the running queries of a session, against an optional limit.
#[derive(Debug, Default)]
pub struct MemoryPool {
    limit: Option<usize>,
    used: AtomicUsize,
}

impl MemoryPool {
    /// A pool with at most `limit` bytes (`None` = unlimited, still counted).
    pub fn new(limit: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// A new, empty reservation for `operator`.
    pub fn reservation(self: &Arc<Self>, operator: &'static str) -> Reservation {
        Reservation {
            pool: self.clone(),
            operator,
            size: 0,
        }
    }
}

/// Memory held by one operator instance; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    pool: Arc<MemoryPool>,
    operator: &'static str,
    size: usize,
}

impl Reservation {
    /// Sets the reserved size to `bytes`, failing (and keeping the old size) when growing
    /// would pass the pool's limit.
    pub fn resize(&mut self, bytes: usize) -> Result<()> {
        self.resize_within(bytes, self.pool.limit)
    }

    /// Like [`Reservation::resize`] for an operator that can spill: growth is refused once
    /// the pool would pass [`SPILLABLE_SHARE`] quarters of the limit.
    pub fn resize_spillable(&mut self, bytes: usize) -> Result<()> {
        let share = self.pool.limit.map(|l| l / 4 * SPILLABLE_SHARE);
        self.resize_within(bytes, share)
    }

    fn resize_within(&mut self, bytes: usize, limit: Option<usize>) -> Result<()> {
        if bytes <= self.size {
            self.pool
                .used
                .fetch_sub(self.size - bytes, Ordering::Relaxed);
            self.size = bytes;
            return Ok(());
        }
        let grow = bytes - self.size;
        let before = self.pool.used.fetch_add(grow, Ordering::Relaxed);
        if let Some(limit) = limit {
            if before + grow > limit {
                self.pool.used.fetch_sub(grow, Ordering::Relaxed);
                return Err(SluiceError::ResourcesExhausted(format!(
                    "{} needs {} more bytes ({} held) but the memory limit is {} bytes with {} in use; \
                     raise the limit (SessionConfig::memory_limit, --memory-limit)",
                    self.operator, grow, self.size, limit, before
                )));
            }
        }
        self.size = bytes;
        Ok(())
    }

    /// The pool's limit.
    pub fn limit(&self) -> Option<usize> {
        self.pool.limit
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.used.fetch_sub(self.size, Ordering::Relaxed);
    }
}

/// Bytes of memory the rows of `batch` keep alive, for reservations.
///
/// Arrow's `get_array_memory_size` counts each buffer's whole allocation, which misleads
/// twice here: a slice of a large batch counts the whole batch, and a batch read back from
/// an mmap-ed spill file counts the whole file. This counts what the rows refer to: the
/// sliced range of fixed-width and offset buffers, and for string/binary views the views
/// plus their data buffers (views may point anywhere in them).
pub fn batch_bytes(batch: &RecordBatch) -> usize {
    batch.columns().iter().map(array_bytes).sum()
}

fn array_bytes(a: &ArrayRef) -> usize {
    // Views: 16 bytes each, plus the data buffers (a view array's buffers are distinct;
    // a join or filter output may hold thousands, so this stays a plain sum).
    let views = |buffers: &[arrow::buffer::Buffer]| {
        a.len() * 16
            + a.logical_nulls().map_or(0, |n| n.len().div_ceil(8))
            + buffers.iter().map(|b| b.len()).sum::<usize>()
    };
    match a.data_type() {
        DataType::Utf8View => views(a.as_string_view().data_buffers()),
        DataType::BinaryView => views(a.as_binary_view().data_buffers()),
        _ => {
            let d = a.to_data();
            d.get_slice_memory_size()
                .unwrap_or_else(|_| d.get_array_memory_size())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_respect_the_limit_and_release_on_drop() {
        let pool = MemoryPool::new(Some(100));
        let mut a = pool.reservation("SortExec");
        a.resize(60).expect("fits");
        let mut b = pool.reservation("HashJoinExec");
        let e = b.resize(50).expect_err("over the limit").to_string();
        assert!(e.contains("HashJoinExec") && e.contains("100"), "{e}");
        assert_eq!(pool.used(), 60);
        a.resize(10).expect("shrink");
        b.resize(50).expect("fits now");
        drop(a);
        drop(b);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn batch_bytes_counts_what_rows_refer_to() {
        use arrow::array::{Int64Array, StringViewArray};
        use arrow::datatypes::{Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, false),
            Field::new("s", DataType::Utf8View, false),
        ]));
        let i: Int64Array = (0..10_000).collect();
        let s: StringViewArray = (0..10_000)
            .map(|n| Some(format!("a string longer than twelve bytes {n}")))
            .collect();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(i), Arc::new(s)]).expect("batch");
        let whole = batch_bytes(&batch);
        assert!(whole >= 10_000 * (8 + 16 + 34), "{whole}");
        // A slice keeps the string data alive but not the other rows' fixed-width values.
        let slice = batch_bytes(&batch.slice(0, 100));
        assert!(slice < whole && slice > 100 * 8, "{slice} vs {whole}");
    }
}
