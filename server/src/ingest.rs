//! Client-sent Arrow data: bulk ingest (`CommandStatementIngest`, ADBC's `adbc_ingest`) and
//! the parameter batches bound to prepared statements.
//!
//! Ingest is all or nothing: every batch is received and checked against the target table
//! before any row is added, so a schema mismatch, a NULL in a NOT NULL column or a broken
//! stream leaves the table exactly as it was.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use futures::TryStreamExt;
use sluice::catalog::memory::{check_schema, MemTable};
use sluice::catalog::CatalogEntry;
use sluice::{Scalar, Session};
use tonic::Status;

use crate::metadata::check_namespace;
use crate::status::flight_status;

/// Receives every batch of a `DoPut` stream (and its schema, which may come with no rows).
pub async fn receive(
    stream: PeekableFlightDataStream,
    what: &str,
) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
    let mut decoded =
        FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from));
    let mut batches = Vec::new();
    while let Some(b) = decoded.try_next().await.map_err(|e| {
        flight_status(e, |m| {
            Status::invalid_argument(format!("cannot decode {what}: {m}"))
        })
    })? {
        batches.push(b);
    }
    let schema = decoded
        .schema()
        .cloned()
        .or_else(|| batches.first().map(RecordBatch::schema))
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    Ok((schema, batches))
}

/// Parameter rows of prepared-statement batches: one `Vec<Scalar>` per row.
pub fn parameter_rows(batches: &[RecordBatch]) -> Vec<Vec<Scalar>> {
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |row| {
                // A copy of its own, so the client's whole batch is not kept alive.
                b.columns()
                    .iter()
                    .map(|c| {
                        let one = c.slice(row, 1);
                        Scalar(arrow::compute::concat(&[one.as_ref()]).unwrap_or(one))
                    })
                    .collect()
            })
        })
        .collect()
}

/// Applies a bulk ingest; returns the number of rows added.
pub fn ingest(
    session: &Session,
    cmd: &CommandStatementIngest,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<i64, Status> {
    check_namespace(cmd.catalog.as_deref(), cmd.schema.as_deref())?;
    let name = cmd.table.as_str();
    if name.is_empty() {
        return Err(Status::invalid_argument("ingest needs a table name"));
    }
    let options = cmd.table_definition_options.unwrap_or_default();
    let if_exists =
        TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified);
    let if_not_exist = TableNotExistOption::try_from(options.if_not_exist)
        .unwrap_or(TableNotExistOption::Unspecified);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let table = |schema: SchemaRef, batches: Vec<RecordBatch>| -> Result<CatalogEntry, Status> {
        let t = MemTable::try_new(schema, batches)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(CatalogEntry::Table(Arc::new(t)))
    };
    if !session.catalog().contains(name) {
        if if_not_exist == TableNotExistOption::Fail {
            return Err(Status::not_found(format!(
                "table '{name}' does not exist (ingest mode 'append' does not create it)"
            )));
        }
        // Created atomically: when another client created it meanwhile, go on as if it
        // had existed (append, replace or fail, as the request says).
        let created = session
            .catalog()
            .register_new(name, table(schema.clone(), batches.clone())?)
            .map_err(|e| Status::internal(e.to_string()))?;
        if created {
            return Ok(rows as i64);
        }
    }
    match if_exists {
        TableExistsOption::Replace => {
            session
                .catalog()
                .register(name, table(schema, batches)?)
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok(rows as i64)
        }
        TableExistsOption::Append => {
            let CatalogEntry::Table(table) = session
                .catalog()
                .get(name)
                .map_err(|e| Status::not_found(e.to_string()))?
            else {
                return Err(Status::invalid_argument(format!(
                    "'{name}' is a view: ingest needs a table"
                )));
            };
            let Some(mem) = table.as_any().downcast_ref::<MemTable>() else {
                return Err(Status::invalid_argument(format!(
                    "cannot ingest into {}: only tables created in this server take rows",
                    table.describe()
                )));
            };
            let target = table.schema();
            check_schema(&target, &schema).map_err(|e| {
                Status::invalid_argument(format!(
                    "cannot ingest into '{name}': {e}; nothing was ingested"
                ))
            })?;
            let batches = batches
                .into_iter()
                .map(|b| conform(name, &target, b))
                .collect::<Result<Vec<_>, Status>>()?;
            mem.append(batches)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            Ok(rows as i64)
        }
        _ => Err(Status::already_exists(format!(
            "table '{name}' already exists (use ingest mode 'append' or 'replace')"
        ))),
    }
}

/// `batch` relabelled with the table's schema, refusing NULLs in NOT NULL columns.
fn conform(name: &str, want: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch, Status> {
    for (f, c) in want.fields().iter().zip(batch.columns()) {
        if !f.is_nullable() && c.null_count() > 0 {
            return Err(Status::invalid_argument(format!(
                "NULL in NOT NULL column {} of table '{name}'; nothing was ingested",
                f.name()
            )));
        }
    }
    RecordBatch::try_new(want.clone(), batch.columns().to_vec())
        .map_err(|e| Status::invalid_argument(format!("cannot ingest into '{name}': {e}")))
}
