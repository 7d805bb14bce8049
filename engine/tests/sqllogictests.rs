//! SQL behaviour tests: runs every `tests/slt/*.slt` file with the `sqllogictest` crate
//! against a fresh [`sluice::Session`] per file (two target partitions).
//!
//! ```text
//! cargo test -p sluice --test sqllogictests                       # all files
//! SLT_FILES=joins,nulls cargo test -p sluice --test sqllogictests # only files whose name contains one of these
//! SLT_COMPLETE=1 cargo test -p sluice --test sqllogictests        # rewrite expected output in place
//! SLT_DIR=/some/dir cargo test -p sluice --test sqllogictests     # run the .slt files of another directory
//! ```
//!
//! Every record of every file runs; the test fails at the end listing each failing record
//! (file, line, SQL and the expected/actual difference), not just the first one.
//!
//! **`SLT_COMPLETE=1`** rewrites the selected files with what Sluice currently returns
//! (results, column types and error messages), using the crate's `update_test_file`.
//! It is a convenience for typing new records, NOT a way to make the suite pass: the
//! expected output in these files is what standard SQL (PostgreSQL semantics) says, and
//! where Sluice is wrong the file keeps the correct answer so the record fails until the
//! engine is fixed. Review every hunk of `git diff engine/tests/slt` after completing and
//! revert any change that accepts a wrong answer.
//!
//! Cell formatting: NULL is `NULL`, the empty string is `(empty)`, booleans `true`/`false`,
//! floats use Rust's `Display`, everything else (decimals, dates, ...) Arrow's default
//! `ArrayFormatter`. Column types: `I` integers, `R` floats and decimals, `T` anything else;
//! they are checked strictly. A statement returning zero columns (DDL) is a completed
//! statement. Errors carry the `SluiceError` message for `statement error <regex>` and
//! `query error <regex>`. Each statement runs on its own thread with a time limit, so a
//! panic (reported with its location and the innermost `engine/src` frame) or a hang in
//! the engine is reported as that record's failure. When the column types of a query
//! differ, the query is run again without the type check so the report also shows
//! whether the values differ.
//!
//! Writing records: one feature per file, starting with a `# ` comment saying what it
//! covers; `rowsort` whenever the query has no ORDER BY (rows are then compared sorted as
//! strings, so `NULL` sorts before lowercase text); expected results are derived from
//! standard SQL / PostgreSQL semantics, never copied from Sluice. Features Sluice rejects
//! by design with a "not supported" error are tested with `query error (?i)not supported`,
//! with the correct result in a comment so the record can be flipped once supported.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice::{Session, SessionConfig};
use sqllogictest::{
    default_column_validator, default_normalizer, default_validator, parse_file,
    strict_column_validator, DBOutput, DefaultColumnType, Record, Runner, TestErrorKind, DB,
};

/// How long one statement may run before it is reported as hung.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(120);

/// An error of one statement: the `SluiceError` message (or a panic / time-out).
#[derive(Debug)]
struct SltError(String);

impl fmt::Display for SltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

/// A sqllogictest connection: one Sluice session.
struct SluiceDb {
    session: Session,
}

impl SluiceDb {
    fn new() -> Self {
        Self {
            session: Session::with_config(SessionConfig::default().with_target_partitions(2)),
        }
    }
}

impl DB for SluiceDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        // The session shares its catalog between clones, so DDL run on the worker thread
        // is visible to later statements.
        let session = self.session.clone();
        let sql = sql.to_string();
        let (tx, rx) = mpsc::channel();
        install_panic_hook();
        std::thread::Builder::new()
            .name(STATEMENT_THREAD.into())
            .spawn(move || {
                let out = catch_unwind(AssertUnwindSafe(|| execute(&session, &sql)))
                    .map_err(|payload| (payload, LAST_PANIC.with(|p| p.borrow_mut().take())));
                let _ = tx.send(out);
            })
            .map_err(|e| SltError(format!("cannot start statement thread: {e}")))?;
        match rx.recv_timeout(STATEMENT_TIMEOUT) {
            Ok(Ok(result)) => result,
            Ok(Err((panic, location))) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic payload".into());
                let at = location.map(|l| format!(" (at {l})")).unwrap_or_default();
                Err(SltError(format!("PANIC in engine: {msg}{at}")))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(SltError(format!(
                "TIMEOUT: statement did not finish within {}s",
                STATEMENT_TIMEOUT.as_secs()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(SltError("statement thread ended without a result".into()))
            }
        }
    }

    fn engine_name(&self) -> &str {
        "sluice"
    }
}

/// Name of the threads that run statements (their panics are reported, not printed).
const STATEMENT_THREAD: &str = "slt-statement";

thread_local! {
    /// Where the last panic on this statement thread happened.
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Records the location of panics on statement threads so the failure report can name it;
/// panics elsewhere go to the default hook.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(STATEMENT_THREAD) {
                let loc = info.location().map(|l| {
                    let file = l.file();
                    // Shorten ~/.cargo/registry/src/index.crates.io-xxxx/crate-1.2.3/... to crate-1.2.3/...
                    let file = file.find("index.crates.io-").map_or(file, |i| {
                        let rest = &file[i..];
                        rest.find('/').map_or(rest, |j| &rest[j + 1..])
                    });
                    format!("{file}:{}:{}", l.line(), l.column())
                });
                // The innermost engine frame tells where the engine went wrong.
                let bt = std::backtrace::Backtrace::force_capture().to_string();
                let engine_frame = bt
                    .lines()
                    .map(str::trim)
                    .filter_map(|l| l.strip_prefix("at "))
                    .find_map(|l| l.strip_prefix("./src/").map(|f| format!("engine/src/{f}")));
                let loc = match (loc, engine_frame) {
                    (Some(l), Some(f)) if !l.starts_with("engine/src/") => {
                        Some(format!("{l}, called from {f}"))
                    }
                    (l, f) => l.or(f),
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = loc);
            } else {
                default(info);
            }
        }));
    });
}

