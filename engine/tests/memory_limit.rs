//! The memory limit: operators that buffer (sort, aggregate, hash-join build) reserve what
//! they hold. Sort, aggregate and hash join spill to disk and give the same answer as
//! without a limit; what cannot spill (a cross join's build, one batch larger than the
//! limit) fails with an error naming the operator and the limit.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use sluice::{ExchangeMode, Session, SessionConfig, SluiceError};

fn session(limit: usize) -> Session {
    session_with(SessionConfig::default().with_memory_limit(limit))
}

/// A session of `config` (on 2 partitions) with `t`: 200 000 rows of distinct `k` and `v`.
fn session_with(config: SessionConfig) -> Session {
    let s = Session::with_config(config.with_target_partitions(2));
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let batches = (0..20)
        .map(|b| {
            let k: Int64Array = (0..10_000).map(|i| b * 10_000 + i).collect();
            let v: Int64Array = (0..10_000).map(|i| (i * 7) % 1000).collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(v)]).expect("batch")
        })
        .collect();
    s.register_batches("t", schema, batches).expect("register");
    s
}

fn run(s: &Session, sql: &str) -> Result<usize, SluiceError> {
    Ok(s.sql(sql)?
        .collect()?
        .iter()
        .map(RecordBatch::num_rows)
        .sum())
}

/// [`session`] plus `u`: 60 000 rows of `k` (duplicates, every 97th NULL) and `w`.
fn session_with_u(limit: usize) -> Session {
    let s = session(limit);
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("w", DataType::Int64, false),
    ]));
    let batches = (0..6)
        .map(|b| {
            let k: Int64Array = (0..10_000)
                .map(|i| {
                    let n = b * 10_000 + i;
                    (n % 97 != 0).then_some((n * 13) % 250_000)
                })
                .collect();
            let w: Int64Array = (0..10_000).map(|i| i % 100).collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(w)]).expect("batch")
        })
        .collect();
    s.register_batches("u", schema, batches).expect("register");
    s
}

#[test]
fn joins_spill_under_a_tiny_limit_and_give_the_same_rows() {
    // t is 3.2 MB: under 1 MB every build side below spills into parts.
    let small = session_with_u(1_000_000);
    let large = session_with_u(1 << 30);
    for sql in [
        "SELECT count(*), sum(a.v + b.v) FROM t a JOIN t b ON a.k = b.k",
        "SELECT t.k, t.v, u.w FROM t JOIN u ON t.k = u.k ORDER BY t.k, u.w",
        "SELECT t.k, u.w FROM u JOIN t ON t.k = u.k AND t.v < u.w ORDER BY t.k, u.w",
        "SELECT t.k AS tk, u.k AS uk, u.w FROM t LEFT JOIN u ON t.k = u.k ORDER BY tk, w LIMIT 3000",
        "SELECT count(*), count(t.k), count(u.k) FROM t RIGHT JOIN u ON t.k = u.k",
        "SELECT count(*), count(t.k), count(u.k) FROM t FULL JOIN u ON t.k = u.k AND u.w > 50",
        "SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.k = t.k)",
        "SELECT count(*) FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.k = t.k)",
        "SELECT count(*) FROM u WHERE k IN (SELECT k FROM t WHERE v < 500)",
        "SELECT count(*) FROM u WHERE k NOT IN (SELECT k FROM t WHERE v < 500)",
        "SELECT count(*) FROM t WHERE k NOT IN (SELECT k FROM u)",
    ] {
        assert_eq!(rendered(&small, sql), rendered(&large, sql), "{sql}");
    }
}

#[test]
fn a_cross_join_build_over_the_limit_fails_naming_operator_and_limit() {
    let sql = "SELECT count(*) FROM t a, t b WHERE a.v + b.v < 0";
    let e = run(&session(200_000), sql).expect_err("a cross join cannot spill");
    // Across an exchange it arrives as the producer's failure; the cause stays in the text.
    let msg = e.to_string();
    assert!(msg.contains("resources exhausted"), "{msg}");
    assert!(
        msg.contains("HashJoinExec") && msg.contains("200000"),
        "{msg}"
    );
}

#[test]
fn a_spilled_join_part_over_the_limit_fails_naming_the_part() {
    // Every build row has the same key, so one part holds them all (NOT IN always builds
    // the subquery side).
    let sql = "SELECT count(*) FROM t WHERE k < 5 AND k % 1 NOT IN (SELECT k % 1 FROM t)";
    let e = run(&session(1_000_000), sql).expect_err("one part holds the whole build side");
    let msg = e.to_string();
    assert!(
        msg.contains("HashJoinExec") && msg.contains("spilled"),
        "{msg}"
    );
}

/// A session like [`session`] whose spill files go to a directory of its own.
fn session_spilling_into(dir: &tempfile::TempDir, limit: usize, mode: ExchangeMode) -> Session {
    let mut config = SessionConfig::default()
        .with_memory_limit(limit)
        .with_exchange_mode(mode);
    config.spill_dir = dir.path().to_path_buf();
    session_with(config)
}

