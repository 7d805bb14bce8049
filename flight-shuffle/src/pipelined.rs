//! Pipelined result partitions: one bounded `std::sync::mpsc::sync_channel`
//! per output partition.
//!
//! Every producer owns a clone of the sender of every partition; the reader of
//! a partition owns its receiver. A full channel blocks the sending producer
//! (back-pressure). End-of-data is the channel disconnecting — every producer
//! dropped its senders — combined with the producer table in [`Core`]: writers
//! record `finish` (or their failure) *before* they drop their senders, so a
//! disconnected reader can tell a complete stream from a failed one.
//!
//! A failing producer also pushes a [`Message::Wake`] into every partition
//! with `try_send`, so readers blocked in `recv` notice the failure even while
//! other producers are still running. If a channel is full the wake-up is not
//! needed: its reader will receive a batch and then check the failure flag.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;

use crate::shared::{Core, Failure, WriterState};
use crate::{Result, ShuffleError, ShuffleReader, ShuffleWriter};

/// What travels through a partition channel.
#[derive(Debug)]
enum Message {
    /// A batch for the consumer.
    Batch(RecordBatch),
    /// No data: makes a blocked reader re-check the producer table.
    Wake,
}

/// Wake every reader reachable through `senders` (best effort, never blocks).
fn wake(senders: &[Option<SyncSender<Message>>]) {
    for sender in senders.iter().flatten() {
        // Full: the reader has data to receive and re-checks afterwards.
        // Disconnected: the reader is gone. Either way nothing to do.
        let _ = sender.try_send(Message::Wake);
    }
}

/// One sender per output partition; `None` once that partition's reader left.
type Senders = Vec<Option<SyncSender<Message>>>;

/// The pipelined half of an [`crate::Exchange`].
#[derive(Debug)]
pub(crate) struct Pipelined {
    core: Arc<Core>,
    /// Per producer: its senders (one per partition) until its writer is taken.
    senders: Mutex<Vec<Option<Senders>>>,
    /// Per partition: the receiver until its reader is taken.
    receivers: Mutex<Vec<Option<Receiver<Message>>>>,
}

impl Pipelined {
    /// Create one channel of `capacity` batches per output partition.
    pub(crate) fn new(core: Arc<Core>, capacity: usize) -> Self {
        let num_partitions = core.num_partitions();
        let mut senders: Vec<Senders> = (0..core.num_producers())
            .map(|_| Vec::with_capacity(num_partitions))
            .collect();
        let mut receivers = Vec::with_capacity(num_partitions);
        for _ in 0..num_partitions {
            let (sender, receiver) = sync_channel(capacity);
            for producer in &mut senders {
                producer.push(Some(sender.clone()));
            }
            // The original sender is dropped here: only producers keep the channel open.
            receivers.push(Some(receiver));
        }
        Self {
            core,
            senders: Mutex::new(senders.into_iter().map(Some).collect()),
            receivers: Mutex::new(receivers),
        }
    }

    /// Hand out producer `producer`'s writer (once).
    pub(crate) fn writer(&self, producer: usize) -> Result<Box<dyn ShuffleWriter>> {
        let mut slots = self.senders.lock().map_err(|_| ShuffleError::Poisoned {
            what: "pipelined senders",
        })?;
        // Validates the index and the taken flag before anything is moved out.
        self.core.take_producer(producer)?;
        let senders =
            slots
                .get_mut(producer)
                .and_then(Option::take)
                .ok_or(ShuffleError::AlreadyTaken {
                    what: "writer",
                    index: producer,
                })?;
        Ok(Box::new(PipelinedWriter {
            core: Arc::clone(&self.core),
            producer,
            senders,
            state: WriterState::Open,
        }))
    }

    /// Hand out partition `partition`'s reader (once).
    pub(crate) fn reader(&self, partition: usize) -> Result<Box<dyn ShuffleReader>> {
        self.core.check_partition(partition)?;
        let mut receivers = self.receivers.lock().map_err(|_| ShuffleError::Poisoned {
            what: "pipelined receivers",
        })?;
        let receiver = receivers.get_mut(partition).and_then(Option::take).ok_or(
            ShuffleError::AlreadyTaken {
                what: "reader",
                index: partition,
            },
        )?;
        Ok(Box::new(PipelinedReader {
            core: Arc::clone(&self.core),
            receiver,
            done: false,
        }))
    }

    /// The exchange is being dropped: fail producers nobody took, wake the
    /// readers and drop those producers' senders.
    pub(crate) fn release_untaken(&self) {
        self.core.release_untaken();
        let mut slots = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        for senders in slots.iter_mut().filter_map(Option::take) {
            wake(&senders);
        }
    }
}

/// A producer's writer into a pipelined exchange.
#[derive(Debug)]
struct PipelinedWriter {
    core: Arc<Core>,
    producer: usize,
    senders: Senders,
    state: WriterState,
}

impl ShuffleWriter for PipelinedWriter {
    fn write(&mut self, partition: usize, batch: RecordBatch) -> Result<()> {
        self.state.check_open(self.producer)?;
        self.core.check_write(partition, &batch)?;
        let metrics = self.core.metrics();
        metrics.record_batch(batch.num_rows());
        let slot = self
            .senders
            .get_mut(partition)
            .ok_or(ShuffleError::InvalidPartition {
                partition,
                count: self.core.num_partitions(),
            })?;
        let Some(sender) = slot.as_ref() else {
            // The reader left; the consumer wants no more data.
            return Ok(());
        };
        let delivered = match sender.try_send(Message::Batch(batch)) {
            Ok(()) => true,
            Err(TrySendError::Full(message)) => {
                metrics.record_blocked();
                // Blocks until the reader makes room; fails if it hangs up meanwhile.
                sender.send(message).is_ok()
            }
            Err(TrySendError::Disconnected(_)) => false,
        };
        if delivered {
            metrics.record_send();
        } else {
            *slot = None;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.state.check_open(self.producer)?;
        // Record first, disconnect second: see the module docs.
        self.core.finish_producer(self.producer)?;
        self.state = WriterState::Finished;
        self.senders.clear();
        Ok(())
    }

    fn abandoned(&self) -> bool {
        self.state == WriterState::Open && self.senders.iter().all(Option::is_none)
    }

    fn abort(&mut self, message: String) {
        if self.state == WriterState::Aborted {
            return;
        }
        self.state = WriterState::Aborted;
        self.core.fail_producer(Failure::Aborted {
            producer: self.producer,
            message,
        });
        wake(&self.senders);
        self.senders.clear();
    }
}

impl Drop for PipelinedWriter {
    fn drop(&mut self) {
        if self.state == WriterState::Open {
            self.core.fail_producer(Failure::Dropped {
                producer: self.producer,
            });
            wake(&self.senders);
        }
    }
}

/// The consumer's reader of one pipelined partition.
#[derive(Debug)]
struct PipelinedReader {
    core: Arc<Core>,
    receiver: Receiver<Message>,
    /// Set after the terminal `None` or error.
    done: bool,
}

impl PipelinedReader {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            self.core.check_failed()?;
            match self.receiver.recv() {
                Ok(Message::Batch(batch)) => return Ok(Some(batch)),
                Ok(Message::Wake) => {}
                // Every producer dropped its senders.
                Err(_) => return self.core.outcome().map(|()| None),
            }
        }
    }
}

impl Iterator for PipelinedReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_batch().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

impl ShuffleReader for PipelinedReader {}
