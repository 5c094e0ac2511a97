//! Hostile or mistaken SQL is refused as a tool error naming the rule, and the
//! database is left exactly as it was.

use crate::support::{fingerprint, fresh_db, spawn, structured, text_of};
use serde_json::json;

/// (SQL, the rule that must refuse it)
const REFUSED: &[(&str, &str)] = &[
    ("DELETE FROM books", "read-only-statement"),
    ("UPDATE books SET price = 0", "read-only-statement"),
    (
        "INSERT INTO authors (full_name) VALUES ('x')",
        "read-only-statement",
    ),
    ("DROP TABLE books", "read-only-statement"),
    ("TRUNCATE order_items", "read-only-statement"),
    ("CREATE TABLE x (a int)", "read-only-statement"),
    ("COMMIT", "read-only-statement"),
    ("SET ROLE postgres", "read-only-statement"),
    ("SELECT 1; DELETE FROM books", "single-statement"),
    ("SELECT 1; COMMIT; DROP TABLE books", "single-statement"),
    (
        "/* hi */ SELECT 1; -- x\n DROP TABLE books",
        "single-statement",
    ),
    (
        "WITH gone AS (DELETE FROM reviews RETURNING *) SELECT count(*) FROM gone",
        "data-modifying-cte",
    ),
    ("SELECT * FROM books FOR UPDATE", "locking-clause"),
    ("SELECT * INTO stolen FROM books", "select-into"),
    // Runs the statement: only under a grant's analyze = true, and only a query.
    (
        "EXPLAIN ANALYZE SELECT count(*) FROM books",
        "explain-analyze",
    ),
    ("EXPLAIN ANALYZE DELETE FROM books", "read-only-statement"),
    ("SELECT pg_read_file('/etc/passwd')", "function-denylist"),
    (
        "SELECT * FROM pg_read_file('/etc/passwd')",
        "function-denylist",
    ),
    (
        "SELECT set_config('search_path', 'x', false)",
        "function-denylist",
    ),
    ("SELECT pg_sleep(10)", "function-denylist"),
    // Refused as a server internal: no grant could open it.
    ("SELECT * FROM pg_catalog.pg_authid", "server-internals"),
    ("SELECT * FROM information_schema.tables", "read-grant"),
    ("SELEC title FROM books", "parse"),
];

#[tokio::test]
async fn hostile_sql_is_refused_and_changes_nothing() {
    let db = fresh_db().await;
    let before = fingerprint(&db.url).await;
    let server = spawn(&db, "", None).await;
    for (sql, rule) in REFUSED {
        let result = server.call("query", json!({ "sql": sql })).await;
        let text = text_of(&result);
        assert_eq!(result.is_error, Some(true), "{sql} was not refused: {text}");
        assert!(
            text.contains(&format!("denied ({rule})")),
            "{sql}: expected rule {rule}, got {text}"
        );
    }
    // The server is still healthy and the data untouched.
    let ok = structured(
        &server
            .call("query", json!({"sql": "SELECT count(*) AS n FROM books"}))
            .await,
    );
    assert_eq!(ok["rows"][0]["n"], 20);
    server.shutdown().await;
    assert_eq!(fingerprint(&db.url).await, before, "the database changed");
}

#[tokio::test]
async fn relations_outside_the_read_grant_are_refused_wherever_they_appear() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\nread = [\"public.books\", \"public.authors\"]\ncatalog = true\n";
    let server = spawn(&db, config, None).await;
    let allowed = server
        .call("query", json!({"sql": "SELECT b.title, a.full_name FROM books b JOIN authors a USING (author_id) LIMIT 1"}))
        .await;
    assert_ne!(allowed.is_error, Some(true), "{}", text_of(&allowed));
    for sql in [
        "SELECT * FROM customers",
        "SELECT * FROM books WHERE author_id IN (SELECT customer_id FROM customers)",
        "WITH c AS (SELECT * FROM public.customers) SELECT * FROM c",
        "SELECT * FROM books, LATERAL (SELECT * FROM orders o WHERE o.order_id = books.book_id) x",
        "SELECT title FROM books UNION SELECT email FROM customers",
        "SELECT * FROM \"customers\"",
        "SELECT * FROM PUBLIC.CUSTOMERS",
        "SELECT * FROM book_sales_summary",
        "EXPLAIN SELECT * FROM orders",
    ] {
        let r = server.call("query", json!({ "sql": sql })).await;
        assert_eq!(r.is_error, Some(true), "{sql}");
        assert!(
            text_of(&r).contains("denied (read-grant)"),
            "{sql}: {}",
            text_of(&r)
        );
    }
    // The catalog shows only what may be read.
    let tables = structured(&server.call("list_tables", json!({})).await);
    let names: Vec<&str> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["authors", "books"]);
    let hidden = server
        .call("describe_table", json!({"table": "customers"}))
        .await;
    assert!(
        text_of(&hidden).contains("denied (read-grant)"),
        "{}",
        text_of(&hidden)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn writes_need_a_write_grant() {
    let db = fresh_db().await;
    let before = fingerprint(&db.url).await;
    // No write grant at all: sql-write is idle and its tools do not exist.
    let server = spawn(&db, "", None).await;
    let r = server
        .try_call(
            "insert_record",
            json!({"table": "authors", "data": {"full_name": "Nobody"}}),
        )
        .await;
    assert!(r.is_err(), "an ungranted write tool answered: {r:?}");
    server.shutdown().await;

    // A grant on one table does not extend to another.
    let server = spawn(
        &db,
        "[plugins.grants.sql-write]\nwrite = [\"public.reviews\"]\n",
        None,
    )
    .await;
    let r = server
        .call(
            "insert_record",
            json!({"table": "authors", "data": {"full_name": "Nobody"}}),
        )
        .await;
    assert!(
        text_of(&r).contains("denied (write-grant)"),
        "{}",
        text_of(&r)
    );
    let r = server
        .call(
            "insert_record",
            json!({"table": "authors; DROP TABLE books", "data": {"full_name": "x"}}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("invalid"), "{}", text_of(&r));
    server.shutdown().await;
    assert_eq!(fingerprint(&db.url).await, before, "the database changed");
}

#[tokio::test]
async fn the_operator_function_lists_apply_to_every_plugin() {
    let db = fresh_db().await;
    let config = "[policy]\nallow_functions = [\"count\", \"sum\", \"lower\", \"round\", \"pg_sleep\"]\n\
                  deny_functions = [\"lower\"]\n";
    let server = spawn(&db, config, None).await;
    let sql = |sql: &'static str| {
        let server = &server;
        async move { server.call("query", json!({ "sql": sql })).await }
    };
    let ok = sql("SELECT count(*) AS n, round(sum(price)) AS total FROM books").await;
    assert_eq!(ok.is_error, Some(false), "{}", text_of(&ok));
    for (statement, rule) in [
        ("SELECT upper(title) FROM books", "function-allowlist"),
        ("SELECT * FROM generate_series(1, 3)", "function-allowlist"),
        // Denied by the operator although allowed.
        ("SELECT lower(title) FROM books", "function-denylist"),
        // The built-in denylist cannot be allowed back.
        ("SELECT pg_sleep(1)", "function-denylist"),
    ] {
        let r = sql(statement).await;
        assert_eq!(r.is_error, Some(true), "{statement}");
        assert!(
            text_of(&r).starts_with(&format!("denied ({rule})")),
            "{statement}: {}",
            text_of(&r)
        );
    }
    server.shutdown().await;
}
