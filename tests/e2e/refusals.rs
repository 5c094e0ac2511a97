//! Refusals that teach: a model and an operator each learn from a refusal
//! what was refused, by which rule, and what would allow it.

use crate::support::{fresh_db, spawn, structured, text_of};
use serde_json::json;

#[tokio::test]
async fn a_read_denial_names_every_relation_the_plugin_and_the_key() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\nread = [\"public.books\"]\ncatalog = true\n";
    let server = spawn(&db, config, None).await;
    let r = server
        .call(
            "query",
            json!({"sql": "SELECT * FROM authors a JOIN reviews r ON true JOIN books b ON true"}),
        )
        .await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(true), "{text}");
    assert!(
        text.contains(
            "denied (read-grant): relations public.authors and public.reviews are not in \
             plugin sql-read's read grant; the operator can allow them with read = \
             [\"public.books\", \"public.authors\", \"public.reviews\"] in \
             [plugins.grants.sql-read]"
        ),
        "{text}"
    );
    assert!(text.contains("call list_tables"), "{text}");
    // The same through explain_query and describe_table.
    for (tool, args) in [
        ("explain_query", json!({"sql": "SELECT * FROM authors"})),
        ("describe_table", json!({"table": "authors"})),
    ] {
        let text = text_of(&server.call(tool, args).await);
        assert!(
            text.contains("public.authors") && text.contains("[plugins.grants.sql-read]"),
            "{tool}: {text}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_resource_outside_the_grant_says_so_and_a_missing_one_is_missing() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\nread = [\"public.books\"]\ncatalog = true\n";
    let server = spawn(&db, config, None).await;
    let ungranted = server
        .read_resource("db://tables/authors/schema")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        ungranted.contains("relation public.authors exists but is not in plugin sql-read's read"),
        "{ungranted}"
    );
    let missing = server
        .read_resource("db://tables/no_such_table/schema")
        .await
        .unwrap_err();
    let data = crate::support::error_data(&missing);
    assert_eq!(
        data.code,
        rmcp::model::ErrorCode::RESOURCE_NOT_FOUND,
        "{data:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_catalog_denial_names_its_key() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\ncatalog = false\n";
    let server = spawn(&db, config, None).await;
    let text = text_of(&server.call("list_tables", json!({})).await);
    assert!(
        text.contains(
            "denied (catalog-grant): plugin sql-read may not list or describe relations; \
             that needs catalog = true in [plugins.grants.sql-read]"
        ),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn write_errors_name_the_column_and_its_type_and_the_grant() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-write]\nwrite = [\"public.authors\", \"public.books\"]\n";
    let server = spawn(&db, config, None).await;
    // Converted by the host.
    let text = text_of(
        &server
            .call(
                "insert_record",
                json!({"table": "authors", "data": {"full_name": "X", "birth_year": "abc", "country_code": "GB"}}),
            )
            .await,
    );
    assert!(
        text.contains("column birth_year (smallint): invalid input \"abc\""),
        "{text}"
    );
    assert!(!text.contains("$1") && !text.contains("$2"), "{text}");
    // Converted by PostgreSQL.
    let text = text_of(
        &server
            .call(
                "update_records",
                json!({"table": "books", "filter": {"book_id": 1}, "set": {"first_published": "2024-13-45"}}),
            )
            .await,
    );
    assert!(text.contains("column first_published (date): "), "{text}");
    // A filter value too.
    let text = text_of(
        &server
            .call(
                "delete_records",
                json!({"table": "books", "filter": {"book_id": "one"}}),
            )
            .await,
    );
    assert!(
        text.contains("column book_id (integer): invalid input \"one\""),
        "{text}"
    );
    // A table outside the write grant names the key that would allow it.
    let text = text_of(
        &server
            .call(
                "insert_record",
                json!({"table": "reviews", "data": {"rating": 5}}),
            )
            .await,
    );
    assert!(
        text.contains(
            "denied (write-grant): relation public.reviews is not in plugin sql-write's write \
             grant; the operator can allow it with write = [\"public.authors\", \
             \"public.books\", \"public.reviews\"] in [plugins.grants.sql-write]"
        ),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn table_commands_run_as_advertised() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let description = server
        .list_tools()
        .await
        .into_iter()
        .find(|t| t.name == "query")
        .and_then(|t| t.description.map(|d| d.to_string()))
        .unwrap_or_default();
    assert!(description.contains("TABLE name"), "{description}");
    let r = server
        .call(
            "query",
            json!({"sql": "TABLE authors ORDER BY author_id LIMIT 2"}),
        )
        .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(structured(&r)["row_count"], 2);
    let r = server
        .call("explain_query", json!({"sql": "TABLE books"}))
        .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    server.shutdown().await;
}
