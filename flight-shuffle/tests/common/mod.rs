//! Helpers shared by the exchange tests: a two-column schema, batch
//! constructors and a "did it hang?" guard for threads.

#![allow(dead_code)]

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_flight_shuffle::{ShuffleError, ShuffleReader};

/// Boxed error for tests that use `?`.
pub type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// How long a step may take before a test calls it a hang.
pub const HANG: Duration = Duration::from_secs(20);

/// `producer` and `seq` columns: who wrote a row and its position in that producer's output.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("producer", DataType::Int64, false),
        Field::new("seq", DataType::Int64, false),
    ]))
}

/// A batch of `rows` rows of `producer` with sequence numbers `first..first + rows`.
pub fn batch(
    schema: &SchemaRef,
    producer: usize,
    first: i64,
    rows: usize,
) -> TestResult<RecordBatch> {
    let producer = i64::try_from(producer)?;
    let len = i64::try_from(rows)?;
    Ok(RecordBatch::try_new(
        Arc::clone(schema),
        vec![
            Arc::new(Int64Array::from(vec![producer; rows])),
            Arc::new(Int64Array::from_iter_values(first..first + len)),
        ],
    )?)
}

/// The `(producer, seq)` pairs of `batch`.
pub fn rows(batch: &RecordBatch) -> TestResult<Vec<(i64, i64)>> {
    let column = |index: usize| -> TestResult<&Int64Array> {
        batch
            .column(index)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| "not an Int64 column".into())
    };
    let (producers, seqs) = (column(0)?, column(1)?);
    assert_eq!(producers.null_count(), 0);
    Ok(producers
        .values()
        .iter()
        .copied()
        .zip(seqs.values().iter().copied())
        .collect())
}

/// `(producer, seq)` rows read and the error that ended the read, if any.
pub type Drained = (Vec<(i64, i64)>, Option<ShuffleError>);

/// Drain `reader`, returning the rows read and the terminal error, if any.
pub fn drain(reader: Box<dyn ShuffleReader>) -> TestResult<Drained> {
    let mut out = Vec::new();
    for item in reader {
        match item {
            Ok(batch) => out.extend(rows(&batch)?),
            Err(error) => return Ok((out, Some(error))),
        }
    }
    Ok((out, None))
}

/// Drain `reader` and require a clean end.
pub fn read_all(reader: Box<dyn ShuffleReader>) -> TestResult<Vec<(i64, i64)>> {
    match drain(reader)? {
        (rows, None) => Ok(rows),
        (_, Some(error)) => Err(error.into()),
    }
}

/// Assert that every producer's rows appear with strictly increasing `seq`.
pub fn assert_per_producer_order(rows: &[(i64, i64)]) {
    let mut last = std::collections::HashMap::new();
    for &(producer, seq) in rows {
        if let Some(previous) = last.insert(producer, seq) {
            assert!(
                seq > previous,
                "producer {producer}: seq {seq} after {previous}"
            );
        }
    }
}

/// Run `f` on a thread and wait for its result, failing the test if it takes longer than [`HANG`].
pub fn within<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> TestResult<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .map_err(|_| format!("{what} hung (or panicked)").into())
}
