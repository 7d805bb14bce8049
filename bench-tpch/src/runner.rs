//! Running TPC-H queries: single queries, answer checks, and the timed benchmark loop with
//! its text and JSON reports.

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use serde_json::{json, Value};
use sluice::Session;

use crate::answers::{format_batches, AnswerMismatch, ReferenceAnswer};
use crate::dataframe_queries::dataframe_query;
use crate::error::{BenchError, Result};
use crate::queries::{is_query_statement, query_statements, reference_answer, QUERY_COUNT};

/// Runs TPC-H query `n` (1-based) in `session` and returns its result and the wall-clock
/// time taken to plan and run it.
///
/// Multi-statement queries run statement by statement; the result is that of the last
/// statement returning rows (the results of the others, e.g. `CREATE VIEW`, are dropped).
pub fn run_query(session: &Session, n: usize) -> Result<(Vec<RecordBatch>, Duration)> {
    let statements = query_statements(n).ok_or(BenchError::UnknownQuery(n))?;
    let last_query = statements
        .iter()
        .rposition(|s| is_query_statement(s))
        .ok_or(BenchError::NoQueryStatement(n))?;
    let start = Instant::now();
    let mut result = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let batches = session.sql(statement)?.collect()?;
        if i == last_query {
            result = batches;
        }
    }
    Ok((result, start.elapsed()))
}

/// Which of Sluice's APIs builds the queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueryApi {
    /// The SQL text of `queries/qN.sql`, through [`Session::sql`].
    #[default]
    Sql,
    /// The DataFrame versions of [`crate::dataframe_queries`] (queries 1, 3, 5, 6, 10 only).
    DataFrame,
}

impl QueryApi {
    /// `"sql"` or `"dataframe"`.
    pub fn name(self) -> &'static str {
        match self {
            QueryApi::Sql => "sql",
            QueryApi::DataFrame => "dataframe",
        }
    }
}

/// Runs TPC-H query `n` built with the DataFrame API (see
/// [`crate::dataframe_queries::dataframe_query`]) and returns its result and the
/// wall-clock time taken to build, plan and run it.
///
/// Fails with [`BenchError::NoDataFrameQuery`] when query `n` has no DataFrame version.
pub fn run_dataframe_query(session: &Session, n: usize) -> Result<(Vec<RecordBatch>, Duration)> {
    let start = Instant::now();
    let df = dataframe_query(session, n).ok_or(BenchError::NoDataFrameQuery(n))??;
    let batches = df.collect()?;
    Ok((batches, start.elapsed()))
}

/// Runs TPC-H query `n` through `api`: [`run_query`] or [`run_dataframe_query`].
pub fn run_query_with(
    session: &Session,
    api: QueryApi,
    n: usize,
) -> Result<(Vec<RecordBatch>, Duration)> {
    match api {
        QueryApi::Sql => run_query(session, n),
        QueryApi::DataFrame => run_dataframe_query(session, n),
    }
}

/// Like [`run_query`], but a panic in the engine becomes [`BenchError::Panic`] so that the
/// caller can go on with other queries.
pub fn run_query_guarded(session: &Session, n: usize) -> Result<(Vec<RecordBatch>, Duration)> {
    run_query_guarded_with(session, QueryApi::Sql, n)
}

/// Like [`run_query_with`], but a panic in the engine becomes [`BenchError::Panic`].
pub fn run_query_guarded_with(
    session: &Session,
    api: QueryApi,
    n: usize,
) -> Result<(Vec<RecordBatch>, Duration)> {
    panic::catch_unwind(AssertUnwindSafe(|| run_query_with(session, api, n))).unwrap_or_else(
        |payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            Err(BenchError::Panic { query: n, message })
        },
    )
}

/// Whether a result matches its reference answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerStatus {
    /// The result matches the reference answer.
    Correct,
    /// The result differs from the reference answer.
    Wrong(AnswerMismatch),
    /// There is no reference answer for this query at this scale factor.
    NoReference,
}

