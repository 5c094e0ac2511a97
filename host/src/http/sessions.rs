//! Open MCP sessions, Streamable HTTP and legacy SSE alike: how many there
//! are, in all and per key (`[http] max_sessions`, `max_sessions_per_key`),
//! which key each belongs to, the requests in flight in each, and when each
//! was last used, so that idle ones are closed (`session_idle_timeout_s`)
//! and their memory given back.
//!
//! A session's place is reserved before it is created ([`Reservation`]),
//! so the caps hold however many clients initialize at once, and a session
//! that is refused is never created. A session with a request in flight is
//! not idle.

use super::auth::Owner;
use super::messages::{Checked, json_response, refusal_response};
use super::throttle::{LogThrottle, throttled};
use crate::config::HttpConfig;
use crate::mcp::frame::{self, Refusal};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, ErrorCode, JsonRpcMessage, RequestId};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Requests one session may have in flight.
pub const MAX_IN_FLIGHT: usize = 1024;
/// The longest idle timeout honoured (so that deadlines stay representable).
const MAX_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The JSON-RPC code of a session refused for lack of room.
const NO_ROOM: ErrorCode = ErrorCode(-32000);
/// How long after a session closes some of its memory may still be held:
/// the MCP server's change notifier notices a closed session within 30 s.
const LATE_TRIM: Duration = Duration::from_secs(35);
/// How long a request whose id is in flight waits for that one to end
/// before it is refused. An answer reaches the client a moment before its
/// stream is seen to end here, and a client may reuse the id at once.
const REUSE_GRACE: Duration = Duration::from_millis(250);
/// The header naming a Streamable HTTP session.
const SESSION_HEADER: &str = "mcp-session-id";

/// How many sessions, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_total: usize,
    pub max_per_key: usize,
    pub idle: Duration,
}

impl SessionLimits {
    pub fn new(config: &HttpConfig) -> SessionLimits {
        SessionLimits {
            max_total: config.max_sessions,
            max_per_key: config.max_sessions_per_key,
            idle: Duration::from_secs(config.session_idle_timeout_s).min(MAX_IDLE),
        }
    }
}

/// Which transport a session is on, and how it is closed.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Streamable HTTP: closed through rmcp's session manager.
    Mcp,
    /// Legacy SSE: closed by cancelling this token, which ends its stream.
    Legacy(CancellationToken),
}

#[derive(Debug)]
struct Entry {
    key: Arc<str>,
    kind: Kind,
    last_active: Instant,
    in_flight: HashSet<RequestId>,
    /// Being closed for idleness.
    closing: bool,
}

#[derive(Debug, Default)]
struct Table {
    /// Places reserved for sessions being created.
    reserved: usize,
    /// Open and reserved sessions per key.
    per_key: HashMap<Arc<str>, usize>,
    open: HashMap<Arc<str>, Entry>,
}

/// The open sessions.
#[derive(Debug)]
pub struct Sessions {
    limits: SessionLimits,
    state: Mutex<Table>,
    /// Sessions closed since the start.
    closed: AtomicU64,
    /// Refused sessions and requests: one line a second.
    pub log: LogThrottle,
    /// Woken whenever a request is answered.
    answered: tokio::sync::Notify,
}

/// Why a new session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `[http] max_sessions` are open.
    Total(usize),
    /// `[http] max_sessions_per_key` are open for this key.
    PerKey(usize),
}

impl Refused {
    /// 503 when the server is full, 429 when the key is.
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::Total(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refused::PerKey(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refused::Total(n) => format!(
                "no room for a new session: {n} are open, the server's [http] max_sessions; retry when one has ended"
            ),
            Refused::PerKey(n) => format!(
                "no room for a new session: this API key has {n} open, its [http] max_sessions_per_key; \
                 end one (DELETE /mcp with its Mcp-Session-Id) or let one expire"
            ),
        }
    }

    /// The answer: the JSON-RPC error, for the request `id` if there is one.
    pub fn response(&self, id: Option<&RequestId>) -> Response {
        let refusal = Refusal {
            id: id.map(frame::id_json),
            code: NO_ROOM,
            message: self.message(),
            answer: true,
        };
        json_response(self.status(), refusal.response())
    }
}

