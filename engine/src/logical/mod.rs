//! The logical layer: expressions, qualified schemas and relational plans.

pub mod expr;
pub mod expr_tree;
pub mod plan;
pub mod schema;
pub mod time;
pub mod window_func;
