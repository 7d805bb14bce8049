//! Tests of the blocking (spill-file) exchange: round trips, repeated reads,
//! waiting for producers, failure propagation, dictionary columns and the
//! removal of the spill files.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use arrow::array::{Array, DictionaryArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use common::{assert_per_producer_order, batch, drain, read_all, schema, within, TestResult};
use sluice_flight_shuffle::{Exchange, PartitionKind, ShuffleError};

fn blocking(parent: &Path, producers: usize, partitions: usize) -> TestResult<Arc<Exchange>> {
    Ok(Arc::new(Exchange::new(
        PartitionKind::Blocking {
            spill_dir: parent.to_path_buf(),
        },
        schema(),
        producers,
        partitions,
    )?))
}

fn entries(dir: &Path) -> TestResult<usize> {
    Ok(std::fs::read_dir(dir)?.count())
}

#[test]
fn round_trip_is_readable_twice_and_files_are_removed_on_drop() -> TestResult {
    const PRODUCERS: usize = 2;
    const PARTITIONS: usize = 3;
    const BATCHES: usize = 12;
    const ROWS: usize = 5;
    let parent = tempfile::tempdir()?;
    let exchange = blocking(parent.path(), PRODUCERS, PARTITIONS)?;
    let spill = exchange.spill_path().ok_or("no spill path")?.to_path_buf();
    assert!(spill.starts_with(parent.path()));

    // A reader taken before any producer ran waits for all of them.
    let early = exchange.reader(2)?;
    let early = thread::spawn(move || read_all(early).map_err(|e| e.to_string()));

    let producers = (0..PRODUCERS)
        .map(|producer| {
            let mut writer = exchange.writer(producer)?;
            let schema = exchange.schema();
            Ok(thread::spawn(move || -> Result<(), String> {
                for i in 0..BATCHES {
                    let first = i64::try_from(i * ROWS).map_err(|e| e.to_string())?;
                    let batch = batch(&schema, producer, first, ROWS).map_err(|e| e.to_string())?;
                    writer
                        .write(i % PARTITIONS, batch)
                        .map_err(|e| e.to_string())?;
                }
                writer.finish().map_err(|e| e.to_string())
            }))
        })
        .collect::<TestResult<Vec<_>>>()?;
    for producer in producers {
        producer.join().map_err(|_| "producer panicked")??;
    }
    let early = within("early reader", move || early.join())?.map_err(|_| "reader panicked")??;

    let mut total = 0;
    for partition in 0..PARTITIONS {
        let first = read_all(exchange.reader(partition)?)?;
        let second = read_all(exchange.reader(partition)?)?;
        assert_eq!(
            first, second,
            "re-reading partition {partition} must give the same data"
        );
        assert_per_producer_order(&first);
        // Blocking reads are in producer order, each producer's batches in write order.
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(first, sorted);
        assert_eq!(first.len(), PRODUCERS * BATCHES / PARTITIONS * ROWS);
        if partition == 2 {
            assert_eq!(first, early);
        }
        total += first.len();
    }
    assert_eq!(total, PRODUCERS * BATCHES * ROWS);

    let metrics = exchange.metrics();
    assert!(metrics.bytes_spilled > 0, "{metrics:?}");
    assert_eq!(metrics.batches_written, u64::try_from(PRODUCERS * BATCHES)?);
    assert_eq!(
        metrics.rows_written,
        u64::try_from(PRODUCERS * BATCHES * ROWS)?
    );
    assert_eq!((metrics.sends, metrics.blocked_sends), (0, 0));
    assert_eq!(entries(&spill)?, PRODUCERS * PARTITIONS);

    // A batch read back keeps the data valid after the reader is gone.
    let kept = exchange.reader(0)?.next().ok_or("no batch")??;
    drop(exchange);
    assert!(
        !spill.exists(),
        "spill directory must be removed with the exchange"
    );
    assert_eq!(entries(parent.path())?, 0);
    assert_eq!(kept.num_rows(), ROWS);
    Ok(())
}

