//! The remote transport over real HTTP on loopback: a client with a key gets
//! what a stdio client gets; without a valid key, nothing but a 401.

use crate::support::sse::EventReader;
use crate::support::{HttpServer, REQUEST_TIMEOUT, TestDb, fresh_db, new_key, spawn_http};
use rmcp::model::CallToolRequestParams;
use serde_json::json;

async fn start(db: &TestDb, extra_config: &str) -> HttpServer {
    spawn_http(&db.url, extra_config, "", true).await
}

/// A tools/call request with `arguments` (a JSON object).
fn call(tool: &str, arguments: serde_json::Value) -> CallToolRequestParams {
    let serde_json::Value::Object(arguments) = arguments else {
        panic!("tool arguments must be an object");
    };
    CallToolRequestParams::new(tool.to_string()).with_arguments(arguments)
}

fn initialize_body() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

#[tokio::test]
async fn a_client_with_a_key_gets_the_tools_and_nobody_else_gets_anything() {
    let db = fresh_db().await;
    let server = start(&db, "").await;

    let client = server.client(&server.key).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "query"), "{tools:?}");
    let result = client
        .call_tool(call(
            "query",
            json!({"sql": "SELECT count(*) AS n FROM books"}),
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    assert!(
        result.structured_content.unwrap()["rows"][0]["n"]
            .as_i64()
            .unwrap()
            > 0
    );
    let _ = client.cancel().await;

    // No key, a wrong key, a malformed header: 401 with a challenge, and
    // the MCP layer never sees the request.
    let http = crate::support::http_client();
    for auth in [
        None,
        Some("Bearer sluice_not-a-key"),
        Some("Basic dXNlcjpwYXNz"),
        Some(server.key.as_str()),
    ] {
        let mut request = http
            .post(format!("{}/mcp", server.base))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize_body());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with("Bearer realm=\"sluice\""),
            "{challenge}"
        );
    }

    // Ending a session: 204, as clients expect.
    let init = http
        .post(format!("{}/mcp", server.base))
        .header("authorization", format!("Bearer {}", server.key))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let deleted = http
        .delete(format!("{}/mcp", server.base))
        .header("authorization", format!("Bearer {}", server.key))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // Health needs no key and says nothing about data.
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready\n");
}

#[tokio::test]
async fn rebinding_and_oversized_requests_are_refused() {
    let db = fresh_db().await;
    let server = start(&db, "[http]\nmax_body_bytes = 2048\n").await;
    let http = crate::support::http_client();
    let post = |body: serde_json::Value| {
        http.post(format!("{}/mcp", server.base))
            .header("authorization", format!("Bearer {}", server.key))
            .header("accept", "application/json, text/event-stream")
            .json(&body)
    };
    // A page on another site trying to reach a local server.
    let r = post(initialize_body())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(initialize_body())
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // The legacy endpoints get the same checks.
    let r = http
        .get(format!("{}/sse", server.base))
        .header("authorization", format!("Bearer {}", server.key))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!("{}/sse", server.base))
        .header("authorization", format!("Bearer {}", server.key))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let mut big = initialize_body();
    big["params"]["clientInfo"]["name"] = json!("x".repeat(4096));
    let r = post(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn thirty_two_concurrent_clients_are_all_answered() {
    let db = fresh_db().await;
    // Each session client makes several HTTP requests; this is about
    // concurrency, not the rate limit.
    let server = start(
        &db,
        "[http.rate_limit]\nper_minute = 100000\nburst = 10000\n",
    )
    .await;
    let clients = (0..32).map(|i| {
        let server = &server;
        async move {
            let client = server.client(&server.key).await;
            let id = i % 20 + 1;
            let result = client
                .call_tool(call(
                    "query",
                    json!({"sql": "SELECT book_id FROM books WHERE book_id = $1", "params": [id]}),
                ))
                .await
                .unwrap();
            let _ = client.cancel().await;
            (
                id,
                result.structured_content.unwrap()["rows"][0]["book_id"].clone(),
            )
        }
    });
    for (asked, got) in futures::future::join_all(clients).await {
        assert_eq!(got, json!(asked));
    }
}

#[tokio::test]
async fn sigterm_lets_a_call_in_flight_finish() {
    let db = fresh_db().await;
    let dir = crate::support::plugin_dir_with(&["test-looper"]);
    let mut server = start(
        &db,
        &format!("[plugins]\ndir = \"{}\"\n", dir.path().display()),
    )
    .await;
    let client = server.client(&server.key).await;
    let nap = client.call_tool(call("nap", json!({"ms": 1500})));
    let stop = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        send_sigterm(server.child.id().unwrap());
    };
    let (nap, ()) = tokio::join!(nap, stop);
    let nap = nap.expect("the call in flight was answered");
    assert_eq!(crate::support::text_of(&nap), "rested 1500 ms");
    let status = tokio::time::timeout(REQUEST_TIMEOUT, server.child.wait())
        .await
        .expect("sluice did not exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// SIGTERM through the `kill` command, without a libc dependency.
fn send_sigterm(pid: u32) {
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
}

#[tokio::test]
async fn the_2026_stateless_protocol_works_without_a_session() {
    let db = fresh_db().await;
    let server = start(&db, "").await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
    });
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "query", "arguments": {"sql": "SELECT 41 + 1 AS answer"}, "_meta": meta}});
    let response = crate::support::http_client()
        .post(format!("{}/mcp", server.base))
        .header("authorization", format!("Bearer {}", server.key))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "query")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    let text = response.text().await.unwrap();
    // One JSON-RPC answer, as JSON or as a single server-sent event.
    let message = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or(&text);
    let answer: serde_json::Value = serde_json::from_str(message).unwrap();
    assert_eq!(answer["id"], 7);
    assert_eq!(
        answer["result"]["structuredContent"]["rows"],
        json!([{"answer": 42}])
    );
}

