//! Qualified schemas of logical plans: every field carries the relation (table or alias)
//! it came from, so `t.a` and `s.a` stay apart through joins.

use std::sync::Arc;

use arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};

use crate::error::{did_you_mean, nearest, Result, SluiceError};
use crate::logical::expr::Column;

/// A field and the relation it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct QField {
    /// Table name or alias; `None` for computed columns.
    pub qualifier: Option<String>,
    /// The Arrow field.
    pub field: FieldRef,
}

impl QField {
    /// The column that refers to this field.
    pub fn column(&self) -> Column {
        Column {
            relation: self.qualifier.clone(),
            name: self.field.name().clone(),
        }
    }
}

/// The output schema of a logical plan node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanSchema {
    fields: Vec<QField>,
}

impl PlanSchema {
    /// A schema from qualified fields.
    pub fn new(fields: Vec<QField>) -> Self {
        Self { fields }
    }

    /// An Arrow schema whose fields all belong to `qualifier`.
    pub fn from_arrow(qualifier: Option<&str>, schema: &Schema) -> Self {
        Self::new(
            schema
                .fields()
                .iter()
                .map(|f| QField {
                    qualifier: qualifier.map(str::to_string),
                    field: f.clone(),
                })
                .collect(),
        )
    }

    /// The fields in order.
    pub fn fields(&self) -> &[QField] {
        &self.fields
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The unqualified Arrow schema (names may repeat).
    pub fn to_arrow(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.fields
                .iter()
                .map(|f| f.field.clone())
                .collect::<Vec<_>>(),
        ))
    }

    /// The fields of `self` followed by those of `other` (a join's output).
    pub fn join(&self, other: &PlanSchema) -> PlanSchema {
        let mut fields = self.fields.clone();
        fields.extend(other.fields.iter().cloned());
        PlanSchema::new(fields)
    }

    /// Every field requalified as `alias` (a table alias or derived table name).
    pub fn with_qualifier(&self, alias: &str) -> PlanSchema {
        PlanSchema::new(
            self.fields
                .iter()
                .map(|f| QField {
                    qualifier: Some(alias.to_string()),
                    field: f.field.clone(),
                })
                .collect(),
        )
    }

    /// Every field made nullable (the null-supplying side of an outer join).
    pub fn nullable(&self) -> PlanSchema {
        PlanSchema::new(
            self.fields
                .iter()
                .map(|f| QField {
                    qualifier: f.qualifier.clone(),
                    field: Arc::new(Field::clone(&f.field).with_nullable(true)),
                })
                .collect(),
        )
    }

    /// Where `col` is, or `None` when absent. Errors when the name is ambiguous.
    pub fn find(&self, col: &Column) -> Result<Option<usize>> {
        let mut found = None;
        for (i, f) in self.fields.iter().enumerate() {
            let name_matches = f.field.name() == &col.name;
            let rel_matches = match (&col.relation, &f.qualifier) {
                (None, _) => true,
                (Some(r), Some(q)) => r == q,
                (Some(_), None) => false,
            };
            if name_matches && rel_matches {
                if found.is_some() {
                    return Err(SluiceError::plan(format!(
                        "column reference '{col}' is ambiguous; qualify it with a table name"
                    )));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }

    /// Where `col` is; a "not found" error names the closest known columns.
    pub fn index_of(&self, col: &Column) -> Result<usize> {
        self.find(col)?.ok_or_else(|| self.not_found(col))
    }

    /// The error for a column that is not in this schema.
    pub fn not_found(&self, col: &Column) -> SluiceError {
        // Compare like with like: bare names for a bare reference, qualified otherwise.
        let names: Vec<String> = self
            .fields
            .iter()
            .map(|f| {
                if col.relation.is_some() {
                    f.column().to_string()
                } else {
                    f.field.name().clone()
                }
            })
            .collect();
        let hints: Vec<String> = nearest(&col.to_string(), names.iter().map(String::as_str), 3)
            .into_iter()
            .map(|h| {
                self.fields
                    .iter()
                    .find(|f| *f.field.name() == h || f.column().to_string() == h)
                    .map_or(h.clone(), |f| f.column().to_string())
            })
            .collect();
        SluiceError::plan(format!("column '{col}' not found{}", did_you_mean(&hints)))
    }

    /// The field at `i`.
    pub fn field(&self, i: usize) -> &QField {
        &self.fields[i]
    }
}
