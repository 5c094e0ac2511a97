//! sql-insight, the DBA's plugin, against real PostgreSQL: idle until
//! granted, a health report that finds what the test broke, the slowest
//! statements from a real pg_stat_statements (or how to enable it), and
//! EXPLAIN ANALYZE only under `analyze = true`.

use serde_json::{Value, json};
use sluice::pgcluster::ClusterSetup;
use sqlx::Connection as _;

use crate::support::pg::{Sluice, demo_database, private_cluster};
use crate::support::{fresh_db, run_sql, spawn, structured, text_of};

/// What the plugin needs: the statistics views, and pg_stat_statements.
const GRANT: &str =
    "[plugins.grants.sql-insight]\nread = [\"pg_catalog.*\", \"public.pg_stat_statements\"]\n";

fn findings<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

#[tokio::test]
async fn database_health_finds_the_invalid_index_and_the_dead_tuples_the_test_made() {
    let db = fresh_db().await;
    // Idle until granted: nothing of it is offered.
    let server = spawn(&db, "", None).await;
    let names: Vec<String> = server
        .list_tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(!names.contains(&"database_health".to_string()), "{names:?}");
    server.shutdown().await;

    run_sql(
        &db.url,
        "CREATE TABLE churn (id int, tag text) WITH (autovacuum_enabled = false); \
         INSERT INTO churn SELECT g, 't' || (g % 10) FROM generate_series(1, 5000) g; \
         DELETE FROM churn WHERE id > 1000; \
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    // A unique index that cannot be built, concurrently: it stays, invalid.
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let failed = sqlx::raw_sql("CREATE UNIQUE INDEX CONCURRENTLY churn_tag_key ON churn (tag)")
        .execute(&mut conn)
        .await;
    assert!(failed.is_err(), "the index was meant to fail");
    let _ = conn.close().await;

    let server = spawn(&db, GRANT, None).await;
    let report = server.call("database_health", json!({})).await;
    assert_eq!(report.is_error, Some(false), "{}", text_of(&report));
    let report = structured(&report);
    assert_eq!(report["not_checked"], json!([]), "{report}");

    let invalid = findings(&report, "invalid_indexes");
    assert_eq!(invalid.len(), 1, "{report}");
    assert_eq!(invalid[0]["subject"], "public.churn_tag_key");
    assert_eq!(invalid[0]["severity"], "critical");
    assert!(
        invalid[0]["remedy"]
            .as_str()
            .unwrap()
            .contains("REINDEX INDEX CONCURRENTLY public.churn_tag_key"),
        "{report}"
    );
    let dead = findings(&report, "dead_tuples");
    assert!(
        dead.iter().any(|f| f["subject"] == "public.churn"
            && f["severity"] == "critical"
            && f["remedy"]
                .as_str()
                .unwrap()
                .starts_with("VACUUM (ANALYZE) public.churn")),
        "{report}"
    );
    // The most severe first, and the checks that found nothing say so.
    assert_eq!(report["findings"][0]["severity"], "critical");
    let passed = report["passed"].as_array().unwrap();
    assert!(passed.contains(&json!("sequence_exhaustion")), "{report}");

    // One check alone; an unknown one is named.
    let one = server
        .call("database_health", json!({"checks": ["invalid_indexes"]}))
        .await;
    let one = structured(&one);
    assert!(
        one["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["check"] == "invalid_indexes"),
        "{one}"
    );
    let unknown = server
        .call("database_health", json!({"checks": ["vibes"]}))
        .await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(text_of(&unknown).contains("no check named \"vibes\""));
}

#[tokio::test]
async fn slow_queries_without_pg_stat_statements_says_how_to_enable_it() {
    let db = fresh_db().await;
    let server = spawn(&db, GRANT, None).await;
    let answer = server.call("slow_queries", json!({})).await;
    assert_eq!(answer.is_error, Some(true));
    let text = text_of(&answer);
    assert!(
        text.contains("shared_preload_libraries = 'pg_stat_statements'"),
        "{text}"
    );
    assert!(
        text.contains("CREATE EXTENSION pg_stat_statements"),
        "{text}"
    );
}

#[tokio::test]
async fn slow_queries_lists_the_statement_the_test_ran_many_times() {
    let setup = ClusterSetup {
        settings: vec!["shared_preload_libraries = 'pg_stat_statements'".into()],
        ..ClusterSetup::default()
    };
    let Some(cluster) = private_cluster(&setup).await else {
        return;
    };
    demo_database(&cluster, "shop").await;
    let url = cluster.url("shop");
    run_sql(&url, "CREATE EXTENSION pg_stat_statements").await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for price in 0..60i32 {
        sqlx::query("SELECT count(*) FROM books WHERE price > $1 AND pages > 10")
            .bind(price)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("SELECT title FROM books WHERE first_published IS NULL")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let _ = conn.close().await;

    let home = tempfile::tempdir().unwrap();
    let (server, _log) = Sluice::serve(GRANT, home.path())
        .database_url(&url)
        .start()
        .await;
    let answer = server
        .call("slow_queries", json!({"by": "calls", "limit": 5}))
        .await;
    assert_eq!(answer.is_error, Some(false), "{}", text_of(&answer));
    let statements = structured(&answer)["statements"].clone();
    let ours = statements
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["query"]
                .as_str()
                .is_some_and(|q| q.contains("FROM books WHERE price > $1 AND pages > $2"))
        })
        .unwrap_or_else(|| panic!("not listed: {statements}"));
    assert!(ours["calls"].as_i64().unwrap() >= 60, "{ours}");
    assert!(
        ours["mean_ms"].is_string() || ours["mean_ms"].is_number(),
        "{ours}"
    );
    let bad = server.call("slow_queries", json!({"limit": 0})).await;
    assert_eq!(bad.is_error, Some(true));
    server.shutdown().await;

    // index_advice of the slowest statements: planned as recorded, or,
    // with parameters on PostgreSQL before 16, skipped saying why.
    if hypopg(&url).await {
        // The statements' tables too, which advice plans.
        let grant = "[plugins.grants.sql-insight]\nread = [\"pg_catalog.*\", \"public.*\"]\n\
                     functions = [\"hypopg_*\"]\n";
        let (server, _log) = Sluice::serve(grant, home.path())
            .database_url(&url)
            .start()
            .await;
        let answer = server
            .call(
                "index_advice",
                json!({"from_slow_queries": true, "limit": 20}),
            )
            .await;
        assert_eq!(answer.is_error, Some(false), "{}", text_of(&answer));
        let advice = structured(&answer);
        let find = |needle: &str| {
            advice["statements"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["sql"].as_str().is_some_and(|q| q.contains(needle)))
                .unwrap_or_else(|| panic!("{needle} not advised on: {advice}"))
                .clone()
        };
        let plain = find("WHERE first_published IS NULL");
        assert_eq!(plain["skipped"], Value::Null, "{plain}");
        assert!(plain["cost_before"].as_f64().unwrap() > 0.0, "{plain}");
        let candidate = &plain["candidates"][0];
        assert_eq!(candidate["table"], "public.books", "{plain}");
        assert_eq!(candidate["columns"], json!(["first_published"]), "{plain}");
        let with_parameters = find("WHERE price > $1");
        let version = scalar(&url, "SELECT current_setting('server_version_num')::int").await;
        if version < 160000 {
            assert!(
                with_parameters["skipped"]
                    .as_str()
                    .is_some_and(|s| s.contains("GENERIC_PLAN")),
                "{with_parameters}"
            );
        } else {
            assert_eq!(with_parameters["skipped"], Value::Null, "{with_parameters}");
        }
        server.shutdown().await;
    }
    cluster.stop().await.expect("stopping the cluster");
}

#[tokio::test]
async fn explain_analyze_needs_analyze_in_the_grant_and_refuses_writes() {
    let db = fresh_db().await;
    let sql = json!({"sql": "SELECT count(*) FROM books WHERE price > $1", "params": ["10"]});
    let server = spawn(&db, GRANT, None).await;
    let refused = server.call("explain_analyze", sql.clone()).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text_of(&refused).contains("analyze = true in [plugins.grants.sql-insight]"),
        "{}",
        text_of(&refused)
    );
    server.shutdown().await;

    let config = format!("{GRANT}analyze = true\n");
    let server = spawn(&db, &config, None).await;
    // The books table needs a read grant too.
    let refused = server.call("explain_analyze", sql.clone()).await;
    assert!(
        text_of(&refused).contains("read-grant"),
        "{}",
        text_of(&refused)
    );
    server.shutdown().await;

    let config =
        "[plugins.grants.sql-insight]\nread = [\"pg_catalog.*\", \"public.*\"]\nanalyze = true\n";
    let server = spawn(&db, config, None).await;
    let ran = server.call("explain_analyze", sql).await;
    assert_eq!(ran.is_error, Some(false), "{}", text_of(&ran));
    let plan = structured(&ran)["plan"].to_string();
    assert!(plan.contains("Actual Rows"), "{plan}");
    let write = server
        .call("explain_analyze", json!({"sql": "DELETE FROM books"}))
        .await;
    assert_eq!(write.is_error, Some(true));
    assert!(
        text_of(&write).contains("read-only-statement"),
        "{}",
        text_of(&write)
    );
}

