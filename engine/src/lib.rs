//! # Sluice
//!
//! A columnar, vectorized data engine on Apache Arrow. This crate is the engine; the
//! modules follow the path a query travels:
//!
//! * [`sql`] parses SQL (with `sqlparser`) and plans it; [`dataframe`] builds the same
//!   plans from Rust.
//! * [`logical`] holds expressions and relational plans with qualified schemas.
//! * [`optimizer`] pushes filters down, orders joins and prunes columns.
//! * [`physical`] turns plans into partitioned, vectorized operators over Arrow
//!   `RecordBatch`es that exchange an element stream (data, watermarks, barriers,
//!   end-of-input) — see [`physical::Element`] and [`physical::Operator`].
//! * [`stream`] runs the same plans as streams: watermarks, window aggregation over keyed
//!   state (`sluice-state`), a key-group exchange with back-pressure metrics.
//! * [`catalog`] knows the tables (memory, Parquet, CSV, the `datagen` and `nexmark`
//!   generators, `print`/`blackhole` sinks); [`session`] ties it together.
//!
//! ```
//! use sluice::Session;
//! let session = Session::new();
//! let batches = session.sql("SELECT 1 + 1 AS two").unwrap().collect().unwrap();
//! assert_eq!(batches[0].num_rows(), 1);
//! ```

pub mod allocator;
pub mod catalog;
pub mod config;
pub mod dataframe;
pub mod error;
pub mod logical;
pub mod optimizer;
pub mod physical;
pub mod session;
pub mod sql;
pub mod stream;

pub use config::{ExchangeMode, RuntimeMode, SessionConfig};
pub use dataframe::DataFrame;
pub use error::{Result, SluiceError};
pub use logical::expr::{
    avg, col, count, count_distinct, count_star, date_lit, func, lit, max, min, sum, Expr, Scalar,
    SortExpr,
};
pub use logical::plan::JoinType;
pub use logical::time::Window;
pub use session::{Job, Session};
