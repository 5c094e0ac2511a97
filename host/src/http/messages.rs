//! Every JSON-RPC message posted to `/mcp` or `/messages` is read (within
//! the body limit) and checked ([`crate::mcp::frame`]) before rmcp or the
//! legacy transport sees it. A refused message is answered here, with the
//! JSON-RPC error the stdio transport would write: its id when the id can
//! be read, `null` otherwise. Valid messages pass on unchanged, with their
//! parsed form in the request's extensions ([`Checked`]).

use super::throttle::{LogThrottle, throttled};
use crate::config::HttpConfig;
use crate::mcp::frame::{self, FrameLimits, Refusal};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use rmcp::model::ClientJsonRpcMessage;
use std::sync::Arc;

/// How much of a too-large body is still read (and thrown away) to find
/// its id and to let the client finish sending before it is answered:
/// closing a connection with unread data resets it, and the client may
/// lose the answer.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// The limits a posted message is checked against.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    /// `[mcp]`'s limits, with `max_bytes` lowered to `[http] max_body_bytes`
    /// when that is lower.
    pub frame: FrameLimits,
    /// The setting that sets `frame.max_bytes`, for messages.
    pub size_key: &'static str,
}

impl MessageLimits {
    pub fn new(http: &HttpConfig, mcp: FrameLimits) -> MessageLimits {
        let (max_bytes, size_key) = if http.max_body_bytes < mcp.max_bytes {
            (http.max_body_bytes, "[http] max_body_bytes")
        } else {
            (mcp.max_bytes, "[mcp] max_message_bytes")
        };
        MessageLimits {
            frame: FrameLimits { max_bytes, ..mcp },
            size_key,
        }
    }

    fn too_large(&self) -> String {
        format!(
            "the message is larger than {} bytes (its {})",
            self.frame.max_bytes, self.size_key
        )
    }
}

/// A posted message that passed [`frame::check`], as parsed.
#[derive(Debug, Clone)]
pub struct Checked(pub Arc<ClientJsonRpcMessage>);

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit; what could be read of its outline.
    TooLarge(Box<frame::Outline>),
    /// The connection failed or the framing was broken.
    Unreadable(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(_) => f.write_str("the message is over the size limit"),
            BodyError::Unreadable(why) => write!(f, "the body could not be read: {why}"),
        }
    }
}

impl BodyError {
    /// The answer: 413 with the JSON-RPC error (its id if it was read), or
    /// 400 for a body that could not be read.
    pub fn response(&self, limits: &MessageLimits) -> Response {
        match self {
            BodyError::TooLarge(outline) => refusal_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &outline.refuse(frame::INVALID_REQUEST, limits.too_large()),
            ),
            BodyError::Unreadable(why) => refusal_response(
                StatusCode::BAD_REQUEST,
                &Refusal {
                    id: None,
                    code: frame::PARSE_ERROR,
                    message: format!("the request body could not be read: {why}"),
                    answer: true,
                },
            ),
        }
    }
}

/// Reads a whole body of at most `limit` bytes. A longer one is read on
/// (without keeping it, up to [`DRAIN_BYTES`] more) only to find its id.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut kept: Vec<u8> = Vec::new();
    let mut over: Option<(Box<frame::Outline>, usize)> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // Past the limit the answer is already known.
            Err(_) if over.is_some() => break,
            Err(e) => return Err(BodyError::Unreadable(e.to_string())),
        };
        match &mut over {
            Some((outline, drained)) => {
                outline.feed(&chunk);
                *drained = drained.saturating_add(chunk.len());
                if *drained > DRAIN_BYTES {
                    break;
                }
            }
            None if kept.len() + chunk.len() > limit => {
                let mut outline = Box::<frame::Outline>::default();
                outline.feed(&kept);
                outline.feed(&chunk);
                kept = Vec::new();
                over = Some((outline, chunk.len()));
            }
            None => kept.extend_from_slice(&chunk),
        }
    }
    match over {
        Some((outline, _)) => Err(BodyError::TooLarge(outline)),
        None => Ok(Bytes::from(kept)),
    }
}

/// A refused message's answer: `status`, and the JSON-RPC error as the
/// body (with a `null` id for a notification, which the MCP specification
/// allows in an HTTP error answer).
pub fn refusal_response(status: StatusCode, refusal: &Refusal) -> Response {
    json_response(status, refusal.response())
}

/// `status` with a JSON body.
pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What [`check_message`] needs.
pub struct MessageCheck {
    pub limits: MessageLimits,
    /// Refusals are the client's mistakes; one line a second is enough.
    pub log: LogThrottle,
}

/// Axum middleware for the routes clients post messages to: reads and
/// checks the body, answers a refused message, passes a valid one on with
/// [`Checked`] in its extensions. Other methods pass untouched.
pub async fn check_message(
    State(check): State<Arc<MessageCheck>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match read_body(body, check.limits.frame.max_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => {
            throttled!(
                warn,
                check.log,
                path = %parts.uri.path(),
                "refused a message: {error}"
            );
            return error.response(&check.limits);
        }
    };
    match frame::check(&bytes, check.limits.frame) {
        Ok(message) => {
            parts.extensions.insert(Checked(Arc::new(message)));
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(refusal) => {
            throttled!(
                warn,
                check.log,
                path = %parts.uri.path(),
                "refused a message: {}",
                refusal.message
            );
            refusal_response(StatusCode::BAD_REQUEST, &refusal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_body_bytes: usize, max_message_bytes: usize) -> MessageLimits {
        let http = HttpConfig {
            max_body_bytes,
            ..HttpConfig::default()
        };
        MessageLimits::new(
            &http,
            FrameLimits {
                max_bytes: max_message_bytes,
                max_depth: 8,
            },
        )
    }

    #[test]
    fn the_lower_limit_applies_and_is_named() {
        let l = limits(100, 200);
        assert_eq!(l.frame.max_bytes, 100);
        assert!(l.too_large().contains("[http] max_body_bytes"));
        let l = limits(300, 200);
        assert_eq!(l.frame.max_bytes, 200);
        assert!(l.too_large().contains("[mcp] max_message_bytes"));
        assert_eq!(l.frame.max_depth, 8);
    }

    fn chunked(parts: Vec<&'static [u8]>) -> Body {
        Body::from_stream(futures::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p))),
        ))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = chunked(vec![b"{\"a\":", b"1}"]);
        assert_eq!(&read_body(body, 7).await.unwrap()[..], b"{\"a\":1}");
    }

    #[tokio::test]
    async fn an_oversized_body_still_yields_its_id() {
        let body = chunked(vec![
            br#"{"jsonrpc":"2.0","method":"ping","params":{"p":""#,
            &[b'x'; 100],
            br#""},"id":17}"#,
        ]);
        let Err(BodyError::TooLarge(outline)) = read_body(body, 64).await else {
            panic!("read whole");
        };
        let refusal = outline.refuse(frame::INVALID_REQUEST, "big".into());
        assert_eq!(refusal.id.as_deref(), Some("17"));
        assert!(refusal.answer);
    }
}
