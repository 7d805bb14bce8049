//! State shared by an exchange and every writer and reader it hands out: the
//! producer table (which producers run, finished or failed), the metric
//! counters, and the validation every writer applies to a batch.
//!
//! The producer table is guarded by a mutex and a condvar (blocking readers
//! wait on it for the last producer). Its updates are single assignments that
//! cannot panic half-way, so the paths that cannot report an error (`abort`,
//! `Drop`) recover a poisoned lock instead of giving up; every fallible path
//! maps poisoning to [`ShuffleError::Poisoned`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::{ExchangeMetrics, Result, ShuffleError};

/// Life-cycle of one producer index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// No writer was handed out yet.
    Untaken,
    /// A writer is out and has neither finished nor failed.
    Running,
    /// The writer finished.
    Finished,
    /// The writer aborted or was dropped (or was never taken before the exchange was dropped).
    Failed,
}

/// Why an exchange failed; the first failure wins and every reader reports it.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The producer called `abort`.
    Aborted { producer: usize, message: String },
    /// The producer's writer was dropped unfinished.
    Dropped { producer: usize },
}

impl Failure {
    fn producer(&self) -> usize {
        match self {
            Failure::Aborted { producer, .. } | Failure::Dropped { producer } => *producer,
        }
    }

    fn to_error(&self) -> ShuffleError {
        match self {
            Failure::Aborted { producer, message } => ShuffleError::ProducerFailed {
                producer: *producer,
                message: message.clone(),
            },
            Failure::Dropped { producer } => ShuffleError::ProducerDropped {
                producer: *producer,
            },
        }
    }
}

/// The mutex-guarded part of [`Core`].
#[derive(Debug)]
struct Table {
    slots: Vec<Slot>,
    finished: usize,
    failure: Option<Failure>,
}

impl Table {
    /// `Ok(true)` once every producer finished, `Ok(false)` while some still run,
    /// the failure once the exchange failed.
    fn settled(&self) -> Result<bool> {
        match &self.failure {
            Some(failure) => Err(failure.to_error()),
            None => Ok(self.finished == self.slots.len()),
        }
    }
}

/// Where a writer is in its life-cycle (kept by the writer itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterState {
    /// Accepting batches.
    Open,
    /// `finish` succeeded.
    Finished,
    /// `abort` was called (or finishing failed).
    Aborted,
}

impl WriterState {
    /// Error unless the writer still accepts batches.
    pub(crate) fn check_open(self, producer: usize) -> Result<()> {
        let state = match self {
            WriterState::Open => return Ok(()),
            WriterState::Finished => "finished",
            WriterState::Aborted => "aborted",
        };
        Err(ShuffleError::WriterClosed { producer, state })
    }
}

/// Exchange counters, updated lock-free by writers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    batches_written: AtomicU64,
    rows_written: AtomicU64,
    bytes_spilled: AtomicU64,
    blocked_sends: AtomicU64,
    sends: AtomicU64,
}

