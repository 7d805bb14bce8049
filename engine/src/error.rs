//! Typed errors of the Sluice engine: every failure a user can cause maps to one variant
//! with a message that names the cause (the SQL position, the table, the file, the types).

use std::path::PathBuf;

use arrow::error::ArrowError;
use thiserror::Error;

/// Result type used throughout the engine.
pub type Result<T, E = SluiceError> = std::result::Result<T, E>;

/// Everything that can go wrong while planning or running a query.
#[derive(Debug, Error)]
pub enum SluiceError {
    /// The SQL text does not parse; the message carries line and column.
    #[error("SQL syntax error: {0}")]
    Parse(String),
    /// The statement parses but cannot be planned (unknown table/column, bad GROUP BY, ...).
    #[error("planning error: {0}")]
    Plan(String),
    /// An expression's operand types do not fit the operator or function.
    #[error("type error: {0}")]
    Type(String),
    /// Valid SQL that Sluice does not support yet.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A query needed more memory than the session's limit allows.
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),
    /// A failure while running a query (division by zero, overflow, a bad cast, ...).
    #[error("execution error: {0}")]
    Execution(String),
    /// An error raised by an Arrow kernel.
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    /// A Parquet file could not be read.
    #[error("cannot read Parquet file {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the Parquet reader said.
        message: String,
    },
    /// A file or directory could not be accessed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// An exchange between partitions failed.
    #[error("exchange error: {0}")]
    Shuffle(#[from] sluice_flight_shuffle::ShuffleError),
    /// The query was cancelled (a [`crate::Job`] or the shell's Ctrl-C); raised by its
    /// sources, it ends the result stream early instead of failing it.
    #[error("query cancelled")]
    Cancelled,
    /// Keyed state of a streaming operator failed.
    #[error("state error: {0}")]
    State(#[from] sluice_state::StateError),
}

impl SluiceError {
    /// Shorthand for a planning error.
    pub fn plan(msg: impl Into<String>) -> Self {
        SluiceError::Plan(msg.into())
    }
    /// Shorthand for an execution error.
    pub fn exec(msg: impl Into<String>) -> Self {
        SluiceError::Execution(msg.into())
    }
    /// Shorthand for a not-supported error.
    pub fn unsupported(msg: impl Into<String>) -> Self {
        SluiceError::NotSupported(msg.into())
    }
}

/// The `n` candidates closest to `name` by edit distance (case-insensitive), for
/// "did you mean" hints in error messages.
pub fn nearest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<String> {
    let lname = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (levenshtein(&lname, &c.to_lowercase()), c))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    let limit = lname.len().max(3);
    scored
        .into_iter()
        .filter(|(d, _)| *d <= limit)
        .take(n)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Formats a "did you mean" suffix for an error message, empty when there is no candidate.
pub fn did_you_mean(hints: &[String]) -> String {
    if hints.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", hints.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_rank_by_edit_distance() {
        let c = ["lineitem", "orders", "customer"];
        assert_eq!(nearest("lineitm", c, 1), vec!["lineitem".to_string()]);
        assert_eq!(nearest("ORDER", c, 1), vec!["orders".to_string()]);
        assert!(nearest("zzzzzzzzzzzzzzzzzzzzzz", ["a"], 3).len() <= 1);
    }
}
