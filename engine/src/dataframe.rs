//! The DataFrame API: builds the same logical plans as SQL, then optimizes, plans and runs
//! them.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::Stream;

use crate::config::SessionConfig;
use crate::error::{Result, SluiceError};
use crate::logical::expr::{Expr, SortExpr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::time::Window;
use crate::optimizer::estimate::estimate_rows;
use crate::optimizer::optimize;
use crate::physical::planner::create_physical_plan;
use crate::physical::{collect_partitions, display_plan, ExecNode, TaskContext};
use crate::sql::planner::split_join_condition;

/// A lazily evaluated query: a logical plan plus the settings to run it with.
#[derive(Debug, Clone)]
pub struct DataFrame {
    plan: Arc<LogicalPlan>,
    config: SessionConfig,
}

/// An asynchronous stream of result batches.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

impl DataFrame {
    /// A DataFrame over `plan`.
    pub fn new(plan: Arc<LogicalPlan>, config: SessionConfig) -> Self {
        Self { plan, config }
    }

    /// The logical plan as built (before optimization).
    pub fn logical_plan(&self) -> &Arc<LogicalPlan> {
        &self.plan
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema().to_arrow()
    }

    fn with(&self, plan: LogicalPlan) -> DataFrame {
        DataFrame {
            plan: Arc::new(plan),
            config: self.config.clone(),
        }
    }

    /// Rows where `predicate` is true.
    pub fn filter(&self, predicate: Expr) -> Result<DataFrame> {
        Ok(self.with(LogicalPlan::filter(self.plan.clone(), predicate)?))
    }

    /// Computes `exprs` (window functions allowed).
    pub fn select(&self, exprs: Vec<Expr>) -> Result<DataFrame> {
        let mut wins = Vec::new();
        for e in &exprs {
            e.walk(&mut |x| {
                if matches!(x, Expr::Window { .. }) && !wins.contains(x) {
                    wins.push(x.clone());
                }
            });
        }
        let mut input = self.plan.clone();
        let mut exprs = exprs;
        if !wins.is_empty() {
            input = Arc::new(LogicalPlan::window(input, wins.clone())?);
            exprs = exprs
                .into_iter()
                .map(|e| {
                    let name = e.output_name();
                    let r = e.transform_down(&mut |x| {
                        Ok::<_, SluiceError>(
                            wins.contains(x)
                                .then(|| crate::logical::expr::col(&x.output_name())),
                        )
                    })?;
                    Ok(if matches!(r, Expr::Column(_)) {
                        r.alias(&name)
                    } else {
                        r
                    })
                })
                .collect::<Result<_>>()?;
        }
        Ok(self.with(LogicalPlan::project(input, exprs)?))
    }

    /// Applies a window table function: every row once per window holding it, with
    /// `window_start`, `window_end` and `window_time` appended (then group by
    /// `window_start` and `window_end` for a windowed aggregation, in batch or stream):
    /// `df.window(Window::tumble("ts", Duration::from_secs(10)))`.
    pub fn window(&self, window: Window) -> Result<DataFrame> {
        Ok(self.with(window.plan(self.plan.clone())?))
    }

    /// Groups by `group_by` and computes aggregate expressions `aggs` (e.g. `sum(col("x")).alias("s")`).
    pub fn aggregate(&self, group_by: Vec<Expr>, aggs: Vec<Expr>) -> Result<DataFrame> {
        for a in &aggs {
            if !matches!(a.clone().unalias(), Expr::Aggregate { .. }) {
                return Err(SluiceError::plan(format!("{a} is not an aggregate call")));
            }
        }
        Ok(self.with(LogicalPlan::aggregate(self.plan.clone(), group_by, aggs)?))
    }

    /// Joins with `right` on equal columns (`left_cols[i] = right_cols[i]`).
    pub fn join(
        &self,
        right: &DataFrame,
        join_type: JoinType,
        left_cols: &[&str],
        right_cols: &[&str],
    ) -> Result<DataFrame> {
        if left_cols.len() != right_cols.len() {
            return Err(SluiceError::plan(
                "join needs as many left as right columns",
            ));
        }
        let on = left_cols
            .iter()
            .zip(right_cols)
            .map(|(l, r)| (crate::logical::expr::col(l), crate::logical::expr::col(r)))
            .collect();
        Ok(self.with(LogicalPlan::join(
            self.plan.clone(),
            right.plan.clone(),
            join_type,
            on,
            None,
            false,
        )?))
    }

    /// Joins with `right` on an arbitrary condition over both sides (equalities become keys).
    pub fn join_on(
        &self,
        right: &DataFrame,
        join_type: JoinType,
        condition: Expr,
    ) -> Result<DataFrame> {
        let (on, filter) = split_join_condition(condition, self.plan.schema(), right.plan.schema());
        Ok(self.with(LogicalPlan::join(
            self.plan.clone(),
            right.plan.clone(),
            join_type,
            on,
            filter,
            false,
        )?))
    }

    /// Sorts by `keys`.
    pub fn sort(&self, keys: Vec<SortExpr>) -> Result<DataFrame> {
        Ok(self.with(LogicalPlan::Sort {
            input: self.plan.clone(),
            order_by: keys,
            fetch: None,
        }))
    }

    /// Skips `skip` rows and keeps at most `fetch`.
    pub fn limit(&self, skip: usize, fetch: Option<usize>) -> Result<DataFrame> {
        Ok(self.with(LogicalPlan::Limit {
            input: self.plan.clone(),
            skip,
            fetch,
        }))
    }

    /// UNION ALL with `other` (same column count; types are unified).
    pub fn union(&self, other: &DataFrame) -> Result<DataFrame> {
        let (l, r) =
            crate::sql::planner::coerce_union_inputs(self.plan.clone(), other.plan.clone())?;
        Ok(self.with(LogicalPlan::union_all(vec![l, r])?))
    }

    /// Distinct rows.
    pub fn distinct(&self) -> Result<DataFrame> {
        Ok(self.with(
            crate::sql::planner::distinct(self.plan.clone())?
                .as_ref()
                .clone(),
        ))
    }

    /// Renames the relation (for qualified column references after a join).
    pub fn alias(&self, name: &str) -> Result<DataFrame> {
        Ok(self.with(LogicalPlan::alias(self.plan.clone(), name)))
    }

    /// The optimized logical plan.
    pub fn optimized_plan(&self) -> Result<Arc<LogicalPlan>> {
        optimize(self.plan.clone())
    }

    /// The physical plan that `collect` would run.
    pub fn physical_plan(&self) -> Result<Arc<dyn ExecNode>> {
        let p = self.optimized_plan()?;
        if self.is_streaming() {
            crate::stream::planner::create_streaming_plan(&p, &self.config)
        } else {
            create_physical_plan(&p, &self.config)
        }
    }

    /// True when the query runs as a stream: it reads an unbounded source, or the session's
    /// `execution.runtime-mode` is `streaming`.
    pub fn is_streaming(&self) -> bool {
        crate::stream::is_streaming(&self.plan, self.config.runtime_mode)
    }

    /// True when the query's result is a changelog (a streaming non-windowed GROUP BY):
    /// its batches then start with an `op` column (`+I`, `-U`, `+U`, `-D`).
    pub fn is_updating(&self) -> bool {
        self.is_streaming()
            && crate::stream::changelog::is_updating(
                &self.plan,
                self.config.allowed_lateness.is_some(),
            )
    }

    /// True when the query never ends by itself (it reads an unbounded source).
    pub fn is_unbounded(&self) -> bool {
        crate::stream::reads_unbounded(&self.plan)
    }

    /// The physical plan and a task context for one run.
    fn prepare(&self) -> Result<(Arc<dyn ExecNode>, Arc<TaskContext>)> {
        if !self.is_streaming() && self.is_unbounded() {
            return Err(SluiceError::unsupported(
                "the query reads an unbounded source, which only streaming execution can \
                 read, but execution.runtime-mode is 'batch' (SET 'execution.runtime-mode' = \
                 'streaming' or 'automatic')",
            ));
        }
        let phys = self.physical_plan()?;
        let mut ctx = TaskContext::new(self.config.clone());
        ctx.streaming = self.is_streaming();
        Ok((phys, Arc::new(ctx)))
    }

    /// Logical (as built and optimized) and physical plans, as text.
    pub fn explain(&self) -> Result<String> {
        let opt = self.optimized_plan()?;
        let phys = self.physical_plan()?;
        Ok(format!(
            "== Logical plan ==\n{}\n== Optimized logical plan ==\n{}\n== Physical plan ==\n{}",
            self.plan.display_indent(),
            opt.display_indent_with(&|p| format!(" [rows≈{:.0}]", estimate_rows(p))),
            display_plan(&phys)
        ))
    }

    /// Runs the query and returns all result batches (in order for sorted queries).
    pub fn collect(&self) -> Result<Vec<RecordBatch>> {
        // Planning first: a query with no streaming form, or an unbounded one in batch
        // mode, says so before the collect-forever refusal.
        let (phys, ctx) = self.prepare()?;
        if self.is_unbounded() {
            return Err(SluiceError::unsupported(
                "collect() of a query over an unbounded source would never finish; read it \
                 with execute_stream() / execute_iter() (and drop the stream to stop it)",
            ));
        }
        let batches = collect_partitions(&phys, &ctx);
        // An error in one partition may leave others running: end them (and free their
        // memory and spill files) before returning.
        ctx.threads.stop_and_wait();
        let batches = batches?;
        let schema = self.result_schema();
        batches
            .into_iter()
            .map(|b| crate::physical::with_schema(&schema, b))
            .collect()
    }

    /// The schema of the batches [`DataFrame::collect`] and [`DataFrame::execute_stream`]
    /// yield: the logical names and types, every field nullable (physical plans may differ
    /// from the logical schema in nullability only), after an `op` column when the result
    /// is a changelog ([`DataFrame::is_updating`]).
    pub fn result_schema(&self) -> SchemaRef {
        let schema = arrow::datatypes::Schema::new(
            self.schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        );
        if self.is_updating() {
            crate::stream::changelog::with_op_first(&schema)
        } else {
            Arc::new(schema)
        }
    }

    /// Runs the query, yielding result batches as they are produced, on the caller's
    /// thread (a streaming query's as its windows fire; it ends only if its sources do).
    /// Dropping the iterator cancels the query.
    pub fn execute_iter(&self) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send> {
        let (phys, ctx) = self.prepare()?;
        self.iterate(phys, &ctx)
    }

    /// Runs the query to its end, discarding its rows, and returns its physical plan with
    /// what each operator measured (back-pressure, late rows), the rows produced and the
    /// time taken (EXPLAIN ANALYZE).
    pub fn explain_analyze(&self) -> Result<String> {
        if self.is_unbounded() {
            return Err(SluiceError::unsupported(
                "EXPLAIN ANALYZE of a query over an unbounded source (it would never finish)",
            ));
        }
        let (phys, ctx) = self.prepare()?;
        let started = std::time::Instant::now();
        let mut rows = 0;
        for b in self.iterate(phys.clone(), &ctx)? {
            rows += b?.num_rows();
        }
        Ok(format!(
            "{}rows={rows}, elapsed={:.3} s",
            crate::physical::display_plan_with_metrics(&phys),
            started.elapsed().as_secs_f64()
        ))
    }

    /// Runs `phys` with `ctx`, yielding its result batches on the caller's thread.
    fn iterate(
        &self,
        phys: Arc<dyn ExecNode>,
        ctx: &Arc<TaskContext>,
    ) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send> {
        let schema = self.result_schema();
        let gathered = if phys.output_partitions() == 1 {
            phys
        } else {
            Arc::new(crate::physical::exchange::ExchangeExec::new(
                phys,
                crate::physical::exchange::Partitioning::Single,
            )) as Arc<dyn ExecNode>
        };
        if let Some(slot) = &self.config.running_plan {
            slot.set(gathered.clone());
        }
        let stream = gathered.execute(0, ctx)?;
        let run = ctx.clone();
        let batches = stream
            .take_while(move |el| !run.is_cancelled() && !matches!(el, Err(SluiceError::Cancelled)))
            .filter_map(move |el| match el {
                Ok(crate::physical::Element::Batch(b)) if b.num_rows() > 0 => {
                    Some(crate::physical::with_schema(&schema, b))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            });
        Ok(RunIter {
            batches: Some(batches),
            ctx: ctx.clone(),
        })
    }

    /// Runs the query, yielding batches as they are produced. Dropping the stream cancels
    /// the query.
    pub fn execute_stream(&self) -> Result<BatchStream> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(4);
        let df = self.clone();
        std::thread::Builder::new()
            .name("sluice-query".into())
            .spawn(move || {
                let batches = match df.execute_iter() {
                    Ok(it) => it,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                for item in batches {
                    let failed = item.is_err();
                    if tx.blocking_send(item).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(|e| SluiceError::exec(format!("cannot start query thread: {e}")))?;
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })))
    }

    /// Runs the query and renders the result as a text table.
    pub fn to_pretty_string(&self) -> Result<String> {
        let batches = self.collect()?;
        Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
    }
}

/// A running query's result batches; dropping it stops the run and waits for its threads
/// (see [`crate::physical::task_threads`]).
struct RunIter<I> {
    /// Dropped first: the result stream, which closes the exchanges feeding it.
    batches: Option<I>,
    ctx: Arc<TaskContext>,
}

impl<I: Iterator> Iterator for RunIter<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        self.batches.as_mut()?.next()
    }
}

impl<I> Drop for RunIter<I> {
    fn drop(&mut self) {
        self.batches = None;
        self.ctx.threads.stop_and_wait();
    }
}
