//! Streaming mode against batch mode: every query over a bounded source must give, run as
//! a stream (`SET 'execution.runtime-mode' = 'streaming'`), the same final result as the
//! same SQL run as a batch (a changelog applied first): updating aggregates, joins, sinks.
//! Plus what only streams have: unbounded sources read until the reader stops, jobs,
//! metrics, and clear errors for what has no streaming form yet. Windows are in
//! `stream_windows.rs`.

use sluice::Session;

mod common;
use common::{apply_changelog, last_column_sum, lines, rows, same_both_ways, session};

#[test]
fn filter_and_projection_equal_batch() {
    same_both_ways("SELECT id, price * 2 AS double_price, ts FROM bids WHERE price > 990");
}

#[test]
fn unbounded_source_streams_until_the_reader_stops() {
    let s = Session::new();
    s.sql(
        "CREATE TABLE events (k BIGINT, v DOUBLE) WITH ('connector' = 'datagen',
         'fields.k.min' = '1', 'fields.k.max' = '9')",
    )
    .expect("create");
    let df = s
        .sql("SELECT k, v * 2 AS w FROM events WHERE k > 4")
        .expect("plan");
    assert!(
        df.is_streaming(),
        "automatic mode streams an unbounded source"
    );
    let e = df
        .collect()
        .expect_err("collect of an unbounded query")
        .to_string();
    assert!(e.contains("unbounded"), "{e}");
    let mut seen = 0;
    for b in df.execute_iter().expect("stream").take(5) {
        let b = b.expect("batch");
        assert!(b.num_rows() > 0);
        seen += b.num_rows();
    }
    assert!(seen > 0);
    s.sql("SET 'execution.runtime-mode' = 'batch'")
        .expect("set");
    let e = s
        .sql("SELECT * FROM events")
        .expect("plan")
        .execute_iter()
        .err()
        .expect("batch over unbounded fails")
        .to_string();
    assert!(e.contains("unbounded") && e.contains("streaming"), "{e}");
}

#[test]
fn insert_into_blackhole_and_print_sinks() {
    let s = session(5000, "2", 2);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    s.sql("CREATE TABLE sink (ws TIMESTAMP, n BIGINT, hi BIGINT) WITH ('connector' = 'blackhole')")
        .expect("sink");
    let out = s
        .sql(
            "INSERT INTO sink SELECT window_start, COUNT(*), MAX(price)
             FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND))
             GROUP BY window_start, window_end",
        )
        .expect("insert")
        .collect()
        .expect("count");
    let windows = rows(&out);
    // 5000 rows at 7 ms each span 35 s of event time: 8 windows of 5 s (jitter may add one).
    let n: i64 = windows[0].parse().expect("count");
    assert!((7..=9).contains(&n), "{windows:?}");
    let e = s
        .sql("SELECT * FROM sink")
        .and_then(|df| df.collect())
        .expect_err("sinks are write-only");
    assert!(e.to_string().contains("not read"), "{e}");
    s.sql("CREATE TABLE p (a BIGINT) WITH ('connector' = 'print')")
        .expect("print sink");
    let e = s
        .sql("INSERT INTO p SELECT id, price FROM bids")
        .expect_err("width");
    assert!(e.to_string().contains("2 columns"), "{e}");
}

#[test]
fn what_has_no_streaming_form_is_refused_by_name() {
    let s = session(100, "2", 1);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    for (sql, what) in [
        (
            "SELECT n, MAX(k) FROM (SELECT auction AS k, COUNT(*) AS n FROM bids GROUP BY auction)
             GROUP BY n",
            "MAX over an updating result",
        ),
        ("SELECT * FROM bids ORDER BY price", "Sort"),
        (
            "SELECT id FROM bids WHERE auction IN (SELECT auction FROM bids WHERE price > 990)",
            "Semi join",
        ),
        (
            "SELECT a.id FROM bids a JOIN bids b ON a.id < b.id",
            "without equality keys",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE (SELECT a.ts FROM bids a JOIN bids b
             ON a.id = b.id), DESCRIPTOR(ts), INTERVAL '1' SECOND))",
            "regular join",
        ),
        (
            "SELECT c.n FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) c
             JOIN bids b ON c.auction = b.auction",
            "a join over an updating result",
        ),
    ] {
        let e = s
            .sql(sql)
            .and_then(|df| df.collect())
            .expect_err(sql)
            .to_string();
        assert!(e.contains(what) && e.contains("streaming"), "{sql}: {e}");
    }
    let e = s
        .sql("SET 'execution.runtime-mode' = 'sometimes'")
        .expect_err("bad mode")
        .to_string();
    assert!(e.contains("streaming"), "{e}");
}

