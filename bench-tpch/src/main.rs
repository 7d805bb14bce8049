//! `sluice-tpch`: generate TPC-H data and run the 22 queries against Sluice.
//!
//! ```text
//! sluice-tpch gen --sf 1 --out data/tpch-sf1 [--parts 4]
//! sluice-tpch run [--sf 1] [--data data/tpch-sf1] [--query 1 --query 6] [--iterations 3]
//!                 [--threads 8] [--json report.json] [--memory-limit 1G] [--in-memory] [--api sql|dataframe]
//! ```
//!
//! `run` registers the Parquet tables of the data directory (generating any missing ones
//! when the scale factor is known), runs the queries, prints a timing table, checks the
//! answers against the embedded reference answers and exits non-zero when a query fails or
//! gives a wrong answer. `--api dataframe` runs the DataFrame-API versions of queries 1, 3,
//! 5, 6 and 10 instead of the SQL text; the other queries are skipped.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use sluice::{Session, SessionConfig};
use sluice_bench_tpch::dataframe_queries::has_dataframe_query;
use sluice_bench_tpch::gen::{data_scale_factor, missing_tables, validate_scale_factor};
use sluice_bench_tpch::queries::answer_set_name;
use sluice_bench_tpch::runner::{all_queries, format_header, format_row, format_total};
use sluice_bench_tpch::{
    register_generated, register_parquet_dir, run_benchmark, write_parquet, BenchConfig,
    BenchError, QueryApi, QUERY_COUNT,
};

/// The `--api` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ApiArg {
    /// The SQL text of `queries/qN.sql`.
    Sql,
    /// The DataFrame-API versions (queries 1, 3, 5, 6, 10 only).
    Dataframe,
}

impl From<ApiArg> for QueryApi {
    fn from(api: ApiArg) -> Self {
        match api {
            ApiArg::Sql => QueryApi::Sql,
            ApiArg::Dataframe => QueryApi::DataFrame,
        }
    }
}

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
        /// Scale factor of the data [default: read off the data's `supplier` table, else 1];
        /// missing tables are generated at this scale, and it must match the data present.
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
        /// Most memory buffering operators may reserve, e.g. `512M`, `1G` (bytes without a
        /// suffix). A query that needs more fails with an error naming the operator.
        #[arg(long, value_parser = parse_size)]
        memory_limit: Option<usize>,
        /// Generate the data in memory instead of reading Parquet files.
        #[arg(long, conflicts_with = "data")]
        in_memory: bool,
        /// How the queries are built: SQL text, or the DataFrame API (queries 1, 3, 5, 6
        /// and 10 only; the others are skipped).
        #[arg(long, value_enum, default_value_t = ApiArg::Sql)]
        api: ApiArg,
        /// Write each query's result to DIR/qN.out (the reference-answer format).
        #[arg(long, value_name = "DIR")]
        save_answers: Option<PathBuf>,
        /// Check results against DIR/qN.out saved by an earlier run instead of the built-in
        /// reference answers (for scales without them, e.g. SF 10 under a memory limit
        /// against SF 10 without).
        #[arg(long, value_name = "DIR")]
        answers: Option<PathBuf>,
    },
}

/// mimalloc keeps freed pages for reuse: the decompression and decode buffers of every
/// Parquet page are large, short-lived allocations that glibc's allocator maps and zeroes
/// afresh (TPC-H SF 10, all 22 queries: 8% less wall time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            memory_limit,
            in_memory,
            api,
            save_answers,
            answers,
        } => run(RunArgs {
            sf,
            data,
            queries: queries.into_iter().map(usize::from).collect(),
            iterations: iterations as usize,
            threads: threads.map(|t| t as usize),
            json,
            memory_limit,
            in_memory,
            api: api.into(),
            save_answers,
            answers,
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
    memory_limit: Option<usize>,
    in_memory: bool,
    api: QueryApi,
    save_answers: Option<PathBuf>,
    answers: Option<PathBuf>,
}

/// Parses `1024`, `64K`, `512M`, `1G` (powers of 1024; a trailing `B`/`iB` is allowed).
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_uppercase();
    let t = t.trim_end_matches("IB").trim_end_matches('B');
    let (num, mul) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1usize << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid size '{s}' (examples: 512M, 1G)"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("invalid size '{s}': must be positive"));
    }
    Ok((n * mul as f64) as usize)
}

/// The queries to run: those asked for (all when none), less those without a version for
/// `api` (each skipped with a message). Fails when none is left.
fn select_queries(asked: Vec<usize>, api: QueryApi) -> Result<Vec<usize>, BenchError> {
    let all = asked.is_empty();
    let asked = if all { all_queries() } else { asked };
    if api == QueryApi::Sql {
        return Ok(asked);
    }
    let (kept, skipped): (Vec<usize>, Vec<usize>) =
        asked.into_iter().partition(|&n| has_dataframe_query(n));
    if all {
        eprintln!(
            "DataFrame API: running q1, q3, q5, q6, q10; the {} other queries have no \
             DataFrame version and are skipped",
            skipped.len()
        );
    } else if !skipped.is_empty() {
        let names: Vec<String> = skipped.iter().map(|n| format!("q{n}")).collect();
        eprintln!(
            "skipping {}: no DataFrame version (only q1, q3, q5, q6, q10 have one)",
            names.join(", ")
        );
    }
    if kept.is_empty() {
        return Err(BenchError::InvalidArgument(
            "none of the selected queries has a DataFrame version (q1, q3, q5, q6, q10)".into(),
        ));
    }
    Ok(kept)
}

