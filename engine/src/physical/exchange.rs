//! Exchange: redistributes rows between partitions through the shuffle interface of
//! `sluice-flight-shuffle` — hash (equal keys meet in one partition), round-robin, or
//! gather (everything into one partition).
//!
//! Producers run one thread per input partition, started by the first consumer; they
//! write into an in-memory pipelined exchange whose bounded partitions give back-pressure.
//! The threads belong to the query run ([`crate::physical::task_threads`]), which ends
//! them before it returns.

use std::sync::{Arc, OnceLock};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use sluice_flight_shuffle::{Exchange, PartitionKind, ShuffleWriter};

use crate::config::ExchangeMode;
use crate::error::{Result, SluiceError};
use crate::physical::expr::PhysExpr;
use crate::physical::hash::hash_columns;
use crate::physical::{Element, ElementStream, ExecNode, TaskContext};

/// How rows are distributed.
#[derive(Debug, Clone)]
pub enum Partitioning {
    /// By hash of these expressions into this many partitions.
    Hash(Vec<PhysExpr>, usize),
    /// Batches dealt in turn to this many partitions.
    RoundRobin(usize),
    /// Everything into one partition.
    Single,
}

impl Partitioning {
    /// Number of output partitions.
    pub fn count(&self) -> usize {
        match self {
            Partitioning::Hash(_, n) | Partitioning::RoundRobin(n) => (*n).max(1),
            Partitioning::Single => 1,
        }
    }
}

/// The plan node.
#[derive(Debug)]
pub struct ExchangeExec {
    input: Arc<dyn ExecNode>,
    partitioning: Partitioning,
    exchange: OnceLock<std::result::Result<Arc<Exchange>, String>>,
}

impl ExchangeExec {
    /// Repartitions `input`.
    pub fn new(input: Arc<dyn ExecNode>, partitioning: Partitioning) -> Self {
        Self {
            input,
            partitioning,
            exchange: OnceLock::new(),
        }
    }

    fn start(&self, ctx: &Arc<TaskContext>) -> Result<Arc<Exchange>> {
        let r = self.exchange.get_or_init(|| {
            let producers = self.input.output_partitions();
            let kind = match ctx.config.exchange_mode {
                ExchangeMode::Pipelined => PartitionKind::Pipelined {
                    capacity: ctx.config.exchange_capacity.max(1),
                },
                ExchangeMode::Blocking => PartitionKind::Blocking {
                    spill_dir: ctx.config.spill_dir.clone(),
                },
            };
            let ex = Exchange::new(
                kind,
                self.input.schema(),
                producers,
                self.partitioning.count(),
            )
            .map_err(|e| e.to_string())?;
            let ex = Arc::new(ex);
            for p in 0..producers {
                let writer = ex.writer(p).map_err(|e| e.to_string())?;
                let input = self.input.clone();
                let ctx = ctx.clone();
                let partitioning = self.partitioning.clone();
                let threads = ctx.threads.clone();
                threads
                    .spawn(format!("sluice-exchange-{p}"), move || {
                        produce(input, p, ctx, partitioning, writer)
                    })
                    .map_err(|e| e.to_string())?;
            }
            Ok(ex)
        });
        r.clone().map_err(SluiceError::Execution)
    }
}

/// Runs input partition `p` into the exchange; any failure reaches the readers.
fn produce(
    input: Arc<dyn ExecNode>,
    p: usize,
    ctx: Arc<TaskContext>,
    partitioning: Partitioning,
    mut writer: Box<dyn ShuffleWriter>,
) {
    let result = (|| -> Result<()> {
        let mut rr = p;
        for e in input.execute(p, &ctx)? {
            let Element::Batch(batch) = e? else { continue };
            if batch.num_rows() == 0 {
                continue;
            }
            match &partitioning {
                Partitioning::Single => writer.write(0, batch)?,
                Partitioning::RoundRobin(n) => {
                    writer.write(rr % n, batch)?;
                    rr += 1;
                }
                Partitioning::Hash(exprs, n) => {
                    for (part, b) in split_by_hash(&batch, exprs, *n)? {
                        writer.write(part, b)?;
                    }
                }
            }
            if writer.abandoned() {
                // Every reader left: stop reading the input (dropping it stops upstream work).
                break;
            }
        }
        writer.finish()?;
        Ok(())
    })();
    if let Err(e) = result {
        writer.abort(e.to_string());
    }
}

/// Which partition each row's keys go to (the same rule everywhere).
pub fn partition_of(hash: u64, n: usize) -> usize {
    ((hash.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n as u64) as usize
}

fn split_by_hash(
    batch: &RecordBatch,
    exprs: &[PhysExpr],
    n: usize,
) -> Result<Vec<(usize, RecordBatch)>> {
    let keys = exprs
        .iter()
        .map(|e| e.evaluate_array(batch))
        .collect::<Result<Vec<_>>>()?;
    let hashes = hash_columns(&keys, batch.num_rows())?;
    split_rows(batch, &hashes, n, |h| partition_of(h, n))
}

/// The rows of `batch` grouped by `target(hash)` (one hash per row, targets below `n`):
/// one `(target, rows)` batch per target that has rows, in target order.
pub fn split_rows(
    batch: &RecordBatch,
    hashes: &[u64],
    n: usize,
    target: impl Fn(u64) -> usize,
) -> Result<Vec<(usize, RecordBatch)>> {
    let mut idx: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, h) in hashes.iter().enumerate() {
        idx[target(*h)].push(i as u32);
    }
    let mut out = Vec::new();
    for (p, rows) in idx.into_iter().enumerate() {
        if !rows.is_empty() {
            out.push((p, take_record_batch(batch, &UInt32Array::from(rows))?));
        }
    }
    Ok(out)
}

impl ExecNode for ExchangeExec {
    fn name(&self) -> &'static str {
        "ExchangeExec"
    }
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.partitioning.count()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let ex = self.start(ctx)?;
        let reader = ex.reader(partition)?;
        Ok(Box::new(
            reader
                .map(|r| r.map(Element::Batch).map_err(SluiceError::from))
                .chain(std::iter::once(Ok(Element::End))),
        ))
    }
    fn details(&self) -> String {
        match &self.partitioning {
            Partitioning::Hash(e, n) => {
                let k: Vec<String> = e.iter().map(ToString::to_string).collect();
                format!("hash([{}], {n})", k.join(", "))
            }
            Partitioning::RoundRobin(n) => format!("round_robin({n})"),
            Partitioning::Single => "gather".to_string(),
        }
    }
}

/// Spill storage for an operator: a one-producer blocking exchange with `partitions`
/// partitions whose Arrow IPC files live in `spill_dir`, are read back with mmap and are
/// deleted when the exchange is dropped.
pub fn spill_storage(
    spill_dir: &std::path::Path,
    schema: SchemaRef,
    partitions: usize,
) -> Result<Exchange> {
    Ok(Exchange::new(
        PartitionKind::Blocking {
            spill_dir: spill_dir.to_path_buf(),
        },
        schema,
        1,
        partitions,
    )?)
}

/// How many buckets spilled rows are spread over (aggregation groups, hash-join sides).
pub const SPILL_BUCKETS: usize = 64;

/// The spill bucket of a key hash: mixed from other bits than the exchange's partition
/// choice and the join table's bucket index, so rows of one partition spread evenly.
pub fn spill_bucket(hash: u64) -> usize {
    (hash.rotate_left(21).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SPILL_BUCKETS
}
