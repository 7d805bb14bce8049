//! Scalar SQL functions: name resolution, argument coercion and vectorized evaluation.
//! Each function works on whole arrays; a call with only constant arguments yields a constant.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::compute::kernels::{cmp, numeric, zip::zip};
use arrow::compute::{date_part, DatePart};
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::error::{Result, SluiceError};
use crate::physical::coerce::{common_type, is_numeric, is_string};
use crate::physical::expr::{ColumnarValue, PhysExpr};

/// A resolved scalar function.
#[derive(Clone, Copy)]
pub struct ScalarFn {
    /// SQL name.
    pub name: &'static str,
    /// Evaluates over argument values for `num_rows` rows.
    pub eval: fn(&[ColumnarValue], usize) -> Result<ColumnarValue>,
}

/// The names `resolve` knows, for error hints.
pub const FUNCTION_NAMES: &[&str] = &[
    "substring",
    "substr",
    "upper",
    "lower",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "reverse",
    "concat",
    "coalesce",
    "nullif",
    "abs",
    "round",
    "floor",
    "ceil",
    "ceiling",
    "sqrt",
    "date_part",
    "extract",
    "to_timestamp_ltz",
    "to_timestamp",
    "current_watermark",
    "proctime",
    "starts_with",
    "ends_with",
    "replace",
    "strpos",
    "left",
    "right",
];

fn cast_arg(e: PhysExpr, from: &DataType, to: &DataType) -> PhysExpr {
    if from == to {
        e
    } else {
        PhysExpr::Cast(Box::new(e), to.clone())
    }
}

fn arity(name: &str, args: &[PhysExpr], min: usize, max: usize) -> Result<()> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(SluiceError::Type(format!(
            "{name}() takes {want} arguments, got {}",
            args.len()
        )));
    }
    Ok(())
}

fn want_string(name: &str, t: &DataType) -> Result<()> {
    if is_string(t) || *t == DataType::Null {
        Ok(())
    } else {
        Err(SluiceError::Type(format!(
            "{name}() needs a string argument, got {t}"
        )))
    }
}

