//! `sluice-tpch`: generate TPC-H data and run the 22 queries against Sluice.
//!
//! ```text
//! sluice-tpch gen --sf 1 --out data/tpch-sf1 [--parts 4]
//! sluice-tpch run [--sf 1] [--data data/tpch-sf1] [--query 1 --query 6] [--iterations 3]
//!                 [--threads 8] [--json report.json] [--in-memory]
//! ```
//!
//! `run` registers the Parquet tables of the data directory (generating any missing ones
//! when the scale factor is known), runs the queries, prints a timing table, checks the
//! answers against the embedded reference answers and exits non-zero when a query fails or
//! gives a wrong answer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use sluice::{Session, SessionConfig};
use sluice_bench_tpch::gen::{missing_tables, validate_scale_factor};
use sluice_bench_tpch::queries::answer_set_name;
use sluice_bench_tpch::runner::{all_queries, format_header, format_row, format_total};
use sluice_bench_tpch::{
    register_generated, register_parquet_dir, run_benchmark, write_parquet, BenchConfig,
    BenchError, QUERY_COUNT,
};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "sluice-tpch",
    version,
    about = "TPC-H data generation and benchmark for Sluice"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the eight TPC-H tables as Parquet files.
    Gen {
        /// Scale factor (1 = about 1 GB of raw data).
        #[arg(long)]
        sf: f64,
        /// Output directory; tables already in it are skipped.
        #[arg(long)]
        out: PathBuf,
        /// Files per table (written as TABLE/part-N.parquet when more than 1).
        #[arg(long, default_value_t = 1)]
        parts: usize,
    },
    /// Run the TPC-H queries, time them and check their answers.
    Run {
        /// Scale factor of the data [default: 1]; missing tables are generated at this scale.
        #[arg(long)]
        sf: Option<f64>,
        /// Parquet data directory [default: data/tpch-sfSF, e.g. data/tpch-sf1].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Query to run (1-22); repeat for several [default: all].
        #[arg(
            long = "query",
            short = 'q',
            value_parser = clap::value_parser!(u16).range(1..=QUERY_COUNT as i64)
        )]
        queries: Vec<u16>,
        /// Timed runs per query; the median and minimum are reported.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        iterations: u32,
        /// Engine parallelism (target partitions) [default: engine default].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        threads: Option<u32>,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Generate the data in memory instead of reading Parquet files.
        #[arg(long, conflicts_with = "data")]
        in_memory: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Gen { sf, out, parts } => gen(sf, &out, parts).map(|()| true),
        Command::Run {
            sf,
            data,
            queries,
            iterations,
            threads,
            json,
            in_memory,
        } => run(RunArgs {
            sf,
            data,
            queries: queries.into_iter().map(usize::from).collect(),
            iterations: iterations as usize,
            threads: threads.map(|t| t as usize),
            json,
            in_memory,
        }),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sluice-tpch gen`.
fn gen(sf: f64, out: &Path, parts: usize) -> Result<(), BenchError> {
    let start = Instant::now();
    let written = write_parquet(sf, out, parts, true)?;
    if written.is_empty() {
        eprintln!("all tables already present in {}", out.display());
    } else {
        eprintln!(
            "wrote {} to {} in {:.1}s",
            written.join(", "),
            out.display(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Arguments of `sluice-tpch run`.
struct RunArgs {
    sf: Option<f64>,
    data: Option<PathBuf>,
    queries: Vec<usize>,
    iterations: usize,
    threads: Option<usize>,
    json: Option<PathBuf>,
    in_memory: bool,
}

/// `sluice-tpch run`; `Ok(false)` when a query failed or gave a wrong answer.
fn run(args: RunArgs) -> Result<bool, BenchError> {
    let sf = args.sf.unwrap_or(1.0);
    validate_scale_factor(sf)?;
    let session = match args.threads {
        Some(target_partitions) => Session::with_config(SessionConfig {
            target_partitions,
            ..Default::default()
        }),
        None => Session::new(),
    };

    let start = Instant::now();
    if args.in_memory {
        eprintln!("generating TPC-H SF {sf} in memory...");
        register_generated(&session, sf)?;
    } else {
        // Generating is safe when the scale factor was given or the directory is the
        // default one named after it; otherwise we do not know what the data should be.
        let can_generate = args.sf.is_some() || args.data.is_none();
        let dir = args
            .data
            .unwrap_or_else(|| PathBuf::from(format!("data/tpch-sf{sf}")));
        let missing = missing_tables(&dir);
        if !missing.is_empty() && can_generate {
            eprintln!(
                "generating TPC-H SF {sf} tables {} into {}...",
                missing.join(", "),
                dir.display()
            );
            let parts = std::thread::available_parallelism().map_or(1, |n| n.get());
            write_parquet(sf, &dir, parts, true)?;
        } else if !missing.is_empty() {
            eprintln!("hint: pass --sf to generate the missing tables");
        }
        register_parquet_dir(&session, &dir)?;
    }
    eprintln!("data ready in {:.1}s", start.elapsed().as_secs_f64());

    if args.sf.is_none() && !args.in_memory {
        eprintln!("checking answers for SF {sf} (pass --sf if the data has another scale)");
    }
    let answers_sf = answer_set_name(sf).map(|_| sf);
    if answers_sf.is_none() {
        eprintln!("no reference answers for SF {sf}; answers are not checked");
    }
    let config = BenchConfig {
        queries: if args.queries.is_empty() {
            all_queries()
        } else {
            args.queries
        },
        iterations: args.iterations,
        answers_sf,
    };
    println!("{}", format_header());
    let report = run_benchmark(&session, &config, |q| println!("{}", format_row(q)));
    println!("{}", format_total(&report));

    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        std::fs::write(path, text + "\n").map_err(|e| BenchError::io("writing", path, e))?;
    }
    Ok(!report.has_failures())
}
