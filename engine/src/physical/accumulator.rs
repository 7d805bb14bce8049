//! Grouped accumulators: each keeps one state slot per group and is updated a whole batch
//! at a time with a group index per row. Two-phase aggregation uses `state`/`merge`.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use arrow::row::{OwnedRow, RowConverter, SortField};

use crate::error::{Result, SluiceError};
use crate::logical::expr::AggFunc;
use crate::logical::plan::agg_type;

/// State and logic of one aggregate over many groups.
pub trait Accumulator: Send {
    /// Adds `values` (the evaluated arguments; empty for `COUNT(*)`), row `i` to group `groups[i]`.
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()>;
    /// Merges partial states (as produced by [`Accumulator::state`]).
    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()>;
    /// Partial state columns, one row per group.
    fn state(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>>;
    /// Final values, one per group.
    fn evaluate(&mut self, num_groups: usize) -> Result<ArrayRef>;
    /// Bytes held beyond a fixed-size state per group (the value sets of DISTINCT), for
    /// the memory reservation of the aggregation.
    fn extra_memory(&self) -> usize {
        0
    }
}

/// The types of an aggregate's partial state columns.
pub fn state_types(func: AggFunc, input: Option<&DataType>) -> Result<Vec<DataType>> {
    Ok(match func {
        AggFunc::Count => vec![DataType::Int64],
        AggFunc::Sum => vec![agg_type(AggFunc::Sum, input)?],
        AggFunc::Avg => vec![agg_type(AggFunc::Sum, input)?, DataType::Int64],
        AggFunc::Min | AggFunc::Max => vec![agg_type(func, input)?],
    })
}

/// A fresh accumulator for `func` over arguments of type `input`.
pub fn create_accumulator(
    func: AggFunc,
    distinct: bool,
    input: Option<&DataType>,
) -> Result<Box<dyn Accumulator>> {
    let inner: Box<dyn Accumulator> = match func {
        AggFunc::Count => Box::new(CountAcc { counts: vec![] }),
        AggFunc::Sum => Box::new(SumAcc::new(agg_type(AggFunc::Sum, input)?)),
        AggFunc::Avg => Box::new(AvgAcc {
            sum: SumAcc::new(agg_type(AggFunc::Sum, input)?),
            counts: CountAcc { counts: vec![] },
            out: agg_type(AggFunc::Avg, input)?,
        }),
        AggFunc::Min | AggFunc::Max => {
            let t = input.cloned().unwrap_or(DataType::Null);
            Box::new(MinMaxAcc {
                conv: RowConverter::new(vec![SortField::new(t.clone())])?,
                best: vec![],
                is_min: func == AggFunc::Min,
                data_type: t,
            })
        }
    };
    if distinct {
        let t = input.cloned().unwrap_or(DataType::Null);
        Ok(Box::new(DistinctAcc {
            inner,
            conv: RowConverter::new(vec![SortField::new(t)])?,
            seen: HashSet::new(),
            seen_bytes: 0,
        }))
    } else {
        Ok(inner)
    }
}

/// `COUNT`: non-NULL values (or rows, without arguments).
struct CountAcc {
    counts: Vec<i64>,
}

impl Accumulator for CountAcc {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.counts.resize(n, 0);
        // Logical nulls: a NullArray (COUNT(NULL)) has no validity buffer but is all NULL.
        match values.first().and_then(|v| v.logical_nulls()) {
            Some(nulls) => {
                for (i, g) in groups.iter().enumerate() {
                    if nulls.is_valid(i) {
                        self.counts[*g as usize] += 1;
                    }
                }
            }
            None => {
                for g in groups {
                    self.counts[*g as usize] += 1;
                }
            }
        }
        Ok(())
    }
    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.counts.resize(n, 0);
        let c = states[0].as_primitive::<Int64Type>();
        for (i, g) in groups.iter().enumerate() {
            self.counts[*g as usize] += c.value(i);
        }
        Ok(())
    }
    fn state(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(n)?])
    }
    fn evaluate(&mut self, n: usize) -> Result<ArrayRef> {
        self.counts.resize(n, 0);
        Ok(Arc::new(Int64Array::from(std::mem::take(&mut self.counts))))
    }
}

/// Running sums in the sum type: checked i64 for integers, i128 for decimals, f64 for floats.
enum Sums {
    I64(Vec<i64>),
    I128(Vec<i128>, u8, i8),
    F64(Vec<f64>),
}

struct SumAcc {
    sums: Sums,
    seen: Vec<bool>,
    data_type: DataType,
}

