//! Physical expressions: logical expressions bound to column positions, with implicit
//! casts inserted, evaluated a whole batch at a time with Arrow compute kernels.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, Datum, RecordBatch, Scalar as ArrowScalar,
};
use arrow::compute::kernels::{boolean, cmp, numeric};
use arrow::compute::{cast_with_options, prep_null_mask_filter, CastOptions};
use arrow::datatypes::{DataType, Schema};
use arrow::util::display::FormatOptions;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{BinaryOp, Expr};
use crate::logical::schema::PlanSchema;
use crate::physical::coerce::{arithmetic_types, common_type, exact_literal, is_string};
use crate::physical::decimal::small_decimal_op;
use crate::physical::functions::{self, ScalarFn, CURRENT_WATERMARK};

/// A value produced by evaluating an expression over a batch.
#[derive(Debug, Clone)]
pub enum ColumnarValue {
    /// One value per row.
    Array(ArrayRef),
    /// One value for all rows (a one-element array).
    Scalar(ArrayRef),
}

impl ColumnarValue {
    /// The value's type.
    pub fn data_type(&self) -> &DataType {
        match self {
            ColumnarValue::Array(a) | ColumnarValue::Scalar(a) => a.data_type(),
        }
    }

    /// Materializes the value as an array of `num_rows` elements.
    pub fn into_array(self, num_rows: usize) -> Result<ArrayRef> {
        match self {
            ColumnarValue::Array(a) => Ok(a),
            ColumnarValue::Scalar(s) => {
                if s.is_null(0) {
                    return Ok(new_null_array(s.data_type(), num_rows));
                }
                let idx = arrow::array::UInt32Array::from(vec![0u32; num_rows]);
                Ok(arrow::compute::take(&s, &idx, None)?)
            }
        }
    }

    /// Runs a Datum kernel; two scalars give a scalar.
    fn apply(
        &self,
        other: &ColumnarValue,
        f: impl FnOnce(&dyn Datum, &dyn Datum) -> Result<ArrayRef, arrow::error::ArrowError>,
    ) -> Result<ColumnarValue> {
        let both_scalar =
            matches!(self, ColumnarValue::Scalar(_)) && matches!(other, ColumnarValue::Scalar(_));
        let out = match (self, other) {
            (ColumnarValue::Array(a), ColumnarValue::Array(b)) => f(a, b)?,
            (ColumnarValue::Array(a), ColumnarValue::Scalar(b)) => {
                f(a, &ArrowScalar::new(b.clone()))?
            }
            (ColumnarValue::Scalar(a), ColumnarValue::Array(b)) => {
                f(&ArrowScalar::new(a.clone()), b)?
            }
            (ColumnarValue::Scalar(a), ColumnarValue::Scalar(b)) => f(a, b)?,
        };
        Ok(if both_scalar {
            ColumnarValue::Scalar(out)
        } else {
            ColumnarValue::Array(out)
        })
    }

    /// Casts to `to` (errors on values that do not fit).
    pub fn cast(self, to: &DataType) -> Result<ColumnarValue> {
        if self.data_type() == to {
            return Ok(self);
        }
        // SQL rounds floats to the nearest integer (Arrow truncates).
        if self.data_type().is_floating() && to.is_integer() {
            let rounded = |a: &ArrayRef| -> Result<ArrayRef> {
                let f = arrow::compute::cast(a, &DataType::Float64)?;
                let f = f
                    .as_any()
                    .downcast_ref::<arrow::array::Float64Array>()
                    .ok_or_else(|| SluiceError::exec("float cast"))?;
                Ok(Arc::new(
                    f.unary::<_, arrow::datatypes::Float64Type>(f64::round),
                ))
            };
            let v = match self {
                ColumnarValue::Array(a) => ColumnarValue::Array(rounded(&a)?),
                ColumnarValue::Scalar(a) => ColumnarValue::Scalar(rounded(&a)?),
            };
            return v.cast_exact(to);
        }
        if let (DataType::Decimal128(_, s), true) = (self.data_type(), to.is_integer()) {
            if *s > 0 {
                // Through scale 0, which rounds half away from zero.
                return self
                    .cast_exact(&DataType::Decimal128(38, 0))?
                    .cast_exact(to);
            }
        }
        self.cast_exact(to)
    }

