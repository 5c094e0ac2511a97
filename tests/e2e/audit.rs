//! Every database host call leaves one audit event in the JSON-lines file,
//! with the statement's fingerprint and never a parameter or literal value.

use crate::support::{fresh_db, spawn, text_of};
use serde_json::{Value, json};

#[tokio::test]
async fn every_database_call_is_audited_without_values() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let config = format!(
        "[audit]\nfile = \"{}\"\n\n[plugins.grants.sql-write]\nwrite = [\"public.authors\"]\n",
        path.display()
    );
    let server = spawn(&db, &config, None).await;
    let r = server
        .call(
            "query",
            json!({"sql": "SELECT book_id FROM books WHERE title = 'Pride and Prejudice' AND price = $1", "params": ["12.50"]}),
        )
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    server
        .call("query", json!({"sql": "DELETE FROM books"}))
        .await;
    server.call("query", json!({"sql": "SELECT 1 / 0"})).await;
    let r = server
        .call(
            "insert_record",
            json!({"table": "authors", "data": {"full_name": "Zadie Secretname", "birth_year": 1975, "country_code": "GB"}}),
        )
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    server.call("list_tables", json!({})).await;
    server.shutdown().await;

    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [
        "Pride and Prejudice",
        "12.50",
        "Zadie",
        "Secretname",
        "1975",
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into the audit file:\n{text}"
        );
    }
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 5, "{text}");
    for e in &events {
        assert!(e["plugin"].as_str().unwrap().starts_with("sql-"), "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
        assert!(e["duration_ms"].is_number(), "{e}");
    }

    let q = &events[0];
    assert_eq!(q["tool"], "query");
    assert_eq!(q["call"], "query");
    assert_eq!(
        q["fingerprint"],
        "SELECT book_id FROM books WHERE title = ? AND price = $1"
    );
    assert_eq!(q["relations"], json!(["public.books"]));
    assert_eq!(q["decision"], "allow");
    assert_eq!(q["rows"], 1);

    let denied = &events[1];
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["rule"], "read-only-statement");
    assert!(denied.get("rows").is_none());

    let failed = &events[2];
    assert_eq!(failed["decision"], "allow");
    assert_eq!(failed["sqlstate"], "22012");
    assert_eq!(failed["fingerprint"], "SELECT ? / ?");

    let insert = &events[3];
    assert_eq!(insert["tool"], "insert_record");
    assert_eq!(insert["call"], "insert");
    assert_eq!(insert["relations"], json!(["public.authors"]));
    assert!(
        insert["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("INSERT INTO \"public\".\"authors\" (\"birth_year\", \"country_code\", \"full_name\") VALUES ($1, $2, $3)"),
        "{insert}"
    );
    assert_eq!(insert["rows"], 1);

    assert_eq!(events[4]["call"], "list-relations");
    assert_eq!(events[4]["tool"], "list_tables");
}

#[tokio::test]
async fn updates_deletes_and_their_refusals_are_audited_without_values() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let config = format!(
        "[audit]\nfile = \"{}\"\n\n[plugins.grants.sql-write]\nwrite = [\"public.reviews\"]\nmax_write_rows = 1\n",
        path.display()
    );
    let server = spawn(&db, &config, None).await;
    let r = server
        .call(
            "update_records",
            json!({"table": "reviews", "filter": {"review_id": 1}, "set": {"title": "Quietly Secret Title"}}),
        )
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let r = server
        .call(
            "delete_records",
            json!({"table": "reviews", "filter": {"rating": 5}}),
        )
        .await;
    assert_eq!(r.is_error, Some(true), "{}", text_of(&r));
    server.shutdown().await;

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("Quietly Secret"), "{text}");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0]["call"], "update");
    assert_eq!(
        events[0]["fingerprint"],
        "UPDATE \"public\".\"reviews\" SET \"title\" = $1 WHERE \"review_id\" = $2 RETURNING *"
    );
    assert_eq!(events[0]["rows"], 1);
    assert_eq!(events[0]["decision"], "allow");
    assert_eq!(events[1]["call"], "delete");
    assert_eq!(events[1]["decision"], "deny");
    assert_eq!(events[1]["rule"], "max_write_rows");
    assert_eq!(events[1]["relations"], json!(["public.reviews"]));
}
