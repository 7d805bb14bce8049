//! The physical planner: picks an algorithm and a partitioning for every logical node.
//! Joins build on the side estimated smaller; aggregations run partial → hash exchange →
//! final; sorts, limits and windows gather to one partition.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema};

use crate::config::SessionConfig;
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;
use crate::optimizer::estimate::estimate_bytes;
use crate::optimizer::repeated::{repeated_subtrees, share_key, visit, ShareKey};
use crate::physical::accumulator::state_types;
use crate::physical::aggregate::{AggMode, AggSpec, AggregateExec};
use crate::physical::coerce::common_type;
use crate::physical::dynamic_filter::{
    filterable, keeps_everything, occurrences, scan_origin, DynamicFilter, DynamicFilterExec,
};
use crate::physical::exchange::{ExchangeExec, Partitioning};
use crate::physical::expr::{create_physical_expr, expr_type, PhysExpr};
use crate::physical::filter::FilterExec;
use crate::physical::join::{HashJoinExec, HashJoinSpec, JoinMode};
use crate::physical::limit::LimitExec;
use crate::physical::projection::ProjectionExec;
use crate::physical::scan::MemoryExec;
use crate::physical::shared::SharedExec;
use crate::physical::sort::{PhysSortExpr, SortExec};
use crate::physical::union::UnionExec;
use crate::physical::window::WindowExec;
use crate::physical::window_tvf::WindowTvfExec;
use crate::physical::{EarlyTests, ExecNode};
use crate::stream::held_window::HeldWindowExec;

/// Plans `plan` for execution with `config`.
pub fn create_physical_plan(
    plan: &LogicalPlan,
    config: &SessionConfig,
) -> Result<Arc<dyn ExecNode>> {
    Planner {
        config,
        dynamic: RefCell::default(),
        repeated: RefCell::new(repeated_subtrees(plan)),
        shared: RefCell::default(),
    }
    .plan(plan)
}

struct Planner<'a> {
    config: &'a SessionConfig,
    /// Dynamic filters waiting for the scan they go over: (the logical scan node, its
    /// column, the filter its join will set).
    dynamic: RefCell<Vec<(*const LogicalPlan, usize, Arc<DynamicFilter>)>>,
    /// Subtrees that occur more than once (a CTE used twice), with their count.
    repeated: RefCell<HashMap<ShareKey, usize>>,
    /// The plan of each repeated subtree planned so far, read by its later occurrences.
    shared: RefCell<HashMap<ShareKey, Arc<dyn ExecNode>>>,
}

/// The operator of a window table function over its planned input `child`, batch or
/// stream: SESSION and count windows hold rows per key (exchanged into `partitions`), the
/// others assign rows to windows row by row.
pub(crate) fn window_tvf(
    plan: &LogicalPlan,
    child: Arc<dyn ExecNode>,
    partitions: usize,
) -> Result<Arc<dyn ExecNode>> {
    match plan {
        LogicalPlan::WindowTvf {
            kind,
            time_column,
            partition_by,
            schema,
            ..
        } if kind.is_held() => HeldWindowExec::plan(
            child,
            *kind,
            *time_column,
            partition_by,
            schema.to_arrow(),
            partitions,
        ),
        _ => row_by_row(plan, child),
    }
}

/// `predicate` (over a scan's output `schema`) ready for the scan to test early: the
/// output columns it reads, ascending, and the predicate bound to those columns alone.
/// None when it reads no column or cannot be tested apart from the filter (it calls
/// `CURRENT_WATERMARK`, or refers to an outer query).
fn early_predicate(predicate: &Expr, schema: &PlanSchema) -> Option<(Vec<usize>, PhysExpr)> {
    if predicate.contains_outer() {
        return None;
    }
    let mut columns = predicate
        .columns()
        .iter()
        .map(|c| schema.index_of(c).ok())
        .collect::<Option<Vec<usize>>>()?;
    columns.sort_unstable();
    columns.dedup();
    if columns.is_empty() {
        return None;
    }
    let tested = PlanSchema::new(columns.iter().map(|&c| schema.field(c).clone()).collect());
    let bound = create_physical_expr(predicate, &tested).ok()?;
    (!bound.uses_watermark()).then_some((columns, bound))
}

