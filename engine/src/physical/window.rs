//! Window functions over one partition of input: ROW_NUMBER, RANK, DENSE_RANK, LAG, LEAD,
//! and aggregates over the whole window partition (no ORDER BY), over the running frame
//! `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW` (with ORDER BY; peers included), or
//! over an explicit `ROWS` or `RANGE BETWEEN` frame ([`WindowFrame`]).
//!
//! Each expression sorts row indices by (partition keys, order keys), computes values in
//! that order, and scatters them back, so output rows keep the input order.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{
    concat, concat_batches, lexsort_to_indices, nullif, partition, take, take_arrays, SortColumn,
    SortOptions,
};
use arrow::datatypes::{DataType, SchemaRef};

use crate::error::{Result, SluiceError};
use crate::logical::expr::{AggFunc, Expr, WindowFrame, WindowFunc};
use crate::logical::schema::PlanSchema;
use crate::physical::accumulator::create_accumulator;
use crate::physical::expr::{create_physical_expr, expr_type, PhysExpr};
use crate::physical::memory::{batch_bytes, Reservation};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

#[derive(Debug, Clone)]
struct WindowSpec {
    func: WindowFunc,
    args: Vec<PhysExpr>,
    arg_type: Option<DataType>,
    partition_by: Vec<PhysExpr>,
    order_by: Vec<(PhysExpr, SortOptions)>,
    frame: Option<WindowFrame>,
}

/// The plan node: input columns, then one column per window expression.
#[derive(Debug)]
pub struct WindowExec {
    input: Arc<dyn ExecNode>,
    specs: Vec<WindowSpec>,
    schema: SchemaRef,
}

impl WindowExec {
    /// Binds window expressions `exprs` (over `input_schema`) for a single-partition `input`.
    pub fn try_new(
        input: Arc<dyn ExecNode>,
        input_schema: &PlanSchema,
        exprs: &[Expr],
        schema: SchemaRef,
    ) -> Result<Self> {
        let mut specs = Vec::new();
        for e in exprs {
            let Expr::Window {
                func,
                args,
                partition_by,
                order_by,
                frame,
            } = e.clone().unalias()
            else {
                return Err(SluiceError::plan(format!(
                    "expected a window function, got {e}"
                )));
            };
            let bind = |x: &Expr| create_physical_expr(x, input_schema);
            specs.push(WindowSpec {
                func,
                arg_type: args
                    .first()
                    .map(|a| expr_type(a, input_schema))
                    .transpose()?,
                args: args.iter().map(bind).collect::<Result<_>>()?,
                partition_by: partition_by.iter().map(bind).collect::<Result<_>>()?,
                order_by: order_by
                    .iter()
                    .map(|s| Ok((bind(&s.expr)?, s.options())))
                    .collect::<Result<_>>()?,
                frame,
            });
        }
        Ok(Self {
            input,
            specs,
            schema,
        })
    }
}

impl ExecNode for WindowExec {
    fn name(&self) -> &'static str {
        "WindowExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        1
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        if partition != 0 || self.input.output_partitions() != 1 {
            return Err(SluiceError::exec("WindowExec runs on one partition"));
        }
        let input = self.input.execute(0, ctx)?;
        Ok(OperatorStream::boxed(
            input,
            WindowOp {
                specs: self.specs.clone(),
                input_schema: self.input.schema(),
                schema: self.schema.clone(),
                buffered: vec![],
                reservation: ctx.memory.reservation("WindowExec"),
            },
        ))
    }
    fn details(&self) -> String {
        let f: Vec<String> = self.specs.iter().map(|s| s.func.to_string()).collect();
        f.join(", ")
    }
}

struct WindowOp {
    specs: Vec<WindowSpec>,
    input_schema: SchemaRef,
    schema: SchemaRef,
    buffered: Vec<RecordBatch>,
    reservation: Reservation,
}

impl Operator for WindowOp {
    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<Element>) -> Result<()> {
        let bytes = self.reservation.size() + batch_bytes(&batch);
        self.reservation.resize(bytes)?;
        self.buffered.push(batch);
        Ok(())
    }

    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let batch = concat_batches(&self.input_schema, &self.buffered)?;
        self.buffered.clear();
        let mut cols = batch.columns().to_vec();
        for spec in &self.specs {
            let v = evaluate_window(spec, &batch)?;
            let t = self.schema.field(cols.len()).data_type();
            cols.push(if v.data_type() == t {
                v
            } else {
                arrow::compute::cast(&v, t)?
            });
        }
        out.push(Element::Batch(RecordBatch::try_new(
            self.schema.clone(),
            cols,
        )?));
        Ok(())
    }
}

