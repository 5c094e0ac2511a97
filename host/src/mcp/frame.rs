//! What a client sends, checked before anything parses it: one JSON-RPC
//! message, bounded in size and depth, valid UTF-8 and strict JSON. What
//! fails gets an error answer that carries the request's id whenever the id
//! can be read, so that no request waits forever (JSON-RPC 2.0 §5.1).
//!
//! The same check serves stdio lines and HTTP bodies. Reading the id is a
//! tolerant single pass ([`Outline`]) that never recurses and keeps only a
//! few bytes, so it also reads the id of a message too long to keep.

use rmcp::model::{ClientJsonRpcMessage, ErrorCode, RequestId};
use serde_json::Value as Json;

/// Limits on one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Bytes of one message (a stdio line without its newline, an HTTP body).
    pub max_bytes: usize,
    /// Nesting of arrays and objects, the message's own object included.
    pub max_depth: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_depth: DEFAULT_MAX_JSON_DEPTH,
        }
    }
}

/// Default for `[mcp] max_message_bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Default for `[mcp] max_json_depth`. serde_json gives up at 128 levels
/// (and the SDKs' schemas add a few), so a message must stay below it.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
/// The largest `max_json_depth` an operator may set.
pub const MAX_JSON_DEPTH_LIMIT: usize = 100;

/// JSON-RPC's "parse error": the message could not be read at all.
pub const PARSE_ERROR: ErrorCode = ErrorCode(-32700);
/// JSON-RPC's "invalid request".
pub const INVALID_REQUEST: ErrorCode = ErrorCode(-32600);
/// JSON-RPC's "invalid params".
pub const INVALID_PARAMS: ErrorCode = ErrorCode(-32602);
/// A server error: sluice is shutting down and takes no new work.
pub const STOPPING: ErrorCode = ErrorCode(-32000);

/// Raw ids longer than this are not echoed back.
const MAX_ID_BYTES: usize = 1024;
/// Method names longer than this are not read.
const MAX_METHOD_BYTES: usize = 256;

/// A message that is refused, and the answer it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The id to answer with: JSON text of a string or number, or `None`
    /// for `null` when the id could not be read.
    pub id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
    /// Whether it gets an answer: notifications and the client's own
    /// responses do not (JSON-RPC answers requests only).
    pub answer: bool,
}

impl Refusal {
    /// The JSON-RPC error response, one line of JSON without its newline.
    pub fn response(&self) -> String {
        let id = self.id.as_deref().unwrap_or("null");
        let error = serde_json::json!({ "code": self.code.0, "message": self.message });
        format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{error}}}"#)
    }

    /// An error answer for the request `id`, in rmcp's form.
    pub fn for_request(id: &RequestId, code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            id: Some(id_json(id)),
            code,
            message: message.into(),
            answer: true,
        }
    }
}

/// A request id as JSON text.
pub fn id_json(id: &RequestId) -> String {
    match id {
        RequestId::Number(n) => n.to_string(),
        RequestId::String(s) => Json::String(s.to_string()).to_string(),
    }
}

/// Checks one whole message and parses it.
pub fn check(bytes: &[u8], limits: FrameLimits) -> Result<ClientJsonRpcMessage, Refusal> {
    let mut outline = Outline::default();
    outline.feed(bytes);
    if bytes.len() > limits.max_bytes {
        return Err(outline.refuse(INVALID_REQUEST, too_large(limits.max_bytes)));
    }
    if outline.top == Top::Array {
        let valid = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        return Err(Refusal {
            id: None,
            code: if valid { INVALID_REQUEST } else { PARSE_ERROR },
            message: if valid {
                "batches (a JSON array of messages) are not supported; send one message at a time"
                    .into()
            } else {
                "invalid JSON".into()
            },
            answer: true,
        });
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(outline.refuse(INVALID_REQUEST, "the message is not valid UTF-8".into()));
    }
    if outline.max_depth > limits.max_depth {
        return Err(outline.refuse(
            INVALID_REQUEST,
            format!(
                "the message nests arrays and objects deeper than {} levels (its [mcp] max_json_depth)",
                limits.max_depth
            )));
    }
    serde_json::from_slice::<ClientJsonRpcMessage>(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                outline.refuse(INVALID_REQUEST, format!("invalid JSON: {e}"))
            }
            Category::Data => {
                let code = if outline.method.is_some() && outline.id.is_some() {
                    INVALID_PARAMS
                } else {
                    INVALID_REQUEST
                };
                let what = match &outline.method {
                    Some(method) => format!("invalid {method} request: {e}"),
                    None => format!("not a JSON-RPC 2.0 message: {e}"),
                };
                outline.refuse(code, what)
            }
        }
    })
}

