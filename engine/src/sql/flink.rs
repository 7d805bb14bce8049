//! Flink SQL syntax that `sqlparser` does not know, handled before or beside it:
//!
//! * window table functions — `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL ...))`: the
//!   `TABLE` keyword before the first argument is dropped from the token stream, so the
//!   call parses as an ordinary `TABLE(<function call>)` FROM item;
//! * `CREATE TABLE` with computed columns (`name AS expr`) and a watermark
//!   (`WATERMARK FOR ts AS ts - INTERVAL '5' SECOND`), parsed into
//!   [`SqlStatement::CreateTimeTable`] (a `CREATE TABLE` without either goes to sqlparser).

use sqlparser::ast;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use std::sync::Arc;

use super::expr::ExprCtx;
use super::planner::SqlPlanner;
use super::{ident, interval_expr, object_name, with_options, SqlStatement};
use crate::catalog::{connector_table, Catalog};
use crate::error::{Result, SluiceError};
use crate::logical::expr::{Column, Expr};
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::session::column_schema;

/// Window table functions whose first argument is written `TABLE name`.
pub const WINDOW_FUNCTIONS: [&str; 4] = ["TUMBLE", "HOP", "CUMULATE", "SESSION"];

/// `tokens` with the `TABLE` keyword removed where it opens the first argument of a window
/// table function (`TUMBLE(TABLE t, ...)` → `TUMBLE(t, ...)`), and a SESSION's `PARTITION
/// BY` made an argument of its own (see [`rewrite_session_partition`]).
pub fn rewrite_window_tvfs(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    rewrite_session_partition(remove_table_keyword(tokens))
}

fn remove_table_keyword(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant = |t: &TokenWithSpan| !matches!(t.token, Token::Whitespace(_));
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for t in tokens {
        let is_table = matches!(&t.token, Token::Word(w) if w.keyword == Keyword::TABLE);
        if is_table {
            let mut prev = out.iter().rev().filter(|t| significant(t));
            let paren = prev.next().is_some_and(|p| p.token == Token::LParen);
            let func = prev.next().is_some_and(|p| {
                matches!(&p.token, Token::Word(w) if w.quote_style.is_none()
                    && WINDOW_FUNCTIONS.iter().any(|f| w.value.eq_ignore_ascii_case(f)))
            });
            if paren && func {
                continue;
            }
        }
        out.push(t);
    }
    out
}

/// The name a SESSION's `PARTITION BY` keys are passed under once rewritten.
pub const SESSION_PARTITION_ARG: &str = "PARTITION_BY";

/// `SESSION(t PARTITION BY k1, DESCRIPTOR(ts), gap)` and `SESSION(t PARTITION BY (k1, k2),
/// ...)` → `SESSION(t, PARTITION_BY(k1[, k2]), DESCRIPTOR(ts), gap)`, which parses as a
/// function call.
fn rewrite_session_partition(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let word = |t: &Token, s: &str| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(s));
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let next_significant = |i: usize| significant.iter().copied().find(|&j| j > i);
    let mut out = Vec::with_capacity(tokens.len() + 4);
    let mut depth = 0usize;
    // Depth of the SESSION call whose first argument is being read.
    let mut session_arg: Option<usize> = None;
    // A `)` is owed before the next `,` or `)` at that depth (unparenthesized keys).
    let mut close_keys = false;
    let mut skip = None;
    for (i, t) in tokens.iter().enumerate() {
        if skip == Some(i) {
            continue;
        }
        match &t.token {
            Token::LParen => {
                depth += 1;
                let prev = significant.iter().copied().rev().find(|&j| j < i);
                if prev.is_some_and(|j| word(&tokens[j].token, "SESSION")) {
                    session_arg = Some(depth);
                }
            }
            Token::Comma | Token::RParen if session_arg == Some(depth) => {
                if close_keys {
                    out.push(TokenWithSpan::wrap(Token::RParen));
                    close_keys = false;
                }
                session_arg = None;
                if t.token == Token::RParen {
                    depth -= 1;
                }
                out.push(t.clone());
                continue;
            }
            Token::RParen => depth = depth.saturating_sub(1),
            tok if session_arg == Some(depth) && word(tok, "PARTITION") => {
                if let Some(by) = next_significant(i).filter(|&j| word(&tokens[j].token, "BY")) {
                    out.push(TokenWithSpan::wrap(Token::Comma));
                    out.push(TokenWithSpan::wrap(Token::make_word(
                        SESSION_PARTITION_ARG,
                        None,
                    )));
                    let parenthesized =
                        next_significant(by).is_some_and(|j| tokens[j].token == Token::LParen);
                    if !parenthesized {
                        out.push(TokenWithSpan::wrap(Token::LParen));
                        close_keys = true;
                    }
                    skip = Some(by);
                    // The keys are no longer part of the first argument.
                    session_arg = None;
                    if close_keys {
                        session_arg = Some(depth);
                    }
                    continue;
                }
            }
            _ => {}
        }
        out.push(t.clone());
    }
    out
}

