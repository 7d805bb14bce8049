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
pub mod join;
pub mod partial;
pub mod planner;
pub mod two_input;
pub mod watermark;
pub mod window_agg;

use crate::config::RuntimeMode;
use crate::logical::expr::Expr;
use crate::logical::plan::LogicalPlan;
use crate::logical::time::WINDOW_COLUMNS;

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

/// The positions of `window_start` and `window_end` in a GROUP BY list, when both are
/// there (a windowed aggregation).
pub fn window_columns(group_by: &[Expr]) -> Option<(usize, usize)> {
    let find = |name: &str| {
        group_by.iter().position(|g| match g.clone().unalias() {
            Expr::Column(c) => c.name == name,
            _ => false,
        })
    };
    Some((find(WINDOW_COLUMNS[0])?, find(WINDOW_COLUMNS[1])?))
}