/// The scale factor of the data already in `dir` (from `supplier`'s row count), checked
/// against `--sf` when it was given: answers checked against another scale's would all be
/// WRONG, and tables generated at another scale would not join with those present.
fn checked_scale_factor(dir: &Path, given: Option<f64>) -> Result<Option<f64>, BenchError> {
    let Some(found) = data_scale_factor(dir)? else {
        return Ok(None);
    };
    match given {
        Some(sf) if (sf - found).abs() > 1e-9 * sf.max(1.0) => {
            Err(BenchError::InvalidArgument(format!(
                "--sf {sf} was given, but the data in {} is SF {found} (from supplier's row \
                 count); drop --sf or point --data at SF {sf} data",
                dir.display()
            )))
        }
        Some(_) => Ok(Some(found)),
        None => {
            eprintln!(
                "data in {} is SF {found} (from supplier's row count)",
                dir.display()
            );
            Ok(Some(found))
        }
    }
}

/// `sluice-tpch run`; `Ok(false)` when a query failed or gave a wrong answer.
fn run(args: RunArgs) -> Result<bool, BenchError> {
    let mut sf = args.sf.unwrap_or(1.0);
    validate_scale_factor(sf)?;
    let queries = select_queries(args.queries, args.api)?;
    let mut config = SessionConfig::default();
    if let Some(t) = args.threads {
        config = config.with_target_partitions(t);
    }
    config.memory_limit = args.memory_limit;
    let session = Session::with_config(config);

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
        sf = checked_scale_factor(&dir, args.sf)?.unwrap_or(sf);
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

    let answers_sf = answer_set_name(sf).map(|_| sf);
    if let Some(dir) = &args.answers {
        eprintln!("checking answers against {}", dir.display());
    } else if answers_sf.is_none() {
        eprintln!("no reference answers for SF {sf}; answers are not checked");
    }
    let config = BenchConfig {
        queries,
        iterations: args.iterations,
        answers_sf,
        answers_dir: args.answers,
        save_answers: args.save_answers,
        api: args.api,
    };
    println!("{}", format_header());
    let report = run_benchmark(&session, &config, |q| {
        println!("{}", format_row(q));
        // What this query freed goes back to the kernel before the next one starts, so
        // that the process stays the size of its largest query.
        sluice::allocator::release_free_memory();
    });
    println!("{}", format_total(&report));

    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        std::fs::write(path, text + "\n").map_err(|e| BenchError::io("writing", path, e))?;
    }
    Ok(!report.has_failures())
}

#[cfg(test)]
mod tests {
    #[test]
    fn scale_factor_comes_from_the_data_and_must_match_sf() -> Result<(), super::BenchError> {
        use super::checked_scale_factor;
        let dir = tempfile::tempdir().map_err(|e| super::BenchError::io("creating", "tmp", e))?;
        assert_eq!(
            checked_scale_factor(dir.path(), Some(0.1))?,
            None,
            "no data yet"
        );
        sluice_bench_tpch::gen::write_parquet(0.01, dir.path(), 1, false)?;
        assert_eq!(checked_scale_factor(dir.path(), None)?, Some(0.01));
        assert_eq!(checked_scale_factor(dir.path(), Some(0.01))?, Some(0.01));
        let err = checked_scale_factor(dir.path(), Some(1.0)).map(|_| ());
        assert!(
            matches!(&err, Err(super::BenchError::InvalidArgument(m)) if m.contains("SF 0.01")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        use super::parse_size;
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1G").is_err());
    }

    use super::*;

    #[test]
    fn query_selection_per_api() {
        assert_eq!(
            select_queries(vec![], QueryApi::Sql).ok(),
            Some(all_queries())
        );
        assert_eq!(
            select_queries(vec![], QueryApi::DataFrame).ok(),
            Some(vec![1, 3, 5, 6, 10])
        );
        assert_eq!(
            select_queries(vec![2, 6, 10], QueryApi::DataFrame).ok(),
            Some(vec![6, 10])
        );
        assert_eq!(
            select_queries(vec![2, 6], QueryApi::Sql).ok(),
            Some(vec![2, 6])
        );
        assert!(matches!(
            select_queries(vec![2], QueryApi::DataFrame),
            Err(BenchError::InvalidArgument(_))
        ));
    }

    #[test]
    fn api_argument_parses() {
        let cli = Cli::try_parse_from(["sluice-tpch", "run", "--api", "dataframe"]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::Run {
                api: ApiArg::Dataframe,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["sluice-tpch", "run", "--api", "python"]).is_err());
    }
}
