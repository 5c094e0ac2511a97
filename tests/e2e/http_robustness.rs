//! Nothing a client sends over HTTP may crash, stall or silence the server:
//! malformed messages get JSON-RPC errors, duplicate ids in a session are
//! both answered, wrong keys are limited per address, sessions are capped
//! and expire, half-sent requests are cut off, and one Host rule holds on
//! every route.

use crate::support::sse::EventReader;
use crate::support::{
    HttpServer, REQUEST_TIMEOUT, fresh_db, new_key, plugin_dir_with, spawn_http, spawn_http_logged,
};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ACCEPT: &str = "application/json, text/event-stream";
/// The protocol version the raw session clients below speak.
const VERSION: &str = "2025-06-18";

fn initialize_body(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": VERSION, "capabilities": {},
        "clientInfo": {"name": "robustness", "version": "1"}}})
}

/// A POST to `/mcp` with `key`, inside `session` when given.
fn post_mcp(server: &HttpServer, key: &str, session: Option<&str>) -> reqwest::RequestBuilder {
    let mut request = crate::support::http_client()
        .post(format!("{}/mcp", server.base))
        .header("authorization", format!("Bearer {key}"))
        .header("accept", ACCEPT)
        .header("content-type", "application/json");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", VERSION);
    }
    request
}

/// Opens a Streamable HTTP session for `key`: its id, or the refusal.
async fn try_open_session(server: &HttpServer, key: &str) -> Result<String, reqwest::Response> {
    let response = post_mcp(server, key, None)
        .body(initialize_body(1).to_string())
        .send()
        .await
        .unwrap();
    let Some(session) = response.headers().get("mcp-session-id") else {
        return Err(response);
    };
    let session = session.to_str().unwrap().to_string();
    // The initialize answer is on the response's event stream.
    let answer = EventReader::new(response).next().await;
    assert!(answer.1.contains("serverInfo"), "{answer:?}");
    let initialized = post_mcp(server, key, Some(&session))
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(initialized.status(), 202);
    Ok(session)
}

async fn open_session(server: &HttpServer, key: &str) -> String {
    match try_open_session(server, key).await {
        Ok(session) => session,
        Err(refused) => panic!(
            "no session: {} {}",
            refused.status(),
            refused.text().await.unwrap()
        ),
    }
}

/// A legacy HTTP+SSE session: its event stream and the URL to post to.
async fn try_open_legacy(
    server: &HttpServer,
    key: &str,
) -> Result<(EventReader, String), reqwest::Response> {
    let response = crate::support::http_client()
        .get(format!("{}/sse", server.base))
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    if response.status() != 200 {
        return Err(response);
    }
    let mut events = EventReader::new(response);
    let (kind, endpoint) = events.next().await;
    assert_eq!(kind, "endpoint");
    Ok((events, format!("{}{endpoint}", server.base)))
}

/// An initialized legacy session.
async fn open_legacy(server: &HttpServer, key: &str) -> (EventReader, String) {
    let Ok((mut events, url)) = try_open_legacy(server, key).await else {
        panic!("no legacy session");
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "legacy", "version": "1"}}});
    assert_eq!(post_legacy(&url, key, init.to_string()).await.status(), 202);
    let (_, answer) = events.next().await;
    assert!(answer.contains("serverInfo"), "{answer}");
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(post_legacy(&url, key, initialized).await.status(), 202);
    (events, url)
}

async fn post_legacy(url: &str, key: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    crate::support::http_client()
        .post(url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The one JSON-RPC message a POST answered with: its body, or the single
/// event of its stream.
async fn answer_of(response: reqwest::Response) -> Value {
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    if sse {
        return EventReader::new(response).message().await;
    }
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The malformed messages every endpoint must answer: (what, body, HTTP
/// status, JSON-RPC id, JSON-RPC code). Sized for a 4096-byte limit.
fn malformed_messages() -> Vec<(&'static str, Vec<u8>, u16, Value, i64)> {
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"query","arguments":{{"sql":"SELECT 1","d":{}{}}}}}}}"#,
        "[".repeat(150),
        "]".repeat(150)
    );
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":6,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(5000)
    );
    vec![
        ("150 levels deep", deep.into_bytes(), 400, json!(1), -32600),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":{\"s\":\"\xff\"}}"
                .to_vec(),
            400,
            json!(2),
            -32600,
        ),
        (
            "1e400",
            br#"{"jsonrpc":"2.0","id":3,"method":"ping","params":{"n":1e400}}"#.to_vec(),
            400,
            json!(3),
            -32600,
        ),
        ("a bare NaN", b"NaN".to_vec(), 400, Value::Null, -32700),
        (
            "trailing garbage",
            br#"{"jsonrpc":"2.0","id":"five","method":"ping"} and more"#.to_vec(),
            400,
            json!("five"),
            -32600,
        ),
        ("too large", huge.into_bytes(), 413, json!(6), -32600),
    ]
}