/// Looks `name` up and coerces its arguments.
pub fn resolve(
    name: &str,
    args: Vec<PhysExpr>,
    types: &[DataType],
) -> Result<(ScalarFn, Vec<PhysExpr>)> {
    let utf8 = DataType::Utf8;
    let f = |name: &'static str, eval: fn(&[ColumnarValue], usize) -> Result<ColumnarValue>| {
        ScalarFn { name, eval }
    };
    let strings = |args: Vec<PhysExpr>| -> Vec<PhysExpr> {
        args.into_iter()
            .zip(types)
            .map(|(a, t)| cast_arg(a, t, &DataType::Utf8))
            .collect()
    };
    Ok(match name {
        "substring" | "substr" => {
            arity(name, &args, 2, 3)?;
            want_string(name, &types[0])?;
            let mut a = args.into_iter();
            let mut out = vec![];
            if let Some(s) = a.next() {
                out.push(cast_arg(s, &types[0], &utf8));
            }
            for (e, t) in a.zip(&types[1..]) {
                out.push(cast_arg(e, t, &DataType::Int64));
            }
            (f("substring", substring), out)
        }
        "upper" | "lower" | "trim" | "btrim" | "ltrim" | "rtrim" | "reverse" => {
            arity(name, &args, 1, 1)?;
            want_string(name, &types[0])?;
            let ev: fn(&[ColumnarValue], usize) -> Result<ColumnarValue> = match name {
                "upper" => |a, _| map_str(&a[0], |s| s.to_uppercase()),
                "lower" => |a, _| map_str(&a[0], |s| s.to_lowercase()),
                "trim" | "btrim" => |a, _| map_str(&a[0], |s| s.trim().to_string()),
                "ltrim" => |a, _| map_str(&a[0], |s| s.trim_start().to_string()),
                "rtrim" => |a, _| map_str(&a[0], |s| s.trim_end().to_string()),
                _ => |a, _| map_str(&a[0], |s| s.chars().rev().collect()),
            };
            (f("string_fn", ev), strings(args))
        }
        "length" | "char_length" | "character_length" | "octet_length" => {
            arity(name, &args, 1, 1)?;
            want_string(name, &types[0])?;
            let ev: fn(&[ColumnarValue], usize) -> Result<ColumnarValue> = if name == "octet_length"
            {
                |a, _| map_str_int(&a[0], |s| s.len() as i64)
            } else {
                |a, _| map_str_int(&a[0], |s| s.chars().count() as i64)
            };
            (f("length", ev), strings(args))
        }
        "concat" => (f("concat", concat_fn), strings(args)),
        "starts_with" | "ends_with" | "strpos" | "left" | "right" | "replace" => {
            let n = if name == "replace" { 3 } else { 2 };
            arity(name, &args, n, n)?;
            want_string(name, &types[0])?;
            let args: Vec<PhysExpr> = args
                .into_iter()
                .zip(types)
                .map(|(a, t)| {
                    let to = if t.is_integer() {
                        DataType::Int64
                    } else {
                        DataType::Utf8
                    };
                    cast_arg(a, t, &to)
                })
                .collect();
            let ev: fn(&[ColumnarValue], usize) -> Result<ColumnarValue> = match name {
                "starts_with" => |a, n| str2_bool(a, n, |s, p| s.starts_with(p)),
                "ends_with" => |a, n| str2_bool(a, n, |s, p| s.ends_with(p)),
                "strpos" => |a, n| {
                    str2_int(a, n, |s, p| {
                        s.find(p).map_or(0, |i| s[..i].chars().count() as i64 + 1)
                    })
                },
                "left" => |a, n| {
                    str_int_str(a, n, |s, k| {
                        let c = s.chars().count() as i64;
                        let take = if k >= 0 { k } else { (c + k).max(0) };
                        s.chars().take(take as usize).collect()
                    })
                },
                "right" => |a, n| {
                    str_int_str(a, n, |s, k| {
                        let c = s.chars().count() as i64;
                        let take = if k >= 0 { k.min(c) } else { (c + k).max(0) };
                        s.chars().skip((c - take) as usize).collect()
                    })
                },
                _ => replace_fn,
            };
            (f("string_fn2", ev), args)
        }
        "coalesce" | "nullif" => {
            if name == "nullif" {
                arity(name, &args, 2, 2)?;
            } else if args.is_empty() {
                return Err(SluiceError::Type(
                    "coalesce() needs at least one argument".into(),
                ));
            }
            let mut common = DataType::Null;
            for t in types {
                common = common_type(&common, t).ok_or_else(|| {
                    SluiceError::Type(format!(
                        "{name}() arguments have incompatible types {common} and {t}"
                    ))
                })?;
            }
            let args = args
                .into_iter()
                .zip(types)
                .map(|(a, t)| cast_arg(a, t, &common))
                .collect();
            if name == "coalesce" {
                (f("coalesce", coalesce), args)
            } else {
                (f("nullif", nullif), args)
            }
        }
        "abs" => {
            arity(name, &args, 1, 1)?;
            if !is_numeric(&types[0]) {
                return Err(SluiceError::Type(format!(
                    "abs() needs a number, got {}",
                    types[0]
                )));
            }
            (f("abs", abs), args)
        }
        "round" | "floor" | "ceil" | "ceiling" | "sqrt" => {
            arity(name, &args, 1, if name == "round" { 2 } else { 1 })?;
            if !is_numeric(&types[0]) {
                return Err(SluiceError::Type(format!(
                    "{name}() needs a number, got {}",
                    types[0]
                )));
            }
            let mut a: Vec<PhysExpr> = vec![];
            for (i, (e, t)) in args.into_iter().zip(types).enumerate() {
                a.push(cast_arg(
                    e,
                    t,
                    if i == 0 {
                        &DataType::Float64
                    } else {
                        &DataType::Int64
                    },
                ));
            }
            let ev: fn(&[ColumnarValue], usize) -> Result<ColumnarValue> = match name {
                "round" => round,
                "floor" => |a, _| map_f64(&a[0], f64::floor),
                "sqrt" => |a, _| map_f64(&a[0], f64::sqrt),
                _ => |a, _| map_f64(&a[0], f64::ceil),
            };
            (f("math", ev), a)
        }
        "__one_row" => {
            arity(name, &args, 2, 2)?;
            (f("__one_row", one_row), args)
        }
        "date_part" | "extract" => {
            arity(name, &args, 2, 2)?;
            if !types[1].is_temporal() {
                return Err(SluiceError::Type(format!(
                    "{name}() needs a date or timestamp, got {}",
                    types[1]
                )));
            }
            (f("date_part", date_part_fn), args)
        }
        "to_timestamp_ltz" => {
            arity(name, &args, 1, 2)?;
            if !types.iter().all(|t| t.is_integer() || *t == DataType::Null) {
                return Err(SluiceError::Type(
                    "to_timestamp_ltz(epoch, precision) needs integer arguments".into(),
                ));
            }
            let a = args
                .into_iter()
                .zip(types)
                .map(|(a, t)| cast_arg(a, t, &DataType::Int64))
                .collect();
            (f("to_timestamp_ltz", to_timestamp_ltz), a)
        }
        "to_timestamp" => {
            arity(name, &args, 1, 2)?;
            want_string(name, &types[0])?;
            if let Some(t) = types.get(1) {
                want_string(name, t)?;
            }
            (f("to_timestamp", to_timestamp), strings(args))
        }
        "proctime" => {
            arity(name, &args, 0, 0)?;
            (f("proctime", proctime), args)
        }
        "current_watermark" => {
            arity(name, &args, 1, 1)?;
            if !matches!(types[0], DataType::Timestamp(..)) {
                return Err(SluiceError::Type(format!(
                    "current_watermark() takes the event-time column, a TIMESTAMP; got {}",
                    types[0]
                )));
            }
            (f(CURRENT_WATERMARK, current_watermark), args)
        }
        other => {
            let hints = crate::error::nearest(other, FUNCTION_NAMES.iter().copied(), 3);
            return Err(SluiceError::plan(format!(
                "unknown function {other}(){}",
                crate::error::did_you_mean(&hints)
            )));
        }
    })
}