#[test]
fn updating_group_by_changelog_applies_to_the_batch_result() {
    same_both_ways(
        "SELECT auction, COUNT(*) AS n, SUM(price) AS total, MAX(price) AS hi,
                MIN(price) AS lo, AVG(price) AS mean
         FROM bids GROUP BY auction",
    );
}

#[test]
fn group_by_over_a_group_by_retracts_and_deletes() {
    // How many auctions have each bid count: as counts grow, auctions leave one bucket
    // for the next, and a bucket left empty is deleted.
    same_both_ways(
        "SELECT n / 50 AS bucket, COUNT(*) AS auctions, SUM(total) AS total,
                AVG(total) AS mean, SUM(CASE WHEN n > 1000 THEN n END) AS big
         FROM (SELECT auction, COUNT(*) AS n, SUM(price) AS total FROM bids GROUP BY auction)
         GROUP BY n / 50",
    );
    let s = session(20_000, "2", 1);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let changelog = lines(
        &s.sql(
            "SELECT n, COUNT(*) AS auctions
             FROM (SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction) GROUP BY n",
        )
        .and_then(|df| df.collect())
        .expect("run"),
    );
    assert!(
        changelog.iter().any(|l| l.starts_with("-D | ")),
        "a count no auction has any more is deleted"
    );
    // Applied, only the auctions' final counts are left: 40 auctions in all.
    let total = last_column_sum(&apply_changelog(&changelog));
    assert_eq!(total, 40);
}

#[test]
fn outer_joins_pad_retract_and_equal_batch() {
    // Cheap bids of auctions above 10 against dear bids of auctions up to 20: some rows of
    // each side never match, others are padded first and matched later.
    let cheap = "(SELECT id, auction, price FROM bids WHERE price < 60 AND auction > 10)";
    let dear = "(SELECT id, auction, price FROM bids WHERE price > 980 AND auction <= 20)";
    for kind in ["LEFT", "RIGHT", "FULL"] {
        same_both_ways(&format!(
            "SELECT c.id, c.auction, d.id AS did, d.price
             FROM {cheap} c {kind} JOIN {dear} d ON c.auction = d.auction AND d.price > c.price"
        ));
    }
    // A changelog (how padded rows are retracted is unit-tested in stream::join: here
    // the two inputs race, so whether a padded row precedes its match varies).
    let s = session(100, "2", 1);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let df = s
        .sql(&format!(
            "SELECT c.id, d.id FROM {cheap} c LEFT JOIN {dear} d ON c.auction = d.auction"
        ))
        .expect("plan");
    assert!(df.is_updating());
    assert_eq!(df.result_schema().field(0).name(), "op");
    // An outer join's changelog can be aggregated: matches per cheap bid.
    same_both_ways(&format!(
        "SELECT c.auction, COUNT(d.id) AS matches, COUNT(*) AS n
         FROM {cheap} c LEFT JOIN {dear} d ON c.auction = d.auction GROUP BY c.auction"
    ));
}

#[test]
fn updating_global_aggregate_equals_batch() {
    same_both_ways("SELECT COUNT(*) AS n, SUM(price) AS total, MAX(ts) AS latest FROM bids");
}

#[test]
fn filter_and_projection_over_a_changelog_equal_batch() {
    same_both_ways(
        "SELECT auction * 10 AS a10, n, n * 2 AS n2
         FROM (SELECT auction, COUNT(*) AS n FROM bids WHERE price > 100 GROUP BY auction)
         WHERE n > 400",
    );
}

