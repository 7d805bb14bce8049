//! The streaming physical planner: maps the logical operators that have a streaming form
//! and refuses the rest with an error naming them. Over an updating input (a changelog,
//! `op` last) filters keep working unchanged and projections carry `op` along; what
//! cannot consume a changelog yet (a second GROUP BY, windows) is refused.

use std::sync::Arc;

use crate::config::SessionConfig;
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::logical::plan::JoinType;
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::physical::expr::create_physical_expr;
use crate::physical::planner::{agg_specs, join_keys, row_by_row, window_tvf};
use crate::physical::projection::ProjectionExec;
use crate::physical::ExecNode;
use crate::stream::changelog::{carry_op, is_updating, op_first, with_op_last};
use crate::stream::exchange::StreamExchangeExec;
use crate::stream::group_agg::GroupAggregateExec;
use crate::stream::interval::{time_bounds, window_join_bounds};
use crate::stream::join::StreamJoinExec;
use crate::stream::watermark::WatermarkExec;
use crate::stream::window_agg::WindowAggregateExec;
use crate::stream::window_columns;

/// Plans `plan` (optimized) to run as a stream with `config`. An updating query's result
/// is a changelog with its `op` column first.
pub fn create_streaming_plan(
    plan: &LogicalPlan,
    config: &SessionConfig,
) -> Result<Arc<dyn ExecNode>> {
    let node = plan_node(plan, config)?;
    Ok(if updating(plan, config) {
        op_first(node)
    } else {
        node
    })
}

/// Whether `plan` produces a changelog under `config` (see [`is_updating`]).
fn updating(plan: &LogicalPlan, config: &SessionConfig) -> bool {
    is_updating(plan, config.allowed_lateness.is_some())
}

/// What a streaming plan node's input must not be: an updating one (`what` names the node).
fn refuse_updating(input: &LogicalPlan, config: &SessionConfig, what: &str) -> Result<()> {
    if updating(input, config) {
        return Err(SluiceError::unsupported(format!(
            "{what} over an updating result (the changelog of a non-windowed GROUP BY, an \
             outer join or windows with allowed lateness) in a streaming query"
        )));
    }
    Ok(())
}

