//! The accumulators of one aggregation, and the passes over raw rows they share.
//!
//! TPC-H q1 asks for SUM and AVG of the same columns and for COUNT(*). With one
//! accumulator per aggregate that is eleven passes over every batch (an AVG is a sum and
//! a count). Over raw rows, [`GroupAccs::Shared`] sums each argument once, whatever asks
//! for its sum, and takes every count from one count of rows per group: COUNT(x) and
//! AVG(x)'s count are the rows minus x's NULLs, and those are only counted in batches
//! where x has some. q1 then makes six passes.
//!
//! Merging partial states (the final phase, and the buckets a spilled aggregation reads
//! back) keeps one accumulator per aggregate ([`GroupAccs::Each`]); so do DISTINCT
//! aggregates, which keep their own value sets.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow::buffer::BooleanBuffer;

use crate::error::{Result, SluiceError};
use crate::logical::expr::AggFunc;
use crate::physical::accumulator::{create_accumulator, state_types, Accumulator, FEW_GROUPS};
use crate::physical::aggregate::AggSpec;
use crate::physical::expr::PhysExpr;

/// The accumulators of one aggregation.
pub enum GroupAccs {
    /// One accumulator per aggregate; `merging`: the input rows are partial states.
    Each {
        /// The accumulators, in the aggregates' order.
        accs: Vec<Box<dyn Accumulator>>,
        /// Whether rows are merged as states rather than added as values.
        merging: bool,
    },
    /// Non-DISTINCT aggregates over raw rows, sharing sums and counts.
    Shared(Shared),
}

impl GroupAccs {
    /// Accumulators for `aggs` over raw rows: shared passes unless an aggregate is DISTINCT.
    pub fn for_rows(aggs: &[AggSpec]) -> Result<Self> {
        if aggs.iter().any(|a| a.distinct) {
            return Self::each(aggs, false);
        }
        Ok(Self::Shared(Shared::new(aggs)?))
    }

    /// One accumulator per aggregate, merging partial states.
    pub fn for_states(aggs: &[AggSpec]) -> Result<Self> {
        Self::each(aggs, true)
    }

