//! Reference answers: parsing the `|`-separated answer files and comparing them with query
//! results.
//!
//! An answer file has a header line followed by one line per row, cells separated by `|`,
//! NULL written as an empty cell. A result is turned into the same shape with
//! [`format_batches`] (dates as `YYYY-MM-DD`, decimals in plain notation, NULL as empty) and
//! compared with [`compare_rows`]:
//!
//! * the column counts must match (column *names* are not compared: engines name unaliased
//!   expressions such as q18's `sum(l_quantity)` differently),
//! * the row counts must match, and rows are compared in order,
//! * two cells are equal when both parse as finite `f64` and `|a-b| <= 0.01` (money) or
//!   `|a-b| <= 1e-6 * max(|a|, |b|)`, or otherwise when they are equal strings after trimming
//!   trailing spaces (some reference strings end in a space).

use std::fmt;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Absolute tolerance for numeric cells (money is printed with 2-4 decimals).
pub const ABSOLUTE_TOLERANCE: f64 = 0.01;

/// Relative tolerance for numeric cells.
pub const RELATIVE_TOLERANCE: f64 = 1e-6;

/// A parsed reference answer: column names and rows of formatted cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceAnswer {
    /// Column names from the header line.
    pub columns: Vec<String>,
    /// The rows, each with one string per cell (NULL is the empty string).
    pub rows: Vec<Vec<String>>,
}

impl ReferenceAnswer {
    /// Parses an answer file: header line first, `|`-separated cells, `\n` or `\r\n` line
    /// ends. A final line end does not start another row; every other line is a row (an empty
    /// line is a row with one empty cell, i.e. a single NULL, as in q17 at SF 0.01).
    pub fn parse(text: &str) -> ReferenceAnswer {
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut lines = body
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line));
        let columns = match lines.next() {
            Some(header) if !(header.is_empty() && body.is_empty()) => split_cells(header),
            _ => Vec::new(),
        };
        let rows = lines.map(split_cells).collect();
        ReferenceAnswer { columns, rows }
    }

    /// Compares this answer with a query result. See [`compare_rows`].
    pub fn compare(&self, actual: &[RecordBatch]) -> Result<AnswerCheck, ArrowError> {
        let rows = format_batches(actual)?;
        let actual_columns = actual.first().map(RecordBatch::num_columns);
        Ok(compare_rows(self, actual_columns, &rows))
    }
}

fn split_cells(line: &str) -> Vec<String> {
    line.split('|').map(str::to_owned).collect()
}

/// Outcome of comparing a result with a reference answer: `Ok(())` when they match.
pub type AnswerCheck = Result<(), AnswerMismatch>;

/// Exactly how a result differs from its reference answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerMismatch {
    /// The result has a different number of columns.
    ColumnCount {
        /// Columns in the reference answer.
        expected: usize,
        /// Columns in the result.
        actual: usize,
    },
    /// The result has a different number of rows.
    RowCount {
        /// Rows in the reference answer.
        expected: usize,
        /// Rows in the result.
        actual: usize,
        /// The first differing cell among the rows both have, if any.
        first_difference: Option<CellDifference>,
    },
    /// A cell differs (the first one, in row-major order).
    Cell(CellDifference),
}

/// One differing cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellDifference {
    /// Row index, 0-based, not counting the header.
    pub row: usize,
    /// Column index, 0-based.
    pub column: usize,
    /// Column name from the reference header.
    pub column_name: String,
    /// Cell in the reference answer.
    pub expected: String,
    /// Cell in the result.
    pub actual: String,
}

impl fmt::Display for CellDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "row {} column {} ({}): expected {:?}, got {:?}",
            self.row, self.column, self.column_name, self.expected, self.actual
        )
    }
}

impl fmt::Display for AnswerMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerMismatch::ColumnCount { expected, actual } => {
                write!(f, "expected {expected} columns, got {actual}")
            }
            AnswerMismatch::RowCount {
                expected,
                actual,
                first_difference,
            } => {
                write!(f, "expected {expected} rows, got {actual}")?;
                if let Some(diff) = first_difference {
                    write!(f, "; first difference at {diff}")?;
                }
                Ok(())
            }
            AnswerMismatch::Cell(diff) => write!(f, "{diff}"),
        }
    }
}

impl std::error::Error for AnswerMismatch {}

/// Formats every cell of `batches` as a string: dates `YYYY-MM-DD`, decimals plain, NULL
/// as the empty string. Returns one `Vec<String>` per row, batches concatenated in order.
pub fn format_batches(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, ArrowError> {
    let options = FormatOptions::default()
        .with_null("")
        .with_date_format(Some("%Y-%m-%d"))
        .with_display_error(false);
    let mut rows = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let cells = formatters
                .iter()
                .map(|formatter| formatter.value(row).try_to_string())
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(cells);
        }
    }
    Ok(rows)
}