/// One entry of a Flink `CREATE TABLE` column list.
#[derive(Debug, Clone)]
pub enum TableElement {
    /// A stored (physical) column.
    Column(ast::ColumnDef),
    /// `name AS expr`: computed from the other columns when read.
    Computed(String, Box<ast::Expr>),
}

/// `WATERMARK FOR column AS expr`.
#[derive(Debug, Clone)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// The watermark expression (the column, or the column minus an interval).
    pub expr: Box<ast::Expr>,
}

/// Parses the rest of `CREATE TABLE` (after those keywords) when the column list has a
/// computed column or a watermark; fails otherwise, so the caller can rewind and let
/// sqlparser parse an ordinary `CREATE TABLE`.
pub fn parse_time_table(p: &mut Parser) -> std::result::Result<SqlStatement, ParserError> {
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&p.parse_object_name(false)?);
    p.expect_token(&Token::LParen)?;
    let mut elements = Vec::new();
    let mut watermark = None;
    loop {
        let is_watermark = matches!(&p.peek_token().token, Token::Word(w)
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("WATERMARK"));
        if is_watermark {
            p.next_token();
            p.expect_keyword(Keyword::FOR)?;
            let column = ident(&p.parse_identifier()?);
            p.expect_keyword(Keyword::AS)?;
            let expr = Box::new(p.parse_expr()?);
            if watermark.is_some() {
                return Err(ParserError::ParserError(
                    "a table has at most one WATERMARK".into(),
                ));
            }
            watermark = Some(WatermarkDef { column, expr });
        } else if matches!(p.peek_nth_token(1).token, Token::Word(ref w) if w.keyword == Keyword::AS)
        {
            let name = ident(&p.parse_identifier()?);
            p.expect_keyword(Keyword::AS)?;
            elements.push(TableElement::Computed(name, Box::new(p.parse_expr()?)));
        } else {
            elements.push(TableElement::Column(p.parse_column_def()?));
        }
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    p.expect_token(&Token::RParen)?;
    let has_time_syntax = watermark.is_some()
        || elements
            .iter()
            .any(|e| matches!(e, TableElement::Computed(..)));
    if !has_time_syntax {
        return Err(ParserError::ParserError("not a Flink table".into()));
    }
    let options = p.parse_options(Keyword::WITH)?;
    let options = with_options(&ast::CreateTableOptions::With(options))
        .map_err(|e| ParserError::ParserError(e.to_string()))?
        .unwrap_or_default();
    Ok(SqlStatement::CreateTimeTable {
        name,
        if_not_exists,
        elements,
        watermark,
        options,
    })
}

/// The plan a Flink `CREATE TABLE` stands for: a scan of the connector table (its stored
/// columns), a projection adding the computed columns in declared order, and the
/// watermark. The session registers it as a view under the table's name.
pub fn plan_time_table(
    catalog: &Catalog,
    name: &str,
    elements: &[TableElement],
    watermark: Option<&WatermarkDef>,
    options: &[(String, String)],
) -> Result<Arc<LogicalPlan>> {
    let stored: Vec<ast::ColumnDef> = elements
        .iter()
        .filter_map(|e| match e {
            TableElement::Column(c) => Some(c.clone()),
            TableElement::Computed(..) => None,
        })
        .collect();
    if stored.is_empty() {
        return Err(SluiceError::plan(format!(
            "CREATE TABLE {name}: needs at least one stored (non-computed) column"
        )));
    }
    let source = connector_table(name, column_schema(&stored)?, options)?;
    let schema = PlanSchema::from_arrow(Some(name), &source.schema());
    let mut plan = Arc::new(LogicalPlan::Scan {
        table: name.to_string(),
        source,
        projection: None,
        filters: vec![],
        schema,
    });
    if elements
        .iter()
        .any(|e| matches!(e, TableElement::Computed(..)))
    {
        let mut planner = SqlPlanner::new(catalog);
        let input_schema = plan.schema().clone();
        let mut exprs = Vec::new();
        for e in elements {
            exprs.push(match e {
                TableElement::Column(c) => Expr::Column(Column {
                    relation: Some(name.to_string()),
                    name: ident(&c.name),
                }),
                TableElement::Computed(col, ast_expr) => {
                    let mut ctx = ExprCtx::new(&input_schema);
                    let e = planner.sql_to_expr(ast_expr, &mut ctx)?;
                    ctx.no_pending("computed columns")?;
                    Expr::Alias(Box::new(e), col.clone())
                }
            });
        }
        plan = Arc::new(LogicalPlan::project(plan, exprs)?);
        plan = Arc::new(LogicalPlan::alias(plan, name));
    }
    if let Some(w) = watermark {
        plan = Arc::new(LogicalPlan::watermark(
            plan,
            &w.column,
            watermark_delay_micros(w)?,
        )?);
    } else if let Some(pt) = proctime_column(elements) {
        // A processing-time attribute: its values are the clock when each batch is read,
        // so a watermark at the largest of them (no delay) is the processing-time clock
        // as the data sees it; windows over it fire as wall-clock time passes.
        plan = Arc::new(LogicalPlan::watermark(plan, &pt, 0)?);
    }
    Ok(plan)
}

