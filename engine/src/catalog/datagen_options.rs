//! The `WITH (...)` options of the `datagen` connector: parsing and validation into a
//! [`DatagenSpec`] (how many rows, how fast, which seed, and how each column is generated).
//!
//! Option names follow Apache Flink's datagen connector (`number-of-rows`,
//! `rows-per-second`, `fields.<col>.kind`, `fields.<col>.min`, ...); `seed` is a Sluice
//! addition that makes the generated rows reproducible. See `docs/connectors.md`.

use arrow::datatypes::{DataType, Schema, TimeUnit};

use crate::error::{did_you_mean, nearest, Result, SluiceError};

/// Table-level options of the datagen connector.
pub const TABLE_OPTIONS: [&str; 4] = ["connector", "number-of-rows", "rows-per-second", "seed"];

/// Column-level options, used as `fields.<col>.<option>`.
pub const FIELD_OPTIONS: [&str; 8] = [
    "kind",
    "start",
    "end",
    "min",
    "max",
    "length",
    "null-rate",
    "max-past",
];

/// Default length of random strings (as in Flink).
pub const DEFAULT_STRING_LENGTH: usize = 100;

/// Longest random string datagen produces (guards against accidental huge allocations).
pub const MAX_STRING_LENGTH: usize = 1 << 20;

/// How one column's values are produced. Sequences count up by one from `start` per row.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnGen {
    /// Uniform integers in `[min, max]` (any integer width).
    IntRandom {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// `start + row` (any integer width).
    IntSequence {
        /// First value.
        start: i64,
    },
    /// Uniform floats in `[min, max]`.
    FloatRandom {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// `start + row` as a float.
    FloatSequence {
        /// First value.
        start: i64,
    },
    /// Uniform decimals; bounds are unscaled values at the column's scale.
    DecimalRandom {
        /// Smallest unscaled value.
        min: i128,
        /// Largest unscaled value.
        max: i128,
    },
    /// `start + row` whole units; `start` and `step` are unscaled (`step` = 10^scale).
    DecimalSequence {
        /// First unscaled value.
        start: i128,
        /// One whole unit, unscaled.
        step: i128,
    },
    /// Fair coin flips.
    BoolRandom,
    /// Random lowercase hexadecimal strings of a fixed length.
    StringRandom {
        /// Characters per value.
        length: usize,
    },
    /// The decimal text of `start + row`.
    StringSequence {
        /// First value.
        start: i64,
    },
    /// The base date (2026-01-01) minus a uniform number of days in `[0, max_past_days]`.
    DateRandom {
        /// Largest offset into the past, in days.
        max_past_days: i64,
    },
    /// The base instant (2026-01-01 00:00:00) minus a uniform number of milliseconds in
    /// `[0, max_past_ms]`.
    TimestampRandom {
        /// Largest offset into the past, in milliseconds.
        max_past_ms: i64,
    },
}

/// One column's generator and NULL proportion.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    /// How values are produced.
    pub gen: ColumnGen,
    /// Proportion of NULLs, in `[0, 1]`.
    pub null_rate: f64,
}

/// A validated datagen table definition.
#[derive(Debug, Clone, PartialEq)]
pub struct DatagenSpec {
    /// Total rows; `None` = unbounded.
    pub rows: Option<u64>,
    /// Rows per second over all partitions; 0 = as fast as possible.
    pub rows_per_second: u64,
    /// Seed: the same seed and options give the same rows.
    pub seed: u64,
    /// One entry per schema column, in schema order.
    pub columns: Vec<ColumnSpec>,
}

