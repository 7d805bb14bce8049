//! The streaming physical planner: maps the logical operators that have a streaming form
//! and refuses the rest with an error naming them.

use std::sync::Arc;

use crate::config::SessionConfig;
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::logical::time::WINDOW_COLUMNS;
use crate::physical::expr::create_physical_expr;
use crate::physical::planner::{agg_specs, row_by_row};
use crate::physical::ExecNode;
use crate::stream::exchange::StreamExchangeExec;
use crate::stream::watermark::WatermarkExec;
use crate::stream::window_agg::WindowAggregateExec;

/// Plans `plan` (optimized) to run as a stream with `config`.
pub fn create_streaming_plan(
    plan: &LogicalPlan,
    config: &SessionConfig,
) -> Result<Arc<dyn ExecNode>> {
    let n = config.target_partitions;
    Ok(match plan {
        LogicalPlan::Scan {
            source,
            projection,
            filters,
            ..
        } => source.scan(projection.as_deref(), filters, n, config.batch_size)?,
        LogicalPlan::Watermark {
            input,
            column,
            delay_micros,
        } => Arc::new(WatermarkExec::try_new(
            create_streaming_plan(input, config)?,
            *column,
            *delay_micros,
        )?),
        LogicalPlan::Filter { input, .. }
        | LogicalPlan::Projection { input, .. }
        | LogicalPlan::WindowTvf { input, .. } => {
            row_by_row(plan, create_streaming_plan(input, config)?)?
        }
        LogicalPlan::Alias { input, .. } => create_streaming_plan(input, config)?,
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
            schema,
        } => window_aggregate(input, group_by, aggs, schema, config)?,
        other => {
            let name = other
                .display_indent()
                .lines()
                .next()
                .unwrap_or_default()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            return Err(SluiceError::unsupported(format!(
                "{name} in a streaming query (streaming supports filters, projections, \
                 window table functions and GROUP BY window_start, window_end; joins, \
                 ORDER BY, LIMIT, UNION, OVER windows and non-windowed GROUP BY are not \
                 implemented in streaming mode yet)"
            )));
        }
    })
}

/// The position in `group_by` of a column named `name` (a window column).
fn find_window_column(group_by: &[Expr], name: &str) -> Option<usize> {
    group_by.iter().position(|g| match g.clone().unalias() {
        Expr::Column(c) => c.name == name,
        _ => false,
    })
}

fn window_aggregate(
    input: &Arc<LogicalPlan>,
    group_by: &[Expr],
    aggs: &[Expr],
    schema: &PlanSchema,
    config: &SessionConfig,
) -> Result<Arc<dyn ExecNode>> {
    let (Some(start), Some(end)) = (
        find_window_column(group_by, WINDOW_COLUMNS[0]),
        find_window_column(group_by, WINDOW_COLUMNS[1]),
    ) else {
        return Err(SluiceError::unsupported(
            "GROUP BY without window_start and window_end over a stream (an updating, \
             non-windowed aggregation) is not implemented in streaming mode yet; group by \
             the window columns of TUMBLE, HOP or CUMULATE",
        ));
    };
    let in_schema = input.schema();
    let groups = group_by
        .iter()
        .map(|g| create_physical_expr(g, in_schema))
        .collect::<Result<Vec<_>>>()?;
    let keys = groups
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != start && *i != end)
        .map(|(_, g)| g.clone())
        .collect();
    let child = create_streaming_plan(input, config)?;
    let exchange = Arc::new(StreamExchangeExec::new(
        child,
        keys,
        config.target_partitions,
    ));
    Ok(Arc::new(WindowAggregateExec::try_new(
        exchange,
        groups,
        (start, end),
        agg_specs(aggs, in_schema)?,
        schema.to_arrow(),
    )?))
}
