//! End-to-end tests of the `sluice` binary: one-shot `-c` / `-f` runs, output formats,
//! `--data` registration and the piped interactive shell.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("sluice runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// Runs `sql` with `--format csv`, asserts success and returns stdout.
fn csv(sql: &str) -> String {
    let o = sluice(&["sql", "--format", "csv", "-c", sql]);
    assert!(o.status.success(), "{sql}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn csv_quotes_fields_with_commas() {
    assert_eq!(csv("SELECT 1 AS a, 'x,y' AS b"), "a,b\n1,\"x,y\"\n");
}

#[test]
fn csv_quotes_embedded_quotes_and_newlines() {
    assert_eq!(
        csv("SELECT 'say \"hi\"' AS a, 'l1\nl2' AS b, '' AS c"),
        "a,b,c\n\"say \"\"hi\"\"\",\"l1\nl2\",\"\"\n"
    );
}

#[test]
fn csv_null_is_an_empty_field() {
    assert_eq!(csv("SELECT 1 AS a, NULL AS b, 3 AS c"), "a,b,c\n1,,3\n");
}

#[test]
fn csv_date_is_iso() {
    assert_eq!(csv("SELECT DATE '2024-03-05' AS d"), "d\n2024-03-05\n");
}

#[test]
fn csv_decimal_keeps_its_scale() {
    assert_eq!(csv("SELECT CAST(1.50 AS DECIMAL(10,2)) AS x"), "x\n1.50\n");
}

#[test]
fn json_prints_one_object_per_row() {
    let o = sluice(&[
        "sql",
        "--format",
        "json",
        "-c",
        "SELECT * FROM (VALUES (1, 'a'), (2, NULL)) AS t(n, s) ORDER BY n",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"n\":1,\"s\":\"a\"}\n{\"n\":2,\"s\":null}\n");
}

#[test]
fn table_format_prints_a_table_and_timing_on_stderr() {
    let o = sluice(&["sql", "-c", "SELECT 42 AS answer"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("| answer |"), "{out}");
    assert!(out.contains("| 42     |"), "{out}");
    let err = stderr(&o);
    assert!(err.contains("1 row in "), "{err}");
}

#[test]
fn bad_sql_fails_with_the_error_on_stderr() {
    let o = sluice(&["sql", "-c", "SELEC 1"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.starts_with("Error: "), "{err}");
    assert!(err.contains("Line: 1"), "{err}");

    let o = sluice(&["sql", "-c", "SELECT * FROM no_such_table"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no_such_table"), "{}", stderr(&o));
}

#[test]
fn several_statements_print_each_result() {
    let out = csv("SELECT 1 AS a; SELECT 'two;2' AS b;");
    assert_eq!(out, "a\n1\nb\ntwo;2\n");
}

#[test]
fn file_with_two_statements() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("script.sql");
    std::fs::write(
        &path,
        "-- make a table\nCREATE TABLE t AS SELECT * FROM (VALUES (1), (2), (3)) AS v(x);\n\
         SELECT sum(x) AS total\n  FROM t;\n",
    )
    .expect("write script");
    let file = path.to_str().expect("UTF-8 path");
    let o = sluice(&["sql", "--format", "csv", "-f", file]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "total\n6\n");

    // Table mode reports the DDL and the query on stderr.
    let o = sluice(&["sql", "-f", file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("OK in "), "{err}");
    assert!(err.contains("1 row in "), "{err}");
}

#[test]
fn file_errors_point_into_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.sql");
    std::fs::write(&path, "SELECT 1;\n\n  SELEC 2;\n").expect("write script");
    let o = sluice(&["sql", "-f", path.to_str().expect("UTF-8 path")]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("Line: 3, Column: 3"), "{err}");
}

#[test]
fn missing_file_fails() {
    let o = sluice(&["sql", "-f", "/nonexistent/script.sql"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot read /nonexistent/script.sql"));
}

#[test]
fn data_dir_registers_parquet_tables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let batch = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        (
            "name",
            Arc::new(StringArray::from(vec!["ann", "bob", "cy"])) as ArrayRef,
        ),
    ])
    .expect("batch");
    let file = std::fs::File::create(dir.path().join("people.parquet")).expect("create file");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close writer");

    let data = dir.path().to_str().expect("UTF-8 path");
    let o = sluice(&[
        "sql",
        "--data",
        data,
        "--threads",
        "2",
        "--format",
        "csv",
        "-c",
        "SELECT name FROM people WHERE id >= 2 ORDER BY id",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "name\nbob\ncy\n");
    assert!(stderr(&o).contains("people"), "{}", stderr(&o));
}

#[test]
fn missing_data_dir_fails() {
    let o = sluice(&["sql", "--data", "/nonexistent/dir", "-c", "SELECT 1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/dir"), "{}", stderr(&o));
}

#[test]
fn piped_shell_runs_multi_line_statements_and_survives_errors() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("sql")
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"SELECT 'a;b'\n  AS x;\nSELECT nope FROM nowhere;\nSELECT 7 AS y;\n\\q\nSELECT 8 AS z;\n")
        .expect("write stdin");
    let o = child.wait_with_output().expect("sluice exits");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("| a;b |"), "{out}");
    assert!(out.contains("| 7 |"), "{out}");
    assert!(!out.contains("| 8 |"), "{out}");
    assert!(out.contains("1 row in "), "{out}");
    assert!(stderr(&o).contains("Error: "), "{}", stderr(&o));
}

#[test]
fn streaming_group_by_prints_its_changelog_and_print_sink_shows_row_kinds() {
    let sql = "CREATE TABLE t (k BIGINT) WITH ('connector' = 'datagen',
                 'number-of-rows' = '20000', 'fields.k.min' = '1', 'fields.k.max' = '2');
               CREATE TABLE p (k BIGINT, n BIGINT) WITH ('connector' = 'print');
               SET 'execution.runtime-mode' = 'streaming';
               SELECT k, COUNT(*) AS n FROM t GROUP BY k;
               INSERT INTO p SELECT k, COUNT(*) FROM t GROUP BY k";
    let o = sluice(&["sql", "--threads", "1", "--format", "csv", "-c", sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.iter().filter(|l| **l == "op,k,n").count(), 1, "{out}");
    assert!(lines.iter().any(|l| l.starts_with("+I,")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("-U,")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("+U,")), "{out}");
    // Each key's last +U is its final count; together they count every row.
    let total: u64 = ["1", "2"]
        .iter()
        .map(|k| {
            let last = lines
                .iter()
                .rev()
                .find(|l| l.starts_with(&format!("+U,{k},")))
                .expect("an update");
            last.rsplit(',')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("n")
        })
        .sum();
    assert_eq!(total, 20_000, "{out}");
    assert!(lines.iter().any(|l| l.starts_with("+I[1, ")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("-U[")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("+U[")), "{out}");
}

/// Sends SIGINT to `child` and waits (at most 30 s) for it to exit.
fn interrupt_and_wait(mut child: std::process::Child) -> Output {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -INT failed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("sluice did not stop after Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

const HOURLY_WINDOWS: &str = "CREATE TABLE t (id BIGINT, ts AS TO_TIMESTAMP_LTZ(id, 3),
      WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'rows-per-second' = '1000');
    SELECT window_start, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts),
      INTERVAL '1' HOUR)) GROUP BY window_start, window_end;";

#[test]
fn ctrl_c_in_the_shell_cancels_the_running_query_and_the_shell_goes_on() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["sql", "--format", "csv"])
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    // An unbounded query with no result due for an hour, then one that must still run.
    let input = format!("{HOURLY_WINDOWS}\nSELECT 42 AS answer;\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let o = interrupt_and_wait(child);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("0 rows streamed in "), "{out}");
    assert!(out.contains("(cancelled)"), "{out}");
    assert!(
        out.contains("answer\n42\n"),
        "the shell goes on after Ctrl-C: {out}"
    );
}

#[test]
fn ctrl_c_ends_a_one_shot_streaming_run_with_an_error() {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["sql", "--format", "csv", "-c", HOURLY_WINDOWS])
        .env("HOME", std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let o = interrupt_and_wait(child);
    assert!(!o.status.success(), "a cancelled script fails");
    assert!(stderr(&o).contains("query cancelled"), "{}", stderr(&o));
}