/// Checks one refusal: status, content type and the JSON-RPC error.
async fn assert_refused(
    what: &str,
    response: reqwest::Response,
    status: u16,
    id: &Value,
    code: i64,
) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json",
        "{what}"
    );
    let text = response.text().await.unwrap();
    let error: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert_eq!(error["jsonrpc"], "2.0", "{what}: {error}");
    assert_eq!(&error["id"], id, "{what}: {error}");
    assert_eq!(error["error"]["code"], code, "{what}: {error}");
}

#[tokio::test]
async fn every_malformed_message_gets_a_json_rpc_error_on_every_endpoint() {
    let db = fresh_db().await;
    // The body limit is the lower of the two: here [mcp] max_message_bytes.
    let server = spawn_http(
        &db.url,
        "[http]\nmax_body_bytes = 65536\n\n[mcp]\nmax_message_bytes = 4096\n",
        "",
        true,
    )
    .await;
    let session = open_session(&server, &server.key).await;
    let (mut events, legacy) = open_legacy(&server, &server.key).await;

    for (what, body, status, id, code) in malformed_messages() {
        // Streamable HTTP, inside a session and without one.
        for session in [Some(session.as_str()), None] {
            let response = post_mcp(&server, &server.key, session)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_refused(
                &format!("/mcp {what} {session:?}"),
                response,
                status,
                &id,
                code,
            )
            .await;
        }
        // The legacy transport answers it on the POST too.
        let response = post_legacy(&legacy, &server.key, body.clone()).await;
        assert_refused(&format!("/messages {what}"), response, status, &id, code).await;
    }
    let deep = post_mcp(&server, &server.key, Some(&session))
        .body(malformed_messages().remove(0).1)
        .send()
        .await
        .unwrap();
    let text = deep.text().await.unwrap();
    assert!(text.contains("max_json_depth"), "{text}");
    let large = post_mcp(&server, &server.key, Some(&session))
        .body(malformed_messages().remove(5).1)
        .send()
        .await
        .unwrap();
    let text = large.text().await.unwrap();
    assert!(text.contains("[mcp] max_message_bytes"), "{text}");

    // A malformed notification is refused too; the error has no id.
    let notification = br#"{"jsonrpc":"2.0","method":"notifications/x","params":{"n":NaN}}"#;
    let response = post_mcp(&server, &server.key, Some(&session))
        .body(&notification[..])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["id"], Value::Null, "{error}");

    // The server and both sessions are still fine.
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "query", "arguments": {"sql": "SELECT 1 AS one"}}});
    let answer = answer_of(
        post_mcp(&server, &server.key, Some(&session))
            .body(call.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        answer["result"]["structuredContent"]["rows"],
        json!([{"one": 1}]),
        "{answer}"
    );
    assert_eq!(
        post_legacy(&legacy, &server.key, call.to_string())
            .await
            .status(),
        202
    );
    let answer = events.message().await;
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"]["rows"],
        json!([{"one": 1}]),
        "{answer}"
    );
}

/// A tools/call of the test-looper's `nap`, which takes `ms`.
fn nap(id: u64, ms: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "nap", "arguments": {"ms": ms}}})
    .to_string()
}