/// Compares the result of query `n` with its reference answer at scale factor `sf`.
pub fn check_answer(sf: f64, n: usize, batches: &[RecordBatch]) -> Result<AnswerStatus> {
    match reference_answer(sf, n) {
        Some(text) => compare_with(text, batches),
        None => Ok(AnswerStatus::NoReference),
    }
}

/// Compares a result with an answer in the reference format.
fn compare_with(answer: &str, batches: &[RecordBatch]) -> Result<AnswerStatus> {
    Ok(match ReferenceAnswer::parse(answer).compare(batches)? {
        Ok(()) => AnswerStatus::Correct,
        Err(mismatch) => AnswerStatus::Wrong(mismatch),
    })
}

/// The file that holds query `n`'s answer in an answers directory.
fn answer_path(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("q{n}.out"))
}

/// Writes the result of query `n` to `dir/qN.out` in the reference-answer format (header,
/// then `|`-separated cells, NULL as empty).
pub fn save_answer(dir: &Path, n: usize, batches: &[RecordBatch]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io("creating", dir, e))?;
    let columns: Vec<String> = match batches.first() {
        Some(b) => b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        None => Vec::new(),
    };
    let mut text = columns.join("|") + "\n";
    for row in format_batches(batches)? {
        text.push_str(&row.join("|"));
        text.push('\n');
    }
    let path = answer_path(dir, n);
    std::fs::write(&path, text).map_err(|e| BenchError::io("writing", path, e))
}

/// Compares the result of query `n` with the answer saved in `dir` (see [`save_answer`]).
pub fn check_answer_in(dir: &Path, n: usize, batches: &[RecordBatch]) -> Result<AnswerStatus> {
    let path = answer_path(dir, n);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AnswerStatus::NoReference),
        Err(e) => return Err(BenchError::io("reading", path, e)),
    };
    compare_with(&text, batches)
}

/// Runs each of `queries` once in `session` (panics caught) and checks it against the
/// reference answers for scale factor `sf`. Returns every failing query with the reason (an
/// error, a wrong answer, or a missing reference answer), in query order; empty when all
/// pass.
pub fn check_queries(session: &Session, sf: f64, queries: &[usize]) -> Vec<(usize, String)> {
    let mut failures = Vec::new();
    for &n in queries {
        let outcome =
            run_query_guarded(session, n).and_then(|(batches, _)| check_answer(sf, n, &batches));
        match outcome {
            Ok(AnswerStatus::Correct) => {}
            Ok(AnswerStatus::Wrong(mismatch)) => {
                failures.push((n, format!("wrong answer: {mismatch}")))
            }
            Ok(AnswerStatus::NoReference) => {
                failures.push((n, format!("no reference answer at SF {sf}")))
            }
            Err(e) => failures.push((n, format!("error: {e}"))),
        }
    }
    failures
}

/// All query numbers, 1 to 22.
pub fn all_queries() -> Vec<usize> {
    (1..=QUERY_COUNT).collect()
}

/// What to run in a benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Query numbers to run, in order.
    pub queries: Vec<usize>,
    /// Timed runs per query (at least 1).
    pub iterations: usize,
    /// Scale factor of the data, to pick reference answers (`None`: do not check).
    pub answers_sf: Option<f64>,
    /// Check against the answers saved in this directory instead (`qN.out`, written by
    /// `save_answers` of an earlier run): how a scale without reference answers is checked,
    /// e.g. a run under a memory limit against one without.
    pub answers_dir: Option<PathBuf>,
    /// Write each query's first result here as `qN.out`, in the reference-answer format.
    pub save_answers: Option<PathBuf>,
    /// The API that builds the queries.
    pub api: QueryApi,
}

