//! A subplan computed once for several consumers: a query that uses one CTE twice (TPC-H
//! q15's `revenue`, joined with `supplier` and searched for its maximum) plans the twice-
//! optimized subtree once, and both parents read this node. The first `execute` runs
//! every partition of the input and keeps the batches, with a memory reservation; each
//! consumer then reads them per partition. When the pool refuses the memory, or the query
//! is a stream (which never ends), the node passes through and each consumer computes the
//! input itself, as if nothing were shared.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Result, SluiceError};
use crate::physical::memory::{batch_bytes, Reservation};
use crate::physical::{
    collect_stream, run_partitions, Element, ElementStream, ExecNode, TaskContext,
};

/// The input's batches of one run, by partition.
struct Cached {
    /// The run they belong to (held, so its address is not reused while cached).
    ctx: Arc<TaskContext>,
    /// `None` when the memory was refused: consumers compute the input themselves.
    partitions: Option<Arc<Vec<Vec<RecordBatch>>>>,
    _reservation: Option<Reservation>,
}

/// Computes its input once per run and serves it to every consumer.
pub struct SharedExec {
    input: Arc<dyn ExecNode>,
    consumers: usize,
    cache: Mutex<Option<Cached>>,
    /// Times the input was computed and kept, and times consumers had to compute it.
    kept: AtomicUsize,
    passed: AtomicUsize,
}

impl std::fmt::Debug for SharedExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedExec")
            .field("input", &self.input)
            .field("consumers", &self.consumers)
            .finish()
    }
}

impl SharedExec {
    /// Shares `input` among `consumers` parents (for EXPLAIN).
    pub fn new(input: Arc<dyn ExecNode>, consumers: usize) -> Self {
        Self {
            input,
            consumers,
            cache: Mutex::new(None),
            kept: AtomicUsize::new(0),
            passed: AtomicUsize::new(0),
        }
    }

    /// The input's batches for the run of `ctx`, computing them on the first call.
    fn batches(&self, ctx: &Arc<TaskContext>) -> Result<Option<Arc<Vec<Vec<RecordBatch>>>>> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| SluiceError::exec("shared subplan lock poisoned"))?;
        if let Some(c) = cache.as_ref().filter(|c| Arc::ptr_eq(&c.ctx, ctx)) {
            return Ok(c.partitions.clone());
        }
        let partitions = run_partitions(&self.input, ctx, collect_stream)?;
        let bytes = partitions.iter().flatten().map(batch_bytes).sum();
        let mut reservation = ctx.memory.reservation("SharedExec (computed once)");
        let (partitions, reservation) = match reservation.resize_spillable(bytes) {
            Ok(()) => {
                self.kept.fetch_add(1, Ordering::Relaxed);
                (Some(Arc::new(partitions)), Some(reservation))
            }
            Err(SluiceError::ResourcesExhausted(_)) => (None, None),
            Err(e) => return Err(e),
        };
        *cache = Some(Cached {
            ctx: ctx.clone(),
            partitions: partitions.clone(),
            _reservation: reservation,
        });
        Ok(partitions)
    }
}

impl ExecNode for SharedExec {
    fn name(&self) -> &'static str {
        "SharedExec"
    }
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.input.output_partitions()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        if ctx.streaming {
            return self.input.execute(partition, ctx);
        }
        let Some(all) = self.batches(ctx)? else {
            self.passed.fetch_add(1, Ordering::Relaxed);
            return self.input.execute(partition, ctx);
        };
        let n = all.get(partition).map_or(0, Vec::len);
        Ok(Box::new((0..n).map(move |i| {
            Ok(Element::Batch(all[partition][i].clone()))
        })))
    }
    fn details(&self) -> String {
        format!("computed once for {} consumers", self.consumers)
    }
    fn metrics(&self) -> String {
        format!(
            "kept={}, recomputed_partitions={}",
            self.kept.load(Ordering::Relaxed),
            self.passed.load(Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::config::SessionConfig;
    use crate::physical::collect_partitions;
    use crate::physical::scan::MemoryExec;

    /// Rows `0..rows` stored in batches of `stored` rows, dealt out in slices of 100.
    fn input(rows: i64, stored: usize) -> (Arc<dyn ExecNode>, Vec<i64>) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let values: Vec<i64> = (0..rows).collect();
        let batches: Vec<RecordBatch> = values
            .chunks(stored)
            .map(|c| {
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(c.to_vec()))])
                    .expect("batch")
            })
            .collect();
        let exec = MemoryExec::try_new(schema, &batches, None, 2, 100).expect("memory exec");
        (Arc::new(exec), values)
    }

    fn sorted(batches: &[RecordBatch]) -> Vec<i64> {
        let mut v: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        v.sort_unstable();
        v
    }

    use arrow::array::AsArray;

    /// `shared` has computed and kept its input `n` times.
    fn assert_kept(shared: &Arc<dyn ExecNode>, n: usize) {
        let metrics = shared.metrics();
        assert!(metrics.starts_with(&format!("kept={n},")), "{metrics}");
    }

    /// Two consumers read every row; the input is computed once per run, again for a new
    /// run, and passed through (computed by each consumer) when the memory is refused.
    #[test]
    fn computes_once_per_run_or_passes_through() {
        let (exec, values) = input(1000, 100);
        let shared: Arc<dyn ExecNode> = Arc::new(SharedExec::new(exec, 2));
        let ctx = Arc::new(TaskContext::new(SessionConfig::default()));
        for _ in 0..2 {
            assert_eq!(
                sorted(&collect_partitions(&shared, &ctx).expect("run")),
                values
            );
        }
        assert_kept(&shared, 1);
        let again = Arc::new(TaskContext::new(SessionConfig::default()));
        assert_eq!(
            sorted(&collect_partitions(&shared, &again).expect("run")),
            values
        );
        assert_kept(&shared, 2);

        let tiny = Arc::new(TaskContext::new(
            SessionConfig::default().with_memory_limit(1),
        ));
        for _ in 0..2 {
            assert_eq!(
                sorted(&collect_partitions(&shared, &tiny).expect("run")),
                values
            );
        }
        assert_eq!(shared.metrics(), "kept=2, recomputed_partitions=4");
        assert_eq!(tiny.memory.used(), 0);
    }

    /// A table in memory is dealt out as slices of its batches. The kept copy is reserved
    /// at the bytes its rows use, not once per slice for the whole buffer behind it.
    #[test]
    fn slices_of_one_batch_are_reserved_at_their_own_size() {
        // 100 slices of 100 rows over one 80 kB buffer: 80 kB of rows, 8 MB counted whole.
        let (exec, values) = input(10_000, 10_000);
        let shared: Arc<dyn ExecNode> = Arc::new(SharedExec::new(exec, 2));
        let ctx = Arc::new(TaskContext::new(
            SessionConfig::default().with_memory_limit(1 << 20),
        ));
        assert_eq!(
            sorted(&collect_partitions(&shared, &ctx).expect("run")),
            values
        );
        assert_kept(&shared, 1);
    }
}
