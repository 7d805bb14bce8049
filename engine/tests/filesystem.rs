//! The `filesystem` connector: bounded reads of Parquet and CSV directories (hidden and
//! in-progress files skipped, columns bound by name and cast safely), the errors that name
//! the path, file or column, `INSERT INTO` rolling part files read back equal, a
//! directory-monitoring streaming read that picks up new files, windows over files as a
//! stream equal to the batch result, and the refusal of updating INSERTs.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    AsArray, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use sluice::catalog::CatalogEntry;
use sluice::{Session, SessionConfig};

mod common;
use common::rows;

fn session(partitions: usize, batch_size: usize) -> Session {
    let cfg = SessionConfig {
        batch_size,
        ..SessionConfig::default()
    }
    .with_target_partitions(partitions);
    Session::with_config(cfg)
}

/// Runs `sql` and returns its result as one batch.
fn run(s: &Session, sql: &str) -> RecordBatch {
    let df = s.sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let schema = df.result_schema();
    let batches = df.collect().unwrap_or_else(|e| panic!("{sql}: {e}"));
    concat_batches(&schema, &batches).expect("concat")
}

fn err(s: &Session, sql: &str) -> String {
    match s.sql(sql).and_then(|df| df.collect()) {
        Ok(b) => panic!("expected an error for {sql}, got {} batches", b.len()),
        Err(e) => e.to_string(),
    }
}

fn i64s(b: &RecordBatch, col: usize) -> Vec<i64> {
    b.column(col)
        .as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.expect("not null"))
        .collect()
}

fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]))
}

/// Rows `start..start + n`: `a` = id, `b` = `v<id % 7>`, `ts` = id × 100 ms minus up to
/// 0.5 s of jitter.
fn events(start: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (start..start + n).collect();
    let b: Vec<String> = ids.iter().map(|i| format!("v{}", i % 7)).collect();
    let ts: Vec<i64> = ids
        .iter()
        .map(|i| i * 100_000 - (i * 7919 % 5) * 100_000)
        .collect();
    RecordBatch::try_new(
        events_schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(b)),
            Arc::new(TimestampMicrosecondArray::from(ts)),
        ],
    )
    .expect("batch")
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let f = std::fs::File::create(path).expect("create");
    let mut w = ArrowWriter::try_new(f, batch.schema(), None).expect("writer");
    w.write(batch).expect("write");
    w.close().expect("close");
}

fn write_csv(path: &Path, batch: &RecordBatch) {
    let f = std::fs::File::create(path).expect("create");
    let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(f);
    w.write(batch).expect("write");
}

/// Writes `name` into `dir` as a well-behaved producer does: under a hidden name first,
/// then renamed.
fn publish(dir: &Path, name: &str, batch: &RecordBatch) {
    let tmp = dir.join(format!(".{name}.tmp"));
    write_parquet(&tmp, batch);
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// File names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

fn table_sql(name: &str, path: &Path, format: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE {name} (a BIGINT, b VARCHAR, ts TIMESTAMP(3)) WITH ('connector' = \
         'filesystem', 'path' = '{}', 'format' = '{format}'{extra})",
        path.display()
    )
}

/// Exits the test process if the test has not finished within `secs` (a stream that never
/// delivers would otherwise hang); drop the returned sender to disarm.
fn watchdog(secs: u64, what: &'static str) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
            eprintln!("timed out: {what}");
            std::process::exit(2);
        }
    });
    tx
}