    fn cast_exact(self, to: &DataType) -> Result<ColumnarValue> {
        let opts = CastOptions {
            safe: false,
            format_options: FormatOptions::default(),
        };
        Ok(match self {
            ColumnarValue::Array(a) => ColumnarValue::Array(cast_with_options(&a, to, &opts)?),
            ColumnarValue::Scalar(a) => ColumnarValue::Scalar(cast_with_options(&a, to, &opts)?),
        })
    }
}

/// An expression bound to an input schema.
#[derive(Clone)]
pub enum PhysExpr {
    /// The input column at this position.
    Column(usize, String),
    /// A constant (one-element array).
    Literal(ArrayRef),
    /// A binary operator.
    Binary(Box<PhysExpr>, BinaryOp, Box<PhysExpr>),
    /// Boolean NOT.
    Not(Box<PhysExpr>),
    /// Arithmetic negation.
    Negative(Box<PhysExpr>),
    /// IS NULL / IS NOT NULL (`true` = IS NOT NULL).
    IsNull(Box<PhysExpr>, bool),
    /// [NOT] [I]LIKE: (negated, case-insensitive).
    Like(Box<PhysExpr>, Box<PhysExpr>, bool, bool),
    /// [NOT] IN (list).
    InList(Box<PhysExpr>, Vec<PhysExpr>, bool),
    /// CASE: WHEN/THEN pairs (conditions already compare with the operand), ELSE.
    Case(Vec<(PhysExpr, PhysExpr)>, Box<PhysExpr>),
    /// Cast to a type.
    Cast(Box<PhysExpr>, DataType),
    /// A scalar function.
    Function(ScalarFn, Vec<PhysExpr>),
}