/// The message for a message over `limit` bytes.
pub fn too_large(limit: usize) -> String {
    format!("the message is larger than {limit} bytes (its [mcp] max_message_bytes)")
}

/// What kind of value the message is, as far as it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Top {
    #[default]
    Nothing,
    Object,
    Array,
    Other,
}

/// Which top-level member is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Id,
    Method,
    Other,
}

/// Where the reader is inside the top-level object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before a key (or the closing brace).
    Key,
    /// Inside a key string.
    InKey,
    /// After a key, before its colon.
    Colon,
    /// Before a value.
    Value,
    /// Inside a string value.
    InString,
    /// Inside a number or literal.
    InBare,
    /// Inside an array or object value (nested).
    Nested,
    /// After a value, before a comma or the closing brace.
    After,
}

/// A tolerant, streaming read of a message's top level: its kind, its `id`
/// and `method` members, and how deeply it nests. It never fails: on
/// malformed input it reads what it can. It does not recurse and keeps at
/// most a few KiB, however long the input.
#[derive(Debug, Clone)]
pub struct Outline {
    top: Top,
    depth: usize,
    max_depth: usize,
    in_string: bool,
    escaped: bool,
    phase: Phase,
    member: Member,
    /// The key or scalar value being read (bounded).
    token: Vec<u8>,
    token_overflow: bool,
    id: Option<String>,
    method: Option<String>,
    /// Whether the top level has an `id` member, readable or not.
    has_id: bool,
    /// Whether the top level has a `result` or `error` member (a response).
    response: bool,
}

impl Default for Outline {
    fn default() -> Self {
        Outline {
            top: Top::Nothing,
            depth: 0,
            max_depth: 0,
            in_string: false,
            escaped: false,
            phase: Phase::Key,
            member: Member::Other,
            token: Vec::new(),
            token_overflow: false,
            id: None,
            method: None,
            has_id: false,
            response: false,
        }
    }
}

impl Outline {
    /// Reads the next bytes of the message.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// The deepest nesting seen.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// A refusal of this message: with its id if it was read, answered
    /// unless the message is a notification or a response.
    pub fn refuse(&self, code: ErrorCode, message: String) -> Refusal {
        let id = self.id.clone();
        let notification = self.method.is_some() && !self.has_id && self.complete_top();
        let answer = !(notification || self.response && self.method.is_none());
        Refusal {
            code: if id.is_none() { PARSE_ERROR } else { code },
            id,
            message,
            answer,
        }
    }

    /// Whether the top-level value was read to its end.
    fn complete_top(&self) -> bool {
        self.top != Top::Nothing && self.depth == 0
    }

    fn keep(&mut self, b: u8) {
        if self.token.len() < MAX_ID_BYTES {
            self.token.push(b);
        } else {
            self.token_overflow = true;
        }
    }

    fn start_token(&mut self) {
        self.token.clear();
        self.token_overflow = false;
    }

