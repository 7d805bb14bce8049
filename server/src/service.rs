//! The Flight SQL service: arrow-flight's [`FlightSqlService`] over a shared [`Session`].
//!
//! * Statements: `GetFlightInfo(CommandStatementQuery)` plans (DDL takes effect there) and
//!   parks the plan; `DoGet` streams it while it runs.
//! * Prepared statements: `CreatePreparedStatement` parses and, for queries, plans with NULL
//!   parameters to report the result schema; `DoPut` binds parameter rows; each row runs
//!   once (a query's results are concatenated).
//! * Updates (`CommandStatementUpdate`, prepared updates) and bulk ingest return row counts.
//! * Metadata calls are answered from the catalog ([`crate::metadata`]).
//! * Custom action `sluice.active_queries` returns `{"active_queries": N}` as JSON.

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use futures::stream::{self, BoxStream, Stream, StreamExt};
use prost::Message;
use sluice::sql::{parse, SqlStatement};
use sluice::{DataFrame, Scalar, Session, SluiceError};
use sqlparser::ast::Statement;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Authenticator;
use crate::ingest::{ingest, parameter_rows, receive};
use crate::metadata;
use crate::queries::{encode_one, Prepared, QueryRegistry};
use crate::status::blocking;
use crate::wire_types::wire_schema;

/// Most parameter rows one execution of a prepared query may bind.
const MAX_QUERY_PARAMETER_ROWS: usize = 1024;

/// Name of the custom action reporting how many results are streaming.
pub const ACTIVE_QUERIES_ACTION: &str = "sluice.active_queries";

/// The Flight SQL service of one server.
#[derive(Clone)]
pub struct SluiceFlightSql {
    session: Session,
    auth: Arc<Authenticator>,
    queries: Arc<QueryRegistry>,
}

type FlightDataStream = BoxStream<'static, Result<arrow_flight::FlightData, Status>>;

impl SluiceFlightSql {
    /// A service over `session`, authenticating with `auth`.
    pub fn new(session: Session, auth: Arc<Authenticator>, queries: Arc<QueryRegistry>) -> Self {
        Self {
            session,
            auth,
            queries,
        }
    }

    /// Plans `sql` with one parameter row (DDL runs here) on a blocking thread.
    async fn plan(&self, sql: String, params: Vec<Scalar>) -> Result<DataFrame, Status> {
        let session = self.session.clone();
        blocking(move || session.sql_with_params(&sql, &params)).await
    }

    /// Plans a prepared statement once per bound parameter row; queries are concatenated.
    async fn plan_prepared(&self, p: Prepared) -> Result<DataFrame, Status> {
        if p.params.len() > MAX_QUERY_PARAMETER_ROWS {
            return Err(Status::invalid_argument(format!(
                "{} parameter rows bound to a query: at most {MAX_QUERY_PARAMETER_ROWS} \
                 (each row runs the query once; use an update or ingest for bulk data)",
                p.params.len()
            )));
        }
        let rows = runs(p.params);
        let mut result: Option<DataFrame> = None;
        for row in rows {
            let df = self.plan(p.sql.clone(), row).await?;
            result = Some(match result {
                None => df,
                Some(prev) => prev.union(&df).map_err(crate::status::to_status)?,
            });
        }
        result.ok_or_else(|| Status::internal("no statement planned"))
    }

    /// A FlightInfo whose one endpoint fetches the plan parked for `df`.
    fn park(&self, df: DataFrame, descriptor: FlightDescriptor) -> Result<FlightInfo, Status> {
        let schema = wire_schema(&df.result_schema());
        let handle = self.queries.park(df)?;
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        }
        .as_any()
        .encode_to_vec();
        Ok(FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("cannot encode result schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
            .with_descriptor(descriptor)
            .with_total_records(-1)
            .with_ordered(true))
    }

