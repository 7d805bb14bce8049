//! End-to-end TPC-H check: generate SF 0.01 and SF 0.1 in memory, run all 22 queries in
//! one session and compare every result with the reference answer. A failure lists every
//! failing query and why.

use std::time::Instant;

use sluice::Session;
use sluice_bench_tpch::register_generated;
use sluice_bench_tpch::runner::{all_queries, check_queries};

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
    let failures = check_queries(&session, sf, &all_queries());
    eprintln!(
        "SF {sf}: queries ran in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        let list: Vec<String> = failures
            .iter()
            .map(|(n, why)| format!("  q{n}: {why}"))
            .collect();
        panic!(
            "{} of 22 TPC-H queries failed at SF {sf}:\n{}",
            failures.len(),
            list.join("\n")
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
