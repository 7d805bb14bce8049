//! The streaming runtime: the same logical plans as batch, run over unbounded (or, with
//! `execution.runtime-mode = streaming`, bounded) sources, with results as event time
//! advances.
//!
//! A streaming plan is built from the batch operators that are stateless (scan, filter,
//! projection, window table functions) plus the streaming ones here: watermark generation
//! ([`watermark`]), the key-group exchange that aligns watermarks and measures
//! back-pressure ([`exchange`]), and the windowed aggregation that keeps its state in
//! `sluice-state` ([`window_agg`]). What has no streaming form yet (joins, ORDER BY,
//! LIMIT, non-windowed GROUP BY, OVER windows) is refused at planning with an error
//! naming it.

pub mod exchange;
pub mod partial;
pub mod planner;
pub mod watermark;
pub mod window_agg;

use crate::config::RuntimeMode;
use crate::logical::plan::LogicalPlan;

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
