//! Server-side query state: planned statements waiting for their `DoGet`, prepared
//! statements with their bound parameters, and the count of results being streamed.
//!
//! `GetFlightInfo` plans a statement (DDL takes effect there, once) and parks the planned
//! [`DataFrame`] under a random handle that goes into the ticket; `DoGet` takes it out and
//! streams it. Nothing runs twice and nothing is materialized on the server. Parked plans
//! that no client fetches expire after [`QueryRegistry::ttl`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use futures::stream::BoxStream;
use futures::StreamExt;
use rand::RngCore;
use sluice::{DataFrame, Scalar};
use tonic::Status;

use crate::status::{flight_status, to_status};
use crate::wire_types::{split_for_wire, to_wire, wire_schema, MAX_MESSAGE_BYTES};

/// How long a prepared statement may go unused before the server forgets it.
pub const PREPARED_IDLE: Duration = Duration::from_secs(3600);

/// A statement prepared by `CreatePreparedStatement`.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The SQL text.
    pub sql: String,
    /// How many placeholders it has.
    pub param_count: usize,
    /// Parameter rows bound by the last `DoPut` (one execution per row).
    pub params: Vec<Vec<Scalar>>,
}

struct Parked {
    df: DataFrame,
    parked_at: Instant,
}

/// The server's statement state, shared by all connections.
pub struct QueryRegistry {
    ttl: Duration,
    parked: Mutex<HashMap<String, Parked>>,
    prepared: Mutex<HashMap<String, (Prepared, Instant)>>,
    active: Arc<AtomicUsize>,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, Status> {
    m.lock()
        .map_err(|_| Status::internal("server state lock poisoned"))
}

/// A random 128-bit handle, hex-encoded.
pub fn new_handle() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl QueryRegistry {
    /// An empty registry whose parked plans expire after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            parked: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How long a planned statement waits for its `DoGet`.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Parks `df` and returns the handle its ticket carries.
    pub fn park(&self, df: DataFrame) -> Result<String, Status> {
        let handle = new_handle();
        let now = Instant::now();
        let mut parked = lock(&self.parked)?;
        parked.retain(|_, p| now.duration_since(p.parked_at) < self.ttl);
        parked.insert(handle.clone(), Parked { df, parked_at: now });
        Ok(handle)
    }

    /// Takes the plan parked under `handle` (a ticket is good for one `DoGet`).
    pub fn take(&self, handle: &str) -> Result<DataFrame, Status> {
        lock(&self.parked)?
            .remove(handle)
            .filter(|p| p.parked_at.elapsed() < self.ttl)
            .map(|p| p.df)
            .ok_or_else(|| {
                Status::not_found(
                    "unknown or expired ticket: tickets are good for one DoGet, \
                     within a few minutes of GetFlightInfo",
                )
            })
    }

    /// Forgets a parked plan (cancelled before it was fetched); true if it was there.
    pub fn cancel(&self, handle: &str) -> Result<bool, Status> {
        Ok(lock(&self.parked)?.remove(handle).is_some())
    }

    /// Registers a prepared statement and returns its handle. Statements unused for
    /// [`PREPARED_IDLE`] are forgotten (clients that never close them do not leak).
    pub fn prepare(&self, statement: Prepared) -> Result<String, Status> {
        let handle = new_handle();
        let now = Instant::now();
        let mut prepared = lock(&self.prepared)?;
        prepared.retain(|_, (_, used)| now.duration_since(*used) < PREPARED_IDLE);
        prepared.insert(handle.clone(), (statement, now));
        Ok(handle)
    }

    fn with_prepared<T>(
        &self,
        handle: &[u8],
        f: impl FnOnce(&mut Prepared) -> T,
    ) -> Result<T, Status> {
        let key = std::str::from_utf8(handle).unwrap_or_default();
        let mut prepared = lock(&self.prepared)?;
        let (p, used) = prepared
            .get_mut(key)
            .ok_or_else(|| Status::not_found("unknown or expired prepared statement handle"))?;
        *used = Instant::now();
        Ok(f(p))
    }

    /// The prepared statement under `handle`.
    pub fn prepared(&self, handle: &[u8]) -> Result<Prepared, Status> {
        self.with_prepared(handle, |p| p.clone())
    }

    /// Binds parameter rows to a prepared statement; each row needs one value per
    /// placeholder.
    pub fn bind(&self, handle: &[u8], params: Vec<Vec<Scalar>>) -> Result<(), Status> {
        self.with_prepared(handle, |p| {
            if let Some(row) = params.iter().find(|r| r.len() != p.param_count) {
                return Err(Status::invalid_argument(format!(
                    "the statement has {} parameter(s) but {} value(s) were bound",
                    p.param_count,
                    row.len()
                )));
            }
            p.params = params;
            Ok(())
        })?
    }

    /// Closes a prepared statement.
    pub fn close(&self, handle: &[u8]) -> Result<(), Status> {
        let key = std::str::from_utf8(handle).unwrap_or_default();
        lock(&self.prepared)?.remove(key);
        Ok(())
    }

    /// How many results are streaming right now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Runs `df` and encodes its batches as Flight data while it runs. Dropping the stream
    /// (the client cancelled or went away) drops the query, which stops its threads.
    pub fn stream(
        &self,
        df: &DataFrame,
    ) -> Result<BoxStream<'static, Result<FlightData, Status>>, Status> {
        let schema = wire_schema(&df.result_schema());
        let batches = df.execute_stream().map_err(to_status)?;
        let guard = ActiveGuard::new(self.active.clone());
        let wire = schema.clone();
        let batches = batches.map(move |r| {
            let _still_running = &guard;
            r.map_err(|e| FlightError::Tonic(Box::new(to_status(e))))
                .and_then(|b| to_wire(b, &wire).map_err(FlightError::Arrow))
        });
        Ok(forward(encode(schema, batches)))
    }
}

