//! Tests of the pipelined (bounded in-memory) exchange, plus the checks that
//! apply to every kind: index validation, schema validation, taken-once rules.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema};
use common::{assert_per_producer_order, batch, drain, read_all, schema, within, TestResult};
use sluice_flight_shuffle::{Exchange, PartitionKind, ShuffleError};

fn pipelined(capacity: usize, producers: usize, partitions: usize) -> TestResult<Arc<Exchange>> {
    Ok(Arc::new(Exchange::new(
        PartitionKind::Pipelined { capacity },
        schema(),
        producers,
        partitions,
    )?))
}

#[test]
fn exchange_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Exchange>();
}

#[test]
fn round_trip_several_producers_and_partitions() -> TestResult {
    const PRODUCERS: usize = 3;
    const PARTITIONS: usize = 4;
    const BATCHES: usize = 25;
    const ROWS: usize = 7;
    let exchange = pipelined(2, PRODUCERS, PARTITIONS)?;

    let readers = (0..PARTITIONS)
        .map(|partition| {
            let reader = exchange.reader(partition)?;
            Ok(thread::spawn(move || {
                read_all(reader).map_err(|e| e.to_string())
            }))
        })
        .collect::<TestResult<Vec<_>>>()?;
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
    let mut total = Vec::new();
    for (partition, reader) in readers.into_iter().enumerate() {
        let rows = reader.join().map_err(|_| "reader panicked")??;
        assert_per_producer_order(&rows);
        for &(_, seq) in &rows {
            let batch_index = usize::try_from(seq)? / ROWS;
            assert_eq!(
                batch_index % PARTITIONS,
                partition,
                "row routed to the wrong partition"
            );
        }
        total.extend(rows);
    }
    total.sort_unstable();
    let mut expected = Vec::new();
    for producer in 0..PRODUCERS {
        for seq in 0..BATCHES * ROWS {
            expected.push((i64::try_from(producer)?, i64::try_from(seq)?));
        }
    }
    assert_eq!(total, expected);

    let metrics = exchange.metrics();
    assert_eq!(metrics.batches_written, u64::try_from(PRODUCERS * BATCHES)?);
    assert_eq!(
        metrics.rows_written,
        u64::try_from(PRODUCERS * BATCHES * ROWS)?
    );
    assert_eq!(metrics.sends, metrics.batches_written);
    assert_eq!(metrics.bytes_spilled, 0);
    Ok(())
}

#[test]
fn full_partition_blocks_the_producer_until_the_reader_reads() -> TestResult {
    let exchange = pipelined(1, 1, 1)?;
    let mut writer = exchange.writer(0)?;
    let schema = exchange.schema();
    let attempted = Arc::new(AtomicUsize::new(0));
    let progress = Arc::clone(&attempted);
    let producer = thread::spawn(move || -> Result<(), String> {
        for i in 0..5 {
            progress.fetch_add(1, Ordering::SeqCst);
            let batch = batch(&schema, 0, i, 1).map_err(|e| e.to_string())?;
            writer.write(0, batch).map_err(|e| e.to_string())?;
        }
        writer.finish().map_err(|e| e.to_string())
    });

    // The first batch fills the queue; the second write must block.
    let deadline = std::time::Instant::now() + common::HANG;
    while attempted.load(Ordering::SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "producer never got to its second write"
        );
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(100));
    assert!(
        !producer.is_finished(),
        "producer should be blocked on the full partition"
    );
    assert_eq!(exchange.metrics().sends, 1);

    let reader = exchange.reader(0)?;
    let rows = within("reading", move || {
        read_all(reader).map_err(|e| e.to_string())
    })??;
    assert_eq!(rows, (0..5).map(|seq| (0, seq)).collect::<Vec<_>>());
    producer.join().map_err(|_| "producer panicked")??;

    let metrics = exchange.metrics();
    assert!(metrics.blocked_sends > 0, "{metrics:?}");
    assert_eq!(metrics.sends, 5);
    Ok(())
}

