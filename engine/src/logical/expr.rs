//! Logical expressions: what a query computes, independent of how. Built by the SQL
//! planner and the DataFrame API (`col`, `lit`, operators, functions) alike.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};

pub use crate::logical::window_func::{WindowFrame, WindowFunc};

/// A reference to a column, optionally qualified by its relation (`t.a`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// Table name or alias.
    pub relation: Option<String>,
    /// Column name.
    pub name: String,
}

impl Column {
    /// An unqualified or `relation.name` column parsed from a dotted string.
    pub fn from_name(name: &str) -> Self {
        match name.split_once('.') {
            Some((r, n)) => Column {
                relation: Some(r.to_string()),
                name: n.to_string(),
            },
            None => Column {
                relation: None,
                name: name.to_string(),
            },
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.relation {
            Some(r) => write!(f, "{r}.{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// A constant: a one-element Arrow array, so every Arrow type is a literal type and
/// kernels take it directly as a scalar.
#[derive(Debug, Clone)]
pub struct Scalar(pub ArrayRef);

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_data() == other.0.to_data()
    }
}

impl Scalar {
    /// The SQL NULL literal (type Null).
    pub fn null() -> Self {
        Scalar(new_null_array(&DataType::Null, 1))
    }
    /// The literal's type.
    pub fn data_type(&self) -> &DataType {
        self.0.data_type()
    }
    /// True for a NULL of any type (type Null included: its array has no null buffer).
    pub fn is_null(&self) -> bool {
        self.0.logical_nulls().is_some_and(|n| n.is_null(0))
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            return write!(f, "NULL");
        }
        let opts = FormatOptions::default();
        match ArrayFormatter::try_new(self.0.as_ref(), &opts) {
            Ok(fmtr) => match self.0.data_type() {
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                    write!(f, "'{}'", fmtr.value(0))
                }
                DataType::Date32 => write!(f, "DATE '{}'", fmtr.value(0)),
                _ => write!(f, "{}", fmtr.value(0)),
            },
            Err(_) => write!(f, "<{}>", self.0.data_type()),
        }
    }
}

/// Values that convert into a literal expression.
pub trait Literal {
    /// The literal.
    fn lit(self) -> Expr;
}
impl Literal for i64 {
    fn lit(self) -> Expr {
        Expr::Literal(Scalar(Arc::new(Int64Array::from(vec![self]))))
    }
}
impl Literal for i32 {
    fn lit(self) -> Expr {
        i64::from(self).lit()
    }
}
impl Literal for f64 {
    fn lit(self) -> Expr {
        Expr::Literal(Scalar(Arc::new(Float64Array::from(vec![self]))))
    }
}
impl Literal for bool {
    fn lit(self) -> Expr {
        Expr::Literal(Scalar(Arc::new(BooleanArray::from(vec![self]))))
    }
}
impl Literal for &str {
    fn lit(self) -> Expr {
        Expr::Literal(Scalar(Arc::new(StringArray::from(vec![self]))))
    }
}
impl Literal for String {
    fn lit(self) -> Expr {
        self.as_str().lit()
    }
}
impl Literal for Scalar {
    fn lit(self) -> Expr {
        Expr::Literal(self)
    }
}

/// A date literal from days since 1970-01-01.
pub fn date_lit(days: i32) -> Expr {
    Expr::Literal(Scalar(Arc::new(Date32Array::from(vec![days]))))
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Multiply,
    /// `/`
    Divide,
    /// `%`
    Modulo,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND` (three-valued)
    And,
    /// `OR` (three-valued)
    Or,
    /// `||` string concatenation
    Concat,
}

impl BinaryOp {
    /// True for `= <> < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
    /// True for `+ - * / %`.
    pub fn is_arithmetic(self) -> bool {
        matches!(
            self,
            BinaryOp::Plus
                | BinaryOp::Minus
                | BinaryOp::Multiply
                | BinaryOp::Divide
                | BinaryOp::Modulo
        )
    }
    /// The operator with its operands swapped (`a < b` ⇔ `b > a`), for comparisons.
    pub fn swap(self) -> Option<BinaryOp> {
        Some(match self {
            BinaryOp::Eq => BinaryOp::Eq,
            BinaryOp::NotEq => BinaryOp::NotEq,
            BinaryOp::Lt => BinaryOp::Gt,
            BinaryOp::LtEq => BinaryOp::GtEq,
            BinaryOp::Gt => BinaryOp::Lt,
            BinaryOp::GtEq => BinaryOp::LtEq,
            _ => return None,
        })
    }
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            BinaryOp::Plus => "+",
            BinaryOp::Minus => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
        };
        f.write_str(s)
    }
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFunc {
    /// `COUNT(x)` / `COUNT(*)`
    Count,
    /// `SUM(x)`
    Sum,
    /// `AVG(x)`
    Avg,
    /// `MIN(x)`
    Min,
    /// `MAX(x)`
    Max,
}