    fn byte(&mut self, b: u8) {
        if self.in_string {
            self.string_byte(b);
            return;
        }
        let space = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        // The end of a bare value at the top level.
        if self.depth == 1
            && self.phase == Phase::InBare
            && (space || matches!(b, b',' | b'}' | b']'))
        {
            self.end_value();
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.escaped = false;
                if self.depth == 1 {
                    match self.phase {
                        Phase::Key => {
                            self.phase = Phase::InKey;
                            self.start_token();
                        }
                        Phase::Value => {
                            self.phase = Phase::InString;
                            self.start_token();
                            self.keep(b);
                        }
                        _ => {}
                    }
                }
            }
            b'{' | b'[' => {
                if self.depth == 0 && self.top == Top::Nothing {
                    self.top = if b == b'{' { Top::Object } else { Top::Array };
                } else if self.depth == 1 && self.phase == Phase::Value {
                    self.phase = Phase::Nested;
                }
                self.depth += 1;
                self.max_depth = self.max_depth.max(self.depth);
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 1 {
                    self.phase = Phase::After;
                }
            }
            b':' if self.depth == 1 && self.phase == Phase::Colon => self.phase = Phase::Value,
            b',' if self.depth == 1 => self.phase = Phase::Key,
            _ if space => {}
            _ => {
                if self.depth == 0 && self.top == Top::Nothing {
                    self.top = Top::Other;
                } else if self.depth == 1 {
                    if self.phase == Phase::Value {
                        self.phase = Phase::InBare;
                        self.start_token();
                    }
                    if self.phase == Phase::InBare {
                        self.keep(b);
                    }
                }
            }
        }
    }

    fn string_byte(&mut self, b: u8) {
        let capturing = self.depth == 1 && matches!(self.phase, Phase::InKey | Phase::InString);
        if self.escaped {
            self.escaped = false;
        } else if b == b'\\' {
            self.escaped = true;
        } else if b == b'"' {
            self.in_string = false;
            if self.depth == 1 {
                match self.phase {
                    Phase::InKey => {
                        self.member = match (self.token_overflow, self.token.as_slice()) {
                            (false, b"id") => {
                                self.has_id = true;
                                Member::Id
                            }
                            (false, b"method") => Member::Method,
                            (false, b"result" | b"error") => {
                                self.response = true;
                                Member::Other
                            }
                            _ => Member::Other,
                        };
                        self.phase = Phase::Colon;
                    }
                    Phase::InString => {
                        self.keep(b);
                        self.end_value();
                    }
                    _ => {}
                }
            }
            return;
        }
        if capturing {
            self.keep(b);
        }
    }

    /// A scalar top-level value has been read: keep it if it is the id or
    /// the method.
    fn end_value(&mut self) {
        self.phase = Phase::After;
        if self.token_overflow {
            return;
        }
        match self.member {
            Member::Id if self.id.is_none() => {
                // Only a string or a number is an id worth echoing; `null`
                // and anything malformed read as no id.
                if let Ok(value) = serde_json::from_slice::<Json>(&self.token)
                    && (value.is_string() || value.is_number())
                    && self.token.len() <= MAX_ID_BYTES
                {
                    self.id = Some(value.to_string());
                }
            }
            Member::Method if self.method.is_none() => {
                if let Ok(Json::String(method)) = serde_json::from_slice::<Json>(&self.token)
                    && method.len() <= MAX_METHOD_BYTES
                {
                    self.method = Some(method);
                }
            }
            _ => {}
        }
        self.member = Member::Other;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(bytes: &[u8]) -> Refusal {
        check(bytes, FrameLimits::default()).expect_err("refused")
    }

    #[test]
    fn accepts_requests_and_notifications() {
        let msg = check(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}"#,
            FrameLimits::default(),
        )
        .unwrap();
        assert!(matches!(msg, ClientJsonRpcMessage::Request(_)));
        let msg = check(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            FrameLimits::default(),
        )
        .unwrap();
        assert!(matches!(msg, ClientJsonRpcMessage::Notification(_)));
    }

    #[test]
    fn answers_malformed_requests_with_their_id() {
        for (bytes, id) in [
            (
                &br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"a":NaN}}"#[..],
                "3",
            ),
            (
                br#"{"jsonrpc":"2.0","id":"x","method":"ping","params":{"n":1e400}}"#,
                "\"x\"",
            ),
            (br#"{"jsonrpc":"2.0","id":4,"method":"ping"} trailing"#, "4"),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"params\":{\"s\":\"\xff\"}}",
                "5",
            ),
            // The id after the problem is still read.
            (
                br#"{"params":{"a":[1,2,}],"method":"x","id":6,"jsonrpc":"2.0"}"#,
                "6",
            ),
        ] {
            let r = refused(bytes);
            assert_eq!(
                r.id.as_deref(),
                Some(id),
                "{}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(r.code, INVALID_REQUEST);
            assert!(r.answer);
            let response: Json = serde_json::from_str(&r.response()).unwrap();
            assert_eq!(response["id"].to_string(), id);
            assert_eq!(response["error"]["code"], -32600);
        }
    }

    #[test]
    fn unreadable_ids_get_parse_error_with_null() {
        for bytes in [
            &b"not json"[..],
            b"{",
            b"{\"id\":",
            b"NaN",
            b"[1,2",
            b"\"id\"",
        ] {
            let r = refused(bytes);
            assert_eq!(r.id, None, "{}", String::from_utf8_lossy(bytes));
            assert_eq!(r.code, PARSE_ERROR);
            assert!(r.response().contains(r#""id":null"#));
        }
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"q","arguments":{{"d":{}{}}}}}}}"#,
            "[".repeat(150),
            "]".repeat(150)
        );
        let r = refused(deep.as_bytes());
        assert_eq!(r.id.as_deref(), Some("9"));
        assert!(r.message.contains("max_json_depth"), "{}", r.message);

        let limits = FrameLimits {
            max_bytes: 64,
            max_depth: 10,
        };
        let long = format!(
            r#"{{"jsonrpc":"2.0","id":10,"method":"ping","params":{{"pad":"{}"}}}}"#,
            "x".repeat(100)
        );
        let r = check(long.as_bytes(), limits).unwrap_err();
        assert_eq!(r.id.as_deref(), Some("10"));
        assert!(r.message.contains("max_message_bytes"));
    }

    #[test]
    fn notifications_and_responses_are_not_answered() {
        let r = refused(br#"{"jsonrpc":"2.0","method":"notifications/x","params":{"a":1e999}}"#);
        assert!(!r.answer);
        let r = refused(br#"{"jsonrpc":"2.0","id":1,"result":{"a":1e999}}"#);
        assert!(!r.answer);
    }

    #[test]
    fn batches_are_refused() {
        let r = refused(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
        assert!(r.answer);
        assert!(r.message.contains("batches"));
    }

    #[test]
    fn the_outline_reads_any_length_with_bounded_memory() {
        let mut outline = Outline::default();
        outline.feed(br#"{"jsonrpc":"2.0","method":"tools/call","params":{"s":""#);
        for _ in 0..1000 {
            outline.feed(&[b'a'; 4096]);
        }
        outline.feed(br#""},"id":"late"}"#);
        assert_eq!(outline.id.as_deref(), Some("\"late\""));
        assert_eq!(outline.method.as_deref(), Some("tools/call"));
        assert!(outline.token.capacity() <= 2 * MAX_ID_BYTES);
    }

    #[test]
    fn strange_ids() {
        // A huge id is not echoed; a fractional one is, as the client wrote it.
        let huge = format!(
            r#"{{"jsonrpc":"2.0","id":"{}","method":"ping","x":NaN}}"#,
            "i".repeat(5000)
        );
        let r = refused(huge.as_bytes());
        assert_eq!(r.id, None);
        assert!(
            r.answer,
            "a request whose id cannot be read is still answered"
        );
        assert_eq!(
            refused(br#"{"jsonrpc":"2.0","id":1.5,"method":"ping","x":NaN}"#)
                .id
                .as_deref(),
            Some("1.5")
        );
        // An escaped quote inside a string id does not end it early.
        assert_eq!(
            refused(br#"{"jsonrpc":"2.0","id":"a\"b","method":"ping","x":NaN}"#)
                .id
                .as_deref(),
            Some(r#""a\"b""#)
        );
    }
}