impl SumAcc {
    fn new(data_type: DataType) -> Self {
        let sums = match &data_type {
            DataType::Int64 => Sums::I64(vec![]),
            DataType::Decimal128(p, s) => Sums::I128(vec![], *p, *s),
            _ => Sums::F64(vec![]),
        };
        Self {
            sums,
            seen: vec![],
            data_type,
        }
    }

    fn add(&mut self, v: &ArrayRef, groups: &[u32], n: usize) -> Result<()> {
        self.seen.resize(n, false);
        // Decimals of the sum's scale are added as they are (only the declared precision
        // differs); casting them would re-check every value's precision for nothing.
        let same_scale = matches!(
            (v.data_type(), &self.data_type),
            (DataType::Decimal128(_, a), DataType::Decimal128(_, b)) if a == b
        );
        let v = if v.data_type() == &self.data_type || same_scale {
            v.clone()
        } else {
            cast(v, &self.data_type)?
        };
        let overflow =
            || SluiceError::exec(format!("integer overflow in SUM ({})", self.data_type));
        match &mut self.sums {
            Sums::I64(s) => {
                s.resize(n, 0);
                let a = v.as_primitive::<Int64Type>();
                for (i, g) in groups.iter().enumerate() {
                    if a.is_valid(i) {
                        let g = *g as usize;
                        s[g] = s[g].checked_add(a.value(i)).ok_or_else(overflow)?;
                        self.seen[g] = true;
                    }
                }
            }
            Sums::I128(s, ..) => {
                s.resize(n, 0);
                let a = v.as_primitive::<Decimal128Type>();
                if a.null_count() == 0 {
                    for (x, g) in a.values().iter().zip(groups) {
                        let g = *g as usize;
                        s[g] = s[g].checked_add(*x).ok_or_else(overflow)?;
                        self.seen[g] = true;
                    }
                } else {
                    for (i, g) in groups.iter().enumerate() {
                        if a.is_valid(i) {
                            let g = *g as usize;
                            s[g] = s[g].checked_add(a.value(i)).ok_or_else(overflow)?;
                            self.seen[g] = true;
                        }
                    }
                }
            }
            Sums::F64(s) => {
                s.resize(n, 0.0);
                let a = v.as_primitive::<Float64Type>();
                for (i, g) in groups.iter().enumerate() {
                    if a.is_valid(i) {
                        let g = *g as usize;
                        s[g] += a.value(i);
                        self.seen[g] = true;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, n: usize) -> Result<ArrayRef> {
        self.seen.resize(n, false);
        let seen = std::mem::take(&mut self.seen);
        let valid = |i: usize| seen[i];
        Ok(match &mut self.sums {
            Sums::I64(s) => {
                s.resize(n, 0);
                Arc::new(Int64Array::from_iter(
                    (0..n).map(|i| valid(i).then(|| s[i])),
                ))
            }
            Sums::I128(s, p, sc) => {
                s.resize(n, 0);
                Arc::new(
                    Decimal128Array::from_iter((0..n).map(|i| valid(i).then(|| s[i])))
                        .with_precision_and_scale(*p, *sc)?,
                )
            }
            Sums::F64(s) => {
                s.resize(n, 0.0);
                Arc::new(Float64Array::from_iter(
                    (0..n).map(|i| valid(i).then(|| s[i])),
                ))
            }
        })
    }
}

impl Accumulator for SumAcc {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(&values[0], groups, n)
    }
    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(&states[0], groups, n)
    }
    fn state(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.finish(n)?])
    }
    fn evaluate(&mut self, n: usize) -> Result<ArrayRef> {
        self.finish(n)
    }
}

/// `AVG`: sum and count; decimals keep 4 more digits of scale (rounded half away from zero).
struct AvgAcc {
    sum: SumAcc,
    counts: CountAcc,
    out: DataType,
}

