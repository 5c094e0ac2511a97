//! Nothing a client sends may crash, stall or silence the server: each
//! class of hostile input from a hostile-input report, sent to the real
//! binary over stdio, gets an answer, and the server answers the next
//! request.

use crate::support::raw::{RawServer, error_code, error_message, result_text};
use crate::support::{fresh_db, plugin_dir_with, plugin_wasm, spawn, structured, text_of};
use serde_json::{Value, json};
use sqlx::Connection as _;
use std::time::Duration;

/// A read of `sql` through the first-party `query` tool.
fn query(id: &str, sql: &str) -> Value {
    RawServer::tool_call(json!(id), "query", json!({ "sql": sql }))
}

#[tokio::test]
async fn statements_too_deep_or_too_long_are_refused_and_the_server_lives() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let deep = [
        format!("SELECT 1{}", "+1".repeat(4000)),
        format!("SELECT 1 WHERE {}", vec!["1 = 1"; 10_000].join(" OR ")),
        vec!["SELECT 1"; 2000].join(" UNION ALL "),
        // Before any grant check: the relation is not granted.
        format!("SELECT 1{} FROM secret.things", "+1".repeat(4000)),
    ];
    for sql in &deep {
        for tool in ["query", "explain_query"] {
            let result = server.call(tool, json!({ "sql": sql })).await;
            let text = text_of(&result);
            assert_eq!(result.is_error, Some(true), "{tool}: {text}");
            assert!(
                text.contains("denied (statement-too-complex)")
                    && text.contains("max_statement_depth"),
                "{tool}: {text}"
            );
        }
    }
    // Ten megabytes are refused on their size, before they are parsed.
    let huge = format!(
        "SELECT 1 WHERE 1 IN ({})",
        vec!["1234567"; 1_250_000].join(",")
    );
    let result = server.call("query", json!({ "sql": huge })).await;
    assert!(
        text_of(&result).contains("max_statement_bytes"),
        "{}",
        text_of(&result)
    );
    // A long list within the limits is an ordinary query.
    let list = format!(
        "SELECT count(*) AS n FROM books WHERE book_id IN ({})",
        (1..=20_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let result = server.call("query", json!({ "sql": list })).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    let rows = structured(
        &server
            .call("query", json!({"sql": "SELECT 2 AS two"}))
            .await,
    );
    assert_eq!(rows["rows"], json!([{"two": 2}]));
    server.shutdown().await;
}

/// Four megabytes of SQL: seconds to analyse in a debug build, far longer
/// than reading the line.
fn big_statement() -> String {
    format!(
        "SELECT 1 AS one WHERE 1234567 IN ({})",
        vec!["1234567"; 500_000].join(",")
    )
}

#[tokio::test]
async fn analysis_stalls_no_one() {
    let db = fresh_db().await;
    let config = "[policy]\nmax_statement_bytes = 16777216\n\n\
                  [plugins.grants.sql-read]\ntimeout_ms = 120000\n";
    let mut server = RawServer::initialized(&db, config, None).await;
    let big = big_statement();
    server.send(&query("big-1", &big)).await;
    server.send(&query("big-2", &big)).await;
    server
        .send(&json!({"jsonrpc": "2.0", "id": "ping", "method": "ping"}))
        .await;
    // The ping is answered first: parsing runs on threads of its own.
    let first = server.next().await.expect("an answer");
    assert_eq!(first["id"], "ping", "{first}");
    for id in ["big-1", "big-2"] {
        let answer = server.answer_to(&json!(id)).await;
        assert_eq!(
            answer["result"]["structuredContent"]["rows"],
            json!([{"one": 1}]),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn analysis_keeps_to_the_call_deadline() {
    let db = fresh_db().await;
    let config = "[policy]\nmax_statement_bytes = 16777216\n\n\
                  [plugins.grants.sql-read]\ntimeout_ms = 300\n";
    let mut server = RawServer::initialized(&db, config, None).await;
    server.send(&query("big", &big_statement())).await;
    let answer = server.answer_to(&json!("big")).await;
    let text = result_text(&answer);
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(text.contains("timeout_ms"), "{text}");
    server.ping("after").await;
}

#[tokio::test]
async fn every_malformed_line_is_answered() {
    let db = fresh_db().await;
    let config = "[mcp]\nmax_message_bytes = 65536\n\n\
                  [plugins.grants.sql-write]\nwrite = [\"public.*\"]\n";
    let mut server = RawServer::initialized(&db, config, None).await;

    // Each line, and the id its answer must carry.
    let nested = format!("{}1{}", "[".repeat(150), "]".repeat(150));
    let cases: Vec<(Vec<u8>, Value)> = vec![
        // Too long for the configured limit.
        (
            query("long", &format!("SELECT '{}'", "x".repeat(100_000)))
                .to_string()
                .into_bytes(),
            json!("long"),
        ),
        // JSON too deep, inside a tool's arguments.
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":"deep","method":"tools/call","params":{{"name":"insert_record","arguments":{{"table":"authors","data":{{"full_name":{nested}}}}}}}}}"#
            )
            .into_bytes(),
            json!("deep"),
        ),
        // Invalid UTF-8 inside a string.
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":\"utf8\",\"method\":\"tools/call\",\"params\":{\"name\":\"query\",\"arguments\":{\"sql\":\"SELECT '\xff\xfe'\"}}}".to_vec(),
            json!("utf8"),
        ),
        // A number no double holds.
        (
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"query","arguments":{"sql":"SELECT $1::text","params":[1e400]}}}"#.to_vec(),
            json!(7),
        ),
        // Not JSON at all inside.
        (
            br#"{"jsonrpc":"2.0","id":"nan","method":"tools/call","params":{"name":"query","arguments":{"sql":NaN}}}"#.to_vec(),
            json!("nan"),
        ),
        // Garbage after the message.
        (
            br#"{"jsonrpc":"2.0","id":"tail","method":"ping"} and more"#.to_vec(),
            json!("tail"),
        ),
        // Not a JSON-RPC request (no method, no result).
        (br#"{"jsonrpc":"2.0","id":"odd"}"#.to_vec(), json!("odd")),
        // Nothing readable: answered with a null id.
        (br#"{"jsonrpc":"2.0","#.to_vec(), Value::Null),
        (b"NaN".to_vec(), Value::Null),
    ];
    for (line, id) in cases {
        server.send_line(&line).await;
        let answer = server.answer_to(&id).await;
        let code = error_code(&answer);
        let expected = if id.is_null() { -32700 } else { -32600 };
        assert!(
            code == Some(expected) || code == Some(-32602),
            "{} got {answer}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        );
        server.ping("alive").await;
    }
}

#[tokio::test]
async fn a_line_over_the_default_limit_is_answered() {
    let db = fresh_db().await;
    let mut server = RawServer::initialized(&db, "", None).await;
    // 17 MiB, over the default 16 MiB.
    let sql = format!("SELECT '{}'", "y".repeat(17 * 1024 * 1024));
    server.send(&query("huge", &sql)).await;
    let answer = server.answer_to(&json!("huge")).await;
    assert_eq!(error_code(&answer), Some(-32600), "{answer}");
    assert!(
        error_message(&answer).contains("max_message_bytes"),
        "{answer}"
    );
    server.ping("alive").await;
}

/// A query that runs for a while in PostgreSQL: about `n` / 10⁷ seconds.
fn slow(n: u64) -> String {
    format!("SELECT count(*) AS n FROM generate_series(1, {n}) AS g")
}

#[tokio::test]
async fn a_duplicate_id_in_flight_is_refused_and_both_are_answered() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\ntimeout_ms = 60000\n";
    let mut server = RawServer::initialized(&db, config, None).await;
    let first = query("same", &slow(20_000_000)).to_string();
    let second = query("same", "SELECT 1 AS one").to_string();
    server
        .send_line(format!("{first}\n{second}").as_bytes())
        .await;
    let answers = [
        server.answer_to(&json!("same")).await,
        server.answer_to(&json!("same")).await,
    ];
    let refused: Vec<&Value> = answers.iter().filter(|a| error_code(a).is_some()).collect();
    assert_eq!(refused.len(), 1, "{answers:?}");
    assert!(
        error_message(refused[0]).contains("already used"),
        "{answers:?}"
    );
    let result = answers.iter().find(|a| a.get("result").is_some()).unwrap();
    assert_eq!(
        result["result"]["structuredContent"]["rows"],
        json!([{"n": 20_000_000}])
    );
    server.ping("alive").await;
}

/// Statements sluice's connections to `url`'s database are running.
async fn running(url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND state = 'active' \
           AND application_name = 'sluice' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let _ = conn.close().await;
    n
}

/// Waits until `condition` holds for [`running`], polling; false after
/// about ten seconds.
async fn wait_running(url: &str, condition: impl Fn(i64) -> bool) -> bool {
    for _ in 0..100 {
        if condition(running(url).await) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn sigterm_answers_every_call_and_leaves_no_statement_running() {
    let db = fresh_db().await;
    let config = "[mcp]\nshutdown_grace_ms = 500\n\n\
                  [plugins.grants.sql-read]\ntimeout_ms = 120000\n";
    let mut server = RawServer::initialized(&db, config, None).await;
    // Runs for minutes unless cancelled.
    server.send(&query("slow", &slow(4_000_000_001))).await;
    assert!(
        wait_running(&db.url, |n| n == 1).await,
        "the slow statement never started"
    );
    server.signal(libc::SIGTERM);
    let answer = server.answer_to(&json!("slow")).await;
    assert!(
        error_message(&answer).contains("sluice is stopping"),
        "{answer}"
    );
    // Exactly one answer, and then the process ends.
    let more = server.all_answers_to(&json!("slow")).await;
    assert!(more.is_empty(), "answered again: {more:?}");
    let status = server.exit_status().await;
    assert!(status.success(), "{status}");
    assert!(
        wait_running(&db.url, |n| n == 0).await,
        "the abandoned statement is still running after sluice exited"
    );
}

#[tokio::test]
async fn a_call_that_finishes_within_the_grace_keeps_its_result() {
    let db = fresh_db().await;
    let config = "[mcp]\nshutdown_grace_ms = 30000\n\n\
                  [plugins.grants.sql-read]\ntimeout_ms = 60000\n";
    let mut server = RawServer::initialized(&db, config, None).await;
    server.send(&query("short", &slow(40_000_001))).await;
    assert!(wait_running(&db.url, |n| n == 1).await);
    server.signal(libc::SIGTERM);
    // Once the signal is handled, new requests are refused, while the call
    // in flight runs on.
    let mut refused = false;
    for attempt in 0..200 {
        let id = json!(format!("late-{attempt}"));
        server
            .send(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .await;
        let late = server.answer_to(&id).await;
        if error_message(&late).contains("sluice is stopping") {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "requests were still taken after SIGTERM");
    let answer = server.answer_to(&json!("short")).await;
    assert_eq!(
        answer["result"]["structuredContent"]["rows"],
        json!([{"n": 40_000_001}]),
        "{answer}"
    );
    assert!(server.exit_status().await.success());
}

#[tokio::test]
async fn the_end_of_input_lets_calls_in_flight_answer() {
    let db = fresh_db().await;
    let config = "[mcp]\nshutdown_grace_ms = 30000\n\n\
                  [plugins.grants.sql-read]\ntimeout_ms = 60000\n";
    let mut server = RawServer::initialized(&db, config, None).await;
    server.send(&query("last", &slow(10_000_002))).await;
    server.close_stdin();
    let answer = server.answer_to(&json!("last")).await;
    assert_eq!(
        answer["result"]["structuredContent"]["rows"],
        json!([{"n": 10_000_002}]),
        "{answer}"
    );
    assert!(server.exit_status().await.success());
}

#[tokio::test]
async fn a_stray_message_before_initialize_does_not_end_the_server() {
    let db = fresh_db().await;
    let mut server = RawServer::spawn(&db, "", None).await;
    server
        .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    server
        .send(&json!({"jsonrpc": "2.0", "id": 99, "result": {}}))
        .await;
    server.initialize().await;
    server.ping("alive").await;
}

#[tokio::test]
async fn reads_that_reveal_the_server_or_spend_its_xids_are_refused() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\nread = [\"*.*\"]\n";
    let server = spawn(&db, config, None).await;
    for (sql, rule) in [
        ("SELECT txid_current()", "function-denylist"),
        ("SELECT pg_current_xact_id()", "function-denylist"),
        (
            "SELECT current_setting('data_directory')",
            "server-internals",
        ),
        ("SELECT current_setting('config_file')", "server-internals"),
        ("SELECT current_setting('hba_file')", "server-internals"),
        ("SELECT current_setting('ident_file')", "server-internals"),
        (
            "SELECT current_setting('unix_socket_directories')",
            "server-internals",
        ),
        (
            "SELECT current_setting(name) FROM pg_catalog.pg_class LIMIT 1",
            "server-internals",
        ),
        (
            "SELECT setting FROM pg_settings WHERE name = 'data_directory'",
            "server-internals",
        ),
        (
            "SELECT * FROM pg_catalog.pg_file_settings",
            "server-internals",
        ),
        ("SELECT pg_relation_filepath('books')", "function-denylist"),
        (
            "SELECT query FROM pg_stat_get_activity(NULL)",
            "function-denylist",
        ),
        (
            "SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s",
            "function-denylist",
        ),
    ] {
        let result = server.call("query", json!({ "sql": sql })).await;
        assert!(
            text_of(&result).contains(&format!("denied ({rule})")),
            "{sql}: {}",
            text_of(&result)
        );
    }
    let ok = server
        .call(
            "query",
            json!({"sql": "SELECT current_setting('server_version_num')::int > 0 AS ok"}),
        )
        .await;
    assert_eq!(structured(&ok)["rows"], json!([{"ok": true}]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_fifo_in_the_plugin_directory_blocks_nothing() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["hello"]);
    let fifo = dir.path().join("stuck.wasm");
    let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("stuck.wasm", dir.path().join("link.wasm")).unwrap();
    std::fs::create_dir(dir.path().join("folder.wasm")).unwrap();

    // `plugins check` finishes, and says what it skipped.
    let check = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["plugins", "list", "--plugins"])
            .arg(dir.path())
            .output(),
    )
    .await
    .expect("plugins list hung on the FIFO")
    .unwrap();
    let listed = String::from_utf8_lossy(&check.stdout);
    assert!(listed.contains("hello"), "{listed}");
    let log = String::from_utf8_lossy(&check.stderr);
    assert!(log.contains("not a regular file"), "{log}");

    // The server starts, and its watcher still sees later changes.
    let server = spawn(&db, "", Some(dir.path())).await;
    let names = |tools: Vec<rmcp::model::Tool>| -> Vec<String> {
        tools.into_iter().map(|t| t.name.to_string()).collect()
    };
    assert!(names(server.list_tools().await).contains(&"hello".to_string()));
    let seen = server.tool_list_changes();
    std::fs::copy(plugin_wasm("test-looper"), dir.path().join("looper.wasm")).unwrap();
    server.wait_tool_list_changed(seen).await;
    assert!(names(server.list_tools().await).contains(&"spin".to_string()));
    server.shutdown().await;
}
