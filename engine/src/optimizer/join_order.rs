//! Inner-join ordering: a tree of inner joins is flattened into its inputs (leaves) and
//! predicates, and rebuilt.
//!
//! 1. A predicate over one leaf goes into that leaf (with single-leaf filters derived from
//!    ORs that span leaves).
//! 2. **Reducers.** A smaller input that cuts another input to at most
//!    [`REDUCER_SHARE`] of its estimated rows is joined into it first, over the columns the
//!    query's equalities make equal, directly or through a chain (`a = b AND b = c` makes
//!    `a = c`). The largest input takes no part: it is where the rebuilt tree starts. In
//!    TPC-H q9 the 800 k-row `partsupp` never meets `part` in the text (both meet
//!    `lineitem`), yet `partsupp ⋈ part` keeps 43 k rows, so `lineitem` probes that
//!    instead of building all of `partsupp`. A reduced input can reduce another in turn.
//! 3. **Greedy order.** The largest input starts; each next input is the connected one
//!    whose join has the fewest estimated rows, so comma-FROM lists never become accidental
//!    cross products.
//!
//! Every join drops an equality that the equalities already applied beneath it imply (with
//! `partsupp ⋈ part` on `ps_partkey = p_partkey`, `l_partkey = ps_partkey` makes
//! `l_partkey = p_partkey` a second, redundant key).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{conjunction, BinaryOp, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::optimizer::estimate::estimate_rows;
use crate::optimizer::pushdown::{factor_or, or_branch_terms, push, with_filter};

/// An input is joined with a reducer first when that keeps at most this share of its rows.
pub const REDUCER_SHARE: f64 = 0.25;

/// A column of one leaf: (leaf, field index).
type ColId = (usize, usize);

/// Leaves joined so far, with the column equalities applied inside them.
struct Item {
    leaves: Vec<usize>,
    plan: Arc<LogicalPlan>,
    applied: Vec<(ColId, ColId)>,
}

/// Equivalence classes of columns (union-find).
#[derive(Default)]
struct Classes {
    parent: HashMap<ColId, ColId>,
}

impl Classes {
    fn find(&mut self, c: ColId) -> ColId {
        match self.parent.get(&c).copied() {
            Some(p) if p != c => {
                let root = self.find(p);
                self.parent.insert(c, root);
                root
            }
            _ => c,
        }
    }

    /// Puts `a` and `b` in one class; false when they already were.
    fn union(&mut self, a: ColId, b: ColId) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        self.parent.insert(ra, rb);
        self.parent.entry(rb).or_insert(rb);
        true
    }
}

/// Collects the leaves and predicates of a tree of inner joins.
fn flatten(plan: &Arc<LogicalPlan>, leaves: &mut Vec<Arc<LogicalPlan>>, preds: &mut Vec<Expr>) {
    match plan.as_ref() {
        LogicalPlan::Join {
            left,
            right,
            join_type: JoinType::Inner,
            on,
            filter,
            ..
        } => {
            flatten(left, leaves, preds);
            flatten(right, leaves, preds);
            for (a, b) in on {
                preds.push(a.clone().eq(b.clone()));
            }
            if let Some(f) = filter {
                factor_or(f.clone(), preds);
            }
        }
        LogicalPlan::Filter { input, predicate }
            if matches!(
                input.as_ref(),
                LogicalPlan::Join {
                    join_type: JoinType::Inner,
                    ..
                }
            ) =>
        {
            factor_or(predicate.clone(), preds);
            flatten(input, leaves, preds);
        }
        _ => leaves.push(plan.clone()),
    }
}

