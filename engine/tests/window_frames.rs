//! Window aggregates over running and one-sided frames, checked against a computation by
//! hand over pseudo-random rows: several partitions of different sizes, ties in the
//! order key (peers share the default frame), NULL arguments, and frames that are empty
//! at a partition's edge. COUNT, SUM, AVG, MIN and MAX, each over the default frame, over
//! `ROWS` frames open at the start, at the end and at both ends, and over `RANGE` frames
//! with offsets (bounded, open on a side, descending).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use sluice::Session;

/// `(id, p, o, x)`.
type Row = (i64, i64, i64, Option<i64>);

/// Partition `p` in 0..7 with skewed sizes, order key `o` in 0..40 with ties, `x` NULL
/// one row in five.
fn rows() -> Vec<Row> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..3000)
        .map(|id| {
            let r = next();
            let p = ((r % 64) as i64).min(48) / 7;
            let o = ((r >> 8) % 40) as i64;
            let x = ((r >> 20) % 5 != 0).then_some(((r >> 24) % 1000) as i64 - 300);
            (id, p, o, x)
        })
        .collect()
}

fn session() -> Session {
    let rows = rows();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("p", DataType::Int64, false),
        Field::new("o", DataType::Int64, false),
        Field::new("x", DataType::Int64, true),
    ]));
    let col = |f: fn(&Row) -> Option<i64>| {
        Arc::new(Int64Array::from(rows.iter().map(f).collect::<Vec<_>>())) as Arc<dyn Array>
    };
    // Three batches, so the window sees rows that arrive apart.
    let all = RecordBatch::try_new(
        schema.clone(),
        vec![
            col(|r| Some(r.0)),
            col(|r| Some(r.1)),
            col(|r| Some(r.2)),
            col(|r| r.3),
        ],
    )
    .expect("batch");
    let batches = vec![
        all.slice(0, 1000),
        all.slice(1000, 1500),
        all.slice(2500, 500),
    ];
    let s = Session::new();
    s.register_batches("t", schema, batches).expect("register");
    s
}

/// The aggregate `func` of `xs` as the engine reports it (as f64, None for NULL).
fn by_hand(func: &str, xs: &[Option<i64>]) -> Option<f64> {
    let vals: Vec<i64> = xs.iter().flatten().copied().collect();
    match func {
        "COUNT" => Some(vals.len() as f64),
        _ if vals.is_empty() => None,
        "SUM" => Some(vals.iter().sum::<i64>() as f64),
        "AVG" => Some(vals.iter().sum::<i64>() as f64 / vals.len() as f64),
        "MIN" => vals.iter().min().map(|&v| v as f64),
        "MAX" => vals.iter().max().map(|&v| v as f64),
        _ => unreachable!("{func}"),
    }
}

/// `id -> value` of the query's second column.
fn results(s: &Session, sql: &str) -> HashMap<i64, Option<f64>> {
    let batches = s.sql(sql).and_then(|df| df.collect()).expect(sql);
    let mut out = HashMap::new();
    for b in &batches {
        let ids = b.column(0).as_primitive::<Int64Type>();
        let v = b.column(1);
        for i in 0..b.num_rows() {
            let value = v.is_valid(i).then(|| match v.data_type() {
                DataType::Int64 => v.as_primitive::<Int64Type>().value(i) as f64,
                DataType::Float64 => v.as_primitive::<Float64Type>().value(i),
                other => panic!("unexpected result type {other}"),
            });
            out.insert(ids.value(i), value);
        }
    }
    out
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        (a, b) => a == b,
    }
}

