//! End-to-end TPC-H check: generate SF 0.01 and SF 0.1 in memory (and SF 0.1 as Parquet
//! files, so that scans with statistics, pruning and late reads under dynamic filters are
//! covered), run all 22 queries in one session and compare every result with the
//! reference answer. A failure lists every
//! failing query and why. Each query's time and outcome is printed (see `--nocapture`).
//!
//! Each query gets a time limit (`SLUICE_TPCH_QUERY_TIMEOUT_SECS`, default 60 s): a query
//! that exceeds it is reported as failed and left running on its own thread (a thread
//! cannot be cancelled) so that the remaining queries still run.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sluice::Session;
use sluice_bench_tpch::runner::{all_queries, check_answer, run_query_guarded};
use sluice_bench_tpch::{register_generated, register_parquet_dir, write_parquet, AnswerStatus};

fn query_timeout() -> Duration {
    let secs = std::env::var("SLUICE_TPCH_QUERY_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Runs query `n` on its own thread and checks its answer; `Err` describes the failure.
fn run_and_check(
    session: &Session,
    sf: f64,
    n: usize,
    timeout: Duration,
) -> Result<Duration, String> {
    let (tx, rx) = mpsc::channel();
    let session = session.clone();
    thread::spawn(move || {
        let outcome = run_query_guarded(&session, n)
            .and_then(|(batches, elapsed)| Ok((check_answer(sf, n, &batches)?, elapsed)));
        // The receiver is gone when the query timed out; nothing to report then.
        let _ = tx.send(outcome);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok((AnswerStatus::Correct, elapsed))) => Ok(elapsed),
        Ok(Ok((AnswerStatus::Wrong(mismatch), _))) => Err(format!("wrong answer: {mismatch}")),
        Ok(Ok((AnswerStatus::NoReference, _))) => Err(format!("no reference answer at SF {sf}")),
        Ok(Err(e)) => Err(format!("error: {e}")),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("timed out after {timeout:?}")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("query thread died".to_owned()),
    }
}

fn check_scale_factor(sf: f64) {
    let start = Instant::now();
    let session = Session::new();
    if let Err(e) = register_generated(&session, sf) {
        panic!("generating TPC-H SF {sf}: {e}");
    }
    eprintln!(
        "SF {sf}: data generated in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    check_session(&session, sf, start);
}

/// Runs all 22 queries on `session` (tables of scale factor `sf`) and fails listing
/// every wrong one.
fn check_session(session: &Session, sf: f64, start: Instant) {
    let timeout = query_timeout();
    let mut failures = Vec::new();
    for n in all_queries() {
        match run_and_check(session, sf, n, timeout) {
            Ok(elapsed) => eprintln!("SF {sf}: q{n}: ok ({} ms)", elapsed.as_millis()),
            Err(why) => {
                eprintln!("SF {sf}: q{n}: {why}");
                failures.push(format!("q{n}: {why}"));
            }
        }
    }
    eprintln!("SF {sf}: done in {:.1}s", start.elapsed().as_secs_f64());
    if !failures.is_empty() {
        panic!(
            "{} of 22 TPC-H queries failed at SF {sf}:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

#[test]
fn tpch_sf0_01_answers() {
    check_scale_factor(0.01);
}

#[test]
fn tpch_sf0_1_answers() {
    check_scale_factor(0.1);
}

#[test]
fn tpch_sf0_1_parquet_answers() {
    let start = Instant::now();
    let dir = tempfile::tempdir().expect("temporary directory");
    write_parquet(0.1, dir.path(), 1, false).expect("writing TPC-H SF 0.1 as Parquet");
    let session = Session::new();
    register_parquet_dir(&session, dir.path()).expect("registering the Parquet files");
    eprintln!(
        "SF 0.1 (Parquet): written in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    check_session(&session, 0.1, start);
}
