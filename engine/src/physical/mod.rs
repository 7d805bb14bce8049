//! Physical plans and the element stream they exchange.
//!
//! A physical plan is a tree of [`ExecNode`]s. Each node has a number of output
//! partitions; `execute(p)` returns the [`Element`] stream of partition `p`. Nodes that
//! transform a stream one batch at a time create an [`Operator`] and wrap it in
//! [`OperatorStream`], which calls it directly from the consumer's thread: operators
//! chained this way are fused — no channel and no copy between them. Exchanges
//! (`exchange.rs`) are where partitions meet and threads hand over data.
//!
//! The stream carries data batches and control elements (watermarks, checkpoint barriers,
//! end-of-input) in one channel and in order, so streaming operators can be added without
//! changing these; a batch job sees data and end-of-input only.

pub mod accumulator;
pub mod agg_accs;
pub mod aggregate;
pub mod aggregate_spill;
pub mod coerce;
pub mod common_exprs;
pub mod decimal;
pub(crate) mod distinct_acc;
pub mod dynamic_filter;
pub mod exchange;
pub mod expr;
pub mod filter;
pub mod functions;
mod group_int_index;
pub mod group_table;
pub mod hash;
pub mod join;
pub mod join_int_index;
pub mod join_spill;
pub mod join_table;
pub mod like;
pub mod limit;
pub mod memory;
pub mod packed_keys;
pub mod parallel;
pub mod parquet;
pub(crate) mod parquet_late;
pub mod planner;
pub mod projection;
pub mod scan;
pub mod shared;
pub mod sort;
pub mod sort_spill;
pub mod task_threads;
pub mod time_format;
pub mod union;
pub mod window;
pub mod window_tvf;
pub mod word_keys;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;

use crate::config::SessionConfig;
use crate::error::{Result, SluiceError};

/// One item of a stream between operators.
#[derive(Debug, Clone)]
pub enum Element {
    /// A batch of rows.
    Batch(RecordBatch),
    /// Event time has advanced to this value (microseconds since the epoch, the unit of
    /// SQL timestamps); no later row is older.
    Watermark(i64),
    /// Checkpoint barrier with its id.
    Barrier(u64),
    /// The source has had no data for the idle timeout (`table.exec.source.idle-timeout`):
    /// watermark alignment downstream ignores this input until it sends data or a
    /// watermark again, so one quiet partition does not hold event time back.
    Idle,
    /// The input has ended; nothing follows.
    End,
}

/// A partition's stream of elements.
pub type ElementStream = Box<dyn Iterator<Item = Result<Element>> + Send>;

/// What a running task may read: the session's settings and the query's memory pool.
#[derive(Debug, Clone, Default)]
pub struct TaskContext {
    /// Settings of the session running the query.
    pub config: SessionConfig,
    /// Where buffering operators reserve memory.
    pub memory: Arc<memory::MemoryPool>,
    /// The query runs as a stream: unbounded sources may be read.
    pub streaming: bool,
    /// The threads the run started, and its stop flag.
    pub threads: Arc<task_threads::TaskThreads>,
}

impl TaskContext {
    /// A context for one query run with `config` (its own pool, limited by `memory_limit`).
    pub fn new(config: SessionConfig) -> Self {
        let memory = memory::MemoryPool::new(config.memory_limit);
        Self {
            config,
            memory,
            streaming: false,
            threads: Arc::default(),
        }
    }

    /// True once the query's cancel flag ([`SessionConfig::cancel`]) is set, or the run is
    /// stopping ([`task_threads::TaskThreads::stop_and_wait`]).
    pub fn is_cancelled(&self) -> bool {
        self.threads.is_stopped()
            || self
                .config
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// `stream`, ending with [`SluiceError::Cancelled`] at its next element once the query
    /// is cancelled or its run stops. Every source wraps its partitions in it, so a
    /// cancelled query stops reading at once, even while no result is due (a window that
    /// has not fired yet).
    pub fn cancellable(self: &Arc<Self>, stream: ElementStream) -> ElementStream {
        let ctx = self.clone();
        let mut done = false;
        let mut stream = stream;
        Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            if ctx.is_cancelled() {
                done = true;
                return Some(Err(SluiceError::Cancelled));
            }
            stream.next()
        }))
    }
}

