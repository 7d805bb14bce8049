//! Helpers shared by the integration tests: result batches as text lines, so results can
//! be compared as sorted multisets (batch against stream) or read in order (changelogs),
//! and a changelog applied.

// Each test crate uses a part of these.
#![allow(dead_code)]

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Rows as text lines (`v1 | v2 | ...`, NULL as `NULL`), in order.
pub fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("fmt"))
            .collect();
        for r in 0..b.num_rows() {
            let v: Vec<String> = fmts.iter().map(|f| f.value(r).to_string()).collect();
            out.push(v.join(" | "));
        }
    }
    out
}

/// Rows as sorted text lines (an order-insensitive comparison).
pub fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = lines(batches);
    out.sort();
    out
}

/// The rows a changelog leaves (`op` first: `+I`/`+U` add a row, `-U`/`-D` remove an
/// equal one, which must be there), sorted.
pub fn apply_changelog(changelog: &[String]) -> Vec<String> {
    let mut table: Vec<String> = Vec::new();
    for line in changelog {
        let (op, row) = line.split_once(" | ").unwrap_or((line, ""));
        match op {
            "+I" | "+U" => table.push(row.to_string()),
            "-U" | "-D" => {
                let at = table
                    .iter()
                    .position(|r| r == row)
                    .unwrap_or_else(|| panic!("{op} of a row not in the result: {row}"));
                table.swap_remove(at);
            }
            other => panic!("unknown op {other} in {line}"),
        }
    }
    table.sort();
    table
}
