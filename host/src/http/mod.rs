//! The remote transport: MCP Streamable HTTP at `/mcp` (rmcp's server under
//! axum) and the legacy HTTP+SSE transport at `/sse` + `/messages`, behind
//! API keys or signed requests, with `/healthz` and `/readyz` for
//! orchestrators.
//!
//! rmcp handles the protocol: sessions for the 2025-era protocol versions,
//! stateless requests for 2026-07-28, `Host` and `Origin` validation
//! against DNS rebinding, and the request body limit. This module adds
//! authentication, health, and a shutdown that lets calls in flight finish.

pub mod auth;
mod legacy;
pub mod signing;

use crate::config::HttpConfig;
use crate::db::Database;
use crate::mcp::McpServer;
use crate::registry::model::{PluginHost, Scope};
use anyhow::Context as _;
use auth::ApiKeys;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest a shutdown waits for calls in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// What the health endpoints look at.
struct Health<P> {
    host: Arc<P>,
    db: Arc<Database>,
}

/// Serves MCP over HTTP on `addr` until SIGINT or SIGTERM; then stops
/// accepting, lets requests in flight finish (up to 30 s), closes the
/// sessions and returns. `bound` learns the address actually bound (for
/// port 0).
pub async fn serve<P: PluginHost>(
    host: Arc<P>,
    db: Arc<Database>,
    addr: SocketAddr,
    config: &HttpConfig,
    bound: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let keys = Arc::new(
        ApiKeys::from_config(&config.auth, &config.rate_limit, config.max_body_bytes)
            .map_err(anyhow::Error::msg)?,
    );
    if keys.is_empty() {
        anyhow::bail!(
            "no API keys configured for the HTTP transport: create one with `sluice keys new` \
             and add the printed [[http.auth.keys]] entry to the config"
        );
    }
    let sessions = CancellationToken::new();
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_max_request_body_bytes(config.max_body_bytes)
        .with_cancellation_token(sessions.child_token());
    mcp_config = if config.allowed_origins.is_empty() {
        mcp_config.enforce_origin_validation()
    } else {
        mcp_config.with_allowed_origins(config.allowed_origins.clone())
    };
    let service_host = host.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(McpServer::new(service_host.clone())),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );
    let draining = host.clone();
    let legacy = Router::new()
        .route("/sse", get(legacy::open::<P>))
        .route("/messages", post(legacy::post::<P>))
        .with_state(legacy::Legacy::new(host.clone(), sessions.child_token()))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        // rmcp checks Host and Origin for /mcp; these routes are ours.
        .layer(middleware::from_fn_with_state(
            Arc::new(config.clone()),
            same_site,
        ));
    let app = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn(session_deleted))
        .merge(legacy)
        .layer(middleware::from_fn_with_state(keys, auth::require_key))
        .merge(
            Router::new()
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz::<P>))
                .with_state(Arc::new(Health { host, db })),
        );

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // Answers are small writes; without TCP_NODELAY, Nagle's algorithm holds
    // one back until the client's delayed ACK, about 40 ms later.
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a connection: {e}");
        }
    });
    tracing::info!(addr = %local, "serving MCP over HTTP at /mcp");
    bound(local);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let signal = crate::shutdown::signal().await;
        tracing::info!(
            signal,
            "shutting down: no new requests, finishing those in flight"
        );
        let _ = stop_tx.send(());
        let started = tokio::time::Instant::now();
        while draining.in_flight() > 0 && started.elapsed() < DRAIN_LIMIT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The last answers still have to leave through their streams.
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Ends the sessions' event streams, so the server can return.
        sessions.cancel();
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        })
        .await
        .context("HTTP server failed")?;
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// rmcp answers a session's DELETE with 202; the request is complete by
/// then, and the official Python client logs any answer other than 200 or
/// 204 as a failure, so it gets 204 No Content.
async fn session_deleted(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let delete = request.method() == axum::http::Method::DELETE;
    let mut response = next.run(request).await;
    if delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
        *response.body_mut() = axum::body::Body::empty();
    }
    response
}

/// Refuses requests whose `Host` is not an allowed one, or that carry an
/// `Origin` not allowed (DNS rebinding, cross-site pages).
async fn same_site(
    State(config): State<Arc<HttpConfig>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match site_check(&config, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(why) => (StatusCode::FORBIDDEN, why).into_response(),
    }
}

fn site_check(config: &HttpConfig, headers: &axum::http::HeaderMap) -> Result<(), &'static str> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let host = header(axum::http::header::HOST).unwrap_or_default();
    let bare = |h: &str| h.trim_start_matches('[').trim_end_matches(']').to_string();
    let host_ok = config.allowed_hosts.iter().any(|allowed| {
        host == allowed
            || bare(host) == *allowed
            || host
                .rsplit_once(':')
                .is_some_and(|(name, port)| bare(name) == *allowed && port.parse::<u16>().is_ok())
    });
    if !host_ok {
        return Err("host not allowed\n");
    }
    if let Some(origin) = header(axum::http::header::ORIGIN) {
        let allowed = config.allowed_origins.iter().any(|allowed| {
            origin == allowed
                || allowed.strip_suffix(":*").is_some_and(|base| {
                    origin == base
                        || origin
                            .strip_prefix(base)
                            .is_some_and(|rest| rest.starts_with(':'))
                })
        });
        if !allowed {
            return Err("origin not allowed\n");
        }
    }
    Ok(())
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers and plugins are loaded. No data.
async fn readyz<P: PluginHost>(State(health): State<Arc<Health<P>>>) -> Response {
    if health.host.tools(&Scope::All).is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no plugins loaded\n").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), health.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response(),
    }
}