/// Ranges of equal consecutive values of `cols` within `range` (the whole range if no cols).
fn runs(cols: &[ArrayRef], range: Range<usize>) -> Result<Vec<Range<usize>>> {
    if cols.is_empty() || range.is_empty() {
        return Ok(vec![range]);
    }
    let sliced: Vec<ArrayRef> = cols
        .iter()
        .map(|c| c.slice(range.start, range.len()))
        .collect();
    Ok(partition(&sliced)?
        .ranges()
        .into_iter()
        .map(|r| r.start + range.start..r.end + range.start)
        .collect())
}

fn evaluate_window(spec: &WindowSpec, batch: &RecordBatch) -> Result<ArrayRef> {
    let n = batch.num_rows();
    let part_vals = spec
        .partition_by
        .iter()
        .map(|e| e.evaluate_array(batch))
        .collect::<Result<Vec<_>>>()?;
    let order_vals = spec
        .order_by
        .iter()
        .map(|(e, o)| Ok((e.evaluate_array(batch)?, *o)))
        .collect::<Result<Vec<_>>>()?;
    let mut sort_cols: Vec<SortColumn> = part_vals
        .iter()
        .map(|v| SortColumn {
            values: v.clone(),
            options: Some(SortOptions::default()),
        })
        .collect();
    sort_cols.extend(order_vals.iter().map(|(v, o)| SortColumn {
        values: v.clone(),
        options: Some(*o),
    }));
    let order: UInt32Array = if sort_cols.is_empty() {
        (0..n as u32).collect()
    } else {
        lexsort_to_indices(&sort_cols, None)?
    };
    let sorted = |a: &ArrayRef| -> Result<ArrayRef> { Ok(take(a, &order, None)?) };
    let sorted_parts = part_vals.iter().map(sorted).collect::<Result<Vec<_>>>()?;
    let sorted_order = order_vals
        .iter()
        .map(|(v, _)| sorted(v))
        .collect::<Result<Vec<_>>>()?;
    let args = spec
        .args
        .iter()
        .map(|e| sorted(&e.evaluate_array(batch)?))
        .collect::<Result<Vec<_>>>()?;
    let partitions = runs(&sorted_parts, 0..n)?;
    let values: ArrayRef = match (spec.func, spec.frame) {
        (WindowFunc::RowNumber | WindowFunc::Rank | WindowFunc::DenseRank, _) => {
            let mut v = vec![0i64; n];
            for p in &partitions {
                for (gi, peers) in runs(&sorted_order, p.clone())?.into_iter().enumerate() {
                    for k in peers.clone() {
                        v[k] = match spec.func {
                            WindowFunc::RowNumber => (k - p.start + 1) as i64,
                            WindowFunc::Rank => (peers.start - p.start + 1) as i64,
                            _ => gi as i64 + 1,
                        };
                    }
                }
            }
            Arc::new(Int64Array::from(v))
        }
        (WindowFunc::Lag | WindowFunc::Lead, _) => offset_values(spec, &args, &partitions, batch)?,
        (WindowFunc::Agg(func), Some(frame)) => {
            // RANGE offsets are measured on the one ORDER BY key (the planner checks there
            // is one; `row_frames` refuses a RANGE frame without it).
            let order = match (sorted_order.as_slice(), order_vals.as_slice()) {
                ([key], [(_, options)]) => Some((key, *options)),
                _ => None,
            };
            let frames = row_frames(frame, order, &partitions)?;
            let arg_type = spec.arg_type.as_ref();
            frame_values(func, arg_type, &args, &partitions, frame, &frames)?
        }
        (WindowFunc::Agg(func), None) => {
            // One unit per peer group (the whole partition without ORDER BY); a row's
            // frame is every unit of its partition up to its own.
            let mut unit_of_row = Vec::with_capacity(n);
            let mut first = vec![];
            for p in &partitions {
                let units = if spec.order_by.is_empty() {
                    vec![p.clone()]
                } else {
                    runs(&sorted_order, p.clone())?
                };
                let start = first.len() as u32;
                for u in units {
                    unit_of_row.extend(std::iter::repeat_n(first.len() as u32, u.len()));
                    first.push(start);
                }
            }
            let prefix =
                prefix_aggregates(func, spec.arg_type.as_ref(), &args, &unit_of_row, &first)?;
            take(&prefix, &UInt32Array::from(unit_of_row), None)?
        }
    };
    // Scatter back to input order.
    let mut inverse = vec![0u32; n];
    for (k, &orig) in order.values().iter().enumerate() {
        inverse[orig as usize] = k as u32;
    }
    Ok(take(&values, &UInt32Array::from(inverse), None)?)
}