/// Parses and validates `options` (key → value text) for a table of `schema`.
pub fn parse_spec(schema: &Schema, options: &[(String, String)]) -> Result<DatagenSpec> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut table: Vec<(&str, &str)> = Vec::new();
    // per column: (option, key as written, value)
    let mut per_col: Vec<Vec<(&str, &str, &str)>> = vec![Vec::new(); names.len()];
    for (key, value) in options {
        if TABLE_OPTIONS.contains(&key.as_str()) {
            table.push((key, value));
            continue;
        }
        let Some((col, opt)) = key
            .strip_prefix("fields.")
            .and_then(|rest| rest.rsplit_once('.'))
        else {
            return Err(unknown_option(key, &names));
        };
        let idx = names
            .iter()
            .position(|n| *n == col)
            .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(col)));
        let Some(idx) = idx else {
            let hints = nearest(col, names.iter().copied(), 2);
            return Err(SluiceError::plan(format!(
                "datagen option '{key}' refers to column '{col}', which the table does not have{}",
                did_you_mean(&hints)
            )));
        };
        if !FIELD_OPTIONS.contains(&opt) {
            return Err(unknown_option(key, &names));
        }
        per_col[idx].push((opt, key, value));
    }
    let get = |k: &str| table.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let rows = get("number-of-rows")
        .map(|v| parse_num::<u64>("number-of-rows", v))
        .transpose()?;
    let rows_per_second = get("rows-per-second")
        .map(|v| parse_num::<u64>("rows-per-second", v))
        .transpose()?
        .unwrap_or(0);
    let seed = match get("seed") {
        None => 0,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(s) => s,
            Err(_) => parse_num::<i64>("seed", v)? as u64,
        },
    };
    let mut columns = Vec::with_capacity(names.len());
    let mut seq_rows: Option<u64> = None;
    for (field, opts) in schema.fields().iter().zip(&per_col) {
        let (spec, seq_len) = column_spec(field.name(), field.data_type(), opts)?;
        if spec.null_rate > 0.0 && !field.is_nullable() {
            return Err(SluiceError::plan(format!(
                "datagen option 'fields.{}.null-rate' must be 0 for NOT NULL column {}",
                field.name(),
                field.name()
            )));
        }
        if let Some(n) = seq_len {
            seq_rows = Some(seq_rows.map_or(n, |m| m.min(n)));
        }
        columns.push(spec);
    }
    let rows = match (rows, seq_rows) {
        (Some(r), Some(s)) => Some(r.min(s)),
        (r, s) => r.or(s),
    };
    Ok(DatagenSpec {
        rows,
        rows_per_second,
        seed,
        columns,
    })
}

fn unknown_option(key: &str, columns: &[&str]) -> SluiceError {
    let mut candidates: Vec<String> = TABLE_OPTIONS.iter().map(|s| s.to_string()).collect();
    for c in columns {
        candidates.extend(FIELD_OPTIONS.iter().map(|o| format!("fields.{c}.{o}")));
    }
    let hints = nearest(key, candidates.iter().map(String::as_str), 2);
    let hint = if hints.is_empty() {
        format!(
            " (table options: {}; column options: fields.<column>.{{{}}})",
            TABLE_OPTIONS.join(", "),
            FIELD_OPTIONS.join(", ")
        )
    } else {
        did_you_mean(&hints)
    };
    SluiceError::plan(format!("unknown datagen option '{key}'{hint}"))
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
    let what = match std::any::type_name::<T>() {
        "u64" | "usize" => "a non-negative integer",
        "i64" => "an integer",
        _ => "a number",
    };
    v.trim()
        .parse::<T>()
        .map_err(|_| SluiceError::plan(format!("datagen option '{key}' must be {what}, got '{v}'")))
}

/// The SQL-ish name of a column type, for messages.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 => "VARCHAR".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        other => other.to_string(),
    }
}

fn int_range(t: &DataType) -> Option<(i64, i64)> {
    Some(match t {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN, i64::MAX),
        _ => return None,
    })
}