/// A node of a physical plan.
///
/// Contract: `execute(p)` may be called once per partition `p < output_partitions()`, from
/// any thread; partitions run concurrently. The stream ends with [`Element::End`] (after
/// which it yields `None`), or yields one `Err` and then `None`. Dropping a stream early
/// cancels the work that feeds it.
pub trait ExecNode: Send + Sync + fmt::Debug {
    /// Operator name for EXPLAIN.
    fn name(&self) -> &'static str;
    /// Output schema.
    fn schema(&self) -> SchemaRef;
    /// Inputs.
    fn children(&self) -> Vec<Arc<dyn ExecNode>>;
    /// Number of output partitions.
    fn output_partitions(&self) -> usize;
    /// Starts partition `partition`.
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream>;
    /// Operator details for EXPLAIN (keys, predicates, ...).
    fn details(&self) -> String {
        String::new()
    }
    /// What the operator measured while it ran, for EXPLAIN ANALYZE (empty when it
    /// measures nothing).
    fn metrics(&self) -> String {
        String::new()
    }
    /// A copy of this node that also applies `tests` while it reads, or None when it
    /// cannot (the default). A Parquet scan reads the tested columns first and the rest
    /// only for the rows they keep (`parquet_late`); the filters stay above the node too.
    fn with_early_tests(&self, _tests: &EarlyTests) -> Option<Arc<dyn ExecNode>> {
        None
    }
    /// The input and predicate of a filter, for an operator above it that can take its
    /// work over (an aggregation selects rows in place); None for any other node (the
    /// default).
    fn as_filter(&self) -> Option<(Arc<dyn ExecNode>, expr::PhysExpr)> {
        None
    }
}

/// Tests a scan may apply to its rows as it reads them, for the filters above it.
#[derive(Debug, Clone, Default)]
pub struct EarlyTests {
    /// Joins' dynamic filters: (output column, filter on its values).
    pub keys: Vec<(usize, Arc<dynamic_filter::DynamicFilter>)>,
    /// The predicate of the filter right above the scan: the output columns it reads
    /// (ascending) and the predicate bound to those columns alone, in that order.
    pub predicate: Option<(Vec<usize>, expr::PhysExpr)>,
}

impl EarlyTests {
    /// The output columns tested, each once, ascending.
    pub fn columns(&self) -> Vec<usize> {
        let predicate = self.predicate.iter().flat_map(|(p, _)| p.iter().copied());
        sorted_unique(self.keys.iter().map(|(c, _)| *c).chain(predicate))
    }

    /// The output columns the join filters test, each once, ascending.
    pub fn key_columns(&self) -> Vec<usize> {
        sorted_unique(self.keys.iter().map(|(c, _)| *c))
    }
}

