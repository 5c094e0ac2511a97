//! The gated read path's caches under DDL: a read whose relations were
//! resolved before, or whose statement is prepared on the connection, must
//! still see exactly what PostgreSQL resolves now.

use crate::support::{fresh_db, run_sql, spawn_at, structured, text_of};
use serde_json::{Value, json};

/// The log file of one server, removed afterwards.
struct Log(std::path::PathBuf);

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Log {
    fn new(what: &str) -> Log {
        Log(std::env::temp_dir().join(format!("sluice-{what}-{}.log", std::process::id())))
    }

    /// Whether a read found its cached resolution stale.
    fn went_stale(&self) -> bool {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .contains("a cached relation resolution went stale")
    }

    /// Asserts that a read found its cached resolution stale.
    fn assert_went_stale(&self) {
        assert!(
            self.went_stale(),
            "the cached resolution was checked and found stale"
        );
    }
}

fn column_names(r: &rmcp::model::CallToolResult) -> Vec<String> {
    structured(r)["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn rows_of(r: &rmcp::model::CallToolResult) -> Value {
    assert_eq!(r.is_error, Some(false), "{}", text_of(r));
    structured(r)["rows"].clone()
}

/// One pooled connection, so every read reuses what the one before it
/// cached and prepared.
const ONE_CONNECTION: &str = "[database]\nmax_connections = 1\n";

#[tokio::test]
async fn a_relation_replaced_between_reads_is_resolved_again() {
    let db = fresh_db().await;
    run_sql(
        &db.url,
        "CREATE TABLE swapped (a int); INSERT INTO swapped VALUES (1)",
    )
    .await;
    let log = Log::new("reads-replaced");
    let file = std::fs::File::create(&log.0).unwrap();
    let server = spawn_at(&db.url, ONE_CONNECTION, None, file.into()).await;
    let read = json!({"sql": "SELECT * FROM swapped"});
    for _ in 0..3 {
        assert_eq!(
            rows_of(&server.call("query", read.clone()).await),
            json!([{"a": 1}])
        );
    }

    // Another relation under the same name: a new OID, another shape.
    run_sql(
        &db.url,
        "DROP TABLE swapped; CREATE TABLE swapped (b text, a int); \
         INSERT INTO swapped VALUES ('x', 2)",
    )
    .await;
    let r = server.call("query", read.clone()).await;
    assert_eq!(rows_of(&r), json!([{"b": "x", "a": 2}]));
    assert_eq!(column_names(&r), ["b", "a"]);
    server.shutdown().await;
    log.assert_went_stale();
}

#[tokio::test]
async fn a_column_added_under_a_prepared_statement_is_read() {
    let db = fresh_db().await;
    run_sql(
        &db.url,
        "CREATE TABLE grows (a int); INSERT INTO grows VALUES (1)",
    )
    .await;
    let server = spawn_at(
        &db.url,
        ONE_CONNECTION,
        None,
        std::process::Stdio::inherit(),
    )
    .await;
    let read = json!({"sql": "SELECT * FROM grows"});
    let none = json!({"sql": "SELECT * FROM grows WHERE a < 0"});
    assert_eq!(
        rows_of(&server.call("query", read.clone()).await),
        json!([{"a": 1}])
    );
    assert_eq!(
        column_names(&server.call("query", none.clone()).await),
        ["a"]
    );
    // The same OID, so the resolution holds; the prepared statements'
    // result type does not.
    run_sql(&db.url, "ALTER TABLE grows ADD COLUMN b text DEFAULT 'new'").await;
    assert_eq!(
        rows_of(&server.call("query", read.clone()).await),
        json!([{"a": 1, "b": "new"}])
    );
    // Without rows to show it, the new shape is still the one reported.
    let r = server.call("query", none.clone()).await;
    assert_eq!(rows_of(&r), json!([]));
    assert_eq!(column_names(&r), ["a", "b"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_relation_fails_with_postgresql_s_own_error() {
    let db = fresh_db().await;
    run_sql(&db.url, "CREATE TABLE gone (a int)").await;
    let server = spawn_at(
        &db.url,
        ONE_CONNECTION,
        None,
        std::process::Stdio::inherit(),
    )
    .await;
    let read = json!({"sql": "SELECT a FROM gone WHERE a = $1", "params": [1]});
    assert_eq!(
        rows_of(&server.call("query", read.clone()).await),
        json!([])
    );
    run_sql(&db.url, "DROP TABLE gone").await;
    let r = server.call("query", read.clone()).await;
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(text.contains("42P01"), "{text}");
    assert!(text.contains("\"gone\" does not exist"), "{text}");
    assert!(!text.contains("stale"), "{text}");
    // And the connection serves the next read.
    let ok = server
        .call("query", json!({"sql": "SELECT count(*) AS n FROM books"}))
        .await;
    assert_eq!(ok.is_error, Some(false), "{}", text_of(&ok));
    server.shutdown().await;
}

/// Names that resolve to no relation (a CTE) are cached as such; a table
/// that later takes a name the statement also reads is resolved, and
/// checked against the grant, before the statement runs again.
#[tokio::test]
async fn a_relation_that_appears_under_a_cached_name_is_checked_against_the_grant() {
    let db = fresh_db().await;
    let config = "[database]\nmax_connections = 1\n\
                  [plugins.grants.sql-read]\nread = [\"public.books\"]\n";
    let log = Log::new("reads-appears");
    let file = std::fs::File::create(&log.0).unwrap();
    let server = spawn_at(&db.url, config, None, file.into()).await;
    // `later` is no relation yet: the grant sees nothing to refuse, the
    // resolution is cached, and PostgreSQL fails the statement.
    let read = json!({"sql": "SELECT book_id FROM books WHERE book_id IN (SELECT 1 FROM later)"});
    let first = server.call("query", read.clone()).await;
    assert_eq!(first.is_error, Some(true));
    assert!(text_of(&first).contains("42P01"), "{}", text_of(&first));
    run_sql(&db.url, "CREATE TABLE later (x int)").await;
    let second = server.call("query", read.clone()).await;
    assert_eq!(second.is_error, Some(true));
    let text = text_of(&second);
    assert!(text.contains("denied (read-grant)"), "{text}");
    assert!(text.contains("public.later"), "{text}");
    server.shutdown().await;
    log.assert_went_stale();
}

/// The assertion names each relation as written, whatever it holds:
/// quotes, backslashes, non-ASCII. The second and third reads go through it,
/// and it must hold: a misspelt name would fail it and each read would fall
/// back to resolving afresh, which the log would show.
#[tokio::test]
async fn relation_names_of_any_spelling_are_asserted_safely() {
    let db = fresh_db().await;
    run_sql(
        &db.url,
        r##"CREATE TABLE "we'ird\ ""näme""" (a int); INSERT INTO "we'ird\ ""näme""" VALUES (7)"##,
    )
    .await;
    let log = Log::new("reads-spelling");
    let file = std::fs::File::create(&log.0).unwrap();
    let server = spawn_at(&db.url, ONE_CONNECTION, None, file.into()).await;
    let read = json!({"sql": r##"SELECT a FROM "we'ird\ ""näme""" WHERE a > $1"##, "params": [0]});
    for _ in 0..3 {
        assert_eq!(
            rows_of(&server.call("query", read.clone()).await),
            json!([{"a": 7}])
        );
    }
    server.shutdown().await;
    assert!(
        !log.went_stale(),
        "the assertion failed on a name that still resolves"
    );
}