/// The spec of column `name` of type `t` from its `(option, key, value)` list, plus the
/// number of rows a sequence column allows.
fn column_spec(
    name: &str,
    t: &DataType,
    opts: &[(&str, &str, &str)],
) -> Result<(ColumnSpec, Option<u64>)> {
    let get = |o: &str| {
        opts.iter()
            .rev()
            .find(|(n, _, _)| *n == o)
            .map(|x| (x.1, x.2))
    };
    let key = |o: &str| format!("fields.{name}.{o}");
    let supported = matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Boolean
            | DataType::Utf8
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Microsecond, _)
    );
    if !supported {
        return Err(SluiceError::unsupported(format!(
            "datagen cannot generate column {name} of type {} (supported: TINYINT, SMALLINT, \
             INT, BIGINT, FLOAT, DOUBLE, DECIMAL, BOOLEAN, VARCHAR, DATE, TIMESTAMP)",
            type_name(t)
        )));
    }
    let null_rate = match get("null-rate") {
        None => 0.0,
        Some((k, v)) => {
            let r: f64 = parse_num(k, v)?;
            if !(0.0..=1.0).contains(&r) {
                return Err(SluiceError::plan(format!(
                    "datagen option '{k}' must be between 0 and 1, got '{v}'"
                )));
            }
            r
        }
    };
    let sequence = match get("kind") {
        None => false,
        Some((_, v)) if v.trim().eq_ignore_ascii_case("random") => false,
        Some((_, v)) if v.trim().eq_ignore_ascii_case("sequence") => true,
        Some((k, v)) => {
            return Err(SluiceError::plan(format!(
                "datagen option '{k}' must be 'random' or 'sequence', got '{v}'"
            )))
        }
    };
    let allowed: &[&str] = if sequence {
        &["kind", "null-rate", "start", "end"]
    } else {
        match t {
            DataType::Utf8 => &["kind", "null-rate", "length"],
            DataType::Boolean => &["kind", "null-rate"],
            DataType::Date32 | DataType::Timestamp(_, _) => &["kind", "null-rate", "max-past"],
            _ => &["kind", "null-rate", "min", "max"],
        }
    };
    if let Some((o, k, _)) = opts.iter().find(|(o, _, _)| !allowed.contains(o)) {
        let kind = if sequence { "sequence" } else { "random" };
        let others: Vec<String> = allowed.iter().map(|a| key(a)).collect();
        return Err(SluiceError::plan(format!(
            "datagen option '{k}' does not apply to a {kind} {} column (options for column \
             {name}: {}){}",
            type_name(t),
            others.join(", "),
            if *o == "min" || *o == "max" || *o == "start" || *o == "end" {
                "; 'start'/'end' need kind 'sequence', 'min'/'max' kind 'random'"
            } else {
                ""
            }
        )));
    }
    if sequence {
        let (sk, sv) = get("start").ok_or_else(|| missing_bound(name, "start"))?;
        let (ek, ev) = get("end").ok_or_else(|| missing_bound(name, "end"))?;
        let start: i64 = parse_num(sk, sv)?;
        let end: i64 = parse_num(ek, ev)?;
        if start > end {
            return Err(SluiceError::plan(format!(
                "datagen option '{sk}' ({start}) must not exceed '{ek}' ({end})"
            )));
        }
        let gen = match t {
            DataType::Float32 | DataType::Float64 => ColumnGen::FloatSequence { start },
            DataType::Utf8 => ColumnGen::StringSequence { start },
            DataType::Decimal128(p, s) => {
                let step = 10i128.pow(u32::from(s.unsigned_abs()));
                let limit = 10i128.pow(u32::from(*p)) - 1;
                let (lo, hi) = (i128::from(start) * step, i128::from(end) * step);
                if lo < -limit || hi > limit {
                    return Err(SluiceError::plan(format!(
                        "datagen sequence {start}..{end} of column {name} does not fit {}",
                        type_name(t)
                    )));
                }
                ColumnGen::DecimalSequence { start: lo, step }
            }
            DataType::Boolean | DataType::Date32 | DataType::Timestamp(_, _) => {
                return Err(SluiceError::unsupported(format!(
                    "datagen kind 'sequence' for column {name} of type {} (sequences \
                     support integer, floating-point, DECIMAL and VARCHAR columns)",
                    type_name(t)
                )))
            }
            _ => {
                let (lo, hi) = int_range(t).unwrap_or((i64::MIN, i64::MAX));
                if start < lo || end > hi {
                    return Err(SluiceError::plan(format!(
                        "datagen sequence {start}..{end} of column {name} does not fit {} \
                         ({lo}..{hi})",
                        type_name(t)
                    )));
                }
                ColumnGen::IntSequence { start }
            }
        };
        let len = (i128::from(end) - i128::from(start) + 1).min(i128::from(u64::MAX)) as u64;
        return Ok((ColumnSpec { gen, null_rate }, Some(len)));
    }
    let min = get("min");
    let max = get("max");
    let gen = match t {
        DataType::Float32 | DataType::Float64 => {
            let type_max = if *t == DataType::Float32 {
                f64::from(f32::MAX)
            } else {
                f64::MAX
            };
            let lo = min.map(|(k, v)| parse_float(k, v, type_max)).transpose()?;
            let hi = max.map(|(k, v)| parse_float(k, v, type_max)).transpose()?;
            let (lo, hi) = (lo.unwrap_or(0.0), hi.unwrap_or(type_max));
            check_order(name, lo, hi)?;
            ColumnGen::FloatRandom { min: lo, max: hi }
        }
        DataType::Decimal128(p, s) => {
            let limit = 10i128.pow(u32::from(*p)) - 1;
            let lo = min.map(|(k, v)| parse_decimal(k, v, *p, *s)).transpose()?;
            let hi = max.map(|(k, v)| parse_decimal(k, v, *p, *s)).transpose()?;
            let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(limit));
            check_order(name, lo, hi)?;
            ColumnGen::DecimalRandom { min: lo, max: hi }
        }
        DataType::Boolean => ColumnGen::BoolRandom,
        DataType::Utf8 => {
            let length = match get("length") {
                None => DEFAULT_STRING_LENGTH,
                Some((k, v)) => {
                    let l: usize = parse_num(k, v)?;
                    if l > MAX_STRING_LENGTH {
                        return Err(SluiceError::plan(format!(
                            "datagen option '{k}' must be at most {MAX_STRING_LENGTH}, got {l}"
                        )));
                    }
                    l
                }
            };
            ColumnGen::StringRandom { length }
        }
        DataType::Date32 => {
            let ms = get("max-past")
                .map(|(k, v)| parse_duration_ms(k, v))
                .transpose()?;
            ColumnGen::DateRandom {
                max_past_days: ms.unwrap_or(0) / 86_400_000,
            }
        }
        DataType::Timestamp(_, _) => {
            let ms = get("max-past")
                .map(|(k, v)| parse_duration_ms(k, v))
                .transpose()?;
            ColumnGen::TimestampRandom {
                max_past_ms: ms.unwrap_or(0),
            }
        }
        _ => {
            let (tlo, thi) = int_range(t).unwrap_or((i64::MIN, i64::MAX));
            let bound = |(k, v): (&str, &str)| -> Result<i64> {
                let x: i64 = parse_num(k, v)?;
                if x < tlo || x > thi {
                    return Err(SluiceError::plan(format!(
                        "datagen option '{k}' ({x}) is out of range for {} ({tlo}..{thi})",
                        type_name(t)
                    )));
                }
                Ok(x)
            };
            let lo = min.map(bound).transpose()?.unwrap_or(tlo);
            let hi = max.map(bound).transpose()?.unwrap_or(thi);
            check_order(name, lo, hi)?;
            ColumnGen::IntRandom { min: lo, max: hi }
        }
    };
    Ok((ColumnSpec { gen, null_rate }, None))
}