/// How one query of a benchmark went.
#[derive(Debug)]
pub enum QueryStatus {
    /// Ran, and the answer matches the reference.
    Ok,
    /// Ran, but the answer differs from the reference.
    Wrong(AnswerMismatch),
    /// Ran; there is no reference answer to check against.
    Unchecked,
    /// Failed to run.
    Failed(BenchError),
}

/// The measurements of one query.
#[derive(Debug)]
pub struct QueryReport {
    /// Query number.
    pub query: usize,
    /// Wall-clock time of each successful run.
    pub timings: Vec<Duration>,
    /// Rows returned by the first run.
    pub rows: usize,
    /// The process's peak resident memory while the query ran, in KiB (Linux only).
    pub peak_rss_kib: Option<u64>,
    /// Outcome.
    pub status: QueryStatus,
}

impl QueryReport {
    /// Median run time, or `None` when no run succeeded.
    pub fn median(&self) -> Option<Duration> {
        median(&self.timings)
    }

    /// Fastest run time, or `None` when no run succeeded.
    pub fn min(&self) -> Option<Duration> {
        self.timings.iter().min().copied()
    }

    /// `Some(true)` when correct, `Some(false)` when wrong or failed, `None` when unchecked.
    pub fn ok(&self) -> Option<bool> {
        match self.status {
            QueryStatus::Ok => Some(true),
            QueryStatus::Wrong(_) | QueryStatus::Failed(_) => Some(false),
            QueryStatus::Unchecked => None,
        }
    }

    /// True when the query failed or gave a wrong answer.
    pub fn is_failure(&self) -> bool {
        matches!(self.status, QueryStatus::Wrong(_) | QueryStatus::Failed(_))
    }
}

/// The measurements of a whole benchmark run.
#[derive(Debug, Default)]
pub struct BenchReport {
    /// One report per query, in run order.
    pub queries: Vec<QueryReport>,
    /// The API that built the queries.
    pub api: QueryApi,
}

impl BenchReport {
    /// Sum of the median times of the queries that ran.
    pub fn total(&self) -> Duration {
        self.queries.iter().filter_map(QueryReport::median).sum()
    }

    /// The largest of the queries' peak resident memory, in KiB: the run's peak, since
    /// measuring resets the process's high-water mark before each query (so
    /// `/usr/bin/time` no longer sees the whole run's).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.queries.iter().filter_map(|q| q.peak_rss_kib).max()
    }

    /// True when any query failed or gave a wrong answer.
    pub fn has_failures(&self) -> bool {
        self.queries.iter().any(QueryReport::is_failure)
    }

    /// The JSON report: `{"api":"sql"|"dataframe","queries":[Q, ...],"total_ms":..,
    /// "peak_rss_kib":..}` where
    /// each `Q` is
    /// `{"query":N,"median_ms":..,"min_ms":..,"rows":..,"peak_rss_kib":..,"ok":true|false|null,
    /// "error":..}`.
    /// Times of failed queries are `null`; `error` is `null` unless the query failed or was
    /// wrong.
    pub fn to_json(&self) -> Value {
        let queries: Vec<Value> = self
            .queries
            .iter()
            .map(|q| {
                let error = match &q.status {
                    QueryStatus::Failed(e) => Some(e.to_string()),
                    QueryStatus::Wrong(m) => Some(format!("wrong answer: {m}")),
                    QueryStatus::Ok | QueryStatus::Unchecked => None,
                };
                json!({
                    "query": q.query,
                    "median_ms": q.median().map(millis),
                    "min_ms": q.min().map(millis),
                    "rows": q.rows,
                    "peak_rss_kib": q.peak_rss_kib,
                    "ok": q.ok(),
                    "error": error,
                })
            })
            .collect();
        json!({
            "api": self.api.name(),
            "queries": queries,
            "total_ms": millis(self.total()),
            "peak_rss_kib": self.peak_rss_kib(),
        })
    }
}