#[test]
fn abort_reaches_a_blocked_reader() -> TestResult {
    let exchange = pipelined(4, 2, 2)?;
    let schema = exchange.schema();
    let mut failing = exchange.writer(0)?;
    // Producer 1 stays open the whole time: only the failure can end the reads.
    let mut slow = exchange.writer(1)?;
    slow.write(1, batch(&schema, 1, 0, 3)?)?;

    let readers = (0..2)
        .map(|partition| {
            let reader = exchange.reader(partition)?;
            Ok(thread::spawn(move || {
                drain(reader).map_err(|e| e.to_string())
            }))
        })
        .collect::<TestResult<Vec<_>>>()?;
    failing.write(0, batch(&schema, 0, 0, 2)?)?;
    thread::sleep(Duration::from_millis(50));
    failing.abort("disk on fire".to_string());

    for reader in readers {
        let (_, error) = within("reader after abort", move || reader.join())?
            .map_err(|_| "reader panicked")??;
        match error {
            Some(ShuffleError::ProducerFailed {
                producer: 0,
                message,
            }) => {
                assert_eq!(message, "disk on fire");
            }
            other => panic!("expected ProducerFailed, got {other:?}"),
        }
    }
    // The surviving producer is told to stop.
    let error = slow.write(0, batch(&schema, 1, 3, 1)?);
    assert!(
        matches!(error, Err(ShuffleError::ProducerFailed { producer: 0, .. })),
        "{error:?}"
    );
    Ok(())
}

#[test]
fn dropped_writer_is_reported_not_a_short_read() -> TestResult {
    let exchange = pipelined(4, 2, 1)?;
    let schema = exchange.schema();
    let reader = exchange.reader(0)?;
    let mut good = exchange.writer(0)?;
    good.write(0, batch(&schema, 0, 0, 2)?)?;
    good.finish()?;
    let mut dropped = exchange.writer(1)?;
    dropped.write(0, batch(&schema, 1, 0, 2)?)?;
    drop(dropped);

    let (_, error) = within("reader after drop", move || {
        drain(reader).map_err(|e| e.to_string())
    })??;
    assert!(
        matches!(error, Some(ShuffleError::ProducerDropped { producer: 1 })),
        "{error:?}"
    );
    Ok(())
}

#[test]
fn producer_thread_panic_counts_as_dropped() -> TestResult {
    let exchange = pipelined(4, 1, 1)?;
    let mut writer = exchange.writer(0)?;
    let reader = exchange.reader(0)?;
    let first = batch(&schema(), 0, 0, 1)?;
    let result = thread::spawn(move || {
        // Out-of-range partition: an error the producer does not handle.
        if writer.write(7, first).is_err() {
            panic!("producer crashed");
        }
    })
    .join();
    assert!(result.is_err());
    let (_, error) = within("reader after panic", move || {
        drain(reader).map_err(|e| e.to_string())
    })??;
    assert!(
        matches!(error, Some(ShuffleError::ProducerDropped { producer: 0 })),
        "{error:?}"
    );
    Ok(())
}

#[test]
fn untaken_producer_fails_readers_when_the_exchange_is_dropped() -> TestResult {
    let exchange = pipelined(4, 2, 1)?;
    let reader = exchange.reader(0)?;
    let mut writer = exchange.writer(0)?;
    writer.finish()?;
    drop(exchange);
    let (_, error) = within("reader", move || drain(reader).map_err(|e| e.to_string()))??;
    assert!(
        matches!(error, Some(ShuffleError::ProducerDropped { producer: 1 })),
        "{error:?}"
    );
    Ok(())
}

#[test]
fn early_dropped_reader_does_not_hang_producers() -> TestResult {
    let exchange = pipelined(1, 2, 2)?;
    let schema = exchange.schema();
    let mut limited = exchange.reader(0)?;
    let other = exchange.reader(1)?;
    let producers = (0..2)
        .map(|producer| {
            let mut writer = exchange.writer(producer)?;
            let schema = Arc::clone(&schema);
            Ok(thread::spawn(move || -> Result<(), String> {
                for i in 0..100 {
                    let batch = batch(&schema, producer, i, 4).map_err(|e| e.to_string())?;
                    let partition = if i % 10 == 0 { 1 } else { 0 };
                    writer.write(partition, batch).map_err(|e| e.to_string())?;
                }
                writer.finish().map_err(|e| e.to_string())
            }))
        })
        .collect::<TestResult<Vec<_>>>()?;
    let other = thread::spawn(move || read_all(other).map_err(|e| e.to_string()));

    // A LIMIT: take one batch, then hang up.
    let first = limited.next().ok_or("no first batch")??;
    assert_eq!(first.num_rows(), 4);
    drop(limited);

    for producer in producers {
        within("producer after reader left", move || producer.join())?
            .map_err(|_| "producer panicked")??;
    }
    let rows = other.join().map_err(|_| "reader panicked")??;
    assert_eq!(rows.len(), 2 * 10 * 4);
    assert_per_producer_order(&rows);
    assert_eq!(exchange.metrics().batches_written, 200);
    Ok(())
}

