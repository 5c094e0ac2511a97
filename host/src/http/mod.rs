//! The remote transport: MCP Streamable HTTP at `/mcp` (rmcp's server under
//! axum) and the legacy HTTP+SSE transport at `/sse` + `/messages`, behind
//! API keys or signed requests, with `/healthz` and `/readyz` for
//! orchestrators.
//!
//! rmcp handles the protocol: sessions for the 2025-era protocol versions,
//! stateless requests for 2026-07-28. Around it, on every MCP route, in
//! this order:
//!
//! 1. [`site`]: one `Host` and `Origin` rule, against DNS rebinding;
//! 2. [`auth`]: a key, a signature or an OAuth access token ([`oauth`]),
//!    within the caller's rate limit, and a budget of refused credentials
//!    per client address ([`failed_auth`]);
//! 3. [`messages`]: each posted message read within the body limit and
//!    checked like a stdio line, a refused one answered with its JSON-RPC
//!    error;
//! 4. [`sessions`]: sessions capped in all and per key, kept to their key,
//!    closed when idle; ids unique among a session's requests in flight.
//!
//! Connections are accepted by [`server`] (a header timeout, a cap on open
//! connections); a signal stops it (after `[http] drain_delay_ms`, during
//! which `/readyz` fails so a load balancer takes the replica out), and
//! calls in flight may finish. With `[http] shared_state = "postgres"`,
//! replicas share spent nonces and rate limits through the database
//! ([`crate::db::shared_state`]).

pub mod auth;
pub mod failed_auth;
mod legacy;
pub mod messages;
pub mod oauth;
pub mod server;
pub mod sessions;
pub mod signing;
pub mod site;
mod throttle;

use crate::config::{HttpConfig, SharedStateKind};
use crate::db::Database;
use crate::db::shared_state::SharedState;
use crate::mcp::McpServer;
use crate::mcp::frame::FrameLimits;
use crate::registry::model::{PluginHost, Scope};
use anyhow::Context as _;
use auth::{ApiKeys, Gate};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest a shutdown waits for calls in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How often addresses whose refused-credential budget is full again are
/// forgotten.
const FAILED_AUTH_SWEEP: Duration = Duration::from_secs(10);
/// How often spent nonces and full buckets are deleted from the shared
/// state (by every replica, and at its start; a sweep that finds nothing
/// costs little).
const SHARED_STATE_SWEEP: Duration = Duration::from_secs(60);

/// What the health endpoints look at.
struct Health<P> {
    host: Arc<P>,
    db: Arc<Database>,
    /// Set when a signal arrived: readiness fails during the drain delay.
    draining: Arc<AtomicBool>,
}

