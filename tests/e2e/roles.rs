//! A plugin's `role` makes PostgreSQL itself the hard boundary: where the grant
//! pattern allows a table but the role has no privilege on it, PostgreSQL
//! refuses.

use crate::support::{fingerprint, fresh_db, run_sql, spawn, structured, text_of};
use serde_json::json;

#[tokio::test]
async fn statements_run_under_the_plugins_database_role() {
    let db = fresh_db().await;
    // Roles are cluster-wide: name them after this test's database.
    let reader = format!("{}_reader", db.name);
    let writer = format!("{}_writer", db.name);
    run_sql(
        &db.url,
        &format!(
            "CREATE ROLE \"{reader}\" NOLOGIN; CREATE ROLE \"{writer}\" NOLOGIN; \
             GRANT USAGE ON SCHEMA public TO \"{reader}\", \"{writer}\"; \
             GRANT SELECT ON books, authors TO \"{reader}\"; \
             GRANT SELECT ON authors TO \"{writer}\";"
        ),
    )
    .await;
    let before = fingerprint(&db.url).await;
    let config = format!(
        "[plugins.grants.sql-read]\nread = [\"public.*\"]\ncatalog = true\nrole = \"{reader}\"\n\n\
         [plugins.grants.sql-write]\nwrite = [\"public.*\"]\nrole = \"{writer}\"\n"
    );
    let server = spawn(&db, &config, None).await;

    let ok = server
        .call(
            "query",
            json!({"sql": "SELECT current_user AS who, count(*) AS n FROM books"}),
        )
        .await;
    assert_eq!(structured(&ok)["rows"], json!([{"who": reader, "n": 20}]));

    // The grant pattern matches customers; the role does not reach it.
    let refused = server
        .call("query", json!({"sql": "SELECT * FROM customers"}))
        .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text_of(&refused).contains("42501"), "{}", text_of(&refused));

    let refused = server
        .call(
            "insert_record",
            json!({"table": "authors", "data": {"full_name": "Role Test", "birth_year": 1900, "country_code": "FR"}}),
        )
        .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text_of(&refused).contains("42501"), "{}", text_of(&refused));
    server.shutdown().await;
    assert_eq!(fingerprint(&db.url).await, before, "the database changed");

    run_sql(
        &db.url,
        &format!("DROP OWNED BY \"{reader}\", \"{writer}\"; DROP ROLE \"{reader}\"; DROP ROLE \"{writer}\";"),
    )
    .await;
}