#[test]
fn changelog_starts_with_inserts_and_skips_unchanged_results() {
    let s = session(20_000, "2", 1);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let df = s
        .sql("SELECT auction, COUNT(*) AS n FROM bids WHERE auction <= 2 GROUP BY auction")
        .expect("plan");
    assert!(df.is_updating());
    let out = lines(&df.collect().expect("run"));
    // 20 batches of 1000 rows: each key is inserted once, then revised once per batch.
    assert!(out[0].starts_with("+I | "), "{out:?}");
    let count = |op: &str| out.iter().filter(|l| l.starts_with(op)).count();
    assert_eq!(count("+I"), 2, "{out:?}");
    assert_eq!(count("-U"), count("+U"), "{out:?}");
    assert!(count("+U") >= 2 * 15, "{out:?}");
    for (i, l) in out.iter().enumerate() {
        if l.starts_with("-U") {
            assert!(out[i + 1].starts_with("+U"), "-U then +U: {out:?}");
        }
    }
    // A result that never changes is inserted once and never revised.
    let df = s
        .sql("SELECT auction % 2 AS k, MIN(price * 0) AS z FROM bids GROUP BY auction % 2")
        .expect("plan");
    let out = lines(&df.collect().expect("run"));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.iter().all(|l| l.starts_with("+I | ")), "{out:?}");
}

#[test]
fn updating_query_into_sinks_and_memory_tables() {
    let s = session(5000, "2", 2);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    s.sql("CREATE TABLE sink (a BIGINT, n BIGINT) WITH ('connector' = 'blackhole')")
        .expect("sink");
    let out = s
        .sql("INSERT INTO sink SELECT auction, COUNT(*) FROM bids GROUP BY auction")
        .expect("insert")
        .collect()
        .expect("count");
    // 40 keys inserted once; every later batch revises them with a -U/+U pair.
    let n: i64 = rows(&out)[0].parse().expect("count");
    assert!(n > 40 && (n - 40) % 2 == 0, "{n}");
    s.sql("CREATE TABLE mem (a BIGINT, n BIGINT)").expect("mem");
    let e = s
        .sql("INSERT INTO mem SELECT auction, COUNT(*) FROM bids GROUP BY auction")
        .expect_err("changelog into an append-only table")
        .to_string();
    assert!(e.contains("updating") && e.contains("mem"), "{e}");
}

#[test]
fn inner_join_of_two_streams_equals_batch() {
    same_both_ways(
        "SELECT a.id, b.id AS other, a.auction, b.price - a.price AS diff
         FROM bids a JOIN bids b ON a.auction = b.auction AND a.id < b.id
         WHERE a.id < 400 AND b.id < 400 AND b.price > 200",
    );
}

#[test]
fn join_of_window_aggregates_equals_batch() {
    // Nexmark q5's shape: the auctions with the most bids in each window.
    same_both_ways(
        "WITH counts AS (
           SELECT window_start, window_end, auction, COUNT(*) AS n
           FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
           GROUP BY window_start, window_end, auction)
         SELECT c.window_start, c.auction, c.n
         FROM counts c JOIN (
           SELECT window_start, window_end, MAX(n) AS top FROM counts
           GROUP BY window_start, window_end) m
         ON c.window_start = m.window_start AND c.window_end = m.window_end
         WHERE c.n >= m.top",
    );
}

#[test]
fn state_ttl_is_a_setting() {
    let s = session(100, "2", 1);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let sql = "SELECT a.id FROM bids a JOIN bids b ON a.id = b.id";
    let plan = s.sql(sql).expect("plan").explain().expect("explain");
    assert!(
        plan.contains("StreamJoinExec") && !plan.contains("ttl"),
        "{plan}"
    );
    s.sql("SET 'table.exec.state.ttl' = '90 s'").expect("ttl");
    let plan = s.sql(sql).expect("plan").explain().expect("explain");
    assert!(plan.contains("state ttl=90s"), "{plan}");
    assert_eq!(
        s.config().state_ttl,
        Some(std::time::Duration::from_secs(90))
    );
    s.sql("SET 'table.exec.state.ttl' = '0'").expect("ttl off");
    assert_eq!(s.config().state_ttl, None);
    for bad in ["soon", "5 fortnights", "-1 s"] {
        let e = s
            .sql(&format!("SET 'table.exec.state.ttl' = '{bad}'"))
            .expect_err(bad)
            .to_string();
        assert!(e.contains("not a duration"), "{bad}: {e}");
    }
    let e = s
        .sql("SET 'no.such.setting' = '1'")
        .expect_err("unknown key")
        .to_string();
    assert!(e.contains("table.exec.state.ttl"), "{e}");
}