impl Accumulator for AvgAcc {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.sum.update(values, groups, n)?;
        self.counts.update(values, groups, n)
    }
    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.sum.merge(&states[..1], groups, n)?;
        self.counts.merge(&states[1..], groups, n)
    }
    fn state(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.sum.finish(n)?, self.counts.evaluate(n)?])
    }
    fn evaluate(&mut self, n: usize) -> Result<ArrayRef> {
        let sums = self.sum.finish(n)?;
        let counts = self.counts.evaluate(n)?;
        let counts = counts.as_primitive::<Int64Type>();
        Ok(match (&self.out, sums.data_type()) {
            (DataType::Decimal128(p, s), DataType::Decimal128(_, in_s)) => {
                let sums = sums.as_primitive::<Decimal128Type>();
                let mul = 10i128.pow((*s - *in_s).max(0) as u32);
                let vals = (0..n).map(|i| {
                    if sums.is_null(i) || counts.value(i) == 0 {
                        return Ok(None);
                    }
                    let num = sums
                        .value(i)
                        .checked_mul(mul)
                        .ok_or_else(|| SluiceError::exec("decimal overflow in AVG"))?;
                    let c = i128::from(counts.value(i));
                    let q = num / c;
                    let r = num % c;
                    Ok(Some(if 2 * r.abs() >= c {
                        q + num.signum()
                    } else {
                        q
                    }))
                });
                Arc::new(
                    vals.collect::<Result<Decimal128Array>>()?
                        .with_precision_and_scale(*p, *s)?,
                )
            }
            _ => {
                let sums = cast(&sums, &DataType::Float64)?;
                let sums = sums.as_primitive::<Float64Type>();
                Arc::new(Float64Array::from_iter((0..n).map(|i| {
                    (!sums.is_null(i) && counts.value(i) > 0)
                        .then(|| sums.value(i) / counts.value(i) as f64)
                })))
            }
        })
    }
}

/// `MIN`/`MAX` of any orderable type, compared through Arrow's row format.
struct MinMaxAcc {
    conv: RowConverter,
    best: Vec<Option<OwnedRow>>,
    is_min: bool,
    data_type: DataType,
}

impl Accumulator for MinMaxAcc {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.best.resize(n, None);
        let v = &values[0];
        let nulls = v.logical_nulls();
        let rows = self.conv.convert_columns(std::slice::from_ref(v))?;
        for (i, g) in groups.iter().enumerate() {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                continue;
            }
            let r = rows.row(i);
            let slot = &mut self.best[*g as usize];
            let better = match slot {
                None => true,
                Some(b) => {
                    if self.is_min {
                        r < b.row()
                    } else {
                        r > b.row()
                    }
                }
            };
            if better {
                *slot = Some(r.owned());
            }
        }
        Ok(())
    }
    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.update(states, groups, n)
    }
    fn state(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(n)?])
    }
    fn evaluate(&mut self, n: usize) -> Result<ArrayRef> {
        self.best.resize(n, None);
        let null = new_null_array(&self.data_type, 1);
        let null_rows = self.conv.convert_columns(&[null])?;
        let null_row = null_rows.row(0);
        let best = std::mem::take(&mut self.best);
        let rows = best
            .iter()
            .map(|b| b.as_ref().map_or(null_row, |r| r.row()));
        let mut cols = self.conv.convert_rows(rows)?;
        cols.pop()
            .ok_or_else(|| SluiceError::exec("min/max produced no column"))
    }
}

/// `agg(DISTINCT x)`: feeds each (group, value) to the inner accumulator once.
struct DistinctAcc {
    inner: Box<dyn Accumulator>,
    conv: RowConverter,
    seen: HashSet<(u32, Box<[u8]>)>,
    /// Approximate bytes of `seen`.
    seen_bytes: usize,
}

impl Accumulator for DistinctAcc {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        let v = &values[0];
        let nulls = v.logical_nulls();
        let rows = self.conv.convert_columns(std::slice::from_ref(v))?;
        let mut keep_idx = Vec::new();
        let mut keep_groups = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                continue;
            }
            let row = rows.row(i);
            if self.seen.insert((*g, row.as_ref().into())) {
                // The key bytes, the boxed slice and the set's slot (hash, group, pointer).
                self.seen_bytes += row.as_ref().len() + 40;
                keep_idx.push(i as u32);
                keep_groups.push(*g);
            }
        }
        let idx = arrow::array::UInt32Array::from(keep_idx);
        let vals = arrow::compute::take(v, &idx, None)?;
        self.inner.update(&[vals], &keep_groups, n)
    }
    fn merge(&mut self, _states: &[ArrayRef], _groups: &[u32], _n: usize) -> Result<()> {
        Err(SluiceError::exec(
            "DISTINCT aggregates run in one phase and cannot merge",
        ))
    }
    fn state(&mut self, _n: usize) -> Result<Vec<ArrayRef>> {
        Err(SluiceError::exec(
            "DISTINCT aggregates run in one phase and have no partial state",
        ))
    }
    fn evaluate(&mut self, n: usize) -> Result<ArrayRef> {
        self.inner.evaluate(n)
    }
    fn extra_memory(&self) -> usize {
        self.seen_bytes + self.inner.extra_memory()
    }
}