impl fmt::Debug for PhysExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for PhysExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhysExpr::Column(i, n) => write!(f, "{n}@{i}"),
            PhysExpr::Literal(a) => write!(f, "{}", crate::logical::expr::Scalar(a.clone())),
            PhysExpr::Binary(l, op, r) => write!(f, "({l} {op} {r})"),
            PhysExpr::Not(e) => write!(f, "NOT {e}"),
            PhysExpr::Negative(e) => write!(f, "-{e}"),
            PhysExpr::IsNull(e, not) => write!(f, "{e} IS {}NULL", if *not { "NOT " } else { "" }),
            PhysExpr::Like(e, p, neg, ci) => write!(
                f,
                "{e} {}{} {p}",
                if *neg { "NOT " } else { "" },
                if *ci { "ILIKE" } else { "LIKE" }
            ),
            PhysExpr::InList(e, l, neg) => write!(
                f,
                "{e} {}IN ({} items)",
                if *neg { "NOT " } else { "" },
                l.len()
            ),
            PhysExpr::Case(wt, e) => {
                f.write_str("CASE")?;
                for (w, t) in wt {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                write!(f, " ELSE {e} END")
            }
            PhysExpr::Cast(e, t) => write!(f, "CAST({e} AS {t})"),
            PhysExpr::Function(func, args) => {
                write!(f, "{}(", func.name)?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

fn type_err(expr: &dyn fmt::Display, msg: String) -> SluiceError {
    SluiceError::Type(format!("{msg} in expression `{expr}`"))
}

impl PhysExpr {
    /// Evaluates over `batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let n = batch.num_rows();
        Ok(match self {
            PhysExpr::Column(i, _) => ColumnarValue::Array(batch.column(*i).clone()),
            PhysExpr::Literal(a) => ColumnarValue::Scalar(a.clone()),
            PhysExpr::Binary(l, op, r) => {
                let lv = l.evaluate(batch)?;
                let rv = r.evaluate(batch)?;
                eval_binary(&lv, *op, &rv, n)?
            }
            PhysExpr::Not(e) => {
                let v = e.evaluate(batch)?;
                map_bool(v, n, |b| Ok(boolean::not(b)?))?
            }
            PhysExpr::Negative(e) => match e.evaluate(batch)? {
                ColumnarValue::Array(a) => ColumnarValue::Array(numeric::neg(&a)?),
                ColumnarValue::Scalar(a) => ColumnarValue::Scalar(numeric::neg(&a)?),
            },
            PhysExpr::IsNull(e, not) => {
                let v = e.evaluate(batch)?;
                let scalar = matches!(v, ColumnarValue::Scalar(_));
                let a = match &v {
                    ColumnarValue::Array(a) | ColumnarValue::Scalar(a) => a,
                };
                let out: ArrayRef = if *not {
                    Arc::new(arrow::compute::is_not_null(a)?)
                } else {
                    Arc::new(arrow::compute::is_null(a)?)
                };
                if scalar {
                    ColumnarValue::Scalar(out)
                } else {
                    ColumnarValue::Array(out)
                }
            }
            PhysExpr::Like(e, p, negated, ci) => {
                let v = e.evaluate(batch)?;
                let pat = p.evaluate(batch)?;
                if let Some(out) = crate::physical::like::like_parts_value(&v, &pat, *negated, *ci)
                {
                    return Ok(out);
                }
                use arrow::compute::kernels::comparison as c;
                v.apply(&pat, |a, b| {
                    let r = match (*negated, *ci) {
                        (false, false) => c::like(a, b),
                        (true, false) => c::nlike(a, b),
                        (false, true) => c::ilike(a, b),
                        (true, true) => c::nilike(a, b),
                    }?;
                    Ok(Arc::new(r) as ArrayRef)
                })?
            }
            PhysExpr::InList(e, list, negated) => {
                let v = e.evaluate(batch)?;
                let mut acc: Option<ColumnarValue> = None;
                for item in list {
                    let iv = item.evaluate(batch)?;
                    let eq = eval_binary(&v, BinaryOp::Eq, &iv, n)?;
                    acc = Some(match acc {
                        None => eq,
                        Some(prev) => eval_binary(&prev, BinaryOp::Or, &eq, n)?,
                    });
                }
                let acc = acc.ok_or_else(|| SluiceError::plan("IN list is empty"))?;
                if *negated {
                    map_bool(acc, n, |b| Ok(boolean::not(b)?))?
                } else {
                    acc
                }
            }
            PhysExpr::Case(when_then, else_expr) => eval_case(when_then, else_expr, batch)?,
            PhysExpr::Cast(e, t) => e.evaluate(batch)?.cast(t)?,
            PhysExpr::Function(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| a.evaluate(batch))
                    .collect::<Result<Vec<_>>>()?;
                (f.eval)(&vals, n)?
            }
        })
    }

    /// True when the expression calls `CURRENT_WATERMARK`.
    pub fn uses_watermark(&self) -> bool {
        let mut found = false;
        self.clone().bind(&mut |e| {
            found |= matches!(&e, PhysExpr::Function(f, _) if f.name == CURRENT_WATERMARK);
            e
        });
        found
    }

    /// The expression with every `CURRENT_WATERMARK(ts)` bound to `watermark` (µs).
    pub fn bind_watermark(&self, watermark: i64) -> PhysExpr {
        self.clone().bind(&mut |e| match e {
            PhysExpr::Function(f, mut args) if f.name == CURRENT_WATERMARK => {
                args.truncate(1);
                args.push(PhysExpr::Literal(Arc::new(arrow::array::Int64Array::from(
                    vec![watermark],
                ))));
                PhysExpr::Function(f, args)
            }
            other => other,
        })
    }

    /// The direct subexpressions.
    pub(crate) fn children(&self) -> Vec<&PhysExpr> {
        match self {
            PhysExpr::Binary(l, _, r) | PhysExpr::Like(l, r, ..) => vec![l, r],
            PhysExpr::Not(e)
            | PhysExpr::Negative(e)
            | PhysExpr::IsNull(e, _)
            | PhysExpr::Cast(e, _) => vec![e],
            PhysExpr::InList(e, list, _) => std::iter::once(e.as_ref()).chain(list).collect(),
            PhysExpr::Case(wt, e) => wt
                .iter()
                .flat_map(|(w, t)| [w, t])
                .chain([e.as_ref()])
                .collect(),
            PhysExpr::Function(_, args) => args.iter().collect(),
            PhysExpr::Column(..) | PhysExpr::Literal(_) => vec![],
        }
    }

    /// Rebuilds the expression bottom-up, passing every node through `f`.
    pub(crate) fn bind(self, f: &mut impl FnMut(PhysExpr) -> PhysExpr) -> PhysExpr {
        fn boxed(e: PhysExpr, f: &mut impl FnMut(PhysExpr) -> PhysExpr) -> Box<PhysExpr> {
            Box::new(e.bind(f))
        }
        let node = match self {
            PhysExpr::Binary(l, op, r) => {
                let l = boxed(*l, f);
                PhysExpr::Binary(l, op, boxed(*r, f))
            }
            PhysExpr::Not(e) => PhysExpr::Not(boxed(*e, f)),
            PhysExpr::Negative(e) => PhysExpr::Negative(boxed(*e, f)),
            PhysExpr::IsNull(e, not) => PhysExpr::IsNull(boxed(*e, f), not),
            PhysExpr::Like(e, p, neg, ci) => {
                let e = boxed(*e, f);
                PhysExpr::Like(e, boxed(*p, f), neg, ci)
            }
            PhysExpr::InList(e, list, neg) => {
                let e = boxed(*e, f);
                PhysExpr::InList(e, list.into_iter().map(|x| x.bind(f)).collect(), neg)
            }
            PhysExpr::Case(wt, e) => {
                let wt = wt
                    .into_iter()
                    .map(|(w, t)| (w.bind(f), t.bind(f)))
                    .collect();
                PhysExpr::Case(wt, boxed(*e, f))
            }
            PhysExpr::Cast(e, t) => PhysExpr::Cast(boxed(*e, f), t),
            PhysExpr::Function(func, args) => {
                PhysExpr::Function(func, args.into_iter().map(|x| x.bind(f)).collect())
            }
            leaf @ (PhysExpr::Column(..) | PhysExpr::Literal(_)) => leaf,
        };
        f(node)
    }

    /// Evaluates to an array of one value per row.
    pub fn evaluate_array(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        self.evaluate(batch)?.into_array(batch.num_rows())
    }

    /// The result type over `input` (found by evaluating on an empty batch, so it always
    /// agrees with what the kernels produce).
    pub fn data_type(&self, input: &Arc<Schema>) -> Result<DataType> {
        let empty = RecordBatch::new_empty(input.clone());
        Ok(self.evaluate(&empty)?.data_type().clone())
    }
}

