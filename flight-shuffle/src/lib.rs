//! Sluice shuffle: the exchange between the engine's parallel partitions.
//!
//! # Model
//!
//! An [`Exchange`] connects `N` *producers* (one per upstream partition) with
//! `M` *output partitions* (one per downstream consumer). Every producer takes
//! one [`ShuffleWriter`] ([`Exchange::writer`]) and addresses each batch it
//! writes to one output partition; every consumer takes a [`ShuffleReader`]
//! ([`Exchange::reader`]) for its partition and iterates over the batches
//! every producer wrote there. Batches of one producer arrive in the order that
//! producer wrote them; how batches of different producers interleave is
//! unspecified.
//!
//! A reader reports end-of-data (`None`) only after *every* producer called
//! [`ShuffleWriter::finish`]. If a producer calls [`ShuffleWriter::abort`], or
//! its writer is dropped without finishing (e.g. the producer thread
//! panicked), every reader of the exchange ends with
//! [`ShuffleError::ProducerFailed`] or [`ShuffleError::ProducerDropped`]: a
//! consumer never mistakes a failed upstream for a short, successful read. Once
//! the exchange has failed, further writes of the surviving producers are
//! rejected with the same error so they stop early. Dropping the [`Exchange`]
//! while some producer index was never taken counts as that producer being
//! dropped.
//!
//! # Result partition kinds
//!
//! [`PartitionKind`] picks how the data is kept:
//!
//! * [`PartitionKind::Pipelined`]: every output partition is a bounded
//!   in-memory queue (`capacity` batches). Consumers read while producers
//!   write; a full queue blocks its producers (back-pressure, counted in
//!   [`ExchangeMetrics::blocked_sends`]). Each partition can be read once.
//! * [`PartitionKind::Blocking`]: every producer writes one Arrow IPC file per
//!   output partition it addresses into a private temporary directory created
//!   inside `spill_dir`. A reader first waits until every producer finished,
//!   then memory-maps the files and decodes them without copying the column
//!   data. A partition can be read any number of times (a consumer re-run
//!   after a failure re-reads the files without re-running the producers). The
//!   files are deleted when the exchange — and every reader and writer it
//!   handed out — has been dropped.
//!
//! # Early consumers
//!
//! A consumer may stop reading at any time (e.g. a `LIMIT` was satisfied) by
//! dropping its reader. Writes to a pipelined partition whose reader is gone
//! succeed and discard the batch, so producers never deadlock on a consumer
//! that left.
//!
//! # Transports
//!
//! [`ShuffleWriter`] and [`ShuffleReader`] are the transport-independent
//! interface; this crate implements them in-process. A network transport
//! (Arrow Flight) implements the same two traits and is handed out by an
//! exchange in the same way, so engine operators only ever see
//! `Box<dyn ShuffleWriter>` and `Box<dyn ShuffleReader>`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

mod blocking;
mod compact;
mod pipelined;
mod shared;

pub use compact::{compact_view_column, compact_views};

use crate::blocking::Blocking;
use crate::pipelined::Pipelined;
use crate::shared::Core;

/// Result type of the shuffle crate.
pub type Result<T, E = ShuffleError> = std::result::Result<T, E>;

