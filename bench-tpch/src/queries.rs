//! The 22 TPC-H queries and their reference answers, embedded in the binary.
//!
//! The queries (`queries/qN.sql`) use the TPC-H validation substitution parameters. The
//! reference answers (`answers/sf<SF>/qN.csv`) exist for scale factors 0.01, 0.1 and 1; they
//! are `|`-separated with a header line first (see [`crate::answers`]).
//!
//! Errata: the shared answers of q2, q10, q13, q15 and q20 were computed on data whose
//! generated text (addresses and comments) differs from what `tpchgen` — and the standard
//! `dbgen` — produce, so they cannot match. `answers/errata/sf<SF>/` holds corrected answers
//! for those queries (see `answers/README.md`); [`reference_answer`] uses them, and
//! [`uncorrected_reference_answer`] returns the answers as copied.
//!
//! Every query is a single statement (q15 uses a `WITH` clause rather than the original
//! `CREATE VIEW` / `DROP VIEW` form), but [`query_statements`] splits a query text into its
//! statements anyway so that the runner can execute multi-statement variants in order.

/// Number of TPC-H queries.
pub const QUERY_COUNT: usize = 22;

/// Scale factors for which reference answers are embedded, with their directory names.
pub const ANSWER_SCALE_FACTORS: [(f64, &str); 3] = [(0.01, "sf0.01"), (0.1, "sf0.1"), (1.0, "sf1")];

macro_rules! embed_22 {
    ($prefix:literal, $suffix:literal) => {
        [
            include_str!(concat!($prefix, "q1", $suffix)),
            include_str!(concat!($prefix, "q2", $suffix)),
            include_str!(concat!($prefix, "q3", $suffix)),
            include_str!(concat!($prefix, "q4", $suffix)),
            include_str!(concat!($prefix, "q5", $suffix)),
            include_str!(concat!($prefix, "q6", $suffix)),
            include_str!(concat!($prefix, "q7", $suffix)),
            include_str!(concat!($prefix, "q8", $suffix)),
            include_str!(concat!($prefix, "q9", $suffix)),
            include_str!(concat!($prefix, "q10", $suffix)),
            include_str!(concat!($prefix, "q11", $suffix)),
            include_str!(concat!($prefix, "q12", $suffix)),
            include_str!(concat!($prefix, "q13", $suffix)),
            include_str!(concat!($prefix, "q14", $suffix)),
            include_str!(concat!($prefix, "q15", $suffix)),
            include_str!(concat!($prefix, "q16", $suffix)),
            include_str!(concat!($prefix, "q17", $suffix)),
            include_str!(concat!($prefix, "q18", $suffix)),
            include_str!(concat!($prefix, "q19", $suffix)),
            include_str!(concat!($prefix, "q20", $suffix)),
            include_str!(concat!($prefix, "q21", $suffix)),
            include_str!(concat!($prefix, "q22", $suffix)),
        ]
    };
}

static QUERIES: [&str; QUERY_COUNT] = embed_22!("../queries/", ".sql");
static ANSWERS_SF0_01: [&str; QUERY_COUNT] = embed_22!("../answers/sf0.01/", ".csv");
static ANSWERS_SF0_1: [&str; QUERY_COUNT] = embed_22!("../answers/sf0.1/", ".csv");
static ANSWERS_SF1: [&str; QUERY_COUNT] = embed_22!("../answers/sf1/", ".csv");

/// Queries whose shared reference answers are replaced by `answers/errata/` (at every
/// scale factor).
pub const ERRATA_QUERIES: [usize; 5] = [2, 10, 13, 15, 20];

macro_rules! embed_errata {
    ($dir:literal) => {
        [
            include_str!(concat!("../answers/errata/", $dir, "/q2.csv")),
            include_str!(concat!("../answers/errata/", $dir, "/q10.csv")),
            include_str!(concat!("../answers/errata/", $dir, "/q13.csv")),
            include_str!(concat!("../answers/errata/", $dir, "/q15.csv")),
            include_str!(concat!("../answers/errata/", $dir, "/q20.csv")),
        ]
    };
}