    fn each(aggs: &[AggSpec], merging: bool) -> Result<Self> {
        let accs = aggs
            .iter()
            .map(|a| create_accumulator(a.func, a.distinct, a.input_type.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::Each { accs, merging })
    }

    /// Adds (or merges) `batch`'s rows, row `i` into group `groups[i]` of `n`; `aggs` are
    /// the aggregates these accumulators were made for, with arguments over `batch`.
    /// With a selection `sel`, only the rows where it is set are added; the others are
    /// parked in group `n` (see [`Accumulator::update_masked`]).
    pub fn update(
        &mut self,
        aggs: &[AggSpec],
        batch: &RecordBatch,
        groups: &[u32],
        n: usize,
        sel: Option<&BooleanBuffer>,
    ) -> Result<()> {
        match self {
            Self::Each { merging: true, .. } if sel.is_some() => Err(SluiceError::exec(
                "aggregate: partial states cannot be merged through a selection",
            )),
            Self::Each { accs, merging } => {
                for (spec, acc) in aggs.iter().zip(accs.iter_mut()) {
                    let vals = spec
                        .args
                        .iter()
                        .map(|e| e.evaluate_array(batch))
                        .collect::<Result<Vec<_>>>()?;
                    if *merging {
                        acc.merge(&vals, groups, n)?;
                    } else {
                        acc.update_selected(&vals, groups, n, sel)?;
                    }
                }
                Ok(())
            }
            Self::Shared(s) => s.update(batch, groups, n, sel),
        }
    }

    /// Whether [`GroupAccs::update`] takes a selection cheaply: shared passes do; DISTINCT
    /// value sets and merged states are better given the selected rows alone.
    pub fn takes_selection(&self) -> bool {
        matches!(self, Self::Shared(_))
    }

    /// Merges state columns laid out as [`GroupAccs::state`] writes them.
    pub fn merge_states(
        &mut self,
        aggs: &[AggSpec],
        states: &[ArrayRef],
        groups: &[u32],
        n: usize,
    ) -> Result<()> {
        let Self::Each { accs, .. } = self else {
            return Err(SluiceError::exec(
                "aggregate: shared accumulators cannot merge states",
            ));
        };
        let mut off = 0;
        for (spec, acc) in aggs.iter().zip(accs.iter_mut()) {
            let w = state_types(spec.func, spec.input_type.as_ref())?.len();
            let cols = states.get(off..off + w).ok_or_else(|| {
                SluiceError::exec(format!("aggregate: {} state columns missing", spec.func))
            })?;
            acc.merge(cols, groups, n)?;
            off += w;
        }
        Ok(())
    }

    /// Every aggregate's partial state columns, one row per group.
    pub fn state(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        match self {
            Self::Each { accs, .. } => {
                let mut cols = vec![];
                for acc in accs {
                    cols.extend(acc.state(n)?);
                }
                Ok(cols)
            }
            Self::Shared(s) => Ok(s.finish(n)?.into_iter().flatten().collect()),
        }
    }

    /// Every aggregate's final value, one row per group.
    pub fn evaluate(&mut self, aggs: &[AggSpec], n: usize) -> Result<Vec<ArrayRef>> {
        match self {
            Self::Each { accs, .. } => accs.iter_mut().map(|a| a.evaluate(n)).collect(),
            Self::Shared(s) => {
                let states = s.finish(n)?;
                let has_avg = aggs.iter().any(|a| a.func == AggFunc::Avg);
                let ids: Vec<u32> = if has_avg {
                    (0..n as u32).collect()
                } else {
                    vec![]
                };
                aggs.iter()
                    .zip(states)
                    .map(|(spec, mut state)| {
                        // A one-column state is the value (COUNT, SUM, MIN, MAX).
                        if spec.func != AggFunc::Avg && state.len() == 1 {
                            return Ok(state.remove(0));
                        }
                        // AVG divides its sum by its count in a fresh accumulator.
                        let mut acc =
                            create_accumulator(spec.func, false, spec.input_type.as_ref())?;
                        acc.merge(&state, &ids, n)?;
                        acc.evaluate(n)
                    })
                    .collect()
            }
        }
    }

    /// Bytes held beyond a fixed-size state per group and aggregate.
    pub fn extra_memory(&self) -> usize {
        match self {
            Self::Each { accs, .. } => accs.iter().map(|a| a.extra_memory()).sum(),
            Self::Shared(s) => s.nulls.iter().flatten().map(|v| v.capacity() * 8).sum(),
        }
    }
}

/// Adds one to `rows[g]` for each `g` in `groups`. For a few groups, through four
/// interleaved lanes of counts, so that rows of one group in a row do not wait on each
/// other's increment.
fn count_rows(rows: &mut [i64], groups: &[u32]) {
    let n = rows.len();
    if n > FEW_GROUPS {
        for &g in groups {
            rows[g as usize] += 1;
        }
        return;
    }
    let mut lanes = vec![0i64; 4 * n];
    for (i, &g) in groups.iter().enumerate() {
        lanes[(i & 3) * n + g as usize] += 1;
    }
    for lane in lanes.chunks_exact(n) {
        for (r, c) in rows.iter_mut().zip(lane) {
            *r += c;
        }
    }
}

/// Where an aggregate's state comes from in [`Shared`].
#[derive(Debug, Clone, Copy)]
enum Source {
    /// COUNT(*), or COUNT(arg): the rows (minus the argument's NULLs).
    Count(Option<usize>),
    /// SUM: a sum.
    Sum(usize),
    /// AVG: a sum, and the rows minus the argument's NULLs.
    Avg(usize, usize),
    /// Anything else (MIN, MAX): its own accumulator over its arguments.
    Own(usize),
}

/// Non-DISTINCT aggregates over raw rows, each distinct argument evaluated, summed and
/// NULL-counted once.
pub struct Shared {
    /// The distinct arguments, by their text (which names column positions).
    args: Vec<PhysExpr>,
    sources: Vec<Source>,
    /// Sums: an accumulator and the argument it sums.
    sums: Vec<(Box<dyn Accumulator>, usize)>,
    /// Rows per group, when something counts.
    rows: Option<Vec<i64>>,
    /// NULLs per group of each counted argument (empty until a batch has one).
    nulls: Vec<Option<Vec<i64>>>,
    /// MIN, MAX and the like, with their arguments.
    own: Vec<(Box<dyn Accumulator>, Vec<usize>)>,
}

impl Shared {
    fn new(aggs: &[AggSpec]) -> Result<Self> {
        let mut s = Self {
            args: vec![],
            sources: vec![],
            sums: vec![],
            rows: None,
            nulls: vec![],
            own: vec![],
        };
        // The arguments whose NULLs are counted (COUNT's and AVG's).
        let mut counted = vec![];
        for spec in aggs {
            let args: Vec<usize> = spec.args.iter().map(|e| s.arg(e)).collect();
            let source = match (spec.func, args.as_slice()) {
                (AggFunc::Count, []) => Source::Count(None),
                (AggFunc::Count, [a]) => Source::Count(Some(*a)),
                (AggFunc::Sum, [a]) => Source::Sum(s.sum(spec, *a)?),
                (AggFunc::Avg, [a]) => Source::Avg(s.sum(spec, *a)?, *a),
                _ => {
                    let acc = create_accumulator(spec.func, false, spec.input_type.as_ref())?;
                    s.own.push((acc, args.clone()));
                    Source::Own(s.own.len() - 1)
                }
            };
            if matches!(source, Source::Count(_) | Source::Avg(..)) {
                s.rows = Some(vec![]);
                counted.extend(args);
            }
            s.sources.push(source);
        }
        s.nulls = (0..s.args.len())
            .map(|a| counted.contains(&a).then(Vec::new))
            .collect();
        Ok(s)
    }

