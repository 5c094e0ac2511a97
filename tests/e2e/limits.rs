//! Per-plugin limits: each one, when reached, gives an error that names it,
//! and the server goes on serving.

use crate::support::{fresh_db, plugin_dir_with, spawn, structured, text_of};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_result_over_max_result_bytes_is_refused_by_name() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\nmax_result_bytes = 10000\n";
    let server = spawn(&db, config, None).await;
    // Many small rows and one wide value both count.
    for sql in [
        "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 500) g",
        "SELECT repeat('y', 20000) AS wide",
    ] {
        let r = server.call("query", json!({ "sql": sql })).await;
        assert_eq!(r.is_error, Some(true), "{sql}");
        let text = text_of(&r);
        assert!(text.contains("denied (max_result_bytes)"), "{text}");
        assert!(text.contains("10000 bytes"), "{text}");
    }
    let ok = server
        .call("query", json!({"sql": "SELECT repeat('z', 5000) AS fits"}))
        .await;
    assert_eq!(ok.is_error, Some(false), "{}", text_of(&ok));
    server.shutdown().await;
}

#[tokio::test]
async fn a_statement_timeout_names_timeout_ms() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\ntimeout_ms = 200\n";
    let server = spawn(&db, config, None).await;
    let r = server
        .call(
            "query",
            json!({"sql": "SELECT count(*) FROM generate_series(1, 1000000000)"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    // Either PostgreSQL's statement timeout or the call's deadline wins the
    // race; both say which limit it was.
    let text = text_of(&r);
    assert!(text.contains("timeout_ms"), "{text}");
    assert!(text.contains("200 ms"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn calls_over_max_concurrent_calls_are_refused_while_others_run() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["test-looper"]);
    let config = "[plugins.grants.test-looper]\ntimeout_ms = 3000\nmax_concurrent_calls = 1\n";
    let server = spawn(&db, config, Some(dir.path())).await;
    let first = server.call("spin", json!({}));
    let second = async {
        // Well inside the first call's three seconds.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = server.call("spin", json!({})).await;
        // Other plugins are not affected.
        let q = server
            .call("query", json!({"sql": "SELECT 1 AS one"}))
            .await;
        (r, q)
    };
    let (first, (second, query)) = tokio::join!(first, second);
    assert!(
        text_of(&first).contains("timeout_ms"),
        "{}",
        text_of(&first)
    );
    assert_eq!(second.is_error, Some(true));
    let text = text_of(&second);
    assert!(text.contains("denied (max_concurrent_calls)"), "{text}");
    assert!(text.contains("already running 1 calls"), "{text}");
    assert_eq!(structured(&query)["rows"], json!([{"one": 1}]));
    server.shutdown().await;
}

/// A read's ROLLBACK is not waited for; it must still reach the server
/// before the connection serves anything else, and no transaction may be
/// left open. With one pooled connection, every call runs on the
/// connection the call before it read on, each in a transaction of its
/// own, and afterwards nothing is left idle in a transaction.
#[tokio::test]
async fn reads_leave_no_transaction_open_on_the_pooled_connection() {
    use sqlx::Connection as _;
    let db = fresh_db().await;
    let config = "[database]\nmax_connections = 1\n";
    let server = spawn(&db, config, None).await;
    let mut pids = std::collections::BTreeSet::new();
    let mut began = std::collections::BTreeSet::new();
    for i in 0..20 {
        // A ROLLBACK that never arrived would leave the next call inside
        // the same transaction, with the same start time.
        let r = server
            .call(
                "query",
                json!({
                    "sql": "SELECT pg_catalog.pg_backend_pid() AS pid, \
                            pg_catalog.transaction_timestamp()::text AS began, $1::int AS i",
                    "params": [i]
                }),
            )
            .await;
        assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
        let row = &structured(&r)["rows"][0];
        pids.insert(row["pid"].to_string());
        assert!(
            began.insert(row["began"].to_string()),
            "a transaction served two calls: {row}"
        );
    }
    assert_eq!(
        pids.len(),
        1,
        "one pooled connection served every call: {pids:?}"
    );
    // The last ROLLBACK is sent when the pool takes the connection back,
    // off the call's path: give it a moment, then look from outside.
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut open = -1;
    for _ in 0..50 {
        open = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_catalog.pg_stat_activity \
             WHERE datname = pg_catalog.current_database() \
               AND pid <> pg_catalog.pg_backend_pid() AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0, "a transaction was left open");
    server.shutdown().await;
}