/// LAG/LEAD(x [, offset [, default]]) over sorted `args`.
fn offset_values(
    spec: &WindowSpec,
    args: &[ArrayRef],
    partitions: &[Range<usize>],
    batch: &RecordBatch,
) -> Result<ArrayRef> {
    let x = args
        .first()
        .ok_or_else(|| SluiceError::plan(format!("{}() needs an argument", spec.func)))?;
    let offset = match spec.args.get(1) {
        Some(PhysExpr::Literal(a)) => arrow::compute::cast(a, &DataType::Int64)?
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(|a| a.value(0))
            .unwrap_or(1),
        Some(_) => {
            return Err(SluiceError::unsupported(
                "LAG/LEAD with a non-constant offset",
            ))
        }
        None => 1,
    };
    let offset = if spec.func == WindowFunc::Lag {
        -offset
    } else {
        offset
    };
    let mut idx: Vec<Option<u32>> = vec![None; x.len()];
    for p in partitions {
        for k in p.clone() {
            let src = k as i64 + offset;
            if src >= p.start as i64 && src < p.end as i64 {
                idx[k] = Some(src as u32);
            }
        }
    }
    let in_range =
        arrow::array::BooleanArray::from(idx.iter().map(|i| i.is_some()).collect::<Vec<_>>());
    let taken = take(x, &UInt32Array::from(idx), None)?;
    match args.get(2) {
        Some(_) => {
            let default = spec.args[2].evaluate(batch)?.into_array(x.len())?;
            let default = if default.data_type() == x.data_type() {
                default
            } else {
                arrow::compute::cast(&default, x.data_type())?
            };
            Ok(zip(&in_range, &taken, &default)?)
        }
        None => Ok(taken),
    }
}

/// For each unit `j` (the rows `k` with `unit_of_row[k] == j`; units are numbered in row
/// order), the aggregate of the rows of units `first[j]..=j`: the running aggregate of
/// each unit since the start of its partition (`first[j]`, its partition's first unit).
///
/// One grouped update gives each unit's own state. Then rounds of doubling combine them
/// (a Hillis–Steele scan): round `r` merges into unit `j` the state of unit `j - 2^r`,
/// if that is still in the partition, so after it unit `j` covers up to `2^(r+1)` units.
/// Each round is two vectorized merges, so `m` units take about `log2(m)` rounds rather
/// than an accumulator each. Every aggregate here (COUNT, SUM, AVG, MIN, MAX) merges
/// associatively and in any order.
fn prefix_aggregates(
    func: AggFunc,
    arg_type: Option<&DataType>,
    args: &[ArrayRef],
    unit_of_row: &[u32],
    first: &[u32],
) -> Result<ArrayRef> {
    let m = first.len();
    let new_acc = || create_accumulator(func, false, arg_type);
    let mut acc = new_acc()?;
    acc.update(args, unit_of_row, m)?;
    let mut states = acc.state(m)?;
    let every: Vec<u32> = (0..m as u32).collect();
    let mut reach = 1;
    loop {
        let (from, into): (Vec<u32>, Vec<u32>) = (0..m)
            .filter(|&j| j >= first[j] as usize + reach)
            .map(|j| ((j - reach) as u32, j as u32))
            .unzip();
        if from.is_empty() {
            break;
        }
        let from = UInt32Array::from(from);
        let shifted = take_arrays(&states, &from, None)?;
        let mut acc = new_acc()?;
        acc.merge(&states, &every, m)?;
        acc.merge(&shifted, &into, m)?;
        states = acc.state(m)?;
        reach *= 2;
    }
    let mut acc = new_acc()?;
    acc.merge(&states, &every, m)?;
    acc.evaluate(m)
}

/// Row `k`'s value is element `row_to_result[k]` of the concatenated `results`.
fn gather(results: &[ArrayRef], row_to_result: Vec<u32>) -> Result<ArrayRef> {
    let refs: Vec<&dyn Array> = results.iter().map(|a| a.as_ref()).collect();
    let all = concat(&refs)?;
    Ok(take(&all, &UInt32Array::from(row_to_result), None)?)
}