impl AggFunc {
    /// Looks an aggregate up by SQL name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_lowercase().as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "avg" | "mean" => AggFunc::Avg,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            _ => return None,
        })
    }
}

impl fmt::Display for AggFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
        })
    }
}

/// An ORDER BY item.
#[derive(Debug, Clone, PartialEq)]
pub struct SortExpr {
    /// What to sort by.
    pub expr: Expr,
    /// Ascending (default) or descending.
    pub asc: bool,
    /// NULLs before non-NULLs; SQL's default is NULLS LAST for ASC and NULLS FIRST for DESC.
    pub nulls_first: bool,
}

impl SortExpr {
    /// Direction and NULL placement as Arrow's sort kernels take them.
    pub fn options(&self) -> arrow::compute::SortOptions {
        arrow::compute::SortOptions {
            descending: !self.asc,
            nulls_first: self.nulls_first,
        }
    }
}

impl fmt::Display for SortExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} NULLS {}",
            self.expr,
            if self.asc { "ASC" } else { "DESC" },
            if self.nulls_first { "FIRST" } else { "LAST" }
        )
    }
}

/// A logical expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the input.
    Column(Column),
    /// A column of an enclosing query (only inside correlated subqueries while planning).
    OuterColumn(Column),
    /// A constant.
    Literal(Scalar),
    /// `expr AS name`
    Alias(Box<Expr>, String),
    /// `left op right`
    Binary {
        /// Left operand.
        left: Box<Expr>,
        /// Operator.
        op: BinaryOp,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `NOT expr`
    Not(Box<Expr>),
    /// `-expr`
    Negative(Box<Expr>),
    /// `expr IS NULL`
    IsNull(Box<Expr>),
    /// `expr IS NOT NULL`
    IsNotNull(Box<Expr>),
    /// `expr [NOT] [I]LIKE pattern`
    Like {
        /// NOT LIKE.
        negated: bool,
        /// The string tested.
        expr: Box<Expr>,
        /// The pattern (`%`, `_`).
        pattern: Box<Expr>,
        /// ILIKE.
        case_insensitive: bool,
    },
    /// `expr [NOT] IN (list)`
    InList {
        /// The value tested.
        expr: Box<Expr>,
        /// The candidates.
        list: Vec<Expr>,
        /// NOT IN.
        negated: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`
    Case {
        /// The simple-CASE operand.
        operand: Option<Box<Expr>>,
        /// WHEN/THEN pairs in order.
        when_then: Vec<(Expr, Expr)>,
        /// ELSE (NULL when absent).
        else_expr: Option<Box<Expr>>,
    },
    /// `CAST(expr AS type)`
    Cast {
        /// The value.
        expr: Box<Expr>,
        /// Target type.
        data_type: DataType,
    },
    /// A scalar function call; names are resolved by the physical function registry.
    Function {
        /// Lower-case function name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// An aggregate call (only below/inside an Aggregate node).
    Aggregate {
        /// The function.
        func: AggFunc,
        /// Arguments (empty for `COUNT(*)`).
        args: Vec<Expr>,
        /// `DISTINCT`.
        distinct: bool,
    },
    /// A window function call (only inside a Window node).
    Window {
        /// The function.
        func: WindowFunc,
        /// Arguments.
        args: Vec<Expr>,
        /// PARTITION BY.
        partition_by: Vec<Expr>,
        /// ORDER BY.
        order_by: Vec<SortExpr>,
        /// An explicit `ROWS` or `RANGE` frame (aggregates only); `None`: the default frame.
        frame: Option<WindowFrame>,
    },
}

/// A column reference by (optionally dotted) name.
pub fn col(name: &str) -> Expr {
    Expr::Column(Column::from_name(name))
}

/// A literal.
pub fn lit(value: impl Literal) -> Expr {
    value.lit()
}

/// A scalar function call.
pub fn func(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function {
        name: name.to_lowercase(),
        args,
    }
}

macro_rules! agg_ctor {
    ($name:ident, $f:expr) => {
        #[doc = concat!("The `", stringify!($name), "` aggregate.")]
        pub fn $name(e: Expr) -> Expr {
            Expr::Aggregate {
                func: $f,
                args: vec![e],
                distinct: false,
            }
        }
    };
}
agg_ctor!(sum, AggFunc::Sum);
agg_ctor!(avg, AggFunc::Avg);
agg_ctor!(min, AggFunc::Min);
agg_ctor!(max, AggFunc::Max);
agg_ctor!(count, AggFunc::Count);

/// `COUNT(*)`.
pub fn count_star() -> Expr {
    Expr::Aggregate {
        func: AggFunc::Count,
        args: vec![],
        distinct: false,
    }
}

/// `COUNT(DISTINCT e)`.
pub fn count_distinct(e: Expr) -> Expr {
    Expr::Aggregate {
        func: AggFunc::Count,
        args: vec![e],
        distinct: true,
    }
}

impl Expr {
    fn binary(self, op: BinaryOp, other: Expr) -> Expr {
        Expr::Binary {
            left: Box::new(self),
            op,
            right: Box::new(other),
        }
    }
    /// `self = other`
    pub fn eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Eq, other)
    }
    /// `self <> other`
    pub fn not_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::NotEq, other)
    }
    /// `self < other`
    pub fn lt(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Lt, other)
    }
    /// `self <= other`
    pub fn lt_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::LtEq, other)
    }
    /// `self > other`
    pub fn gt(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Gt, other)
    }
    /// `self >= other`
    pub fn gt_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::GtEq, other)
    }
    /// `self AND other`
    pub fn and(self, other: Expr) -> Expr {
        self.binary(BinaryOp::And, other)
    }
    /// `self OR other`
    pub fn or(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Or, other)
    }
    /// `self IS NULL`
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }
    /// `self IS NOT NULL`
    pub fn is_not_null(self) -> Expr {
        Expr::IsNotNull(Box::new(self))
    }
    /// `self LIKE pattern`
    pub fn like(self, pattern: Expr) -> Expr {
        Expr::Like {
            negated: false,
            expr: Box::new(self),
            pattern: Box::new(pattern),
            case_insensitive: false,
        }
    }
    /// `self BETWEEN low AND high`
    pub fn between(self, low: Expr, high: Expr) -> Expr {
        self.clone().gt_eq(low).and(self.lt_eq(high))
    }
    /// `self IN (list)`
    pub fn in_list(self, list: Vec<Expr>, negated: bool) -> Expr {
        Expr::InList {
            expr: Box::new(self),
            list,
            negated,
        }
    }
    /// `CAST(self AS t)`
    pub fn cast(self, data_type: DataType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            data_type,
        }
    }
    /// `self AS name`
    pub fn alias(self, name: &str) -> Expr {
        Expr::Alias(Box::new(self.unalias()), name.to_string())
    }
    /// Ascending sort key.
    pub fn sort_asc(self) -> SortExpr {
        SortExpr {
            expr: self,
            asc: true,
            nulls_first: false,
        }
    }
    /// Descending sort key.
    pub fn sort_desc(self) -> SortExpr {
        SortExpr {
            expr: self,
            asc: false,
            nulls_first: true,
        }
    }

    /// The column this expression names, through any aliases (without copying it).
    pub fn as_column(&self) -> Option<&Column> {
        match self {
            Expr::Alias(e, _) => e.as_column(),
            Expr::Column(c) => Some(c),
            _ => None,
        }
    }

    /// The expression without a top-level alias.
    pub fn unalias(self) -> Expr {
        match self {
            Expr::Alias(e, _) => e.unalias(),
            e => e,
        }
    }

    /// The output column name: the alias, the column name, or the expression's text.
    pub fn output_name(&self) -> String {
        match self {
            Expr::Alias(_, name) => name.clone(),
            Expr::Column(c) => c.name.clone(),
            other => other.to_string(),
        }
    }

    /// True when the expression contains an aggregate call.
    pub fn contains_aggregate(&self) -> bool {
        self.any(&mut |e| matches!(e, Expr::Aggregate { .. }))
    }

    /// True when the expression contains a window call.
    pub fn contains_window(&self) -> bool {
        self.any(&mut |e| matches!(e, Expr::Window { .. }))
    }

    /// True when the expression refers to an enclosing query.
    pub fn contains_outer(&self) -> bool {
        self.any(&mut |e| matches!(e, Expr::OuterColumn(_)))
    }
}

macro_rules! expr_op {
    ($trait:ident, $method:ident, $op:expr) => {
        impl std::ops::$trait for Expr {
            type Output = Expr;
            fn $method(self, other: Expr) -> Expr {
                self.binary($op, other)
            }
        }
    };
}
expr_op!(Add, add, BinaryOp::Plus);
expr_op!(Sub, sub, BinaryOp::Minus);
expr_op!(Mul, mul, BinaryOp::Multiply);
expr_op!(Div, div, BinaryOp::Divide);
expr_op!(Rem, rem, BinaryOp::Modulo);

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

/// Splits a predicate into its top-level `AND` terms.
pub fn split_conjunction(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => {
            split_conjunction(*left, out);
            split_conjunction(*right, out);
        }
        Expr::Alias(e, _) => split_conjunction(*e, out),
        other => out.push(other),
    }
}

/// Joins predicates with `AND`; `None` for an empty list.
pub fn conjunction(preds: impl IntoIterator<Item = Expr>) -> Option<Expr> {
    preds.into_iter().reduce(|a, b| a.and(b))
}

fn fmt_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(c) => write!(f, "{c}"),
            Expr::OuterColumn(c) => write!(f, "outer({c})"),
            Expr::Literal(s) => write!(f, "{s}"),
            Expr::Alias(e, n) => write!(f, "{e} AS {n}"),
            Expr::Binary { left, op, right } => write!(f, "({left} {op} {right})"),
            Expr::Not(e) => write!(f, "NOT {e}"),
            Expr::Negative(e) => write!(f, "(- {e})"),
            Expr::IsNull(e) => write!(f, "{e} IS NULL"),
            Expr::IsNotNull(e) => write!(f, "{e} IS NOT NULL"),
            Expr::Like {
                negated,
                expr,
                pattern,
                case_insensitive,
            } => write!(
                f,
                "{expr} {}{} {pattern}",
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" }
            ),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                write!(f, "{expr} {}IN (", if *negated { "NOT " } else { "" })?;
                fmt_list(f, list)?;
                f.write_str(")")
            }
            Expr::Case {
                operand,
                when_then,
                else_expr,
            } => {
                f.write_str("CASE")?;
                if let Some(o) = operand {
                    write!(f, " {o}")?;
                }
                for (w, t) in when_then {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                if let Some(e) = else_expr {
                    write!(f, " ELSE {e}")?;
                }
                f.write_str(" END")
            }
            Expr::Cast { expr, data_type } => write!(f, "CAST({expr} AS {data_type})"),
            Expr::Function { name, args } => {
                write!(f, "{name}(")?;
                fmt_list(f, args)?;
                f.write_str(")")
            }
            Expr::Aggregate {
                func,
                args,
                distinct,
            } => {
                write!(f, "{func}({}", if *distinct { "DISTINCT " } else { "" })?;
                if args.is_empty() {
                    f.write_str("*")?;
                }
                fmt_list(f, args)?;
                f.write_str(")")
            }
            Expr::Window {
                func,
                args,
                partition_by,
                order_by,
                frame,
            } => {
                write!(f, "{func}(")?;
                fmt_list(f, args)?;
                f.write_str(") OVER (")?;
                if !partition_by.is_empty() {
                    f.write_str("PARTITION BY ")?;
                    fmt_list(f, partition_by)?;
                }
                if !order_by.is_empty() {
                    f.write_str(" ORDER BY ")?;
                    for (i, s) in order_by.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{s}")?;
                    }
                }
                if let Some(frame) = frame {
                    write!(f, " {frame}")?;
                }
                f.write_str(")")
            }
        }
    }
}