/// A predicate result as a selection mask: NULL counts as false; an untyped NULL
/// predicate selects nothing.
pub fn to_mask(a: &ArrayRef) -> Result<BooleanArray> {
    let b = match a.data_type() {
        DataType::Boolean => as_bool(a)?.clone(),
        DataType::Null => BooleanArray::from(vec![false; a.len()]),
        other => {
            return Err(SluiceError::Type(format!(
                "expected a boolean predicate, got {other}"
            )))
        }
    };
    Ok(if b.null_count() > 0 {
        prep_null_mask_filter(&b)
    } else {
        b
    })
}

fn as_bool(a: &ArrayRef) -> Result<&BooleanArray> {
    a.as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| SluiceError::Type(format!("expected a boolean, got {}", a.data_type())))
}

fn map_bool(
    v: ColumnarValue,
    _n: usize,
    f: impl Fn(&BooleanArray) -> Result<BooleanArray>,
) -> Result<ColumnarValue> {
    Ok(match v {
        ColumnarValue::Array(a) => ColumnarValue::Array(Arc::new(f(as_bool(&a)?)?)),
        ColumnarValue::Scalar(a) => ColumnarValue::Scalar(Arc::new(f(as_bool(&a)?)?)),
    })
}

/// CASE evaluates each THEN only on the rows that reach it (so `CASE WHEN x <> 0 THEN 1/x`
/// never divides by zero), then interleaves the pieces back into row order.
fn eval_case(
    when_then: &[(PhysExpr, PhysExpr)],
    else_expr: &PhysExpr,
    batch: &RecordBatch,
) -> Result<ColumnarValue> {
    let n = batch.num_rows();
    let mut remaining = BooleanArray::from(vec![true; n]);
    let mut pieces: Vec<ArrayRef> = Vec::new();
    let mut branch_of = vec![usize::MAX; n];
    let take_rows = |mask: &BooleanArray, e: &PhysExpr| -> Result<ArrayRef> {
        let sub = arrow::compute::filter_record_batch(batch, mask)?;
        e.evaluate_array(&sub)
    };
    for (w, t) in when_then {
        if remaining.true_count() == 0 {
            break;
        }
        let cond = to_mask(&w.evaluate_array(batch)?)?;
        let hit = boolean::and(&cond, &remaining)?;
        remaining = boolean::and(&remaining, &boolean::not(&cond)?)?;
        if hit.true_count() == 0 {
            continue;
        }
        let b = pieces.len();
        pieces.push(take_rows(&hit, t)?);
        for (i, h) in hit.values().iter().enumerate() {
            if h {
                branch_of[i] = b;
            }
        }
    }
    if remaining.true_count() > 0 {
        let b = pieces.len();
        pieces.push(take_rows(&remaining, else_expr)?);
        for (i, r) in remaining.values().iter().enumerate() {
            if r {
                branch_of[i] = b;
            }
        }
    }
    let result_type = else_expr.data_type(&batch.schema())?;
    if pieces.is_empty() {
        return Ok(ColumnarValue::Array(new_null_array(&result_type, n)));
    }
    let mut next = vec![0usize; pieces.len()];
    let idx: Vec<(usize, usize)> = branch_of
        .iter()
        .map(|&b| {
            let r = next[b];
            next[b] += 1;
            (b, r)
        })
        .collect();
    let refs: Vec<&dyn Array> = pieces.iter().map(|p| p.as_ref()).collect();
    Ok(ColumnarValue::Array(arrow::compute::interleave(
        &refs, &idx,
    )?))
}