async fn scalar(url: &str, sql: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let value: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    i64::from(value)
}

/// Creates hypopg in the database at `url`, if the server has it: in CI it
/// must (`.ci/run` installs it); elsewhere the caller skips, saying so.
async fn hypopg(url: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let available: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let _ = conn.close().await;
    if !crate::support::needed_here(
        available > 0,
        "hypopg",
        "apt install postgresql-15-hypopg",
        "the index_advice tests",
    ) {
        return false;
    }
    run_sql(url, "CREATE EXTENSION IF NOT EXISTS hypopg").await;
    true
}

/// A query Pagila has no index for: rentals not returned yet.
const UNRETURNED: &str = "SELECT rental_id, customer_id FROM rental WHERE return_date IS NULL";

#[tokio::test]
async fn index_advice_proposes_the_index_the_slow_query_lacks_with_a_lower_cost() {
    let db = match crate::support::pagila_db().await {
        Ok(db) => db,
        Err(why) => {
            eprintln!("SKIPPED index_advice on Pagila: {why}");
            return;
        }
    };
    if !hypopg(&db.url).await {
        return;
    }
    let reads = "[plugins.grants.sql-insight]\nread = [\"pg_catalog.*\", \"public.*\"]\n";
    // Without the grant's allowance, hypopg's functions are refused by name.
    let server = spawn(&db, reads, None).await;
    let refused = server
        .call("index_advice", json!({"sql": UNRETURNED}))
        .await;
    assert_eq!(refused.is_error, Some(true));
    let text = text_of(&refused);
    assert!(text.contains("function-session-state"), "{text}");
    assert!(text.contains("functions = [\"hypopg_reset\"]"), "{text}");
    server.shutdown().await;

    let grant = format!("{reads}functions = [\"hypopg_*\"]\n");
    let server = spawn(&db, &grant, None).await;
    let count_indexes = "SELECT count(*)::int FROM pg_indexes WHERE tablename = 'rental'";
    let indexes = scalar(&db.url, count_indexes).await;
    let answer = server
        .call("index_advice", json!({"sql": UNRETURNED}))
        .await;
    assert_eq!(answer.is_error, Some(false), "{}", text_of(&answer));
    let advice = structured(&answer);
    let statement = &advice["statements"][0];
    let before = statement["cost_before"].as_f64().unwrap();
    let best = &statement["candidates"][0];
    assert_eq!(best["table"], "public.rental", "{advice}");
    assert_eq!(best["columns"], json!(["return_date"]), "{advice}");
    assert_eq!(best["used"], true, "{advice}");
    assert_eq!(best["recommended"], true, "{advice}");
    assert!(best["cost_after"].as_f64().unwrap() < before, "{advice}");
    assert!(best["estimated_bytes"].as_i64().unwrap() > 0, "{advice}");
    assert_eq!(
        best["create_index"],
        "CREATE INDEX CONCURRENTLY ON public.rental (return_date);"
    );
    // Nothing was created, and no other call plans with what was tried:
    // the pooled connections have no hypothetical index.
    assert_eq!(scalar(&db.url, count_indexes).await, indexes);
    for _ in 0..4 {
        let plan = server
            .call("explain_query", json!({"sql": UNRETURNED}))
            .await;
        let plan = text_of(&plan);
        assert!(plan.contains("Seq Scan"), "{plan}");
        assert!(!plan.contains("btree_rental"), "{plan}");
    }
    // Neither sql nor from_slow_queries, or both: said so.
    let neither = server.call("index_advice", json!({})).await;
    assert_eq!(neither.is_error, Some(true));
    assert!(text_of(&neither).contains("give either sql"));
    server.shutdown().await;
}