/// `encoded`, driven on a task of its own so that IPC encoding overlaps with HTTP/2
/// sending. The channel is short, so a slow client still slows the query down; when the
/// client goes away the send fails and the task drops the query. If the task panics, the
/// stream ends with an internal error: ending it cleanly would hand the client a cut
/// result that looks whole.
fn forward(
    mut encoded: BoxStream<'static, Result<FlightData, Status>>,
) -> BoxStream<'static, Result<FlightData, Status>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                // The client left while the query was still working on a batch.
                _ = tx.closed() => break,
                item = encoded.next() => item,
            };
            let Some(item) = item else { break };
            if tx.send(item).await.is_err() {
                break;
            }
        }
    });
    futures::stream::unfold((rx, Some(task)), |(mut rx, task)| async move {
        if let Some(item) = rx.recv().await {
            return Some((item, (rx, task)));
        }
        match task?.await {
            Err(e) if e.is_panic() => {
                let message = format!("the result stream failed: {}", panic_message(e));
                Some((Err(Status::internal(message)), (rx, None)))
            }
            _ => None,
        }
    })
    .boxed()
}

/// The message a panicked task's payload carries, when it is a string.
fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Flight data for `batches` under `schema` (the schema is sent even for no rows).
pub fn encode(
    schema: SchemaRef,
    batches: impl futures::Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
) -> BoxStream<'static, Result<FlightData, Status>> {
    let pieces = batches.flat_map(|r| {
        let pieces = match r {
            Ok(batch) => split_for_wire(batch, MAX_MESSAGE_BYTES)
                .into_iter()
                .map(Ok)
                .collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(pieces)
    });
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        // The batches come cut by `split_for_wire`; the encoder's own cut measures the
        // buffers a column holds, which overcounts sliced columns many times over.
        .with_max_flight_data_size(usize::MAX)
        .build(pieces)
        .map(|r| r.map_err(|e| flight_status(e, Status::internal)))
        .boxed()
}

/// One batch as a Flight data stream.
pub fn encode_one(
    schema: SchemaRef,
    batch: RecordBatch,
) -> BoxStream<'static, Result<FlightData, Status>> {
    encode(schema, futures::stream::once(async move { Ok(batch) }))
}

/// Counts a streaming result while it lives.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: u8) -> Result<FlightData, Status> {
        Ok(FlightData::new().with_data_body(vec![n]))
    }

    #[tokio::test]
    async fn a_stream_that_panics_ends_in_an_error_not_a_clean_end() {
        let panicking = futures::stream::iter([data(1)])
            .chain(futures::stream::poll_fn(
                |_| -> std::task::Poll<Option<_>> { panic!("encoder broke") },
            ))
            .boxed();
        let items: Vec<_> = forward(panicking).collect().await;
        assert_eq!(items.len(), 2, "one batch, then the error");
        assert_eq!(items[0].as_ref().expect("first batch").data_body[..], [1]);
        let err = items[1].as_ref().expect_err("the panic is reported");
        assert_eq!(err.code(), tonic::Code::Internal);
        assert!(err.message().contains("encoder broke"), "{}", err.message());
    }

    #[tokio::test]
    async fn a_whole_stream_is_forwarded_in_order() {
        let items: Vec<_> = forward(futures::stream::iter([data(1), data(2), data(3)]).boxed())
            .collect()
            .await;
        let bodies: Vec<u8> = items
            .iter()
            .map(|i| i.as_ref().expect("data").data_body[0])
            .collect();
        assert_eq!(bodies, [1, 2, 3]);
    }
}