/// Everything that can go wrong in an exchange.
#[derive(Debug, thiserror::Error)]
pub enum ShuffleError {
    /// A file-system operation on a spill file or directory failed.
    #[error("shuffle I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding or decoding Arrow data failed.
    #[error("shuffle Arrow error: {0}")]
    Arrow(#[from] ArrowError),
    /// A producer called [`ShuffleWriter::abort`]; the exchange is failed.
    #[error("shuffle producer {producer} failed: {message}")]
    ProducerFailed {
        /// Index of the failed producer.
        producer: usize,
        /// The message the producer aborted with.
        message: String,
    },
    /// A producer's writer was dropped without `finish` or `abort` (or never
    /// taken before the exchange was dropped); the exchange is failed.
    #[error("shuffle producer {producer} was dropped before it finished")]
    ProducerDropped {
        /// Index of the dropped producer.
        producer: usize,
    },
    /// The consuming side hung up. The in-process exchange never returns this
    /// from `write` (it discards batches for a reader that is gone); it is
    /// reserved for transports that must report a disconnected consumer.
    #[error("shuffle consumer hung up")]
    Closed,
    /// An output partition index is out of range.
    #[error("shuffle partition {partition} out of range: the exchange has {count} partitions")]
    InvalidPartition {
        /// The requested partition.
        partition: usize,
        /// Number of output partitions of the exchange.
        count: usize,
    },
    /// A producer index is out of range.
    #[error("shuffle producer {producer} out of range: the exchange has {count} producers")]
    InvalidProducer {
        /// The requested producer.
        producer: usize,
        /// Number of producers of the exchange.
        count: usize,
    },
    /// A writer (or a pipelined reader) was requested a second time.
    #[error("shuffle {what} {index} was already taken")]
    AlreadyTaken {
        /// `"writer"` or `"reader"`.
        what: &'static str,
        /// The producer or partition index.
        index: usize,
    },
    /// A batch's columns do not match the exchange schema.
    #[error("batch schema does not match the exchange schema: expected {expected}, got {actual}")]
    SchemaMismatch {
        /// The exchange schema.
        expected: SchemaRef,
        /// The schema of the rejected batch.
        actual: SchemaRef,
    },
    /// `write` or `finish` was called on a writer that already finished or aborted.
    #[error("shuffle writer of producer {producer} is already {state}")]
    WriterClosed {
        /// Index of the producer.
        producer: usize,
        /// `"finished"` or `"aborted"`.
        state: &'static str,
    },
    /// [`Exchange::new`] was given an unusable configuration.
    #[error("invalid exchange configuration: {0}")]
    InvalidConfig(String),
    /// A spill file could not be decoded (truncated or malformed).
    #[error("corrupt shuffle spill file {}: {message}", path.display())]
    CorruptSpill {
        /// The spill file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An internal lock was poisoned by a panicking thread.
    #[error("shuffle internal lock poisoned: {what}")]
    Poisoned {
        /// Which lock.
        what: &'static str,
    },
}

/// How an exchange keeps its data.
#[derive(Debug, Clone)]
pub enum PartitionKind {
    /// Bounded in-memory queues; consumers read while producers write.
    Pipelined {
        /// Queue capacity per output partition, in batches (at least 1).
        capacity: usize,
    },
    /// Arrow IPC spill files, readable (repeatedly) once every producer finished.
    Blocking {
        /// Parent directory; the exchange creates a private temporary directory inside it.
        spill_dir: PathBuf,
    },
}

/// Writes one producer's batches into the exchange.
pub trait ShuffleWriter: Send {
    /// Append `batch` to output partition `partition`. Blocks while a pipelined partition is full.
    ///
    /// Fails on an out-of-range partition, a batch whose columns do not match
    /// the exchange schema, a writer that already finished or aborted, and once
    /// the exchange has failed (another producer aborted or was dropped). A
    /// batch for a pipelined partition whose reader was dropped is discarded
    /// and `Ok(())` is returned.
    fn write(&mut self, partition: usize, batch: RecordBatch) -> Result<()>;
    /// This producer is done; readers see end-of-data once every producer finished.
    fn finish(&mut self) -> Result<()>;
    /// This producer failed; every reader of the exchange gets `ShuffleError::ProducerFailed` with the message.
    fn abort(&mut self, message: String);
    /// True once every reader this writer feeds has gone away, so producing more is wasted
    /// work (a LIMIT that is satisfied, a client that cancelled). Blocking exchanges keep
    /// their files for readers that come later and are never abandoned.
    fn abandoned(&self) -> bool {
        false
    }
}

/// Reads one output partition: batches in the order each producer wrote them (interleaving across producers is arbitrary).
///
/// After the iterator yields an error or `None` it is exhausted and yields `None`.
pub trait ShuffleReader: Iterator<Item = Result<RecordBatch>> + Send {}

/// Counters of an exchange, summed over all its producers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExchangeMetrics {
    /// Batches accepted by `write` (including batches discarded because their reader was gone).
    pub batches_written: u64,
    /// Rows of the batches counted in `batches_written`.
    pub rows_written: u64,
    /// Bytes of completed spill files (blocking exchanges).
    pub bytes_spilled: u64,
    /// times a producer found a pipelined partition full and had to wait
    pub blocked_sends: u64,
    /// Batches delivered into a pipelined partition's queue.
    pub sends: u64,
}

/// The kind-specific half of an exchange.
enum Inner {
    Pipelined(Pipelined),
    Blocking(Blocking),
}

/// An in-process exchange between `num_producers` producers and `num_partitions` output partitions.
///
/// `Exchange` is `Send + Sync`; share it in an `Arc` between the engine threads.
pub struct Exchange {
    kind: PartitionKind,
    core: Arc<Core>,
    inner: Inner,
}

impl Exchange {
    /// Create an exchange of the given kind.
    ///
    /// Fails for a pipelined capacity of 0, or when the spill directory of a
    /// blocking exchange cannot be created.
    pub fn new(
        kind: PartitionKind,
        schema: SchemaRef,
        num_producers: usize,
        num_partitions: usize,
    ) -> Result<Self> {
        let core = Arc::new(Core::new(schema, num_producers, num_partitions));
        let inner = match &kind {
            PartitionKind::Pipelined { capacity } => {
                if *capacity == 0 {
                    return Err(ShuffleError::InvalidConfig(
                        "a pipelined exchange needs a capacity of at least one batch".to_string(),
                    ));
                }
                Inner::Pipelined(Pipelined::new(Arc::clone(&core), *capacity))
            }
            PartitionKind::Blocking { spill_dir } => {
                Inner::Blocking(Blocking::new(Arc::clone(&core), spill_dir)?)
            }
        };
        Ok(Self { kind, core, inner })
    }

