//! A correlated aggregate subquery over tables the outer query joins too, computed over
//! the outer query's own rows (TPC-H q2 and q17):
//!
//! ```sql
//! SELECT .. FROM part, partsupp, supplier WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey
//!   AND p_size = 15 AND ps_supplycost = (SELECT min(ps_supplycost) FROM partsupp, supplier
//!                                        WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey)
//! ```
//!
//! Decorrelated the usual way (`subquery`), the subquery is grouped by its correlation key
//! and joined back, and `partsupp ⋈ supplier` is computed twice. Here the outer rows `R`
//! (the FROM list under every WHERE term but the comparison) are computed once: the
//! subquery's value is the aggregate of `R` grouped by the correlation key, joined back to
//! `R`. Both occurrences of `R` are one subtree, so the physical planner computes it once
//! (`optimizer::repeated`).
//!
//! Why the answer is the same. Call the subquery's tables common and the outer query's
//! other tables outer-only. When
//! - every common table appears once in each FROM list (under any name: the subquery's
//!   names for them are replaced by the outer query's),
//! - every subquery WHERE term is also an outer WHERE term,
//! - every correlation predicate is `outer = inner`, and either `outer` is over
//!   outer-only tables and the predicate is also an outer WHERE term (with the common
//!   tables in the outer query's scope), or `outer` is `inner`'s own column in the outer
//!   query (`e2.dept = e.dept`: true on every row with a key, and the join back drops
//!   rows with a NULL key, whose subquery is empty),
//! - every other outer WHERE term reads outer-only tables only,
//!
//! then the rows of `R` with key `k` are `P(k) × C(k)`: the outer-only rows with key `k`
//! (one empty row when there are no outer-only tables) times exactly the rows the
//! subquery aggregates for `k`. Each row of `C(k)` appears
//! `|P(k)|` times, which MIN, MAX and AVG do not see; so only those aggregates qualify
//! (`COUNT` and `SUM` would be multiplied). `P(k)` is never empty for a key an outer row
//! has, and the subquery's NULL for an empty `C(k)` only meets outer rows that the
//! correlation term already dropped.