/// Why a request was not let into its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// A request with its id is in flight in the session.
    Duplicate,
    /// [`MAX_IN_FLIGHT`] requests are in flight in the session.
    Full,
}

impl Busy {
    /// The error answer for the request `id`.
    pub fn refusal(&self, id: &RequestId) -> Refusal {
        let message = match self {
            Busy::Duplicate => format!(
                "request id {} is already used by a request in flight in this session; ids must be unique",
                frame::id_json(id)
            ),
            Busy::Full => format!(
                "this session has {MAX_IN_FLIGHT} requests in flight; wait for answers before sending more"
            ),
        };
        Refusal::for_request(id, frame::INVALID_REQUEST, message)
    }
}

/// A place for one session, taken from the caps until the session is
/// created ([`Reservation::bind`]) or this is dropped.
#[derive(Debug)]
pub struct Reservation {
    sessions: Arc<Sessions>,
    key: Arc<str>,
    bound: bool,
}

impl Reservation {
    /// The session `id` now holds the place.
    pub fn bind(mut self, id: Arc<str>, kind: Kind) {
        let mut state = self.sessions.lock();
        state.reserved = state.reserved.saturating_sub(1);
        state.open.insert(
            id,
            Entry {
                key: self.key.clone(),
                kind,
                last_active: Instant::now(),
                in_flight: HashSet::new(),
                closing: false,
            },
        );
        self.bound = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bound {
            return;
        }
        let mut state = self.sessions.lock();
        state.reserved = state.reserved.saturating_sub(1);
        forget_one(&mut state.per_key, &self.key);
    }
}