fn scalar_like(args: &[ColumnarValue], out: ArrayRef) -> ColumnarValue {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        ColumnarValue::Scalar(out)
    } else {
        ColumnarValue::Array(out)
    }
}

fn rows_of(args: &[ColumnarValue], n: usize) -> usize {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        1
    } else {
        n
    }
}

fn utf8(v: &ColumnarValue, n: usize) -> Result<ArrayRef> {
    let a = v.clone().into_array(n)?;
    Ok(if *a.data_type() == DataType::Utf8 {
        a
    } else {
        arrow::compute::cast(&a, &DataType::Utf8)?
    })
}

fn map_str(v: &ColumnarValue, f: impl Fn(&str) -> String) -> Result<ColumnarValue> {
    let a = utf8(v, 1)?;
    let out: StringArray = a.as_string::<i32>().iter().map(|s| s.map(&f)).collect();
    Ok(scalar_like(std::slice::from_ref(v), Arc::new(out)))
}

fn map_str_int(v: &ColumnarValue, f: impl Fn(&str) -> i64) -> Result<ColumnarValue> {
    let a = utf8(v, 1)?;
    let out: Int64Array = a.as_string::<i32>().iter().map(|s| s.map(&f)).collect();
    Ok(scalar_like(std::slice::from_ref(v), Arc::new(out)))
}

fn map_f64(v: &ColumnarValue, f: impl Fn(f64) -> f64) -> Result<ColumnarValue> {
    let a = v.clone().into_array(1)?;
    let out: Float64Array = a.as_primitive::<Float64Type>().unary(f);
    Ok(scalar_like(std::slice::from_ref(v), Arc::new(out)))
}

fn str2_bool(
    a: &[ColumnarValue],
    n: usize,
    f: impl Fn(&str, &str) -> bool,
) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let (x, y) = (utf8(&a[0], rows)?, utf8(&a[1], rows)?);
    let out: BooleanArray = x
        .as_string::<i32>()
        .iter()
        .zip(y.as_string::<i32>().iter())
        .map(|(s, p)| Some(f(s?, p?)))
        .collect();
    Ok(scalar_like(a, Arc::new(out)))
}