#[test]
fn window_frames_equal_a_computation_by_hand() {
    let s = session();
    let rows = rows();
    let mut parts: HashMap<i64, Vec<(i64, i64, Option<i64>)>> = HashMap::new();
    for &(id, p, o, x) in &rows {
        parts.entry(p).or_default().push((o, id, x));
    }
    for part in parts.values_mut() {
        part.sort_unstable();
    }
    // (frame SQL, the frame's rows as positions in the sorted partition)
    type Frame = fn(usize, usize) -> std::ops::Range<usize>;
    let frames: [(&str, Frame); 6] = [
        (
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
            |k, _| 0..k + 1,
        ),
        (
            "ROWS BETWEEN UNBOUNDED PRECEDING AND 3 PRECEDING",
            |k, _| 0..k.saturating_sub(2),
        ),
        (
            "ROWS BETWEEN UNBOUNDED PRECEDING AND 2 FOLLOWING",
            |k, n| 0..(k + 3).min(n),
        ),
        (
            "ROWS BETWEEN 2 FOLLOWING AND UNBOUNDED FOLLOWING",
            |k, n| (k + 2).min(n)..n,
        ),
        (
            "ROWS BETWEEN 4 PRECEDING AND UNBOUNDED FOLLOWING",
            |k, n| k.saturating_sub(4)..n,
        ),
        (
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING",
            |_, n| 0..n,
        ),
    ];
    for func in ["COUNT", "SUM", "AVG", "MIN", "MAX"] {
        // The default frame: all rows up to the current row's last peer.
        let sql = format!("SELECT id, {func}(x) OVER (PARTITION BY p ORDER BY o) FROM t");
        let got = results(&s, &sql);
        for part in parts.values() {
            for (k, &(o, id, _)) in part.iter().enumerate() {
                let end = k + part[k..].iter().take_while(|r| r.0 == o).count();
                let xs: Vec<_> = part[..end].iter().map(|r| r.2).collect();
                assert!(close(got[&id], by_hand(func, &xs)), "{sql}: id {id}");
            }
        }
        for (frame, rows_of) in frames {
            let sql =
                format!("SELECT id, {func}(x) OVER (PARTITION BY p ORDER BY o, id {frame}) FROM t");
            let got = results(&s, &sql);
            for part in parts.values() {
                for (k, &(_, id, _)) in part.iter().enumerate() {
                    let xs: Vec<_> = part[rows_of(k, part.len())].iter().map(|r| r.2).collect();
                    let want = by_hand(func, &xs);
                    assert!(
                        close(got[&id], want),
                        "{sql}: id {id}: {:?} vs {want:?}",
                        got[&id]
                    );
                }
            }
        }
        // RANGE frames: the rows whose order key `o` lies within the offsets of the row's.
        type Within = fn(i64, i64) -> bool;
        let ranges: [(&str, &str, Within); 4] = [
            ("o", "RANGE BETWEEN 3 PRECEDING AND 2 FOLLOWING", |k, o| {
                (k - 3..=k + 2).contains(&o)
            }),
            (
                "o",
                "RANGE BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING",
                |k, o| o <= k - 2,
            ),
            (
                "o",
                "RANGE BETWEEN 5 FOLLOWING AND UNBOUNDED FOLLOWING",
                |k, o| o >= k + 5,
            ),
            (
                "o DESC",
                "RANGE BETWEEN 3 PRECEDING AND 2 FOLLOWING",
                |k, o| (k - 2..=k + 3).contains(&o),
            ),
        ];
        for (order, frame, within) in ranges {
            let sql = format!(
                "SELECT id, {func}(x) OVER (PARTITION BY p ORDER BY {order} {frame}) FROM t"
            );
            let got = results(&s, &sql);
            for part in parts.values() {
                for &(o, id, _) in part {
                    let xs: Vec<_> = part
                        .iter()
                        .filter(|r| within(o, r.0))
                        .map(|r| r.2)
                        .collect();
                    let want = by_hand(func, &xs);
                    assert!(
                        close(got[&id], want),
                        "{sql}: id {id}: {:?} vs {want:?}",
                        got[&id]
                    );
                }
            }
        }
    }
}

/// The DataFrame API can build a `RANGE` frame the SQL planner would refuse: with two
/// ORDER BY keys it is an error, not a frame measured on the first key.
#[test]
fn a_range_frame_over_two_order_keys_is_refused() {
    use sluice::logical::expr::{col, AggFunc, Expr, SortExpr, WindowFrame, WindowFunc};
    let key = |name: &str| SortExpr {
        expr: col(name),
        asc: true,
        nulls_first: false,
    };
    let window = Expr::Window {
        func: WindowFunc::Agg(AggFunc::Sum),
        args: vec![col("x")],
        partition_by: vec![],
        order_by: vec![key("o"), key("id")],
        frame: Some(WindowFrame {
            start: Some(-1),
            end: Some(0),
            range: true,
        }),
    };
    let err = session()
        .table("t")
        .and_then(|t| t.select(vec![col("id"), window]))
        .and_then(|df| df.collect())
        .expect_err("two keys");
    assert!(
        err.to_string()
            .contains("RANGE BETWEEN 1 PRECEDING AND CURRENT ROW needs exactly one ORDER BY key"),
        "{err}"
    );
}