fn execute(session: &Session, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
    let err = |e: sluice::SluiceError| SltError(e.to_string());
    let df = session.sql(sql).map_err(err)?;
    let schema = df.schema();
    let batches = df.collect().map_err(err)?;
    if schema.fields().is_empty() {
        return Ok(DBOutput::StatementComplete(0));
    }
    let types = schema
        .fields()
        .iter()
        .map(|f| column_type(f.data_type()))
        .collect();
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(format_batch(batch)?);
    }
    Ok(DBOutput::Rows { types, rows })
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

fn format_batch(batch: &RecordBatch) -> Result<Vec<Vec<String>>, SltError> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut columns: Vec<Vec<String>> = Vec::with_capacity(batch.num_columns());
    for array in batch.columns() {
        let array = array.as_ref();
        let mut cells = Vec::with_capacity(array.len());
        match array.data_type() {
            DataType::Float64 => {
                let a = array.as_primitive::<Float64Type>();
                for i in 0..a.len() {
                    cells.push(if a.is_null(i) {
                        "NULL".into()
                    } else {
                        a.value(i).to_string()
                    });
                }
            }
            DataType::Float32 => {
                let a = array.as_primitive::<Float32Type>();
                for i in 0..a.len() {
                    cells.push(if a.is_null(i) {
                        "NULL".into()
                    } else {
                        a.value(i).to_string()
                    });
                }
            }
            _ => {
                let f = ArrayFormatter::try_new(array, &opts)
                    .map_err(|e| SltError(format!("cannot format result: {e}")))?;
                let is_string = matches!(
                    array.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                );
                for i in 0..array.len() {
                    let s = f.value(i).to_string();
                    cells.push(if is_string && !array.is_null(i) && s.is_empty() {
                        "(empty)".into()
                    } else {
                        s
                    });
                }
            }
        }
        columns.push(cells);
    }
    Ok((0..batch.num_rows())
        .map(|r| columns.iter().map(|c| c[r].clone()).collect())
        .collect())
}

fn slt_files() -> Vec<PathBuf> {
    let dir = std::env::var_os("SLT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join("slt")
        });
    let filters: Vec<String> = std::env::var("SLT_FILES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    files.sort();
    files
}

fn new_runner() -> Runner<SluiceDb, impl sqllogictest::MakeConnection<Conn = SluiceDb>> {
    let mut runner = Runner::new(|| async { Ok::<_, SltError>(SluiceDb::new()) });
    runner.with_column_validator(strict_column_validator);
    runner
}

#[test]
fn sqllogictests() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files selected");

    if std::env::var("SLT_COMPLETE").is_ok_and(|v| v == "1") {
        for file in &files {
            let mut runner = new_runner();
            futures::executor::block_on(runner.update_test_file(
                file,
                " ",
                default_validator,
                default_normalizer,
                strict_column_validator,
            ))
            .unwrap_or_else(|e| panic!("cannot complete {}: {e}", file.display()));
            runner.shutdown();
            eprintln!(
                "completed {} (review the diff before committing!)",
                file.display()
            );
        }
        return;
    }

    let mut failures: Vec<String> = Vec::new();
    let mut total = 0usize;
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let records = match parse_file(file) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: cannot parse file: {e}"));
                continue;
            }
        };
        let mut runner = new_runner();
        let (mut ran, mut failed) = (0usize, 0usize);
        for record in records {
            let counts = matches!(record, Record::Statement { .. } | Record::Query { .. });
            if matches!(record, Record::Halt { .. }) {
                break;
            }
            if counts {
                ran += 1;
            }
            if let Err(e) = runner.run(record.clone()) {
                failed += 1;
                let mut msg = format!("{name}: {}", e.display(false));
                // A column-type mismatch hides the values: run the query again without the
                // type check so the report shows both.
                if matches!(e.kind(), TestErrorKind::QueryResultColumnsMismatch { .. }) {
                    runner.with_column_validator(default_column_validator);
                    match runner.run(record) {
                        Ok(_) => msg.push_str("\n(values match; only the column types differ)"),
                        Err(e2) => {
                            msg.push_str(&format!("\nand besides the types: {}", e2.display(false)))
                        }
                    }
                    runner.with_column_validator(strict_column_validator);
                }
                failures.push(msg);
            }
        }
        runner.shutdown();
        total += ran;
        eprintln!("{name}: {ran} records, {failed} failed");
    }

    if !failures.is_empty() {
        let mut report = format!(
            "{} of {} sqllogictest records failed:\n",
            failures.len(),
            total
        );
        for (i, f) in failures.iter().enumerate() {
            report.push_str(&format!(
                "\n---- failure {} ----\n{}\n",
                i + 1,
                f.trim_end()
            ));
        }
        panic!("{report}");
    }
}