fn str2_int(a: &[ColumnarValue], n: usize, f: impl Fn(&str, &str) -> i64) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let (x, y) = (utf8(&a[0], rows)?, utf8(&a[1], rows)?);
    let out: Int64Array = x
        .as_string::<i32>()
        .iter()
        .zip(y.as_string::<i32>().iter())
        .map(|(s, p)| Some(f(s?, p?)))
        .collect();
    Ok(scalar_like(a, Arc::new(out)))
}

fn str_int_str(
    a: &[ColumnarValue],
    n: usize,
    f: impl Fn(&str, i64) -> String,
) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let x = utf8(&a[0], rows)?;
    let k = a[1].clone().into_array(rows)?;
    let out: StringArray = x
        .as_string::<i32>()
        .iter()
        .zip(k.as_primitive::<Int64Type>().iter())
        .map(|(s, k)| Some(f(s?, k?)))
        .collect();
    Ok(scalar_like(a, Arc::new(out)))
}

fn replace_fn(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let (x, from, to) = (utf8(&a[0], rows)?, utf8(&a[1], rows)?, utf8(&a[2], rows)?);
    let out: StringArray = (0..rows)
        .map(|i| {
            let (s, f, t) = (
                x.as_string::<i32>(),
                from.as_string::<i32>(),
                to.as_string::<i32>(),
            );
            if s.is_null(i) || f.is_null(i) || t.is_null(i) {
                None
            } else {
                Some(s.value(i).replace(f.value(i), t.value(i)))
            }
        })
        .collect();
    Ok(scalar_like(a, Arc::new(out)))
}

fn scalar_i64(v: &ColumnarValue, what: &str) -> Result<Option<i64>> {
    match v {
        ColumnarValue::Scalar(a) => Ok(if a.is_null(0) {
            None
        } else {
            Some(a.as_primitive::<Int64Type>().value(0))
        }),
        ColumnarValue::Array(_) => Err(SluiceError::unsupported(format!(
            "substring() with a non-constant {what}"
        ))),
    }
}

/// SQL `SUBSTRING(s FROM start FOR len)`: 1-based, counted in characters.
fn substring(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let rows = rows_of(&a[..1], n);
    let s = utf8(&a[0], rows)?;
    let Some(start) = scalar_i64(&a[1], "start")? else {
        return Ok(ColumnarValue::Scalar(arrow::array::new_null_array(
            &DataType::Utf8,
            1,
        )));
    };
    let len = match a.get(2) {
        Some(v) => match scalar_i64(v, "length")? {
            Some(l) if l < 0 => {
                return Err(SluiceError::exec("negative substring length not allowed"))
            }
            Some(l) => Some(l),
            None => {
                return Ok(ColumnarValue::Scalar(arrow::array::new_null_array(
                    &DataType::Utf8,
                    1,
                )))
            }
        },
        None => None,
    };
    // Positions before 1 eat into the length, as in PostgreSQL.
    let (from, len) = if start >= 1 {
        (start - 1, len)
    } else {
        (0, len.map(|l| (l + start - 1).max(0)))
    };
    let out = arrow::compute::kernels::substring::substring_by_char(
        s.as_string::<i32>(),
        from,
        len.map(|l| l as u64),
    )?;
    Ok(scalar_like(&a[..1], Arc::new(out)))
}

/// `a || b`: NULL if either side is NULL.
pub fn concat_op(l: &ColumnarValue, r: &ColumnarValue, n: usize) -> Result<ColumnarValue> {
    let args = [l.clone(), r.clone()];
    let rows = rows_of(&args, n);
    let (x, y) = (utf8(l, rows)?, utf8(r, rows)?);
    let out = arrow::compute::kernels::concat_elements::concat_elements_utf8(
        x.as_string::<i32>(),
        y.as_string::<i32>(),
    )?;
    Ok(scalar_like(&args, Arc::new(out)))
}

