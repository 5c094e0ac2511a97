//! MCP over stdin and stdout, one JSON-RPC message per line.
//!
//! rmcp serves the protocol; this module owns the wire. Each line is checked
//! ([`super::frame`]) on the reading thread before rmcp sees it, so a line
//! that is too long, too deep or not JSON gets an error answer instead of
//! being dropped. Every request is tracked from the line that brought it to
//! the line that answers it: a second request with an id still in flight is
//! refused, no request gets two answers, and at shutdown every request still
//! running gets one (its result, or an error saying sluice is stopping).

use super::McpServer;
use super::frame::{self, FrameLimits, Refusal};
use crate::registry::model::PluginHost;
use rmcp::model::{ClientJsonRpcMessage, ClientNotification, RequestId, ServerJsonRpcMessage};
use rmcp::service::{QuitReason, RoleServer, ServerInitializeError};
use rmcp::transport::Transport;
use rmcp::{ServiceExt as _, model::JsonRpcMessage};
use std::collections::HashSet;
use std::io::{Read as _, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// How much of stdin is read at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Messages waiting for rmcp, and answers waiting for stdout. Both are
/// bounded, so a client that writes faster than sluice works (or reads
/// slower) is slowed down instead of growing memory.
const QUEUE: usize = 256;
/// How long the last answers may take to reach stdout at exit.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// How the stdio transport behaves.
#[derive(Debug, Clone, Copy)]
pub struct StdioSettings {
    pub limits: FrameLimits,
    /// How long calls in flight may run on after input ends or a signal
    /// arrives; the rest are answered with an error.
    pub shutdown_grace: Duration,
}

/// What goes to stdout.
enum Outgoing {
    /// From rmcp: a response, a notification or a request to the client.
    Message(Box<ServerJsonRpcMessage>),
    /// An error answer made here, already serialized.
    Raw(String),
    /// Answered once everything before it has been written and flushed.
    Flush(oneshot::Sender<()>),
}

/// The requests in flight, by id, and whether sluice is stopping.
#[derive(Default)]
struct Calls {
    in_flight: Mutex<HashSet<RequestId>>,
    stopping: AtomicBool,
    /// Woken whenever a request is answered.
    answered: Notify,
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<RequestId>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts tracking `id`; false when a request with that id is in flight.
    fn begin(&self, id: &RequestId) -> bool {
        self.lock().insert(id.clone())
    }

    /// Stops tracking `id`; false when it was not in flight (answered,
    /// cancelled, abandoned, or never seen).
    fn end(&self, id: &RequestId) -> bool {
        let removed = self.lock().remove(id);
        if removed {
            self.answered.notify_waiters();
        }
        removed
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every request still in flight, no longer tracked.
    fn abandon_all(&self) -> Vec<RequestId> {
        self.lock().drain().collect()
    }

    /// Resolves once no request is in flight.
    async fn drained(&self) {
        loop {
            let answered = self.answered.notified();
            if self.is_empty() {
                return;
            }
            answered.await;
        }
    }
}

/// rmcp's end of the wire: messages from the reading thread, answers to
/// the writing task. Cheap to make again, so that a failed initialization
/// can be followed by another on the same stream.
struct StdioTransport {
    incoming: Arc<tokio::sync::Mutex<mpsc::Receiver<ClientJsonRpcMessage>>>,
    outgoing: mpsc::Sender<Outgoing>,
}

/// The writing task is gone: stdout is closed.
#[derive(Debug, thiserror::Error)]
#[error("stdout is closed")]
pub struct StdoutClosed;

impl Transport<RoleServer> for StdioTransport {
    type Error = StdoutClosed;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), StdoutClosed>> + Send + 'static {
        let outgoing = self.outgoing.clone();
        async move {
            outgoing
                .send(Outgoing::Message(Box::new(item)))
                .await
                .map_err(|_| StdoutClosed)
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        let incoming = self.incoming.clone();
        async move { incoming.lock().await.recv().await }
    }

    async fn close(&mut self) -> Result<(), StdoutClosed> {
        Ok(())
    }
}

/// Serves MCP over stdin/stdout until input ends, the service ends, or the
/// process gets SIGINT or SIGTERM. Calls in flight then have
/// `shutdown_grace` to finish; those that do not are answered with an
/// error. Returns how many calls were abandoned, so that the caller can
/// stop their database work.
///
/// Stdout carries only protocol messages: the caller must send logs (the
/// `tracing` subscriber) to stderr.
pub async fn serve_stdio<P: PluginHost>(
    host: Arc<P>,
    settings: StdioSettings,
) -> anyhow::Result<usize> {
    let calls = Arc::new(Calls::default());
    let (to_service, from_client) = mpsc::channel(QUEUE);
    let (to_client, for_stdout) = mpsc::channel(QUEUE);
    let input_ended = Arc::new(Notify::new());
    // Held until the end, so that rmcp never sees its input close: when
    // input ends, the grace period below decides what happens to the calls
    // in flight, not rmcp's own (shorter) drain.
    let _service_input = to_service.clone();
    start_reader(
        settings.limits,
        calls.clone(),
        to_service,
        to_client.clone(),
        input_ended.clone(),
    )?;
    start_writer(for_stdout, calls.clone())?;
    let incoming = Arc::new(tokio::sync::Mutex::new(from_client));

    let mut signal = std::pin::pin!(crate::shutdown::signal());
    let mut ended = std::pin::pin!(input_ended.notified());
    // Until a client initializes; a message that cannot start a session
    // (a stray notification, a failed initialize) does not end the server.
    let running = loop {
        let transport = StdioTransport {
            incoming: incoming.clone(),
            outgoing: to_client.clone(),
        };
        tokio::select! {
            result = McpServer::new(host.clone()).serve(transport) => match result {
                Ok(running) => break running,
                Err(ServerInitializeError::ConnectionClosed(during)) => {
                    tracing::info!(%during, "client closed the connection before initializing");
                    flush(&to_client).await;
                    return Ok(0);
                }
                Err(error) => {
                    tracing::warn!("no session started: {error}; waiting for an initialize request");
                }
            },
            signal = &mut signal => {
                tracing::info!(signal, "shutting down before initialization");
                flush(&to_client).await;
                return Ok(0);
            }
            () = &mut ended => {
                tracing::info!("client closed the connection before initializing");
                flush(&to_client).await;
                return Ok(0);
            }
        }
    };
    tracing::info!("MCP session established on stdio");

    let cancel = running.cancellation_token();
    let mut waiting = std::pin::pin!(running.waiting());
    let stop_reason = tokio::select! {
        outcome = &mut waiting => {
            log_outcome(outcome);
            flush(&to_client).await;
            return Ok(0);
        }
        signal = &mut signal => signal,
        () = &mut ended => "end of input",
    };

    // Stop: no new calls; those in flight get the grace period.
    calls.stopping.store(true, Ordering::SeqCst);
    tracing::info!(
        reason = stop_reason,
        grace_ms = settings.shutdown_grace.as_millis() as u64,
        "shutting down: finishing the calls in flight"
    );
    tokio::select! {
        () = calls.drained() => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {}
        // A second signal cuts the wait short.
        _ = crate::shutdown::signal() => {}
    }
    let abandoned = calls.abandon_all();
    for id in &abandoned {
        let refusal = Refusal::for_request(
            id,
            frame::STOPPING,
            "sluice is stopping; this call was abandoned before it finished",
        );
        let _ = to_client.send(Outgoing::Raw(refusal.response())).await;
    }
    if !abandoned.is_empty() {
        tracing::warn!(
            calls = abandoned.len(),
            "abandoned calls still running at shutdown"
        );
    }
    flush(&to_client).await;
    // Everything has its answer: rmcp need not drain (it would wait for the
    // abandoned calls), and their statements are the caller's to cancel.
    cancel.cancel();
    tracing::info!("MCP service stopped");
    Ok(abandoned.len())
}

fn log_outcome(outcome: Result<QuitReason, tokio::task::JoinError>) {
    match outcome {
        Ok(QuitReason::Closed) => tracing::info!("client closed the connection"),
        Ok(QuitReason::Cancelled) => tracing::info!("MCP service stopped"),
        Ok(other) => tracing::info!(reason = ?other, "MCP service ended"),
        Err(error) => tracing::error!("MCP service task failed: {error}"),
    }
}

/// Waits (a bounded time) until everything queued so far is on stdout.
async fn flush(to_client: &mpsc::Sender<Outgoing>) {
    let (done, flushed) = oneshot::channel();
    if to_client.send(Outgoing::Flush(done)).await.is_ok()
        && tokio::time::timeout(FLUSH_LIMIT, flushed).await.is_err()
    {
        tracing::warn!("stdout did not take the last answers in time");
    }
}

/// Writes what the service and the reader send, one message per line, on
/// a thread of its own.
///
/// Tokio's stdout hands every write and flush to its blocking pool, and
/// each hand-off wakes a pool thread and then the worker again: about five
/// context switches per answer. A thread that blocks in `write` costs one,
/// serializes the answer off the async workers, and, like the reader, never
/// holds up the runtime's shutdown when the client stops reading.
///
/// An answer to a request that is no longer in flight is dropped, so every
/// request gets exactly one.
fn start_writer(mut queue: mpsc::Receiver<Outgoing>, calls: Arc<Calls>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("mcp-stdout".into())
        .spawn(move || {
            // Std's stdout is line-buffered: a line with its newline goes
            // out in one `write`.
            let mut stdout = std::io::stdout().lock();
            while let Some(item) = queue.blocking_recv() {
                let Some(mut line) = outgoing_line(item, &calls, &mut stdout) else {
                    continue;
                };
                line.push('\n');
                if let Err(e) = stdout.write_all(line.as_bytes()) {
                    tracing::info!("stdout closed: {e}");
                    break;
                }
            }
        })?;
    Ok(())
}

/// The line that `item` puts on stdout, if any: a message serialized, or
/// nothing for an answer nobody waits for and for a flush (done here).
fn outgoing_line(item: Outgoing, calls: &Calls, stdout: &mut impl Write) -> Option<String> {
    match item {
        Outgoing::Message(message) => {
            let answering = match message.as_ref() {
                JsonRpcMessage::Response(r) => Some(&r.id),
                JsonRpcMessage::Error(e) => e.id.as_ref(),
                _ => None,
            };
            if let Some(id) = answering
                && !calls.end(id)
            {
                tracing::debug!(%id, "dropping an answer to a request already answered");
                return None;
            }
            match serde_json::to_string(&message) {
                Ok(line) => Some(line),
                // Still answer, or the client would wait forever.
                Err(e) => match answering {
                    Some(id) => Some(
                        Refusal::for_request(
                            id,
                            rmcp::model::ErrorCode::INTERNAL_ERROR,
                            format!("the answer could not be serialized: {e}"),
                        )
                        .response(),
                    ),
                    None => {
                        tracing::error!("a message could not be serialized: {e}");
                        None
                    }
                },
            }
        }
        Outgoing::Raw(line) => Some(line),
        Outgoing::Flush(done) => {
            if let Err(e) = stdout.flush() {
                tracing::debug!("flushing stdout: {e}");
            }
            let _ = done.send(());
            None
        }
    }
}

/// Reads stdin on a thread of its own, a line at a time.
///
/// Tokio's stdin reads on its blocking pool, and the runtime waits for those
/// reads when it shuts down: after a signal the process would hang until the
/// client writes or closes stdin. A plain thread blocked in `read` does not
/// hold up the runtime, and exiting the process ends it. Checking each line
/// here also keeps that work off the async workers.
fn start_reader(
    limits: FrameLimits,
    calls: Arc<Calls>,
    to_service: mpsc::Sender<ClientJsonRpcMessage>,
    to_client: mpsc::Sender<Outgoing>,
    input_ended: Arc<Notify>,
) -> anyhow::Result<()> {
    let mut lines = LineReader {
        limits,
        calls,
        to_service,
        to_client,
        line: Vec::new(),
        overlong: None,
    };
    std::thread::Builder::new()
        .name("mcp-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buffer = vec![0; READ_CHUNK];
            loop {
                let n = match stdin.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        tracing::warn!(%error, "reading stdin failed");
                        break;
                    }
                };
                if lines.feed(&buffer[..n]).is_err() {
                    break;
                }
            }
            // A last line without its newline still counts.
            let _ = lines.end_line();
            input_ended.notify_one();
        })?;
    Ok(())
}