/// `agg` (over `input`) taking over the work of `input` when that is a filter.
fn over_filter(agg: AggregateExec, input: &Arc<dyn ExecNode>) -> Result<AggregateExec> {
    match input.as_filter() {
        Some((rows, predicate)) => agg.with_filter(rows, predicate),
        None => Ok(agg),
    }
}

/// The operator of a node that works row by row (filter, projection, window table
/// function) over its planned input `child`; batch and streaming plans share these.
pub(crate) fn row_by_row(
    plan: &LogicalPlan,
    child: Arc<dyn ExecNode>,
) -> Result<Arc<dyn ExecNode>> {
    Ok(match plan {
        LogicalPlan::Filter { input, predicate } => {
            let p = create_physical_expr(predicate, input.schema())?;
            Arc::new(FilterExec::new(child, p))
        }
        LogicalPlan::Projection {
            input,
            exprs,
            schema,
        } => {
            let p = exprs
                .iter()
                .map(|e| create_physical_expr(e, input.schema()))
                .collect::<Result<Vec<_>>>()?;
            Arc::new(ProjectionExec::new(child, p, schema.to_arrow()))
        }
        LogicalPlan::WindowTvf {
            kind,
            time_column,
            schema,
            ..
        } => Arc::new(WindowTvfExec::try_new(
            child,
            *kind,
            *time_column,
            schema.to_arrow(),
        )?),
        other => {
            return Err(SluiceError::plan(format!(
                "internal: {} is not a row-by-row operator",
                other.display_indent().trim_end()
            )))
        }
    })
}

/// The physical key expressions of an equi-join's `on` pairs over the left and right
/// schemas, each pair cast to a common type (so equal keys encode equally).
pub(crate) fn join_keys(
    on: &[(Expr, Expr)],
    ls: &PlanSchema,
    rs: &PlanSchema,
) -> Result<(Vec<PhysExpr>, Vec<PhysExpr>)> {
    let mut lkeys = Vec::new();
    let mut rkeys = Vec::new();
    for (l, r) in on {
        let (lt, rt) = (expr_type(l, ls)?, expr_type(r, rs)?);
        let common = common_type(&lt, &rt).ok_or_else(|| {
            SluiceError::Type(format!(
                "join keys {l} ({lt}) and {r} ({rt}) cannot be compared"
            ))
        })?;
        let cast = |e: PhysExpr, t: &DataType| {
            if *t == common {
                e
            } else {
                PhysExpr::Cast(Box::new(e), common.clone())
            }
        };
        lkeys.push(cast(create_physical_expr(l, ls)?, &lt));
        rkeys.push(cast(create_physical_expr(r, rs)?, &rt));
    }
    Ok((lkeys, rkeys))
}

/// The physical aggregate calls of a logical aggregation's `aggs` over `in_schema`.
pub(crate) fn agg_specs(aggs: &[Expr], in_schema: &PlanSchema) -> Result<Vec<AggSpec>> {
    aggs.iter()
        .map(|a| {
            let Expr::Aggregate {
                func,
                args,
                distinct,
            } = a.clone().unalias()
            else {
                return Err(SluiceError::plan(format!(
                    "expected an aggregate call, got {a}"
                )));
            };
            let input_type = args.first().map(|x| expr_type(x, in_schema)).transpose()?;
            let args = args
                .iter()
                .map(|x| create_physical_expr(x, in_schema))
                .collect::<Result<Vec<_>>>()?;
            Ok(AggSpec {
                func,
                distinct,
                args,
                input_type,
            })
        })
        .collect()
}