/// The computed column `name AS PROCTIME()`, if the table has one.
fn proctime_column(elements: &[TableElement]) -> Option<String> {
    elements.iter().find_map(|e| match e {
        TableElement::Computed(name, expr) => match expr.as_ref() {
            ast::Expr::Function(f)
                if object_name(&f.name).eq_ignore_ascii_case("proctime")
                    && matches!(&f.args, ast::FunctionArguments::List(l) if l.args.is_empty()) =>
            {
                Some(name.clone())
            }
            _ => None,
        },
        _ => None,
    })
}

/// The delay of a bounded-out-of-orderness watermark expression: `column` (0) or `column -
/// INTERVAL ...` (the interval), in microseconds. Anything else is refused.
pub fn watermark_delay_micros(w: &WatermarkDef) -> Result<i64> {
    let refuse = || {
        SluiceError::unsupported(format!(
            "WATERMARK FOR {} AS {}: the watermark must be the column itself or the column \
             minus an INTERVAL (bounded out-of-orderness)",
            w.column, w.expr
        ))
    };
    let is_column = |e: &ast::Expr| matches!(e, ast::Expr::Identifier(i) if ident(i) == w.column);
    match w.expr.as_ref() {
        e if is_column(e) => Ok(0),
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Minus,
            right,
        } if is_column(left) => interval_micros(right).ok_or_else(refuse),
        _ => Err(refuse()),
    }
}

/// A constant `INTERVAL` of fixed length (days and smaller units) in microseconds.
pub fn interval_micros(e: &ast::Expr) -> Option<i64> {
    let ast::Expr::Interval(iv) = e else {
        return None;
    };
    let Ok(Expr::Literal(lit)) = interval_expr(iv) else {
        return None;
    };
    crate::logical::time::interval_scalar_micros(&lit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse;

    #[test]
    fn window_tvf_parses_as_table_function() {
        let s =
            parse("SELECT * FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))")
                .expect("parse");
        let SqlStatement::Standard(st) = &s[0] else {
            panic!("standard")
        };
        assert!(
            st.to_string().contains("TABLE(TUMBLE(bid, DESCRIPTOR(ts)"),
            "{st}"
        );
    }

    #[test]
    fn table_keyword_elsewhere_is_kept() {
        let s = parse("CREATE TABLE t (a INT)").expect("parse");
        assert!(matches!(&s[0], SqlStatement::Standard(_)));
    }

    #[test]
    fn flink_table_with_computed_column_and_watermark() {
        let s = parse(
            "CREATE TABLE t (id BIGINT, ts AS TO_TIMESTAMP_LTZ(id, 3), \
             WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'datagen')",
        )
        .expect("parse");
        let SqlStatement::CreateTimeTable {
            name,
            elements,
            watermark,
            options,
            ..
        } = &s[0]
        else {
            panic!("time table: {s:?}")
        };
        assert_eq!(name, "t");
        assert_eq!(elements.len(), 2);
        assert!(matches!(&elements[1], TableElement::Computed(n, _) if n == "ts"));
        let w = watermark.as_ref().expect("watermark");
        assert_eq!(watermark_delay_micros(w).expect("delay"), 5_000_000);
        assert_eq!(options[0], ("connector".to_string(), "datagen".to_string()));
    }

    #[test]
    fn unsupported_watermark_expressions_are_refused() {
        let s = parse("CREATE TABLE t (ts TIMESTAMP(3), WATERMARK FOR ts AS ts + INTERVAL '1' SECOND) WITH ('connector'='datagen')")
            .expect("parse");
        let SqlStatement::CreateTimeTable { watermark, .. } = &s[0] else {
            panic!("time table")
        };
        let e = watermark_delay_micros(watermark.as_ref().expect("w")).expect_err("refused");
        assert!(e.to_string().contains("bounded out-of-orderness"), "{e}");
    }
}
