//! Windows in streaming mode against batch mode: TUMBLE, HOP, CUMULATE, SESSION and count window
//! aggregates and the window table functions' rows must give, run as a stream, the batch
//! result of the same SQL (DataFrame windows too); plus what only streams have: late rows
//! dropped and counted, allowed lateness, `CURRENT_WATERMARK`, processing time.

use sluice::{Session, SessionConfig};

mod common;
use common::{last_column_sum, lines, rows, run, same_both_ways, session};

#[test]
fn tumble_window_aggregate_equals_batch() {
    same_both_ways(
        "SELECT window_start, window_end, auction, COUNT(*) AS n, SUM(price) AS total,
                MAX(price) AS hi, MIN(price) AS lo, AVG(price) AS mean
         FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, auction",
    );
}

#[test]
fn hop_window_without_keys_equals_batch() {
    same_both_ways(
        "SELECT window_start, window_end, COUNT(*) AS n, SUM(price) AS total
         FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND))
         GROUP BY window_start, window_end",
    );
}

#[test]
fn cumulate_window_with_filter_and_expression_key_equals_batch() {
    same_both_ways(
        "SELECT window_end, auction % 4 AS bucket, COUNT(*) AS n, MAX(price) AS hi
         FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
         WHERE price > 500
         GROUP BY window_start, window_end, auction % 4",
    );
}

#[test]
fn session_windows_per_key_equal_batch() {
    // An auction's bids come about 280 ms apart: a 300 ms gap gives sessions of varied
    // length, closed by the watermark as the stream goes.
    same_both_ways(
        "SELECT window_start, window_end, auction, COUNT(*) AS n, SUM(price) AS total
         FROM TABLE(SESSION(TABLE bids PARTITION BY auction, DESCRIPTOR(ts),
                            INTERVAL '0.3' SECOND))
         GROUP BY window_start, window_end, auction",
    );
}

#[test]
fn session_windows_without_keys_and_the_bare_table_function_equal_batch() {
    same_both_ways(
        "SELECT window_start, window_end, COUNT(*) AS n, MAX(price) AS hi
         FROM TABLE(SESSION(TABLE bids, DESCRIPTOR(ts), INTERVAL '0.005' SECOND))
         GROUP BY window_start, window_end",
    );
    same_both_ways(
        "SELECT id, auction, window_start, window_end, window_time
         FROM TABLE(SESSION(TABLE bids PARTITION BY (auction), DESCRIPTOR(ts),
                            INTERVAL '1' SECOND))
         WHERE auction = 7",
    );
}

#[test]
fn a_long_window_aggregates_its_rows_in_several_mini_batches() {
    // 200 000 rows in one one-hour window (and a few jittered before it, in the previous
    // one): more rows than one mini-batch holds.
    let s = session(200_000, "2", 1);
    let sql = "SELECT window_start, auction, COUNT(*) AS n, SUM(price) AS total,
                      MIN(price) AS lo, MAX(price) AS hi
               FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '1' HOUR))
               GROUP BY window_start, window_end, auction";
    let batch = run(&s, "batch", sql);
    assert!(batch.len() >= 40, "{batch:?}");
    assert_eq!(run(&s, "streaming", sql), batch);
}

#[test]
fn dataframe_windows_equal_their_sql_in_batch_and_stream() {
    use sluice::{col, count_star, max, Window};
    use std::time::Duration;
    let secs = Duration::from_secs;
    let windows = [
        (
            Window::tumble("ts", secs(10)),
            "TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)",
        ),
        (
            Window::hop("ts", secs(5), secs(10)),
            "HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)",
        ),
        (
            Window::cumulate("ts", secs(2), secs(10)),
            "CUMULATE(TABLE bids, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)",
        ),
        (
            Window::session("ts", Duration::from_millis(300)).partition_by(&["auction"]),
            "SESSION(TABLE bids PARTITION BY auction, DESCRIPTOR(ts), INTERVAL '0.3' SECOND)",
        ),
    ];
    for mode in ["batch", "streaming"] {
        let s = session(20_000, "2", 2);
        s.sql(&format!("SET 'execution.runtime-mode' = '{mode}'"))
            .expect("set");
        for (window, tvf) in &windows {
            let df = s
                .table("bids")
                .and_then(|t| t.window(window.clone()))
                .and_then(|w| {
                    w.aggregate(
                        vec![col("window_start"), col("window_end"), col("auction")],
                        vec![count_star().alias("n"), max(col("price")).alias("hi")],
                    )
                })
                .expect("dataframe");
            assert_eq!(df.is_streaming(), mode == "streaming");
            let sql = format!(
                "SELECT window_start, window_end, auction, COUNT(*) AS n, MAX(price) AS hi
                 FROM TABLE({tvf}) GROUP BY window_start, window_end, auction"
            );
            let expected = run(&s, mode, &sql);
            assert!(expected.len() > 40, "{tvf}");
            assert_eq!(rows(&df.collect().expect("run")), expected, "{mode}: {tvf}");
        }
    }
    let s = session(100, "2", 1);
    let bids = s.table("bids").expect("bids");
    let e = bids
        .window(Window::tumble("ts", secs(1)).partition_by(&["auction"]))
        .expect_err("partitioned tumble");
    assert!(
        e.to_string().contains("SESSION and count windows only"),
        "{e}"
    );
    let e = bids
        .window(Window::session("nope", secs(1)))
        .expect_err("no such column");
    assert!(e.to_string().contains("no column 'nope'"), "{e}");
}

