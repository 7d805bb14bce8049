//! Metadata calls: `GetSqlInfo`, `GetCatalogs`, `GetDbSchemas`, `GetTables` and
//! `GetTableTypes`, answered from the session's catalog with arrow-flight's builders (which
//! apply the clients' filter patterns).
//!
//! Sluice has one namespace; it is presented as catalog [`CATALOG`], schema [`SCHEMA`].

use std::sync::LazyLock;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity, SupportedSqlGrammar,
};
use sluice::catalog::CatalogEntry;
use sluice::Session;
use tonic::Status;

use crate::wire_types::wire_schema;

/// The one catalog name Sluice reports.
pub const CATALOG: &str = "sluice";
/// The one schema name Sluice reports.
pub const SCHEMA: &str = "public";
/// Table type of base tables.
pub const TABLE: &str = "TABLE";
/// Table type of views.
pub const VIEW: &str = "VIEW";

static SQL_INFO: LazyLock<Result<SqlInfoData, String>> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Sluice");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "60.1");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, true);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        // Quoted names are kept exactly (case-sensitive); Flight SQL has no value for that.
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(
        SqlInfo::SqlSupportedGrammar,
        SupportedSqlGrammar::SqlCoreGrammar as i32,
    );
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.build().map_err(|e| e.to_string())
});

fn sql_info() -> Result<&'static SqlInfoData, Status> {
    SQL_INFO
        .as_ref()
        .map_err(|e| Status::internal(format!("server info table: {e}")))
}

/// Schema and rows of a `GetSqlInfo` request.
pub fn sql_info_batch(cmd: CommandGetSqlInfo) -> Result<(SchemaRef, RecordBatch), Status> {
    let builder = cmd.into_builder(sql_info()?);
    let schema = builder.schema();
    Ok((schema, builder.build()?))
}

/// Result schema of a `GetSqlInfo` request.
pub fn sql_info_schema(cmd: CommandGetSqlInfo) -> Result<SchemaRef, Status> {
    Ok(cmd.into_builder(sql_info()?).schema())
}

/// Schema and rows of `GetCatalogs`.
pub fn catalogs(cmd: CommandGetCatalogs) -> Result<(SchemaRef, RecordBatch), Status> {
    let mut b = cmd.into_builder();
    b.append(CATALOG);
    let schema = b.schema();
    Ok((schema, b.build()?))
}

/// Schema and rows of `GetDbSchemas`.
pub fn db_schemas(cmd: CommandGetDbSchemas) -> Result<(SchemaRef, RecordBatch), Status> {
    let mut b = cmd.into_builder();
    b.append(CATALOG, SCHEMA);
    let schema = b.schema();
    Ok((schema, b.build()?))
}

/// Schema and rows of `GetTableTypes`.
pub fn table_types(cmd: CommandGetTableTypes) -> Result<(SchemaRef, RecordBatch), Status> {
    let mut b = cmd.into_builder();
    b.append(TABLE);
    b.append(VIEW);
    let schema = b.schema();
    Ok((schema, b.build()?))
}

/// Schema and rows of `GetTables` (with each table's Arrow schema when asked for).
pub fn tables(
    session: &Session,
    cmd: CommandGetTables,
) -> Result<(SchemaRef, RecordBatch), Status> {
    let mut b = cmd.into_builder();
    let catalog = session.catalog();
    for name in catalog.names() {
        // A table dropped between listing and lookup is simply not reported.
        let Ok(entry) = catalog.get(&name) else {
            continue;
        };
        let (kind, schema) = match entry {
            CatalogEntry::Table(t) => (TABLE, t.schema()),
            CatalogEntry::View(plan) => (VIEW, plan.schema().to_arrow()),
        };
        b.append(CATALOG, SCHEMA, &name, kind, &wire_schema(&schema))?;
    }
    let schema = b.schema();
    Ok((schema, b.build()?))
}

/// Checks that a client's catalog / schema names (if any) are Sluice's.
pub fn check_namespace(catalog: Option<&str>, schema: Option<&str>) -> Result<(), Status> {
    if let Some(c) = catalog.filter(|c| !c.is_empty() && *c != CATALOG) {
        return Err(Status::not_found(format!(
            "catalog '{c}' does not exist: the only catalog is '{CATALOG}'"
        )));
    }
    if let Some(s) = schema.filter(|s| !s.is_empty() && *s != SCHEMA) {
        return Err(Status::not_found(format!(
            "schema '{s}' does not exist: the only schema is '{SCHEMA}'"
        )));
    }
    Ok(())
}
