//! The interactive shell (REPL) and the one-shot statement runner behind `-c` and `-f`.
//!
//! Both cut SQL text into statements with [`split_statements`], which understands
//! `'...'` strings (with `''` escapes), `"..."` and `` `...` `` identifiers, `--` line
//! comments and `/* ... */` block comments, so a `;` inside any of them does not end a
//! statement. Each statement is handed to the engine padded with whitespace so that the
//! line and column of a syntax error point into the original text (the file, the `-c`
//! argument or the shell's buffer).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use sluice::{Session, SluiceError};

use crate::output::{write_result, write_streamed, OutputFormat};
use crate::CliError;

const PROMPT: &str = "sluice> ";
const CONTINUATION_PROMPT: &str = "     -> ";
const HISTORY_FILE: &str = ".sluice_history";
const HISTORY_SIZE: usize = 1000;

/// One statement cut from SQL text, without its terminating `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement text, from its first significant character (leading whitespace and
    /// comments dropped) to its end (trailing whitespace dropped).
    pub text: String,
    /// 1-based line of the statement's first character in the source text.
    pub line: usize,
    /// 1-based column (in characters) of the statement's first character.
    pub column: usize,
}

impl Statement {
    /// The text preceded by whitespace that puts it at its original line and column, so
    /// that positions in parser errors refer to the source text.
    pub fn positioned_text(&self) -> String {
        let mut s = String::with_capacity(self.line + self.column + self.text.len());
        s.extend(std::iter::repeat_n('\n', self.line - 1));
        s.extend(std::iter::repeat_n(' ', self.column - 1));
        s.push_str(&self.text);
        s
    }
}

/// SQL text cut into statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Statements terminated by `;`, in order (empty ones skipped).
    pub statements: Vec<Statement>,
    /// Text after the last `;` that holds more than whitespace and comments.
    pub rest: Option<Statement>,
    /// Whether the text ends inside a quoted string or identifier or a block comment.
    pub open: bool,
}

impl Split {
    /// Whether the text ends with a `;` outside quotes and comments (ignoring trailing
    /// whitespace and comments), i.e. nothing more is needed to run it.
    pub fn is_complete(&self) -> bool {
        self.rest.is_none() && !self.open
    }

    /// All statements, including an unterminated last one (for scripts, where the final
    /// `;` is optional).
    pub fn into_all(self) -> Vec<Statement> {
        let mut all = self.statements;
        all.extend(self.rest);
        all
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ScanState {
    Normal,
    /// Inside a quoted string or identifier closed by this character.
    Quoted(char),
    LineComment,
    BlockComment,
}

/// Cuts `text` into `;`-terminated statements.
///
/// A doubled quote inside a quoted string (`'it''s'`) needs no special handling: it
/// closes and immediately reopens the quote.
pub fn split_statements(text: &str) -> Split {
    let mut split = Split::default();
    let mut state = ScanState::Normal;
    // Byte offset, line and column of the current statement's first significant character.
    let mut start: Option<(usize, usize, usize)> = None;
    let (mut line, mut column) = (1usize, 1usize);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let (at_line, at_column) = (line, column);
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
        let next = chars.peek().map(|&(_, n)| n);
        match state {
            ScanState::Normal => match c {
                ';' => {
                    if let Some((s, l, col)) = start.take() {
                        split.statements.push(Statement {
                            text: text[s..i].trim_end().to_string(),
                            line: l,
                            column: col,
                        });
                    }
                }
                '-' if next == Some('-') => {
                    chars.next();
                    column += 1;
                    state = ScanState::LineComment;
                }
                '/' if next == Some('*') => {
                    chars.next();
                    column += 1;
                    state = ScanState::BlockComment;
                }
                c if c.is_whitespace() => {}
                c => {
                    start.get_or_insert((i, at_line, at_column));
                    if matches!(c, '\'' | '"' | '`') {
                        state = ScanState::Quoted(c);
                    }
                }
            },
            ScanState::Quoted(close) => {
                if c == close {
                    state = ScanState::Normal;
                }
            }
            ScanState::LineComment => {
                if c == '\n' {
                    state = ScanState::Normal;
                }
            }
            ScanState::BlockComment => {
                if c == '*' && next == Some('/') {
                    chars.next();
                    column += 1;
                    state = ScanState::Normal;
                }
            }
        }
    }
    split.open = matches!(state, ScanState::Quoted(_) | ScanState::BlockComment);
    split.rest = start.map(|(s, l, col)| Statement {
        text: text[s..].trim_end().to_string(),
        line: l,
        column: col,
    });
    split
}

/// The result of one statement.
#[derive(Debug)]
pub struct StatementResult {
    /// The result's schema (no fields for DDL).
    pub schema: SchemaRef,
    /// The result rows.
    pub batches: Vec<RecordBatch>,
    /// Time to plan and run the statement.
    pub elapsed: Duration,
}

impl StatementResult {
    /// Number of result rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// `N rows in X.XXX s`, or `OK in X.XXX s` for a result without columns (DDL).
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        if self.schema.fields().is_empty() {
            return format!("OK in {secs:.3} s");
        }
        match self.rows() {
            1 => format!("1 row in {secs:.3} s"),
            n => format!("{n} rows in {secs:.3} s"),
        }
    }
}