fn sorted_unique(columns: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut c: Vec<usize> = columns.collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// A streaming operator: called for every element of its input, in order.
///
/// Only [`Operator::process_batch`] is required. The default hooks forward watermarks and
/// barriers unchanged (right for stateless operators) and emit nothing at end-of-input;
/// operators that buffer (sort, aggregate, join build) emit their results in `on_end`.
pub trait Operator: Send {
    /// Handles one batch, pushing any output to `out`.
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()>;
    /// Event time advanced to `ts`. Default: forward it.
    fn on_watermark(&mut self, ts: i64, out: &mut Vec<Element>) -> Result<()> {
        out.push(Element::Watermark(ts));
        Ok(())
    }
    /// Checkpoint barrier `id` arrived. Default: forward it (a stateless operator has
    /// nothing to snapshot).
    fn on_barrier(&mut self, id: u64, out: &mut Vec<Element>) -> Result<()> {
        out.push(Element::Barrier(id));
        Ok(())
    }
    /// The input ended. Default: nothing more to emit. `End` itself is forwarded by the driver.
    fn on_end(&mut self, _out: &mut Vec<Element>) -> Result<()> {
        Ok(())
    }
    /// True when the operator wants no more input (a satisfied LIMIT).
    fn is_finished(&self) -> bool {
        false
    }
    /// True while the operator has more output for the input it already took (a join
    /// whose one probe batch yields many output batches). The driver then calls
    /// [`Operator::resume`] instead of pulling input, one output chunk at a time, so
    /// downstream back-pressure bounds what is held.
    fn has_pending(&self) -> bool {
        false
    }
    /// Emits the next chunk of pending output (see [`Operator::has_pending`]).
    fn resume(&mut self, _out: &mut Vec<Element>) -> Result<()> {
        Ok(())
    }
}

/// Drives an [`Operator`] over an input stream: the fused chain of the design.
pub struct OperatorStream {
    input: ElementStream,
    op: Box<dyn Operator>,
    buf: VecDeque<Element>,
    scratch: Vec<Element>,
    /// `on_end` was called.
    ended: bool,
    done: bool,
}

impl OperatorStream {
    /// Wraps `op` around `input`.
    pub fn new(input: ElementStream, op: Box<dyn Operator>) -> Self {
        Self {
            input,
            op,
            buf: VecDeque::new(),
            scratch: Vec::new(),
            ended: false,
            done: false,
        }
    }

    /// Boxed as an [`ElementStream`].
    pub fn boxed(input: ElementStream, op: impl Operator + 'static) -> ElementStream {
        Box::new(Self::new(input, Box::new(op)))
    }

    /// Ends the operator: `on_end` once, then (after any pending output it left, see
    /// [`Operator::has_pending`]) the `End` element.
    fn finish(&mut self) -> Result<()> {
        if !self.ended {
            self.ended = true;
            self.op.on_end(&mut self.scratch)?;
            self.buf.extend(self.scratch.drain(..));
        }
        if !self.op.has_pending() {
            self.done = true;
            self.buf.push_back(Element::End);
        }
        Ok(())
    }

    fn step(&mut self) -> Result<()> {
        if self.op.has_pending() {
            self.op.resume(&mut self.scratch)?;
            self.buf.extend(self.scratch.drain(..));
            return Ok(());
        }
        if self.ended || self.op.is_finished() {
            return self.finish();
        }
        match self.input.next().transpose()? {
            None | Some(Element::End) => return self.finish(),
            Some(Element::Batch(b)) => self.op.process_batch(b, &mut self.scratch)?,
            Some(Element::Watermark(ts)) => self.op.on_watermark(ts, &mut self.scratch)?,
            Some(Element::Barrier(id)) => self.op.on_barrier(id, &mut self.scratch)?,
            Some(Element::Idle) => self.scratch.push(Element::Idle),
        }
        self.buf.extend(self.scratch.drain(..));
        Ok(())
    }
}

impl Iterator for OperatorStream {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.buf.pop_front() {
                return Some(Ok(e));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.done = true;
                self.buf.clear();
                return Some(Err(e));
            }
        }
    }
}

/// A stream over fixed batches (ending with `End`).
pub fn batches_stream(batches: Vec<RecordBatch>) -> ElementStream {
    Box::new(
        batches
            .into_iter()
            .map(|b| Ok(Element::Batch(b)))
            .chain(std::iter::once(Ok(Element::End))),
    )
}

/// Drains a stream, keeping the data batches.
pub fn collect_stream(stream: ElementStream) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for e in stream {
        match e? {
            Element::Batch(b) => {
                if b.num_rows() > 0 {
                    out.push(b)
                }
            }
            Element::End => break,
            Element::Watermark(_) | Element::Barrier(_) | Element::Idle => {}
        }
    }
    Ok(out)
}

/// Runs every partition of `plan` (one thread each) and returns all batches, partition 0 first.
pub fn collect_partitions(
    plan: &Arc<dyn ExecNode>,
    ctx: &Arc<TaskContext>,
) -> Result<Vec<RecordBatch>> {
    Ok(run_partitions(plan, ctx, collect_stream)?
        .into_iter()
        .flatten()
        .collect())
}

/// Runs `f` over the stream of every partition of `plan`, one thread per partition (the
/// calling thread when there is one), and returns the results in partition order.
pub fn run_partitions<T: Send>(
    plan: &Arc<dyn ExecNode>,
    ctx: &Arc<TaskContext>,
    f: impl Fn(ElementStream) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let n = plan.output_partitions();
    if n == 1 {
        return Ok(vec![f(plan.execute(0, ctx)?)?]);
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|p| {
                let plan = plan.clone();
                let ctx = ctx.clone();
                s.spawn(move || f(plan.execute(p, &ctx)?))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(crate::error::SluiceError::exec(
                        "a partition's thread panicked",
                    ))
                })
            })
            .collect()
    })
}

/// `batch` under `schema`: the same columns, with names and nullability from `schema`.
pub fn with_schema(schema: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    let opts = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        batch.columns().to_vec(),
        &opts,
    )?)
}

/// A batch of `rows` rows under `schema` from `cols`, each column cast to its field's type
/// where it differs (accumulators produce their own widths).
pub fn cast_to_schema(schema: &SchemaRef, cols: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let cols = cols
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                Ok(arrow::compute::cast(&c, f.data_type())?)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &opts,
    )?)
}

