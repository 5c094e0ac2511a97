//! The accept loop: HTTP/1.1 connections served by hyper, at most
//! `[http] max_connections` at once (more wait in the listen backlog), each
//! given `[http] header_timeout_ms` to send a request's headers (so a
//! half-sent request, or a connection idle between requests, is closed
//! instead of held), with `TCP_NODELAY` and the peer's address in every
//! request's extensions (`ConnectInfo<SocketAddr>`).

use super::throttle::{LogThrottle, throttled};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_service::Service as _;

/// The longest header timeout honoured (so that deadlines stay representable).
const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// A pause after an accept error such as too many open files, so the loop
/// does not spin while it lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl ConnectionLimits {
    pub fn new(config: &crate::config::HttpConfig) -> ConnectionLimits {
        ConnectionLimits {
            // The semaphore's own limit is far above any sensible setting.
            max_connections: config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
            header_timeout: Duration::from_millis(config.header_timeout_ms).min(MAX_HEADER_TIMEOUT),
        }
    }
}

/// Serves `app` on `listener` until `stop` resolves; then stops accepting,
/// asks every connection to finish its request in flight and close, and
/// waits for them (at most `drain_limit`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
    drain_limit: Duration,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let accept_errors = LogThrottle::default();
    let mut stop = std::pin::pin!(stop);
    loop {
        // A free place first: beyond it, connections wait to be accepted.
        let permit = tokio::select! {
            biased;
            () = &mut stop => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    throttled!(warn, accept_errors, "cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Answers are small writes; without TCP_NODELAY, Nagle's algorithm
        // holds one back until the client's delayed ACK, about 40 ms later.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a connection: {e}");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().call(request.map(Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(client = %peer, "connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain_limit, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {} s after shutdown began; closing them",
            drain_limit.as_secs()
        );
    }
}