impl Counters {
    /// A batch of `rows` rows was accepted by `write`.
    pub(crate) fn record_batch(&self, rows: usize) {
        self.batches_written.fetch_add(1, Ordering::Relaxed);
        self.rows_written
            .fetch_add(u64::try_from(rows).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A spill file of `bytes` bytes was completed.
    pub(crate) fn record_spill(&self, bytes: u64) {
        self.bytes_spilled.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A batch was delivered into a pipelined queue.
    pub(crate) fn record_send(&self) {
        self.sends.fetch_add(1, Ordering::Relaxed);
    }

    /// A producer found a pipelined queue full (counted even if the reader then left).
    pub(crate) fn record_blocked(&self) {
        self.blocked_sends.fetch_add(1, Ordering::Relaxed);
    }

    /// Current values.
    pub(crate) fn snapshot(&self) -> ExchangeMetrics {
        ExchangeMetrics {
            batches_written: self.batches_written.load(Ordering::Relaxed),
            rows_written: self.rows_written.load(Ordering::Relaxed),
            bytes_spilled: self.bytes_spilled.load(Ordering::Relaxed),
            blocked_sends: self.blocked_sends.load(Ordering::Relaxed),
            sends: self.sends.load(Ordering::Relaxed),
        }
    }
}

/// State shared by an exchange, its writers and its readers.
#[derive(Debug)]
pub(crate) struct Core {
    schema: SchemaRef,
    num_producers: usize,
    num_partitions: usize,
    table: Mutex<Table>,
    /// Signalled whenever a producer finishes or fails.
    changed: Condvar,
    /// Set (never cleared) once `table.failure` is set; lets the hot paths skip the lock.
    failed: AtomicBool,
    metrics: Counters,
}

impl Core {
    /// Fresh state: no producer taken, nothing written.
    pub(crate) fn new(schema: SchemaRef, num_producers: usize, num_partitions: usize) -> Self {
        Self {
            schema,
            num_producers,
            num_partitions,
            table: Mutex::new(Table {
                slots: vec![Slot::Untaken; num_producers],
                finished: 0,
                failure: None,
            }),
            changed: Condvar::new(),
            failed: AtomicBool::new(false),
            metrics: Counters::default(),
        }
    }

    /// The exchange schema.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Number of producers.
    pub(crate) fn num_producers(&self) -> usize {
        self.num_producers
    }

    /// Number of output partitions.
    pub(crate) fn num_partitions(&self) -> usize {
        self.num_partitions
    }

    /// The exchange counters.
    pub(crate) fn metrics(&self) -> &Counters {
        &self.metrics
    }

    fn lock(&self) -> Result<MutexGuard<'_, Table>> {
        self.table.lock().map_err(|_| ShuffleError::Poisoned {
            what: "producer table",
        })
    }

    fn lock_recover(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Error unless `partition` is a valid output partition.
    pub(crate) fn check_partition(&self, partition: usize) -> Result<()> {
        if partition < self.num_partitions {
            Ok(())
        } else {
            Err(ShuffleError::InvalidPartition {
                partition,
                count: self.num_partitions,
            })
        }
    }

    /// Mark `producer` as handed out; fails if out of range or taken before.
    pub(crate) fn take_producer(&self, producer: usize) -> Result<()> {
        let mut table = self.lock()?;
        match table.slots.get_mut(producer) {
            None => Err(ShuffleError::InvalidProducer {
                producer,
                count: self.num_producers,
            }),
            Some(slot @ Slot::Untaken) => {
                *slot = Slot::Running;
                Ok(())
            }
            Some(_) => Err(ShuffleError::AlreadyTaken {
                what: "writer",
                index: producer,
            }),
        }
    }

    /// Record that `producer` finished and wake waiting readers.
    pub(crate) fn finish_producer(&self, producer: usize) -> Result<()> {
        let mut table = self.lock()?;
        if let Some(slot @ Slot::Running) = table.slots.get_mut(producer) {
            *slot = Slot::Finished;
            table.finished += 1;
        }
        drop(table);
        self.changed.notify_all();
        Ok(())
    }

    /// Record a producer failure (the first one is kept) and wake waiting readers.
    pub(crate) fn fail_producer(&self, failure: Failure) {
        let mut table = self.lock_recover();
        if let Some(slot) = table.slots.get_mut(failure.producer()) {
            *slot = Slot::Failed;
        }
        if table.failure.is_none() {
            table.failure = Some(failure);
        }
        self.failed.store(true, Ordering::Release);
        drop(table);
        self.changed.notify_all();
    }

    /// Fail every producer that was never taken (the exchange is going away);
    /// returns their indices.
    pub(crate) fn release_untaken(&self) -> Vec<usize> {
        let untaken: Vec<usize> = {
            let table = self.lock_recover();
            table
                .slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| **slot == Slot::Untaken)
                .map(|(producer, _)| producer)
                .collect()
        };
        for &producer in &untaken {
            self.fail_producer(Failure::Dropped { producer });
        }
        untaken
    }

    /// The failure error once the exchange failed.
    pub(crate) fn check_failed(&self) -> Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.lock()?.settled().map(|_| ())
    }

    /// How a pipelined partition ends once no producer can send any more:
    /// end-of-data if every producer finished, the failure otherwise.
    pub(crate) fn outcome(&self) -> Result<()> {
        let table = self.lock()?;
        if table.settled()? {
            return Ok(());
        }
        // Unreachable in practice (writers record finish/failure before they
        // drop their senders), but never report a short read as success.
        let producer = table
            .slots
            .iter()
            .position(|slot| *slot != Slot::Finished)
            .unwrap_or_default();
        Err(ShuffleError::ProducerDropped { producer })
    }

    /// Block until every producer finished (`Ok`) or the exchange failed (`Err`).
    pub(crate) fn wait_all_finished(&self) -> Result<()> {
        let mut table = self.lock()?;
        while !table.settled()? {
            table = self
                .changed
                .wait(table)
                .map_err(|_| ShuffleError::Poisoned {
                    what: "producer table",
                })?;
        }
        Ok(())
    }

    /// Validate a batch about to be written to `partition`: the partition
    /// exists, the columns match the exchange schema and the exchange has not
    /// failed.
    pub(crate) fn check_write(&self, partition: usize, batch: &RecordBatch) -> Result<()> {
        self.check_partition(partition)?;
        let actual = batch.schema_ref();
        // Schema-level metadata is ignored; names, types, nullability and
        // field metadata must match.
        if !Arc::ptr_eq(actual, &self.schema) && actual.fields() != self.schema.fields() {
            return Err(ShuffleError::SchemaMismatch {
                expected: Arc::clone(&self.schema),
                actual: Arc::clone(actual),
            });
        }
        self.check_failed()
    }
}