#[test]
fn window_table_function_rows_equal_batch() {
    same_both_ways(
        "SELECT id, window_start, window_end, window_time
         FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '3' SECOND))
         WHERE id < 500",
    );
}

#[test]
fn tumble_windows_hold_their_rows() {
    let s = session(1000, "2", 1);
    let r = run(
        &s,
        "batch",
        "SELECT COUNT(*), SUM(CASE WHEN ts >= window_start AND ts < window_end THEN 1 ELSE 0 END),
                MIN(window_end - window_start)
         FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '2' SECOND))",
    );
    assert_eq!(r.len(), 1);
    assert!(r[0].starts_with("1000 | 1000 | "), "{r:?}");
}

#[test]
fn late_rows_are_dropped_when_the_watermark_allows_no_disorder() {
    let sql = "SELECT window_start, COUNT(*) AS n
               FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '1' SECOND))
               GROUP BY window_start, window_end";
    let s = session(20_000, "0", 1);
    let batch = last_column_sum(&run(&s, "batch", sql));
    let stream = last_column_sum(&run(&s, "streaming", sql));
    assert_eq!(batch, 20_000);
    assert!(
        stream < batch && stream > batch / 2,
        "a watermark without delay must drop the rows that arrive after their window fired: \
         stream {stream}, batch {batch}"
    );
}

#[test]
fn current_watermark_filters_late_rows_in_a_stream_and_is_null_in_batch() {
    let s = session(20_000, "0", 1);
    let late = "SELECT id FROM bids WHERE ts <= CURRENT_WATERMARK(ts)";
    let on_time = "SELECT id FROM bids
                   WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts)";
    // Batch: no watermark, so NULL: nothing is late.
    assert!(run(&s, "batch", late).is_empty());
    assert_eq!(run(&s, "batch", on_time).len(), 20_000);
    assert_eq!(
        run(
            &s,
            "batch",
            "SELECT CURRENT_WATERMARK(ts) AS w FROM bids WHERE id = 1"
        ),
        ["NULL"]
    );
    // Stream: with no allowed disorder, jittered rows fall behind the watermark; each row
    // is on one side.
    let (l, o) = (run(&s, "streaming", late), run(&s, "streaming", on_time));
    assert!(!l.is_empty() && !o.is_empty(), "{} late", l.len());
    assert_eq!(l.len() + o.len(), 20_000);
    // In a projection, the watermark trails the rows' times.
    let w = run(
        &s,
        "streaming",
        "SELECT id FROM bids
         WHERE CURRENT_WATERMARK(ts) IS NOT NULL AND CURRENT_WATERMARK(ts) > ts + INTERVAL '2' SECOND",
    );
    assert!(
        w.is_empty(),
        "the watermark never runs 2 s ahead of a row: {w:?}"
    );
    let marks = run(
        &s,
        "streaming",
        "SELECT CURRENT_WATERMARK(ts) AS w FROM bids",
    );
    let known = marks.iter().filter(|m| *m != "NULL").count();
    assert!(
        known > 10_000,
        "a projection sees the watermark: {known} rows"
    );
    let e = s
        .sql("SELECT CURRENT_WATERMARK(id) FROM bids")
        .expect_err("not a time");
    assert!(e.to_string().contains("TIMESTAMP"), "{e}");
}