#[test]
fn explain_analyze_shows_late_rows_and_back_pressure() {
    let s = session(20_000, "0", 1);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let out = s
        .sql(
            "EXPLAIN ANALYZE SELECT window_start, COUNT(*) AS n
             FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '1' SECOND))
             GROUP BY window_start, window_end",
        )
        .expect("plan")
        .collect()
        .expect("run");
    let text = lines(&out).join("\n");
    let late: u64 = text
        .split("late_rows=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no late_rows metric: {text}"));
    assert!(late > 0, "a zero-delay watermark drops late rows: {text}");
    assert!(text.contains("back_pressure="), "{text}");
    assert!(text.contains("rows="), "{text}");
    // A batch query analyzes too; an unbounded one would never finish.
    s.sql("SET 'execution.runtime-mode' = 'batch'")
        .expect("set");
    let out = s
        .sql("EXPLAIN ANALYZE SELECT COUNT(*) FROM bids")
        .expect("plan")
        .collect()
        .expect("run");
    assert!(lines(&out).join("\n").contains("rows=1,"), "{out:?}");
    s.sql("CREATE TABLE forever (x BIGINT) WITH ('connector' = 'datagen')")
        .expect("create");
    s.sql("SET 'execution.runtime-mode' = 'automatic'")
        .expect("set");
    let e = s
        .sql("EXPLAIN ANALYZE SELECT x FROM forever")
        .expect_err("unbounded")
        .to_string();
    assert!(e.contains("unbounded"), "{e}");
}

#[test]
fn interval_join_equals_batch_and_shows_its_bounds() {
    let sql = "SELECT a.id, b.id AS other
               FROM bids a JOIN bids b ON a.auction = b.auction
                 AND a.ts BETWEEN b.ts - INTERVAL '1' SECOND AND b.ts + INTERVAL '500' MILLISECOND
               WHERE a.id < 3000 AND b.id < 3000";
    same_both_ways(sql);
    let s = session(100, "2", 1);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let plan = s.sql(sql).expect("plan").explain().expect("explain");
    // The optimizer may swap the sides: then the bounds of `b.ts - a.ts` are the negated,
    // swapped ones.
    let as_written = plan.contains("interval: -1000000µs <=") && plan.contains("<= 500000µs");
    let swapped = plan.contains("interval: -500000µs <=") && plan.contains("<= 1000000µs");
    assert!(as_written || swapped, "{plan}");
}

#[test]
fn a_submitted_insert_runs_until_cancelled() {
    let s = Session::new();
    s.sql(
        "CREATE TABLE events (id BIGINT, k BIGINT, ts AS TO_TIMESTAMP_LTZ(id, 3),
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
         ) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence',
           'fields.id.start' = '0', 'fields.id.end' = '9223372036854775806',
           'fields.k.min' = '1', 'fields.k.max' = '5')",
    )
    .expect("source");
    s.sql("CREATE TABLE sink (ws TIMESTAMP, k BIGINT, n BIGINT) WITH ('connector' = 'blackhole')")
        .expect("sink");
    // The sequence makes the table bounded (but too long to finish): run it as a stream.
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let job = s
        .submit(
            "INSERT INTO sink SELECT window_start, k, COUNT(*)
             FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' SECOND))
             GROUP BY window_start, window_end, k",
        )
        .expect("submit");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        !job.is_finished(),
        "an INSERT from an unbounded source keeps running"
    );
    // Its operators' metrics, while it runs.
    let metrics = job.metrics().expect("the query has started");
    for part in [
        "WindowAggregateExec",
        "late_rows=",
        "StreamExchangeExec",
        "back_pressure=",
    ] {
        assert!(metrics.contains(part), "{part} in {metrics}");
    }
    job.cancel();
    // Bounded wait: a cancel that does not work fails the test instead of hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !job.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(job.is_finished(), "the cancelled job stops");
    let out = job.wait().expect("cancelled job");
    let written: i64 = rows(&out)[0].parse().expect("count");
    assert!(written > 0, "windows were written before the cancel");
    // A bounded INSERT submitted runs to its end.
    let s = session(2000, "2", 2);
    s.sql("CREATE TABLE bh (n BIGINT) WITH ('connector' = 'blackhole')")
        .expect("sink");
    let out = s
        .submit("INSERT INTO bh SELECT id FROM bids")
        .expect("submit")
        .wait()
        .expect("bounded job");
    assert_eq!(rows(&out), ["2000"]);
}
