//! The 2024-11-05 HTTP+SSE transport, for clients that speak only it:
//! `GET /sse` opens an event stream whose first event names the endpoint
//! (`/messages?sessionId=…`) to which the client then POSTs its JSON-RPC
//! messages; answers come back on the stream. Behind the same keys as
//! `/mcp`: the session belongs to the key that opened it, with that key's
//! scope, and only that key may post to it. Legacy sessions count toward
//! the same caps and expire the same way as Streamable HTTP ones
//! ([`super::sessions`]).
//!
//! Every request posted gets exactly one answer on the stream. A request
//! whose id is still in flight in its session is taken (202) and answered
//! on the stream with an error naming the id: legacy clients read answers
//! only there, and some stop posting after a POST fails.

use super::auth::Owner;
use super::messages::Checked;
use super::sessions::{Kind, Sessions};
use super::throttle::throttled;
use crate::mcp::McpServer;
use crate::principal::Principal;
use crate::registry::model::PluginHost;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt as _, StreamExt as _};
use rmcp::ServiceExt as _;
use rmcp::model::{ClientJsonRpcMessage, ClientNotification, JsonRpcMessage, ServerJsonRpcMessage};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Messages queued toward one session's server before a POST waits.
const QUEUE: usize = 64;

/// An open legacy session: where its client's messages go, where answers
/// made here go, and whose it is.
struct Session {
    to_server: futures::channel::mpsc::Sender<ClientJsonRpcMessage>,
    /// Error answers made here (already JSON), onto the event stream.
    refusals: futures::channel::mpsc::Sender<String>,
    key: Arc<str>,
}

/// The open legacy sessions.
pub struct Legacy<P> {
    host: Arc<P>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Every session of both transports: caps, requests in flight, idleness.
    registry: Arc<Sessions>,
    /// Cancelled at shutdown: ends every session.
    shutdown: CancellationToken,
}

impl<P: PluginHost> Legacy<P> {
    pub fn new(host: Arc<P>, registry: Arc<Sessions>, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Legacy {
            host,
            sessions: Mutex::new(HashMap::new()),
            registry,
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
        self.legacy.registry.release(&self.id);
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

/// `GET /sse`: a new session and its event stream, if the caps allow one
/// (else 503 when the server is full, 429 when the key is).
pub async fn open<P: PluginHost>(
    State(legacy): State<Arc<Legacy<P>>>,
    Extension(Owner(key)): Extension<Owner>,
    Extension(caller): Extension<Arc<Principal>>,
) -> Response {
    let reservation = match legacy.registry.reserve(key.clone()) {
        Ok(reservation) => reservation,
        Err(refused) => {
            throttled!(
                info,
                legacy.registry.log,
                "new legacy session refused: {}",
                refused.message()
            );
            return refused.response(None);
        }
    };
    let id = new_session_id();
    let (to_server, from_client) = futures::channel::mpsc::channel::<ClientJsonRpcMessage>(QUEUE);
    let (to_client, from_server) = futures::channel::mpsc::channel::<ServerJsonRpcMessage>(QUEUE);
    let (refusals, refused) = futures::channel::mpsc::channel::<String>(QUEUE);
    let server = McpServer::for_caller(legacy.host.clone(), caller);
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
        // However the service ended, its stream ends too.
        token.cancel();
    });
    let session: Arc<str> = Arc::from(id.as_str());
    reservation.bind(session.clone(), Kind::Legacy(service_token.clone()));
    legacy.sessions().insert(
        id.clone(),
        Session {
            to_server,
            refusals,
            key,
        },
    );
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
    let registry = legacy.registry.clone();
    let answers = from_server.map(move |message| {
        // An answer ends its request's time in flight.
        let answered = match &message {
            JsonRpcMessage::Response(r) => Some(&r.id),
            JsonRpcMessage::Error(e) => e.id.as_ref(),
            _ => None,
        };
        if let Some(answered) = answered {
            registry.end(&session, answered);
        }
        serde_json::to_string(&message).unwrap_or_default()
    });
    let messages = futures::stream::select(answers, refused)
        .map(|data| Ok::<_, Infallible>(Event::default().event("message").data(data)))
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

/// `POST /messages?sessionId=…`: one client message into its session,
/// checked beforehand by [`super::messages::check_message`].
pub async fn post<P: PluginHost>(
    State(legacy): State<Arc<Legacy<P>>>,
    Extension(Owner(key)): Extension<Owner>,
    Query(query): Query<SessionQuery>,
    mut request: axum::extract::Request,
) -> Response {
    // The router checks every POST before it gets here, and keeps the
    // message it parsed.
    let Some(Checked(message)) = request.extensions_mut().remove::<Checked>() else {
        tracing::error!("a legacy message arrived unchecked");
        return (StatusCode::INTERNAL_SERVER_ERROR, "unchecked message\n").into_response();
    };
    let message = Arc::try_unwrap(message).unwrap_or_else(|shared| (*shared).clone());
    let (mut sender, mut refusals) = {
        let sessions = legacy.sessions();
        match sessions.get(&query.session_id) {
            // Another key's session is as good as no session.
            Some(session) if session.key == key => {
                (session.to_server.clone(), session.refusals.clone())
            }
            _ => return (StatusCode::NOT_FOUND, "no such session\n").into_response(),
        }
    };
    let session = query.session_id.as_str();
    legacy.registry.touch(session);
    let request = match &message {
        JsonRpcMessage::Request(request) => Some(request.id.clone()),
        // rmcp does not answer a cancelled request.
        JsonRpcMessage::Notification(n) => {
            if let ClientNotification::CancelledNotification(cancelled) = &n.notification
                && let Some(id) = &cancelled.params.request_id
            {
                legacy.registry.end(session, id);
            }
            None
        }
        _ => None,
    };
    if let Some(id) = &request
        && let Err(busy) = legacy.registry.begin(session, id)
    {
        let refusal = busy.refusal(id);
        throttled!(
            info,
            legacy.registry.log,
            session,
            "request refused: {}",
            refusal.message
        );
        return match refusals.send(refusal.response()).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(_) => (StatusCode::NOT_FOUND, "the session has ended\n").into_response(),
        };
    }
    match sender.send(message).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => {
            if let Some(id) = &request {
                legacy.registry.end(session, id);
            }
            (StatusCode::NOT_FOUND, "the session has ended\n").into_response()
        }
    }
}