    /// Runs an update and returns its row count (INSERT: rows added; DDL: 0; a query run
    /// as an update: -1, as Flight SQL has no count for it).
    async fn update(&self, sql: String, params: Vec<Vec<Scalar>>) -> Result<i64, Status> {
        let kind = last_statement_kind(&sql)?;
        let rows = runs(params);
        let mut total = 0i64;
        for row in rows {
            let df = self.plan(sql.clone(), row).await?;
            let batches = blocking(move || df.collect()).await?;
            if kind == Kind::Insert {
                total += batches
                    .first()
                    .and_then(|b| {
                        b.column(0)
                            .as_any()
                            .downcast_ref::<arrow::array::Int64Array>()
                            .map(|a| a.value(0))
                    })
                    .unwrap_or(0);
            } else if kind == Kind::Query {
                total = -1;
            }
        }
        Ok(total)
    }

    /// A FlightInfo whose ticket is `cmd` itself (metadata calls are answered at DoGet).
    fn command_info(
        cmd: Any,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(cmd.encode_to_vec())))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// Cancels every statement a FlightInfo's tickets refer to; true if any was found.
    fn cancel_info(&self, info: &FlightInfo) -> Result<bool, Status> {
        let mut found = false;
        for ep in &info.endpoint {
            let Some(ticket) = &ep.ticket else { continue };
            let Ok(any) = Any::decode(ticket.ticket.as_ref()) else {
                continue;
            };
            if let Ok(Some(t)) = any.unpack::<TicketStatementQuery>() {
                let handle = String::from_utf8_lossy(&t.statement_handle).to_string();
                found |= self.queries.cancel(&handle)?;
            }
        }
        Ok(found)
    }
}

/// One run per bound parameter row; a statement without bound rows runs once.
fn runs(params: Vec<Vec<Scalar>>) -> Vec<Vec<Scalar>> {
    if params.is_empty() {
        vec![vec![]]
    } else {
        params
    }
}

/// What the last statement of a request is (for the row count an update returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Query,
    Insert,
    Other,
}

fn last_statement_kind(sql: &str) -> Result<Kind, Status> {
    let statements = parse(sql).map_err(crate::status::to_status)?;
    Ok(match statements.last() {
        Some(SqlStatement::Standard(s)) => match **s {
            Statement::Query(_) => Kind::Query,
            Statement::Insert(_) => Kind::Insert,
            _ => Kind::Other,
        },
        _ => Kind::Other,
    })
}

/// True when `sql` is exactly one statement and it is a query (planning it runs nothing).
fn is_query(sql: &str) -> bool {
    match parse(sql).ok().as_deref() {
        Some([SqlStatement::Standard(s)]) => matches!(**s, Statement::Query(_)),
        _ => false,
    }
}

fn one_result(body: Vec<u8>) -> BoxStream<'static, Result<arrow_flight::Result, Status>> {
    stream::once(async move { Ok(arrow_flight::Result { body: body.into() }) }).boxed()
}