#[test]
fn writing_a_batch_of_another_schema_is_rejected() -> TestResult {
    let exchange = pipelined(4, 1, 1)?;
    let mut writer = exchange.writer(0)?;
    let other = Arc::new(Schema::new(vec![
        Field::new("producer", DataType::Int64, false),
        Field::new("seq", DataType::Int32, false),
    ]));
    let bad = arrow::array::RecordBatch::try_new(
        Arc::clone(&other),
        vec![
            Arc::new(arrow::array::Int64Array::from(vec![1])),
            Arc::new(arrow::array::Int32Array::from(vec![1])),
        ],
    )?;
    let error = writer.write(0, bad);
    assert!(
        matches!(error, Err(ShuffleError::SchemaMismatch { .. })),
        "{error:?}"
    );
    // An equal schema in a different `Arc` is fine.
    writer.write(0, batch(&schema(), 0, 0, 1)?)?;
    writer.finish()?;
    assert_eq!(read_all(exchange.reader(0)?)?, vec![(0, 0)]);
    Ok(())
}

#[test]
fn invalid_indices_and_double_takes_are_rejected() -> TestResult {
    let exchange = pipelined(4, 2, 3)?;
    let mut writer = exchange.writer(0)?;
    let error = writer.write(3, batch(&exchange.schema(), 0, 0, 1)?);
    assert!(
        matches!(
            error,
            Err(ShuffleError::InvalidPartition {
                partition: 3,
                count: 3
            })
        ),
        "{error:?}"
    );
    assert!(matches!(
        exchange.reader(7).err(),
        Some(ShuffleError::InvalidPartition {
            partition: 7,
            count: 3
        })
    ));
    assert!(matches!(
        exchange.writer(2).err(),
        Some(ShuffleError::InvalidProducer {
            producer: 2,
            count: 2
        })
    ));
    assert!(matches!(
        exchange.writer(0).err(),
        Some(ShuffleError::AlreadyTaken {
            what: "writer",
            index: 0
        })
    ));
    let _reader = exchange.reader(1)?;
    assert!(matches!(
        exchange.reader(1).err(),
        Some(ShuffleError::AlreadyTaken {
            what: "reader",
            index: 1
        })
    ));
    writer.finish()?;
    assert!(matches!(
        writer.write(0, batch(&exchange.schema(), 0, 0, 1)?),
        Err(ShuffleError::WriterClosed {
            producer: 0,
            state: "finished"
        })
    ));
    assert!(matches!(
        Exchange::new(PartitionKind::Pipelined { capacity: 0 }, schema(), 1, 1),
        Err(ShuffleError::InvalidConfig(_))
    ));
    Ok(())
}

#[test]
fn zero_producers_means_immediate_end_of_data() -> TestResult {
    let exchange = pipelined(1, 0, 2)?;
    assert!(read_all(exchange.reader(0)?)?.is_empty());
    Ok(())
}

#[test]
fn writer_is_abandoned_once_every_reader_left() -> TestResult {
    let exchange = pipelined(4, 1, 2)?;
    let schema = exchange.schema();
    let first = exchange.reader(0)?;
    let second = exchange.reader(1)?;
    let mut writer = exchange.writer(0)?;
    drop(first);
    writer.write(0, batch(&schema, 0, 0, 4)?)?;
    assert!(!writer.abandoned(), "partition 1 still has a reader");
    drop(second);
    writer.write(1, batch(&schema, 0, 1, 4)?)?;
    assert!(writer.abandoned());
    Ok(())
}