/// Runs a planned statement to completion. DDL took effect during planning and is not
/// collected.
fn execute_planned(
    df: sluice::DataFrame,
    started: Instant,
) -> Result<StatementResult, SluiceError> {
    let schema = df.schema();
    let batches = if schema.fields().is_empty() {
        Vec::new()
    } else {
        df.collect()?
    };
    Ok(StatementResult {
        schema,
        batches,
        elapsed: started.elapsed(),
    })
}

/// Makes Ctrl-C (SIGINT) cancel the running statement instead of killing the process: it
/// sets `session`'s cancel flag, which [`run_statement`] clears before each statement. A
/// second Ctrl-C while the flag is still set (a query that does not stop) exits.
pub fn cancel_on_interrupt(session: &Session) -> Result<(), CliError> {
    let flag = Arc::new(AtomicBool::new(false));
    let sigint = signal_hook::consts::SIGINT;
    signal_hook::flag::register_conditional_shutdown(sigint, 130, flag.clone())
        .map_err(CliError::Signal)?;
    signal_hook::flag::register(sigint, flag.clone()).map_err(CliError::Signal)?;
    session.set_cancel_flag(Some(flag));
    Ok(())
}

/// True once the statement running in `session` has been cancelled (Ctrl-C).
fn cancelled(session: &Session) -> bool {
    session
        .config()
        .cancel
        .is_some_and(|c| c.load(Ordering::Relaxed))
}

/// Runs one statement and writes its result to `out`; returns the summary line. A
/// streaming query's rows are written as its windows fire, until its sources end or
/// Ctrl-C cancels it (see [`cancel_on_interrupt`]): the rows written stay, and the summary
/// says it was cancelled. A cancelled batch query fails with [`CliError::Cancelled`]
/// rather than print a partial result. What the statement freed goes back to the kernel
/// afterwards, so that a long session stays the size of its largest statement.
pub fn run_statement(
    session: &Session,
    statement: &Statement,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<String, CliError> {
    let summary = execute_statement(session, statement, format, out);
    sluice::allocator::release_free_memory();
    summary
}

fn execute_statement(
    session: &Session,
    statement: &Statement,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<String, CliError> {
    if let Some(flag) = session.config().cancel {
        flag.store(false, Ordering::Relaxed);
    }
    let started = Instant::now();
    let df = session.sql(&statement.positioned_text())?;
    let schema = df.result_schema();
    if !df.is_streaming() || schema.fields().is_empty() {
        let result = execute_planned(df, started)?;
        if cancelled(session) {
            return Err(CliError::Cancelled);
        }
        write_result(out, format, &result.schema, &result.batches)?;
        return Ok(result.summary());
    }
    let mut rows = 0;
    for (i, batch) in df.execute_iter()?.enumerate() {
        let batch = batch?;
        rows += batch.num_rows();
        write_streamed(out, format, &schema, &batch, i == 0)?;
        out.flush()?;
    }
    let how = if cancelled(session) {
        " (cancelled)"
    } else {
        ""
    };
    Ok(format!(
        "{rows} rows streamed in {:.3} s{how}",
        started.elapsed().as_secs_f64()
    ))
}

/// Runs every statement in `text` once, writing each result to `out` in `format`.
///
/// Stops at the first failing or cancelled statement and returns its error
/// ([`CliError::Cancelled`] after a cancelled stream). In table format the
/// row-count and timing line of each statement goes to stderr; CSV and JSON output stays
/// free of anything but data.
pub fn run_script(
    session: &Session,
    text: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let statements = split_statements(text).into_all();
    if statements.is_empty() {
        return Err(CliError::NoStatement);
    }
    for statement in &statements {
        let summary = run_statement(session, statement, format, out)?;
        out.flush()?;
        if format == OutputFormat::Table {
            eprintln!("{summary}");
        }
        if cancelled(session) {
            return Err(CliError::Cancelled);
        }
    }
    Ok(())
}

/// What a line typed at the start of a statement asks the shell to do.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Quit,
    Help,
    ListTables,
    Unknown(String),
}

fn shell_command(line: &str) -> Option<Command> {
    let t = line.trim();
    let word = t.strip_suffix(';').unwrap_or(t).trim_end();
    if word.eq_ignore_ascii_case("quit") || word.eq_ignore_ascii_case("exit") || word == "\\q" {
        return Some(Command::Quit);
    }
    if !t.starts_with('\\') {
        return None;
    }
    Some(match t {
        "\\?" | "\\h" => Command::Help,
        "\\d" | "\\dt" => Command::ListTables,
        other => Command::Unknown(other.to_string()),
    })
}

const HELP: &str = "\
Enter SQL statements ending with ';' (they may span several lines).
  \\q, quit, exit   leave the shell (or press Ctrl-D)
  \\d               list tables
  \\?               this help
  Ctrl-C           discard the statement being typed, or cancel the running one";

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(HISTORY_FILE))
}