#[test]
fn bounded_parquet_directory_reads_data_files_only() {
    let dir = tempfile::tempdir().expect("tmp");
    write_parquet(&dir.path().join("part-0.parquet"), &events(0, 100));
    write_parquet(&dir.path().join("part-1.parquet"), &events(100, 150));
    write_parquet(&dir.path().join("part-2.parquet"), &events(250, 50));
    for junk in [
        ".hidden.parquet",
        "_tmp.parquet",
        "_SUCCESS",
        ".part-x-0.parquet.inprogress",
        "notes.txt",
    ] {
        std::fs::write(dir.path().join(junk), b"not parquet").expect("junk");
    }
    let s = session(3, 64);
    // Declared in another order and case: bound by name.
    s.sql(&format!(
        "CREATE TABLE t (TS TIMESTAMP(3), B VARCHAR, A BIGINT) WITH ('connector' = \
         'filesystem', 'path' = '{}', 'format' = 'parquet')",
        dir.path().display()
    ))
    .expect("create");
    let b = run(&s, "SELECT count(*), sum(a), min(a), max(a) FROM t");
    assert_eq!(i64s(&b, 0), vec![300]);
    assert_eq!(i64s(&b, 1), vec![(0..300).sum::<i64>()]);
    assert_eq!((i64s(&b, 2), i64s(&b, 3)), (vec![0], vec![299]));
    assert_eq!(i64s(&run(&s, "SELECT count(*) FROM t"), 0), vec![300]);
    let b = run(&s, "SELECT a, b FROM t WHERE a >= 290 ORDER BY a");
    assert_eq!(i64s(&b, 0), (290..300).collect::<Vec<_>>());
    assert_eq!(b.column(1).as_string::<i32>().value(0), "v3");
    let all = run(&s, "SELECT a, b, ts FROM t");
    assert_eq!(
        rows(&[all]),
        rows(&[events(0, 100), events(100, 150), events(250, 50)])
    );
    let CatalogEntry::Table(t) = s.catalog().get("t").expect("t") else {
        panic!("t is a table");
    };
    assert!(t.is_bounded());
    assert!(
        t.describe().starts_with("filesystem(path="),
        "{}",
        t.describe()
    );
    let plan = run(&s, "EXPLAIN SELECT a FROM t");
    let text = rows(&[plan]).join("\n");
    assert!(
        text.contains("FileSystemScanExec") && text.contains("files=3"),
        "{text}"
    );
    // A single file works too, and a narrower integer type is widened to the declared one.
    let narrow = tempfile::tempdir().expect("tmp");
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, false)]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![1, 2, 3]))])
        .expect("batch");
    let file = narrow.path().join("ints.parquet");
    write_parquet(&file, &batch);
    s.sql(&format!(
        "CREATE TABLE n (a BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', \
         'format' = 'parquet')",
        file.display()
    ))
    .expect("create");
    let b = run(&s, "SELECT sum(a) FROM n");
    assert_eq!(i64s(&b, 0), vec![6]);
}

#[test]
fn bounded_csv_directory_parses_declared_types() {
    let dir = tempfile::tempdir().expect("tmp");
    write_csv(&dir.path().join("a.csv"), &events(0, 40));
    write_csv(&dir.path().join("b.csv"), &events(40, 60));
    std::fs::write(dir.path().join(".c.csv"), "garbage\n1,2").expect("junk");
    let s = session(2, 16);
    s.sql(&table_sql("t", dir.path(), "csv", ""))
        .expect("create");
    let b = run(&s, "SELECT count(*) FROM t");
    assert_eq!(i64s(&b, 0), vec![100]);
    let got = run(&s, "SELECT * FROM t");
    assert_eq!(
        got.schema().field(2).data_type(),
        events_schema().field(2).data_type()
    );
    assert_eq!(rows(&[got]), rows(&[events(0, 100)]));
    // A CSV value that does not parse as the declared type names the file.
    std::fs::write(
        dir.path().join("c.csv"),
        "a,b,ts\nx,y,2026-01-01T00:00:00\n",
    )
    .expect("bad");
    let e = err(&s, "SELECT * FROM t");
    assert!(e.contains("c.csv"), "{e}");
}

#[test]
fn schema_mismatch_names_the_column_and_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    write_parquet(&dir.path().join("f.parquet"), &events(0, 10));
    let s = session(2, 64);
    s.sql(&format!(
        "CREATE TABLE wrong_type (a BIGINT, b BIGINT) WITH ('connector' = 'filesystem', \
         'path' = '{}', 'format' = 'parquet')",
        dir.path().display()
    ))
    .expect("create");
    let e = err(&s, "SELECT a FROM wrong_type");
    assert!(
        e.contains("column 'b'") && e.contains("BIGINT") && e.contains("f.parquet"),
        "{e}"
    );
    s.sql(&format!(
        "CREATE TABLE narrower (a INT) WITH ('connector' = 'filesystem', 'path' = '{}', \
         'format' = 'parquet')",
        dir.path().display()
    ))
    .expect("create");
    let e = err(&s, "SELECT a FROM narrower");
    assert!(
        e.contains("column 'a'") && e.contains("without loss"),
        "{e}"
    );
    s.sql(&format!(
        "CREATE TABLE missing (a BIGINT, bb VARCHAR) WITH ('connector' = 'filesystem', \
         'path' = '{}', 'format' = 'parquet')",
        dir.path().display()
    ))
    .expect("create");
    let e = err(&s, "SELECT * FROM missing");
    assert!(
        e.contains("no column 'bb'") && e.contains("f.parquet") && e.contains("did you mean b"),
        "{e}"
    );
}

