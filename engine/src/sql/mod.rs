//! SQL front end: parsing with `sqlparser` and planning into logical plans.
//!
//! `parse` turns text into [`SqlStatement`]s (sqlparser's AST plus the Sluice-specific
//! `CREATE EXTERNAL TABLE`); `planner::SqlPlanner` turns queries into [`crate::logical::plan::LogicalPlan`]s.

pub mod expr;
pub mod flink;
pub mod outer_rows;
pub mod params;
pub mod planner;
pub mod select;
pub mod subquery;
pub mod window_tvf;

use std::sync::Arc;

use arrow::array::{Date32Array, Decimal128Array, Int64Array, IntervalMonthDayNanoArray};
use arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit};
use sqlparser::ast::{self as ast, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{Expr, Scalar};

/// File formats of `CREATE EXTERNAL TABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header line.
    Csv,
}

/// A parsed statement.
#[derive(Debug, Clone)]
pub enum SqlStatement {
    /// Any statement sqlparser understands.
    Standard(Box<Statement>),
    /// `CREATE EXTERNAL TABLE name STORED AS PARQUET|CSV LOCATION 'path'`.
    CreateExternalTable {
        /// Table name.
        name: String,
        /// File format.
        format: FileFormat,
        /// File or directory.
        location: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// Flink's `CREATE TABLE name (columns, computed AS expr, WATERMARK FOR ts AS expr)
    /// WITH (options)`: a connector table with computed columns and/or event time.
    CreateTimeTable {
        /// Table name.
        name: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// Stored and computed columns, in declared order.
        elements: Vec<flink::TableElement>,
        /// The event-time column and its watermark.
        watermark: Option<flink::WatermarkDef>,
        /// `WITH` options as text.
        options: Vec<(String, String)>,
    },
}

/// Parses `sql` into statements (separated by `;`); errors carry line and column.
pub fn parse(sql: &str) -> Result<Vec<SqlStatement>> {
    parse_inner(sql).map_err(|e| match e {
        SluiceError::Parse(m) if !m.contains("Line:") => {
            let line = sql.lines().count().max(1);
            let col = sql.lines().last().map_or(0, |l| l.chars().count()) + 1;
            SluiceError::Parse(format!("{m} at Line: {line}, Column: {col} (end of input)"))
        }
        other => other,
    })
}

fn parse_inner(sql: &str) -> Result<Vec<SqlStatement>> {
    let dialect = GenericDialect {};
    let tokens = sqlparser::tokenizer::Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SluiceError::Parse(e.to_string()))?;
    let mut parser =
        Parser::new(&dialect).with_tokens_with_locations(flink::rewrite_window_tvfs(tokens));
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        if parser.parse_keywords(&[Keyword::CREATE, Keyword::EXTERNAL, Keyword::TABLE]) {
            out.push(parse_external_table(&mut parser)?);
        } else if let Some(st) = parser
            .maybe_parse(|p| {
                p.expect_keywords(&[Keyword::CREATE, Keyword::TABLE])?;
                flink::parse_time_table(p)
            })
            .map_err(|e| SluiceError::Parse(e.to_string()))?
        {
            out.push(st);
        } else {
            let st = parser
                .parse_statement()
                .map_err(|e| SluiceError::Parse(e.to_string()))?;
            out.push(SqlStatement::Standard(Box::new(st)));
        }
        if parser.peek_token().token != Token::EOF && !parser.consume_token(&Token::SemiColon) {
            let t = parser.peek_token();
            return Err(SluiceError::Parse(format!(
                "expected end of statement, found: {}{}",
                t.token, t.span.start
            )));
        }
    }
    Ok(out)
}