/// Runs the benchmark: each query `iterations` times, checking the first result against
/// the reference answer. A failing (or panicking) query does not stop the others.
/// `on_query` is called after each query (e.g. to print it).
pub fn run_benchmark(
    session: &Session,
    config: &BenchConfig,
    mut on_query: impl FnMut(&QueryReport),
) -> BenchReport {
    let mut report = BenchReport {
        queries: Vec::new(),
        api: config.api,
    };
    for &n in &config.queries {
        let query = bench_query(session, n, config);
        on_query(&query);
        report.queries.push(query);
    }
    report
}

fn bench_query(session: &Session, n: usize, config: &BenchConfig) -> QueryReport {
    let mut report = QueryReport {
        query: n,
        timings: Vec::new(),
        rows: 0,
        peak_rss_kib: None,
        status: QueryStatus::Unchecked,
    };
    let measured = crate::rss::reset_peak();
    for iteration in 0..config.iterations.max(1) {
        let (batches, elapsed) = match run_query_guarded_with(session, config.api, n) {
            Ok(done) => done,
            Err(e) => {
                report.timings.clear();
                report.status = QueryStatus::Failed(e);
                return report;
            }
        };
        report.timings.push(elapsed);
        if iteration == 0 {
            report.rows = batches.iter().map(RecordBatch::num_rows).sum();
            if let Some(dir) = &config.save_answers {
                if let Err(e) = save_answer(dir, n, &batches) {
                    report.status = QueryStatus::Failed(e);
                    return report;
                }
            }
            let checked = match &config.answers_dir {
                Some(dir) => Some(check_answer_in(dir, n, &batches)),
                None => config.answers_sf.map(|sf| check_answer(sf, n, &batches)),
            };
            report.status = match checked {
                None | Some(Ok(AnswerStatus::NoReference)) => QueryStatus::Unchecked,
                Some(Ok(AnswerStatus::Correct)) => QueryStatus::Ok,
                Some(Ok(AnswerStatus::Wrong(m))) => QueryStatus::Wrong(m),
                Some(Err(e)) => QueryStatus::Failed(e),
            };
        }
    }
    report.peak_rss_kib = crate::rss::peak_kib().filter(|_| measured);
    report
}

/// Median of `timings` (mean of the two middle values for an even count).
pub fn median(timings: &[Duration]) -> Option<Duration> {
    let mut sorted = timings.to_vec();
    sorted.sort();
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2),
    }
}

/// A duration in milliseconds.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Width of the table's rules.
const RULE: usize = 63;

/// The header of the text report table.
pub fn format_header() -> String {
    format!(
        "{:>5}  {:>12}  {:>12}  {:>9}  {:>9}  {}\n{}",
        "query",
        "median ms",
        "min ms",
        "rows",
        "peak MiB",
        "answer",
        "-".repeat(RULE)
    )
}

/// One line of the text report table (plus an indented detail line for a failure).
pub fn format_row(q: &QueryReport) -> String {
    let time =
        |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), |d| format!("{:.1}", millis(d)));
    let (answer, detail) = match &q.status {
        QueryStatus::Ok => ("ok", None),
        QueryStatus::Unchecked => ("-", None),
        QueryStatus::Wrong(m) => ("WRONG", Some(m.to_string())),
        QueryStatus::Failed(e) => ("ERROR", Some(e.to_string())),
    };
    let mut line = format!(
        "{:>5}  {:>12}  {:>12}  {:>9}  {:>9}  {}",
        format!("q{}", q.query),
        time(q.median()),
        time(q.min()),
        if matches!(q.status, QueryStatus::Failed(_)) {
            "-".to_owned()
        } else {
            q.rows.to_string()
        },
        q.peak_rss_kib
            .map_or_else(|| "-".to_owned(), |k| (k / 1024).to_string()),
        answer
    );
    if let Some(detail) = detail {
        let _ = write!(line, "\n       {}", detail.replace('\n', "\n       "));
    }
    line
}