#[test]
fn missing_empty_and_corrupt_paths_are_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = session(2, 64);
    let gone = dir.path().join("does-not-exist");
    s.sql(&table_sql("gone", &gone, "parquet", ""))
        .expect("create does not touch the path");
    let e = err(&s, "SELECT * FROM gone");
    assert!(
        e.contains("does-not-exist") && e.contains("does not exist") && e.contains("'gone'"),
        "{e}"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(empty.join(".hidden.parquet"), b"x").expect("hidden");
    s.sql(&table_sql("empty", &empty, "parquet", ""))
        .expect("create");
    let e = err(&s, "SELECT * FROM empty");
    assert!(
        e.contains("no .parquet files") && e.contains("empty"),
        "{e}"
    );

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).expect("mkdir");
    write_parquet(&corrupt.join("a.parquet"), &events(0, 5));
    std::fs::write(corrupt.join("b.parquet"), b"this is not a parquet file").expect("bad");
    s.sql(&table_sql("corrupt", &corrupt, "parquet", ""))
        .expect("create");
    let e = err(&s, "SELECT * FROM corrupt");
    assert!(e.contains("b.parquet"), "{e}");

    // Options are checked at CREATE TABLE.
    let p = dir.path().display();
    let create = |with: &str| {
        s.sql(&format!(
            "CREATE TABLE o (a BIGINT) WITH ('connector' = 'filesystem'{with})"
        ))
        .expect_err(with)
        .to_string()
    };
    let e = create(&format!(", 'path' = '{p}'"));
    assert!(e.contains("'format'"), "{e}");
    let e = create(&format!(", 'path' = '{p}', 'format' = 'orc'"));
    assert!(e.contains("'parquet' or 'csv'") && e.contains("orc"), "{e}");
    let e = create(", 'format' = 'csv'");
    assert!(e.contains("'path'"), "{e}");
    let e = create(&format!(
        ", 'path' = '{p}', 'format' = 'csv', 'source.monitor-intervall' = '1 s'"
    ));
    assert!(
        e.contains("unknown filesystem option") && e.contains("source.monitor-interval"),
        "{e}"
    );
    let e = create(&format!(
        ", 'path' = '{p}', 'format' = 'csv', 'sink.partition-commit.policy.kind' = 'success-file'"
    ));
    assert!(e.contains("does not support"), "{e}");
    let e = create(&format!(
        ", 'path' = '{p}', 'format' = 'csv', 'source.monitor-interval' = 'soon'"
    ));
    assert!(
        e.contains("source.monitor-interval") && e.contains("soon"),
        "{e}"
    );
    let e = create(&format!(
        ", 'path' = '{p}', 'format' = 'csv', 'sink.rolling-policy.file-size' = '12 parsecs'"
    ));
    assert!(e.contains("sink.rolling-policy.file-size"), "{e}");
}

#[test]
fn insert_rolls_part_files_that_read_back_equal() {
    for format in ["parquet", "csv"] {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("out");
        let s = session(2, 64);
        s.register_batches("src", events_schema(), vec![events(0, 1000)])
            .expect("src");
        s.sql(&table_sql(
            "sink",
            &out,
            format,
            ", 'sink.rolling-policy.file-size' = '4kb'",
        ))
        .expect("create");
        let b = run(&s, "INSERT INTO sink SELECT * FROM src");
        assert_eq!(i64s(&b, 0), vec![1000], "{format}: rows written");
        let files = names(&out);
        assert!(files.len() >= 3, "{format}: several part files: {files:?}");
        assert!(
            files
                .iter()
                .all(|n| n.starts_with("part-") && n.ends_with(&format!(".{format}"))),
            "{format}: only final part files: {files:?}"
        );
        let back = run(&s, "SELECT * FROM sink");
        assert_eq!(rows(&[back]), rows(&[events(0, 1000)]), "{format}");
        // A second INSERT appends new part files.
        run(
            &s,
            "INSERT INTO sink SELECT a + 1000, b, ts FROM src WHERE a < 10",
        );
        let b = run(&s, "SELECT count(*), max(a) FROM sink");
        assert_eq!(
            (i64s(&b, 0), i64s(&b, 1)),
            (vec![1010], vec![1009]),
            "{format}"
        );
        assert!(names(&out).iter().all(|n| !n.starts_with('.')), "{format}");
    }
}

