//! The logical layer: expressions, qualified schemas and relational plans.

pub mod expr;
pub mod plan;
pub mod schema;