/// Compares a reference answer with formatted result rows. `actual_columns` is the number
/// of columns of the result, if known: it matters when the result has no rows (a result
/// without any batch has no known column count, and only its row count is checked).
///
/// Checks the column count, then the rows in order, then the row count; a row-count mismatch
/// also reports the first differing cell among the common rows.
pub fn compare_rows(
    expected: &ReferenceAnswer,
    actual_columns: Option<usize>,
    actual: &[Vec<String>],
) -> AnswerCheck {
    let expected_columns = expected.columns.len();
    let actual_columns = actual.first().map(Vec::len).or(actual_columns);
    if let Some(actual_columns) = actual_columns.filter(|&n| n != expected_columns) {
        return Err(AnswerMismatch::ColumnCount {
            expected: expected_columns,
            actual: actual_columns,
        });
    }
    let first_difference = first_difference(expected, actual);
    if expected.rows.len() != actual.len() {
        return Err(AnswerMismatch::RowCount {
            expected: expected.rows.len(),
            actual: actual.len(),
            first_difference,
        });
    }
    match first_difference {
        Some(diff) => Err(AnswerMismatch::Cell(diff)),
        None => Ok(()),
    }
}

fn first_difference(expected: &ReferenceAnswer, actual: &[Vec<String>]) -> Option<CellDifference> {
    for (row, (exp_row, act_row)) in expected.rows.iter().zip(actual).enumerate() {
        let width = exp_row.len().max(act_row.len());
        for column in 0..width {
            let exp = exp_row.get(column).map_or("<missing>", String::as_str);
            let act = act_row.get(column).map_or("<missing>", String::as_str);
            let present = column < exp_row.len() && column < act_row.len();
            if !present || !cells_equal(exp, act) {
                return Some(CellDifference {
                    row,
                    column,
                    column_name: expected.columns.get(column).cloned().unwrap_or_default(),
                    expected: exp.to_owned(),
                    actual: act.to_owned(),
                });
            }
        }
    }
    None
}

/// Cell equality: numerically within tolerance when both parse as finite numbers, otherwise
/// string equality after trimming trailing spaces.
pub fn cells_equal(expected: &str, actual: &str) -> bool {
    match (parse_number(expected), parse_number(actual)) {
        (Some(a), Some(b)) => {
            let diff = (a - b).abs();
            diff <= ABSOLUTE_TOLERANCE || diff <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
        }
        _ => expected.trim_end_matches(' ') == actual.trim_end_matches(' '),
    }
}

