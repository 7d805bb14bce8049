//! Splitting one step of an operator across the query's threads, where the other
//! partitions would otherwise wait for it: a hash join's build side is read by every
//! partition, but joining its batches into one and indexing it fell to one thread while
//! the others waited for the table (a quarter of TPC-H q21's time at SF 10).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use arrow::array::{new_empty_array, Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::concat;
use arrow::datatypes::SchemaRef;
use sluice_flight_shuffle::compact_view_column;

use crate::error::Result;

/// Fewest rows worth another thread: starting one costs tens of microseconds.
pub const PARALLEL_ROWS: usize = 1 << 16;

/// `f` of every item, in order, computed on up to `threads` threads (the caller's
/// among them), each taking the next item not yet taken.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(items.len()));
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { return };
        let r = f(item);
        done.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// `a()` and `b()`, on two threads when `parallel` (`b` on a new one).
pub fn join<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|s| {
        let b = s.spawn(b);
        let a = a();
        match b.join() {
            Ok(b) => (a, b),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// `batches` (of `schema`) as one batch, its view columns compacted (see
/// [`sluice_flight_shuffle::compact_views`]); columns are joined on up to `threads`
/// threads.
pub fn concat_compacted(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    threads: usize,
) -> Result<RecordBatch> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let columns: Vec<usize> = (0..schema.fields().len()).collect();
    let columns = par_map(&columns, threads, |&c| -> Result<ArrayRef> {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
        let joined = match parts.len() {
            0 => new_empty_array(schema.field(c).data_type()),
            1 => batches[0].column(c).clone(),
            _ => concat(&parts)?,
        };
        Ok(compact_view_column(&joined))
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_keeps_order_on_any_number_of_threads() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [0, 1, 2, 7, 5000] {
            let out = par_map(&items, threads, |x| x * x);
            assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
        }
        assert!(par_map(&[] as &[u8], 4, |x| *x).is_empty());
    }

    #[test]
    fn concat_compacted_matches_concat_batches() {
        use arrow::array::{AsArray, Int64Array, StringViewArray};
        use arrow::compute::concat_batches;
        use arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;

        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Utf8View, false),
        ]));
        let long = "a string longer than twelve bytes";
        // Each batch's views are a slice of a larger array: their buffers hold more than
        // they use, so the joined column is compacted.
        let batch = |start: i64, rows: usize| {
            let keys = Int64Array::from_iter((start..start + rows as i64).map(Some));
            let strings = StringViewArray::from_iter_values((0..4 * rows).map(|_| long));
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(keys), Arc::new(strings.slice(0, rows))],
            )
            .expect("batch")
        };
        for rows in [100, PARALLEL_ROWS / 2 + 1] {
            let batches = vec![batch(0, rows), batch(rows as i64, rows)];
            let expected = concat_batches(&schema, &batches).expect("concat");
            for threads in [1, 2] {
                let out = concat_compacted(&schema, &batches, threads).expect("concat");
                assert_eq!(out, expected, "{rows} rows on {threads} threads");
                let s = out.column(1).as_string_view();
                assert_eq!(s.data_buffers().len(), 1, "compacted");
            }
        }
        let none = concat_compacted(&schema, &[], 2).expect("empty");
        assert_eq!(none.num_rows(), 0);
    }

    #[test]
    fn join_runs_both_and_on_two_threads_when_asked() {
        let caller = std::thread::current().id();
        let (a, b) = join(true, || 1, || std::thread::current().id());
        assert_eq!(a, 1);
        assert_ne!(b, caller);
        let (_, b) = join(false, || 1, || std::thread::current().id());
        assert_eq!(b, caller);
    }
}
