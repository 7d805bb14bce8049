//! Sluice TPC-H: data generation with `tpchgen`, the 22 queries, reference-answer checks
//! and timing.
//!
//! * [`queries`] embeds the 22 queries and the reference answers for SF 0.01, 0.1 and 1.
//! * [`gen`] generates the eight tables in memory ([`generate_tables`],
//!   [`register_generated`]) or as Parquet files ([`write_parquet`]), and registers a
//!   Parquet data directory ([`register_parquet_dir`]).
//! * [`answers`] parses reference answers and compares them with results.
//! * [`dataframe_queries`] builds queries 1, 3, 5, 6 and 10 with the DataFrame API
//!   ([`dataframe_query`]).
//! * [`runner`] runs queries ([`run_query`], [`run_query_with`]), checks them ([`check_answer`],
//!   [`check_queries`]) and benchmarks them ([`run_benchmark`]).
//! * [`rss`] measures each query's peak resident memory (Linux).
//!
//! ```no_run
//! # fn main() -> Result<(), sluice_bench_tpch::BenchError> {
//! let session = sluice::Session::new();
//! sluice_bench_tpch::register_generated(&session, 0.01)?;
//! let (batches, elapsed) = sluice_bench_tpch::run_query(&session, 1)?;
//! let status = sluice_bench_tpch::check_answer(0.01, 1, &batches)?;
//! println!("q1 took {elapsed:?}: {status:?}");
//! # Ok(())
//! # }
//! ```

pub mod answers;
pub mod dataframe_queries;
pub mod error;
pub mod gen;
pub mod queries;
pub mod rss;
pub mod runner;

pub use answers::{AnswerCheck, AnswerMismatch, CellDifference, ReferenceAnswer};
pub use dataframe_queries::{dataframe_query, DATAFRAME_QUERIES};
pub use error::{BenchError, Result};
pub use gen::{
    generate_tables, missing_tables, register_generated, register_parquet_dir, write_parquet, Table,
};
pub use queries::{
    query_sql, query_statements, reference_answer, uncorrected_reference_answer, QUERY_COUNT,
};
pub use runner::{
    check_answer, check_queries, run_benchmark, run_dataframe_query, run_query, run_query_guarded,
    run_query_guarded_with, run_query_with, AnswerStatus, BenchConfig, BenchReport, QueryApi,
    QueryReport, QueryStatus,
};
