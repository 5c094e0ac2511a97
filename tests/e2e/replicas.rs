//! Several replicas behind a real haproxy, sharing one PostgreSQL: together
//! they allow exactly what one would. A signed request replayed at another
//! replica is refused, a key's rate limit holds across them, stateless
//! calls spread over them, a rolling restart under load fails no request,
//! 2025 sessions stay with the replica that made them (and are unknown,
//! 404, anywhere else) and hear of a hot reload wherever they are, and
//! with the state store stopped, signed requests are refused with a reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice::http::signing::{sign, string_to_sign};
use sluice::pgcluster::ClusterSetup;

use crate::support::pg::{Sluice, demo_database, private_cluster};
use crate::support::replicas::Balanced;
use crate::support::{fresh_db, http_client, new_key, plugin_wasm, run_sql};

/// Nonces and rate limits in PostgreSQL; a second of drain after SIGTERM,
/// five times haproxy's health-check interval.
const SHARED: &str = "[http]\nshared_state = \"postgres\"\ndrain_delay_ms = 1000\n";

/// The signing key's entry; its secret is read from the environment.
const SIGNER: &str =
    "[[http.auth.keys]]\nid = \"signer\"\nsecret = \"${SLUICE_E2E_REPLICA_SECRET}\"\n";
const SECRET: &str = "replica-test-secret-0123456789abcdef0123456789";

fn set_secret() {
    // SAFETY: every test of this module sets the same value, before it
    // starts a child that reads it.
    unsafe { std::env::set_var("SLUICE_E2E_REPLICA_SECRET", SECRET) };
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "replicas", "version": "1"}
    })
}

/// A stateless (2026-07-28) request: `method` with `params`.
fn stateless(
    base: &str,
    key: &str,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> reqwest::RequestBuilder {
    params["_meta"] = meta();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut request = http_client()
        .post(format!("{base}/mcp"))
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(&body);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    request
}

fn query(base: &str, key: &str, sql: &str) -> reqwest::RequestBuilder {
    stateless(
        base,
        key,
        "tools/call",
        Some("query"),
        json!({"name": "query", "arguments": {"sql": sql}}),
    )
}

fn list_tools(base: &str, key: &str) -> reqwest::RequestBuilder {
    stateless(base, key, "tools/list", None, json!({}))
}

/// The JSON-RPC message of an answer, sent as JSON or as an event stream
/// (whose first event may be an empty one that primes it).
fn json_rpc(text: &str) -> Option<Value> {
    if !text.starts_with("data:") && !text.starts_with("id:") {
        return serde_json::from_str(text).ok();
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .find_map(|data| serde_json::from_str(data).ok())
}

fn message(text: &str) -> Value {
    json_rpc(text).unwrap_or_else(|| panic!("no JSON-RPC message in: {text}"))
}

/// A signed stateless tools/call, as its headers and body: the same bytes
/// can be sent again, as an attacker who captured them would.
struct Signed {
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Signed {
    fn new(nonce: &str, sql: &str) -> Signed {
        let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "query", "arguments": {"sql": sql}, "_meta": meta()}})
        .to_string();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let signature = sign(
            SECRET.as_bytes(),
            &string_to_sign("POST", "/mcp", &timestamp, nonce, body.as_bytes()),
        );
        Signed {
            headers: vec![
                ("accept", "application/json, text/event-stream".into()),
                ("content-type", "application/json".into()),
                ("mcp-protocol-version", "2026-07-28".into()),
                ("mcp-method", "tools/call".into()),
                ("mcp-name", "query".into()),
                ("x-sluice-key", "signer".into()),
                ("x-sluice-timestamp", timestamp),
                ("x-sluice-nonce", nonce.into()),
                ("x-sluice-signature", signature),
            ],
            body,
        }
    }

    /// Sends it to `base`: (status, body).
    async fn send(&self, base: &str) -> (u16, String) {
        let mut request = http_client().post(format!("{base}/mcp"));
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let answer = request.body(self.body.clone()).send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap_or_default())
    }
}

