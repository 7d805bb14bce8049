//! Compacting batches before they are serialized: view arrays (`Utf8View`, `BinaryView`)
//! decoded from Parquet refer into page-sized buffers shared by many batches, and Arrow
//! IPC writes every referenced buffer whole.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;

/// More data buffers than this in one view column get it compacted.
pub const MAX_VIEW_BUFFERS: usize = 32;

/// True when view data `buffers` hold much more than the `used` bytes, or are too many.
fn wasteful(used: usize, buffers: &[arrow::buffer::Buffer]) -> bool {
    let held: usize = buffers.iter().map(|b| b.len()).sum();
    held > 2 * used + 4096 || buffers.len() > MAX_VIEW_BUFFERS
}

/// `batch` with its string/binary view columns compacted (into one data buffer) when
/// their data buffers hold much more than the rows refer to, or when there are more than
/// [`MAX_VIEW_BUFFERS`] of them. Views decoded from Parquet point into whole pages that
/// several batches share, and IPC sends every referenced buffer in full, so without this
/// `l_comment` of TPC-H SF 1 takes 1.4 GB of IPC instead of 0.26 GB. Writers of IPC
/// (blocking exchanges, the Flight SQL server) pass batches through this first. A column
/// concatenated from thousands of batches has thousands of buffers, and every `take` or
/// slice of it clones that list, so operators that keep concatenated batches (join build
/// sides, sort buffers) compact them too.
pub fn compact_views(batch: RecordBatch) -> RecordBatch {
    let compacted: Vec<Option<ArrayRef>> = batch.columns().iter().map(compact).collect();
    if compacted.iter().all(Option::is_none) {
        return batch;
    }
    let columns = batch
        .columns()
        .iter()
        .zip(compacted)
        .map(|(a, c)| c.unwrap_or_else(|| a.clone()))
        .collect();
    // Same schema, same row count: cannot fail; keep the original if it somehow does.
    RecordBatch::try_new(batch.schema(), columns).unwrap_or(batch)
}

/// One column as [`compact_views`] leaves it: compacted when it is a view column that
/// holds much more than it uses, else `a` itself.
pub fn compact_view_column(a: &ArrayRef) -> ArrayRef {
    compact(a).unwrap_or_else(|| a.clone())
}

/// `a` compacted, when it is a wasteful view column.
fn compact(a: &ArrayRef) -> Option<ArrayRef> {
    match a.data_type() {
        DataType::Utf8View => {
            let v = a.as_string_view();
            wasteful(v.total_buffer_bytes_used(), v.data_buffers())
                .then(|| Arc::new(v.gc()) as ArrayRef)
        }
        DataType::BinaryView => {
            let v = a.as_binary_view();
            wasteful(v.total_buffer_bytes_used(), v.data_buffers())
                .then(|| Arc::new(v.gc()) as ArrayRef)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringViewArray;
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn views_into_big_shared_buffers_are_compacted() {
        let long = "x".repeat(100);
        let big = StringViewArray::from_iter_values((0..10_000).map(|_| long.as_str()));
        // Two rows of a 10 000-row array still hold the whole 1 MB data buffer.
        let sliced: ArrayRef = Arc::new(big.slice(0, 2));
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![sliced]).expect("batch");
        let out = compact_views(batch.clone());
        let held = |b: &RecordBatch| -> usize {
            b.column(0)
                .as_string_view()
                .data_buffers()
                .iter()
                .map(|b| b.len())
                .sum()
        };
        assert!(held(&batch) >= 1_000_000);
        assert!(held(&out) <= 1_000, "{}", held(&out));
        assert_eq!(out.column(0).as_string_view().value(1), long);
        assert_eq!(out.column(0).len(), 2);
    }
}