    /// The position of argument `e`, added if new.
    fn arg(&mut self, e: &PhysExpr) -> usize {
        let text = e.to_string();
        match self.args.iter().position(|a| a.to_string() == text) {
            Some(i) => i,
            None => {
                self.args.push(e.clone());
                self.args.len() - 1
            }
        }
    }

    /// The sum of argument `arg` (AVG's sum has SUM's type), added if new.
    fn sum(&mut self, spec: &AggSpec, arg: usize) -> Result<usize> {
        if let Some(i) = self.sums.iter().position(|(_, a)| *a == arg) {
            return Ok(i);
        }
        let acc = create_accumulator(AggFunc::Sum, false, spec.input_type.as_ref())?;
        self.sums.push((acc, arg));
        Ok(self.sums.len() - 1)
    }

    fn update(
        &mut self,
        batch: &RecordBatch,
        groups: &[u32],
        n: usize,
        sel: Option<&BooleanBuffer>,
    ) -> Result<()> {
        let vals = self
            .args
            .iter()
            .map(|e| e.evaluate_array(batch))
            .collect::<Result<Vec<_>>>()?;
        // Parked rows count in a slot past the groups, dropped after the batch.
        let slots = n + usize::from(sel.is_some());
        if let Some(rows) = &mut self.rows {
            rows.resize(slots, 0);
            count_rows(rows, groups);
            rows.truncate(n);
        }
        for (v, nulls) in vals.iter().zip(&mut self.nulls) {
            // Logical NULLs: a NullArray (COUNT(NULL)) has no validity buffer.
            let (Some(nulls), Some(mask)) =
                (nulls, v.logical_nulls().filter(|m| m.null_count() > 0))
            else {
                continue;
            };
            nulls.resize(slots, 0);
            for (i, &g) in groups.iter().enumerate() {
                if mask.is_null(i) {
                    nulls[g as usize] += 1;
                }
            }
            nulls.truncate(n);
        }
        for (acc, a) in &mut self.sums {
            acc.update_selected(std::slice::from_ref(&vals[*a]), groups, n, sel)?;
        }
        for (acc, args) in &mut self.own {
            let v: Vec<ArrayRef> = args.iter().map(|a| vals[*a].clone()).collect();
            acc.update_selected(&v, groups, n, sel)?;
        }
        Ok(())
    }

