//! The DataFrame-API versions of TPC-H q1, q3, q5, q6 and q10 against their SQL text at
//! SF 0.01 (generated in memory): both must match the reference answer, and the two
//! results must be identical — same column names and types, same rows in the same order,
//! every cell equal (Arrow array equality, no tolerance).

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use sluice::Session;
use sluice_bench_tpch::runner::{check_answer, run_query_guarded_with};
use sluice_bench_tpch::{register_generated, AnswerStatus, QueryApi, DATAFRAME_QUERIES};

const SF: f64 = 0.01;

/// Runs query `n` through `api` and checks it against the reference answer.
fn run_checked(session: &Session, api: QueryApi, n: usize) -> Result<Vec<RecordBatch>, String> {
    let (batches, _) = run_query_guarded_with(session, api, n)
        .map_err(|e| format!("q{n} ({}): error: {e}", api.name()))?;
    match check_answer(SF, n, &batches) {
        Ok(AnswerStatus::Correct) => Ok(batches),
        Ok(AnswerStatus::Wrong(m)) => Err(format!("q{n} ({}): wrong answer: {m}", api.name())),
        Ok(AnswerStatus::NoReference) => Err(format!("q{n}: no reference answer at SF {SF}")),
        Err(e) => Err(format!("q{n} ({}): checking: {e}", api.name())),
    }
}

/// `Err` describing the first difference between the SQL and DataFrame results.
fn compare(n: usize, sql: &[RecordBatch], df: &[RecordBatch]) -> Result<(), String> {
    let (Some(sql_first), Some(df_first)) = (sql.first(), df.first()) else {
        return Err(format!(
            "q{n}: SQL gave {} batches, DataFrame {}",
            sql.len(),
            df.len()
        ));
    };
    let shape = |b: &RecordBatch| -> Vec<(String, String)> {
        b.schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect()
    };
    if shape(sql_first) != shape(df_first) {
        return Err(format!(
            "q{n}: columns differ: SQL {:?}, DataFrame {:?}",
            shape(sql_first),
            shape(df_first)
        ));
    }
    let sql_all = concat_batches(&sql_first.schema(), sql).map_err(|e| e.to_string())?;
    // Same names and types; only nullability may differ, so use the SQL schema for both.
    let df_all = concat_batches(&df_first.schema(), df)
        .and_then(|b| RecordBatch::try_new(sql_first.schema(), b.columns().to_vec()))
        .map_err(|e| e.to_string())?;
    if sql_all.num_rows() != df_all.num_rows() {
        return Err(format!(
            "q{n}: SQL gave {} rows, DataFrame {}",
            sql_all.num_rows(),
            df_all.num_rows()
        ));
    }
    for (i, field) in sql_all.schema().fields().iter().enumerate() {
        let (a, b) = (sql_all.column(i), df_all.column(i));
        if a != b {
            let row = (0..a.len())
                .find(|&r| a.slice(r, 1) != b.slice(r, 1))
                .unwrap_or_default();
            return Err(format!(
                "q{n}: column {} differs, first at row {row}: SQL {:?}, DataFrame {:?}",
                field.name(),
                a.slice(row, 1),
                b.slice(row, 1)
            ));
        }
    }
    Ok(())
}

#[test]
fn dataframe_queries_match_sql_and_the_reference() {
    let session = Session::new();
    if let Err(e) = register_generated(&session, SF) {
        panic!("generating TPC-H SF {SF}: {e}");
    }
    let mut failures = Vec::new();
    for n in DATAFRAME_QUERIES {
        let sql = run_checked(&session, QueryApi::Sql, n);
        let df = run_checked(&session, QueryApi::DataFrame, n);
        let outcome = match (sql, df) {
            (Ok(sql), Ok(df)) => compare(n, &sql, &df),
            (sql, df) => Err([sql.err(), df.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")),
        };
        match outcome {
            Ok(()) => eprintln!("q{n}: SQL and DataFrame agree with the reference and each other"),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}",
        failures.len(),
        DATAFRAME_QUERIES.len(),
        failures.join("\n")
    );
}

#[test]
fn queries_without_a_dataframe_version_are_errors() {
    let session = Session::new();
    let outcome = run_query_guarded_with(&session, QueryApi::DataFrame, 2);
    let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("no DataFrame version"), "{message}");
}

#[test]
fn comparison_catches_differences() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    let batch = |name: &str, values: Vec<i64>| {
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, true)]));
        let column: ArrayRef = Arc::new(Int64Array::from(values));
        RecordBatch::try_new(schema, vec![column]).map_err(|e| e.to_string())
    };
    let check = || -> Result<(), String> {
        let a = batch("x", vec![1, 2, 3])?;
        let whole = std::slice::from_ref(&a);
        compare(1, whole, &[a.slice(0, 1), a.slice(1, 2)])?;
        let different = compare(1, whole, &[batch("x", vec![1, 2, 4])?]);
        assert!(different.is_err_and(|e| e.contains("row 2")));
        assert!(compare(1, whole, &[batch("y", vec![1, 2, 3])?]).is_err());
        assert!(compare(1, whole, &[batch("x", vec![1, 2])?]).is_err());
        assert!(compare(1, whole, &[]).is_err());
        Ok(())
    };
    if let Err(e) = check() {
        panic!("{e}");
    }
}