fn eval_binary(
    l: &ColumnarValue,
    op: BinaryOp,
    r: &ColumnarValue,
    n: usize,
) -> Result<ColumnarValue> {
    let arr = |f: fn(&dyn Datum, &dyn Datum) -> Result<BooleanArray, arrow::error::ArrowError>| {
        l.apply(r, |a, b| Ok(Arc::new(f(a, b)?) as ArrayRef))
    };
    if let Some(out) = small_decimal_op(op, l, r) {
        return out;
    }
    match op {
        BinaryOp::Eq => arr(cmp::eq),
        BinaryOp::NotEq => arr(cmp::neq),
        BinaryOp::Lt => arr(cmp::lt),
        BinaryOp::LtEq => arr(cmp::lt_eq),
        BinaryOp::Gt => arr(cmp::gt),
        BinaryOp::GtEq => arr(cmp::gt_eq),
        BinaryOp::Plus => l.apply(r, numeric::add),
        BinaryOp::Minus => l.apply(r, numeric::sub),
        BinaryOp::Multiply => l.apply(r, numeric::mul),
        BinaryOp::Divide => {
            if r.data_type().is_floating() {
                let divisor = r.clone().cast(&DataType::Float64)?.into_array(1)?;
                let d = divisor
                    .as_any()
                    .downcast_ref::<arrow::array::Float64Array>();
                if d.is_some_and(|d| d.iter().any(|v| v == Some(0.0))) {
                    return Err(arrow::error::ArrowError::DivideByZero.into());
                }
            }
            l.apply(r, numeric::div)
        }
        BinaryOp::Modulo => l.apply(r, numeric::rem),
        BinaryOp::And | BinaryOp::Or => {
            let both_scalar =
                matches!(l, ColumnarValue::Scalar(_)) && matches!(r, ColumnarValue::Scalar(_));
            let rows = if both_scalar { 1 } else { n };
            let la = l.clone().into_array(rows)?;
            let ra = r.clone().into_array(rows)?;
            let out = if op == BinaryOp::And {
                boolean::and_kleene(as_bool(&la)?, as_bool(&ra)?)?
            } else {
                boolean::or_kleene(as_bool(&la)?, as_bool(&ra)?)?
            };
            Ok(if both_scalar {
                ColumnarValue::Scalar(Arc::new(out))
            } else {
                ColumnarValue::Array(Arc::new(out))
            })
        }
        BinaryOp::Concat => functions::concat_op(l, r, n),
    }
}