fn missing_bound(name: &str, which: &str) -> SluiceError {
    SluiceError::plan(format!(
        "datagen column {name} has kind 'sequence' but no 'fields.{name}.{which}' option \
         (sequences need both 'fields.{name}.start' and 'fields.{name}.end')"
    ))
}

fn check_order<T: PartialOrd + std::fmt::Display>(name: &str, lo: T, hi: T) -> Result<()> {
    if lo > hi {
        return Err(SluiceError::plan(format!(
            "datagen option 'fields.{name}.min' must not exceed 'fields.{name}.max' \
             (min is the lower bound)"
        )));
    }
    Ok(())
}

fn parse_float(key: &str, v: &str, type_max: f64) -> Result<f64> {
    let x: f64 = parse_num(key, v)?;
    if !x.is_finite() || x.abs() > type_max {
        return Err(SluiceError::plan(format!(
            "datagen option '{key}' must be a finite number within the column's range, got '{v}'"
        )));
    }
    Ok(x)
}

/// Parses decimal text `v` into an unscaled value of `DECIMAL(p, s)`.
pub fn parse_decimal(key: &str, v: &str, p: u8, s: i8) -> Result<i128> {
    let bad = || {
        SluiceError::plan(format!(
            "datagen option '{key}' must be a number that fits DECIMAL({p},{s}), got '{v}'"
        ))
    };
    let t = v.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::from(s.unsigned_abs());
    let frac = frac.trim_end_matches('0');
    if (int.is_empty() && frac.is_empty())
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        || frac.len() > scale
        || int.len() > 38
    {
        return Err(bad());
    }
    let text = format!("{int}{frac:0<scale$}");
    let text = text.trim_start_matches('0');
    let unscaled: i128 = if text.is_empty() {
        0
    } else {
        text.parse().map_err(|_| bad())?
    };
    if unscaled > 10i128.pow(u32::from(p)) - 1 {
        return Err(bad());
    }
    Ok(if neg { -unscaled } else { unscaled })
}