/// Which leaves a predicate touches.
fn leaves_of(p: &Expr, leaves: &[Arc<LogicalPlan>]) -> Vec<usize> {
    let mut out = Vec::new();
    for c in p.columns() {
        for (i, l) in leaves.iter().enumerate() {
            if matches!(l.schema().find(&c), Ok(Some(_))) && !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// From `(a1 AND b1) OR (a2 AND b2)` where `a*` touch only leaf A, derives `a1 OR a2` for A
/// (implied by the original, which stays). TPC-H q7's nation pair and q19's part/lineitem
/// conditions filter their scans this way instead of after the joins.
fn derive_from_or(p: &Expr, leaves: &[Arc<LogicalPlan>]) -> Vec<(usize, Expr)> {
    let Some(terms) = or_branch_terms(p) else {
        return vec![];
    };
    let mut out = Vec::new();
    for i in 0..leaves.len() {
        let per_branch: Option<Vec<Expr>> = terms
            .iter()
            .map(|t| conjunction(t.iter().filter(|x| leaves_of(x, leaves) == [i]).cloned()))
            .collect();
        if let Some(parts) = per_branch {
            if let Some(derived) = parts.into_iter().reduce(|a, b| a.or(b)) {
                out.push((i, derived));
            }
        }
    }
    out
}

fn is_equi(p: &Expr) -> bool {
    matches!(p, Expr::Binary { op: BinaryOp::Eq, left, right } if !left.columns().is_empty() && !right.columns().is_empty())
}

/// The one leaf column `e` names, when it is a column of exactly one leaf.
fn col_id(e: &Expr, leaves: &[Arc<LogicalPlan>]) -> Option<ColId> {
    let Expr::Column(c) = e else {
        return None;
    };
    let mut found = None;
    for (i, l) in leaves.iter().enumerate() {
        if let Ok(Some(f)) = l.schema().find(c) {
            if found.is_some() {
                return None;
            }
            found = Some((i, f));
        }
    }
    found
}

/// The columns of `a = b` when both are leaf columns of one type on different leaves.
fn column_pair(p: &Expr, leaves: &[Arc<LogicalPlan>]) -> Option<(ColId, ColId)> {
    let Expr::Binary {
        op: BinaryOp::Eq,
        left,
        right,
    } = p
    else {
        return None;
    };
    let (a, b) = (col_id(left, leaves)?, col_id(right, leaves)?);
    let ty = |c: ColId| leaves[c.0].schema().field(c.1).field.data_type().clone();
    (a.0 != b.0 && ty(a) == ty(b)).then_some((a, b))
}

/// The expression naming leaf column `c`.
fn column_expr(c: ColId, leaves: &[Arc<LogicalPlan>]) -> Expr {
    let f = leaves[c.0].schema().field(c.1);
    Expr::Column(Column {
        relation: f.qualifier.clone(),
        name: f.field.name().clone(),
    })
}

/// Joins `x` (left) with `y` (right) on `preds`, dropping the equalities that those
/// already applied in `x` and `y` (or earlier in `preds`) imply.
fn join_items(x: &Item, y: &Item, preds: Vec<Expr>, leaves: &[Arc<LogicalPlan>]) -> Result<Item> {
    let mut applied: Vec<(ColId, ColId)> = x.applied.iter().chain(&y.applied).copied().collect();
    let mut known = Classes::default();
    for (a, b) in &applied {
        known.union(*a, *b);
    }
    let mut kept = Vec::new();
    for p in preds {
        if let Some((a, b)) = column_pair(&p, leaves) {
            if !known.union(a, b) {
                continue;
            }
            applied.push((a, b));
        }
        kept.push(p);
    }
    let (on, filter) = match conjunction(kept) {
        Some(c) => crate::sql::planner::split_join_condition(c, x.plan.schema(), y.plan.schema()),
        None => (vec![], None),
    };
    let plan = Arc::new(LogicalPlan::join(
        x.plan.clone(),
        y.plan.clone(),
        JoinType::Inner,
        on,
        filter,
        false,
    )?);
    let mut members = x.leaves.clone();
    members.extend(&y.leaves);
    Ok(Item {
        leaves: members,
        plan,
        applied,
    })
}

/// Splits `preds` into those over the leaves of `members` alone and the rest.
fn over(preds: &[Expr], members: &[usize], leaves: &[Arc<LogicalPlan>]) -> (Vec<Expr>, Vec<Expr>) {
    preds
        .iter()
        .cloned()
        .partition(|p| leaves_of(p, leaves).iter().all(|x| members.contains(x)))
}

/// Joins each reducer into the input it reduces (step 2 of the module note), strongest
/// reduction first, until no pair qualifies. `start` never takes part.
fn join_reducers(
    items: &mut Vec<Item>,
    start: usize,
    remaining: &mut Vec<Expr>,
    leaves: &[Arc<LogicalPlan>],
) -> Result<()> {
    let mut classes = Classes::default();
    let mut columns = Vec::new();
    for (a, b) in remaining.iter().filter_map(|p| column_pair(p, leaves)) {
        classes.union(a, b);
        columns.extend([a, b]);
    }
    columns.sort_unstable();
    columns.dedup();
    loop {
        let rows: Vec<f64> = items.iter().map(|i| estimate_rows(&i.plan)).collect();
        let mut best: Option<(f64, usize, usize, Item, Vec<Expr>)> = None;
        for r in 0..items.len() {
            for s in 0..items.len() {
                if r == s
                    || rows[s] >= rows[r]
                    || [r, s].iter().any(|&i| items[i].leaves.contains(&start))
                {
                    continue;
                }
                // One key per class with a column on each side.
                let mut keys = Vec::new();
                let mut seen = Vec::new();
                for &a in columns.iter().filter(|c| items[r].leaves.contains(&c.0)) {
                    let root = classes.find(a);
                    let partner = columns
                        .iter()
                        .find(|c| items[s].leaves.contains(&c.0) && classes.find(**c) == root);
                    if let Some(&b) = partner.filter(|_| !seen.contains(&root)) {
                        seen.push(root);
                        keys.push(column_expr(a, leaves).eq(column_expr(b, leaves)));
                    }
                }
                if keys.is_empty() {
                    continue;
                }
                let mut members = items[r].leaves.clone();
                members.extend(&items[s].leaves);
                let (now, later) = over(remaining, &members, leaves);
                keys.extend(now);
                let joined = join_items(&items[r], &items[s], keys, leaves)?;
                let share = estimate_rows(&joined.plan) / rows[r].max(1.0);
                if share <= REDUCER_SHARE && best.as_ref().is_none_or(|b| share < b.0) {
                    best = Some((share, r, s, joined, later));
                }
            }
        }
        let Some((_, r, s, joined, later)) = best else {
            return Ok(());
        };
        *remaining = later;
        items[r] = joined;
        items.remove(s);
    }
}

/// Rebuilds the inner-join tree `plan` (with `extra` predicates from above it) in the
/// order of the module note, with the original column order.
pub(super) fn reorder_inner(plan: &Arc<LogicalPlan>, extra: Vec<Expr>) -> Result<Arc<LogicalPlan>> {
    let original = plan.schema().clone();
    let mut leaves = Vec::new();
    let mut preds = extra;
    flatten(plan, &mut leaves, &mut preds);
    // Single-leaf predicates go into their leaf.
    let mut local: Vec<Vec<Expr>> = vec![vec![]; leaves.len()];
    let mut multi = Vec::new();
    let mut constant = Vec::new();
    for p in preds {
        match leaves_of(&p, &leaves).as_slice() {
            [] => constant.push(p),
            [one] => local[*one].push(p),
            _ => multi.push(p),
        }
    }
    for p in &multi {
        for (i, derived) in derive_from_or(p, &leaves) {
            local[i].push(derived);
        }
    }
    let mut items = Vec::new();
    for (i, (l, ps)) in leaves.iter().zip(local).enumerate() {
        items.push(Item {
            leaves: vec![i],
            plan: push(l.clone(), ps)?,
            applied: vec![],
        });
    }
    let est: Vec<f64> = items.iter().map(|i| estimate_rows(&i.plan)).collect();
    let start = (0..items.len())
        .max_by(|&a, &b| est[a].total_cmp(&est[b]))
        .ok_or_else(|| SluiceError::plan("join without inputs"))?;
    let mut remaining = multi;
    join_reducers(&mut items, start, &mut remaining, &leaves)?;
    let first = items
        .iter()
        .position(|i| i.leaves.contains(&start))
        .ok_or_else(|| SluiceError::plan("internal: join start lost"))?;
    let mut current = items.remove(first);
    while !items.is_empty() {
        // Prefer connected inputs; among them the one that shrinks (or grows) the result least.
        let within = |p: &Expr, item: &Item| {
            leaves_of(p, &leaves)
                .iter()
                .all(|x| current.leaves.contains(x) || item.leaves.contains(x))
        };
        let connected: Vec<bool> = items
            .iter()
            .map(|item| {
                remaining.iter().any(|p| {
                    is_equi(p)
                        && leaves_of(p, &leaves)
                            .iter()
                            .any(|x| item.leaves.contains(x))
                        && within(p, item)
                })
            })
            .collect();
        let any_connected = connected.iter().any(|c| *c);
        // Each candidate joined next, with the predicates that join can apply; the one
        // with the fewest estimated rows wins (statistics make a foreign key join keep
        // the share of the keys it matches).
        let mut best: Option<(f64, f64, usize, Item, Vec<Expr>)> = None;
        for (k, item) in items.iter().enumerate() {
            if any_connected && !connected[k] {
                continue;
            }
            let (now, later): (Vec<Expr>, Vec<Expr>) =
                remaining.iter().cloned().partition(|p| within(p, item));
            let joined = join_items(&current, item, now, &leaves)?;
            let rows = estimate_rows(&joined.plan);
            let size = estimate_rows(&item.plan);
            let better = best
                .as_ref()
                .is_none_or(|(r, s, ..)| rows.total_cmp(r).then(size.total_cmp(s)).is_lt());
            if better {
                best = Some((rows, size, k, joined, later));
            }
        }
        let (.., next, joined, later) =
            best.ok_or_else(|| SluiceError::plan("join ordering found no input"))?;
        items.remove(next);
        remaining = later;
        current = joined;
    }
    let current = with_filter(current.plan, remaining)?;
    let current = with_filter(current, constant)?;
    // Restore the original column order.
    if current.schema().fields() == original.fields() {
        return Ok(current);
    }
    let exprs: Vec<Expr> = original
        .fields()
        .iter()
        .map(|f| {
            Expr::Column(Column {
                relation: f.qualifier.clone(),
                name: f.field.name().clone(),
            })
        })
        .collect();
    Ok(Arc::new(LogicalPlan::project(current, exprs)?))
}
