//! The DataFrame API builds the same plans as SQL: every join kind, streaming results,
//! EXPLAIN, and Parquet/CSV sources (projection and row-group pruning).

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use futures::StreamExt;
use sluice::{col, count_star, lit, sum, JoinType, Session, SessionConfig};

fn session() -> Session {
    let s = Session::with_config(SessionConfig::default().with_target_partitions(2));
    let l = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("x", DataType::Utf8, true),
    ]));
    let r = Arc::new(Schema::new(vec![
        Field::new("b", DataType::Int64, true),
        Field::new("y", DataType::Utf8, true),
    ]));
    let lb = RecordBatch::try_new(
        l.clone(),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            Arc::new(StringArray::from(vec!["l1", "l2", "lnull"])),
        ],
    )
    .expect("batch");
    let rb = RecordBatch::try_new(
        r.clone(),
        vec![
            Arc::new(Int64Array::from(vec![Some(2), Some(3), None])),
            Arc::new(StringArray::from(vec!["r2", "r3", "rnull"])),
        ],
    )
    .expect("batch");
    s.register_batches("l", l, vec![lb]).expect("l");
    s.register_batches("r", r, vec![rb]).expect("r");
    s
}

fn sorted_rows(b: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(b).expect("fmt").to_string();
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains(" x ") && !l.contains(" a "))
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

#[test]
fn dataframe_joins_match_sql_for_every_kind() {
    let s = session();
    let kinds = [
        (JoinType::Inner, "JOIN"),
        (JoinType::Left, "LEFT JOIN"),
        (JoinType::Right, "RIGHT JOIN"),
        (JoinType::Full, "FULL JOIN"),
    ];
    for (jt, sql_kind) in kinds {
        let df = s
            .table("l")
            .expect("l")
            .join(&s.table("r").expect("r"), jt, &["a"], &["b"])
            .expect("join");
        let via_sql = s
            .sql(&format!("SELECT * FROM l {sql_kind} r ON a = b"))
            .expect("sql");
        assert_eq!(
            sorted_rows(&df.collect().expect("df")),
            sorted_rows(&via_sql.collect().expect("sql")),
            "{sql_kind}"
        );
    }
    let semi = s
        .table("l")
        .expect("l")
        .join(&s.table("r").expect("r"), JoinType::Semi, &["a"], &["b"])
        .expect("semi");
    let rows = sorted_rows(&semi.collect().expect("semi"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("l2"));
    let anti = s
        .table("l")
        .expect("l")
        .join(&s.table("r").expect("r"), JoinType::Anti, &["a"], &["b"])
        .expect("anti");
    assert_eq!(
        sorted_rows(&anti.collect().expect("anti")).len(),
        2,
        "NULL key never matches, so it stays in the anti join"
    );
}

#[test]
fn execute_stream_yields_the_collected_rows() {
    let s = session();
    let df = s
        .table("l")
        .expect("l")
        .filter(col("a").is_not_null())
        .expect("filter")
        .aggregate(
            vec![],
            vec![
                count_star().alias("n"),
                sum(col("a") + lit(10i64)).alias("s"),
            ],
        )
        .expect("agg");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    let batches: Vec<RecordBatch> = rt.block_on(async {
        let stream = df.execute_stream().expect("stream");
        stream.map(|b| b.expect("batch")).collect().await
    });
    let text = pretty_format_batches(&batches).expect("fmt").to_string();
    assert!(text.contains("| 2 | 23 |"), "{text}");
    let explain = df.explain().expect("explain");
    assert!(
        explain.contains("== Physical plan ==") && explain.contains("AggregateExec"),
        "{explain}"
    );
}

#[test]
fn parquet_scan_prunes_row_groups_and_projects() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("t.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let file = std::fs::File::create(&path).expect("create");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .build();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props)).expect("writer");
    let ids: Int64Array = (0..1000).collect();
    let ss: StringArray = (0..1000).map(|i| Some(format!("s{i}"))).collect();
    w.write(&RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(ss)]).expect("batch"))
        .expect("write");
    w.close().expect("close");

    let s = Session::new();
    s.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}'",
        path.display()
    ))
    .expect("ddl");
    let df = s
        .sql("SELECT s FROM t WHERE id >= 950 AND id < 960")
        .expect("sql");
    let explain = df.explain().expect("explain");
    assert!(explain.contains("row_groups=1 (pruned 9)"), "{explain}");
    assert!(explain.contains("projection=[id, s]"), "{explain}");
    let rows = df.collect().expect("run");
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 10);
    // read_parquet gives the same through the DataFrame API.
    let n = s
        .read_parquet(&path)
        .expect("read")
        .filter(col("id").lt(lit(5i64)))
        .expect("f")
        .collect()
        .expect("run");
    assert_eq!(n.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
}

#[test]
fn csv_tables_register_and_query() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("people.csv");
    std::fs::write(&path, "name,age\nada,36\ngrace,45\n").expect("write");
    let s = Session::new();
    s.register_csv("people", &path).expect("csv");
    let b = s
        .sql("SELECT name FROM people WHERE age > 40")
        .expect("sql")
        .collect()
        .expect("run");
    let text = pretty_format_batches(&b).expect("fmt").to_string();
    assert!(text.contains("grace") && !text.contains("ada"), "{text}");
}