fn parse_external_table(p: &mut Parser) -> Result<SqlStatement> {
    let perr = |e: sqlparser::parser::ParserError| SluiceError::Parse(e.to_string());
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&p.parse_object_name(false).map_err(perr)?);
    p.expect_keywords(&[Keyword::STORED, Keyword::AS])
        .map_err(perr)?;
    let fmt = p.parse_identifier().map_err(perr)?;
    let format = match fmt.value.to_uppercase().as_str() {
        "PARQUET" => FileFormat::Parquet,
        "CSV" => FileFormat::Csv,
        other => {
            return Err(SluiceError::unsupported(format!(
                "file format {other} (supported: PARQUET, CSV)"
            )))
        }
    };
    p.expect_keyword(Keyword::LOCATION).map_err(perr)?;
    let location = p.parse_literal_string().map_err(perr)?;
    Ok(SqlStatement::CreateExternalTable {
        name,
        format,
        location,
        if_not_exists,
    })
}

/// An identifier as Sluice sees it: unquoted identifiers are case-insensitive (lower-cased).
pub fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// A (possibly dotted) object name; the last part is the name.
pub fn object_name(n: &ast::ObjectName) -> String {
    n.0.iter()
        .filter_map(|p| p.as_ident().map(ident))
        .collect::<Vec<_>>()
        .join(".")
}

/// The `WITH (key = value, ...)` options of a `CREATE TABLE`, as text (`None` when the
/// statement has no `WITH` clause). Keys and values may be quoted strings (`'connector' =
/// 'datagen'`), identifiers or numbers.
pub fn with_options(opts: &ast::CreateTableOptions) -> Result<Option<Vec<(String, String)>>> {
    let ast::CreateTableOptions::With(list) = opts else {
        return Ok(None);
    };
    list.iter()
        .map(|o| match o {
            ast::SqlOption::KeyValue { key, value } => {
                Ok((key.value.clone(), option_value(&key.value, value)?))
            }
            other => Err(SluiceError::unsupported(format!(
                "table option {other} (expected 'key' = 'value')"
            ))),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn option_value(key: &str, e: &ast::Expr) -> Result<String> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => Ok(s.clone()),
            ast::Value::Number(n, _) => Ok(n.to_string()),
            ast::Value::Boolean(b) => Ok(b.to_string()),
            other => Err(SluiceError::plan(format!(
                "option '{key}' must be a string literal, got {other}"
            ))),
        },
        ast::Expr::Identifier(i) => Ok(i.value.clone()),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => Ok(format!("-{}", option_value(key, expr)?)),
        other => Err(SluiceError::plan(format!(
            "option '{key}' must be a string literal, got {other}"
        ))),
    }
}