#[test]
fn failed_insert_leaves_no_final_partial_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let s = session(1, 64);
    s.register_batches("src", events_schema(), vec![events(0, 1000)])
        .expect("src");
    s.sql(&table_sql("sink", &out, "parquet", ""))
        .expect("create");
    // Division by zero at row 500, after several batches went into the open part file.
    let e = err(&s, "INSERT INTO sink SELECT 10 / (a - 500), b, ts FROM src");
    assert!(e.to_lowercase().contains("zero"), "{e}");
    assert_eq!(names(&out), Vec::<String>::new(), "nothing left behind");

    // A path under a regular file cannot be a directory: the error names it.
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").expect("file");
    s.sql(&table_sql("bad", &file.join("sub"), "parquet", ""))
        .expect("create");
    let e = err(&s, "INSERT INTO bad SELECT * FROM src");
    assert!(e.contains("plain"), "{e}");
    s.sql(&table_sql("onfile", &file, "csv", ""))
        .expect("create");
    let e = err(&s, "INSERT INTO onfile SELECT * FROM src");
    assert!(e.contains("is a file") && e.contains("plain"), "{e}");
}

#[test]
fn updating_insert_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    write_parquet(&dir.path().join("f.parquet"), &events(0, 100));
    let out = dir.path().join("out");
    let s = session(2, 64);
    s.sql(&table_sql("src", dir.path(), "parquet", ""))
        .expect("src");
    s.sql(&format!(
        "CREATE TABLE counts (b VARCHAR, n BIGINT) WITH ('connector' = 'filesystem', \
         'path' = '{}', 'format' = 'csv')",
        out.display()
    ))
    .expect("sink");
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let e = err(
        &s,
        "INSERT INTO counts SELECT b, COUNT(*) FROM src GROUP BY b",
    );
    assert!(
        e.contains("updating") && e.contains("counts") && e.contains("appends only"),
        "{e}"
    );
    assert!(!out.exists(), "nothing written");
    // The same query as a batch is append-only and goes through.
    s.sql("SET 'execution.runtime-mode' = 'batch'")
        .expect("set");
    let b = run(
        &s,
        "INSERT INTO counts SELECT b, COUNT(*) FROM src GROUP BY b",
    );
    assert_eq!(i64s(&b, 0), vec![7]);
}

#[test]
fn monitored_directory_streams_new_files() {
    let _armed = watchdog(120, "monitored_directory_streams_new_files");
    let dir = tempfile::tempdir().expect("tmp");
    publish(dir.path(), "f-000.parquet", &events(0, 10));
    std::fs::write(dir.path().join(".part-x-0.parquet.inprogress"), b"half").expect("junk");
    let s = session(2, 64);
    s.sql(&table_sql(
        "t",
        dir.path(),
        "parquet",
        ", 'source.monitor-interval' = '100 ms'",
    ))
    .expect("create");
    let CatalogEntry::Table(t) = s.catalog().get("t").expect("t") else {
        panic!("t is a table");
    };
    assert!(!t.is_bounded());
    assert!(
        t.describe().contains("monitor-interval=100 ms"),
        "{}",
        t.describe()
    );
    let df = s.sql("SELECT a, b FROM t").expect("plan");
    assert!(df.is_streaming() && df.is_unbounded());
    let e = df.collect().expect_err("collect never ends").to_string();
    assert!(e.contains("unbounded"), "{e}");

    let mut stream = df.execute_iter().expect("stream");
    let mut seen: Vec<i64> = Vec::new();
    let mut read_until = |n: usize, seen: &mut Vec<i64>| {
        while seen.len() < n {
            let b = stream
                .next()
                .expect("the stream does not end")
                .expect("batch");
            seen.extend(i64s(&b, 0));
        }
    };
    read_until(10, &mut seen);
    // A new file, written under a hidden name and renamed, arrives.
    publish(dir.path(), "f-001.parquet", &events(10, 15));
    read_until(25, &mut seen);
    // So do the part files of an INSERT into the same directory.
    s.register_batches("more", events_schema(), vec![events(25, 5)])
        .expect("more");
    run(&s, "INSERT INTO t SELECT * FROM more");
    read_until(30, &mut seen);
    seen.sort_unstable();
    assert_eq!(seen, (0..30).collect::<Vec<_>>(), "each file read once");
    // Dropping the stream stops the partitions waiting for new files (they check every
    // 100 ms); the drop waits for them, and would take the full 60 s grace otherwise.
    let dropping = std::time::Instant::now();
    drop(stream);
    assert!(
        dropping.elapsed() < std::time::Duration::from_secs(10),
        "the drop took {:?}",
        dropping.elapsed()
    );

    // In batch mode the unbounded table is refused.
    s.sql("SET 'execution.runtime-mode' = 'batch'")
        .expect("set");
    let e = s
        .sql("SELECT * FROM t")
        .expect("plan")
        .execute_iter()
        .err()
        .expect("batch over unbounded fails")
        .to_string();
    assert!(e.contains("unbounded"), "{e}");
}