/// The service or the writer is gone; reading on is pointless.
struct Gone;

/// Splits stdin into lines and dispatches each.
struct LineReader {
    limits: FrameLimits,
    calls: Arc<Calls>,
    to_service: mpsc::Sender<ClientJsonRpcMessage>,
    to_client: mpsc::Sender<Outgoing>,
    /// The current line, while it is within the limit.
    line: Vec<u8>,
    /// The current line once it is over the limit: only its outline is
    /// kept, to read its id.
    overlong: Option<frame::Outline>,
}

impl LineReader {
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Gone> {
        while !bytes.is_empty() {
            let (part, rest, complete) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => (&bytes[..at], &bytes[at + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            match &mut self.overlong {
                Some(outline) => outline.feed(part),
                None if self.line.len() + part.len() > self.limits.max_bytes => {
                    let mut outline = frame::Outline::default();
                    outline.feed(&self.line);
                    outline.feed(part);
                    self.line = Vec::new();
                    self.overlong = Some(outline);
                }
                None => self.line.extend_from_slice(part),
            }
            if complete {
                self.end_line()?;
            }
        }
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), Gone> {
        if let Some(outline) = self.overlong.take() {
            let refusal = outline.refuse(
                frame::INVALID_REQUEST,
                frame::too_large(self.limits.max_bytes),
            );
            tracing::warn!("refused a message: {}", refusal.message);
            return self.answer(&refusal);
        }
        let line = std::mem::take(&mut self.line);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return Ok(());
        }
        match frame::check(trimmed, self.limits) {
            Ok(message) => self.dispatch(message),
            Err(refusal) => {
                tracing::warn!("refused a message: {}", refusal.message);
                self.answer(&refusal)
            }
        }
    }

    fn answer(&self, refusal: &Refusal) -> Result<(), Gone> {
        if !refusal.answer {
            return Ok(());
        }
        self.to_client
            .blocking_send(Outgoing::Raw(refusal.response()))
            .map_err(|_| Gone)
    }

    fn dispatch(&self, message: ClientJsonRpcMessage) -> Result<(), Gone> {
        match &message {
            JsonRpcMessage::Request(request) => {
                let id = &request.id;
                if self.calls.stopping.load(Ordering::SeqCst) {
                    return self.answer(&Refusal::for_request(
                        id,
                        frame::STOPPING,
                        "sluice is stopping and takes no new requests",
                    ));
                }
                if !self.calls.begin(id) {
                    return self.answer(&Refusal::for_request(
                        id,
                        frame::INVALID_REQUEST,
                        format!(
                            "request id {} is already used by a request in flight; ids must be unique",
                            frame::id_json(id)
                        ),
                    ));
                }
            }
            // rmcp drops the answer of a cancelled request.
            JsonRpcMessage::Notification(n) => {
                if let ClientNotification::CancelledNotification(cancelled) = &n.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    self.calls.end(id);
                }
            }
            _ => {}
        }
        let id = match &message {
            JsonRpcMessage::Request(request) => Some(request.id.clone()),
            _ => None,
        };
        if self.to_service.blocking_send(message).is_err() {
            if let Some(id) = id {
                self.calls.end(&id);
                self.answer(&Refusal::for_request(
                    &id,
                    frame::STOPPING,
                    "sluice is stopping and takes no new requests",
                ))?;
            }
            return Err(Gone);
        }
        Ok(())
    }
}