#[tokio::test]
async fn stateless_calls_spread_over_the_replicas_and_each_answers() {
    let db = fresh_db().await;
    let Some(lb) = Balanced::start(&db.url, SHARED, "", 3).await else {
        return;
    };
    let before: Vec<u64> = lb.stats().await.iter().map(|s| s.answered_2xx).collect();
    for n in 0..30 {
        let answer = query(&lb.base, &lb.key, &format!("SELECT {n} + 1 AS next"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let m = message(&answer.text().await.unwrap());
        assert_eq!(
            m["result"]["structuredContent"]["rows"],
            json!([{"next": n + 1}]),
            "{m}"
        );
    }
    let after = lb.stats().await;
    let served: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(s, b)| s.answered_2xx - b)
        .collect();
    assert_eq!(served.len(), 3, "{after:?}");
    assert_eq!(served.iter().sum::<u64>(), 30, "{served:?}");
    // Round robin: ten each, give or take what a health check moved.
    assert!(served.iter().all(|&n| n >= 8), "{served:?}");
}

#[tokio::test]
async fn a_signed_request_replayed_at_another_replica_is_refused() {
    set_secret();
    let db = fresh_db().await;
    let Some(lb) = Balanced::start(&db.url, &format!("{SHARED}{SIGNER}"), "", 3).await else {
        return;
    };
    let captured = Signed::new("replica-nonce-000000000001", "SELECT 7 AS seven");
    let (status, body) = captured.send(&lb.replica(0)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        message(&body)["result"]["structuredContent"]["rows"],
        json!([{"seven": 7}])
    );
    // The same bytes at the other replicas, and through the balancer.
    for base in [lb.replica(1), lb.replica(2), lb.replica(0), lb.base.clone()] {
        let (status, body) = captured.send(&base).await;
        assert_eq!(status, 401, "{base}: {body}");
        assert!(body.contains("nonce was already used"), "{base}: {body}");
    }
    // A fresh nonce is let through anywhere.
    let fresh = Signed::new("replica-nonce-000000000002", "SELECT 8 AS eight");
    let (status, body) = fresh.send(&lb.replica(2)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_keys_rate_limit_holds_across_the_replicas() {
    let db = fresh_db().await;
    // One request every 30 s after a burst of four.
    let Some(lb) = Balanced::start(&db.url, SHARED, "per_minute = 2\nburst = 4\n", 3).await else {
        return;
    };
    let started = Instant::now();
    let mut sends = Vec::new();
    for round in 0..8 {
        for replica in 0..3 {
            let request = list_tools(&lb.replica(replica), &lb.key);
            sends.push(async move {
                let _ = round;
                request.send().await.unwrap()
            });
        }
    }
    let answers = futures::future::join_all(sends).await;
    let elapsed = started.elapsed();
    let mut accepted = 0;
    for answer in &answers {
        match answer.status().as_u16() {
            200 => accepted += 1,
            429 => {
                let wait: u64 = answer.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=30).contains(&wait), "Retry-After {wait}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // The burst, plus one token per 30 s that passed: what one replica
    // alone would allow, not three times it.
    let refill = elapsed.as_secs() / 30 + 1;
    assert!(
        (4..=4 + refill).contains(&accepted),
        "{accepted} of 24 accepted in {elapsed:?}"
    );
}

#[tokio::test]
async fn a_rolling_restart_under_steady_load_fails_no_request() {
    let db = fresh_db().await;
    let Some(mut lb) =
        Balanced::start(&db.url, SHARED, "per_minute = 1000000\nburst = 100000\n", 3).await
    else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for client in 0..4 {
        let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
        let (base, key) = (lb.base.clone(), lb.key.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let expected = client * 1_000_000 + n;
                let outcome = match query(&base, &key, &format!("SELECT {expected}::int8 AS n"))
                    .send()
                    .await
                {
                    Ok(answer) => {
                        let status = answer.status();
                        let text = answer.text().await.unwrap_or_default();
                        let rows = json_rpc(&text)
                            .map(|m| m["result"]["structuredContent"]["rows"].clone());
                        if status == 200 && rows == Some(json!([{"n": expected}])) {
                            Ok(())
                        } else {
                            Err(format!("{status}: {text}"))
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for replica in 0..3 {
        let before = ok.load(Ordering::Relaxed);
        lb.restart(replica).await;
        assert!(
            ok.load(Ordering::Relaxed) > before,
            "no request got through while replica {} restarted",
            replica + 1
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the rolling restart: {:?}",
        failures.len(),
        failures.len() as u64 + ok.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );
    assert!(ok.load(Ordering::Relaxed) > 100);
    for replica in 0..3 {
        assert!(lb.log(replica).contains("draining"), "{}", lb.log(replica));
    }
}

/// Opens a 2025 session through `base`: its id.
async fn open_session(base: &str, key: &str) -> String {
    let answer = http_client()
        .post(format!("{base}/mcp"))
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let id = answer.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = answer.text().await;
    let initialized = in_session(
        base,
        key,
        &id,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(initialized.0, 202, "{}", initialized.1);
    id
}

/// Posts `body` in session `id`: (status, body).
async fn in_session(base: &str, key: &str, id: &str, body: Value) -> (u16, String) {
    let answer = http_client()
        .post(format!("{base}/mcp"))
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

fn ping(n: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": n, "method": "ping"})
}

#[tokio::test]
async fn sessions_stay_with_their_replica_and_are_unknown_anywhere_else() {
    let db = fresh_db().await;
    let Some(mut lb) = Balanced::start(&db.url, SHARED, "", 3).await else {
        return;
    };
    let id = open_session(&lb.base, &lb.key).await;
    // haproxy keeps the session with the replica that made it.
    for n in 0..9 {
        let (status, body) = in_session(
            &lb.base,
            &lb.key,
            &id,
            json!({"jsonrpc": "2.0", "id": 10 + n, "method": "tools/call", "params": {
                "name": "query", "arguments": {"sql": "SELECT 1 AS one"}}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            message(&body)["result"]["structuredContent"]["rows"],
            json!([{"one": 1}])
        );
    }
    // Past the balancer, the other replicas do not know it: 404, the
    // spec's answer for a session that is gone, on which a client starts
    // a new one.
    let mut holder = None;
    for replica in 0..3 {
        let (status, body) = in_session(&lb.replica(replica), &lb.key, &id, ping(50)).await;
        match status {
            200 => {
                assert!(holder.is_none(), "two replicas know {id}");
                holder = Some(replica);
            }
            404 => {}
            other => panic!("replica {}: {other} {body}", replica + 1),
        }
    }
    let holder = holder.expect("one replica holds the session");
    // A restart ends it; the client is told so, and a new session works.
    lb.restart(holder).await;
    let (status, body) = in_session(&lb.base, &lb.key, &id, ping(60)).await;
    assert_eq!(status, 404, "{body}");
    let again = open_session(&lb.base, &lb.key).await;
    let (status, body) = in_session(&lb.base, &lb.key, &again, ping(61)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn with_the_state_store_stopped_signed_requests_are_refused_and_say_why() {
    set_secret();
    let Some(mut cluster) = private_cluster(&ClusterSetup::default()).await else {
        return;
    };
    demo_database(&cluster, "shop").await;
    let url = cluster.url("shop");
    let Some(lb) = Balanced::start(&url, &format!("{SHARED}{SIGNER}"), "", 2).await else {
        return;
    };
    let (status, body) = Signed::new("outage-nonce-0000000001", "SELECT 1 AS one")
        .send(&lb.base)
        .await;
    assert_eq!(status, 200, "{body}");

    cluster.stop_server().await.expect("stopping the server");
    for (replica, nonce) in [
        (0, "outage-nonce-0000000002"),
        (1, "outage-nonce-0000000003"),
    ] {
        let (status, body) = Signed::new(nonce, "SELECT 1 AS one")
            .send(&lb.replica(replica))
            .await;
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("signed requests are refused while replay protection cannot be checked"),
            "{body}"
        );
        assert!(body.contains("[http] shared_state"), "{body}");
    }
    // A bearer key needs no nonce: what needs no database still answers,
    // within this replica's own rate limit.
    let answer = list_tools(&lb.replica(0), &lb.key).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        lb.log(0).contains("rate limits are this replica's own"),
        "{}",
        lb.log(0)
    );

    cluster.restart().await.expect("restarting the server");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 10;
    loop {
        n += 1;
        let (status, body) =
            Signed::new(&format!("outage-nonce-00000000{n:02}"), "SELECT 2 AS two")
                .send(&lb.replica(1))
                .await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not back within 30 s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(lb.log(1).contains("reachable again"), "{}", lb.log(1));
    drop(lb);
    cluster.stop().await.expect("stopping the cluster");
}

#[tokio::test]
async fn a_hot_reload_reaches_the_sessions_on_every_replica() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(plugin_wasm("test-looper"), dir.path().join("looper.wasm")).unwrap();
    let config = format!("{SHARED}\n[plugins]\ndir = \"{}\"\n", dir.path().display());
    let Some(lb) = Balanced::start(&db.url, &config, "", 3).await else {
        return;
    };
    // Three sessions in a row: round robin gives each replica one.
    let before: Vec<u64> = lb.stats().await.iter().map(|s| s.answered_2xx).collect();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(lb.client().await);
    }
    let spread: Vec<u64> = lb
        .stats()
        .await
        .iter()
        .zip(&before)
        .map(|(s, b)| s.answered_2xx - b)
        .collect();
    assert!(
        spread.len() == 3 && spread.iter().all(|&n| n >= 1),
        "{spread:?}"
    );
    let mut changes: Vec<_> = clients
        .iter()
        .map(|c| c.service().tool_list_changes())
        .collect();

    // Deployed the way a script would: under a temporary name, then renamed.
    let part = dir.path().join(".hello.wasm.part");
    std::fs::copy(plugin_wasm("hello"), &part).unwrap();
    std::fs::rename(&part, dir.path().join("hello.wasm")).unwrap();
    for (n, seen) in changes.iter_mut().enumerate() {
        tokio::time::timeout(Duration::from_secs(60), seen.wait_for(|n| *n > 0))
            .await
            .unwrap_or_else(|_| panic!("session {} heard of no change", n + 1))
            .unwrap();
    }
    for client in &clients {
        let tools = client.list_all_tools().await.unwrap();
        assert!(tools.iter().any(|t| t.name == "hello"), "{tools:?}");
    }
    for client in clients {
        let _ = client.cancel().await;
    }
}

#[tokio::test]
async fn spent_nonces_and_full_buckets_are_swept_and_the_rest_kept() {
    set_secret();
    let db = fresh_db().await;
    let Some(mut lb) = Balanced::start(&db.url, &format!("{SHARED}{SIGNER}"), "", 1).await else {
        return;
    };
    let (status, body) = Signed::new("sweep-nonce-00000000001", "SELECT 1 AS one")
        .send(&lb.base)
        .await;
    assert_eq!(status, 200, "{body}");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    // Rows left behind long ago, as a replica that died would leave them.
    sqlx::raw_sql(
        "INSERT INTO sluice.http_nonces VALUES ('signer', 'stale-nonce-0000000001', 1000); \
         INSERT INTO sluice.http_rate VALUES ('\\x00', 1000)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM sluice.http_nonces").await,
        2
    );
    // A replica sweeps when it starts, and every minute after.
    lb.restart(0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        &mut conn,
        "SELECT count(*) FROM sluice.http_nonces WHERE expires_at < 2000",
    )
    .await
        > 0
    {
        assert!(Instant::now() < deadline, "the stale nonce was never swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM sluice.http_rate WHERE tat < 2000"
        )
        .await,
        0
    );
    // The spent nonce stays spent: it is still inside its window.
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM sluice.http_nonces WHERE nonce = 'sweep-nonce-00000000001'"
        )
        .await,
        1
    );
    let (status, body) = Signed::new("sweep-nonce-00000000001", "SELECT 1 AS one")
        .send(&lb.base)
        .await;
    assert_eq!(status, 401, "{body}");
}

async fn count(conn: &mut sqlx::PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_shared_state_that_cannot_be_written_stops_the_start_and_says_so() {
    let db = fresh_db().await;
    // Tables an administrator made ahead, one of which refuses every row.
    run_sql(
        &db.url,
        "CREATE SCHEMA sluice; \
         CREATE UNLOGGED TABLE sluice.http_nonces (key_id text NOT NULL, nonce text NOT NULL, \
             expires_at double precision NOT NULL, PRIMARY KEY (key_id, nonce)); \
         CREATE UNLOGGED TABLE sluice.http_rate (bucket bytea PRIMARY KEY, \
             tat double precision NOT NULL CHECK (tat < 0));",
    )
    .await;
    let (_, entry) = new_key("ops");
    let home = tempfile::tempdir().unwrap();
    let (status, log, _) = Sluice::serve(&format!("{SHARED}{entry}"), home.path())
        .database_url(&db.url)
        .http("127.0.0.1:0")
        .run_to_exit()
        .await;
    assert!(!status.success());
    assert!(
        log.contains("the shared HTTP state in schema \"sluice\" does not work"),
        "{log}"
    );
    assert!(log.contains("http_rate_tat_check"), "{log}");
    assert!(!log.contains("serving MCP over HTTP"), "{log}");
}
