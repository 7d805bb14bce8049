//! How engine errors reach Flight clients: each [`SluiceError`] kind maps to the gRPC code a
//! client can act on, and the message is the engine's own (it names the cause).

use arrow_flight::error::FlightError;
use sluice::SluiceError;
use tonic::Status;

/// The gRPC status for an engine error.
pub fn to_status(e: SluiceError) -> Status {
    let message = e.to_string();
    match e {
        SluiceError::Parse(_) | SluiceError::Plan(_) | SluiceError::Type(_) => {
            Status::invalid_argument(message)
        }
        SluiceError::NotSupported(_) => Status::unimplemented(message),
        SluiceError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

/// The gRPC status for a Flight encode/decode error: a status from the transport stays
/// as it is; anything else becomes `fallback` of the error's text.
pub fn flight_status(e: FlightError, fallback: impl FnOnce(String) -> Status) -> Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => fallback(other.to_string()),
    }
}

/// Runs blocking engine work off the async runtime.
pub async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    F: FnOnce() -> sluice::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("query task failed: {e}")))?
        .map_err(to_status)
}