#[tokio::test]
async fn a_key_limited_to_one_plugin_sees_and_calls_only_that_plugin() {
    let db = fresh_db().await;
    let dir = crate::support::plugin_dir_with(&["hello"]);
    let (analyst, entry) = new_key("analyst");
    let config = format!(
        "[plugins]\ndir = \"{}\"\n\n[plugins.grants.sql-write]\nwrite = [\"public.*\"]\n\n{entry}plugins = [\"sql-read\"]\n",
        dir.path().display()
    );
    let server = start(&db, &config).await;

    // The unrestricted key sees all three plugins.
    let full = server.client(&server.key).await;
    let names: Vec<String> = full
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for name in ["query", "insert_record", "hello"] {
        assert!(names.contains(&name.to_string()), "{names:?}");
    }
    let _ = full.cancel().await;

    let limited = server.client(&analyst).await;
    let names: Vec<String> = limited
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"query".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "insert_record" || n == "hello"),
        "{names:?}"
    );
    assert!(
        !limited.list_all_prompts().await.unwrap().is_empty(),
        "sql-read's prompts"
    );

    // Calling another plugin's tool is as if it did not exist.
    let before = crate::support::fingerprint(&db.url).await;
    let refused = limited
        .call_tool(call(
            "insert_record",
            json!({"table": "authors", "data": {"full_name": "Scope Breaker"}}),
        ))
        .await;
    let error = refused.expect_err("another plugin's tool answered");
    assert!(error.to_string().contains("unknown tool"), "{error}");
    assert_eq!(crate::support::fingerprint(&db.url).await, before);
    let ok = limited
        .call_tool(call("query", json!({"sql": "SELECT 1 AS one"})))
        .await
        .unwrap();
    assert_eq!(ok.is_error, Some(false));
    let _ = limited.cancel().await;
}

/// A stateless (2026-07-28) tools/call: one HTTP request, no session.
fn stateless_call(
    server: &HttpServer,
    key: &str,
    tool: &str,
    arguments: serde_json::Value,
) -> reqwest::RequestBuilder {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}}}});
    crate::support::http_client()
        .post(format!("{}/mcp", server.base))
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body)
}