/// The tumbling-window result of `sql` over the files of `dir` in `mode`, sorted.
fn windows(dir: &Path, partitions: usize, mode: &str, sql: &str) -> Vec<String> {
    let s = session(partitions, 50);
    s.sql(&format!(
        "CREATE TABLE ev (a BIGINT, b VARCHAR, ts TIMESTAMP(3),
            WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'parquet')",
        dir.display()
    ))
    .expect("create");
    s.sql(&format!("SET 'execution.runtime-mode' = '{mode}'"))
        .expect("set");
    let df = s.sql(sql).expect("plan");
    assert_eq!(df.is_streaming(), mode == "streaming");
    rows(&df.collect().unwrap_or_else(|e| panic!("{mode}: {e}")))
}

#[test]
fn streaming_windows_over_files_equal_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let files: Vec<PathBuf> = (0..5)
        .map(|i| dir.path().join(format!("part-{i}.parquet")))
        .collect();
    for (i, f) in files.iter().enumerate() {
        write_parquet(f, &events(i as i64 * 400, 400));
    }
    let sql = "SELECT window_start, window_end, b, COUNT(*) AS n, SUM(a) AS total
               FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '10' SECOND))
               GROUP BY window_start, window_end, b";
    for partitions in [1, 3] {
        let batch = windows(dir.path(), partitions, "batch", sql);
        let stream = windows(dir.path(), partitions, "streaming", sql);
        assert!(batch.len() > 7 * 10, "{}", batch.len());
        assert_eq!(batch, stream, "at {partitions} partitions");
    }
    let rows = windows(dir.path(), 2, "streaming", "SELECT a FROM ev");
    assert_eq!(rows.len(), 2000);
}

/// The first result batch of `sql` on `s` as sorted lines, if one arrives within `wait`.
fn first_batch(s: &Session, sql: &str, wait: Duration) -> Option<Vec<String>> {
    let it = s.sql(sql).expect("plan").execute_iter().expect("stream");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for b in it {
            if tx.send(b).is_err() {
                return;
            }
        }
    });
    rx.recv_timeout(wait)
        .ok()
        .map(|b| rows(&[b.expect("batch")]))
}

#[test]
fn an_idle_partition_stalls_windows_unless_an_idle_timeout_is_set() {
    let _armed = watchdog(120, "an_idle_partition_stalls_windows");
    let dir = tempfile::tempdir().expect("tmp");
    // One file, two partitions: partition 1 never gets a file.
    publish(dir.path(), "f-000.parquet", &events(0, 400));
    let s = session(2, 64);
    s.sql(&format!(
        "CREATE TABLE ev (a BIGINT, b VARCHAR, ts TIMESTAMP(3),
            WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'parquet',
                 'source.monitor-interval' = '50 ms')",
        dir.path().display()
    ))
    .expect("create");
    let sql = "SELECT window_start, COUNT(*) AS n
               FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '10' SECOND))
               GROUP BY window_start, window_end";
    assert_eq!(
        first_batch(&s, sql, Duration::from_millis(1500)),
        None,
        "the quiet partition holds the watermark back"
    );
    s.sql("SET 'table.exec.source.idle-timeout' = '200 ms'")
        .expect("set");
    let got = first_batch(&s, sql, Duration::from_secs(30)).expect("a window fires");
    // Events run from -0.4 s (jitter) to 40 s: the earliest window, [-10 s, 0), fires first.
    assert!(got[0].starts_with("1969-12-31T23:59:50 | "), "{got:?}");
}