#[tokio::test]
async fn two_requests_with_one_id_in_a_session_are_both_answered() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["test-looper"]);
    let config = format!("[plugins]\ndir = \"{}\"\n", dir.path().display());
    let server = spawn_http(&db.url, &config, "", true).await;

    // Streamable HTTP: the first is in flight (its stream is open) when the
    // second arrives; the second is refused, naming the id, and the first
    // still gets its result.
    let session = open_session(&server, &server.key).await;
    let first = post_mcp(&server, &server.key, Some(&session))
        .body(nap(42, 1500))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let second = post_mcp(&server, &server.key, Some(&session))
        .body(nap(42, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 400);
    let refusal = answer_of(second).await;
    assert_eq!(refusal["id"], 42, "{refusal}");
    assert_eq!(refusal["error"]["code"], -32600, "{refusal}");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(message.contains("42"), "{message}");
    let result = answer_of(first).await;
    assert_eq!(result["id"], 42, "{result}");
    assert_eq!(
        result["result"]["content"][0]["text"], "rested 1500 ms",
        "{result}"
    );
    // Once answered, the id is free again; another session has ids of its own.
    let again = answer_of(
        post_mcp(&server, &server.key, Some(&session))
            .body(nap(42, 10))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        again["result"]["content"][0]["text"], "rested 10 ms",
        "{again}"
    );

    // Legacy SSE: both POSTs are taken; the refusal and the result come on
    // the stream, the refusal first.
    let (mut events, legacy) = open_legacy(&server, &server.key).await;
    assert_eq!(
        post_legacy(&legacy, &server.key, nap(7, 1500))
            .await
            .status(),
        202
    );
    assert_eq!(
        post_legacy(&legacy, &server.key, nap(7, 10)).await.status(),
        202
    );
    let refusal = events.message().await;
    assert_eq!(refusal["id"], 7, "{refusal}");
    assert_eq!(refusal["error"]["code"], -32600, "{refusal}");
    assert!(
        refusal["error"]["message"].as_str().unwrap().contains('7'),
        "{refusal}"
    );
    let result = events.message().await;
    assert_eq!(result["id"], 7, "{result}");
    assert_eq!(
        result["result"]["content"][0]["text"], "rested 1500 ms",
        "{result}"
    );
    assert_eq!(
        post_legacy(&legacy, &server.key, nap(7, 10)).await.status(),
        202
    );
    let again = events.message().await;
    assert_eq!(
        again["result"]["content"][0]["text"], "rested 10 ms",
        "{again}"
    );
}

#[tokio::test]
async fn wrong_keys_are_limited_per_address_and_quietly() {
    let db = fresh_db().await;
    let (server, log) = spawn_http_logged(
        &db.url,
        "[http.failed_auth]\nburst = 3\nper_minute = 60\n",
        "",
    )
    .await;
    let stateless = |key: &str| {
        post_mcp(&server, key, None)
            .body(initialize_body(1).to_string())
            .send()
    };
    // The burst of wrong keys is refused as such…
    for _ in 0..3 {
        assert_eq!(stateless("sluice_wrong").await.unwrap().status(), 401);
    }
    // …then every request from this address gets 429, even with the right
    // key, until the budget refills.
    let mut retry_after = 0;
    for _ in 0..200 {
        let response = stateless("sluice_wrong").await.unwrap();
        assert_eq!(response.status(), 429);
        retry_after = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }
    let limited = stateless(&server.key).await.unwrap();
    assert_eq!(
        limited.status(),
        429,
        "a valid key is not told apart while limited"
    );
    assert!(limited.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_secs(retry_after + 1)).await;
    let again = stateless(&server.key).await.unwrap();
    assert_eq!(again.status(), 200, "{}", again.text().await.unwrap());

    // 200 refusals, a handful of log lines that say how many were not logged.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = stateless("sluice_wrong").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let warnings = log.lines_with("refused");
    assert!(
        (1..=10).contains(&warnings.len()),
        "{} refusal lines: {warnings:#?}",
        warnings.len()
    );
    assert!(
        warnings.iter().any(|l| l.contains("suppressed")),
        "{warnings:#?}"
    );
}

#[tokio::test]
async fn sessions_are_capped_per_key_and_in_total_and_idle_ones_expire() {
    let db = fresh_db().await;
    let (other, entry) = new_key("other");
    let dir = plugin_dir_with(&["test-looper"]);
    let server = spawn_http(
        &db.url,
        &format!(
            "[plugins]\ndir = \"{}\"\n\n[http]\nmax_sessions = 5\nmax_sessions_per_key = 3\nsession_idle_timeout_s = 2\n\n{entry}",
            dir.path().display()
        ),
        "",
        true,
    )
    .await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(open_session(&server, &server.key).await);
    }
    // A fourth for the same key: 429, naming the setting.
    let refused = try_open_session(&server, &server.key).await.unwrap_err();
    assert_eq!(refused.status(), 429);
    assert_refused_naming(refused, 1, "[http] max_sessions_per_key").await;
    // Legacy sessions count too.
    let refused = try_open_legacy(&server, &server.key).await.err().unwrap();
    assert_eq!(refused.status(), 429);
    assert_refused_naming(refused, -1, "[http] max_sessions_per_key").await;

    // Another key fills the server: 503 once five are open in all.
    let theirs = open_session(&server, &other).await;
    let (mut idle_stream, _) = open_legacy(&server, &other).await;
    let refused = try_open_session(&server, &other).await.unwrap_err();
    assert_eq!(refused.status(), 503);
    assert_refused_naming(refused, 1, "[http] max_sessions").await;

    // Ending a session frees its place at once.
    let deleted = crate::support::http_client()
        .delete(format!("{}/mcp", server.base))
        .header("authorization", format!("Bearer {}", server.key))
        .header("mcp-session-id", &mine[0])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    mine[0] = open_session(&server, &server.key).await;
    // Another key's session is none of this key's business.
    let foreign = post_mcp(&server, &other, Some(&mine[0]))
        .body(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);

    // A session with a call in flight is not idle, however long the call;
    // left alone, sessions expire (the legacy one's stream ends) and their
    // places are free again.
    let call = answer_of(
        post_mcp(&server, &other, Some(&theirs))
            .body(nap(5, 3000))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        call["result"]["content"][0]["text"], "rested 3000 ms",
        "{call}"
    );
    let ping = post_mcp(&server, &other, Some(&theirs))
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200, "a session in use expired");
    let _ = answer_of(ping).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while idle_stream.try_next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "an idle legacy session's stream stayed open");
    for session in &mine {
        let expired = post_mcp(&server, &server.key, Some(session))
            .body(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(expired.status(), 404, "an idle session did not expire");
    }
    for _ in 0..3 {
        open_session(&server, &server.key).await;
    }
}