/// Each row's frame under `frame`, as a range of the rows sorted by partition and order
/// (`partitions` are their ranges): row offsets for `ROWS`; for `RANGE`, the rows whose
/// order key lies within the offsets of the row's own key, found by binary search. `order`
/// is the only ORDER BY key (sorted) and its direction, which `RANGE` needs. As in
/// PostgreSQL, a row whose key is NULL has the NULL rows as its offset bounds, and rows with
/// NULL keys are outside every other row's offset bounds (but inside an unbounded side).
fn row_frames(
    frame: WindowFrame,
    order: Option<(&ArrayRef, SortOptions)>,
    partitions: &[Range<usize>],
) -> Result<Vec<Range<usize>>> {
    let mut frames = Vec::with_capacity(partitions.last().map_or(0, |p| p.end));
    if !frame.range {
        let clamp = |p: &Range<usize>, at: i64| at.clamp(p.start as i64, p.end as i64) as usize;
        for p in partitions {
            for k in p.clone() {
                let lo = frame
                    .start
                    .map_or(p.start, |s| clamp(p, (k as i64).saturating_add(s)));
                let hi = frame.end.map_or(p.end, |e| {
                    clamp(p, (k as i64).saturating_add(e).saturating_add(1))
                });
                frames.push(lo..hi.max(lo));
            }
        }
        return Ok(frames);
    }
    let Some((keys, options)) = order else {
        return Err(SluiceError::plan(format!(
            "window frame {frame} needs exactly one ORDER BY key"
        )));
    };
    if !keys.data_type().is_integer() {
        return Err(SluiceError::unsupported(format!(
            "{frame} over a {} ORDER BY key (RANGE offsets need an integer key)",
            keys.data_type()
        )));
    }
    // Keys ascending in the sort's order (descending ones negated), NULLs where they are.
    let wide = arrow::compute::cast(keys, &DataType::Decimal128(38, 0))?;
    let wide = wide.as_primitive::<arrow::datatypes::Decimal128Type>();
    let keys: Vec<Option<i128>> = wide
        .iter()
        .map(|v| v.map(|v| if options.descending { -v } else { v }))
        .collect();
    for p in partitions {
        // The partition's rows with a key and with none: its NULLs sort together at one end.
        let nulls = keys[p.clone()].iter().filter(|v| v.is_none()).count();
        let (keyed, null_rows) = if options.nulls_first {
            (p.start + nulls..p.end, p.start..p.start + nulls)
        } else {
            (p.start..p.end - nulls, p.end - nulls..p.end)
        };
        // The first keyed row whose key passes `past`.
        let first = |past: &dyn Fn(i128) -> bool| {
            keyed.start + keys[keyed.clone()].partition_point(|x| x.is_some_and(|x| !past(x)))
        };
        for k in p.clone() {
            let (lo, hi) = match keys[k] {
                None => (
                    frame.start.map_or(p.start, |_| null_rows.start),
                    frame.end.map_or(p.end, |_| null_rows.end),
                ),
                Some(v) => (
                    frame
                        .start
                        .map_or(p.start, |s| first(&|x| x >= v + i128::from(s))),
                    frame
                        .end
                        .map_or(p.end, |e| first(&|x| x > v + i128::from(e))),
                ),
            };
            frames.push(lo..hi.max(lo));
        }
    }
    Ok(frames)
}

/// Most (row, frame row) pairs a bounded frame adds to the accumulator at once.
const FRAME_CHUNK: usize = 1 << 20;