/// Runs the interactive shell until `\q`, `quit`, `exit` or end of input.
///
/// Statements may span several lines and run once the buffered text ends with `;`
/// (outside quotes and comments). Results are printed in `format`, followed by a
/// row-count and timing line; errors are printed as `Error: <message>` and the shell
/// continues.
pub fn run_repl(session: &Session, format: OutputFormat) -> Result<(), CliError> {
    let interactive = std::io::stdin().is_terminal();
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)?
        .auto_add_history(false)
        .build();
    let mut editor = DefaultEditor::with_config(config)?;
    let history = history_path();
    if let Some(path) = &history {
        // A missing or unreadable history file only means starting without history.
        let _ = editor.load_history(path);
    }
    if interactive {
        println!(
            "Sluice {} — end statements with ';', \\? for help, \\q to quit.",
            env!("CARGO_PKG_VERSION")
        );
    }

    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            PROMPT
        } else {
            CONTINUATION_PROMPT
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() {
                    match shell_command(&line) {
                        Some(Command::Quit) => break,
                        Some(command) => {
                            let _ = editor.add_history_entry(line.trim());
                            run_command(session, &command);
                            continue;
                        }
                        None => {}
                    }
                }
                if !buffer.is_empty() {
                    buffer.push('\n');
                }
                buffer.push_str(&line);
                let split = split_statements(&buffer);
                if !split.is_complete() {
                    continue;
                }
                if !split.statements.is_empty() {
                    let _ = editor.add_history_entry(buffer.trim());
                    run_interactive(session, split.statements, format);
                }
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => {
                // Piped input may end without a final ';': run what is left.
                if !interactive {
                    run_interactive(session, split_statements(&buffer).into_all(), format);
                }
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(path) = &history {
        // Failing to write the history must not turn a clean exit into an error.
        let _ = editor.save_history(path);
    }
    Ok(())
}

fn run_command(session: &Session, command: &Command) {
    match command {
        Command::Help => println!("{HELP}"),
        Command::ListTables => {
            let names = session.table_names();
            if names.is_empty() {
                println!("No tables.");
            }
            for name in names {
                println!("{name}");
            }
        }
        Command::Unknown(c) => eprintln!("Error: unknown command {c} (\\? for help)"),
        Command::Quit => {}
    }
}

/// Runs statements typed into the shell, printing results and timing to stdout and
/// errors to stderr; stops at the first error.
fn run_interactive(session: &Session, statements: Vec<Statement>, format: OutputFormat) {
    let stdout = std::io::stdout();
    for statement in &statements {
        let mut out = stdout.lock();
        let printed = run_statement(session, statement, format, &mut out).and_then(|summary| {
            writeln!(out, "{summary}")?;
            out.flush()?;
            Ok(())
        });
        if let Err(e) = printed {
            eprintln!("Error: {e}");
            return;
        }
        if cancelled(session) {
            // Ctrl-C also drops the statements typed after the cancelled one.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(split: &Split) -> Vec<&str> {
        split.statements.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn splits_on_semicolons() {
        let split = split_statements("SELECT 1; SELECT 2;");
        assert_eq!(texts(&split), ["SELECT 1", "SELECT 2"]);
        assert!(split.is_complete());
    }

    #[test]
    fn semicolon_inside_quotes_does_not_split() {
        let split = split_statements("SELECT 'a;b', 'it''s; ok' AS \"x;y\"; SELECT `c;d`;");
        assert_eq!(
            texts(&split),
            ["SELECT 'a;b', 'it''s; ok' AS \"x;y\"", "SELECT `c;d`"]
        );
        assert!(split.is_complete());
    }

    #[test]
    fn unterminated_quote_is_open() {
        let split = split_statements("SELECT 'abc;\n");
        assert!(split.statements.is_empty());
        assert!(split.open);
        assert!(!split.is_complete());
        let split = split_statements("SELECT 'abc;\ndef';");
        assert_eq!(texts(&split), ["SELECT 'abc;\ndef'"]);
        assert!(split.is_complete());
    }

    #[test]
    fn multi_line_statement_completes_at_semicolon() {
        let first = split_statements("SELECT a,\n");
        assert!(!first.is_complete());
        assert_eq!(
            first.rest.as_ref().map(|s| s.text.as_str()),
            Some("SELECT a,")
        );
        let split = split_statements("SELECT a,\n  b\nFROM t\n;");
        assert_eq!(texts(&split), ["SELECT a,\n  b\nFROM t"]);
        assert!(split.is_complete());
    }

    #[test]
    fn comments_hide_semicolons() {
        let split = split_statements("SELECT 1 -- not the end;\n");
        assert!(split.statements.is_empty());
        assert!(!split.is_complete());

        let split = split_statements("SELECT 1 -- first;\n, 2; -- trailing; comment");
        assert_eq!(texts(&split), ["SELECT 1 -- first;\n, 2"]);
        assert!(split.is_complete());

        let split = split_statements("SELECT /* ; */ 1;");
        assert_eq!(texts(&split), ["SELECT /* ; */ 1"]);

        let split = split_statements("SELECT 1; /* still\n open ;");
        assert_eq!(texts(&split), ["SELECT 1"]);
        assert!(split.open);
        assert!(!split.is_complete());
    }

    #[test]
    fn leading_comments_and_empty_statements_are_skipped() {
        let split = split_statements("-- header\n\n  ;; /* c */ SELECT 1;\n");
        assert_eq!(texts(&split), ["SELECT 1"]);
        let only_comments = split_statements("-- nothing here\n/* at all */");
        assert!(only_comments.statements.is_empty());
        assert!(only_comments.is_complete());
    }

    #[test]
    fn dashes_and_slashes_outside_comments() {
        let split = split_statements("SELECT 5 - -3, 6 / 2, '--';");
        assert_eq!(texts(&split), ["SELECT 5 - -3, 6 / 2, '--'"]);
    }

    #[test]
    fn unterminated_last_statement_is_rest() {
        let split = split_statements("SELECT 1;\nSELECT 2");
        assert_eq!(texts(&split), ["SELECT 1"]);
        assert!(!split.is_complete());
        let all = split.into_all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].text, "SELECT 2");
    }

    #[test]
    fn positions_point_into_the_source() {
        let split = split_statements("SELECT 1;\n  -- c\n  SELECT x\n;");
        let second = &split.statements[1];
        assert_eq!((second.line, second.column), (3, 3));
        assert_eq!(second.positioned_text(), "\n\n  SELECT x");
    }

    #[test]
    fn shell_commands() {
        assert_eq!(shell_command(" \\q "), Some(Command::Quit));
        assert_eq!(shell_command("QUIT;"), Some(Command::Quit));
        assert_eq!(shell_command("exit"), Some(Command::Quit));
        assert_eq!(shell_command("\\?"), Some(Command::Help));
        assert_eq!(shell_command("\\d"), Some(Command::ListTables));
        assert_eq!(
            shell_command("\\x"),
            Some(Command::Unknown("\\x".to_string()))
        );
        assert_eq!(shell_command("SELECT 1;"), None);
        assert_eq!(shell_command("exited"), None);
    }
}