/// The Arrow type of a SQL type.
pub fn convert_data_type(t: &ast::DataType) -> Result<DataType> {
    use ast::DataType as S;
    Ok(match t {
        S::Boolean | S::Bool => DataType::Boolean,
        S::TinyInt(_) => DataType::Int8,
        S::SmallInt(_) | S::Int2(_) => DataType::Int16,
        S::Int(_) | S::Integer(_) | S::Int4(_) | S::Int32 => DataType::Int32,
        S::BigInt(_) | S::Int8(_) | S::Int64 => DataType::Int64,
        S::Real | S::Float4 | S::Float32 => DataType::Float32,
        S::Double(_) | S::DoublePrecision | S::Float8 | S::Float64 => DataType::Float64,
        S::Float(info) => match info {
            ast::ExactNumberInfo::Precision(p) if *p <= 24 => DataType::Float32,
            _ => DataType::Float64,
        },
        S::Decimal(info) | S::Numeric(info) | S::Dec(info) => match info {
            ast::ExactNumberInfo::None => DataType::Decimal128(38, 10),
            ast::ExactNumberInfo::Precision(p) => DataType::Decimal128(precision(*p)?, 0),
            ast::ExactNumberInfo::PrecisionAndScale(p, s) => {
                let p = precision(*p)?;
                if *s < 0 || *s > i64::from(p) {
                    return Err(SluiceError::plan(format!(
                        "DECIMAL scale {s} must be between 0 and the precision {p}"
                    )));
                }
                DataType::Decimal128(p, *s as i8)
            }
        },
        S::Char(_)
        | S::Character(_)
        | S::Varchar(_)
        | S::CharVarying(_)
        | S::CharacterVarying(_)
        | S::Text
        | S::String(_) => DataType::Utf8,
        S::Date => DataType::Date32,
        S::Timestamp(_, _) | S::Datetime(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => return Err(SluiceError::unsupported(format!("SQL type {other}"))),
    })
}

fn precision(p: u64) -> Result<u8> {
    if (1..=38).contains(&p) {
        Ok(p as u8)
    } else {
        Err(SluiceError::plan(format!(
            "DECIMAL precision {p} must be between 1 and 38"
        )))
    }
}

/// A numeric literal: integers are BIGINT, decimals keep their exact digits as DECIMAL,
/// exponents make DOUBLE.
pub fn number_literal(s: &str) -> Result<Expr> {
    if s.contains(['e', 'E']) {
        let v: f64 = s
            .parse()
            .map_err(|_| SluiceError::Parse(format!("invalid number {s}")))?;
        return Ok(Expr::Literal(Scalar(Arc::new(
            arrow::array::Float64Array::from(vec![v]),
        ))));
    }
    if let Some((int, frac)) = s.split_once('.') {
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        let scale = frac.len();
        let precision = digits.len().max(scale).max(1);
        if precision > 38 {
            let v: f64 = s
                .parse()
                .map_err(|_| SluiceError::Parse(format!("invalid number {s}")))?;
            return Ok(Expr::Literal(Scalar(Arc::new(
                arrow::array::Float64Array::from(vec![v]),
            ))));
        }
        let v: i128 = if digits.is_empty() {
            0
        } else {
            digits
                .parse()
                .map_err(|_| SluiceError::Parse(format!("invalid number {s}")))?
        };
        let arr = Decimal128Array::from(vec![v])
            .with_precision_and_scale(precision as u8, scale as i8)?;
        return Ok(Expr::Literal(Scalar(Arc::new(arr))));
    }
    match s.parse::<i64>() {
        Ok(v) => Ok(Expr::Literal(Scalar(Arc::new(Int64Array::from(vec![v]))))),
        Err(_) => number_literal(&format!("{s}.0"))
            .map_err(|_| SluiceError::Parse(format!("invalid number {s}"))),
    }
}

/// A `DATE 'YYYY-MM-DD'` literal.
pub fn date_literal(s: &str) -> Result<Expr> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| SluiceError::Parse(format!("invalid date '{s}' (expected YYYY-MM-DD)")))?;
    let epoch =
        chrono::NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(|| SluiceError::exec("epoch"))?;
    let days = (d - epoch).num_days() as i32;
    Ok(Expr::Literal(Scalar(Arc::new(Date32Array::from(vec![
        days,
    ])))))
}

/// The literal of an `INTERVAL` expression (its value must be a constant).
pub fn interval_expr(iv: &ast::Interval) -> Result<Expr> {
    let v = match iv.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::Number(s, _) => s.clone(),
            other => return Err(SluiceError::plan(format!("invalid interval {other}"))),
        },
        other => return Err(SluiceError::unsupported(format!("interval value {other}"))),
    };
    interval_literal(&v, iv.leading_field.as_ref())
}