use std::sync::Arc;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{conjunction, split_conjunction, AggFunc, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::optimizer::repeated::{subtree_key, ShareKey};
use crate::sql::expr::PendingJoin;

/// The WHERE of a SELECT over `from` with the joins its subqueries asked for (`pending`)
/// and its other terms (`kept`), rewritten to compute the outer rows once, when the one
/// subquery qualifies (see the module docs); `None` otherwise.
pub fn rewrite(
    from: &Arc<LogicalPlan>,
    pending: &[PendingJoin],
    kept: &[Expr],
) -> Result<Option<Arc<LogicalPlan>>> {
    let [sub] = pending else {
        return Ok(None);
    };
    let Some(shape) = Subquery::of(sub) else {
        return Ok(None);
    };
    let (Some(outer), Some(inner)) = (tables(from), tables(&shape.from)) else {
        return Ok(None);
    };
    let Some(Matched {
        outer_only,
        common,
        names,
    }) = match_tables(&outer, &inner)
    else {
        return Ok(None);
    };
    let shape = shape.renamed(&names)?;
    let in_outer_only =
        |e: &Expr| covered(e, &outer_only) && !e.any(&mut |x| matches!(x, Expr::OuterColumn(_)));
    // The subquery's columns must name their table: unqualified, one could mean an outer
    // table's column once both are in R.
    let in_common =
        |e: &Expr| covered(e, &common) && e.columns().iter().all(|c| c.relation.is_some());
    // A key that is the same column on both sides (`e2.dept = e.dept` once `e2` is `e`)
    // holds on every row of R but those with a NULL key, which the join back drops as the
    // subquery would: it needs no outer term.
    let same_column = |(o, i): &(Expr, Expr)| o == i;
    let inner_exprs = shape.terms.iter().chain(&shape.group_by).chain(&shape.aggs);
    if !shape
        .keys
        .iter()
        .all(|k| in_common(&k.1) && (same_column(k) || in_outer_only(&k.0)))
        || !inner_exprs.into_iter().all(in_common)
    {
        return Ok(None);
    }

    let mut inner_terms_seen = vec![false; shape.terms.len()];
    let mut keys_seen: Vec<bool> = shape.keys.iter().map(same_column).collect();
    let (mut rest, mut compare) = (Vec::new(), Vec::new());
    for t in kept {
        if reads_relation(t, &shape.alias) {
            compare.push(t.clone());
            continue;
        }
        rest.push(t.clone());
        if let Some(i) = shape.terms.iter().position(|x| x == t) {
            inner_terms_seen[i] = true;
        } else if let Some(i) = shape.keys.iter().position(|k| is_equality(t, k)) {
            keys_seen[i] = true;
        } else if !in_outer_only(t) {
            return Ok(None);
        }
    }
    let Some(predicate) = conjunction(compare) else {
        return Ok(None);
    };
    if inner_terms_seen.contains(&false) || keys_seen.contains(&false) {
        return Ok(None);
    }

    // R, under a projection so that join reordering keeps it whole: both of its
    // occurrences must stay one subtree.
    let mut rows = from.clone();
    if let Some(p) = conjunction(rest) {
        rows = Arc::new(LogicalPlan::filter(rows, p)?);
    }
    let columns = rows
        .schema()
        .fields()
        .iter()
        .map(|f| Expr::Column(f.column()))
        .collect();
    let rows = Arc::new(LogicalPlan::project(rows, columns)?);
    let grouped = Arc::new(LogicalPlan::aggregate(
        rows.clone(),
        shape.group_by,
        shape.aggs,
    )?);
    let value = Arc::new(LogicalPlan::project(grouped, shape.outputs)?);
    let value = Arc::new(LogicalPlan::alias(value, &shape.alias));
    let joined = Arc::new(LogicalPlan::join(
        rows,
        value,
        JoinType::Inner,
        sub.on.clone(),
        None,
        false,
    )?);
    Ok(Some(Arc::new(LogicalPlan::filter(joined, predicate)?)))
}

/// The parts of a pending left join of a correlated, aggregated scalar subquery:
/// `Alias(Projection(Aggregate(Filter?(FROM))))`.
struct Subquery {
    alias: String,
    outputs: Vec<Expr>,
    group_by: Vec<Expr>,
    aggs: Vec<Expr>,
    /// Its WHERE terms.
    terms: Vec<Expr>,
    from: Arc<LogicalPlan>,
    /// Correlation keys: (outer expression, the subquery's expression).
    keys: Vec<(Expr, Expr)>,
}

impl Subquery {
    fn of(p: &PendingJoin) -> Option<Self> {
        if p.join_type != JoinType::Left || p.filter.is_some() || p.null_aware || p.on.is_empty() {
            return None;
        }
        let LogicalPlan::Alias { input, alias, .. } = p.plan.as_ref() else {
            return None;
        };
        let LogicalPlan::Projection { input, exprs, .. } = input.as_ref() else {
            return None;
        };
        let LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
            ..
        } = input.as_ref()
        else {
            return None;
        };
        if !aggs.iter().all(ignores_repeats) {
            return None;
        }
        let (terms, from) = match input.as_ref() {
            LogicalPlan::Filter { input, predicate } => {
                let mut terms = Vec::new();
                split_conjunction(predicate.clone(), &mut terms);
                (terms, input.clone())
            }
            _ => (vec![], input.clone()),
        };
        // Each key joins an output of the projection that is a GROUP BY expression.
        let mut keys = Vec::new();
        for (outer, key) in &p.on {
            let Expr::Column(c) = key else { return None };
            let inner = exprs.iter().find_map(|e| match e {
                Expr::Alias(x, name) if *name == c.name => Some(x.as_ref().clone()),
                _ => None,
            })?;
            if !group_by.contains(&inner) {
                return None;
            }
            keys.push((outer.clone(), inner));
        }
        if keys.len() != group_by.len() {
            return None;
        }
        Some(Self {
            alias: alias.clone(),
            outputs: exprs.clone(),
            group_by: group_by.clone(),
            aggs: aggs.clone(),
            terms,
            from,
            keys,
        })
    }

    /// The subquery with its tables called by their outer names (`names`: inner name,
    /// outer name). Aggregates keep their output names, which the outputs refer to.
    fn renamed(self, names: &[(String, String)]) -> Result<Self> {
        if names.iter().all(|(i, o)| i == o) {
            return Ok(self);
        }
        let rename = |e: &Expr| {
            e.clone().transform_up(&mut |x| {
                Ok::<_, SluiceError>(match x {
                    Expr::Column(Column {
                        relation: Some(r),
                        name,
                    }) => {
                        let to = names.iter().find(|(i, _)| *i == r).map(|(_, o)| o);
                        Expr::Column(Column {
                            relation: Some(to.cloned().unwrap_or(r)),
                            name,
                        })
                    }
                    other => other,
                })
            })
        };
        let all = |v: &[Expr]| v.iter().map(rename).collect::<Result<Vec<_>>>();
        let aggs = self
            .aggs
            .iter()
            .map(|a| {
                let r = rename(a)?;
                let name = a.output_name();
                Ok(if r.output_name() == name {
                    r
                } else {
                    r.alias(&name)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let keys = self
            .keys
            .iter()
            .map(|(o, i)| Ok((o.clone(), rename(i)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            outputs: all(&self.outputs)?,
            group_by: all(&self.group_by)?,
            aggs,
            terms: all(&self.terms)?,
            keys,
            ..self
        })
    }
}

/// True for an aggregate whose value does not change when every input row is repeated
/// the same number of times.
fn ignores_repeats(e: &Expr) -> bool {
    match e {
        Expr::Alias(x, _) => ignores_repeats(x),
        Expr::Aggregate { func, .. } => matches!(func, AggFunc::Min | AggFunc::Max | AggFunc::Avg),
        _ => false,
    }
}

/// One table of a comma-separated FROM list.
struct Table {
    /// Which table it is: the subtree key of its scan, without an alias.
    key: ShareKey,
    /// The name its columns go by (its alias, or the table's name).
    name: String,
    plan: Arc<LogicalPlan>,
}

/// The tables a FROM list joins without conditions (a comma list), when all are scans of
/// bounded tables (a stream is never computed once for two readers).
fn tables(plan: &Arc<LogicalPlan>) -> Option<Vec<Table>> {
    let table = |scan: &LogicalPlan, name: &str| {
        Some(vec![Table {
            key: subtree_key(scan)?,
            name: name.to_string(),
            plan: plan.clone(),
        }])
    };
    match plan.as_ref() {
        LogicalPlan::Join {
            left,
            right,
            join_type: JoinType::Inner,
            on,
            filter: None,
            ..
        } if on.is_empty() => {
            let mut out = tables(left)?;
            out.extend(tables(right)?);
            Some(out)
        }
        LogicalPlan::Scan { table: name, .. } => table(plan, name),
        LogicalPlan::Alias { input, alias, .. }
            if matches!(input.as_ref(), LogicalPlan::Scan { .. }) =>
        {
            table(input, alias)
        }
        _ => None,
    }
}

/// The subquery's tables found among the outer query's.
struct Matched<'a> {
    /// The outer tables the subquery does not read (perhaps none).
    outer_only: Vec<&'a Table>,
    /// The outer tables it does read.
    common: Vec<&'a Table>,
    /// (subquery name, outer name) of each of those.
    names: Vec<(String, String)>,
}

/// The match when each subquery table is one outer table and no table or name repeats
/// in either list.
fn match_tables<'a>(outer: &'a [Table], inner: &[Table]) -> Option<Matched<'a>> {
    let distinct = |list: &[Table]| {
        list.iter()
            .enumerate()
            .all(|(i, t)| list[..i].iter().all(|u| u.key != t.key && u.name != t.name))
    };
    if !distinct(outer) || !distinct(inner) {
        return None;
    }
    let mut names = Vec::new();
    let mut common = Vec::new();
    for t in inner {
        let o = outer.iter().find(|o| o.key == t.key)?;
        names.push((t.name.clone(), o.name.clone()));
        common.push(o);
    }
    let rest: Vec<&Table> = outer
        .iter()
        .filter(|o| !inner.iter().any(|t| t.key == o.key))
        .collect();
    Some(Matched {
        outer_only: rest,
        common,
        names,
    })
}

/// True when every column of `e` is a column of one of `tables`.
fn covered(e: &Expr, tables: &[&Table]) -> bool {
    e.columns().iter().all(|c| {
        tables
            .iter()
            .any(|t| matches!(t.plan.schema().find(c), Ok(Some(_))))
    })
}

/// True when `e` reads a column of the relation named `alias`.
fn reads_relation(e: &Expr, alias: &str) -> bool {
    e.columns()
        .iter()
        .any(|c: &Column| c.relation.as_deref() == Some(alias))
}

/// True when `e` is `a = b` or `b = a` for the pair `(a, b)`.
fn is_equality(e: &Expr, (a, b): &(Expr, Expr)) -> bool {
    *e == a.clone().eq(b.clone()) || *e == b.clone().eq(a.clone())
}