/// What is left in `dir`.
fn left_in(dir: &tempfile::TempDir) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.path())
        .expect("spill dir")
        .map(|e| e.expect("entry").path())
        .collect()
}

#[test]
fn a_failed_spilled_join_leaves_no_spill_files() {
    // The query of the test above: one partition fails while the other may still be
    // joining its spilled parts; collect returns only once both let go of their files.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = session_spilling_into(&dir, 1_000_000, ExchangeMode::Pipelined);
    let sql = "SELECT count(*) FROM t WHERE k < 5 AND k % 1 NOT IN (SELECT k % 1 FROM t)";
    run(&s, sql).expect_err("one part holds the whole build side");
    assert_eq!(left_in(&dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn spilled_and_blocking_runs_leave_no_files_when_they_end_or_stop_early() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = session_spilling_into(&dir, 1_000_000, ExchangeMode::Blocking);
    // Spills the join's parts and writes every exchange to files.
    let joined = "SELECT count(*), sum(a.v + b.v) FROM t a JOIN t b ON a.k = b.k";
    assert_eq!(run(&s, joined).expect("join"), 1);
    assert_eq!(left_in(&dir), Vec::<std::path::PathBuf>::new(), "{joined}");
    // LIMIT stops reading while producers are still writing.
    assert_eq!(run(&s, "SELECT k FROM t LIMIT 3").expect("limit"), 3);
    assert_eq!(left_in(&dir), Vec::<std::path::PathBuf>::new(), "LIMIT");
    // A result stream dropped after its first batch.
    let mut batches = s
        .sql("SELECT k, v FROM t ORDER BY v")
        .and_then(|df| df.execute_iter())
        .expect("stream");
    assert!(batches.next().expect("a batch").is_ok());
    drop(batches);
    assert_eq!(
        left_in(&dir),
        Vec::<std::path::PathBuf>::new(),
        "dropped stream"
    );
}

fn rendered(s: &Session, sql: &str) -> String {
    let batches = s
        .sql(sql)
        .and_then(|df| df.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches)
        .expect("formats")
        .to_string()
}

#[test]
fn sort_spills_under_a_tiny_limit_and_gives_the_same_rows() {
    // 400 kB holds about two input batches (10 000 rows × 2 BIGINT = 160 kB; with a
    // string column 210 kB): every sort below spills many runs and merges them.
    let small = session(400_000);
    let large = session(1 << 30);
    for sql in [
        "SELECT k, v FROM t ORDER BY v, k",
        "SELECT k, v FROM t ORDER BY v DESC, k DESC",
        "SELECT v, k % 7 AS m, CAST(k AS VARCHAR) AS s FROM t ORDER BY m, s DESC",
        "SELECT k FROM t WHERE v < 10 ORDER BY k DESC",
    ] {
        assert_eq!(rendered(&small, sql), rendered(&large, sql), "{sql}");
    }
}

#[test]
fn a_single_batch_larger_than_the_limit_still_fails_naming_sort() {
    let tiny = session(100_000);
    let e = run(&tiny, "SELECT k FROM t ORDER BY v, k").expect_err("one batch is 160 kB");
    let msg = e.to_string();
    assert!(msg.contains("SortExec") && msg.contains("100000"), "{msg}");
}

#[test]
fn aggregate_spills_under_a_tiny_limit_and_gives_the_same_groups() {
    // 200 000 groups need about 5 MB; under 1 MB the final aggregation spills into buckets
    // (each must fit in what the sort after it leaves).
    let small = session(1_000_000);
    let large = session(1 << 30);
    for sql in [
        "SELECT k, count(*) AS c FROM t GROUP BY k ORDER BY k",
        "SELECT v, count(*), sum(k), min(k), max(k), avg(k) FROM t GROUP BY v ORDER BY v",
        "SELECT CAST(k AS VARCHAR) AS s, sum(v) FROM t GROUP BY CAST(k AS VARCHAR) ORDER BY s LIMIT 50",
        "SELECT k % 50000 AS g, v % 3 AS h, count(*) FROM t GROUP BY k % 50000, v % 3 ORDER BY g, h",
    ] {
        assert_eq!(rendered(&small, sql), rendered(&large, sql), "{sql}");
    }
}

#[test]
fn distinct_value_sets_count_against_the_limit() {
    // 200 000 distinct values in one group: the value set alone is several MB.
    let sql = "SELECT count(DISTINCT k) FROM t";
    let e = run(&session(1_000_000), sql).expect_err("the value set does not fit in 1 MB");
    assert!(e.to_string().contains("AggregateExec"), "{e}");
    assert_eq!(
        rendered(&session(1 << 30), sql),
        "+-------------------+\n| count(DISTINCT k) |\n+-------------------+\n| 200000            |\n+-------------------+"
    );
}
