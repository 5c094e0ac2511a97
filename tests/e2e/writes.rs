//! `update_records` and `delete_records`: typed writes through the host's
//! write calls, with the grant, the catalog checks and the row cap.

use crate::support::{TestDb, fingerprint, fresh_db, spawn, structured, text_of};
use serde_json::json;
use sqlx::{Connection as _, PgConnection};

async fn scalar_i64(db: &TestDb, sql: &str) -> i64 {
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn update_records_changes_exactly_the_matching_rows_and_returns_them() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-write]\nwrite = [\"public.books\", \"public.orders\"]\n";
    let server = spawn(&db, config, None).await;
    let author = scalar_i64(
        &db,
        "SELECT author_id::int8 FROM books GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1",
    )
    .await;
    let matching = scalar_i64(
        &db,
        &format!("SELECT count(*) FROM books WHERE author_id = {author}"),
    )
    .await;
    let others_at_price = scalar_i64(
        &db,
        &format!("SELECT count(*) FROM books WHERE price = 12.50 AND author_id <> {author}"),
    )
    .await;

    let r = server
        .call(
            "update_records",
            json!({"table": "books", "filter": {"author_id": author}, "set": {"price": "12.50", "in_print": false}}),
        )
        .await;
    let out = structured(&r);
    assert_eq!(out["count"], matching, "{}", text_of(&r));
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(rows.len() as i64, matching);
    for row in rows {
        assert_eq!(row["author_id"], author);
        assert_eq!(row["price"], "12.50");
        assert_eq!(row["in_print"], false);
    }
    // Stored, and nothing else touched.
    assert_eq!(
        scalar_i64(
            &db,
            &format!("SELECT count(*) FROM books WHERE author_id = {author} AND price = 12.50 AND NOT in_print"),
        )
        .await,
        matching
    );
    assert_eq!(
        scalar_i64(
            &db,
            &format!("SELECT count(*) FROM books WHERE price = 12.50 AND author_id <> {author}"),
        )
        .await,
        others_at_price
    );

    // Enum values are converted; a null filter value matches NULL.
    let pending_unshipped = scalar_i64(
        &db,
        "SELECT count(*) FROM orders WHERE status = 'pending' AND shipped_at IS NULL",
    )
    .await;
    assert!(pending_unshipped > 0);
    let r = server
        .call(
            "update_records",
            json!({"table": "orders", "filter": {"status": "pending", "shipped_at": null}, "set": {"status": "cancelled"}}),
        )
        .await;
    assert_eq!(
        structured(&r)["count"],
        pending_unshipped,
        "{}",
        text_of(&r)
    );
    assert_eq!(
        scalar_i64(&db, "SELECT count(*) FROM orders WHERE status = 'pending'").await,
        0
    );

    // No match is not an error: nothing changed, nothing returned.
    let r = server
        .call(
            "update_records",
            json!({"table": "books", "filter": {"book_id": -1}, "set": {"stock_count": 1}}),
        )
        .await;
    assert_eq!(structured(&r)["count"], 0, "{}", text_of(&r));
    server.shutdown().await;
}