static ERRATA_SF0_01: [&str; 5] = embed_errata!("sf0.01");
static ERRATA_SF0_1: [&str; 5] = embed_errata!("sf0.1");
static ERRATA_SF1: [&str; 5] = embed_errata!("sf1");

/// The SQL text of TPC-H query `n` (1-based), exactly as stored in `queries/qN.sql`.
///
/// Returns `None` when `n` is not in `1..=22`.
pub fn query_sql(n: usize) -> Option<&'static str> {
    n.checked_sub(1).and_then(|i| QUERIES.get(i)).copied()
}

/// The statements of TPC-H query `n` (1-based), in execution order, without trailing `;`.
///
/// The result of the query is the result of the last statement that returns rows (see
/// [`is_query_statement`]). Returns `None` when `n` is not in `1..=22`.
pub fn query_statements(n: usize) -> Option<Vec<&'static str>> {
    query_sql(n).map(split_statements)
}

/// The directory name (`sf0.01`, `sf0.1`, `sf1`) of the embedded answers for scale factor
/// `sf`, or `None` when there are no reference answers for it.
pub fn answer_set_name(sf: f64) -> Option<&'static str> {
    ANSWER_SCALE_FACTORS
        .iter()
        .find(|(known, _)| (known - sf).abs() <= 1e-9 * known.max(1.0))
        .map(|(_, name)| *name)
}

/// The reference answer of query `n` (1-based) at scale factor `sf` for `tpchgen` data, as
/// raw `|`-separated text: `answers/errata/sf<SF>/qN.csv` for the [`ERRATA_QUERIES`],
/// otherwise `answers/sf<SF>/qN.csv`.
///
/// Returns `None` when `n` is not in `1..=22` or there is no answer set for `sf`.
pub fn reference_answer(sf: f64, n: usize) -> Option<&'static str> {
    let Some(index) = ERRATA_QUERIES.iter().position(|&q| q == n) else {
        return uncorrected_reference_answer(sf, n);
    };
    let set: &[&str; 5] = match answer_set_name(sf)? {
        "sf0.01" => &ERRATA_SF0_01,
        "sf0.1" => &ERRATA_SF0_1,
        _ => &ERRATA_SF1,
    };
    set.get(index).copied()
}

/// The shared reference answer of query `n` (1-based) at scale factor `sf` exactly as
/// copied (`answers/sf<SF>/qN.csv`), without the errata.
///
/// Returns `None` when `n` is not in `1..=22` or there is no answer set for `sf`.
pub fn uncorrected_reference_answer(sf: f64, n: usize) -> Option<&'static str> {
    let set: &[&str; QUERY_COUNT] = match answer_set_name(sf)? {
        "sf0.01" => &ANSWERS_SF0_01,
        "sf0.1" => &ANSWERS_SF0_1,
        _ => &ANSWERS_SF1,
    };
    n.checked_sub(1).and_then(|i| set.get(i)).copied()
}

/// Splits SQL text into statements at `;` outside string literals, quoted identifiers and
/// comments. Statements are trimmed; empty ones are dropped.
pub fn split_statements(sql: &str) -> Vec<&str> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Single,
        Double,
        LineComment,
        BlockComment,
    }
    let bytes = sql.as_bytes();
    let mut state = State::Code;
    let mut start = 0;
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => match b {
                b'\'' => state = State::Single,
                b'"' => state = State::Double,
                b'-' if next == Some(b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::BlockComment;
                    i += 1;
                }
                b';' => {
                    out.push(&sql[start..i]);
                    start = i + 1;
                }
                _ => {}
            },
            // A doubled quote inside a literal toggles out and straight back in.
            State::Single if b == b'\'' => state = State::Code,
            State::Double if b == b'"' => state = State::Code,
            State::LineComment if b == b'\n' => state = State::Code,
            State::BlockComment if b == b'*' && next == Some(b'/') => {
                state = State::Code;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&sql[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !is_blank_sql(s))
        .collect()
}