/// `concat(a, b, ...)`: NULL arguments are skipped.
fn concat_fn(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let arrays = a
        .iter()
        .map(|v| utf8(v, rows))
        .collect::<Result<Vec<_>>>()?;
    let out: StringArray = (0..rows)
        .map(|i| {
            let mut s = String::new();
            for arr in &arrays {
                let sa = arr.as_string::<i32>();
                if !sa.is_null(i) {
                    s.push_str(sa.value(i));
                }
            }
            Some(s)
        })
        .collect();
    Ok(scalar_like(a, Arc::new(out)))
}

fn coalesce(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let mut it = a.iter().rev();
    let mut acc = match it.next() {
        Some(v) => v.clone().into_array(rows)?,
        None => return Err(SluiceError::exec("coalesce() without arguments")),
    };
    for v in it {
        let arr = v.clone().into_array(rows)?;
        let present = arrow::compute::is_not_null(&arr)?;
        acc = zip(&present, &arr, &acc)?;
    }
    Ok(scalar_like(a, acc))
}

fn nullif(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let (x, y) = (
        a[0].clone().into_array(rows)?,
        a[1].clone().into_array(rows)?,
    );
    let eq: ArrayRef = Arc::new(cmp::eq(&x, &y)?);
    let eq = crate::physical::expr::to_mask(&eq)?;
    let nulls = arrow::array::new_null_array(x.data_type(), rows);
    Ok(scalar_like(a, zip(&eq, &nulls, &x)?))
}

fn abs(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let x = a[0].clone().into_array(rows)?;
    let zero = arrow::compute::cast(&Int64Array::from(vec![0]), x.data_type())?;
    let neg: ArrayRef = Arc::new(cmp::lt(&x, &arrow::array::Scalar::new(zero))?);
    let neg = crate::physical::expr::to_mask(&neg)?;
    Ok(scalar_like(a, zip(&neg, &numeric::neg(&x)?, &x)?))
}

fn round(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let digits = match a.get(1) {
        Some(ColumnarValue::Scalar(d)) if !d.is_null(0) => d.as_primitive::<Int64Type>().value(0),
        Some(ColumnarValue::Scalar(_)) => {
            return Ok(ColumnarValue::Scalar(arrow::array::new_null_array(
                &DataType::Float64,
                1,
            )))
        }
        Some(ColumnarValue::Array(_)) => {
            return Err(SluiceError::unsupported("round() with non-constant digits"))
        }
        None => 0,
    };
    let _ = n;
    let scale = 10f64.powi(digits as i32);
    map_f64(&a[0], move |v| (v * scale).round() / scale)
}

/// Checks a scalar subquery's row count (first argument) and passes its value through.
fn one_row(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let counts = a[0].clone().into_array(rows)?;
    if let Some(c) = counts.as_any().downcast_ref::<Int64Array>() {
        if c.iter().any(|v| v.is_some_and(|v| v > 1)) {
            return Err(SluiceError::exec(
                "more than one row returned by a subquery used as an expression",
            ));
        }
    }
    Ok(a[1].clone())
}

/// Flink's `PROCTIME()`: the wall-clock time when the batch is evaluated, as a TIMESTAMP
/// (microseconds, UTC, no zone).
fn proctime(_: &[ColumnarValue], _n: usize) -> Result<ColumnarValue> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    Ok(ColumnarValue::Scalar(Arc::new(
        arrow::array::TimestampMicrosecondArray::from(vec![now]),
    )))
}

/// The name [`PhysExpr::bind_watermark`] looks for.
pub const CURRENT_WATERMARK: &str = "current_watermark";

/// Flink's `CURRENT_WATERMARK(ts)`: the watermark the evaluating operator has seen, in the
/// type of `ts`; NULL before the first watermark and in batch queries. Called with `ts`
/// only it is NULL; a streaming operator binds the watermark (µs) as a second argument.
fn current_watermark(a: &[ColumnarValue], _n: usize) -> Result<ColumnarValue> {
    let t = a[0].data_type().clone();
    match a.get(1) {
        None => Ok(ColumnarValue::Scalar(arrow::array::new_null_array(&t, 1))),
        Some(ColumnarValue::Scalar(us)) | Some(ColumnarValue::Array(us)) => {
            let us = arrow::compute::cast(
                us,
                &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
            )?;
            Ok(ColumnarValue::Scalar(arrow::compute::cast(&us, &t)?))
        }
    }
}

