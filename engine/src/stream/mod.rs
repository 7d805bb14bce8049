//! The streaming runtime: the same logical plans as batch, run over unbounded (or, with
//! `execution.runtime-mode = streaming`, bounded) sources, with results as event time
//! advances.
//!
//! A streaming plan is built from the batch operators that are stateless (scan, filter,
//! projection, window table functions) plus the streaming ones here: watermark generation
//! ([`watermark`]), the key-group exchange that aligns watermarks and measures
//! back-pressure ([`exchange`]), the windowed aggregation that keeps its state in
//! `sluice-state` ([`window_agg`]), and the updating aggregation ([`group_agg`]) whose
//! result is a [`changelog`], and the regular inner [`join`] over two inputs
//! ([`two_input`]). What has no streaming form yet (outer joins, ORDER BY, LIMIT, OVER
//! windows) is refused at planning with an error naming it.

pub mod changelog;
pub mod exchange;
pub mod group_agg;
pub mod held_window;
pub mod interval;
pub mod join;
pub mod partial;
pub mod planner;
pub mod retract;
pub mod two_input;
pub mod watermark;
pub mod window_agg;

use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use sluice_state::{KeyedStateBackend, MemoryStateBackend};

use crate::config::RuntimeMode;
use crate::error::Result;
use crate::logical::expr::Expr;
use crate::logical::plan::LogicalPlan;
use crate::physical::expr::PhysExpr;

/// The keyed-state backend of instance `partition` of an operator with `partitions`
/// instances: it owns the key groups the streaming exchange routes to that instance.
pub(crate) fn operator_backend(partitions: usize, partition: usize) -> Result<MemoryStateBackend> {
    Ok(MemoryStateBackend::for_operator(
        exchange::MAX_PARALLELISM,
        partitions as u32,
        partition as u32,
    )?)
}

/// A row encoder for the values of `exprs` over `schema` (state keys).
pub(crate) fn key_converter(exprs: &[PhysExpr], schema: &SchemaRef) -> Result<RowConverter> {
    let fields = exprs
        .iter()
        .map(|k| Ok(SortField::new(k.data_type(schema)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(RowConverter::new(fields)?)
}

/// A row encoder for whole rows of `schema` (rows kept in state).
pub(crate) fn row_converter(schema: &SchemaRef) -> Result<RowConverter> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    Ok(RowConverter::new(fields)?)
}

/// The wall clock of state with a time-to-live (`table.exec.state.ttl`): moves the
/// backend's clock to now and, every quarter TTL, drops what has expired.
#[derive(Debug)]
pub(crate) struct TtlClock {
    ttl: Option<std::time::Duration>,
    last_cleanup: std::time::Instant,
}

impl TtlClock {
    /// A clock for `ttl` (`None`: state never expires, and ticking does nothing).
    pub(crate) fn new(ttl: Option<std::time::Duration>) -> Self {
        Self {
            ttl,
            last_cleanup: std::time::Instant::now(),
        }
    }

    /// The TTL of a state descriptor, in milliseconds.
    pub(crate) fn ttl_ms(&self) -> Option<i64> {
        self.ttl
            .map(|t| t.as_millis().try_into().unwrap_or(i64::MAX))
    }

    /// Moves `backend`'s clock to now; drops expired state every quarter TTL.
    pub(crate) fn tick(&mut self, backend: &mut MemoryStateBackend) {
        let Some(ttl) = self.ttl else { return };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        backend.set_current_time(now_ms);
        if self.last_cleanup.elapsed() >= ttl / 4 {
            backend.cleanup_expired();
            self.last_cleanup = std::time::Instant::now();
        }
    }
}

/// True when some table `plan` reads is unbounded.
pub fn reads_unbounded(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Scan { source, .. } => !source.is_bounded(),
        other => other.inputs().into_iter().any(|i| reads_unbounded(i)),
    }
}

/// Whether `plan` runs as a stream under `mode`.
pub fn is_streaming(plan: &LogicalPlan, mode: RuntimeMode) -> bool {
    match mode {
        RuntimeMode::Streaming => true,
        RuntimeMode::Batch => false,
        RuntimeMode::Automatic => reads_unbounded(plan),
    }
}

/// The positions in `group_by` (over `input`) of a window's start and end, when both are
/// there (a windowed aggregation). A group expression is a window bound when it is a
/// column that traces back, through projections (renamed or not), filters and windowed
/// aggregations, to the `window_start` / `window_end` a window table function appended.
pub fn window_columns(group_by: &[Expr], input: &LogicalPlan) -> Option<(usize, usize)> {
    let find = |b: WindowBound| {
        group_by
            .iter()
            .position(|g| expr_bound(g, input) == Some(b))
    };
    Some((find(WindowBound::Start)?, find(WindowBound::End)?))
}

/// True when `e` (over `plan`'s output) is a column that traces back to a window table
/// function's `window_end` (see [`window_columns`]).
pub fn is_window_end(e: &Expr, plan: &LogicalPlan) -> bool {
    expr_bound(e, plan) == Some(WindowBound::End)
}

/// The window bound `e` is, when it is a column of `plan`'s output that is one.
fn expr_bound(e: &Expr, plan: &LogicalPlan) -> Option<WindowBound> {
    let i = plan.schema().index_of(e.as_column()?).ok()?;
    window_bound(plan, i)
}

/// Which bound of a window a column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowBound {
    Start,
    End,
}

/// Whether column `i` of `plan`'s output is a window bound.
fn window_bound(plan: &LogicalPlan, i: usize) -> Option<WindowBound> {
    match plan {
        LogicalPlan::WindowTvf { input, .. } => {
            let width = input.schema().fields().len();
            match i.checked_sub(width) {
                Some(0) => Some(WindowBound::Start),
                Some(1) => Some(WindowBound::End),
                Some(_) => None,
                None => window_bound(input, i),
            }
        }
        LogicalPlan::Projection { input, exprs, .. } => expr_bound(exprs.get(i)?, input),
        LogicalPlan::Filter { input, .. }
        | LogicalPlan::Alias { input, .. }
        | LogicalPlan::Watermark { input, .. } => window_bound(input, i),
        LogicalPlan::Aggregate {
            input, group_by, ..
        } if window_columns(group_by, input).is_some() => expr_bound(group_by.get(i)?, input),
        _ => None,
    }
}