/// Serves MCP over HTTP on `addr` until SIGINT or SIGTERM; then stops
/// accepting, lets requests in flight finish (up to 30 s), closes the
/// sessions and returns. Posted messages are checked against `limits`
/// (`[mcp]`), with `[http] max_body_bytes` as the size limit when lower.
/// `bound` learns the address actually bound (for port 0).
pub async fn serve<P: PluginHost>(
    host: Arc<P>,
    db: Arc<Database>,
    addr: SocketAddr,
    config: &HttpConfig,
    limits: FrameLimits,
    bound: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let keys =
        ApiKeys::from_config(&config.auth, &config.rate_limit).map_err(anyhow::Error::msg)?;
    let oauth = match &config.oauth {
        Some(settings) => Some(Arc::new(
            oauth::OAuth::from_config(settings).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    if keys.is_empty() && oauth.is_none() {
        anyhow::bail!(
            "no API keys configured for the HTTP transport: create one with `sluice keys new` \
             and add the printed [[http.auth.keys]] entry to the config, or configure \
             [http.oauth] for access tokens from your identity provider"
        );
    }
    if let Some(oauth) = &oauth {
        // In the background: the issuer may be slower to answer than
        // clients are to arrive, and its first token fetches the keys anyway.
        tokio::spawn({
            let oauth = oauth.clone();
            async move { oauth.warm().await }
        });
    }
    let shared = match config.shared_state {
        SharedStateKind::Memory => None,
        SharedStateKind::Postgres => {
            let shared = SharedState::open(
                db.clone(),
                &config.shared_state_schema,
                Duration::from_millis(config.shared_state_timeout_ms),
            )
            .await?;
            tracing::info!(
                schema = %config.shared_state_schema,
                "spent nonces and rate limits are shared through PostgreSQL"
            );
            Some(Arc::new(shared))
        }
    };
    let message_limits = messages::MessageLimits::new(config, limits);
    let (callers, caller_quota) =
        auth::caller_limiter(&config.rate_limit).map_err(anyhow::Error::msg)?;
    let gate = Arc::new(Gate {
        keys,
        oauth: oauth.clone(),
        callers,
        caller_quota,
        shared: shared.clone(),
        failed: failed_auth::FailedAuth::new(&config.failed_auth).map_err(anyhow::Error::msg)?,
        limits: message_limits,
        refusals: throttle::LogThrottle::default(),
        over_rate: throttle::LogThrottle::default(),
        shared_refusals: throttle::LogThrottle::default(),
        shared_fallbacks: throttle::LogThrottle::default(),
    });
    let site = Arc::new(site::Site::new(config).map_err(anyhow::Error::msg)?);
    let registry = sessions::Sessions::new(sessions::SessionLimits::new(config));
    let manager = Arc::new(sessions::CountedSessions::new(registry.clone()));
    // Ends every session's event streams at shutdown.
    let ending = CancellationToken::new();
    // Ends the background tasks when serving stops.
    let background = CancellationToken::new();
    let _stop_background = background.clone().drop_guard();

    // rmcp's own Host and Origin checks stay on, with the same lists: ours
    // run first and are at least as strict, so theirs never refuse what
    // ours let through (see `site`).
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_max_request_body_bytes(message_limits.frame.max_bytes)
        .with_cancellation_token(ending.child_token());
    mcp_config = if config.allowed_origins.is_empty() {
        mcp_config.enforce_origin_validation()
    } else {
        mcp_config.with_allowed_origins(config.allowed_origins.clone())
    };
    let service_host = host.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(McpServer::new(service_host.clone())),
        manager.clone(),
        mcp_config,
    );
    let draining = host.clone();
    let draining_flag = Arc::new(AtomicBool::new(false));
    let drain_delay = Duration::from_millis(config.drain_delay_ms);
    let check = Arc::new(messages::MessageCheck {
        limits: message_limits,
        log: throttle::LogThrottle::default(),
    });
    let streamable = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(
            registry.clone(),
            sessions::track_mcp,
        ))
        .layer(middleware::from_fn(session_deleted));
    let legacy = Router::new()
        .route("/sse", get(legacy::open::<P>))
        .route("/messages", post(legacy::post::<P>))
        .with_state(legacy::Legacy::new(
            host.clone(),
            registry.clone(),
            ending.child_token(),
        ));
    // The last layer added runs first. Host and Origin come before keys, so
    // that a page rebinding a name to this server cannot spend a local
    // client's budget of refused credentials.
    let app = streamable
        .merge(legacy)
        .layer(middleware::from_fn_with_state(
            check,
            messages::check_message,
        ))
        .layer(middleware::from_fn_with_state(
            gate.clone(),
            auth::require_key,
        ))
        .layer(middleware::from_fn_with_state(site, site::same_site))
        .merge(
            Router::new()
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz::<P>))
                .with_state(Arc::new(Health {
                    host,
                    db,
                    draining: draining_flag.clone(),
                })),
        );
    // Public, like the health endpoints: it tells a client where to get a
    // token, and holds nothing else.
    let app = match &oauth {
        Some(oauth) => {
            let mut metadata = Router::new();
            for path in oauth.metadata_paths() {
                metadata = metadata.route(&path, get(resource_metadata));
            }
            app.merge(metadata.with_state(oauth.clone()))
        }
        None => app,
    };

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "serving MCP over HTTP at /mcp");
    bound(local);

    sessions::spawn_reaper(registry, manager, background.clone());
    if let Some(shared) = shared {
        tokio::spawn(sweep_shared_state(shared, background.clone()));
    }
    tokio::spawn({
        let background = background.clone();
        async move {
            loop {
                tokio::select! {
                    () = background.cancelled() => break,
                    () = tokio::time::sleep(FAILED_AUTH_SWEEP) => {
                        gate.failed.sweep(true);
                        gate.callers.retain_recent();
                        gate.callers.shrink_to_fit();
                    }
                }
            }
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let signal = crate::shutdown::signal().await;
        if !drain_delay.is_zero() {
            // Behind a load balancer: keep serving while its health check
            // sees /readyz fail and takes this replica out, so that no
            // request meets a closed port. A second signal cuts it short.
            draining_flag.store(true, Ordering::Relaxed);
            tracing::info!(
                signal,
                "draining: /readyz answers 503 for {} ms ([http] drain_delay_ms) while requests are still served",
                drain_delay.as_millis()
            );
            tokio::select! {
                () = tokio::time::sleep(drain_delay) => {}
                again = crate::shutdown::signal() => {
                    tracing::info!(signal = again, "second signal: ending the drain delay");
                }
            }
        }
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
        // Ends the sessions' event streams, so the connections can close.
        ending.cancel();
    });
    let stop = async move {
        let _ = stop_rx.await;
    };
    // Calls in flight get DRAIN_LIMIT; their streams a little more to end.
    server::serve(
        listener,
        app,
        server::ConnectionLimits::new(config),
        stop,
        DRAIN_LIMIT + Duration::from_secs(5),
    )
    .await;
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// Deletes the shared state's spent nonces and full buckets at start and
/// then now and then, until serving stops.
async fn sweep_shared_state(shared: Arc<SharedState>, stop: CancellationToken) {
    loop {
        match shared.sweep().await {
            Ok(rows) => tracing::debug!(rows, "swept the shared HTTP state"),
            Err(e) => tracing::debug!("cannot sweep the shared HTTP state: {e}"),
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(SHARED_STATE_SWEEP) => {}
        }
    }
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

/// The protected-resource metadata (RFC 9728).
async fn resource_metadata(State(oauth): State<Arc<oauth::OAuth>>) -> Response {
    axum::Json(oauth.metadata()).into_response()
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: not draining, the database answers and plugins are loaded.
/// No data.
async fn readyz<P: PluginHost>(State(health): State<Arc<Health<P>>>) -> Response {
    if health.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    if health.host.tools(&Scope::All).is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no plugins loaded\n").into_response();
    }
    // The pool fails fast while the database cannot be reached; the cause
    // is in the log, not told to whoever asks.
    match tokio::time::timeout(Duration::from_secs(2), health.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(_)) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database not answering\n").into_response(),
    }
}