/// Flink's `TO_TIMESTAMP_LTZ(epoch, precision)`: seconds (precision 0) or milliseconds
/// (precision 3, the default) since the epoch as a TIMESTAMP (microseconds, no zone).
fn to_timestamp_ltz(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let precision = match a.get(1) {
        None => 3,
        Some(ColumnarValue::Scalar(p)) if p.is_valid(0) => p.as_primitive::<Int64Type>().value(0),
        Some(_) => {
            return Err(SluiceError::Type(
                "to_timestamp_ltz() needs a constant precision (0 or 3)".into(),
            ))
        }
    };
    let factor = match precision {
        0 => 1_000_000,
        3 => 1_000,
        p => {
            return Err(SluiceError::Type(format!(
                "to_timestamp_ltz() precision must be 0 or 3, got {p}"
            )))
        }
    };
    let rows = rows_of(&a[..1], n);
    let v = a[0].clone().into_array(rows)?;
    let micros: arrow::array::TimestampMicrosecondArray = v
        .as_primitive::<Int64Type>()
        .unary_opt(|x: i64| x.checked_mul(factor));
    Ok(scalar_like(&a[..1], Arc::new(micros)))
}

/// `TO_TIMESTAMP(string)`: `yyyy-MM-dd HH:mm:ss[.fraction]` (or with a `T`) as a
/// TIMESTAMP; a string that is not one is an error, not a NULL.
fn to_timestamp(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let rows = rows_of(a, n);
    let v = a[0].clone().into_array(rows)?;
    if let Some(format) = a.get(1) {
        let ColumnarValue::Scalar(f) = format else {
            return Err(SluiceError::Type(
                "TO_TIMESTAMP(string, format) needs a constant format".into(),
            ));
        };
        let f = arrow::compute::cast(f, &DataType::Utf8)?;
        let f = f.as_string::<i32>();
        if f.is_null(0) {
            return Ok(scalar_like(
                a,
                arrow::array::new_null_array(
                    &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
                    rows,
                ),
            ));
        }
        let out = crate::physical::time_format::parse_with(&v, f.value(0))?;
        return Ok(scalar_like(a, out));
    }
    let t = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
    let opts = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    let out = arrow::compute::cast_with_options(&v, &t, &opts)
        .map_err(|e| SluiceError::Type(format!("to_timestamp(): {e}")))?;
    Ok(scalar_like(a, out))
}

fn date_part_fn(a: &[ColumnarValue], n: usize) -> Result<ColumnarValue> {
    let part = match &a[0] {
        ColumnarValue::Scalar(p) if is_string(p.data_type()) => {
            let p = arrow::compute::cast(p, &DataType::Utf8)?;
            p.as_string::<i32>().value(0).to_lowercase()
        }
        _ => {
            return Err(SluiceError::Type(
                "date_part() needs a constant part name".into(),
            ))
        }
    };
    let dp = match part.as_str() {
        "year" | "years" => DatePart::Year,
        "quarter" => DatePart::Quarter,
        "month" | "months" => DatePart::Month,
        "week" => DatePart::Week,
        "day" | "days" => DatePart::Day,
        "dow" => DatePart::DayOfWeekSunday0,
        "doy" => DatePart::DayOfYear,
        "hour" => DatePart::Hour,
        "minute" => DatePart::Minute,
        "second" => DatePart::Second,
        other => return Err(SluiceError::Type(format!("unknown date part '{other}'"))),
    };
    let rows = rows_of(&a[1..], n);
    let x = a[1].clone().into_array(rows)?;
    let out = date_part(&x, dp)?;
    let out = arrow::compute::cast(&out, &DataType::Int64)?;
    Ok(scalar_like(&a[1..], out))
}