/// Binds `expr` to `schema`, inserting implicit casts; type errors name the expression.
pub fn create_physical_expr(expr: &Expr, schema: &PlanSchema) -> Result<PhysExpr> {
    let arrow_schema = schema.to_arrow();
    create(expr, schema, &arrow_schema)
}

/// `e` as a literal when it is an operator over literals that evaluates without error
/// (`1 + 10`), so comparisons see a literal they can take into a column's type; a
/// fault (division by zero) stays an execution error.
fn fold_constant(e: PhysExpr, schema: &Arc<Schema>) -> PhysExpr {
    let PhysExpr::Binary(l, _, r) = &e else {
        return e;
    };
    if !matches!((&**l, &**r), (PhysExpr::Literal(_), PhysExpr::Literal(_))) {
        return e;
    }
    match e.evaluate(&RecordBatch::new_empty(schema.clone())) {
        Ok(ColumnarValue::Scalar(a)) => PhysExpr::Literal(a),
        _ => e,
    }
}

/// A comparison's operands with its literal side in the other side's type, when that
/// type holds the literal exactly ([`exact_literal`]): the other side needs no cast.
fn literal_in_other_type(
    l: &PhysExpr,
    lt: &DataType,
    r: &PhysExpr,
    rt: &DataType,
) -> Option<(PhysExpr, PhysExpr)> {
    match (l, r) {
        (PhysExpr::Literal(_), PhysExpr::Literal(_)) => None,
        (_, PhysExpr::Literal(a)) => Some((l.clone(), PhysExpr::Literal(exact_literal(a, lt)?))),
        (PhysExpr::Literal(a), _) => Some((PhysExpr::Literal(exact_literal(a, rt)?), r.clone())),
        _ => None,
    }
}

fn cast_to(e: PhysExpr, from: &DataType, to: &DataType) -> PhysExpr {
    if from == to {
        e
    } else if let PhysExpr::Literal(a) = &e {
        // Fold literal casts now so errors surface at planning time and kernels see scalars.
        match ColumnarValue::Scalar(a.clone()).cast(to) {
            Ok(ColumnarValue::Scalar(c)) => PhysExpr::Literal(c),
            _ => PhysExpr::Cast(Box::new(e), to.clone()),
        }
    } else {
        PhysExpr::Cast(Box::new(e), to.clone())
    }
}

