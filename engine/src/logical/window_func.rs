//! Window function calls' kinds ([`WindowFunc`]) and explicit frames ([`WindowFrame`]).

use std::fmt;

use crate::logical::expr::AggFunc;

/// Window functions (ranking and offsets; aggregates over windows use [`WindowFunc::Agg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowFunc {
    /// `ROW_NUMBER()`
    RowNumber,
    /// `RANK()`
    Rank,
    /// `DENSE_RANK()`
    DenseRank,
    /// `LAG(x [, offset [, default]])`
    Lag,
    /// `LEAD(x [, offset [, default]])`
    Lead,
    /// An aggregate evaluated over the window frame.
    Agg(AggFunc),
}

impl WindowFunc {
    /// Looks a window function up by SQL name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_lowercase().as_str() {
            "row_number" => WindowFunc::RowNumber,
            "rank" => WindowFunc::Rank,
            "dense_rank" => WindowFunc::DenseRank,
            "lag" => WindowFunc::Lag,
            "lead" => WindowFunc::Lead,
            other => WindowFunc::Agg(AggFunc::from_name(other)?),
        })
    }
}

impl fmt::Display for WindowFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowFunc::RowNumber => f.write_str("row_number"),
            WindowFunc::Rank => f.write_str("rank"),
            WindowFunc::DenseRank => f.write_str("dense_rank"),
            WindowFunc::Lag => f.write_str("lag"),
            WindowFunc::Lead => f.write_str("lead"),
            WindowFunc::Agg(a) => write!(f, "{a}"),
        }
    }
}

/// An explicit `ROWS` or `RANGE BETWEEN start AND end` frame of an aggregate window
/// function, `None` where that side is unbounded. For `ROWS` the bounds are row offsets
/// from the current row (negative: preceding). For `RANGE` they are offsets of the single
/// ORDER BY key's value (an integer key), and a frame takes every row whose key falls in
/// `key + start ..= key + end` (preceding meaning toward smaller keys when ascending), so
/// `CURRENT ROW` (0) takes the row's peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowFrame {
    /// The frame's first row relative to the current one; `None`: the partition's first.
    pub start: Option<i64>,
    /// The frame's last row relative to the current one; `None`: the partition's last.
    pub end: Option<i64>,
    /// `RANGE` (offsets of the order key's value) rather than `ROWS` (offsets of rows).
    pub range: bool,
}

impl fmt::Display for WindowFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = |b: Option<i64>, unbounded: &str| match b {
            None => format!("UNBOUNDED {unbounded}"),
            Some(0) => "CURRENT ROW".to_string(),
            Some(n) if n < 0 => format!("{} PRECEDING", n.unsigned_abs()),
            Some(n) => format!("{n} FOLLOWING"),
        };
        write!(
            f,
            "{} BETWEEN {} AND {}",
            if self.range { "RANGE" } else { "ROWS" },
            bound(self.start, "PRECEDING"),
            bound(self.end, "FOLLOWING")
        )
    }
}