/// True when statement `s` returns rows: it starts (after comments) with `SELECT`, `WITH`,
/// `VALUES` or a parenthesis. `CREATE VIEW` / `DROP VIEW` and the like are not queries.
pub fn is_query_statement(s: &str) -> bool {
    let code = skip_comments(s);
    let word: String = code
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    code.starts_with('(') || matches!(word.as_str(), "SELECT" | "WITH" | "VALUES")
}

/// `s` without its leading whitespace and comments.
fn skip_comments(s: &str) -> &str {
    let mut rest = s.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |p| &r[p..]).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |p| &r[p + 2..]).trim_start();
        } else {
            return rest;
        }
    }
}

/// True when `s` holds nothing but whitespace and comments.
fn is_blank_sql(s: &str) -> bool {
    skip_comments(s).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_queries_and_answers_are_embedded() {
        for n in 1..=QUERY_COUNT {
            let sql = query_sql(n).expect("query exists");
            assert!(sql.to_ascii_uppercase().contains("SELECT"), "q{n}");
            let stmts = query_statements(n).expect("query exists");
            assert_eq!(stmts.len(), 1, "q{n} is a single statement");
            assert!(!stmts[0].ends_with(';'));
            for (sf, _) in ANSWER_SCALE_FACTORS {
                let answer = reference_answer(sf, n).expect("answer exists");
                assert!(answer.contains('\n'), "q{n} sf{sf}");
            }
        }
        assert!(query_sql(0).is_none());
        assert!(query_sql(23).is_none());
        assert!(reference_answer(10.0, 1).is_none());
        assert!(reference_answer(10.0, 13).is_none());
        for (sf, _) in ANSWER_SCALE_FACTORS {
            for n in 1..=QUERY_COUNT {
                let corrected = reference_answer(sf, n);
                let copied = uncorrected_reference_answer(sf, n);
                assert_eq!(
                    corrected == copied,
                    !ERRATA_QUERIES.contains(&n),
                    "q{n} sf{sf}"
                );
                // Same header either way.
                let header = |t: Option<&'static str>| t.and_then(|t| t.lines().next());
                assert_eq!(header(corrected), header(copied), "q{n} sf{sf}");
            }
        }
        // The corrected q2 at SF 0.01 starts with the row of the standard dbgen validation
        // output.
        let q2 = reference_answer(0.01, 2).unwrap_or_default();
        let row = "|Supplier#000000077|GERMANY|249|Manufacturer#4|\
                   wVtcr0uH3CyrSiWMLsqnB09Syo,UuZxPMeBghlY|17-281-345-4863|";
        assert!(q2.contains(row), "{q2}");
        assert!(reference_answer(0.1, 23).is_none());
    }

    #[test]
    fn answer_set_names() {
        assert_eq!(answer_set_name(0.01), Some("sf0.01"));
        assert_eq!(answer_set_name(0.1), Some("sf0.1"));
        assert_eq!(answer_set_name(1.0), Some("sf1"));
        assert_eq!(answer_set_name(0.5), None);
    }

    #[test]
    fn split_statements_respects_quotes_and_comments() {
        let sql = "CREATE VIEW v AS SELECT ';' AS x; -- a; comment\n\
                   SELECT * FROM v /* ; */;\n DROP VIEW v;\n";
        assert_eq!(
            split_statements(sql),
            vec![
                "CREATE VIEW v AS SELECT ';' AS x",
                "-- a; comment\nSELECT * FROM v /* ; */",
                "DROP VIEW v"
            ]
        );
        assert_eq!(split_statements("SELECT 1"), vec!["SELECT 1"]);
        assert_eq!(
            split_statements("SELECT 'it''s;'; "),
            vec!["SELECT 'it''s;'"]
        );
        assert!(split_statements(" ; -- only a comment\n").is_empty());
    }

    #[test]
    fn query_statement_detection() {
        assert!(is_query_statement("SELECT 1"));
        assert!(is_query_statement(
            "-- c\n  with x AS (SELECT 1) SELECT * FROM x"
        ));
        assert!(is_query_statement("(SELECT 1)"));
        assert!(!is_query_statement("CREATE VIEW revenue0 AS SELECT 1"));
        assert!(!is_query_statement("DROP VIEW revenue0"));
        assert!(!is_query_statement("SELECTED"));
    }
}