fn create(expr: &Expr, schema: &PlanSchema, arrow_schema: &Arc<Schema>) -> Result<PhysExpr> {
    let rec = |e: &Expr| create(e, schema, arrow_schema);
    let ty = |e: &PhysExpr| e.data_type(arrow_schema);
    Ok(match expr {
        Expr::Column(c) => {
            let i = schema.index_of(c)?;
            PhysExpr::Column(i, c.name.clone())
        }
        Expr::OuterColumn(c) => {
            return Err(SluiceError::plan(format!(
                "correlated reference to '{c}' is not supported in this position"
            )))
        }
        Expr::Literal(s) => PhysExpr::Literal(s.0.clone()),
        Expr::Alias(e, _) => rec(e)?,
        Expr::Binary { left, op, right } => {
            let (l, r) = (rec(left)?, rec(right)?);
            let (lt, rt) = (ty(&l)?, ty(&r)?);
            let (l, r) = if op.is_comparison() {
                match literal_in_other_type(&l, &lt, &r, &rt) {
                    Some(pair) => pair,
                    None => {
                        let common = common_type(&lt, &rt).ok_or_else(|| {
                            type_err(expr, format!("cannot compare {lt} with {rt}"))
                        })?;
                        (cast_to(l, &lt, &common), cast_to(r, &rt, &common))
                    }
                }
            } else if op.is_arithmetic() {
                match arithmetic_types(*op, &lt, &rt) {
                    Some((a, b)) => (cast_to(l, &lt, &a), cast_to(r, &rt, &b)),
                    None => (l, r),
                }
            } else if matches!(op, BinaryOp::And | BinaryOp::Or) {
                for t in [&lt, &rt] {
                    if !matches!(t, DataType::Boolean | DataType::Null) {
                        return Err(type_err(expr, format!("{op} needs boolean operands, got {t}")));
                    }
                }
                (cast_to(l, &lt, &DataType::Boolean), cast_to(r, &rt, &DataType::Boolean))
            } else {
                (l, r)
            };
            let out = PhysExpr::Binary(Box::new(l), *op, Box::new(r));
            // Surface kernel type errors (e.g. string + int) at planning time; arithmetic
            // faults of constant operands stay execution errors.
            ty(&out).map_err(|e| match e {
                SluiceError::Arrow(arrow::error::ArrowError::DivideByZero | arrow::error::ArrowError::ArithmeticOverflow(_)) => {
                    SluiceError::exec(format!("{e} in expression `{expr}`"))
                }
                e => type_err(expr, format!("{lt} {op} {rt} is not defined ({e})")),
            })?;
            fold_constant(out, arrow_schema)
        }
        Expr::Not(e) => {
            let p = rec(e)?;
            let t = ty(&p)?;
            if !matches!(t, DataType::Boolean | DataType::Null) {
                return Err(type_err(expr, format!("NOT needs a boolean, got {t}")));
            }
            PhysExpr::Not(Box::new(cast_to(p, &t, &DataType::Boolean)))
        }
        Expr::Negative(e) => PhysExpr::Negative(Box::new(rec(e)?)),
        Expr::IsNull(e) => PhysExpr::IsNull(Box::new(rec(e)?), false),
        Expr::IsNotNull(e) => PhysExpr::IsNull(Box::new(rec(e)?), true),
        Expr::Like {
            negated,
            expr: e,
            pattern,
            case_insensitive,
        } => {
            let v = rec(e)?;
            let p = rec(pattern)?;
            let (vt, pt) = (ty(&v)?, ty(&p)?);
            if !is_string(&vt) && vt != DataType::Null {
                return Err(type_err(expr, format!("LIKE needs a string, got {vt}")));
            }
            let target = if vt == DataType::Null { DataType::Utf8 } else { vt.clone() };
            PhysExpr::Like(
                Box::new(cast_to(v, &vt, &target)),
                Box::new(cast_to(p, &pt, &target)),
                *negated,
                *case_insensitive,
            )
        }
        Expr::InList {
            expr: e,
            list,
            negated,
        } => {
            let v = rec(e)?;
            let vt = ty(&v)?;
            let items = list.iter().map(&rec).collect::<Result<Vec<_>>>()?;
            // Literals that `v`'s type holds exactly take it, and `v` needs no cast.
            let exact: Option<Vec<PhysExpr>> = items
                .iter()
                .map(|it| match it {
                    PhysExpr::Literal(a) if a.data_type() == &vt => Some(it.clone()),
                    PhysExpr::Literal(a) => exact_literal(a, &vt).map(PhysExpr::Literal),
                    _ => None,
                })
                .collect();
            if let Some(items) = exact {
                return Ok(PhysExpr::InList(Box::new(v), items, *negated));
            }
            let mut common = vt.clone();
            for it in &items {
                let t = ty(it)?;
                common = common_type(&common, &t)
                    .ok_or_else(|| type_err(expr, format!("cannot compare {vt} with {t}")))?;
            }
            let items = items
                .into_iter()
                .map(|it| {
                    let t = ty(&it)?;
                    Ok(cast_to(it, &t, &common))
                })
                .collect::<Result<Vec<_>>>()?;
            PhysExpr::InList(Box::new(cast_to(v, &vt, &common)), items, *negated)
        }
        Expr::Case {
            operand,
            when_then,
            else_expr,
        } => {
            let mut conds = Vec::new();
            let mut thens = Vec::new();
            for (w, t) in when_then {
                let cond = match operand {
                    Some(o) => rec(&(**o).clone().eq(w.clone()))?,
                    None => rec(w)?,
                };
                let ct = ty(&cond)?;
                if !matches!(ct, DataType::Boolean | DataType::Null) {
                    return Err(type_err(expr, format!("WHEN condition must be boolean, got {ct}")));
                }
                conds.push(cast_to(cond, &ct, &DataType::Boolean));
                thens.push(rec(t)?);
            }
            let els = match else_expr {
                Some(e) => rec(e)?,
                None => PhysExpr::Literal(new_null_array(&DataType::Null, 1)),
            };
            let mut result_type = ty(&els)?;
            for t in &thens {
                let tt = ty(t)?;
                result_type = common_type(&result_type, &tt).ok_or_else(|| {
                    type_err(expr, format!("CASE branches have incompatible types {result_type} and {tt}"))
                })?;
            }
            let fix = |e: PhysExpr| -> Result<PhysExpr> {
                let t = ty(&e)?;
                Ok(cast_to(e, &t, &result_type))
            };
            let pairs = conds
                .into_iter()
                .zip(thens)
                .map(|(c, t)| Ok((c, fix(t)?)))
                .collect::<Result<Vec<_>>>()?;
            PhysExpr::Case(pairs, Box::new(fix(els)?))
        }
        Expr::Cast { expr: e, data_type } => {
            let p = rec(e)?;
            let from = ty(&p)?;
            if !arrow::compute::can_cast_types(&from, data_type) {
                return Err(type_err(expr, format!("cannot cast {from} to {data_type}")));
            }
            cast_to(p, &from, data_type)
        }
        Expr::Function { name, args } => {
            let args = args.iter().map(&rec).collect::<Result<Vec<_>>>()?;
            let types = args.iter().map(&ty).collect::<Result<Vec<_>>>()?;
            let (f, args) = functions::resolve(name, args, &types).map_err(|e| match e {
                SluiceError::Type(m) => type_err(expr, m),
                other => other,
            })?;
            let out = PhysExpr::Function(f, args);
            ty(&out).map_err(|e| match e {
                SluiceError::Arrow(arrow::error::ArrowError::DivideByZero | arrow::error::ArrowError::ArithmeticOverflow(_)) | SluiceError::Execution(_) => e,
                e => type_err(expr, e.to_string()),
            })?;
            out
        }
        Expr::Aggregate { .. } => {
            return Err(SluiceError::plan(format!(
                "aggregate {expr} is not allowed here (only in SELECT, HAVING or ORDER BY of an aggregating query)"
            )))
        }
        Expr::Window { .. } => {
            return Err(SluiceError::plan(format!(
                "window function {expr} is only allowed in SELECT or ORDER BY"
            )))
        }
    })
}

/// The type of `expr` over `schema`.
pub fn expr_type(expr: &Expr, schema: &PlanSchema) -> Result<DataType> {
    let arrow_schema = schema.to_arrow();
    create(expr, schema, &arrow_schema)?.data_type(&arrow_schema)
}