#[tokio::test]
async fn index_advice_without_hypopg_says_how_to_install_it() {
    let db = fresh_db().await;
    let grant = format!("{GRANT}functions = [\"hypopg_*\"]\n");
    let server = spawn(&db, &grant, None).await;
    let answer = server
        .call("index_advice", json!({"sql": "SELECT 1"}))
        .await;
    assert_eq!(answer.is_error, Some(true));
    let text = text_of(&answer);
    assert!(text.contains("CREATE EXTENSION hypopg"), "{text}");
    assert!(text.contains("postgresql-<version>-hypopg"), "{text}");
    server.shutdown().await;
}

/// hypopg_create_index plans an index on the table its definition names,
/// and tells its size: a plugin allowed hypopg's functions may name only
/// tables its grant reads, however the definition reaches the function.
#[tokio::test]
async fn an_index_definition_names_only_tables_the_grant_reads() {
    let db = fresh_db().await;
    if !hypopg(&db.url).await {
        return;
    }
    run_sql(
        &db.url,
        "CREATE TABLE plans (id int, status text); \
         CREATE TABLE secrets (id int, password text); \
         INSERT INTO secrets SELECT g, md5(g::text) FROM generate_series(1, 1000) g",
    )
    .await;
    let config = "[plugins.grants.sql-read]\nread = [\"public.plans\"]\n\
                  functions = [\"hypopg_*\"]\n";
    let server = spawn(&db, config, None).await;
    let by_param = "SELECT indexname FROM hypopg_create_index($1)";
    let planned = server
        .call(
            "query",
            json!({"sql": by_param, "params": ["CREATE INDEX ON plans (status)"]}),
        )
        .await;
    assert_eq!(planned.is_error, Some(false), "{}", text_of(&planned));
    assert!(
        text_of(&planned).contains("btree_plans_status"),
        "{}",
        text_of(&planned)
    );
    let refusals = [
        json!({"sql": by_param, "params": ["CREATE INDEX ON public.secrets (password)"]}),
        json!({"sql": "SELECT * FROM hypopg_create_index('CREATE INDEX ON \"secrets\" (id)')"}),
        json!({"sql": by_param, "params": [
            "CREATE INDEX ON plans ((id + (SELECT count(*) FROM secrets)))"
        ]}),
    ];
    for arguments in refusals {
        let refused = server.call("query", arguments.clone()).await;
        assert_eq!(refused.is_error, Some(true), "{arguments}");
        let text = text_of(&refused);
        assert!(
            text.contains("read-grant") && text.contains("secrets"),
            "{arguments}: {text}"
        );
    }
    for arguments in [
        json!({"sql": "SELECT hypopg_create_index('CREATE INDEX ON ' || 'secrets (id)')"}),
        json!({"sql": by_param, "params": ["CREATE INDEX ON plans (id); CREATE INDEX ON secrets (id)"]}),
        json!({"sql": by_param, "params": [7]}),
    ] {
        let refused = server.call("query", arguments.clone()).await;
        assert_eq!(refused.is_error, Some(true), "{arguments}");
        let text = text_of(&refused);
        assert!(text.contains("index-definition"), "{arguments}: {text}");
    }
    server.shutdown().await;
}
