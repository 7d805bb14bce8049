//! The Flight SQL server end to end with arrow-flight's Rust client: auth, statements,
//! DDL, prepared statements, updates, ingest, metadata and error statuses.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetTables, CommandStatementIngest, SqlInfo, TableDefinitionOptions,
    TableExistsOption, TableNotExistOption,
};
use arrow_flight::{Action, FlightInfo};
use futures::TryStreamExt;
use sluice::Session;
use sluice_server::{serve, Credentials, ServerConfig};
use tonic::transport::Channel;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Starts a server with credentials on a free port; returns its address.
async fn start(session: Session) -> TestResult<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let config = ServerConfig::new("127.0.0.1:0".parse()?).with_credentials(Credentials {
        user: "ann".into(),
        password: "pw".into(),
    });
    tokio::spawn(async move {
        let _ = serve(
            session,
            config,
            move |addr| {
                let _ = tx.send(addr);
            },
            std::future::pending(),
        )
        .await;
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), rx).await??;
    Ok(format!("http://{addr}"))
}

async fn client(uri: &str) -> TestResult<FlightSqlServiceClient<Channel>> {
    let channel = Channel::from_shared(uri.to_string())?.connect().await?;
    let mut c = FlightSqlServiceClient::new(channel);
    c.handshake("ann", "pw").await?;
    Ok(c)
}

async fn fetch(
    c: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> TestResult<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for ep in info.endpoint {
        let ticket = ep.ticket.ok_or("endpoint without ticket")?;
        out.extend(c.do_get(ticket).await?.try_collect::<Vec<_>>().await?);
    }
    Ok(out)
}

async fn query(c: &mut FlightSqlServiceClient<Channel>, sql: &str) -> TestResult<Vec<RecordBatch>> {
    let info = c.execute(sql.to_string(), None).await?;
    fetch(c, info).await
}

fn ints(batches: &[RecordBatch], col: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(col).as_any().downcast_ref::<Int64Array>();
            a.map(|a| a.values().to_vec()).unwrap_or_default()
        })
        .collect()
}