/// `func` over each row's explicit frame (`frames`), for the rows of `args` sorted by
/// partition and order (`partitions` are their ranges). A frame unbounded on a side comes
/// from running aggregates ([`one_sided_frames`]). A frame bounded on both sides feeds each
/// row to every frame that holds it, as (value, frame) pairs grouped by frame, a chunk at a
/// time.
fn frame_values(
    func: AggFunc,
    arg_type: Option<&DataType>,
    args: &[ArrayRef],
    partitions: &[Range<usize>],
    frame: WindowFrame,
    frames: &[Range<usize>],
) -> Result<ArrayRef> {
    let new_acc = || create_accumulator(func, false, arg_type);
    let n = partitions.last().map_or(0, |p| p.end);
    if frame.start.is_none() || frame.end.is_none() {
        let values = one_sided_frames(func, arg_type, args, partitions, frames, frame)?;
        return empty_frames(func, values, frames);
    }
    // Result arrays, and for each row its value's position in their concatenation.
    let mut results: Vec<ArrayRef> = vec![];
    let mut total = 0usize;
    let mut row_to_result = vec![0u32; n];
    for p in partitions {
        let mut k = p.start;
        while k < p.end {
            let (mut idx, mut grp) = (Vec::new(), Vec::new());
            let first = k;
            while k < p.end && idx.len() < FRAME_CHUNK {
                for i in frames[k].clone() {
                    idx.push(i as u32);
                    grp.push((k - first) as u32);
                }
                k += 1;
            }
            let idx = UInt32Array::from(idx);
            let vals = take_arrays(args, &idx, None)?;
            let mut acc = new_acc()?;
            acc.update(&vals, &grp, k - first)?;
            results.push(acc.evaluate(k - first)?);
            for (j, slot) in row_to_result[first..k].iter_mut().enumerate() {
                *slot = (total + j) as u32;
            }
            total += k - first;
        }
    }
    if results.is_empty() {
        return Ok(arrow::array::new_empty_array(
            new_acc()?.evaluate(0)?.data_type(),
        ));
    }
    empty_frames(func, gather(&results, row_to_result)?, frames)
}

/// `func` over `ROWS` frames open on at least one side, from running aggregates: a frame
/// that starts at its partition's start is a prefix of the partition, one that ends at its
/// end a prefix of the partition read backwards (each row a unit of its own), and one open
/// on both sides the whole partition. Rows whose frame is empty get NULL here (see
/// [`empty_frames`]).
fn one_sided_frames(
    func: AggFunc,
    arg_type: Option<&DataType>,
    args: &[ArrayRef],
    partitions: &[Range<usize>],
    frames: &[Range<usize>],
    frame: WindowFrame,
) -> Result<ArrayRef> {
    let n = partitions.last().map_or(0, |p| p.end);
    if frame.start.is_none() && frame.end.is_none() {
        // The whole partition: one unit each, no scan.
        let unit_of_row: Vec<u32> = (0..partitions.len() as u32)
            .zip(partitions)
            .flat_map(|(j, p)| std::iter::repeat_n(j, p.len()))
            .collect();
        let units: Vec<u32> = (0..partitions.len() as u32).collect();
        let totals = prefix_aggregates(func, arg_type, args, &unit_of_row, &units)?;
        return Ok(take(&totals, &UInt32Array::from(unit_of_row), None)?);
    }
    let forwards = frame.start.is_none();
    // Position of row `k` in the order the prefixes run.
    let at = |k: usize| if forwards { k } else { n - 1 - k };
    let mut first = vec![0u32; n];
    for p in partitions.iter().filter(|p| !p.is_empty()) {
        let start = at(if forwards { p.start } else { p.end - 1 }) as u32;
        for k in p.clone() {
            first[at(k)] = start;
        }
    }
    let ordered = if forwards {
        args.to_vec()
    } else {
        let reversed = UInt32Array::from_iter_values((0..n as u32).rev());
        take_arrays(args, &reversed, None)?
    };
    let units: Vec<u32> = (0..n as u32).collect();
    let prefix = prefix_aggregates(func, arg_type, &ordered, &units, &first)?;
    // The unit whose prefix is row k's frame: its last row (forwards) or first row.
    let pick: UInt32Array = frames
        .iter()
        .map(|f| match (f.is_empty(), forwards) {
            (true, _) => None,
            (false, true) => Some(at(f.end - 1) as u32),
            (false, false) => Some(at(f.start) as u32),
        })
        .collect();
    Ok(take(&prefix, &pick, None)?)
}

/// `values` with each empty frame's value fixed: the accumulators are made for groups that
/// each have a row, so an empty frame's COUNT is 0 and anything else NULL.
fn empty_frames(func: AggFunc, values: ArrayRef, frames: &[Range<usize>]) -> Result<ArrayRef> {
    let empty: BooleanArray = frames.iter().map(|f| Some(f.is_empty())).collect();
    if empty.true_count() == 0 {
        return Ok(values);
    }
    if func == AggFunc::Count {
        return Ok(zip(&empty, &Int64Array::new_scalar(0), &values)?);
    }
    Ok(nullif(&values, &empty)?)
}
