//! Authentication: the Flight handshake checks basic-auth credentials and hands out a
//! bearer token; a tower layer in front of the whole gRPC service refuses every other call
//! that does not carry a token it issued (`Unauthenticated`).
//!
//! The layer sits below tonic's routing so it also guards calls Sluice does not implement:
//! an unauthenticated client learns nothing, not even which methods exist.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore;
use tonic::metadata::MetadataMap;
use tonic::Status;

/// The user name and password clients must present.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The gRPC path of the Flight handshake, the one call allowed without a token.
const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// Issued tokens and the credentials they were issued for.
#[derive(Debug)]
pub struct Authenticator {
    credentials: Option<Credentials>,
    ttl: Duration,
    tokens: Mutex<HashMap<String, Instant>>,
}

impl Authenticator {
    /// With `None`, every call is allowed (the server then binds loopback only).
    pub fn new(credentials: Option<Credentials>, ttl: Duration) -> Self {
        Self {
            credentials,
            ttl,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// True when calls need a token.
    pub fn enabled(&self) -> bool {
        self.credentials.is_some()
    }

    /// Checks the `authorization: Basic …` header of a handshake and returns a new bearer
    /// token. Without configured credentials any handshake succeeds with an empty token.
    pub fn handshake(&self, metadata: &MetadataMap) -> Result<String, Status> {
        let Some(expected) = &self.credentials else {
            return Ok(String::new());
        };
        let header = metadata
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated("handshake without credentials: use basic auth")
            })?
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
        let encoded = header
            .strip_prefix("Basic ")
            .ok_or_else(|| Status::unauthenticated("handshake needs basic auth (user/password)"))?;
        // Clients differ on padding (Go's Flight client sends unpadded base64).
        let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded.trim().trim_end_matches('='))
            .map_err(|_| Status::unauthenticated("basic auth value is not base64"))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| Status::unauthenticated("basic auth value is not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| Status::unauthenticated("basic auth value is not user:password"))?;
        if !constant_time_eq(user.as_bytes(), expected.user.as_bytes())
            | !constant_time_eq(password.as_bytes(), expected.password.as_bytes())
        {
            return Err(Status::unauthenticated("invalid user name or password"));
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut tokens = self
            .tokens
            .lock()
            .map_err(|_| Status::internal("token table poisoned"))?;
        tokens.retain(|_, issued| now.duration_since(*issued) < self.ttl);
        tokens.insert(token.clone(), now);
        Ok(token)
    }

    /// Whether a request with this `authorization` header value may proceed.
    fn allows(&self, header: Option<&str>) -> Result<(), Status> {
        if self.credentials.is_none() {
            return Ok(());
        }
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("no bearer token: authenticate with the Flight handshake")
            })?;
        let tokens = self
            .tokens
            .lock()
            .map_err(|_| Status::internal("token table poisoned"))?;
        match tokens.get(token.trim()) {
            Some(issued) if issued.elapsed() < self.ttl => Ok(()),
            Some(_) => Err(Status::unauthenticated(
                "bearer token expired: authenticate again",
            )),
            None => Err(Status::unauthenticated("invalid bearer token")),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Tower layer that applies [`Authenticator`] to every call but the handshake.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    /// A layer checking tokens issued by `auth`.
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != HANDSHAKE_PATH {
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if let Err(status) = self.auth.allows(header) {
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(
            Some(Credentials {
                user: "ann".into(),
                password: "s3cret".into(),
            }),
            Duration::from_secs(60),
        )
    }

    fn basic(user_pass: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        );
        m.insert("authorization", v.parse().expect("ascii"));
        m
    }

    #[test]
    fn handshake_issues_tokens_only_for_the_right_password() {
        let a = auth();
        let token = a.handshake(&basic("ann:s3cret")).expect("accepted");
        assert_eq!(token.len(), 64);
        assert!(a.allows(Some(&format!("Bearer {token}"))).is_ok());
        assert!(a.handshake(&basic("ann:wrong")).is_err());
        // Unpadded base64, as Go's Flight client sends it ("ann:s3cret" needs padding).
        let mut unpadded = MetadataMap::new();
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode("ann:s3cret")
        );
        unpadded.insert("authorization", v.parse().expect("ascii"));
        assert!(a.handshake(&unpadded).is_ok());
        assert!(a.handshake(&basic("bob:s3cret")).is_err());
        assert!(a.handshake(&MetadataMap::new()).is_err());
    }

    #[test]
    fn calls_without_a_known_token_are_refused() {
        let a = auth();
        for header in [None, Some("Bearer nope"), Some("Basic YW5uOnMzY3JldA==")] {
            let err = a.allows(header).expect_err("refused");
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{header:?}");
        }
        let open = Authenticator::new(None, Duration::from_secs(1));
        assert!(open.allows(None).is_ok());
    }
}