#[tokio::test]
async fn writes_over_the_row_cap_roll_back_whole() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-write]\nwrite = [\"public.*\"]\nmax_write_rows = 2\n";
    let server = spawn(&db, config, None).await;
    let in_print = scalar_i64(&db, "SELECT count(*) FROM books WHERE in_print").await;
    assert!(in_print > 2);
    let before = fingerprint(&db.url).await;

    let r = server
        .call(
            "update_records",
            json!({"table": "books", "filter": {"in_print": true}, "set": {"stock_count": 0}}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(text.contains("denied (max_write_rows)"), "{text}");
    assert!(text.contains("more than 2 row(s)"), "{text}");
    assert!(text.contains("nothing changed"), "{text}");

    let r = server
        .call(
            "delete_records",
            json!({"table": "reviews", "filter": {"rating": 5}}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("max_write_rows"), "{}", text_of(&r));

    // A call may ask for a lower cap than the grant's.
    let author = scalar_i64(
        &db,
        "SELECT author_id::int8 FROM books GROUP BY 1 HAVING count(*) = 2 ORDER BY 1 LIMIT 1",
    )
    .await;
    let r = server
        .call(
            "update_records",
            json!({"table": "books", "filter": {"author_id": author}, "set": {"stock_count": 0}, "max_rows": 1}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("more than the 1 row(s) this call allowed"),
        "{}",
        text_of(&r)
    );
    assert_eq!(
        fingerprint(&db.url).await,
        before,
        "a refused write changed the database"
    );

    // Within the cap it goes through.
    let r = server
        .call(
            "update_records",
            json!({"table": "books", "filter": {"author_id": author}, "set": {"stock_count": 0}, "max_rows": 2}),
        )
        .await;
    assert_eq!(structured(&r)["count"], 2, "{}", text_of(&r));
    server.shutdown().await;
}

#[tokio::test]
async fn delete_records_returns_the_deleted_rows() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-write]\nwrite = [\"public.reviews\"]\n";
    let server = spawn(&db, config, None).await;
    let id = scalar_i64(&db, "SELECT min(review_id)::int8 FROM reviews").await;
    let total = scalar_i64(&db, "SELECT count(*) FROM reviews").await;

    let r = server
        .call(
            "delete_records",
            json!({"table": "public.reviews", "filter": {"review_id": id}}),
        )
        .await;
    let out = structured(&r);
    assert_eq!(out["count"], 1, "{}", text_of(&r));
    assert_eq!(out["rows"][0]["review_id"], id);
    assert!(out["rows"][0]["rating"].is_i64());
    assert_eq!(
        scalar_i64(&db, "SELECT count(*) FROM reviews").await,
        total - 1
    );
    assert_eq!(
        scalar_i64(
            &db,
            &format!("SELECT count(*) FROM reviews WHERE review_id = {id}")
        )
        .await,
        0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn writes_are_checked_before_anything_changes() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-write]\nwrite = [\"public.reviews\"]\n";
    let server = spawn(&db, config, None).await;
    let before = fingerprint(&db.url).await;
    let refused = |name: &'static str, args: serde_json::Value| {
        let server = &server;
        async move {
            let r = server.call(name, args).await;
            assert_eq!(r.is_error, Some(true), "{name} {}", text_of(&r));
            text_of(&r)
        }
    };

    // Outside the write grant.
    let t = refused(
        "delete_records",
        json!({"table": "books", "filter": {"book_id": 1}}),
    )
    .await;
    assert!(t.contains("denied (write-grant)"), "{t}");
    let t = refused(
        "update_records",
        json!({"table": "authors", "filter": {"author_id": 1}, "set": {"full_name": "x"}}),
    )
    .await;
    assert!(t.contains("denied (write-grant)"), "{t}");
    // A filter is required.
    let t = refused("delete_records", json!({"table": "reviews", "filter": {}})).await;
    assert!(t.contains("filter is empty"), "{t}");
    // Column names are checked against the catalog, never spliced into SQL.
    let t = refused(
        "delete_records",
        json!({"table": "reviews", "filter": {"rating = rating OR true --": 1}}),
    )
    .await;
    assert!(t.contains("has no column"), "{t}");
    let t = refused(
        "update_records",
        json!({"table": "reviews", "filter": {"review_id": 1}, "set": {"rating\" = 1, \"body": "x"}}),
    )
    .await;
    assert!(t.contains("has no column"), "{t}");
    // Table names are parsed as names only.
    let t = refused(
        "delete_records",
        json!({"table": "reviews; DROP TABLE books", "filter": {"review_id": 1}}),
    )
    .await;
    assert!(t.contains("invalid relation name"), "{t}");
    // Values are bound: text that looks like SQL is just a value that fails
    // the column's type, or matches nothing.
    let t = refused(
        "delete_records",
        json!({"table": "reviews", "filter": {"review_id": "1 OR 1=1"}}),
    )
    .await;
    assert!(
        t.contains("column review_id (bigint): invalid input \"1 OR 1=1\""),
        "{t}"
    );
    let r = server
        .call(
            "delete_records",
            json!({"table": "reviews", "filter": {"title": "x' OR '1'='1"}}),
        )
        .await;
    assert_eq!(structured(&r)["count"], 0, "{}", text_of(&r));
    // The database's own checks apply: rating is 1..5.
    let id = scalar_i64(&db, "SELECT min(review_id)::int8 FROM reviews").await;
    let t = refused(
        "update_records",
        json!({"table": "reviews", "filter": {"review_id": id}, "set": {"rating": 9}}),
    )
    .await;
    assert!(t.contains("23514"), "{t}");

    assert_eq!(fingerprint(&db.url).await, before);
    server.shutdown().await;
}

/// Write SQL a hostile plugin with a write grant on `books` (and a read
/// grant on `authors`) might send through `execute`, and the rule that must
/// refuse each.
const HOSTILE_WRITES: &[(&str, &str)] = &[
    ("DROP TABLE books", "write-statement"),
    ("TRUNCATE books", "write-statement"),
    ("COPY books TO PROGRAM 'id'", "write-statement"),
    (
        "SELECT set_config('role', 'postgres', false)",
        "write-statement",
    ),
    ("EXPLAIN ANALYZE DELETE FROM books", "write-statement"),
    (
        "MERGE INTO books b USING authors a ON false WHEN NOT MATCHED THEN DO NOTHING",
        "write-statement",
    ),
    (
        "WITH gone AS (DELETE FROM customers RETURNING *) INSERT INTO books SELECT * FROM books",
        "write-statement",
    ),
    ("DELETE FROM customers", "write-grant"),
    (
        "UPDATE pg_catalog.pg_authid SET rolsuper = true",
        "write-grant",
    ),
    (
        "UPDATE books SET title = title; DELETE FROM customers",
        "single-statement",
    ),
    (
        "UPDATE books SET title = title WHERE book_id = 1; COMMIT",
        "single-statement",
    ),
    (
        "UPDATE books SET title = (SELECT email FROM customers LIMIT 1) WHERE book_id = 1",
        "read-grant",
    ),
    (
        "UPDATE books SET title = title WHERE book_id = 1 RETURNING (SELECT email FROM customers LIMIT 1)",
        "read-grant",
    ),
    (
        "DELETE FROM books USING customers c WHERE c.customer_id = books.book_id",
        "read-grant",
    ),
    (
        "INSERT INTO books SELECT * FROM pg_catalog.pg_authid",
        "server-internals",
    ),
    (
        "DELETE FROM books WHERE book_id IN (WITH x AS (DELETE FROM customers RETURNING 1) SELECT 1 FROM x)",
        "data-modifying-cte",
    ),
    (
        "UPDATE books SET title = title WHERE book_id IN (SELECT book_id FROM books FOR UPDATE)",
        "locking-clause",
    ),
    (
        "UPDATE books SET title = pg_read_file('/etc/passwd') WHERE book_id = 1",
        "function-denylist",
    ),
    (
        "DELETE FROM books WHERE pg_sleep(10) IS NULL",
        "function-denylist",
    ),
    (
        "UPDATE books SET stock_count = nextval('books_book_id_seq')",
        "function-denylist",
    ),
    (
        "UPDATE books SET title = current_setting('data_directory') WHERE book_id = 1",
        "server-internals",
    ),
    (
        "UPDATE books SET stock_count = stock_count",
        "max_write_rows",
    ),
];

#[tokio::test]
async fn a_hostile_plugins_write_sql_is_refused_by_rule_and_changes_nothing() {
    let db = fresh_db().await;
    let dir = crate::support::plugin_dir_with(&["test-writer"]);
    let config = "[plugins.grants.test-writer]\nwrite = [\"public.books\"]\n\
                  read = [\"public.authors\"]\nmax_write_rows = 3\n";
    let server = spawn(&db, config, Some(dir.path())).await;
    let before = fingerprint(&db.url).await;
    let mut failures = Vec::new();
    for (sql, rule) in HOSTILE_WRITES {
        let r = server.call("write", json!({"sql": sql})).await;
        let text = text_of(&r);
        if r.is_error != Some(true) || !text.contains(&format!("denied ({rule})")) {
            failures.push(format!("{sql}\n  expected denied ({rule}), got: {text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        fingerprint(&db.url).await,
        before,
        "a refused write changed data"
    );

    // What the grant allows goes through, under the cap and the call's own.
    let r = server
        .call(
            "write",
            json!({"sql": "UPDATE books SET stock_count = stock_count + 1 \
                           WHERE author_id IN (SELECT author_id FROM authors) AND book_id = 1"}),
        )
        .await;
    assert_eq!(text_of(&r), "affected 1");
    let r = server
        .call(
            "write",
            json!({"sql": "UPDATE books SET stock_count = stock_count WHERE book_id <= 2", "max_rows": 1}),
        )
        .await;
    assert!(
        text_of(&r).contains("denied (max_write_rows)"),
        "{}",
        text_of(&r)
    );
    server.shutdown().await;
}