#[tokio::test]
async fn past_its_burst_a_key_gets_429_and_nothing_runs() {
    let db = fresh_db().await;
    let (limited, entry) = new_key("limited");
    let config = format!(
        "[plugins.grants.sql-write]\nwrite = [\"public.*\"]\n\n{entry}per_minute = 1\nburst = 2\n"
    );
    let server = start(&db, &config).await;
    for _ in 0..2 {
        let r = stateless_call(&server, &limited, "query", json!({"sql": "SELECT 1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let before = crate::support::fingerprint(&db.url).await;
    let r = stateless_call(
        &server,
        &limited,
        "insert_record",
        json!({"table": "authors", "data": {"full_name": "Over The Limit"}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(crate::support::fingerprint(&db.url).await, before);
    // Other keys have limits of their own.
    let r = stateless_call(&server, &server.key, "query", json!({"sql": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn signed_requests_pass_and_forged_stale_or_replayed_ones_do_not() {
    use sluice::http::signing::{sign, string_to_sign};
    let db = fresh_db().await;
    let secret = "0123456789abcdef0123456789abcdef-signing";
    // SAFETY: the variable is read by the child process only.
    unsafe { std::env::set_var("SLUICE_E2E_SIGNING_SECRET", secret) };
    let config = "[[http.auth.keys]]\nid = \"ci\"\nsecret = \"${SLUICE_E2E_SIGNING_SECRET}\"\n";
    let server = start(&db, config).await;
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "query", "arguments": {"sql": "SELECT 7 AS seven"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "signed", "version": "1"}}}})
    .to_string();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let send = |timestamp: u64, nonce: &str, key: &str, body: &str, signature: Option<String>| {
        let timestamp = timestamp.to_string();
        let signature = signature.unwrap_or_else(|| {
            sign(
                key.as_bytes(),
                &string_to_sign("POST", "/mcp", &timestamp, nonce, body.as_bytes()),
            )
        });
        crate::support::http_client()
            .post(format!("{}/mcp", server.base))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "query")
            .header("x-sluice-key", "ci")
            .header("x-sluice-timestamp", timestamp)
            .header("x-sluice-nonce", nonce)
            .header("x-sluice-signature", signature)
            .body(body.to_string())
            .send()
    };

    let ok = send(now(), "nonce-0000000000000001", secret, &body, None)
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("\"seven\":7"));

    // Replayed, forged with another secret, tampered with, stale.
    let replay = send(now(), "nonce-0000000000000001", secret, &body, None)
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    let forged = send(
        now(),
        "nonce-0000000000000002",
        "a-different-secret-of-enough-length",
        &body,
        None,
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    let good_signature = sign(
        secret.as_bytes(),
        &string_to_sign(
            "POST",
            "/mcp",
            &now().to_string(),
            "nonce-0000000000000003",
            body.as_bytes(),
        ),
    );
    let tampered = body.replace("SELECT 7", "SELECT 8");
    let r = send(
        now(),
        "nonce-0000000000000003",
        secret,
        &tampered,
        Some(good_signature),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    let stale = send(now() - 3600, "nonce-0000000000000004", secret, &body, None)
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    let challenge = stale.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn the_legacy_sse_transport_round_trips_behind_the_same_keys() {
    let db = fresh_db().await;
    let (other, entry) = new_key("other");
    let server = start(&db, &entry).await;
    let http = crate::support::http_client();

    let refused = http
        .get(format!("{}/sse", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let stream = http
        .get(format!("{}/sse", server.base))
        .header("authorization", format!("Bearer {}", server.key))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut events = EventReader::new(stream);
    let (kind, endpoint) = events.next().await;
    assert_eq!(kind, "endpoint");
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
    let post = |key: &str, body: serde_json::Value| {
        http.post(format!("{}{endpoint}", server.base))
            .header("authorization", format!("Bearer {key}"))
            .json(&body)
            .send()
    };

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "legacy", "version": "1"}}});
    assert_eq!(post(&server.key, init).await.unwrap().status(), 202);
    let (kind, data) = events.next().await;
    assert_eq!(kind, "message");
    let answer: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(answer["result"]["serverInfo"]["name"], "sluice", "{answer}");
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(&server.key, initialized).await.unwrap().status(), 202);

    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "query", "arguments": {"sql": "SELECT 'legacy' AS transport"}}});
    assert_eq!(post(&server.key, call.clone()).await.unwrap().status(), 202);
    let (_, data) = events.next().await;
    let answer: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(answer["id"], 2);
    assert_eq!(
        answer["result"]["structuredContent"]["rows"],
        json!([{"transport": "legacy"}])
    );

    // Another key cannot post into this session.
    assert_eq!(post(&other, call).await.unwrap().status(), 404);
}