/// Longest `max-past`: 36 500 days.
const MAX_PAST_MS: i64 = 36_500 * 86_400_000;

/// Parses a duration: a number of milliseconds, optionally followed by a unit
/// (`ms`, `s`, `min`, `h`, `d`), e.g. `'1000'`, `'30 s'`, `'7d'`.
pub fn parse_duration_ms(key: &str, v: &str) -> Result<i64> {
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let factor: i64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 0,
    };
    num.parse::<i64>()
        .ok()
        .filter(|_| factor > 0)
        .and_then(|n| n.checked_mul(factor))
        .filter(|ms| *ms <= MAX_PAST_MS)
        .ok_or_else(|| {
            SluiceError::plan(format!(
                "datagen option '{key}' must be a non-negative duration of at most 36500 d, \
                 such as '5000' (ms), '30 s', '10 min', '2 h' or '7 d', got '{v}'"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_at_the_column_scale() {
        assert_eq!(parse_decimal("k", "1.5", 5, 2).expect("ok"), 150);
        assert_eq!(parse_decimal("k", "-0.01", 5, 2).expect("ok"), -1);
        assert_eq!(parse_decimal("k", "999.99", 5, 2).expect("ok"), 99_999);
        assert!(parse_decimal("k", "1000", 5, 2).is_err());
        assert!(parse_decimal("k", "1.234", 5, 2).is_err());
        assert!(parse_decimal("k", "abc", 5, 2).is_err());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration_ms("k", "1500").expect("ok"), 1500);
        assert_eq!(parse_duration_ms("k", "30 s").expect("ok"), 30_000);
        assert_eq!(parse_duration_ms("k", "2d").expect("ok"), 172_800_000);
        assert!(parse_duration_ms("k", "-5").is_err());
        assert!(parse_duration_ms("k", "5 weeks").is_err());
    }
}
