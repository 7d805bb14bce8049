//! Grouped accumulators: each keeps one state slot per group and is updated a whole batch
//! at a time with a group index per row. Two-phase aggregation uses `state`/`merge`.

use std::sync::Arc;

use arrow::array::make_array;
use arrow::array::{
    new_null_array, Array, ArrayRef, ArrowNativeTypeOp, ArrowPrimitiveType, AsArray,
    Decimal128Array, Float64Array, Int64Array, PrimitiveArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{ArrowNativeType, DataType, Decimal128Type, Float64Type, Int64Type};
use arrow::row::{OwnedRow, RowConverter, SortField};

use crate::error::{Result, SluiceError};
use crate::logical::expr::AggFunc;
use crate::logical::plan::agg_type;
use crate::physical::decimal::fits;
use crate::physical::distinct_acc;

/// State and logic of one aggregate over many groups.
pub trait Accumulator: Send {
    /// Adds `values` (the evaluated arguments; empty for `COUNT(*)`), row `i` to group `groups[i]`.
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()>;
    /// Adds the rows where `sel` is set, as [`Accumulator::update`] would add them alone.
    /// The other rows are parked: their entry in `groups` is `num_groups`, one past the
    /// last group. By default their values become NULLs, which every aggregate skips
    /// before it looks at the row's group.
    fn update_masked(
        &mut self,
        values: &[ArrayRef],
        groups: &[u32],
        num_groups: usize,
        sel: &BooleanBuffer,
    ) -> Result<()> {
        let values = values
            .iter()
            .map(|v| null_unselected(v, sel))
            .collect::<Result<Vec<_>>>()?;
        self.update(&values, groups, num_groups)
    }
    /// [`Accumulator::update`], or with a selection [`Accumulator::update_masked`].
    fn update_selected(
        &mut self,
        values: &[ArrayRef],
        groups: &[u32],
        num_groups: usize,
        sel: Option<&BooleanBuffer>,
    ) -> Result<()> {
        match sel {
            Some(sel) => self.update_masked(values, groups, num_groups, sel),
            None => self.update(values, groups, num_groups),
        }
    }
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

/// `v` with NULLs where `sel` is not set (a `NullArray` is all NULL already).
pub(crate) fn null_unselected(v: &ArrayRef, sel: &BooleanBuffer) -> Result<ArrayRef> {
    if v.data_type() == &DataType::Null {
        return Ok(v.clone());
    }
    let nulls = NullBuffer::union(v.nulls(), Some(&NullBuffer::new(sel.clone())));
    Ok(make_array(v.to_data().into_builder().nulls(nulls).build()?))
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
            let is_min = func == AggFunc::Min;
            match primitive_min_max(&t, is_min) {
                Some(acc) => acc,
                None => Box::new(MinMaxAcc {
                    conv: RowConverter::new(vec![SortField::new(t.clone())])?,
                    best: vec![],
                    is_min,
                    data_type: t,
                }),
            }
        }
    };
    if distinct {
        distinct_acc::distinct(inner, input.cloned().unwrap_or(DataType::Null))
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
    fn update_masked(
        &mut self,
        values: &[ArrayRef],
        groups: &[u32],
        n: usize,
        sel: &BooleanBuffer,
    ) -> Result<()> {
        self.counts.resize(n, 0);
        let valid = values.first().and_then(|v| v.logical_nulls());
        let counted = NullBuffer::union(valid.as_ref(), Some(&NullBuffer::new(sel.clone())));
        if let Some(counted) = counted {
            for (g, keep) in groups.iter().zip(counted.iter()) {
                if keep {
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

/// Which groups have had a non-NULL value. Until a NULL arrives that is every group a
/// batch has reached (the first `covered`), with no flag to set per row.
#[derive(Default)]
struct Seen {
    flags: Option<Vec<bool>>,
    covered: usize,
}

impl Seen {
    /// Notes a batch of `rows` rows over `n` groups; returns the flags to set row by row
    /// once some value has been NULL (`has_nulls`, now or before).
    fn batch(&mut self, n: usize, rows: usize, has_nulls: bool) -> Option<&mut Vec<bool>> {
        if self.flags.is_none() && !has_nulls {
            if rows > 0 {
                self.covered = self.covered.max(n);
            }
            return None;
        }
        let covered = self.covered;
        let flags = self.flags.get_or_insert_with(|| vec![true; covered]);
        flags.resize(n, false);
        Some(flags)
    }

    /// Whether group `g` has had a non-NULL value.
    fn get(&self, g: usize) -> bool {
        match &self.flags {
            Some(f) => f.get(g).copied().unwrap_or(false),
            None => g < self.covered,
        }
    }
}

/// Adds each valid `vals[i]` into `sums[groups[i]]` with `add` (None: overflow), setting
/// the group's flag when there are `flags`; without flags, every value is valid, and a
/// row whose group is past the sums is `parked` (skipped; never with flags).
#[inline]
fn scatter<T: Copy>(
    sums: &mut [T],
    vals: &[T],
    nulls: Option<&NullBuffer>,
    groups: &[u32],
    flags: Option<&mut Vec<bool>>,
    parked: bool,
    add: impl Fn(T, T) -> Option<T>,
) -> Option<()> {
    match (flags, parked) {
        (None, false) => {
            for (x, &g) in vals.iter().zip(groups) {
                let g = g as usize;
                sums[g] = add(sums[g], *x)?;
            }
        }
        (None, true) => {
            for (x, &g) in vals.iter().zip(groups) {
                if let Some(sum) = sums.get_mut(g as usize) {
                    *sum = add(*sum, *x)?;
                }
            }
        }
        (Some(flags), _) => {
            for (i, (x, &g)) in vals.iter().zip(groups).enumerate() {
                if nulls.is_none_or(|m| m.is_valid(i)) {
                    let g = g as usize;
                    sums[g] = add(sums[g], *x)?;
                    flags[g] = true;
                }
            }
        }
    }
    Some(())
}

/// Groups up to which [`add_few`] sums decimals.
pub(crate) const FEW_GROUPS: usize = 64;

/// Adds `vals[i]` (no NULLs) into `sums[groups[i]]` for a few groups (q1's four): through
/// four interleaved lanes of `i64` partial sums, so that rows of one group in a row do
/// not wait on each other's store, and with one overflow test per batch instead of one
/// per row. With `parked` rows (group `sums.len()`), their lane is thrown away. None,
/// with `sums` untouched, when some value does not fit an `i64` or a lane overflows
/// (the caller then adds exactly, with `i128`s).
fn add_few(sums: &mut [i128], vals: &[i128], groups: &[u32], parked: bool) -> Option<()> {
    let n = sums.len() + usize::from(parked);
    let mut lanes = vec![0i64; 4 * n];
    let mut exact = true;
    for (i, (&x, &g)) in vals.iter().zip(groups).enumerate() {
        let slot = (i & 3) * n + g as usize;
        let (sum, overflow) = lanes[slot].overflowing_add(x as i64);
        exact &= !overflow & fits(x);
        lanes[slot] = sum;
    }
    if !exact {
        return None;
    }
    let mut out = sums.to_vec();
    for (g, total) in out.iter_mut().enumerate() {
        for lane in lanes.chunks_exact(n) {
            *total = total.checked_add(i128::from(lane[g]))?;
        }
    }
    sums.copy_from_slice(&out);
    Some(())
}

struct SumAcc {
    sums: Sums,
    seen: Seen,
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
            seen: Seen::default(),
            data_type,
        }
    }

    /// Adds `v`, row `i` to group `groups[i]` of `n`; with a selection `sel`, only the
    /// rows where it is set.
    fn add(
        &mut self,
        v: &ArrayRef,
        groups: &[u32],
        n: usize,
        sel: Option<&BooleanBuffer>,
    ) -> Result<()> {
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
        // Once groups are flagged one by one (values with NULLs, now or before),
        // unselected rows become NULLs, which the flags skip; before that, every group
        // a batch reaches has a selected row (the caller assigns groups to those alone),
        // and the parked rows are skipped by their group.
        let (v, parked) = match sel {
            Some(s) if v.null_count() > 0 || self.seen.flags.is_some() => {
                (null_unselected(&v, s)?, false)
            }
            sel => (v, sel.is_some()),
        };
        let nulls = v.nulls().filter(|m| m.null_count() > 0);
        let flags = self.seen.batch(n, groups.len(), nulls.is_some());
        let added = match &mut self.sums {
            Sums::I64(s) => {
                s.resize(n, 0);
                let a = v.as_primitive::<Int64Type>().values();
                scatter(s, a, nulls, groups, flags, parked, i64::checked_add)
            }
            Sums::I128(s, ..) => {
                s.resize(n, 0);
                let a = v.as_primitive::<Decimal128Type>().values();
                match flags {
                    None if n <= FEW_GROUPS => add_few(s, a, groups, parked)
                        .or_else(|| scatter(s, a, nulls, groups, None, parked, i128::checked_add)),
                    flags => scatter(s, a, nulls, groups, flags, parked, i128::checked_add),
                }
            }
            Sums::F64(s) => {
                s.resize(n, 0.0);
                let a = v.as_primitive::<Float64Type>().values();
                scatter(s, a, nulls, groups, flags, parked, |x, y| Some(x + y))
            }
        };
        added.ok_or_else(|| {
            SluiceError::exec(format!("integer overflow in SUM ({})", self.data_type))
        })
    }

    /// The sums of the `n` groups (NULL where a group had no value), moved out: the
    /// accumulator starts over empty.
    fn finish(&mut self, n: usize) -> Result<ArrayRef> {
        let seen = std::mem::take(&mut self.seen);
        let valid = NullBuffer::new(BooleanBuffer::collect_bool(n, |g| seen.get(g)));
        let nulls = (valid.null_count() > 0).then_some(valid);
        Ok(match &mut self.sums {
            Sums::I64(s) => Arc::new(Int64Array::new(take_sums(s, n), nulls)),
            Sums::I128(s, p, sc) => Arc::new(
                Decimal128Array::new(take_sums(s, n), nulls).with_precision_and_scale(*p, *sc)?,
            ),
            Sums::F64(s) => Arc::new(Float64Array::new(take_sums(s, n), nulls)),
        })
    }
}

/// The first `n` of `sums` (zeros past its end) as an array buffer, without a copy.
fn take_sums<T: ArrowNativeType>(sums: &mut Vec<T>, n: usize) -> ScalarBuffer<T> {
    let mut sums = std::mem::take(sums);
    sums.resize(n, T::default());
    ScalarBuffer::from(sums)
}

impl Accumulator for SumAcc {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(&values[0], groups, n, None)
    }
    fn update_masked(
        &mut self,
        values: &[ArrayRef],
        groups: &[u32],
        n: usize,
        sel: &BooleanBuffer,
    ) -> Result<()> {
        self.add(&values[0], groups, n, Some(sel))
    }
    fn merge(&mut self, states: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(&states[0], groups, n, None)
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
/// MIN/MAX over a primitive type: the best value per group, compared natively (floats in
/// IEEE total order, as the row format orders them).
struct PrimMinMax<T: ArrowPrimitiveType> {
    best: Vec<Option<T::Native>>,
    is_min: bool,
    data_type: DataType,
}

/// The primitive MIN/MAX accumulator for `t`, when `t` is a primitive type.
fn primitive_min_max(t: &DataType, is_min: bool) -> Option<Box<dyn Accumulator>> {
    fn make<T: ArrowPrimitiveType>(t: &DataType, is_min: bool) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(PrimMinMax::<T> {
            best: vec![],
            is_min,
            data_type: t.clone(),
        }))
    }
    use arrow::datatypes::*;
    match t {
        DataType::Int8 => make::<Int8Type>(t, is_min),
        DataType::Int16 => make::<Int16Type>(t, is_min),
        DataType::Int32 => make::<Int32Type>(t, is_min),
        DataType::Int64 => make::<Int64Type>(t, is_min),
        DataType::UInt8 => make::<UInt8Type>(t, is_min),
        DataType::UInt16 => make::<UInt16Type>(t, is_min),
        DataType::UInt32 => make::<UInt32Type>(t, is_min),
        DataType::UInt64 => make::<UInt64Type>(t, is_min),
        DataType::Float32 => make::<Float32Type>(t, is_min),
        DataType::Float64 => make::<Float64Type>(t, is_min),
        DataType::Date32 => make::<Date32Type>(t, is_min),
        DataType::Date64 => make::<Date64Type>(t, is_min),
        DataType::Decimal128(..) => make::<Decimal128Type>(t, is_min),
        DataType::Timestamp(TimeUnit::Second, _) => make::<TimestampSecondType>(t, is_min),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            make::<TimestampMillisecondType>(t, is_min)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            make::<TimestampMicrosecondType>(t, is_min)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => make::<TimestampNanosecondType>(t, is_min),
        _ => None,
    }
}

impl<T: ArrowPrimitiveType> Accumulator for PrimMinMax<T> {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.best.resize(n, None);
        let v = values
            .first()
            .and_then(|v| v.as_primitive_opt::<T>())
            .ok_or_else(|| SluiceError::exec(format!("min/max: expected {}", self.data_type)))?;
        for (i, g) in groups.iter().enumerate() {
            if v.is_null(i) {
                continue;
            }
            let x = v.value(i);
            let slot = &mut self.best[*g as usize];
            let better = match slot {
                None => true,
                Some(b) if self.is_min => x.is_lt(*b),
                Some(b) => x.is_gt(*b),
            };
            if better {
                *slot = Some(x);
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
        let best = std::mem::take(&mut self.best);
        Ok(Arc::new(
            PrimitiveArray::<T>::from_iter(best).with_data_type(self.data_type.clone()),
        ))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(func: AggFunc, t: DataType, values: ArrayRef, groups: &[u32], n: usize) -> ArrayRef {
        let mut acc = create_accumulator(func, false, Some(&t)).expect("accumulator");
        acc.update(&[values], groups, n).expect("update");
        acc.evaluate(n).expect("evaluate")
    }

    #[test]
    fn primitive_min_max_skip_nulls_and_order_floats_totally() {
        let v: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.5),
            None,
            Some(f64::NAN),
            Some(-2.0),
            None,
        ]));
        let groups = [0, 0, 1, 1, 2];
        let max = run(AggFunc::Max, DataType::Float64, v.clone(), &groups, 3);
        let max = max.as_primitive::<Float64Type>();
        assert_eq!(max.value(0), 1.5);
        assert!(max.value(1).is_nan(), "NaN is the largest float");
        assert!(max.is_null(2), "a group of NULLs has a NULL max");
        let min = run(AggFunc::Min, DataType::Float64, v, &groups, 3);
        assert_eq!(min.as_primitive::<Float64Type>().value(1), -2.0);
    }

    #[test]
    fn primitive_min_max_keep_decimal_scale_and_merge_states() {
        let t = DataType::Decimal128(10, 2);
        let v: ArrayRef = Arc::new(
            Decimal128Array::from(vec![125, -300, 990])
                .with_precision_and_scale(10, 2)
                .expect("decimal"),
        );
        let mut acc = create_accumulator(AggFunc::Max, false, Some(&t)).expect("acc");
        acc.update(&[v], &[0, 0, 1], 2).expect("update");
        let state = acc.state(2).expect("state");
        let mut merged = create_accumulator(AggFunc::Max, false, Some(&t)).expect("acc");
        merged.merge(&state, &[1, 0], 2).expect("merge");
        let out = merged.evaluate(2).expect("evaluate");
        assert_eq!(out.data_type(), &t);
        let out = out.as_primitive::<Decimal128Type>();
        assert_eq!((out.value(0), out.value(1)), (990, 125));
    }
    #[test]
    fn decimal_sums_skip_nulls_and_fail_on_overflow() {
        let t = DataType::Decimal128(38, 2);
        let dec = |v: Vec<Option<i128>>| -> ArrayRef {
            Arc::new(
                Decimal128Array::from(v)
                    .with_precision_and_scale(38, 2)
                    .expect("decimal"),
            )
        };
        let mut acc = create_accumulator(AggFunc::Sum, false, Some(&t)).expect("accumulator");
        // A NULL, and a group that sees only NULL.
        acc.update(
            &[dec(vec![Some(5), None, Some(-7), Some(1)])],
            &[0, 2, 1, 0],
            3,
        )
        .expect("update");
        // Values near the limit that cancel out are no overflow.
        let big = 9 * 10i128.pow(37);
        acc.update(&[dec(vec![Some(big), Some(-big)])], &[1, 1], 3)
            .expect("update");
        let out = acc.evaluate(3).expect("evaluate");
        let out = out.as_primitive::<Decimal128Type>();
        assert_eq!(out.value(0), 6);
        assert_eq!(out.value(1), -7);
        assert!(out.is_null(2));

        let mut acc = create_accumulator(AggFunc::Sum, false, Some(&t)).expect("accumulator");
        let err = acc
            .update(&[dec(vec![Some(big), Some(big)])], &[0, 0], 1)
            .expect_err("overflow");
        assert!(err.to_string().contains("overflow in SUM"), "{err}");
    }

    /// Sums over a few groups through `i64` lanes equal exact `i128` sums; values past
    /// an `i64` and lanes that would overflow leave the sums to the exact path.
    #[test]
    fn few_group_decimal_sums_are_exact() {
        let exact = |sums: &[i128], vals: &[i128], groups: &[u32]| {
            let mut s = sums.to_vec();
            scatter(&mut s, vals, None, groups, None, false, i128::checked_add)
                .expect("no overflow");
            s
        };
        let groups: Vec<u32> = (0..10_000u32).map(|i| (i * 7 + i / 3) % 4).collect();
        let small: Vec<i128> = (0..10_000i128)
            .map(|i| (i * 7919) % 100_001 - 50_000)
            .collect();
        let start = [3, -5, i128::from(i64::MAX) * 4, 0];
        let mut sums = start.to_vec();
        add_few(&mut sums, &small, &groups, false).expect("fits");
        assert_eq!(sums, exact(&start, &small, &groups));

        // A value past an i64, and lanes whose i64 sums would wrap: sums untouched.
        let mut wide = small.clone();
        wide[9_999] = i128::from(i64::MAX) + 1;
        let lanes_wrap = vec![i128::from(i64::MAX / 2); 12];
        for (vals, g) in [(&wide[..], &groups[..]), (&lanes_wrap[..], &[0u32; 12][..])] {
            let mut sums = start.to_vec();
            assert!(add_few(&mut sums, vals, g, false).is_none());
            assert_eq!(sums, start);
        }

        // Through the accumulator: the exact fallback gives the same answers, and an
        // i128 overflow is still an error.
        let t = DataType::Decimal128(38, 0);
        let dec = |v: &[i128]| -> ArrayRef {
            Arc::new(
                Decimal128Array::from(v.to_vec())
                    .with_precision_and_scale(38, 0)
                    .expect("decimal"),
            )
        };
        let out = run(AggFunc::Sum, t.clone(), dec(&lanes_wrap), &[0; 12], 1);
        assert_eq!(
            out.as_primitive::<Decimal128Type>().value(0),
            12 * i128::from(i64::MAX / 2)
        );
        let mut acc = create_accumulator(AggFunc::Sum, false, Some(&t)).expect("accumulator");
        let near_max = i128::MAX - 10;
        acc.update(&[dec(&[near_max])], &[0], 1).expect("update");
        let err = acc.update(&[dec(&[11])], &[0], 1).expect_err("overflow");
        assert!(err.to_string().contains("overflow in SUM"), "{err}");
    }

    /// A SUM keeps no per-row flags until its first NULL: groups reached before it stay
    /// non-NULL, a group that then sees only NULLs is NULL, and no input at all is NULL.
    #[test]
    fn sums_flag_groups_only_once_a_null_arrives() {
        let ints = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        let mut acc =
            create_accumulator(AggFunc::Sum, false, Some(&DataType::Int64)).expect("accumulator");
        acc.update(&[ints(vec![Some(1), Some(2)])], &[0, 1], 2)
            .expect("update");
        acc.update(&[ints(vec![None, Some(4), None])], &[2, 0, 3], 4)
            .expect("update");
        acc.update(&[ints(vec![Some(5)])], &[3], 5).expect("update");
        let out = acc.evaluate(5).expect("evaluate");
        let out = out.as_primitive::<Int64Type>();
        assert_eq!(out.value(0), 5);
        assert_eq!(out.value(1), 2);
        assert!(out.is_null(2));
        assert_eq!(out.value(3), 5);
        assert!(out.is_null(4), "a group no batch reached");

        let mut acc =
            create_accumulator(AggFunc::Sum, false, Some(&DataType::Int64)).expect("accumulator");
        acc.update(&[ints(vec![])], &[], 1).expect("update");
        let out = acc.evaluate(1).expect("evaluate");
        assert!(out.is_null(0), "SUM over no rows is NULL");
    }
}