/// Parses a cell as a finite number. Words that Rust would parse as floats (`inf`, `NaN`)
/// are not numbers here.
fn parse_number(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    if !cell.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return None;
    }
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
    };
    use arrow::datatypes::{DataType, Field, Schema};

    fn answer(text: &str) -> ReferenceAnswer {
        ReferenceAnswer::parse(text)
    }

    fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
            .collect()
    }

    #[test]
    fn parse_header_rows_and_nulls() {
        let a = answer("a|b|c\n1|x y |\n2||z\n");
        assert_eq!(a.columns, vec!["a", "b", "c"]);
        assert_eq!(a.rows, rows(&[&["1", "x y ", ""], &["2", "", "z"]]));
        // q17 at SF 0.01: one row holding a single NULL.
        let a = answer("avg_yearly\n\n");
        assert_eq!(a.columns, vec!["avg_yearly"]);
        assert_eq!(a.rows, rows(&[&[""]]));
        // No trailing newline, CRLF line ends, header only.
        assert_eq!(answer("a|b\r\n1|2").rows, rows(&[&["1", "2"]]));
        assert!(answer("a|b\n").rows.is_empty());
        assert!(answer("").columns.is_empty());
    }

    #[test]
    fn equal_answers_match() {
        let a = answer("name|n|d\nFRANCE|1995|1995-03-11\nGERMANY|1996|1996-01-02\n");
        let actual = rows(&[
            &["FRANCE", "1995", "1995-03-11"],
            &["GERMANY", "1996", "1996-01-02"],
        ]);
        assert_eq!(compare_rows(&a, Some(3), &actual), Ok(()));
    }

    #[test]
    fn numeric_tolerance() {
        // Absolute 0.01 for money.
        assert!(cells_equal("526165934.000839", "526165934.01"));
        assert!(cells_equal("740210.7570", "740210.76"));
        assert!(cells_equal("5.6999", "5.70"));
        assert!(!cells_equal("5.6999", "5.72"));
        // Relative 1e-6 for large values.
        assert!(cells_equal("532348211.65", "532348211.9"));
        assert!(!cells_equal("532348211.65", "532349211.65"));
        assert!(cells_equal("1000926.6999", "1000927.5"));
        assert!(!cells_equal("1000926.6999", "1000928.7"));
        // Formats differ but values agree.
        assert!(cells_equal("0.0", "0"));
        assert!(cells_equal("0.0", "0.000000"));
        assert!(cells_equal("1995", "1995.0"));
        assert!(cells_equal("25.575154611454693", "25.5751546114547"));
        assert!(!cells_equal("9", "10"));
        // Strings: trailing spaces are ignored, leading ones are not.
        assert!(cells_equal(
            "TZoQwNFFO i,baXpbpin02,hvuhE,GRVIKm ",
            "TZoQwNFFO i,baXpbpin02,hvuhE,GRVIKm"
        ));
        assert!(!cells_equal(" foxes", "foxes"));
        assert!(!cells_equal("inf", "infinity"));
        assert!(cells_equal("", ""));
        assert!(!cells_equal("", "0"));
    }

    #[test]
    fn cell_mismatch_is_reported() {
        let a = answer("k|revenue\n1|10.00\n2|20.00\n");
        let actual = rows(&[&["1", "10.001"], &["2", "21.00"]]);
        let err = compare_rows(&a, Some(2), &actual).expect_err("mismatch");
        assert_eq!(
            err,
            AnswerMismatch::Cell(CellDifference {
                row: 1,
                column: 1,
                column_name: "revenue".into(),
                expected: "20.00".into(),
                actual: "21.00".into(),
            })
        );
        assert_eq!(
            err.to_string(),
            r#"row 1 column 1 (revenue): expected "20.00", got "21.00""#
        );
    }

    #[test]
    fn row_count_mismatch_is_reported() {
        let a = answer("k\n1\n2\n3\n");
        let err = compare_rows(&a, Some(1), &rows(&[&["1"], &["2"]])).expect_err("mismatch");
        assert_eq!(
            err,
            AnswerMismatch::RowCount {
                expected: 3,
                actual: 2,
                first_difference: None
            }
        );
        assert_eq!(err.to_string(), "expected 3 rows, got 2");
        let err = compare_rows(&a, Some(1), &rows(&[&["1"], &["5"], &["3"], &["4"]]))
            .expect_err("mismatch");
        match err {
            AnswerMismatch::RowCount {
                expected: 3,
                actual: 4,
                first_difference: Some(diff),
            } => assert_eq!((diff.row, diff.column), (1, 0)),
            other => panic!("unexpected {other:?}"),
        }
        // An empty result with the right schema is a row-count mismatch.
        assert!(matches!(
            compare_rows(&a, Some(1), &[]),
            Err(AnswerMismatch::RowCount {
                expected: 3,
                actual: 0,
                ..
            })
        ));
    }

    #[test]
    fn column_count_mismatch_is_reported() {
        let a = answer("a|b\n1|2\n");
        let err = compare_rows(&a, Some(3), &rows(&[&["1", "2", "3"]])).expect_err("mismatch");
        assert_eq!(
            err,
            AnswerMismatch::ColumnCount {
                expected: 2,
                actual: 3
            }
        );
        assert_eq!(err.to_string(), "expected 2 columns, got 3");
        // With no rows, the schema's column count is used.
        assert!(matches!(
            compare_rows(&answer("a|b\n"), Some(1), &[]),
            Err(AnswerMismatch::ColumnCount {
                expected: 2,
                actual: 1
            })
        ));
        assert_eq!(compare_rows(&answer("a|b\n"), Some(2), &[]), Ok(()));
    }

    #[test]
    fn record_batches_are_formatted_and_compared() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("l_orderkey", DataType::Int64, false),
            Field::new("revenue", DataType::Decimal128(38, 4), true),
            Field::new("o_orderdate", DataType::Date32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("share", DataType::Float64, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![47714, 22276])),
            Arc::new(
                Decimal128Array::from(vec![Some(2_670_105_894), None])
                    .with_precision_and_scale(38, 4)
                    .expect("valid decimal"),
            ),
            // 1995-03-11 and 1995-01-29 as days since the epoch.
            Arc::new(Date32Array::from(vec![9200, 9159])),
            Arc::new(StringArray::from(vec![Some("a "), None])),
            Arc::new(Float64Array::from(vec![
                Some(0.028648741305617557),
                Some(1.0),
            ])),
        ];
        let batch = RecordBatch::try_new(schema, columns).expect("valid batch");
        let formatted = format_batches(std::slice::from_ref(&batch)).expect("formats");
        assert_eq!(
            formatted,
            rows(&[
                &[
                    "47714",
                    "267010.5894",
                    "1995-03-11",
                    "a ",
                    "0.028648741305617557"
                ],
                &["22276", "", "1995-01-29", "", "1.0"],
            ])
        );
        let expected = answer(
            "l_orderkey|revenue|o_orderdate|name|share\n\
             47714|267010.5894|1995-03-11|a|0.0286487413\n\
             22276||1995-01-29||1.0\n",
        );
        assert_eq!(
            expected
                .compare(std::slice::from_ref(&batch))
                .expect("formats"),
            Ok(())
        );
        // Batches are concatenated in order.
        let two = [batch.slice(0, 1), batch.slice(1, 1)];
        assert_eq!(expected.compare(&two).expect("formats"), Ok(()));
        let swapped = [batch.slice(1, 1), batch.slice(0, 1)];
        assert!(matches!(
            expected.compare(&swapped).expect("formats"),
            Err(AnswerMismatch::Cell(CellDifference {
                row: 0,
                column: 0,
                ..
            }))
        ));
    }
}
