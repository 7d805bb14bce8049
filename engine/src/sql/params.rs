//! Query parameters: `?` and `$n` placeholders, bound to typed values at planning time.
//!
//! `?` placeholders are numbered `$1, $2, …` in the order they appear in the text (by source
//! position, not by AST order), so `SELECT ? … WHERE x = ?` binds the first value to the
//! SELECT list. Mixing `?` and `$n` in one request is an error. A bound value becomes a
//! literal of its own Arrow type; nothing is spliced into SQL text.

use std::ops::ControlFlow;

use sqlparser::ast::{self as ast, visit_expressions_mut};

use crate::error::{Result, SluiceError};
use crate::sql::SqlStatement;

/// The most parameters one request may have.
pub const MAX_PARAMETERS: usize = 65_535;

/// Numbers the `?` placeholders of `statements` as `$1..$n` in text order and returns how
/// many parameters the statements take (the highest `$n`).
pub fn number_placeholders(statements: &mut [SqlStatement]) -> Result<usize> {
    let mut positional = Vec::new();
    let mut highest = 0usize;
    for (si, st) in statements.iter_mut().enumerate() {
        let SqlStatement::Standard(st) = st else {
            continue;
        };
        let mut err = None;
        let _ = visit_expressions_mut(st.as_mut(), |e| {
            if let ast::Expr::Value(v) = e {
                if let ast::Value::Placeholder(p) = &v.value {
                    if p == "?" {
                        let s = v.span.start;
                        positional.push((si, s.line, s.column));
                    } else {
                        match placeholder_index(p) {
                            Ok(i) => highest = highest.max(i + 1),
                            Err(e) => {
                                err = Some(e);
                                return ControlFlow::Break(());
                            }
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        });
        if let Some(e) = err {
            return Err(e);
        }
    }
    if positional.is_empty() {
        return Ok(highest);
    }
    if positional.len() > MAX_PARAMETERS {
        return Err(SluiceError::Parse(format!(
            "{} parameters: at most {MAX_PARAMETERS} are allowed",
            positional.len()
        )));
    }
    if highest > 0 {
        return Err(SluiceError::Parse(
            "a statement cannot mix ? and $n parameter placeholders".into(),
        ));
    }
    // Sort by source position, then rename in a second pass that visits in the same
    // AST order as the first and looks each placeholder's rank up by its position.
    let mut order = positional;
    order.sort_unstable();
    let count = order.len();
    for (si, st) in statements.iter_mut().enumerate() {
        let SqlStatement::Standard(st) = st else {
            continue;
        };
        let _ = visit_expressions_mut(st.as_mut(), |e| {
            if let ast::Expr::Value(v) = e {
                if matches!(&v.value, ast::Value::Placeholder(p) if p == "?") {
                    let key = (si, v.span.start.line, v.span.start.column);
                    if let Ok(rank) = order.binary_search(&key) {
                        v.value = ast::Value::Placeholder(format!("${}", rank + 1));
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    Ok(count)
}

/// The 0-based index of placeholder `$n` (1 ≤ n ≤ [`MAX_PARAMETERS`]).
pub fn placeholder_index(p: &str) -> Result<usize> {
    p.strip_prefix('$')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=MAX_PARAMETERS).contains(n))
        .map(|n| n - 1)
        .ok_or_else(|| {
            SluiceError::Parse(format!(
                "unsupported parameter placeholder {p}: use ? or $1 … ${MAX_PARAMETERS}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse;

    fn numbered(sql: &str) -> (usize, String) {
        let mut st = parse(sql).expect("parses");
        let n = number_placeholders(&mut st).expect("numbers");
        let text = st
            .iter()
            .map(|s| match s {
                SqlStatement::Standard(s) => s.to_string(),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join("; ");
        (n, text)
    }

    #[test]
    fn question_marks_number_in_text_order() {
        let (n, text) = numbered("SELECT ?, a FROM t WHERE b = ? AND c < ? ORDER BY a LIMIT 3");
        assert_eq!(n, 3);
        assert_eq!(
            text,
            "SELECT $1, a FROM t WHERE b = $2 AND c < $3 ORDER BY a LIMIT 3"
        );
        let (n, text) = numbered("SELECT 1 WHERE ? > 0; SELECT ?");
        assert_eq!(n, 2);
        assert_eq!(text, "SELECT 1 WHERE $1 > 0; SELECT $2");
    }

    #[test]
    fn dollar_placeholders_count_by_highest() {
        assert_eq!(numbered("SELECT $2, $1, $2").0, 2);
        assert_eq!(numbered("SELECT 1").0, 0);
    }

    #[test]
    fn huge_parameter_numbers_are_refused() {
        for sql in ["SELECT $65536", "SELECT $18446744073709551616", "SELECT $0"] {
            let mut st = parse(sql).expect("parses");
            let err = number_placeholders(&mut st).expect_err(sql);
            assert!(err.to_string().contains("placeholder"), "{err}");
        }
        assert_eq!(numbered("SELECT $65535").0, 65_535);
    }

    #[test]
    fn mixing_styles_is_an_error() {
        let mut st = parse("SELECT ?, $1").expect("parses");
        let err = number_placeholders(&mut st).expect_err("mixed");
        assert!(err.to_string().contains("cannot mix"), "{err}");
    }
}