fn plan_node(plan: &LogicalPlan, config: &SessionConfig) -> Result<Arc<dyn ExecNode>> {
    Ok(match plan {
        LogicalPlan::Scan {
            source,
            projection,
            filters,
            ..
        } => source.scan(
            projection.as_deref(),
            filters,
            config.target_partitions,
            config.batch_size,
        )?,
        LogicalPlan::Watermark {
            input,
            column,
            delay_micros,
        } => {
            refuse_updating(input, config, "a watermark")?;
            Arc::new(WatermarkExec::try_new(
                plan_node(input, config)?,
                *column,
                *delay_micros,
            )?)
        }
        LogicalPlan::Projection {
            input,
            exprs,
            schema,
        } if updating(input, config) => {
            let child = plan_node(input, config)?;
            let width = child.schema().fields().len();
            let exprs = exprs
                .iter()
                .map(|e| create_physical_expr(e, input.schema()))
                .collect::<Result<Vec<_>>>()?;
            Arc::new(ProjectionExec::new(
                child,
                carry_op(exprs, width),
                with_op_last(&schema.to_arrow()),
            ))
        }
        LogicalPlan::WindowTvf { input, .. } => {
            refuse_updating(input, config, "a window table function")?;
            if joins(input) {
                return Err(SluiceError::unsupported(
                    "a window table function over the result of a regular join in a \
                     streaming query (a join emits rows out of event-time order, so they \
                     have no watermark to window by; window each input before joining)",
                ));
            }
            window_tvf(plan, plan_node(input, config)?, config.target_partitions)?
        }
        // A filter keeps its input's columns (a changelog's `op` among them).
        LogicalPlan::Filter { input, .. } | LogicalPlan::Projection { input, .. } => {
            row_by_row(plan, plan_node(input, config)?)?
        }
        LogicalPlan::Alias { input, .. } => plan_node(input, config)?,
        LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            schema,
            ..
        } => {
            if matches!(join_type, JoinType::Semi | JoinType::Anti) || on.is_empty() {
                return Err(SluiceError::unsupported(format!(
                    "{join_type:?} join{} in a streaming query (streaming joins are inner \
                     and outer equi-joins)",
                    if on.is_empty() {
                        " without equality keys"
                    } else {
                        ""
                    }
                )));
            }
            refuse_updating(left, config, "a join")?;
            refuse_updating(right, config, "a join")?;
            let (lkeys, rkeys) = join_keys(on, left.schema(), right.schema())?;
            let n = config.target_partitions;
            let exchange = |input, keys: &Vec<_>| -> Result<Arc<dyn ExecNode>> {
                Ok(Arc::new(StreamExchangeExec::new(
                    plan_node(input, config)?,
                    keys.clone(),
                    n,
                )))
            };
            let bounds = match filter {
                Some(f) => time_bounds(f, left.schema(), right.schema())?,
                None => None,
            };
            let bounds = match bounds {
                Some(b) => Some(b),
                None => window_join_bounds(on, left, right)?,
            };
            let phys_filter = filter
                .as_ref()
                .map(|f| create_physical_expr(f, &left.schema().join(right.schema())))
                .transpose()?;
            Arc::new(
                StreamJoinExec::new(
                    (exchange(left, &lkeys)?, lkeys),
                    (exchange(right, &rkeys)?, rkeys),
                    phys_filter,
                    schema.to_arrow(),
                    config.state_ttl,
                )
                .with_time_bounds(bounds)
                .with_join_type(*join_type),
            )
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
            schema,
        } => aggregate(input, group_by, aggs, schema, config)?,
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
                 window table functions, GROUP BY and inner equi-joins; ORDER BY, LIMIT, \
                 UNION and OVER windows are not implemented in streaming mode yet)"
            )));
        }
    })
}

/// True when `plan` contains a join.
fn joins(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Join { .. }) || plan.inputs().into_iter().any(|i| joins(i))
}

/// A GROUP BY over a stream: windowed when it groups by `window_start` and `window_end`,
/// updating (a changelog) otherwise. Either way its input is exchanged by the key groups
/// of the keys its state is kept under.
fn aggregate(
    input: &Arc<LogicalPlan>,
    group_by: &[Expr],
    aggs: &[Expr],
    schema: &PlanSchema,
    config: &SessionConfig,
) -> Result<Arc<dyn ExecNode>> {
    let in_schema = input.schema();
    let groups = group_by
        .iter()
        .map(|g| create_physical_expr(g, in_schema))
        .collect::<Result<Vec<_>>>()?;
    let window = window_columns(group_by, input);
    let keys = groups
        .iter()
        .enumerate()
        .filter(|(i, _)| window.is_none_or(|(s, e)| *i != s && *i != e))
        .map(|(_, g)| g.clone())
        .collect();
    let child = plan_node(input, config)?;
    let exchange = Arc::new(StreamExchangeExec::new(
        child,
        keys,
        config.target_partitions,
    ));
    let specs = agg_specs(aggs, in_schema)?;
    if window.is_some() {
        refuse_updating(input, config, "a window aggregate")?;
    }
    Ok(match window {
        Some(window) => Arc::new(
            WindowAggregateExec::try_new(exchange, groups, window, specs, schema.to_arrow())?
                .with_allowed_lateness(config.allowed_lateness),
        ),
        None => Arc::new(
            GroupAggregateExec::try_new(
                exchange,
                groups,
                specs,
                with_op_last(&schema.to_arrow()),
                updating(input, config),
            )?
            .with_state_ttl(config.state_ttl),
        ),
    })
}