#[test]
fn abort_wakes_waiting_readers() -> TestResult {
    let parent = tempfile::tempdir()?;
    let exchange = blocking(parent.path(), 2, 2)?;
    let schema = exchange.schema();
    let mut finished = exchange.writer(0)?;
    finished.write(0, batch(&schema, 0, 0, 3)?)?;
    finished.finish()?;
    let mut failing = exchange.writer(1)?;
    failing.write(1, batch(&schema, 1, 0, 3)?)?;

    let waiting = (0..2)
        .map(|partition| {
            let reader = exchange.reader(partition)?;
            Ok(thread::spawn(move || {
                drain(reader).map_err(|e| e.to_string())
            }))
        })
        .collect::<TestResult<Vec<_>>>()?;
    thread::sleep(Duration::from_millis(50));
    failing.abort("out of memory".to_string());

    for reader in waiting {
        let (rows, error) =
            within("waiting reader", move || reader.join())?.map_err(|_| "reader panicked")??;
        assert!(
            rows.is_empty(),
            "no data may be read from a failed exchange"
        );
        match error {
            Some(ShuffleError::ProducerFailed {
                producer: 1,
                message,
            }) => {
                assert_eq!(message, "out of memory");
            }
            other => panic!("expected ProducerFailed, got {other:?}"),
        }
    }
    // Readers taken later see the same failure.
    let (_, error) = drain(exchange.reader(0)?)?;
    assert!(matches!(
        error,
        Some(ShuffleError::ProducerFailed { producer: 1, .. })
    ));
    Ok(())
}

#[test]
fn dropped_writer_fails_the_partition() -> TestResult {
    let parent = tempfile::tempdir()?;
    let exchange = blocking(parent.path(), 1, 1)?;
    let mut writer = exchange.writer(0)?;
    writer.write(0, batch(&exchange.schema(), 0, 0, 3)?)?;
    let reader = exchange.reader(0)?;
    let reader = thread::spawn(move || drain(reader).map_err(|e| e.to_string()));
    drop(writer);
    let (_, error) = within("reader", move || reader.join())?.map_err(|_| "reader panicked")??;
    assert!(
        matches!(error, Some(ShuffleError::ProducerDropped { producer: 0 })),
        "{error:?}"
    );
    Ok(())
}

#[test]
fn dictionary_columns_with_changing_dictionaries_round_trip() -> TestResult {
    let parent = tempfile::tempdir()?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new(
            "name",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
    ]));
    let exchange = Exchange::new(
        PartitionKind::Blocking {
            spill_dir: parent.path().to_path_buf(),
        },
        Arc::clone(&schema),
        1,
        1,
    )?;
    let words: [&[&str]; 3] = [&["a", "b", "a"], &["x", "y"], &["a", "b", "b"]];
    let mut writer = exchange.writer(0)?;
    let mut expected = Vec::new();
    for (i, names) in words.iter().enumerate() {
        let seq = i64::try_from(i)?;
        let dict: DictionaryArray<Int32Type> = names.iter().copied().collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![seq; names.len()])),
                Arc::new(dict),
            ],
        )?;
        writer.write(0, batch)?;
        expected.extend(names.iter().map(|name| (seq, name.to_string())));
    }
    writer.finish()?;
    // Batch 2 needs a second file; batch 3 a third (its dictionary differs from batch 2's).
    assert_eq!(entries(exchange.spill_path().ok_or("no spill path")?)?, 3);

    let mut actual = Vec::new();
    for batch in exchange.reader(0)? {
        let batch = batch?;
        let seqs = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or("seq")?;
        let dict = batch
            .column(1)
            .as_any()
            .downcast_ref::<DictionaryArray<Int32Type>>()
            .ok_or("name")?;
        let values = dict
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("values")?;
        for row in 0..batch.num_rows() {
            let key = usize::try_from(dict.keys().value(row))?;
            actual.push((seqs.value(row), values.value(key).to_string()));
        }
    }
    assert_eq!(actual, expected);
    Ok(())
}

#[test]
fn untouched_partitions_are_empty_and_bad_input_is_rejected() -> TestResult {
    let parent = tempfile::tempdir()?;
    let exchange = blocking(parent.path(), 2, 3)?;
    let mut writer = exchange.writer(0)?;
    writer.write(1, batch(&exchange.schema(), 0, 0, 2)?)?;

    let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let bad = RecordBatch::try_new(other, vec![Arc::new(Int64Array::from(vec![1]))])?;
    assert!(matches!(
        writer.write(1, bad),
        Err(ShuffleError::SchemaMismatch { .. })
    ));
    assert!(matches!(
        writer.write(3, batch(&exchange.schema(), 0, 2, 1)?),
        Err(ShuffleError::InvalidPartition {
            partition: 3,
            count: 3
        })
    ));
    assert!(matches!(
        exchange.reader(3).err(),
        Some(ShuffleError::InvalidPartition {
            partition: 3,
            count: 3
        })
    ));
    writer.finish()?;
    exchange.writer(1)?.finish()?;

    assert!(read_all(exchange.reader(0)?)?.is_empty());
    assert!(read_all(exchange.reader(2)?)?.is_empty());
    assert_eq!(read_all(exchange.reader(1)?)?, vec![(0, 0), (0, 1)]);
    Ok(())
}