/// Checks that a session refusal is a JSON-RPC error naming `key`; `id` is
/// the request's id, or -1 for none (a GET).
async fn assert_refused_naming(response: reqwest::Response, id: i64, key: &str) {
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let error: Value = response.json().await.unwrap();
    let id = if id < 0 { Value::Null } else { json!(id) };
    assert_eq!(error["id"], id, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(key), "{message}");
}

#[tokio::test]
async fn a_half_sent_request_is_cut_off_while_others_are_served() {
    let db = fresh_db().await;
    let server = spawn_http(&db.url, "[http]\nheader_timeout_ms = 500\n", "", true).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /mcp HT").await.unwrap();
    // Meanwhile another client is served.
    let health = crate::support::http_client()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The half-sent request is closed within the timeout and a few seconds.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut sink = Vec::new();
        let _ = slow.read_to_end(&mut sink).await;
    })
    .await;
    assert!(closed.is_ok(), "the half-open connection was kept open");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_one() {
    let db = fresh_db().await;
    let server = spawn_http(&db.url, "[http]\nmax_connections = 1\n", "", true).await;
    // An open event stream holds the only connection.
    let (stream, _) = try_open_legacy(&server, &server.key).await.ok().unwrap();
    let waiting = tokio::spawn({
        let url = format!("{}/healthz", server.base);
        async move {
            crate::support::http_client()
                .get(url)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a second connection was served");
    drop(stream);
    let status = tokio::time::timeout(REQUEST_TIMEOUT, waiting)
        .await
        .expect("the waiting connection was never served")
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn one_host_and_origin_rule_holds_on_every_route() {
    let db = fresh_db().await;
    let server = spawn_http(&db.url, "", "", true).await;
    let (_events, legacy) = open_legacy(&server, &server.key).await;
    let http = crate::support::http_client();
    let routes = |host: &str, origin: Option<&str>| {
        let auth = format!("Bearer {}", server.key);
        let with = |mut r: reqwest::RequestBuilder| {
            r = r.header("authorization", &auth).header("host", host);
            if let Some(origin) = origin {
                r = r.header("origin", origin);
            }
            r
        };
        [
            (
                "/mcp",
                with(http.post(format!("{}/mcp", server.base)))
                    .header("accept", ACCEPT)
                    .header("content-type", "application/json")
                    .body(initialize_body(1).to_string()),
            ),
            (
                "/sse",
                with(http.get(format!("{}/sse", server.base)))
                    .header("accept", "text/event-stream"),
            ),
            (
                "/messages",
                with(http.post(&legacy))
                    .header("content-type", "application/json")
                    .body(r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#),
            ),
        ]
    };
    for (host, origin, setting) in [
        ("localhost:abc", None, "[http] allowed_hosts"),
        ("evil.example", None, "[http] allowed_hosts"),
        ("localhost:", None, "[http] allowed_hosts"),
        (
            "localhost",
            Some("https://evil.example"),
            "[http] allowed_origins",
        ),
    ] {
        for (route, request) in routes(host, origin) {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 403, "{route} {host} {origin:?}");
            let text = response.text().await.unwrap();
            assert!(text.contains(setting), "{route} {host}: {text}");
        }
    }
    for host in ["localhost:8080", "LOCALHOST", "127.0.0.1:1", "[::1]:443"] {
        for (route, request) in routes(host, None) {
            let status = request.send().await.unwrap().status();
            assert!(status.is_success(), "{route} {host}: {status}");
        }
    }
}