#[tonic::async_trait]
impl FlightSqlService for SluiceFlightSql {
    type FlightService = SluiceFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let token = self.auth.handshake(request.metadata())?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(stream::iter([Ok(reply)])));
        if !token.is_empty() {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Status::internal("token is not a valid header"))?;
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let df = self.plan(query.query, vec![]).await?;
        Ok(Response::new(self.park(df, request.into_inner())?))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let prepared = self.queries.prepared(&cmd.prepared_statement_handle)?;
        let df = self.plan_prepared(prepared).await?;
        Ok(Response::new(self.park(df, request.into_inner())?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        let df = self.queries.take(&handle)?;
        Ok(Response::new(self.queries.stream(&df)?))
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let prepared = self.queries.prepared(&cmd.prepared_statement_handle)?;
        let df = self.plan_prepared(prepared).await?;
        Ok(Response::new(self.queries.stream(&df)?))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Self::command_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Self::command_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Self::command_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Self::command_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata::sql_info_schema(query.clone())?;
        Self::command_info(query.as_any(), &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let (schema, batch) = metadata::catalogs(query)?;
        Ok(Response::new(encode_one(schema, batch)))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let (schema, batch) = metadata::db_schemas(query)?;
        Ok(Response::new(encode_one(schema, batch)))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let (schema, batch) = metadata::tables(&self.session, query)?;
        Ok(Response::new(encode_one(schema, batch)))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let (schema, batch) = metadata::table_types(query)?;
        Ok(Response::new(encode_one(schema, batch)))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let (schema, batch) = metadata::sql_info_batch(query)?;
        Ok(Response::new(encode_one(schema, batch)))
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.update(cmd.query, vec![]).await
    }

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let (schema, batches) = receive(request.into_inner(), "ingest data").await?;
        let session = self.session.clone();
        tokio::task::spawn_blocking(move || ingest(&session, &cmd, schema, batches))
            .await
            .map_err(|e| Status::internal(format!("ingest task failed: {e}")))?
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let (_, batches) = receive(request.into_inner(), "parameters").await?;
        self.queries
            .bind(&cmd.prepared_statement_handle, parameter_rows(&batches))?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(cmd.prepared_statement_handle),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let (_, batches) = receive(request.into_inner(), "parameters").await?;
        if !batches.is_empty() {
            let rows = parameter_rows(&batches);
            if rows.is_empty() {
                return Ok(0); // executemany with no rows
            }
            self.queries.bind(&cmd.prepared_statement_handle, rows)?;
        }
        let prepared = self.queries.prepared(&cmd.prepared_statement_handle)?;
        self.update(prepared.sql, prepared.params).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let sql = query.query;
        let param_count = Session::parameter_count(&sql).map_err(crate::status::to_status)?;
        // The result schema of a query, planned with NULL parameters. Unknown tables and
        // columns fail here; other statements, and queries whose types depend on the
        // parameters' types, report no columns.
        let dataset = if is_query(&sql) {
            let nulls = vec![Scalar::null(); param_count];
            let (session, text) = (self.session.clone(), sql.clone());
            let planned =
                tokio::task::spawn_blocking(move || session.sql_with_params(&text, &nulls))
                    .await
                    .map_err(|e| Status::internal(format!("planning task failed: {e}")))?;
            match planned {
                Ok(df) => wire_schema(&df.result_schema()),
                Err(SluiceError::Type(_) | SluiceError::NotSupported(_)) => {
                    Arc::new(Schema::empty())
                }
                Err(e) => return Err(crate::status::to_status(e)),
            }
        } else {
            Arc::new(Schema::empty())
        };
        let params = Schema::new(
            (1..=param_count)
                .map(|i| Field::new(format!("${i}"), DataType::Null, true))
                .collect::<Vec<_>>(),
        );
        let handle = self.queries.prepare(Prepared {
            sql,
            param_count,
            params: vec![],
        })?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: schema_bytes(&dataset)?,
            parameter_schema: schema_bytes(&params)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        self.queries.close(&query.prepared_statement_handle)
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        _request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info.as_ref())
            .map_err(|e| Status::invalid_argument(format!("cannot decode FlightInfo: {e}")))?;
        // Flight SQL's CancelResult: 1 = CANCELLED, 3 = NOT_CANCELLABLE (the enum is not
        // exported by arrow-flight).
        let result = if self.cancel_info(&info)? { 1 } else { 3 };
        Ok(ActionCancelQueryResult { result })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxStream<'static, Result<arrow_flight::Result, Status>>>, Status> {
        let action = request.into_inner();
        match action.r#type.as_str() {
            ACTIVE_QUERIES_ACTION => {
                let body = serde_json::json!({ "active_queries": self.queries.active() });
                Ok(Response::new(one_result(body.to_string().into_bytes())))
            }
            "CancelFlightInfo" => {
                let req = CancelFlightInfoRequest::decode(action.body.as_ref()).map_err(|e| {
                    Status::invalid_argument(format!("cannot decode CancelFlightInfoRequest: {e}"))
                })?;
                let found = match &req.info {
                    Some(info) => self.cancel_info(info)?,
                    None => false,
                };
                let status = if found {
                    CancelStatus::Cancelled
                } else {
                    CancelStatus::NotCancellable
                };
                let body = CancelFlightInfoResult {
                    status: status as i32,
                }
                .encode_to_vec();
                Ok(Response::new(one_result(body)))
            }
            other => Err(Status::invalid_argument(format!(
                "unknown action '{other}'"
            ))),
        }
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![
            Ok(ActionType {
                r#type: ACTIVE_QUERIES_ACTION.into(),
                description: "How many query results are streaming: {\"active_queries\": N}".into(),
            }),
            Ok(ActionType {
                r#type: "CancelFlightInfo".into(),
                description: "Cancel a statement whose results were not fetched yet".into(),
            }),
        ])
    }
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?;
    Ok(bytes)
}