#[test]
fn allowed_lateness_revises_fired_windows_and_equals_batch() {
    // The watermark allows no disorder; 2 s of allowed lateness cover the 1.5 s jitter.
    let sql = "SELECT window_start, auction, COUNT(*) AS n, MAX(price) AS hi
               FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '1' SECOND))
               GROUP BY window_start, window_end, auction";
    for partitions in [1, 3] {
        let s = session(20_000, "0", partitions);
        let batch = run(&s, "batch", sql);
        s.sql("SET 'table.exec.emit.allow-lateness' = '2 s'")
            .expect("set");
        assert_eq!(run(&s, "streaming", sql), batch, "{partitions} partitions");
    }
    let s = session(20_000, "0", 1);
    s.sql("SET 'table.exec.emit.allow-lateness' = '2 s'")
        .expect("set");
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let df = s.sql(sql).expect("plan");
    assert!(df.is_updating());
    let changelog = lines(&df.collect().expect("run"));
    assert!(
        changelog.iter().any(|l| l.starts_with("-U | ")),
        "late rows revise"
    );
    // Rows later than the allowed lateness are still dropped and counted.
    s.sql("SET 'table.exec.emit.allow-lateness' = '200 ms'")
        .expect("set");
    let plan = lines(
        &s.sql(&format!("EXPLAIN ANALYZE {sql}"))
            .and_then(|df| df.collect())
            .expect("explain analyze"),
    )
    .join("\n");
    assert!(plan.contains("allowed lateness=200ms"), "{plan}");
    assert!(!plan.contains("late_rows=0"), "{plan}");
}

#[test]
fn late_rows_of_session_windows_are_dropped_and_counted() {
    let sql = "SELECT window_start, auction, COUNT(*) AS n
               FROM TABLE(SESSION(TABLE bids PARTITION BY auction, DESCRIPTOR(ts),
                                  INTERVAL '0.1' SECOND))
               GROUP BY window_start, window_end, auction";
    let s = session(20_000, "0", 1);
    assert_eq!(last_column_sum(&run(&s, "batch", sql)), 20_000);
    let stream = last_column_sum(&run(&s, "streaming", sql));
    let late = held_window_late_rows(&s, sql);
    assert!(late > 0 && stream < 20_000, "late {late}, kept {stream}");
    // Every row is either in a session or counted late (the aggregate drops none).
    assert_eq!(stream + late, 20_000);
}

/// The `late_rows` metric of the `HeldWindowExec` in `EXPLAIN ANALYZE sql`.
fn held_window_late_rows(s: &Session, sql: &str) -> i64 {
    let plan = lines(
        &s.sql(&format!("EXPLAIN ANALYZE {sql}"))
            .and_then(|df| df.collect())
            .expect("explain analyze"),
    )
    .join("\n");
    late_rows_in(&plan)
}

/// The `late_rows` metric of the `HeldWindowExec` in an `EXPLAIN ANALYZE` text.
fn late_rows_in(plan: &str) -> i64 {
    plan.lines()
        .find(|l| l.contains("HeldWindowExec"))
        .and_then(|l| l.split("late_rows=").nth(1))
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no late_rows on the held-window operator: {plan}"))
}

/// `df`'s count windows of `size` rows every `slide` rows per auction, aggregated.
fn count_window_sums(df: &sluice::DataFrame, size: u64, slide: u64) -> sluice::DataFrame {
    use sluice::{col, count_star, sum, Window};
    df.window(Window::sliding_count("ts", size, slide).partition_by(&["auction"]))
        .and_then(|w| {
            w.aggregate(
                vec![col("window_start"), col("window_end"), col("auction")],
                vec![count_star().alias("n"), sum(col("price")).alias("total")],
            )
        })
        .expect("count window")
}

#[test]
fn count_windows_take_each_keys_rows_in_time_order() {
    let s = Session::new();
    let t = |sec: u32| format!("TIMESTAMP '2024-01-01 00:00:0{sec}'");
    let values: Vec<String> = [(1, 1, 1), (1, 2, 2), (1, 3, 3), (1, 4, 4), (1, 5, 5)]
        .into_iter()
        .chain([(2, 3, 10), (2, 1, 20), (2, 2, 30)])
        .chain([(3, 7, 4), (3, 7, 3), (3, 7, 2), (3, 7, 1)])
        .map(|(k, sec, v)| format!("({k}, {}, {v})", t(sec)))
        .collect();
    let df = s
        .sql(&format!(
            "SELECT * FROM (VALUES {}) AS b(auction, ts, price)",
            values.join(", ")
        ))
        .expect("values");
    let result = |size, slide| -> Vec<String> {
        let mut r = rows(&count_window_sums(&df, size, slide).collect().expect("run"));
        r.sort();
        r
    };
    // Two rows to a window; a window that never fills (key 1's fifth row, key 2's
    // third) is not emitted. The end is just after the last row, and after the key's
    // previous window's end (key 3's rows all share one time).
    assert_eq!(
        result(2, 2),
        [
            "2024-01-01T00:00:01 | 2024-01-01T00:00:02.000001 | 1 | 2 | 3",
            "2024-01-01T00:00:01 | 2024-01-01T00:00:02.000001 | 2 | 2 | 50",
            "2024-01-01T00:00:03 | 2024-01-01T00:00:04.000001 | 1 | 2 | 7",
            "2024-01-01T00:00:07 | 2024-01-01T00:00:07.000001 | 3 | 2 | 3",
            "2024-01-01T00:00:07 | 2024-01-01T00:00:07.000002 | 3 | 2 | 7",
        ]
    );
    let sliding: Vec<String> = result(2, 1)
        .iter()
        .map(|r| r.rsplit(" | ").take(3).collect::<Vec<_>>().join(" "))
        .collect();
    let expected = ["3 2 1", "50 2 2", "5 2 1", "40 2 2", "7 2 1", "9 2 1"];
    assert_eq!(sliding[..6], expected);
    assert_eq!(sliding[6..], ["3 2 3", "5 2 3", "7 2 3"]);
    let e = df
        .window(sluice::Window::sliding_count("ts", 2, 3))
        .expect_err("slide past size");
    assert!(e.to_string().contains("0 < slide <= size"), "{e}");
}