    /// Each aggregate's partial state columns (as [`state_types`] gives them); empties the
    /// accumulators.
    fn finish(&mut self, n: usize) -> Result<Vec<Vec<ArrayRef>>> {
        let rows = match &mut self.rows {
            Some(r) => {
                r.resize(n, 0);
                std::mem::take(r)
            }
            None => vec![],
        };
        let counts = |arg: Option<usize>| -> ArrayRef {
            let nulls = arg
                .and_then(|a| self.nulls[a].as_ref())
                .filter(|v| !v.is_empty());
            Arc::new(match nulls {
                None => Int64Array::from(rows.clone()),
                Some(nulls) => Int64Array::from_iter_values(
                    rows.iter()
                        .enumerate()
                        .map(|(g, r)| r - nulls.get(g).copied().unwrap_or(0)),
                ),
            })
        };
        let sums = self
            .sums
            .iter_mut()
            .map(|(acc, _)| {
                acc.state(n)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| SluiceError::exec("aggregate: SUM produced no state"))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut own = self
            .own
            .iter_mut()
            .map(|(acc, _)| acc.state(n).map(Some))
            .collect::<Result<Vec<_>>>()?;
        let states = self
            .sources
            .iter()
            .map(|s| match *s {
                Source::Count(arg) => vec![counts(arg)],
                Source::Sum(i) => vec![sums[i].clone()],
                Source::Avg(i, arg) => vec![sums[i].clone(), counts(Some(arg))],
                Source::Own(i) => own[i].take().unwrap_or_default(),
            })
            .collect();
        for v in self.nulls.iter_mut().flatten() {
            v.clear();
        }
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{AsArray, Float64Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};

    fn spec(func: AggFunc, arg: Option<usize>, t: &DataType) -> AggSpec {
        AggSpec {
            func,
            distinct: false,
            args: arg
                .map(|i| vec![PhysExpr::Column(i, format!("c{i}"))])
                .unwrap_or_default(),
            input_type: arg.map(|_| t.clone()),
        }
    }

    /// SUM, AVG, COUNT(x), COUNT(*), MIN over two columns with NULLs give what one
    /// accumulator per aggregate gives, as states and as values, with one sum per column.
    #[test]
    fn shared_passes_equal_one_accumulator_per_aggregate() {
        let t = DataType::Int64;
        let aggs = vec![
            spec(AggFunc::Sum, Some(0), &t),
            spec(AggFunc::Avg, Some(0), &t),
            spec(AggFunc::Count, Some(0), &t),
            spec(AggFunc::Count, None, &t),
            spec(AggFunc::Avg, Some(1), &t),
            spec(AggFunc::Min, Some(1), &t),
            spec(AggFunc::Count, Some(1), &t),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("c0", t.clone(), false),
            Field::new("c1", t.clone(), true),
        ]));
        let batches = [
            (
                vec![Some(1), Some(2), Some(3)],
                vec![Some(5), Some(6), Some(7)],
                vec![0, 1, 0],
            ),
            (
                vec![Some(4), Some(5), Some(6)],
                vec![None, Some(8), None],
                vec![1, 2, 2],
            ),
            (
                vec![Some(7), Some(8), Some(9)],
                vec![Some(9), None, Some(1)],
                vec![0, 0, 3],
            ),
        ];
        let mut shared = GroupAccs::for_rows(&aggs).expect("shared");
        let mut each = GroupAccs::each(&aggs, false).expect("each");
        let (mut shared2, mut each2) = (
            GroupAccs::for_rows(&aggs).expect("shared"),
            GroupAccs::each(&aggs, false).expect("each"),
        );
        let GroupAccs::Shared(s) = &shared else {
            panic!("not shared")
        };
        assert_eq!(s.args.len(), 2);
        assert_eq!(s.sums.len(), 2, "SUM(c0) and AVG(c0) share a sum");
        let mut n = 0;
        for (a, b, g) in batches {
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(a)), Arc::new(Int64Array::from(b))],
            )
            .expect("batch");
            n = n.max(*g.iter().max().expect("groups") as usize + 1);
            for accs in [&mut shared, &mut each, &mut shared2, &mut each2] {
                accs.update(&aggs, &batch, &g, n, None).expect("update");
            }
        }
        let (s, e) = (
            shared.state(n).expect("state"),
            each.state(n).expect("state"),
        );
        assert_eq!(s.len(), e.len());
        for (x, y) in s.iter().zip(&e) {
            assert_eq!(x.as_ref(), y.as_ref());
        }
        let (s, e) = (
            shared2.evaluate(&aggs, n).expect("evaluate"),
            each2.evaluate(&aggs, n).expect("evaluate"),
        );
        for (x, y) in s.iter().zip(&e) {
            assert_eq!(x.as_ref(), y.as_ref());
        }
        // Group 0: c0 = 1, 3, 7, 8; c1 = 5, 7, 9, NULL. Group 2: c1 = 8, NULL.
        assert_eq!(s[0].as_primitive::<Int64Type>().value(0), 19);
        assert_eq!(s[3].as_primitive::<Int64Type>().value(0), 4);
        assert_eq!(s[6].as_primitive::<Int64Type>().value(0), 3);
        let avg: &Float64Array = s[4].as_primitive::<Float64Type>();
        assert_eq!(avg.value(0), 7.0);
        assert_eq!(s[6].as_primitive::<Int64Type>().value(2), 1);
        assert_eq!(avg.value(2), 8.0);
    }

    /// With a selection, the accumulators add what the selected rows alone add: the
    /// others' values (past an `i64`'s range, NaN) change no sum, COUNT(*) and NULL
    /// counts skip them, and a group whose selected values are all NULL sums to NULL
    /// while its unselected rows have values. Through the few-group decimal lanes and
    /// the general path, before and after the first NULL.
    #[test]
    fn selections_add_only_the_selected_rows() {
        use arrow::array::{BooleanArray, Decimal128Array};
        use arrow::compute::filter;
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        let dec = DataType::Decimal128(12, 2);
        let aggs = vec![
            spec(AggFunc::Sum, Some(0), &DataType::Int64),
            spec(AggFunc::Avg, Some(0), &DataType::Int64),
            spec(AggFunc::Count, Some(0), &DataType::Int64),
            spec(AggFunc::Count, None, &DataType::Int64),
            spec(AggFunc::Sum, Some(1), &dec),
            spec(AggFunc::Avg, Some(1), &dec),
            spec(AggFunc::Sum, Some(2), &DataType::Float64),
            spec(AggFunc::Min, Some(0), &DataType::Int64),
            spec(AggFunc::Max, Some(1), &dec),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("c0", DataType::Int64, true),
            Field::new("c1", dec.clone(), false),
            Field::new("c2", DataType::Float64, false),
        ]));
        let mut rng = StdRng::seed_from_u64(11);
        let mut masked = GroupAccs::for_rows(&aggs).expect("shared");
        let mut each_masked = GroupAccs::each(&aggs, false).expect("each");
        let mut cut = GroupAccs::for_rows(&aggs).expect("shared");
        let mut distinct = vec![spec(AggFunc::Count, Some(0), &DataType::Int64)];
        distinct[0].distinct = true;
        let mut distinct_masked = GroupAccs::each(&distinct, false).expect("each");
        let mut distinct_cut = GroupAccs::each(&distinct, false).expect("each");
        // Groups 0..8 in the first batches (the few-group lanes), up to 100 later. Group 8
        // starts in batch 2 with NULLs as its only selected values, and is never selected
        // again.
        let (mut ng, only_null) = (0usize, 8u32);
        for (b, groups) in [4usize, 8, 13, 40, 100, 100].into_iter().enumerate() {
            let rows = 1000;
            let sel: Vec<bool> = (0..rows).map(|_| rng.random_bool(0.7)).collect();
            let mut ids = vec![];
            // Each new group's first row is a selected one.
            let mut fresh = ng as u32..groups as u32;
            for &keep in &sel {
                let g = if !keep {
                    groups as u32 // parked
                } else if let Some(g) = fresh.next() {
                    g
                } else {
                    loop {
                        let g = rng.random_range(0..groups as u32);
                        if g != only_null || b == 2 {
                            break g;
                        }
                    }
                };
                ids.push(g);
            }
            ng = groups;
            let c0 = Int64Array::from_iter((0..rows).map(|i| {
                if b == 2 && (ids[i] == only_null || i % 5 == 0) {
                    None
                } else if sel[i] {
                    Some(rng.random_range(-1000..1000))
                } else {
                    Some(i64::MAX)
                }
            }));
            let c1 = Decimal128Array::from_iter_values((0..rows).map(|i| {
                if sel[i] {
                    rng.random_range(-99_999..99_999)
                } else {
                    i128::from(i64::MAX) * 4
                }
            }))
            .with_precision_and_scale(12, 2)
            .expect("decimal");
            let c2 = Float64Array::from_iter_values((0..rows).map(|i| {
                if sel[i] {
                    i as f64 / 8.0
                } else {
                    f64::NAN
                }
            }));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(c0), Arc::new(c1), Arc::new(c2)],
            )
            .expect("batch");
            let mask = BooleanArray::from(sel);
            for accs in [&mut masked, &mut each_masked] {
                accs.update(&aggs, &batch, &ids, ng, Some(mask.values()))
                    .expect("masked update");
            }
            distinct_masked
                .update(&distinct, &batch, &ids, ng, Some(mask.values()))
                .expect("masked update");
            let kept = arrow::compute::filter_record_batch(&batch, &mask).expect("filter");
            let kept_ids = filter(&arrow::array::UInt32Array::from(ids), &mask).expect("ids");
            let kept_ids = kept_ids.as_primitive::<arrow::datatypes::UInt32Type>();
            cut.update(&aggs, &kept, kept_ids.values(), ng, None)
                .expect("update");
            distinct_cut
                .update(&distinct, &kept, kept_ids.values(), ng, None)
                .expect("update");
        }
        let (m, c) = (
            masked.state(ng).expect("state"),
            cut.state(ng).expect("state"),
        );
        let e = each_masked.state(ng).expect("state");
        assert_eq!((m.len(), e.len()), (c.len(), c.len()));
        for ((x, y), z) in m.iter().zip(&c).zip(&e) {
            assert_eq!(x.as_ref(), y.as_ref());
            assert_eq!(z.as_ref(), y.as_ref(), "one accumulator per aggregate");
        }
        let (x, y) = (
            distinct_masked.evaluate(&distinct, ng).expect("evaluate"),
            distinct_cut.evaluate(&distinct, ng).expect("evaluate"),
        );
        assert_eq!(x[0].as_ref(), y[0].as_ref(), "COUNT(DISTINCT c0)");
        let sum_c0 = m[0].as_primitive::<Int64Type>();
        assert!(
            sum_c0.is_null(only_null as usize),
            "only NULLs were selected"
        );
        assert!(sum_c0.is_valid(0));
        // States: SUM(c0), AVG(c0) (2), COUNT(c0), COUNT(*), SUM(c1), AVG(c1) (2), SUM(c2).
        let float_sums = m[8].as_primitive::<Float64Type>();
        assert!(float_sums.values().iter().all(|x| !x.is_nan()));
    }

    #[test]
    fn distinct_keeps_one_accumulator_per_aggregate() {
        let mut a = spec(AggFunc::Count, Some(0), &DataType::Int64);
        a.distinct = true;
        let accs = GroupAccs::for_rows(&[a]).expect("accs");
        assert!(matches!(accs, GroupAccs::Each { merging: false, .. }));
    }
}
