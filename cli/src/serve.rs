//! `sluice serve`: runs the Arrow Flight SQL server ([`sluice_server`]) over an embedded
//! session until Ctrl-C / SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Args;
use sluice_server::{serve, Credentials, ServerConfig, TlsConfig};

use crate::CliError;

/// Options of `sluice serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. Without credentials only loopback
    /// addresses are allowed.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Register every NAME.parquet file and NAME/ directory of Parquet files in DIR as
    /// table NAME (may be repeated).
    #[arg(long, value_name = "DIR")]
    data: Vec<PathBuf>,
    /// Require this user name (with --password-file) in the Flight handshake.
    #[arg(long, value_name = "USER", requires = "password_file")]
    user: Option<String>,
    /// File holding the password (a trailing newline is ignored).
    #[arg(long, value_name = "FILE", requires = "user")]
    password_file: Option<PathBuf>,
    /// PEM certificate chain: serve over TLS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Partitions (threads) each query runs with [default: number of cores].
    #[arg(long, value_name = "N")]
    threads: Option<NonZeroUsize>,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Script {
        path: path.clone(),
        source,
    })
}

/// Runs the server until interrupted.
pub fn run_serve(args: ServeArgs) -> Result<(), CliError> {
    let session = crate::session_with(args.threads, &args.data, |m| eprintln!("{m}"))?;
    let mut server = ServerConfig::new(args.addr);
    if let (Some(user), Some(file)) = (args.user, &args.password_file) {
        let text = String::from_utf8(read(file)?)
            .map_err(|_| CliError::Server(format!("{} is not UTF-8", file.display())))?;
        let password = text.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(CliError::Server(format!(
                "password file {} is empty",
                file.display()
            )));
        }
        server = server.with_credentials(Credentials { user, password });
    } else {
        eprintln!("No credentials given: accepting unauthenticated clients on loopback only");
    }
    let scheme = if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        server = server.with_tls(TlsConfig {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        });
        "grpc+tls"
    } else {
        "grpc"
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Output)?;
    runtime
        .block_on(serve(
            session,
            server,
            |addr| {
                println!("Sluice Flight SQL server listening on {scheme}://{addr}");
                let _ = std::io::stdout().flush();
            },
            shutdown_signal(),
        ))
        .map_err(|e| CliError::Server(e.to_string()))?;
    eprintln!("Server stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
