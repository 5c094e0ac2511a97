//! The 2024-11-05 HTTP+SSE transport, for clients that speak only it:
//! `GET /sse` opens an event stream whose first event names the endpoint
//! (`/messages?sessionId=…`) to which the client then POSTs its JSON-RPC
//! messages; answers come back on the stream. Behind the same keys as
//! `/mcp`: the session belongs to the key that opened it, with that key's
//! scope, and only that key may post to it.

use super::auth::KeyId;
use crate::mcp::McpServer;
use crate::registry::model::{PluginHost, Scope};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt as _, StreamExt as _};
use rmcp::ServiceExt as _;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Messages queued toward one session's server before a POST waits.
const QUEUE: usize = 64;

/// An open legacy session: where its client's messages go, and whose it is.
struct Session {
    to_server: futures::channel::mpsc::Sender<ClientJsonRpcMessage>,
    key: Arc<str>,
}

/// The open legacy sessions.
pub struct Legacy<P> {
    host: Arc<P>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Cancelled at shutdown: ends every session.
    shutdown: CancellationToken,
}

impl<P: PluginHost> Legacy<P> {
    pub fn new(host: Arc<P>, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Legacy {
            host,
            sessions: Mutex::new(HashMap::new()),
            shutdown,
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes its session when the client's event stream goes away.
struct Closer<P: PluginHost> {
    legacy: Arc<Legacy<P>>,
    id: String,
    service: CancellationToken,
}

impl<P: PluginHost> Drop for Closer<P> {
    fn drop(&mut self) {
        self.legacy.sessions().remove(&self.id);
        self.service.cancel();
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    // An unguessable id, though the key check stands on its own.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /sse`: a new session and its event stream.
pub async fn open<P: PluginHost>(
    State(legacy): State<Arc<Legacy<P>>>,
    Extension(KeyId(key)): Extension<KeyId>,
    Extension(scope): Extension<Scope>,
) -> Response {
    let id = new_session_id();
    let (to_server, from_client) = futures::channel::mpsc::channel::<ClientJsonRpcMessage>(QUEUE);
    let (to_client, from_server) = futures::channel::mpsc::channel::<ServerJsonRpcMessage>(QUEUE);
    let server = McpServer::scoped(legacy.host.clone(), scope);
    let service_token = legacy.shutdown.child_token();
    let token = service_token.clone();
    tokio::spawn(async move {
        match server.serve((to_client, from_client)).await {
            Ok(running) => {
                let cancel = running.cancellation_token();
                tokio::select! {
                    _ = running.waiting() => {}
                    () = token.cancelled() => cancel.cancel(),
                }
            }
            Err(e) => tracing::info!("legacy SSE session ended before initializing: {e}"),
        }
    });
    legacy
        .sessions()
        .insert(id.clone(), Session { to_server, key });
    tracing::debug!(session = %id, "legacy SSE session opened");

    let closer = Closer {
        legacy: legacy.clone(),
        id: id.clone(),
        service: service_token.clone(),
    };
    let endpoint = futures::stream::once(async move {
        Ok::<_, Infallible>(
            Event::default()
                .event("endpoint")
                .data(format!("/messages?sessionId={id}")),
        )
    });
    let messages = from_server
        .map(|message| {
            let data = serde_json::to_string(&message).unwrap_or_default();
            Ok::<_, Infallible>(Event::default().event("message").data(data))
        })
        .take_until(service_token.cancelled_owned());
    let stream = endpoint.chain(messages).map(move |event| {
        // Lives as long as the stream: the client going away closes it.
        let _ = &closer;
        event
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[derive(serde::Deserialize)]
pub struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `POST /messages?sessionId=…`: one client message into its session.
pub async fn post<P: PluginHost>(
    State(legacy): State<Arc<Legacy<P>>>,
    Extension(KeyId(key)): Extension<KeyId>,
    Query(query): Query<SessionQuery>,
    body: axum::body::Bytes,
) -> Response {
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a JSON-RPC message: {e}\n"),
            )
                .into_response();
        }
    };
    let sender = {
        let sessions = legacy.sessions();
        match sessions.get(&query.session_id) {
            // Another key's session is as good as no session.
            Some(session) if session.key == key => session.to_server.clone(),
            _ => return (StatusCode::NOT_FOUND, "no such session\n").into_response(),
        }
    };
    let mut sender = sender;
    match sender.send(message).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "the session has ended\n").into_response(),
    }
}
