//! `sluice-server`: an Arrow Flight SQL server over an embedded Sluice [`Session`].
//!
//! Python (ADBC's `adbc_driver_flightsql`, `pyarrow.flight`) and any other Flight SQL client
//! run SQL, prepared statements with parameters, bulk ingest and metadata calls against one
//! shared catalog. Results stream while the query runs; a client that cancels or
//! disconnects drops its query. With [`ServerConfig::credentials`] the Flight handshake
//! (basic auth) hands out bearer tokens and every other call needs one; without
//! credentials the server refuses to listen anywhere but loopback. TLS is optional.
//!
//! ```no_run
//! # async fn run() -> Result<(), sluice_server::ServerError> {
//! let session = sluice::Session::new();
//! let config = sluice_server::ServerConfig::new("127.0.0.1:50051".parse().expect("addr"));
//! sluice_server::serve(session, config, |addr| println!("listening on {addr}"), std::future::pending()).await
//! # }
//! ```

pub mod auth;
pub mod ingest;
pub mod metadata;
pub mod queries;
pub mod service;
pub mod status;
pub mod wire_types;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use sluice::Session;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use auth::Credentials;
pub use service::{SluiceFlightSql, ACTIVE_QUERIES_ACTION};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting that cannot work.
    #[error("invalid server configuration: {0}")]
    Config(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The gRPC transport failed (TLS setup, accept loop).
    #[error("Flight server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// PEM-encoded certificate chain and private key for TLS.
#[derive(Clone)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Private key (PEM).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig { .. }")
    }
}

/// How the server listens and whom it lets in.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Required credentials; `None` allows only loopback addresses.
    pub credentials: Option<Credentials>,
    /// TLS certificate and key; `None` serves plain gRPC.
    pub tls: Option<TlsConfig>,
    /// Largest gRPC message accepted from a client (bytes).
    pub max_message_bytes: usize,
    /// How long a bearer token stays valid.
    pub token_ttl: Duration,
    /// How long a planned statement waits for its `DoGet`.
    pub ticket_ttl: Duration,
}

impl ServerConfig {
    /// Defaults: no credentials, no TLS, 64 MiB messages, tokens valid 24 h, tickets 10 min.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            credentials: None,
            tls: None,
            max_message_bytes: 64 << 20,
            token_ttl: Duration::from_secs(24 * 3600),
            ticket_ttl: Duration::from_secs(600),
        }
    }

    /// Requires `credentials` (Flight handshake with basic auth).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Serves over TLS.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// Runs the server until `shutdown` completes. `on_ready` gets the bound address (useful
/// with port 0) once the server accepts connections.
pub async fn serve(
    session: Session,
    config: ServerConfig,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    if config.credentials.is_none() && !config.addr.ip().is_loopback() {
        return Err(ServerError::Config(format!(
            "refusing to listen on {} without credentials: give --user and --password-file, \
             or listen on a loopback address",
            config.addr
        )));
    }
    let auth = Arc::new(auth::Authenticator::new(
        config.credentials.clone(),
        config.token_ttl,
    ));
    let queries = Arc::new(queries::QueryRegistry::new(config.ticket_ttl));
    let service = SluiceFlightSql::new(session, auth.clone(), queries);
    let grpc = FlightServiceServer::new(service)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(usize::MAX);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.addr,
        source,
    })?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem)),
        )?;
    }
    let router = builder.layer(auth::AuthLayer::new(auth)).add_service(grpc);
    on_ready(local);
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