#[test]
fn count_windows_equal_batch_and_drop_late_rows() {
    for (size, slide) in [(10, 10), (10, 4)] {
        let mut results = vec![];
        for mode in ["batch", "streaming"] {
            let s = session(20_000, "2", 2);
            s.sql(&format!("SET 'execution.runtime-mode' = '{mode}'"))
                .expect("set");
            let bids = s.table("bids").expect("bids");
            let mut r = rows(
                &count_window_sums(&bids, size, slide)
                    .collect()
                    .expect("run"),
            );
            r.sort();
            assert!(
                r.iter().all(|l| l.contains(&format!(" | {size} | "))),
                "{r:?}"
            );
            results.push(r);
        }
        assert!(results[0].len() > 500, "{}", results[0].len());
        assert_eq!(
            results[0], results[1],
            "count windows of {size} every {slide}"
        );
    }
    // Without disorder allowed, rows behind the watermark are late: dropped and counted.
    let s = session(20_000, "0", 1);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let bids = s.table("bids").expect("bids");
    let df = count_window_sums(&bids, 1, 1)
        .select(vec![sluice::col("n")])
        .expect("select");
    let kept = last_column_sum(&lines(&df.collect().expect("run")));
    let plan = df.explain_analyze().expect("explain analyze");
    let late = late_rows_in(&plan);
    assert!(late > 0 && kept + late == 20_000, "{kept} + {late}");
}

#[test]
fn processing_time_windows_fire_as_the_wall_clock_passes() {
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::TimestampMicrosecondType;
    let s = Session::with_config(SessionConfig::default().with_target_partitions(2));
    s.sql(
        "CREATE TABLE clicks (id BIGINT, pt AS PROCTIME())
         WITH ('connector' = 'datagen', 'rows-per-second' = '5000')",
    )
    .expect("table");
    let df = s
        .sql(
            "SELECT window_start, window_end, COUNT(*) AS n
             FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(pt), INTERVAL '0.2' SECOND))
             GROUP BY window_start, window_end",
        )
        .expect("plan");
    assert!(df.is_streaming());
    let now_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_micros() as i64
    };
    let began = now_us();
    let mut windows: Vec<(i64, i64, i64)> = Vec::new();
    for batch in df.execute_iter().expect("run") {
        let b = batch.expect("batch");
        let starts = b.column(0).as_primitive::<TimestampMicrosecondType>();
        let ends = b.column(1).as_primitive::<TimestampMicrosecondType>();
        let n = b
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("n");
        for i in 0..b.num_rows() {
            windows.push((starts.value(i), ends.value(i), n.value(i)));
        }
        if windows.len() >= 4 {
            break;
        }
    }
    let ended = now_us();
    for (start, end, n) in &windows {
        assert_eq!(end - start, 200_000, "{windows:?}");
        assert!(*n > 0);
        // Windows are of the wall clock during the run, and fired once it passed them.
        assert!(*start >= began - 200_000 && *end <= ended, "{windows:?}");
    }
    assert!(
        ended - began < 30_000_000,
        "four 0.2 s windows took {} µs",
        ended - began
    );
    // In batch mode PROCTIME() is the time of reading.
    s.sql(
        "CREATE TABLE few (id BIGINT, pt AS PROCTIME())
         WITH ('connector' = 'datagen', 'number-of-rows' = '10')",
    )
    .expect("table");
    let r = rows(
        &s.sql("SELECT COUNT(*) FROM few WHERE pt IS NOT NULL")
            .and_then(|df| df.collect())
            .expect("batch"),
    );
    assert_eq!(r, ["10"]);
}
