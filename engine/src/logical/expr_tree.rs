//! Traversal and rewriting of expression trees: visiting children, bottom-up and
//! top-down rewrites, and the queries built on them (referenced columns, "contains").

use crate::logical::expr::{Column, Expr, SortExpr};

impl Expr {
    /// The direct sub-expressions.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Column(_) | Expr::OuterColumn(_) | Expr::Literal(_) => vec![],
            Expr::Alias(e, _)
            | Expr::Not(e)
            | Expr::Negative(e)
            | Expr::IsNull(e)
            | Expr::IsNotNull(e)
            | Expr::Cast { expr: e, .. } => vec![e],
            Expr::Binary { left, right, .. } => vec![left, right],
            Expr::Like { expr, pattern, .. } => vec![expr, pattern],
            Expr::InList { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
            Expr::Case {
                operand,
                when_then,
                else_expr,
            } => {
                let mut v: Vec<&Expr> = operand.iter().map(|e| &**e).collect();
                for (w, t) in when_then {
                    v.push(w);
                    v.push(t);
                }
                v.extend(else_expr.iter().map(|e| &**e));
                v
            }
            Expr::Function { args, .. } | Expr::Aggregate { args, .. } => args.iter().collect(),
            Expr::Window {
                args,
                partition_by,
                order_by,
                ..
            } => args
                .iter()
                .chain(partition_by)
                .chain(order_by.iter().map(|s| &s.expr))
                .collect(),
        }
    }

    /// Rebuilds the expression bottom-up: `f` sees each node after its children were rewritten.
    pub fn transform_up<E>(self, f: &mut impl FnMut(Expr) -> Result<Expr, E>) -> Result<Expr, E> {
        let rebuilt = self.map_children(&mut |c| c.transform_up(f))?;
        f(rebuilt)
    }

    /// Rewrites top-down: when `f` returns `Some`, that replaces the node and its subtree is not
    /// visited further; otherwise the children are visited.
    pub fn transform_down<E>(
        self,
        f: &mut impl FnMut(&Expr) -> Result<Option<Expr>, E>,
    ) -> Result<Expr, E> {
        if let Some(replaced) = f(&self)? {
            return Ok(replaced);
        }
        self.map_children(&mut |c| c.transform_down(f))
    }

    /// Applies `f` to each direct child.
    pub fn map_children<E>(self, f: &mut impl FnMut(Expr) -> Result<Expr, E>) -> Result<Expr, E> {
        let bx = |b: Box<Expr>,
                  f: &mut dyn FnMut(Expr) -> Result<Expr, E>|
         -> Result<Box<Expr>, E> { Ok(Box::new(f(*b)?)) };
        Ok(match self {
            e @ (Expr::Column(_) | Expr::OuterColumn(_) | Expr::Literal(_)) => e,
            Expr::Alias(e, n) => Expr::Alias(bx(e, f)?, n),
            Expr::Not(e) => Expr::Not(bx(e, f)?),
            Expr::Negative(e) => Expr::Negative(bx(e, f)?),
            Expr::IsNull(e) => Expr::IsNull(bx(e, f)?),
            Expr::IsNotNull(e) => Expr::IsNotNull(bx(e, f)?),
            Expr::Cast { expr, data_type } => Expr::Cast {
                expr: bx(expr, f)?,
                data_type,
            },
            Expr::Binary { left, op, right } => Expr::Binary {
                left: bx(left, f)?,
                op,
                right: bx(right, f)?,
            },
            Expr::Like {
                negated,
                expr,
                pattern,
                case_insensitive,
            } => Expr::Like {
                negated,
                expr: bx(expr, f)?,
                pattern: bx(pattern, f)?,
                case_insensitive,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: bx(expr, f)?,
                list: list.into_iter().map(&mut *f).collect::<Result<_, E>>()?,
                negated,
            },
            Expr::Case {
                operand,
                when_then,
                else_expr,
            } => Expr::Case {
                operand: operand.map(|o| bx(o, f)).transpose()?,
                when_then: when_then
                    .into_iter()
                    .map(|(w, t)| Ok((f(w)?, f(t)?)))
                    .collect::<Result<_, E>>()?,
                else_expr: else_expr.map(|e| bx(e, f)).transpose()?,
            },
            Expr::Function { name, args } => Expr::Function {
                name,
                args: args.into_iter().map(&mut *f).collect::<Result<_, E>>()?,
            },
            Expr::Aggregate {
                func,
                args,
                distinct,
            } => Expr::Aggregate {
                func,
                args: args.into_iter().map(&mut *f).collect::<Result<_, E>>()?,
                distinct,
            },
            Expr::Window {
                func,
                args,
                partition_by,
                order_by,
                frame,
            } => Expr::Window {
                func,
                frame,
                args: args.into_iter().map(&mut *f).collect::<Result<_, E>>()?,
                partition_by: partition_by
                    .into_iter()
                    .map(&mut *f)
                    .collect::<Result<_, E>>()?,
                order_by: order_by
                    .into_iter()
                    .map(|s| {
                        Ok(SortExpr {
                            expr: f(s.expr)?,
                            ..s
                        })
                    })
                    .collect::<Result<_, E>>()?,
            },
        })
    }

    /// Visits every node, parents before children.
    pub fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        for c in self.children() {
            c.walk(f);
        }
    }

    /// True when any node satisfies `pred`.
    pub fn any(&self, pred: &mut impl FnMut(&Expr) -> bool) -> bool {
        if pred(self) {
            return true;
        }
        self.children().into_iter().any(|c| c.any(pred))
    }

    /// Every column referenced (inner columns only).
    pub fn columns(&self) -> Vec<Column> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Column(c) = e {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        });
        out
    }
}