/// The footer of the text report table: the total of medians and a failure count.
pub fn format_total(report: &BenchReport) -> String {
    let failures = report.queries.iter().filter(|q| q.is_failure()).count();
    let mut out = format!(
        "{}\n{:>5}  {:>12.1}",
        "-".repeat(RULE),
        "total",
        millis(report.total())
    );
    if let Some(k) = report.peak_rss_kib() {
        let _ = write!(out, "  {:>12}  {:>9}  {:>9}", "", "", k / 1024);
    }
    if failures > 0 {
        let _ = write!(
            out,
            "  ({failures} of {} queries failed)",
            report.queries.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn saved_answers_check_a_later_run() {
        use arrow::array::{Int64Array, StringArray};
        use std::sync::Arc;
        let batch = |v: i64| {
            RecordBatch::try_from_iter([
                (
                    "name",
                    Arc::new(StringArray::from(vec![Some("a"), None])) as _,
                ),
                ("n", Arc::new(Int64Array::from(vec![1, v])) as _),
            ])
            .expect("batch")
        };
        let dir = tempfile::tempdir().expect("tempdir");
        save_answer(dir.path(), 7, &[batch(2)]).expect("saved");
        let check = |b| check_answer_in(dir.path(), 7, &[b]).expect("checked");
        assert_eq!(check(batch(2)), AnswerStatus::Correct);
        assert!(matches!(check(batch(3)), AnswerStatus::Wrong(_)));
        assert_eq!(
            check_answer_in(dir.path(), 8, &[batch(2)]).expect("checked"),
            AnswerStatus::NoReference
        );
    }

    #[test]
    fn median_of_timings() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[ms(5)]), Some(ms(5)));
        assert_eq!(median(&[ms(9), ms(1), ms(5)]), Some(ms(5)));
        assert_eq!(median(&[ms(4), ms(1), ms(2), ms(10)]), Some(ms(3)));
    }

    #[test]
    fn report_json_and_text() {
        let report = BenchReport {
            queries: vec![
                QueryReport {
                    query: 1,
                    timings: vec![ms(10), ms(30), ms(20)],
                    rows: 4,
                    peak_rss_kib: Some(2048),
                    status: QueryStatus::Ok,
                },
                QueryReport {
                    query: 2,
                    timings: vec![],
                    rows: 0,
                    peak_rss_kib: None,
                    status: QueryStatus::Failed(BenchError::UnknownQuery(99)),
                },
                QueryReport {
                    query: 3,
                    timings: vec![ms(7)],
                    rows: 10,
                    peak_rss_kib: None,
                    status: QueryStatus::Unchecked,
                },
            ],
            api: QueryApi::Sql,
        };
        assert_eq!(report.total(), ms(27));
        assert!(report.has_failures());
        let json = report.to_json();
        assert_eq!(json["total_ms"], 27.0);
        assert_eq!(json["api"], "sql");
        assert_eq!(json["queries"][0]["median_ms"], 20.0);
        assert_eq!(json["queries"][0]["min_ms"], 10.0);
        assert_eq!(json["queries"][0]["ok"], true);
        assert_eq!(json["queries"][1]["ok"], false);
        assert!(json["queries"][1]["median_ms"].is_null());
        assert!(json["queries"][2]["ok"].is_null());
        assert_eq!(json["queries"][0]["peak_rss_kib"], 2048);
        assert_eq!(json["peak_rss_kib"], 2048);
        assert!(format_total(&report).contains("  2  (1 of 3"));
        assert!(json["queries"][1]["peak_rss_kib"].is_null());
        let columns: Vec<String> = format_row(&report.queries[0])
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(columns, ["q1", "20.0", "10.0", "4", "2", "ok"]);
        assert!(format_header().contains("peak MiB"));
        let row = format_row(&report.queries[1]);
        assert!(
            row.contains("ERROR") && row.contains("no TPC-H query 99"),
            "{row}"
        );
        assert!(format_row(&report.queries[0]).ends_with("ok"));
        assert!(format_total(&report).contains("1 of 3 queries failed"));
    }
}