/// Renders a physical plan, one node per line (EXPLAIN).
pub fn display_plan(plan: &Arc<dyn ExecNode>) -> String {
    render_plan(plan, false)
}

/// Renders a physical plan that has run, with each node's metrics (EXPLAIN ANALYZE).
pub fn display_plan_with_metrics(plan: &Arc<dyn ExecNode>) -> String {
    render_plan(plan, true)
}

fn render_plan(plan: &Arc<dyn ExecNode>, metrics: bool) -> String {
    fn go(p: &Arc<dyn ExecNode>, depth: usize, metrics: bool, out: &mut String) {
        let d = p.details();
        out.push_str(&"  ".repeat(depth));
        out.push_str(p.name());
        if !d.is_empty() {
            out.push_str(": ");
            out.push_str(&d);
        }
        out.push_str(&format!(" [partitions={}]", p.output_partitions()));
        let m = if metrics { p.metrics() } else { String::new() };
        if !m.is_empty() {
            out.push_str(&format!(" metrics=[{m}]"));
        }
        out.push('\n');
        for c in p.children() {
            go(&c, depth + 1, metrics, out);
        }
    }
    let mut s = String::new();
    go(plan, 0, metrics, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    struct Doubler;
    impl Operator for Doubler {
        fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
            let b = arrow::compute::concat_batches(&batch.schema(), [&batch, &batch])?;
            out.push(Element::Batch(b));
            Ok(())
        }
    }

    #[test]
    fn operator_stream_forwards_control_elements_in_order() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))])
            .expect("batch");
        let input: ElementStream = Box::new(
            vec![
                Element::Batch(b.clone()),
                Element::Watermark(10),
                Element::Barrier(7),
                Element::Idle,
                Element::Batch(b),
                Element::End,
            ]
            .into_iter()
            .map(Ok),
        );
        let kinds: Vec<String> = OperatorStream::boxed(input, Doubler)
            .map(|e| match e.expect("ok") {
                Element::Batch(b) => format!("B{}", b.num_rows()),
                Element::Watermark(t) => format!("W{t}"),
                Element::Barrier(i) => format!("C{i}"),
                Element::Idle => "I".into(),
                Element::End => "E".into(),
            })
            .collect();
        assert_eq!(kinds, vec!["B4", "W10", "C7", "I", "B4", "E"]);
    }

    /// Emits each input batch in one-row chunks, and after the input ends, as many
    /// one-row batches as it saw inputs: pending output both mid-stream and after `on_end`.
    struct Chunker {
        pending: Vec<RecordBatch>,
        seen: usize,
        ended: bool,
    }
    impl Operator for Chunker {
        fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
            self.seen += 1;
            self.pending = (0..batch.num_rows())
                .rev()
                .map(|i| batch.slice(i, 1))
                .collect();
            self.resume(out)
        }
        fn on_end(&mut self, _out: &mut Vec<Element>) -> Result<()> {
            self.ended = true;
            Ok(())
        }
        fn has_pending(&self) -> bool {
            !self.pending.is_empty() || (self.ended && self.seen > 0)
        }
        fn resume(&mut self, out: &mut Vec<Element>) -> Result<()> {
            if let Some(b) = self.pending.pop() {
                out.push(Element::Batch(b));
            } else if self.ended && self.seen > 0 {
                self.seen -= 1;
                let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
                let b = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![0]))])?;
                out.push(Element::Batch(b));
            }
            Ok(())
        }
    }

    #[test]
    fn pending_output_is_drained_before_more_input_and_before_end() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])
            .expect("batch");
        let input: ElementStream = Box::new(
            vec![
                Element::Batch(b.clone()),
                Element::Watermark(5),
                Element::Batch(b),
                Element::End,
            ]
            .into_iter()
            .map(Ok),
        );
        let op = Chunker {
            pending: vec![],
            seen: 0,
            ended: false,
        };
        let kinds: Vec<String> = OperatorStream::boxed(input, op)
            .map(|e| match e.expect("ok") {
                Element::Batch(b) => {
                    let a = b.column(0).as_any().downcast_ref::<Int64Array>();
                    format!("B{}", a.map_or(-1, |a| a.value(0)))
                }
                Element::Watermark(t) => format!("W{t}"),
                Element::Barrier(i) => format!("C{i}"),
                Element::Idle => "I".into(),
                Element::End => "E".into(),
            })
            .collect();
        assert_eq!(
            kinds,
            vec!["B1", "B2", "B3", "W5", "B1", "B2", "B3", "B0", "B0", "E"]
        );
    }
}
