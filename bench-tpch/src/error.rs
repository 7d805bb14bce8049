//! The error type of the TPC-H benchmark crate.

use std::path::PathBuf;

use arrow::error::ArrowError;
use parquet::errors::ParquetError;
use sluice::SluiceError;

/// Everything that can go wrong while generating data or running queries.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The engine failed to plan or run a statement.
    #[error("engine error: {0}")]
    Engine(#[from] SluiceError),
    /// Arrow failed (data generation or formatting results).
    #[error("arrow error: {0}")]
    Arrow(#[from] ArrowError),
    /// Parquet writing failed.
    #[error("parquet error: {0}")]
    Parquet(#[from] ParquetError),
    /// A file system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`creating`, `renaming`, ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A query number outside `1..=22`.
    #[error("no TPC-H query {0} (queries are numbered 1 to 22)")]
    UnknownQuery(usize),
    /// A query with no DataFrame version (only 1, 3, 5, 6 and 10 have one).
    #[error("TPC-H query {0} has no DataFrame version (those are queries 1, 3, 5, 6, 10)")]
    NoDataFrameQuery(usize),
    /// A query text with no statement returning rows.
    #[error("TPC-H query {0} has no statement that returns rows")]
    NoQueryStatement(usize),
    /// The engine panicked while planning or running a query.
    #[error("TPC-H query {query} panicked: {message}")]
    Panic {
        /// Query number.
        query: usize,
        /// The panic message.
        message: String,
    },
    /// A data directory lacks some tables.
    #[error("{dir} lacks the TPC-H tables {missing:?}")]
    MissingTables {
        /// The data directory.
        dir: PathBuf,
        /// Names of the missing tables.
        missing: Vec<String>,
    },
    /// A bad argument (scale factor, part count, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Writing the JSON report failed.
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
}

impl BenchError {
    /// Builds an [`BenchError::Io`] for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
