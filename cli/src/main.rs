//! `sluice`: the command-line front end of the Sluice engine.
//!
//! `sluice sql` opens an interactive SQL shell; with `-c "SQL"` or `-f FILE` it runs the
//! statements once and exits (non-zero, with the error on stderr, if one fails).
//! `--data DIR` registers the Parquet tables found in a directory, `--threads N` sets the
//! partitions queries run with and `--format table|csv|json` picks the output format.
//! `sluice serve` runs the Arrow Flight SQL server (see `serve.rs`).

mod output;
mod serve;
mod shell;

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use arrow::error::ArrowError;
use clap::{Args, Parser, Subcommand};
use rustyline::error::ReadlineError;
use sluice::{Session, SessionConfig, SluiceError};

use crate::output::OutputFormat;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a columnar SQL engine on Apache Arrow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run SQL: an interactive shell, or statements from -c / -f.
    Sql(SqlArgs),
    /// Run the Arrow Flight SQL server (ADBC, pyarrow.flight and other Flight SQL clients).
    Serve(serve::ServeArgs),
}

/// Options of `sluice sql`.
#[derive(Debug, Args)]
struct SqlArgs {
    /// Register every NAME.parquet file and NAME/ directory of Parquet files in DIR as
    /// table NAME (may be repeated).
    #[arg(long, value_name = "DIR")]
    data: Vec<PathBuf>,
    /// Partitions (threads) each query runs with [default: number of cores].
    #[arg(long, value_name = "N")]
    threads: Option<NonZeroUsize>,
    /// Run these `;`-separated statements, print their results and exit.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    command: Option<String>,
    /// Run the statements in FILE, print their results and exit.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Output format of query results.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

/// Failures of the command-line tool.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A statement failed to parse, plan or run.
    #[error("{0}")]
    Sql(#[from] SluiceError),
    /// Tables of a `--data` directory could not be registered.
    #[error("--data {}: {source}", path.display())]
    Data {
        /// The directory.
        path: PathBuf,
        /// Why registration failed.
        source: SluiceError,
    },
    /// The `-f` script could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Script {
        /// The script file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The statement was cancelled with Ctrl-C (its partial result is not shown).
    #[error("query cancelled (Ctrl-C)")]
    Cancelled,
    /// The Ctrl-C handler could not be installed.
    #[error("cannot handle Ctrl-C: {0}")]
    Signal(std::io::Error),
    /// `-c` or `-f` held nothing but whitespace and comments.
    #[error("no statement to run")]
    NoStatement,
    /// A result could not be rendered in the requested format.
    #[error("cannot format result: {0}")]
    Format(#[from] ArrowError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The Flight SQL server could not start or failed.
    #[error("server: {0}")]
    Server(String),
    /// The line editor of the interactive shell failed.
    #[error("line editor: {0}")]
    Editor(#[from] ReadlineError),
}

impl CliError {
    /// Whether the failure is the reader of our output going away (e.g. `| head`), which
    /// is not worth reporting.
    fn is_broken_pipe(&self) -> bool {
        match self {
            CliError::Output(e) | CliError::Format(ArrowError::IoError(_, e)) => {
                e.kind() == std::io::ErrorKind::BrokenPipe
            }
            _ => false,
        }
    }
}

/// mimalloc keeps freed pages for reuse: the decompression and decode buffers of every
/// Parquet page are large, short-lived allocations that glibc's allocator maps and zeroes
/// afresh (TPC-H SF 10, all 22 queries: 8% less wall time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Sql(args) => run_sql(args),
        Command::Serve(args) => serve::run_serve(args),
    }
}

/// A session with `threads` partitions and the Parquet tables of each `data` directory,
/// announcing what each directory held through `announce`.
fn session_with(
    threads: Option<NonZeroUsize>,
    data: &[PathBuf],
    announce: impl Fn(String),
) -> Result<Session, CliError> {
    let mut config = SessionConfig::default();
    if let Some(n) = threads {
        config = config.with_target_partitions(n.get());
    }
    let session = Session::with_config(config);
    for dir in data {
        let names = session
            .register_parquet_dir(dir)
            .map_err(|source| CliError::Data {
                path: dir.clone(),
                source,
            })?;
        announce(if names.is_empty() {
            format!("No Parquet tables found in {}", dir.display())
        } else {
            format!(
                "Registered {} table{} from {}: {}",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                dir.display(),
                names.join(", ")
            )
        });
    }
    Ok(session)
}

fn run_sql(args: SqlArgs) -> Result<(), CliError> {
    let session = session_with(args.threads, &args.data, |message| {
        // In one-shot mode stdout carries only results (it may be piped as CSV/JSON).
        if args.command.is_some() || args.file.is_some() {
            eprintln!("{message}");
        } else {
            println!("{message}");
        }
    })?;

    shell::cancel_on_interrupt(&session)?;
    let script = match (&args.command, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|source| CliError::Script {
            path: path.clone(),
            source,
        })?,
        (None, None) => return shell::run_repl(&session, args.format),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = shell::run_script(&session, &script, args.format, &mut out);
    // Flush what earlier statements produced even when a later one failed.
    let flushed = out.flush();
    result?;
    flushed?;
    Ok(())
}