impl Planner<'_> {
    fn gather(&self, p: Arc<dyn ExecNode>) -> Arc<dyn ExecNode> {
        if p.output_partitions() == 1 {
            p
        } else {
            Arc::new(ExchangeExec::new(p, Partitioning::Single))
        }
    }

    /// Plans `plan`; a subtree that occurs more than once is planned once, under a
    /// [`SharedExec`] its every occurrence reads.
    fn plan(&self, plan: &LogicalPlan) -> Result<Arc<dyn ExecNode>> {
        let Some(key) = self.shared_key(plan) else {
            return self.plan_node(plan);
        };
        if let Some(p) = self.shared.borrow().get(&key) {
            return Ok(p.clone());
        }
        // A dynamic filter bound for a scan inside would filter the rows of one
        // occurrence's join for all: then every occurrence is planned on its own.
        let mut filtered = false;
        visit(plan, &mut |p| {
            filtered |= self
                .dynamic
                .borrow()
                .iter()
                .any(|(s, ..)| std::ptr::eq(*s, p))
        });
        if filtered {
            self.repeated.borrow_mut().remove(&key);
            return self.plan_node(plan);
        }
        let consumers = self.repeated.borrow().get(&key).copied().unwrap_or(1);
        let p: Arc<dyn ExecNode> = Arc::new(SharedExec::new(self.plan_node(plan)?, consumers));
        self.shared.borrow_mut().insert(key, p.clone());
        Ok(p)
    }

    /// `plan`'s key when it occurs more than once (planned once, under a [`SharedExec`]).
    fn shared_key(&self, plan: &LogicalPlan) -> Option<ShareKey> {
        share_key(plan).filter(|k| self.repeated.borrow().contains_key(k))
    }

    /// Plans the scan `plan`, under the joins' dynamic filters bound for it and, when
    /// given, the predicate of the filter right above it.
    fn scan(&self, plan: &LogicalPlan, predicate: Option<&Expr>) -> Result<Arc<dyn ExecNode>> {
        let LogicalPlan::Scan {
            source,
            projection,
            filters,
            schema,
            ..
        } = plan
        else {
            return Err(SluiceError::plan("internal: a scan was expected"));
        };
        let n = self.config.target_partitions;
        let scan = source.scan(projection.as_deref(), filters, n, self.config.batch_size)?;
        // Every join that traced a probe key here filters this scan (q9's lineitem:
        // by supplier and by part); filters that keep nearly everything stop
        // testing on their own.
        let mut pending = self.dynamic.borrow_mut();
        let mut keys = Vec::new();
        while let Some(i) = pending.iter().position(|(p, ..)| std::ptr::eq(*p, plan)) {
            let (_, column, filter) = pending.swap_remove(i);
            keys.push((column, filter));
        }
        // The scan may test rows as it reads them (late materialization); the
        // filters above it handle what it does not.
        let mut tests = EarlyTests {
            keys,
            predicate: predicate.and_then(|p| early_predicate(p, schema)),
        };
        let mut early = scan.with_early_tests(&tests);
        if early.is_none() && tests.predicate.is_some() && !tests.keys.is_empty() {
            // The predicate's columns leave nothing to read late: the keys alone may.
            tests.predicate = None;
            early = scan.with_early_tests(&tests);
        }
        let mut scan = early.unwrap_or(scan);
        for (column, filter) in tests.keys {
            scan = Arc::new(DynamicFilterExec::new(scan, column, filter));
        }
        Ok(scan)
    }

    fn plan_node(&self, plan: &LogicalPlan) -> Result<Arc<dyn ExecNode>> {
        Ok(match plan {
            LogicalPlan::Scan { .. } => self.scan(plan, None)?,
            LogicalPlan::Empty {
                produce_one_row, ..
            } => {
                let schema = Arc::new(Schema::empty());
                let rows = usize::from(*produce_one_row);
                let b = RecordBatch::try_new_with_options(
                    schema.clone(),
                    vec![],
                    &RecordBatchOptions::new().with_row_count(Some(rows)),
                )?;
                Arc::new(MemoryExec::single(schema, vec![b]))
            }
            LogicalPlan::Values { schema, rows } => self.values(schema, rows)?,
            LogicalPlan::WindowTvf { input, .. } => {
                window_tvf(plan, self.plan(input)?, self.config.target_partitions)?
            }
            LogicalPlan::Projection {
                input,
                exprs,
                schema,
            } if matches!(input.as_ref(), LogicalPlan::Join { .. })
                && self.shared_key(input).is_none() =>
            {
                match self.project_join(input, exprs, schema)? {
                    Some(p) => p,
                    None => row_by_row(plan, self.plan(input)?)?,
                }
            }
            LogicalPlan::Filter { input, predicate }
                if matches!(input.as_ref(), LogicalPlan::Scan { .. })
                    && self.shared_key(input).is_none() =>
            {
                row_by_row(plan, self.scan(input, Some(predicate))?)?
            }
            LogicalPlan::Filter { input, .. } | LogicalPlan::Projection { input, .. } => {
                row_by_row(plan, self.plan(input)?)?
            }
            LogicalPlan::Aggregate {
                input,
                group_by,
                aggs,
                schema,
            } => self.aggregate(input, group_by, aggs, schema)?,
            LogicalPlan::Join { .. } => self.join(plan, None)?,
            LogicalPlan::Sort {
                input,
                order_by,
                fetch,
            } => {
                let keys = order_by
                    .iter()
                    .map(|s| {
                        Ok(PhysSortExpr {
                            expr: create_physical_expr(&s.expr, input.schema())?,
                            options: s.options(),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Arc::new(SortExec::new(self.gather(self.plan(input)?), keys, *fetch))
            }
            LogicalPlan::Limit { input, skip, fetch } => Arc::new(LimitExec::new(
                self.gather(self.plan(input)?),
                *skip,
                *fetch,
            )),
            LogicalPlan::Union { inputs, schema } => {
                let target = schema.to_arrow();
                let mut children = Vec::new();
                for i in inputs {
                    let p = self.plan(i)?;
                    let exprs: Vec<PhysExpr> = i
                        .schema()
                        .fields()
                        .iter()
                        .enumerate()
                        .zip(target.fields())
                        .map(|((idx, f), t)| {
                            let c = PhysExpr::Column(idx, f.field.name().clone());
                            if f.field.data_type() == t.data_type() {
                                c
                            } else {
                                PhysExpr::Cast(Box::new(c), t.data_type().clone())
                            }
                        })
                        .collect();
                    children.push(Arc::new(ProjectionExec::new(p, exprs, target.clone()))
                        as Arc<dyn ExecNode>);
                }
                Arc::new(UnionExec::new(children, target))
            }
            LogicalPlan::Window {
                input,
                exprs,
                schema,
            } => {
                let child = self.gather(self.plan(input)?);
                Arc::new(WindowExec::try_new(
                    child,
                    input.schema(),
                    exprs,
                    schema.to_arrow(),
                )?)
            }
            LogicalPlan::Alias { input, .. } | LogicalPlan::Watermark { input, .. } => {
                self.plan(input)?
            }
        })
    }

    fn values(&self, schema: &PlanSchema, rows: &[Vec<Expr>]) -> Result<Arc<dyn ExecNode>> {
        let empty = PlanSchema::default();
        let one = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let target = schema.to_arrow();
        let mut cols: Vec<Vec<ArrayRef>> = vec![vec![]; target.fields().len()];
        for row in rows {
            for (i, e) in row.iter().enumerate() {
                let v = create_physical_expr(e, &empty)?.evaluate_array(&one)?;
                let t = target.field(i).data_type();
                let v = if v.data_type() == t {
                    v
                } else {
                    arrow::compute::cast(&v, t)?
                };
                cols[i].push(v);
            }
        }
        let arrays = cols
            .iter()
            .zip(target.fields())
            .map(|(c, f)| {
                if c.is_empty() {
                    Ok(new_null_array(f.data_type(), 0))
                } else {
                    let refs: Vec<&dyn arrow::array::Array> =
                        c.iter().map(|a| a.as_ref()).collect();
                    Ok(arrow::compute::concat(&refs)?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let b = RecordBatch::try_new_with_options(
            target.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?;
        Ok(Arc::new(MemoryExec::single(target, vec![b])))
    }

    fn aggregate(
        &self,
        input: &Arc<LogicalPlan>,
        group_by: &[Expr],
        aggs: &[Expr],
        schema: &PlanSchema,
    ) -> Result<Arc<dyn ExecNode>> {
        let in_schema = input.schema();
        let child = self.plan(input)?;
        let groups = group_by
            .iter()
            .map(|g| create_physical_expr(g, in_schema))
            .collect::<Result<Vec<_>>>()?;
        let specs = agg_specs(aggs, in_schema)?;
        let out_schema = schema.to_arrow();
        let n = self.config.target_partitions;
        let one_phase = specs.iter().any(|s| s.distinct) || child.output_partitions() == 1;
        if one_phase {
            let child = if child.output_partitions() == 1 {
                child
            } else if groups.is_empty() {
                self.gather(child)
            } else {
                Arc::new(ExchangeExec::new(
                    child,
                    Partitioning::Hash(groups.clone(), n),
                ))
            };
            return Ok(Arc::new(over_filter(
                AggregateExec::new(child.clone(), AggMode::Complete, groups, specs, out_schema),
                &child,
            )?));
        }
        // Partial: group columns then each aggregate's state columns.
        let mut fields: Vec<Field> = out_schema.fields()[..groups.len()]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut final_specs = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let mut args = Vec::new();
            for (j, t) in state_types(s.func, s.input_type.as_ref())?
                .into_iter()
                .enumerate()
            {
                args.push(PhysExpr::Column(fields.len(), format!("state{i}_{j}")));
                fields.push(Field::new(format!("{}[state{i}_{j}]", s.func), t, true));
            }
            final_specs.push(AggSpec {
                func: s.func,
                distinct: false,
                args,
                input_type: s.input_type.clone(),
            });
        }
        let partial_schema = Arc::new(Schema::new(fields));
        let partial: Arc<dyn ExecNode> = Arc::new(over_filter(
            AggregateExec::new(
                child.clone(),
                AggMode::Partial,
                groups.clone(),
                specs,
                partial_schema.clone(),
            ),
            &child,
        )?);
        let final_groups: Vec<PhysExpr> = (0..groups.len())
            .map(|i| PhysExpr::Column(i, partial_schema.field(i).name().clone()))
            .collect();
        let exchanged: Arc<dyn ExecNode> = if final_groups.is_empty() {
            self.gather(partial)
        } else {
            Arc::new(ExchangeExec::new(
                partial,
                Partitioning::Hash(final_groups.clone(), n),
            ))
        };
        Ok(Arc::new(AggregateExec::new(
            exchanged,
            AggMode::Final,
            final_groups,
            final_specs,
            out_schema,
        )))
    }

    /// Registers a dynamic filter for each join key pair whose probe key is an integer or
    /// date column traced to a scan that occurs once in `probe`; returns each build key's
    /// index with its filter.
    fn register_dynamic_filters(
        &self,
        on: &[(Expr, Expr)],
        build_left: bool,
        build: &LogicalPlan,
        build_exec: &Arc<dyn ExecNode>,
        probe: &LogicalPlan,
    ) -> Vec<(usize, Arc<DynamicFilter>)> {
        on.iter()
            .enumerate()
            .filter_map(|(k, (l, r))| {
                let (b, p) = if build_left { (l, r) } else { (r, l) };
                let Expr::Column(c) = p else { return None };
                let column = probe.schema().index_of(c).ok()?;
                let p_type = probe.schema().fields()[column].field.data_type().clone();
                let b_type = expr_type(b, build.schema()).ok()?;
                if !filterable(&p_type) || !filterable(&b_type) {
                    return None;
                }
                let (scan, scan_column) = scan_origin(probe, column)?;
                if occurrences(probe, scan) != 1
                    || keeps_everything(build, build_exec.as_ref(), b, probe, column)
                {
                    return None;
                }
                let filter = Arc::new(DynamicFilter::default());
                self.dynamic.borrow_mut().push((
                    scan as *const LogicalPlan,
                    scan_column,
                    filter.clone(),
                ));
                Some((k, filter))
            })
            .collect()
    }

    /// A projection over a join: the join outputs only the columns the projection reads
    /// (it gathers no others), and the projection goes when it only selects them in
    /// order. `None` when a column does not resolve to one join column.
    fn project_join(
        &self,
        join: &LogicalPlan,
        exprs: &[Expr],
        schema: &PlanSchema,
    ) -> Result<Option<Arc<dyn ExecNode>>> {
        let js = join.schema();
        let mut used = Vec::new();
        for c in exprs.iter().flat_map(|e| e.columns()) {
            match js.index_of(&c) {
                Ok(i) => used.push(i),
                Err(_) => return Ok(None),
            }
        }
        used.sort_unstable();
        used.dedup();
        if used.is_empty() && !js.is_empty() {
            used.push(0); // constants over a join still need its row count
        }
        let exec = self.join(join, Some(used.clone()))?;
        let in_order = exprs
            .iter()
            .map(|e| e.as_column().and_then(|c| js.index_of(c).ok()))
            .eq(used.iter().map(|&i| Some(i)));
        if in_order {
            return Ok(Some(exec));
        }
        let kept = PlanSchema::new(used.iter().map(|&i| js.field(i).clone()).collect());
        let p = exprs
            .iter()
            .map(|e| create_physical_expr(e, &kept))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Arc::new(ProjectionExec::new(
            exec,
            p,
            schema.to_arrow(),
        ))))
    }

    /// The hash join of `join` (a `LogicalPlan::Join`), producing only the output columns
    /// in `projection` when given.
    fn join(
        &self,
        join: &LogicalPlan,
        projection: Option<Vec<usize>>,
    ) -> Result<Arc<dyn ExecNode>> {
        let LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            null_aware,
            ..
        } = join
        else {
            return Err(SluiceError::plan("internal: expected a join"));
        };
        let (join_type, null_aware) = (*join_type, *null_aware);
        let (ls, rs) = (left.schema(), right.schema());
        let (lkeys, rkeys) = join_keys(on, ls, rs)?;
        let filter = filter
            .as_ref()
            .map(|f| create_physical_expr(f, &ls.join(rs)))
            .transpose()?;
        let build_left = match join_type {
            JoinType::Anti if null_aware => false,
            // The side with fewer bytes: its rows are copied into the table and gathered
            // again for every match, so a wide side costs more than its row count says.
            _ => estimate_bytes(left) < estimate_bytes(right),
        };
        let mut mode = JoinMode {
            null_aware,
            ..Default::default()
        };
        // Map the logical type onto (build, probe) roles.
        let (preserve_left, preserve_right) = match join_type {
            JoinType::Inner | JoinType::Semi | JoinType::Anti => (false, false),
            JoinType::Left => (true, false),
            JoinType::Right => (false, true),
            JoinType::Full => (true, true),
        };
        match join_type {
            JoinType::Semi => {
                if build_left {
                    mode.build_semi = true
                } else {
                    mode.probe_semi = true
                }
            }
            JoinType::Anti => {
                if build_left {
                    mode.build_anti = true
                } else {
                    mode.probe_anti = true
                }
            }
            _ => {
                mode.pairs = true;
                let (build_pres, probe_pres) = if build_left {
                    (preserve_left, preserve_right)
                } else {
                    (preserve_right, preserve_left)
                };
                mode.build_outer = build_pres;
                mode.probe_outer = probe_pres;
            }
        }
        // The build side first: a dynamic filter registered now reaches only scans of the
        // probe side.
        let (build_plan, probe_plan) = if build_left {
            (left, right)
        } else {
            (right, left)
        };
        let build_exec = self.plan(build_plan)?;
        let mut dynamic = if mode.probe_anti || mode.probe_outer || null_aware {
            vec![]
        } else {
            self.register_dynamic_filters(on, build_left, build_plan, &build_exec, probe_plan)
        };
        let probe_exec = self.plan(probe_plan)?;
        dynamic.retain(|(_, f)| {
            // Not taken by a scan (it should be): then the join has nothing to fill in.
            let mut pending = self.dynamic.borrow_mut();
            let before = pending.len();
            pending.retain(|(.., g)| !Arc::ptr_eq(f, g));
            pending.len() == before
        });
        let (lp, rp) = if build_left {
            (build_exec, probe_exec)
        } else {
            (probe_exec, build_exec)
        };
        let spec = if build_left {
            HashJoinSpec {
                build: lp,
                probe: rp,
                build_keys: lkeys,
                probe_keys: rkeys,
                filter,
                build_is_left: true,
                mode,
                dynamic_filters: dynamic,
                projection,
            }
        } else {
            HashJoinSpec {
                build: rp,
                probe: lp,
                build_keys: rkeys,
                probe_keys: lkeys,
                filter,
                build_is_left: false,
                mode,
                dynamic_filters: dynamic,
                projection,
            }
        };
        Ok(Arc::new(HashJoinExec::try_new(spec)?))
    }
}