fn people() -> TestResult<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
        ],
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_ddl_and_prepared_parameters() -> TestResult {
    let uri = start(Session::new()).await?;
    let mut c = client(&uri).await?;
    query(&mut c, "CREATE TABLE t (id BIGINT, name VARCHAR)").await?;
    let added = c
        .execute_update(
            "INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z')".into(),
            None,
        )
        .await?;
    assert_eq!(added, 3);
    let got = query(&mut c, "SELECT id * 10 FROM t ORDER BY id").await?;
    assert_eq!(ints(&got, 0), vec![10, 20, 30]);

    let mut stmt = c
        .prepare("SELECT id FROM t WHERE id >= ? ORDER BY id".into(), None)
        .await?;
    assert_eq!(stmt.parameter_schema()?.fields().len(), 1);
    assert_eq!(stmt.dataset_schema()?.field(0).name(), "id");
    for (min, want) in [(2i64, vec![2, 3]), (3, vec![3])] {
        let p = Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, true)]));
        stmt.set_parameters(RecordBatch::try_new(
            p,
            vec![Arc::new(Int64Array::from(vec![min]))],
        )?)?;
        let info = stmt.execute().await?;
        assert_eq!(ints(&fetch(&mut c, info).await?, 0), want);
    }
    stmt.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_for_everything_but_the_handshake() -> TestResult {
    let uri = start(Session::new()).await?;
    let channel = Channel::from_shared(uri.clone())?.connect().await?;
    let mut anonymous = FlightSqlServiceClient::new(channel.clone());
    let err = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .expect_err("no token");
    assert!(
        err.to_string().contains("authentication credentials"),
        "{err}"
    );
    let err = anonymous
        .do_action(Action::new(sluice_server::ACTIVE_QUERIES_ACTION, ""))
        .await
        .expect_err("no token");
    assert!(
        err.to_string().contains("authentication credentials"),
        "{err}"
    );
    let mut wrong = FlightSqlServiceClient::new(channel.clone());
    let err = wrong.handshake("ann", "nope").await.expect_err("refused");
    assert!(
        err.to_string().contains("invalid user name or password"),
        "{err}"
    );
    let mut forged = FlightSqlServiceClient::new(channel);
    forged.set_token("00ff".into());
    assert!(forged.execute("SELECT 1".into(), None).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_readable_statuses() -> TestResult {
    let uri = start(Session::new()).await?;
    let mut c = client(&uri).await?;
    let err = c.execute("SELEC 1".into(), None).await.expect_err("syntax");
    let text = err.to_string();
    assert!(
        text.contains("invalid argument") && text.contains("found: SELEC at Line: 1, Column: 1"),
        "{text}"
    );
    let err = c
        .execute("SELECT * FROM nowhere".into(), None)
        .await
        .expect_err("unknown table");
    assert!(
        err.to_string().contains("table 'nowhere' not found"),
        "{err}"
    );
    let err = c
        .prepare("SELECT * FROM nowhere WHERE x = ?".into(), None)
        .await
        .expect_err("unknown table at prepare");
    assert!(
        err.to_string().contains("table 'nowhere' not found"),
        "{err}"
    );
    // The connection is still good.
    assert_eq!(ints(&query(&mut c, "SELECT 41 + 1").await?, 0), vec![42]);
    Ok(())
}

fn ingest_cmd(table: &str, exists: TableExistsOption) -> CommandStatementIngest {
    CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create as i32,
            if_exists: exists as i32,
        }),
        table: table.into(),
        schema: None,
        catalog: None,
        temporary: false,
        transaction_id: None,
        options: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_creates_appends_and_refuses_mismatches() -> TestResult {
    let uri = start(Session::new()).await?;
    let mut c = client(&uri).await?;
    let batch = people()?;
    let n = c
        .execute_ingest(
            ingest_cmd("people", TableExistsOption::Fail),
            futures::stream::iter([Ok(batch.clone())]),
        )
        .await?;
    assert_eq!(n, 3);
    c.execute_ingest(
        ingest_cmd("people", TableExistsOption::Append),
        futures::stream::iter([Ok(batch.clone())]),
    )
    .await?;
    assert_eq!(
        ints(&query(&mut c, "SELECT COUNT(*) FROM people").await?, 0),
        vec![6]
    );

    let wrong = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec!["1"]))],
    )?;
    let err = c
        .execute_ingest(
            ingest_cmd("people", TableExistsOption::Append),
            futures::stream::iter([Ok(wrong)]),
        )
        .await
        .expect_err("mismatch");
    assert!(err.to_string().contains("schema mismatch"), "{err}");
    assert_eq!(
        ints(&query(&mut c, "SELECT COUNT(*) FROM people").await?, 0),
        vec![6]
    );
    let err = c
        .execute_ingest(
            ingest_cmd("people", TableExistsOption::Fail),
            futures::stream::iter([Ok(batch)]),
        )
        .await
        .expect_err("exists");
    assert!(err.to_string().contains("already exists"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_catalog_schema_and_tables() -> TestResult {
    let session = Session::new();
    session.register_batches("people", people()?.schema(), vec![people()?])?;
    session.sql("CREATE VIEW adults AS SELECT * FROM people WHERE id > 1")?;
    let uri = start(session).await?;
    let mut c = client(&uri).await?;
    let info = c.get_catalogs().await?;
    let cats = fetch(&mut c, info).await?;
    assert_eq!(cats[0].num_rows(), 1);
    let info = c
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await?;
    assert_eq!(fetch(&mut c, info).await?[0].num_rows(), 1);
    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        })
        .await?;
    let tables = fetch(&mut c, info).await?;
    let names = tables[0]
        .column_by_name("table_name")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or("table_name column")?;
    let types = tables[0]
        .column_by_name("table_type")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or("table_type column")?;
    let listed: Vec<(&str, &str)> = (0..names.len())
        .map(|i| (names.value(i), types.value(i)))
        .collect();
    assert_eq!(listed, vec![("adults", "VIEW"), ("people", "TABLE")]);
    let info = c.get_sql_info(vec![SqlInfo::FlightSqlServerName]).await?;
    assert_eq!(fetch(&mut c, info).await?[0].num_rows(), 1);
    let info = c.get_table_types().await?;
    assert_eq!(fetch(&mut c, info).await?[0].num_rows(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_mid_way_stops_the_query() -> TestResult {
    let session = Session::new();
    session.register_batches("people", people()?.schema(), vec![people()?; 2000])?;
    let uri = start(session).await?;
    let mut c = client(&uri).await?;
    // 6000 × 6000 rows: far more than the client will read.
    let info = c
        .execute(
            "SELECT a.id, b.name FROM people a CROSS JOIN people b".into(),
            None,
        )
        .await?;
    let ticket = info.endpoint[0].ticket.clone().ok_or("ticket")?;
    let mut stream = c.do_get(ticket).await?;
    let first = stream.try_next().await?.ok_or("a first batch")?;
    assert!(first.num_rows() > 0);
    let active = |c: &mut FlightSqlServiceClient<Channel>| {
        let mut c = c.clone();
        async move {
            let mut results = c
                .do_action(Action::new(sluice_server::ACTIVE_QUERIES_ACTION, ""))
                .await?;
            let r = results.try_next().await?.ok_or("no result")?;
            let v: serde_json::Value = serde_json::from_slice(&r.body)?;
            Ok::<_, Box<dyn std::error::Error>>(v["active_queries"].as_u64().unwrap_or(99))
        }
    };
    assert_eq!(active(&mut c).await?, 1);
    drop(stream);
    let mut left = 1;
    for _ in 0..100 {
        left = active(&mut c).await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the query still streams after the client left");
    Ok(())
}

/// An ingested batch's columns all slice the message they arrived in. Read back, its rows
/// go out in messages of up to about 2 MiB, not in slivers: measured by the buffers its
/// columns hold, each column weighs the whole message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingested_table_reads_back_in_whole_batches() -> TestResult {
    let uri = start(Session::new()).await?;
    let mut c = client(&uri).await?;
    let rows = 200_000;
    let batch = RecordBatch::try_new(
        people()?.schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("{i:010}")),
            )),
        ],
    )?;
    c.execute_ingest(
        ingest_cmd("big", TableExistsOption::Fail),
        futures::stream::iter([Ok(batch)]),
    )
    .await?;
    let back = query(&mut c, "SELECT * FROM big").await?;
    // 8 + 4 + 10 bytes a row: the engine's batches of up to 16 384 rows (360 kB) go out
    // whole, 16 of them. Cut by the buffers their columns hold (two columns each weighing
    // the 4.4 MB message), each would have gone out in five pieces.
    assert!(back.len() <= 16, "{} messages", back.len());
    let mut values = ints(&back, 0);
    values.sort_unstable();
    assert_eq!(values, (0..rows).collect::<Vec<_>>());
    Ok(())
}