/// An `INTERVAL 'n' unit` or `INTERVAL 'n unit'` literal.
pub fn interval_literal(value: &str, unit: Option<&ast::DateTimeField>) -> Result<Expr> {
    let (num, unit_s) = match unit {
        Some(u) => (value.trim().to_string(), u.to_string().to_lowercase()),
        None => {
            let mut parts = value.split_whitespace();
            let n = parts.next().unwrap_or_default().to_string();
            let u = parts.next().unwrap_or("day").to_lowercase();
            (n, u)
        }
    };
    let invalid = || SluiceError::Parse(format!("invalid interval '{value}'"));
    let unit = unit_s.trim_end_matches('s');
    // Seconds may have a fraction (`'0.3' SECOND`), to the nanosecond.
    if unit == "second" {
        let nanos = fraction_nanos(&num).ok_or_else(invalid)?;
        return Ok(Expr::Literal(Scalar(Arc::new(
            IntervalMonthDayNanoArray::from(vec![IntervalMonthDayNano::new(0, 0, nanos)]),
        ))));
    }
    let n: i64 = num.parse().map_err(|_| invalid())?;
    let int32 = |v: Option<i64>| v.and_then(|v| i32::try_from(v).ok()).ok_or_else(invalid);
    let nanos = |per: i64| n.checked_mul(per).ok_or_else(invalid);
    let v = match unit {
        "year" => IntervalMonthDayNano::new(int32(n.checked_mul(12))?, 0, 0),
        "month" => IntervalMonthDayNano::new(int32(Some(n))?, 0, 0),
        "week" => IntervalMonthDayNano::new(0, int32(n.checked_mul(7))?, 0),
        "day" => IntervalMonthDayNano::new(0, int32(Some(n))?, 0),
        "hour" => IntervalMonthDayNano::new(0, 0, nanos(3_600_000_000_000)?),
        "minute" => IntervalMonthDayNano::new(0, 0, nanos(60_000_000_000)?),
        "millisecond" => IntervalMonthDayNano::new(0, 0, nanos(1_000_000)?),
        other => return Err(SluiceError::unsupported(format!("interval unit {other}"))),
    };
    Ok(Expr::Literal(Scalar(Arc::new(
        IntervalMonthDayNanoArray::from(vec![v]),
    ))))
}

/// Nanoseconds in a decimal number of seconds (`"1.5"`, `"-0.25"`, at most 9 decimals).
fn fraction_nanos(seconds: &str) -> Option<i64> {
    let (neg, digits) = match seconds.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, seconds.trim()),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.len() > 9 || !(whole.chars().chain(frac.chars())).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = format!("{frac:0<9}").parse().ok()?;
    let n = whole.checked_mul(1_000_000_000)?.checked_add(frac)?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_seconds_and_overflowing_intervals() {
        assert_eq!(fraction_nanos("0.3"), Some(300_000_000));
        assert_eq!(fraction_nanos("-1.5"), Some(-1_500_000_000));
        assert_eq!(fraction_nanos("2"), Some(2_000_000_000));
        assert_eq!(fraction_nanos("1.2345678901"), None);
        assert_eq!(fraction_nanos("1e3"), None);
        assert!(interval_literal("99999999999999", Some(&ast::DateTimeField::Hour)).is_err());
        assert!(interval_literal("9999999999", Some(&ast::DateTimeField::Year)).is_err());
    }

    #[test]
    fn decimal_literals_keep_exact_digits() {
        let Expr::Literal(s) = number_literal("0.05").expect("lit") else {
            panic!("literal")
        };
        assert_eq!(s.data_type(), &DataType::Decimal128(2, 2));
        let Expr::Literal(s) = number_literal("100.00").expect("lit") else {
            panic!("literal")
        };
        assert_eq!(s.data_type(), &DataType::Decimal128(5, 2));
        let Expr::Literal(s) = number_literal("42").expect("lit") else {
            panic!("literal")
        };
        assert_eq!(s.data_type(), &DataType::Int64);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let e = parse("SELECT *\nFROM t WHERE")
            .expect_err("bad sql")
            .to_string();
        assert!(e.contains("Line: 2"), "{e}");
    }

    #[test]
    fn external_table_statement_parses() {
        let s = parse("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/x'").expect("parse");
        assert!(
            matches!(&s[0], SqlStatement::CreateExternalTable { name, format: FileFormat::Parquet, .. } if name == "t")
        );
    }
}