fn forget_one(per_key: &mut HashMap<Arc<str>, usize>, key: &Arc<str>) {
    if let Some(count) = per_key.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            per_key.remove(key);
        }
    }
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Arc<Sessions> {
        Arc::new(Sessions {
            limits,
            state: Mutex::new(Table::default()),
            closed: AtomicU64::new(0),
            log: LogThrottle::default(),
            answered: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new session of `key`, if the caps allow one.
    pub fn reserve(self: &Arc<Self>, key: Arc<str>) -> Result<Reservation, Refused> {
        let mut state = self.lock();
        let mine = state.per_key.get(&key).copied().unwrap_or(0);
        if mine >= self.limits.max_per_key {
            return Err(Refused::PerKey(self.limits.max_per_key));
        }
        if state.reserved + state.open.len() >= self.limits.max_total {
            return Err(Refused::Total(self.limits.max_total));
        }
        state.reserved += 1;
        *state.per_key.entry(key.clone()).or_default() += 1;
        Ok(Reservation {
            sessions: self.clone(),
            key,
            bound: false,
        })
    }

    /// The session `id` has ended: its place is free.
    pub fn release(&self, id: &str) {
        let mut state = self.lock();
        if let Some(entry) = state.open.remove(id) {
            forget_one(&mut state.per_key, &entry.key);
            self.closed.fetch_add(1, Ordering::Relaxed);
            // A burst of sessions should not leave its table behind.
            if state.open.capacity() > 64 && state.open.len() < state.open.capacity() / 4 {
                state.open.shrink_to_fit();
            }
        }
    }

    /// The key session `id` belongs to, if it is open.
    pub fn owner(&self, id: &str) -> Option<Arc<str>> {
        self.lock().open.get(id).map(|entry| entry.key.clone())
    }

    /// The client used session `id`: it is not idle.
    pub fn touch(&self, id: &str) {
        if let Some(entry) = self.lock().open.get_mut(id) {
            entry.last_active = Instant::now();
        }
    }

    /// Starts tracking `request` in session `id`. `Ok(false)` when the
    /// session is not open (there is nothing to track it in).
    pub fn begin(&self, id: &str, request: &RequestId) -> Result<bool, Busy> {
        let mut state = self.lock();
        let Some(entry) = state.open.get_mut(id) else {
            return Ok(false);
        };
        entry.last_active = Instant::now();
        if entry.in_flight.contains(request) {
            return Err(Busy::Duplicate);
        }
        if entry.in_flight.len() >= MAX_IN_FLIGHT {
            return Err(Busy::Full);
        }
        entry.in_flight.insert(request.clone());
        Ok(true)
    }

    /// As [`Sessions::begin`], but a request whose id is in flight waits
    /// up to [`REUSE_GRACE`] for that one to end.
    pub async fn begin_soon(&self, id: &str, request: &RequestId) -> Result<bool, Busy> {
        let deadline = tokio::time::Instant::now() + REUSE_GRACE;
        loop {
            // Listening before looking, so that no answer is missed between.
            let answered = self.answered.notified();
            let mut answered = std::pin::pin!(answered);
            answered.as_mut().enable();
            match self.begin(id, request) {
                Err(Busy::Duplicate) => {
                    if tokio::time::timeout_at(deadline, answered).await.is_err() {
                        return Err(Busy::Duplicate);
                    }
                }
                other => return other,
            }
        }
    }

    /// `request` in session `id` has been answered (or abandoned). The idle
    /// time counts from the last answer.
    pub fn end(&self, id: &str, request: &RequestId) {
        if let Some(entry) = self.lock().open.get_mut(id) {
            entry.in_flight.remove(request);
            entry.last_active = Instant::now();
        }
        self.answered.notify_waiters();
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Sessions closed since the start.
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// The sessions idle since before `now - idle`, marked as closing.
    fn expire(&self, now: Instant) -> Vec<(Arc<str>, Kind)> {
        let mut state = self.lock();
        let idle = self.limits.idle;
        state
            .open
            .iter_mut()
            .filter(|(_, entry)| {
                !entry.closing
                    && entry.in_flight.is_empty()
                    && now.saturating_duration_since(entry.last_active) >= idle
            })
            .map(|(id, entry)| {
                entry.closing = true;
                (id.clone(), entry.kind.clone())
            })
            .collect()
    }
}

tokio::task_local! {
    /// The place reserved for the session an `initialize` request creates,
    /// handed from [`track_mcp`] to [`CountedSessions::create_session`].
    static RESERVATION: RefCell<Option<Reservation>>;
}

/// rmcp's in-memory session manager, keeping [`Sessions`] up to date.
pub struct CountedSessions {
    inner: LocalSessionManager,
    sessions: Arc<Sessions>,
}

/// An error of the session manager.
#[derive(Debug, thiserror::Error)]
pub enum CountedError {
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    #[error("a session was to be created without a place reserved for it")]
    Unreserved,
}

impl CountedSessions {
    /// Idle sessions are closed by [`spawn_reaper`], not by rmcp, whose
    /// timer also runs while a request is in flight.
    pub fn new(sessions: Arc<Sessions>) -> CountedSessions {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = None;
        CountedSessions { inner, sessions }
    }
}

impl SessionManager for CountedSessions {
    type Error = CountedError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), CountedError> {
        let reservation = RESERVATION
            .try_with(|r| r.borrow_mut().take())
            .ok()
            .flatten()
            .ok_or_else(|| {
                tracing::error!("refusing to create a session that no place was reserved for");
                CountedError::Unreserved
            })?;
        let (id, transport) = self.inner.create_session().await?;
        reservation.bind(id.clone(), Kind::Mcp);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<rmcp::model::ServerJsonRpcMessage, CountedError> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, CountedError> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), CountedError> {
        let closed = self.inner.close_session(id).await;
        self.sessions.release(id);
        Ok(closed?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, CountedError> {
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), CountedError> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, CountedError> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, CountedError> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }
}

/// Axum middleware in front of rmcp's `/mcp`, after [`super::messages`]:
///
/// - an `initialize` without a session gets a place reserved, or is refused
///   (503 when the server is full, 429 when its key is);
/// - a request into a session must come with the key that opened it (else
///   404, as for no session), and counts as activity;
/// - a request whose id is in flight in its session is refused (400 with
///   the JSON-RPC error) unless that one ends within [`REUSE_GRACE`]: rmcp
///   would drop one of the two answers. The id is in flight until its
///   answer's stream ends or is dropped.
pub async fn track_mcp(
    State(sessions): State<Arc<Sessions>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(Owner(key)) = request.extensions().get::<Owner>().cloned() else {
        tracing::error!("an MCP request reached the session check without an API key");
        return (StatusCode::INTERNAL_SERVER_ERROR, "no API key\n").into_response();
    };
    // rmcp parses the body again; the parsed copy is not kept beside it.
    let request_id = match request.extensions_mut().remove::<Checked>().as_ref() {
        Some(Checked(message)) => match message.as_ref() {
            JsonRpcMessage::Request(r) => Some((
                r.id.clone(),
                matches!(r.request, ClientRequest::InitializeRequest(_)),
            )),
            _ => None,
        },
        None => None,
    };
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(Arc::<str>::from);
    let Some(session) = session else {
        return match request_id {
            Some((id, true)) => match sessions.reserve(key) {
                Ok(reservation) => {
                    RESERVATION
                        .scope(RefCell::new(Some(reservation)), next.run(request))
                        .await
                }
                Err(refused) => {
                    throttled!(
                        info,
                        sessions.log,
                        "new session refused: {}",
                        refused.message()
                    );
                    refused.response(Some(&id))
                }
            },
            _ => next.run(request).await,
        };
    };
    match sessions.owner(&session) {
        // Another key's session is as good as no session.
        Some(owner) if owner != key => {
            return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
        }
        Some(_) => sessions.touch(&session),
        // Not open: rmcp says so.
        None => return next.run(request).await,
    }
    let Some((id, _)) = request_id else {
        return next.run(request).await;
    };
    match sessions.begin_soon(&session, &id).await {
        Ok(true) => {
            let guard = InFlight {
                sessions,
                session,
                id,
            };
            next.run(request).await.map(|body| {
                Body::new(Answering {
                    body,
                    guard: Some(guard),
                })
            })
        }
        Ok(false) => next.run(request).await,
        Err(busy) => {
            let refusal = busy.refusal(&id);
            throttled!(
                info,
                sessions.log,
                %session,
                "request refused: {}",
                refusal.message
            );
            refusal_response(StatusCode::BAD_REQUEST, &refusal)
        }
    }
}

/// A request in flight in a Streamable HTTP session, until dropped.
struct InFlight {
    sessions: Arc<Sessions>,
    session: Arc<str>,
    id: RequestId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.sessions.end(&self.session, &self.id);
    }
}

/// A response body that holds its request in flight until it ends.
struct Answering {
    body: Body,
    guard: Option<InFlight>,
}

impl http_body::Body for Answering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Closes idle sessions every little while until `stop`, then gives the
/// memory they held back to the system.
pub fn spawn_reaper(
    sessions: Arc<Sessions>,
    manager: Arc<CountedSessions>,
    stop: CancellationToken,
) {
    let tick = (sessions.limits.idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    tokio::spawn(async move {
        // Sessions closed as of the last tick, and as of the last trim.
        let (mut seen, mut trimmed_at) = (0, 0);
        let mut late_trim: Option<Instant> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(tick) => {}
            }
            // The sessions closed before the last tick have had a tick to
            // finish their tasks; what they freed goes back to the system
            // instead of staying in the heap. What they still held is
            // returned once more a little later.
            let now = Instant::now();
            if seen != trimmed_at {
                trimmed_at = seen;
                late_trim = Some(now + LATE_TRIM);
                trim_heap().await;
            } else if late_trim.is_some_and(|at| now >= at) {
                late_trim = None;
                trim_heap().await;
            }
            let expired = sessions.expire(Instant::now());
            if !expired.is_empty() {
                tracing::info!(
                    count = expired.len(),
                    open = sessions.open(),
                    "closing idle sessions ([http] session_idle_timeout_s)"
                );
            }
            for (id, kind) in expired {
                match kind {
                    Kind::Legacy(token) => token.cancel(),
                    // On its own task: a session slow to take the close
                    // must not hold up the others.
                    Kind::Mcp => {
                        let manager = manager.clone();
                        tokio::spawn(async move {
                            if let Err(e) = manager.close_session(&id).await {
                                tracing::debug!(session = %id, "closing an idle session: {e}");
                            }
                        });
                    }
                }
            }
            seen = sessions.closed();
        }
    });
}

/// Returns free heap memory to the system. glibc's allocator keeps what a
/// burst of sessions freed for reuse, so resident memory would stay at its
/// peak; other allocators return it by themselves.
async fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks and releases the allocator's own
        // free lists; it takes no pointers and is thread-safe.
        let trimmed = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        if let Err(e) = trimmed {
            tracing::debug!("malloc_trim did not run: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(max_total: usize, max_per_key: usize) -> Arc<Sessions> {
        Sessions::new(SessionLimits {
            max_total,
            max_per_key,
            idle: Duration::from_secs(60),
        })
    }

    #[test]
    fn places_are_capped_per_key_and_in_total() {
        let s = sessions(3, 2);
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        s.reserve(a.clone())
            .unwrap()
            .bind(Arc::from("1"), Kind::Mcp);
        let pending = s.reserve(a.clone()).unwrap();
        assert_eq!(s.reserve(a.clone()).unwrap_err(), Refused::PerKey(2));
        s.reserve(b.clone())
            .unwrap()
            .bind(Arc::from("2"), Kind::Mcp);
        assert_eq!(s.reserve(b.clone()).unwrap_err(), Refused::Total(3));
        // An unused reservation frees its place, and so does a release.
        drop(pending);
        let again = s.reserve(b.clone()).unwrap();
        drop(again);
        s.release("1");
        s.release("1");
        assert_eq!(s.open(), 1);
        assert_eq!(s.closed(), 1);
        s.reserve(a.clone()).unwrap();
        assert!(
            Refused::PerKey(2)
                .message()
                .contains("[http] max_sessions_per_key")
        );
        assert!(Refused::Total(3).message().contains("[http] max_sessions;"));
    }

    #[tokio::test]
    async fn an_id_answered_a_moment_later_may_be_reused() {
        let s = sessions(10, 10);
        s.reserve(Arc::from("k"))
            .unwrap()
            .bind(Arc::from("s"), Kind::Mcp);
        let id = RequestId::Number(7);
        assert_eq!(s.begin("s", &id), Ok(true));
        let ending = {
            let (s, id) = (s.clone(), id.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                s.end("s", &id);
            })
        };
        assert_eq!(s.begin_soon("s", &id).await, Ok(true));
        ending.await.unwrap();
        // Still in flight after the grace: refused.
        assert_eq!(s.begin_soon("s", &id).await, Err(Busy::Duplicate));
    }

    #[test]
    fn ids_in_flight_are_unique_per_session_and_keep_it_open() {
        let s = Sessions::new(SessionLimits {
            max_total: 10,
            max_per_key: 10,
            idle: Duration::ZERO,
        });
        s.reserve(Arc::from("k"))
            .unwrap()
            .bind(Arc::from("s1"), Kind::Mcp);
        s.reserve(Arc::from("k"))
            .unwrap()
            .bind(Arc::from("s2"), Kind::Mcp);
        let id = RequestId::Number(1);
        assert_eq!(s.begin("s1", &id), Ok(true));
        assert_eq!(s.begin("s1", &id), Err(Busy::Duplicate));
        assert_eq!(s.begin("s2", &id), Ok(true));
        assert_eq!(s.begin("gone", &id), Ok(false));
        s.end("s2", &id);
        // s1 has a request in flight: not idle.
        let expired = s.expire(Instant::now());
        assert_eq!(expired.len(), 1);
        assert_eq!(&*expired[0].0, "s2");
        assert!(s.expire(Instant::now()).is_empty(), "marked as closing");
        s.end("s1", &id);
        assert_eq!(s.begin("s1", &id), Ok(true));
        let refusal = Busy::Duplicate.refusal(&id);
        assert_eq!(refusal.id.as_deref(), Some("1"));
        assert!(refusal.message.contains("request id 1"));
    }
}