    /// Number of producers (writers) of the exchange.
    pub fn num_producers(&self) -> usize {
        self.core.num_producers()
    }

    /// Number of output partitions (readers) of the exchange.
    pub fn num_partitions(&self) -> usize {
        self.core.num_partitions()
    }

    /// Schema every batch of the exchange has.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(self.core.schema())
    }

    /// The kind this exchange was created with.
    pub fn kind(&self) -> &PartitionKind {
        &self.kind
    }

    /// The private spill directory of a blocking exchange (`None` when pipelined).
    pub fn spill_path(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Pipelined(_) => None,
            Inner::Blocking(blocking) => Some(blocking.path()),
        }
    }

    /// The writer of producer `producer`.
    ///
    /// Each producer index may be taken once.
    pub fn writer(&self, producer: usize) -> Result<Box<dyn ShuffleWriter>> {
        match &self.inner {
            Inner::Pipelined(pipelined) => pipelined.writer(producer),
            Inner::Blocking(blocking) => blocking.writer(producer),
        }
    }

    /// A reader of output partition `partition`.
    ///
    /// Pipelined: each partition may be taken once. Blocking: any number of times.
    pub fn reader(&self, partition: usize) -> Result<Box<dyn ShuffleReader>> {
        match &self.inner {
            Inner::Pipelined(pipelined) => pipelined.reader(partition),
            Inner::Blocking(blocking) => blocking.reader(partition),
        }
    }

    /// A snapshot of the exchange counters.
    pub fn metrics(&self) -> ExchangeMetrics {
        self.core.metrics().snapshot()
    }
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("kind", &self.kind)
            .field("num_producers", &self.num_producers())
            .field("num_partitions", &self.num_partitions())
            .finish_non_exhaustive()
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // Producers nobody took can never finish: fail them so readers that
        // outlive the exchange end with an error instead of waiting forever.
        match &self.inner {
            Inner::Pipelined(pipelined) => pipelined.release_untaken(),
            Inner::Blocking(blocking) => blocking.release_untaken(),
        }
    }
}
