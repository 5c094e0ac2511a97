//! The gate's decisions, one test each, against the in-memory backend: what
//! reached the database (and under which settings and limits), what the
//! caller got, and the audit event the call left.

use super::test_backend::{AuditCapture, Audited, Call, TestBackend};
use super::{Caller, Gate, GateError, without_values};
use crate::audit::AuditLog;
use crate::config::Config;
use crate::db::catalog::RelationKind;
use crate::db::value::{Scalar, Value};
use crate::db::{DbError, PgError, ResultLimits, RowSource};
use crate::policy::{Grant, Pattern, StatementLimits};
use crate::principal::Principal;
use serde_json::json;
use std::sync::Arc;
use tracing::Level;

const PLUGIN: &str = "reports";
const TOOL: &str = "monthly";
const ROLE: &str = "reporting";
const TIMEOUT_MS: u64 = 1234;
const MAX_ROWS: u32 = 10;
const MAX_WRITE_ROWS: u32 = 3;
const MAX_RESULT_BYTES: u64 = 4096;

/// The reads' settings: read-only, the grant's timeout and role.
fn read_tx() -> Call {
    Call::Begin {
        read_only: true,
        statement_timeout_ms: TIMEOUT_MS,
        role: Some(ROLE.into()),
    }
}

/// The writes' settings.
fn write_tx() -> Call {
    Call::Begin {
        read_only: false,
        statement_timeout_ms: TIMEOUT_MS,
        role: Some(ROLE.into()),
    }
}

fn backend() -> TestBackend {
    TestBackend::default()
        .with(
            "public",
            "orders",
            RelationKind::Table,
            &[
                ("id", "integer"),
                ("status", "text"),
                ("total", "numeric generated"),
            ],
        )
        .with(
            "public",
            "customers",
            RelationKind::Table,
            &[("id", "integer"), ("email", "text")],
        )
        .with(
            "public",
            "order_totals",
            RelationKind::MaterializedView,
            &[("total", "numeric")],
        )
        .with("secret", "keys", RelationKind::Table, &[("id", "integer")])
}

/// A grant to read `read`, write `write`, and see the catalog if `catalog`,
/// with limits of its own so that they can be told from any default.
fn grant(read: &[&str], write: &[&str], catalog: bool) -> Grant {
    let patterns = |list: &[&str]| -> Vec<Pattern> {
        list.iter().map(|p| Pattern::parse(p).unwrap()).collect()
    };
    let mut grant = Grant::nothing(Config::default().plugin_limits());
    grant.read = patterns(read);
    grant.write = patterns(write);
    grant.requested_read = vec![Pattern::any()];
    grant.requested_write = vec![Pattern::any()];
    grant.catalog = catalog;
    grant.role = Some(ROLE.into());
    grant.limits.timeout_ms = TIMEOUT_MS;
    grant.limits.max_rows = MAX_ROWS;
    grant.limits.max_write_rows = MAX_WRITE_ROWS;
    grant.limits.max_result_bytes = MAX_RESULT_BYTES;
    grant
}

fn gate(backend: &TestBackend) -> Gate<TestBackend> {
    Gate::new(
        Arc::new(backend.clone()),
        AuditLog::log_only(),
        StatementLimits::default(),
    )
    .unwrap()
}

/// The local user of stdio: no role or identity of its own.
static LOCAL: Principal = Principal::local();

fn caller(grant: &Grant) -> Caller<'_> {
    Caller {
        plugin: PLUGIN,
        tool: Some(TOOL),
        grant,
        principal: &LOCAL,
    }
}

fn text(s: &str) -> Value {
    Value::Scalar(Scalar::Text(s.into()))
}

fn int(i: i64) -> Value {
    Value::Scalar(Scalar::Int(i))
}

fn pairs(list: &[(&str, Value)]) -> Vec<(String, Value)> {
    list.iter()
        .map(|(c, v)| (c.to_string(), v.clone()))
        .collect()
}

/// The denial's rule and message, or a panic naming what came instead.
fn denied<T: std::fmt::Debug>(result: Result<T, GateError>) -> (&'static str, String) {
    match result {
        Err(GateError::Denied(d)) => (d.rule, d.message),
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn invalid<T: std::fmt::Debug>(result: Result<T, GateError>) -> String {
    match result {
        Err(GateError::InvalidInput(m)) => m,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

/// Checks the fields every audit event has, and its level: denials warn.
fn assert_event(
    audited: &Audited,
    call: &str,
    decision: &str,
    rule: Option<&str>,
    relations: &[&str],
) {
    let e = &audited.event;
    assert_eq!(e["plugin"], PLUGIN, "{e}");
    assert_eq!(e["tool"], TOOL, "{e}");
    assert_eq!(e["call"], call, "{e}");
    assert_eq!(e["decision"], decision, "{e}");
    assert_eq!(e["rule"].as_str(), rule, "{e}");
    assert_eq!(e["relations"], json!(relations), "{e}");
    assert!(e["time"].is_string() && e["duration_ms"].is_number(), "{e}");
    let level = if decision == "deny" {
        Level::WARN
    } else {
        Level::INFO
    };
    assert_eq!(audited.level, level, "{e}");
}

#[test]
fn audit_reasons_carry_no_values() {
    assert_eq!(
        without_values(r#"invalid input syntax for type integer: "secret 42""#),
        r#"invalid input syntax for type integer: "…""#
    );
    assert_eq!(
        without_values(r#"value "99999999999" is out of range for type integer"#),
        r#"value "…" is out of range for type integer"#
    );
    // Cut short, and an unclosed quote hides the rest.
    let long = format!("bad: \"{}", "x".repeat(10_000));
    assert_eq!(without_values(&long), "bad: \"…\"");
    assert!(without_values(&"y".repeat(10_000)).chars().count() <= 300);
}

// Reads.

#[tokio::test]
async fn a_statement_the_analysis_refuses_never_reaches_the_backend() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.*"], &[], false);
    let (rule, message) = denied(
        gate(&db)
            .query(caller(&grant), "DELETE FROM orders", &[])
            .await,
    );
    assert_eq!(rule, "read-only-statement");
    assert!(message.contains("not DELETE"), "{message}");
    assert_eq!(db.calls(), []);

    let event = audit.take_one();
    assert_event(&event, "query", "deny", Some("read-only-statement"), &[]);
    assert_eq!(event.event["reason"], message.as_str());
    assert!(event.event.get("fingerprint").is_none());
}

#[tokio::test]
async fn explain_analyze_needs_the_grants_analyze_and_never_reaches_the_backend_without() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.*"], &[], false);
    let (rule, message) = denied(
        gate(&db)
            .query(
                caller(&grant),
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM orders",
                &[],
            )
            .await,
    );
    assert_eq!(rule, "explain-analyze");
    assert!(
        message.contains("analyze = true in [plugins.grants.reports]"),
        "{message}"
    );
    assert_eq!(db.calls(), []);
    assert_event(
        &audit.take_one(),
        "query",
        "deny",
        Some("explain-analyze"),
        &[],
    );
    // Plain EXPLAIN needs nothing more than the read grant.
    let plain = gate(&db)
        .query(caller(&grant), "EXPLAIN SELECT * FROM orders", &[])
        .await;
    assert!(!matches!(plain, Err(GateError::Denied(_))), "{plain:?}");
}

#[tokio::test]
async fn a_read_of_an_ungranted_relation_is_refused_before_it_runs() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.*"], &[], false);
    let sql = "SELECT * FROM orders, secret.keys";
    let (rule, message) = denied(gate(&db).query(caller(&grant), sql, &[]).await);
    assert_eq!(rule, "read-grant");
    assert!(
        message.contains("relation secret.keys is not in plugin reports's read grant"),
        "{message}"
    );
    // Resolved in a read-only transaction, then dropped: the statement
    // itself never ran.
    assert_eq!(
        db.calls(),
        [
            read_tx(),
            Call::Resolve(vec!["\"orders\"".into(), "\"secret\".\"keys\"".into()]),
            Call::Dropped,
        ]
    );

    let event = audit.take_one();
    assert_event(
        &event,
        "query",
        "deny",
        Some("read-grant"),
        &["public.orders", "secret.keys"],
    );
    assert_eq!(event.event["fingerprint"], sql);
}

#[tokio::test]
async fn a_granted_read_runs_under_the_grants_limits() {
    let audit = AuditCapture::start();
    let db = backend().matching(25);
    let grant = grant(&["public.orders"], &[], false);
    let sql = "SELECT id FROM orders WHERE status = 'open' AND id > $1";
    let rows = gate(&db)
        .query(caller(&grant), sql, &[int(7)])
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), MAX_ROWS as usize);
    assert!(rows.truncated);
    assert_eq!(
        db.calls(),
        [
            read_tx(),
            Call::Resolve(vec!["\"orders\"".into()]),
            Call::Query {
                sql: sql.into(),
                params: vec![int(7)],
                limits: ResultLimits {
                    max_rows: MAX_ROWS,
                    max_bytes: MAX_RESULT_BYTES,
                },
                source: RowSource::Cursor,
            },
            Call::Abandoned,
        ]
    );

    let event = audit.take_one();
    assert_event(&event, "query", "allow", None, &["public.orders"]);
    assert_eq!(event.event["rows"], MAX_ROWS);
    // The literal is blanked; the parameter's value is never recorded.
    assert_eq!(
        event.event["fingerprint"],
        "SELECT id FROM orders WHERE status = ? AND id > $1"
    );
    assert!(event.event.get("reason").is_none());
    assert!(event.event.get("sqlstate").is_none());
}

#[tokio::test]
async fn explain_is_read_straight_not_through_a_cursor() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.orders"], &[], false);
    gate(&db)
        .query(caller(&grant), "EXPLAIN SELECT * FROM orders", &[])
        .await
        .unwrap();
    let sources: Vec<RowSource> = db
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Query { source, .. } => Some(source),
            _ => None,
        })
        .collect();
    assert_eq!(sources, [RowSource::Stream]);
    assert_event(
        &audit.take_one(),
        "query",
        "allow",
        None,
        &["public.orders"],
    );
}

#[tokio::test]
async fn names_that_are_no_relation_need_no_grant() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.orders"], &[], false);
    let sql = "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent";
    gate(&db).query(caller(&grant), sql, &[]).await.unwrap();
    assert_eq!(
        db.calls()[1],
        Call::Resolve(vec!["\"orders\"".into(), "\"recent\"".into()])
    );
    assert!(matches!(db.calls()[2], Call::Query { .. }));
    assert_event(
        &audit.take_one(),
        "query",
        "allow",
        None,
        &["public.orders"],
    );
}

#[tokio::test]
async fn a_statement_timeout_names_the_timeout_limit() {
    let audit = AuditCapture::start();
    let db = backend().failing(DbError::Postgres(PgError::new(
        Some("57014"),
        "canceling statement due to statement timeout",
    )));
    let grant = grant(&["public.orders"], &[], false);
    match gate(&db)
        .query(caller(&grant), "SELECT * FROM orders", &[])
        .await
    {
        Err(GateError::Database(pg)) => {
            assert_eq!(pg.sqlstate.as_deref(), Some("57014"));
            assert_eq!(
                pg.hint.as_deref(),
                Some("the plugin's timeout_ms limit is 1234 ms")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.calls().last(), Some(&Call::Dropped));

    // Allowed, and failed by the database.
    let event = audit.take_one();
    assert_event(&event, "query", "allow", None, &["public.orders"]);
    assert_eq!(event.event["sqlstate"], "57014");
    assert_eq!(
        event.event["reason"],
        "canceling statement due to statement timeout"
    );
    assert!(event.event.get("rows").is_none());
}

#[tokio::test]
async fn a_database_error_reaches_the_audit_without_its_values() {
    let audit = AuditCapture::start();
    let message = r#"invalid input syntax for type integer: "secret 42""#;
    let db = backend().failing(DbError::Postgres(PgError::new(Some("22P02"), message)));
    let grant = grant(&["public.orders"], &[], false);
    match gate(&db)
        .query(
            caller(&grant),
            "SELECT * FROM orders WHERE id = $1",
            &[text("secret 42")],
        )
        .await
    {
        // The caller gets PostgreSQL's words whole; no timeout hint.
        Err(GateError::Database(pg)) => {
            assert_eq!(pg.message, message);
            assert_eq!(pg.hint, None);
        }
        other => panic!("{other:?}"),
    }
    let event = audit.take_one();
    assert_event(&event, "query", "allow", None, &["public.orders"]);
    assert_eq!(event.event["sqlstate"], "22P02");
    assert_eq!(
        event.event["reason"],
        r#"invalid input syntax for type integer: "…""#
    );
    assert!(!event.event.to_string().contains("secret 42"));
}

#[tokio::test]
async fn a_result_over_max_result_bytes_is_a_denial() {
    let audit = AuditCapture::start();
    let db = backend().failing(DbError::ResultTooLarge {
        limit: MAX_RESULT_BYTES,
    });
    let grant = grant(&["public.orders"], &[], false);
    let (rule, message) = denied(
        gate(&db)
            .query(caller(&grant), "SELECT * FROM orders", &[])
            .await,
    );
    assert_eq!(rule, "max_result_bytes");
    assert!(
        message.contains("max_result_bytes (4096 bytes)"),
        "{message}"
    );
    assert_event(
        &audit.take_one(),
        "query",
        "deny",
        Some("max_result_bytes"),
        &["public.orders"],
    );
}

#[tokio::test]
async fn connection_trouble_is_an_error_not_a_decision() {
    let audit = AuditCapture::start();
    let cause = "database unreachable: connection refused at 127.0.0.1:5432";
    let db = backend().failing(DbError::Connection(cause.into()));
    let grant = grant(&["public.orders"], &[], false);
    match gate(&db)
        .query(caller(&grant), "SELECT * FROM orders", &[])
        .await
    {
        Err(GateError::Internal(m)) => assert_eq!(m, cause),
        other => panic!("{other:?}"),
    }
    let event = audit.take_one();
    assert_event(&event, "query", "error", None, &["public.orders"]);
    assert_eq!(event.event["reason"], format!("internal error: {cause}"));
}

// The catalog.

#[tokio::test]
async fn catalog_calls_without_catalog_access_never_reach_the_backend() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.*"], &[], false);
    let gate = gate(&db);

    let (rule, message) = denied(gate.list_relations(caller(&grant), None).await);
    assert_eq!(rule, "catalog-grant");
    assert!(message.contains("catalog = true"), "{message}");
    assert_event(
        &audit.take_one(),
        "list-relations",
        "deny",
        Some("catalog-grant"),
        &[],
    );

    let (rule, _) = denied(gate.describe_relation(caller(&grant), "orders").await);
    assert_eq!(rule, "catalog-grant");
    assert_event(
        &audit.take_one(),
        "describe-relation",
        "deny",
        Some("catalog-grant"),
        &[],
    );
    assert_eq!(db.calls(), []);
}

#[tokio::test]
async fn a_listing_shows_only_what_the_grant_may_see() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.orders"], &["public.customers"], true);
    let listed = gate(&db)
        .list_relations(caller(&grant), Some("public"))
        .await
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["orders", "customers"]);
    assert_eq!(
        db.calls(),
        [
            read_tx(),
            Call::ListRelations(Some("public".into())),
            Call::Abandoned,
        ]
    );
    let event = audit.take_one();
    assert_event(&event, "list-relations", "allow", None, &[]);
    assert_eq!(event.event["rows"], 2);
}

#[tokio::test]
async fn describing_a_relation_outside_the_grant_is_refused() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.*"], &[], true);
    let (rule, message) = denied(
        gate(&db)
            .describe_relation(caller(&grant), "secret.keys")
            .await,
    );
    assert_eq!(rule, "read-grant");
    assert!(
        message.contains("relation secret.keys exists but is not in plugin reports's read"),
        "{message}"
    );
    // Resolved, so the denial can say it exists; never described.
    assert_eq!(
        db.calls(),
        [
            read_tx(),
            Call::Resolve(vec!["\"secret\".\"keys\"".into()]),
            Call::Dropped,
        ]
    );
    assert_event(
        &audit.take_one(),
        "describe-relation",
        "deny",
        Some("read-grant"),
        &["secret.keys"],
    );
}

#[tokio::test]
async fn describing_a_visible_relation() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&[], &["public.orders"], true);
    let description = gate(&db)
        .describe_relation(caller(&grant), "orders")
        .await
        .unwrap();
    assert_eq!(description.relation.name, "orders");
    assert_eq!(description.columns.len(), 3);
    assert_eq!(
        db.calls(),
        [
            read_tx(),
            Call::Resolve(vec!["\"orders\"".into()]),
            Call::Relation("public".into(), "orders".into()),
            Call::Describe(db.oid("public", "orders")),
            Call::Abandoned,
        ]
    );
    let event = audit.take_one();
    assert_event(
        &event,
        "describe-relation",
        "allow",
        None,
        &["public.orders"],
    );
    assert_eq!(event.event["rows"], 1);
}

#[tokio::test]
async fn describing_what_is_not_there_or_no_name_is_an_error() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.*"], &[], true);
    let gate = gate(&db);

    match gate.describe_relation(caller(&grant), "nowhere").await {
        Err(GateError::NotFound(m)) => assert_eq!(m, "no relation named nowhere"),
        other => panic!("{other:?}"),
    }
    assert_event(&audit.take_one(), "describe-relation", "error", None, &[]);
    assert_eq!(
        db.calls(),
        [
            read_tx(),
            Call::Resolve(vec!["\"nowhere\"".into()]),
            Call::Dropped,
        ]
    );

    // A name that does not parse is refused before any transaction.
    let message = invalid(gate.describe_relation(caller(&grant), "a.b.c.d").await);
    assert!(message.starts_with("invalid relation name"), "{message}");
    assert_event(&audit.take_one(), "describe-relation", "error", None, &[]);
    assert_eq!(db.calls().len(), 3);
}

// Writes.

#[tokio::test]
async fn a_plugin_without_a_write_grant_never_reaches_the_backend() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.*"], &[], true);
    let (rule, message) = denied(
        gate(&db)
            .insert(caller(&grant), "orders", &pairs(&[("id", int(1))]))
            .await,
    );
    assert_eq!(rule, "write-grant");
    assert!(message.contains("has no write grant"), "{message}");
    assert_eq!(db.calls(), []);
    assert_event(
        &audit.take_one(),
        "insert",
        "deny",
        Some("write-grant"),
        &[],
    );
}

#[tokio::test]
async fn a_write_to_an_ungranted_table_is_refused() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&["public.*"], &["public.customers"], false);
    let (rule, message) = denied(
        gate(&db)
            .update(
                caller(&grant),
                "orders",
                &pairs(&[("id", int(1))]),
                &pairs(&[("status", text("paid"))]),
                None,
            )
            .await,
    );
    assert_eq!(rule, "write-grant");
    assert!(
        message.contains("relation public.orders is not in plugin reports's write grant"),
        "{message}"
    );
    // Resolved in a write transaction that is dropped: nothing ran,
    // nothing committed.
    assert_eq!(
        db.calls(),
        [
            write_tx(),
            Call::Resolve(vec!["\"orders\"".into()]),
            Call::Dropped,
        ]
    );
    assert_event(
        &audit.take_one(),
        "update",
        "deny",
        Some("write-grant"),
        &["public.orders"],
    );
}

#[tokio::test]
async fn an_insert_commits_the_statement_the_host_built() {
    let audit = AuditCapture::start();
    let db = backend().matching(1);
    let grant = grant(&[], &["public.customers"], false);
    let rows = gate(&db)
        .insert(
            caller(&grant),
            "customers",
            &pairs(&[("id", int(7)), ("email", text("a@example.com"))]),
        )
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), 1);
    let sql = r#"INSERT INTO "public"."customers" ("id", "email") VALUES ($1, $2) RETURNING *"#;
    let oid = db.oid("public", "customers");
    assert_eq!(
        db.calls(),
        [
            write_tx(),
            Call::Resolve(vec!["\"customers\"".into()]),
            Call::Relation("public".into(), "customers".into()),
            Call::Columns(oid),
            Call::Write {
                sql: sql.into(),
                params: vec![int(7), text("a@example.com")],
                labels: vec!["column id (integer)".into(), "column email (text)".into()],
                // An insert is one row: only the result size is capped.
                limits: ResultLimits {
                    max_rows: u32::MAX,
                    max_bytes: MAX_RESULT_BYTES,
                },
            },
            Call::Commit,
        ]
    );
    let event = audit.take_one();
    assert_event(&event, "insert", "allow", None, &["public.customers"]);
    // The host's own statement carries no values: it is its fingerprint.
    assert_eq!(event.event["fingerprint"], sql);
    assert_eq!(event.event["rows"], 1);
    assert!(!event.event.to_string().contains("a@example.com"));
}

#[tokio::test]
async fn an_update_over_max_write_rows_is_rolled_back_and_says_so() {
    let audit = AuditCapture::start();
    let db = backend().matching(MAX_WRITE_ROWS as usize + 2);
    let grant = grant(&[], &["public.orders"], false);
    let (rule, message) = denied(
        gate(&db)
            .update(
                caller(&grant),
                "orders",
                &pairs(&[("status", text("open"))]),
                &pairs(&[("status", text("late"))]),
                None,
            )
            .await,
    );
    assert_eq!(rule, "max_write_rows");
    assert_eq!(
        message,
        "the update matches more than 3 row(s), this plugin's max_write_rows; \
         it was rolled back and nothing changed"
    );
    let calls = db.calls();
    let sql = r#"UPDATE "public"."orders" SET "status" = $1 WHERE "status" = $2 RETURNING *"#;
    assert_eq!(
        calls[calls.len() - 2..],
        [
            Call::Write {
                sql: sql.into(),
                params: vec![text("late"), text("open")],
                labels: vec!["column status (text)".into(), "column status (text)".into()],
                limits: ResultLimits {
                    max_rows: MAX_WRITE_ROWS,
                    max_bytes: MAX_RESULT_BYTES,
                },
            },
            Call::Rollback,
        ]
    );
    assert!(!calls.contains(&Call::Commit));
    let event = audit.take_one();
    assert_event(
        &event,
        "update",
        "deny",
        Some("max_write_rows"),
        &["public.orders"],
    );
    assert_eq!(event.event["fingerprint"], sql);
    assert_eq!(event.event["reason"], message.as_str());
}

#[tokio::test]
async fn a_lower_cap_asked_for_by_the_call_applies_and_is_named() {
    let audit = AuditCapture::start();
    let db = backend().matching(2);
    let grant = grant(&[], &["public.orders"], false);
    let (rule, message) = denied(
        gate(&db)
            .delete(
                caller(&grant),
                "orders",
                &pairs(&[("status", text("void"))]),
                Some(1),
            )
            .await,
    );
    assert_eq!(rule, "max_write_rows");
    assert_eq!(
        message,
        "the delete matches more than the 1 row(s) this call allowed; \
         it was rolled back and nothing changed"
    );
    let calls = db.calls();
    assert!(
        matches!(&calls[calls.len() - 2], Call::Write { limits, .. } if limits.max_rows == 1),
        "{calls:?}"
    );
    assert_eq!(calls.last(), Some(&Call::Rollback));
    assert_event(
        &audit.take_one(),
        "delete",
        "deny",
        Some("max_write_rows"),
        &["public.orders"],
    );
}

#[tokio::test]
async fn writes_within_the_cap_commit() {
    let audit = AuditCapture::start();
    // Exactly the cap: allowed.
    let db = backend().matching(MAX_WRITE_ROWS as usize);
    let grant = grant(&[], &["public.orders"], false);
    let gate = gate(&db);

    // A cap asked above the grant's is the grant's.
    let rows = gate
        .update(
            caller(&grant),
            "orders",
            &pairs(&[("id", int(1))]),
            &pairs(&[("status", text("paid"))]),
            Some(100),
        )
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), MAX_WRITE_ROWS as usize);
    let calls = db.calls();
    assert!(
        matches!(&calls[calls.len() - 2], Call::Write { limits, .. } if limits.max_rows == MAX_WRITE_ROWS),
        "{calls:?}"
    );
    assert_eq!(calls.last(), Some(&Call::Commit));
    let event = audit.take_one();
    assert_event(&event, "update", "allow", None, &["public.orders"]);
    assert_eq!(event.event["rows"], MAX_WRITE_ROWS);

    // A NULL in the filter is `IS NULL`, not a parameter.
    gate.delete(
        caller(&grant),
        "orders",
        &pairs(&[("id", int(1)), ("status", Value::Scalar(Scalar::Null))]),
        None,
    )
    .await
    .unwrap();
    let calls = db.calls();
    assert_eq!(
        calls[calls.len() - 2..],
        [
            Call::Write {
                sql: r#"DELETE FROM "public"."orders" WHERE "id" = $1 AND "status" IS NULL RETURNING *"#
                    .into(),
                params: vec![int(1)],
                labels: vec!["column id (integer)".into()],
                limits: ResultLimits {
                    max_rows: MAX_WRITE_ROWS,
                    max_bytes: MAX_RESULT_BYTES,
                },
            },
            Call::Commit,
        ]
    );
    assert_event(
        &audit.take_one(),
        "delete",
        "allow",
        None,
        &["public.orders"],
    );
}

#[tokio::test]
async fn a_materialized_view_is_not_written() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&[], &["public.*"], false);
    let message = invalid(
        gate(&db)
            .insert(caller(&grant), "order_totals", &pairs(&[("total", int(1))]))
            .await,
    );
    assert_eq!(
        message,
        "public.order_totals is a materialized view; it cannot be inserted into"
    );
    assert_eq!(
        db.calls(),
        [
            write_tx(),
            Call::Resolve(vec!["\"order_totals\"".into()]),
            Call::Relation("public".into(), "order_totals".into()),
            Call::Dropped,
        ]
    );
    assert_event(
        &audit.take_one(),
        "insert",
        "error",
        None,
        &["public.order_totals"],
    );
}

#[tokio::test]
async fn columns_are_checked_against_the_catalog_before_anything_runs() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&[], &["public.orders"], false);
    let gate = gate(&db);
    let insert = |values: Vec<(String, Value)>| {
        let gate = &gate;
        let grant = &grant;
        async move { invalid(gate.insert(caller(grant), "orders", &values).await) }
    };

    assert_eq!(
        insert(pairs(&[("colour", text("red"))])).await,
        r#"public.orders has no column "colour" (columns: id, status, total)"#
    );
    assert_eq!(
        insert(pairs(&[("total", int(5))])).await,
        r#"column "total" is generated by the database and cannot be set"#
    );
    assert_eq!(
        insert(pairs(&[("id", int(1)), ("id", int(2))])).await,
        r#"column "id" is given twice"#
    );
    let events = audit.take_all();
    assert_eq!(events.len(), 3);
    for event in &events {
        assert_event(event, "insert", "error", None, &["public.orders"]);
    }

    let update = |filter: Vec<(String, Value)>| {
        let gate = &gate;
        let grant = &grant;
        async move {
            let values = pairs(&[("status", text("paid"))]);
            invalid(
                gate.update(caller(grant), "orders", &filter, &values, None)
                    .await,
            )
        }
    };
    assert_eq!(
        update(Vec::new()).await,
        "a filter is required: give at least one column = value condition"
    );
    assert_eq!(
        update(pairs(&[("id", int(1)), ("id", int(2))])).await,
        r#"column "id" appears twice in the filter"#
    );
    assert!(
        update(pairs(&[("nope", int(1))]))
            .await
            .starts_with(r#"public.orders has no column "nope""#)
    );
    let events = audit.take_all();
    assert_eq!(events.len(), 3);
    for event in &events {
        assert_event(event, "update", "error", None, &["public.orders"]);
    }

    // Every one was dropped before a statement ran.
    let calls = db.calls();
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Write { .. } | Call::Commit)),
        "{calls:?}"
    );
    assert_eq!(calls.iter().filter(|c| **c == Call::Dropped).count(), 6);
}

#[tokio::test]
async fn a_write_without_values_never_reaches_the_backend() {
    let audit = AuditCapture::start();
    let db = backend();
    let grant = grant(&[], &["public.orders"], false);
    let gate = gate(&db);
    assert_eq!(
        invalid(gate.insert(caller(&grant), "orders", &[]).await),
        "no column values given"
    );
    assert_event(&audit.take_one(), "insert", "error", None, &[]);
    assert_eq!(
        invalid(
            gate.update(
                caller(&grant),
                "orders",
                &pairs(&[("id", int(1))]),
                &[],
                None
            )
            .await
        ),
        "no column values to set"
    );
    assert_event(&audit.take_one(), "update", "error", None, &[]);
    assert_eq!(db.calls(), []);
}

#[tokio::test]
async fn a_write_statement_needs_the_write_grant_for_its_target_and_read_for_the_rest() {
    let audit = AuditCapture::start();
    let db = backend().matching(1);
    let sql = "UPDATE orders SET status = $1 FROM customers c WHERE c.id = orders.id";
    // Without a write grant, nothing reaches the database.
    let reader = grant(&["public.*"], &[], false);
    let (rule, _) = denied(
        gate(&db)
            .execute(caller(&reader), sql, &[text("x")], None)
            .await,
    );
    assert_eq!(rule, "write-grant");
    assert!(db.calls().is_empty());
    audit.take_all();
    // Written and read relations are checked apart.
    let writer = grant(&[], &["public.orders"], false);
    let (rule, message) = denied(
        gate(&db)
            .execute(caller(&writer), sql, &[text("x")], None)
            .await,
    );
    assert_eq!(rule, "read-grant", "{message}");
    assert!(message.contains("public.customers"), "{message}");
    let (rule, _) = denied(
        gate(&db)
            .execute(
                caller(&grant(&["public.*"], &["public.customers"], false)),
                sql,
                &[text("x")],
                None,
            )
            .await,
    );
    assert_eq!(rule, "write-grant");
    assert!(!db.calls().iter().any(|c| matches!(c, Call::Count { .. })));
    audit.take_all();
    // Both granted: it runs and commits.
    let both = grant(&["public.customers"], &["public.orders"], false);
    let done = gate(&db)
        .execute(caller(&both), sql, &[text("x")], None)
        .await
        .unwrap();
    assert_eq!(done.affected, 1);
    let calls = db.calls();
    assert_eq!(
        calls[calls.len() - 2..],
        [
            Call::Count {
                sql: sql.into(),
                params: vec![text("x")],
            },
            Call::Commit
        ]
    );
    assert_event(
        &audit.take_one(),
        "execute",
        "allow",
        None,
        &["public.orders", "public.customers"],
    );
}

#[tokio::test]
async fn a_write_statement_over_the_cap_is_rolled_back_with_or_without_returning() {
    let writer = grant(&[], &["public.orders"], false);
    for sql in [
        "DELETE FROM orders WHERE status = $1",
        "DELETE FROM orders WHERE status = $1 RETURNING id",
    ] {
        let db = backend().matching(MAX_WRITE_ROWS as usize + 1);
        let (rule, message) = denied(
            gate(&db)
                .execute(caller(&writer), sql, &[text("old")], None)
                .await,
        );
        assert_eq!(rule, "max_write_rows", "{sql}");
        assert!(message.contains("rolled back"), "{message}");
        let calls = db.calls();
        assert_eq!(calls.last(), Some(&Call::Rollback), "{sql}");
        assert!(!calls.contains(&Call::Commit));
        // A lower cap asked for by the call applies the same way.
        let db = backend().matching(2);
        let (rule, _) = denied(
            gate(&db)
                .execute(caller(&writer), sql, &[text("old")], Some(1))
                .await,
        );
        assert_eq!(rule, "max_write_rows");
        let db = backend().matching(2);
        let done = gate(&db)
            .execute(caller(&writer), sql, &[text("old")], Some(2))
            .await
            .unwrap();
        assert_eq!(done.affected, 2);
        assert_eq!(db.calls().last(), Some(&Call::Commit));
    }
}

#[tokio::test]
async fn vetting_checks_grant_types_and_parameters_without_running_anything() {
    let db = backend();
    let reader = grant(&["public.orders"], &[], false);
    let sql = "SELECT * FROM orders WHERE status = $1";
    let vetted = gate(&db)
        .vet(caller(&reader), sql, false, &["text".into()], &[vec![]])
        .await
        .unwrap();
    assert_eq!(vetted.read, ["public.orders"]);
    assert_eq!((vetted.verb, vetted.written), (None, None));
    assert_eq!(vetted.parameter_types, ["text"]);
    assert!(
        !db.calls()
            .iter()
            .any(|c| matches!(c, Call::Query { .. } | Call::Commit))
    );
    let (rule, _) = denied(
        gate(&db)
            .vet(
                caller(&reader),
                "SELECT * FROM secret.keys",
                false,
                &[],
                &[],
            )
            .await,
    );
    assert_eq!(rule, "read-grant");
    let message = invalid(
        gate(&db)
            .vet(
                caller(&reader),
                sql,
                false,
                &["no_such_type".into()],
                &[vec![]],
            )
            .await,
    );
    assert!(
        message.contains("\"no_such_type\" does not exist"),
        "{message}"
    );
    let message = invalid(
        gate(&db)
            .vet(caller(&reader), sql, false, &["integer".into()], &[vec![]])
            .await,
    );
    assert!(
        message.starts_with(
            "parameter $1 is declared as integer, and the statement uses it as text, which \
             integer does not convert to implicitly"
        ),
        "{message}"
    );
    let (rule, _) = denied(gate(&db).vet(caller(&reader), sql, true, &[], &[]).await);
    assert_eq!(rule, "write-grant");
    // Defaults and enum values must read as the parameter's type.
    let by_id = "SELECT * FROM orders WHERE id = $1::integer";
    let values = |v: &[&str]| vec![v.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    gate(&db)
        .vet(
            caller(&reader),
            by_id,
            false,
            &["integer".into()],
            &values(&["1", "42"]),
        )
        .await
        .unwrap();
    let message = invalid(
        gate(&db)
            .vet(
                caller(&reader),
                by_id,
                false,
                &["integer".into()],
                &values(&["1", "ten"]),
            )
            .await,
    );
    assert_eq!(
        message,
        "parameter $1 (integer): a default or enum value is not one: invalid input syntax \
         for type integer: \"ten\""
    );
}

/// A grant to read `public.orders` that allows hypopg's functions.
fn hypopg_grant() -> Grant {
    let mut grant = grant(&["public.orders"], &[], false);
    grant.functions = Arc::new(
        crate::policy::FunctionRules::default()
            .with_allowance(&["hypopg_*".into()])
            .unwrap(),
    );
    grant
}

#[tokio::test]
async fn a_session_state_call_opens_the_calls_session_on_a_connection_of_its_own() {
    let db = backend().matching(1);
    let mut allowed = hypopg_grant();
    let gate = gate(&db);
    let mut session = super::Session::default();
    // A plain read before it stays on the pool.
    gate.query_in(&mut session, caller(&allowed), "SELECT * FROM orders", &[])
        .await
        .unwrap();
    assert!(!session.is_open());
    assert!(!db.calls().contains(&Call::BeginDisposable));
    // The call that keeps session state opens it, and every later read,
    // even a plain one, runs in it.
    let create = "SELECT hypopg_create_index('CREATE INDEX ON orders (status)') FROM orders";
    gate.query_in(&mut session, caller(&allowed), create, &[])
        .await
        .unwrap();
    assert!(session.is_open());
    gate.query_in(&mut session, caller(&allowed), "SELECT * FROM orders", &[])
        .await
        .unwrap();
    // A refused read costs only itself; the same rules as any read apply.
    let (rule, _) = denied(
        gate.query_in(
            &mut session,
            caller(&allowed),
            "SELECT * FROM secret.keys",
            &[],
        )
        .await,
    );
    assert_eq!(rule, "read-grant");
    let calls = db.calls();
    let count = |wanted: &Call| calls.iter().filter(|c| *c == wanted).count();
    assert_eq!(count(&Call::BeginDisposable), 1, "{calls:?}");
    assert_eq!(count(&Call::Savepoint(crate::db::Savepoint::Set)), 3);
    assert_eq!(count(&Call::Savepoint(crate::db::Savepoint::Undo)), 3);
    drop(session);
    assert_eq!(db.calls().last(), Some(&Call::Dropped));

    // Alone, such a read gets a session of its own, and so does a write
    // that calls such a function.
    let db = backend().matching(1);
    let gate = self::gate(&db);
    let disposable = || {
        db.calls()
            .iter()
            .filter(|c| **c == Call::BeginDisposable)
            .count()
    };
    gate.query(caller(&allowed), create, &[]).await.unwrap();
    allowed.write = vec![Pattern::parse("public.orders").unwrap()];
    gate.execute(
        caller(&allowed),
        "UPDATE orders SET status = $1",
        &[text("x")],
        None,
    )
    .await
    .unwrap();
    assert_eq!(disposable(), 1);
    gate.execute(
        caller(&allowed),
        "UPDATE orders SET status = hypopg_reset()::text",
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(disposable(), 2);
    // Without the allowance, the function itself is refused.
    let plain = grant(&["public.orders"], &[], false);
    let (rule, _) = denied(gate.query(caller(&plain), create, &[]).await);
    assert_eq!(rule, "function-session-state");
}

#[tokio::test]
async fn an_index_definition_is_held_to_the_read_grant_as_a_literal_or_a_parameter() {
    let db = backend().matching(1);
    let mut allowed = hypopg_grant();
    let gate = gate(&db);
    let queries = || {
        db.calls()
            .iter()
            .filter(|c| matches!(c, Call::Query { .. }))
            .count()
    };
    // On a granted table, as a literal or a parameter: it runs.
    gate.query(
        caller(&allowed),
        "SELECT * FROM hypopg_create_index('CREATE INDEX ON orders (status)')",
        &[],
    )
    .await
    .unwrap();
    let by_param = "SELECT indexrelid FROM hypopg_create_index($1)";
    gate.query(
        caller(&allowed),
        by_param,
        &[text(
            "CREATE INDEX ON public.orders USING btree (id) WHERE status = 'open'",
        )],
    )
    .await
    .unwrap();
    assert_eq!(queries(), 2);
    // On a table the grant does not read: refused by the read grant,
    // before anything runs, whichever way the definition came.
    let (rule, message) = denied(
        gate.query(
            caller(&allowed),
            "SELECT hypopg_create_index('CREATE INDEX ON secret.keys (id)')",
            &[],
        )
        .await,
    );
    assert_eq!(rule, "read-grant", "{message}");
    assert!(message.contains("secret.keys"), "{message}");
    let (rule, message) = denied(
        gate.query(
            caller(&allowed),
            by_param,
            &[text("create index on secret.keys (id)")],
        )
        .await,
    );
    assert_eq!(rule, "read-grant", "{message}");
    // In an index expression, too.
    let (rule, _) = denied(
        gate.query(
            caller(&allowed),
            by_param,
            &[text(
                "CREATE INDEX ON orders ((id + (SELECT max(id) FROM secret.keys)))",
            )],
        )
        .await,
    );
    assert_eq!(rule, "read-grant");
    // A definition that is not one CREATE INDEX, or a value that is not
    // text, is refused by the rule that says so.
    for bad in [
        text("CREATE INDEX ON orders (id); CREATE INDEX ON secret.keys (id)"),
        text("DROP TABLE orders"),
        text("CREATE INDEX ON orders ((pg_read_file('/etc/passwd')))"),
        int(1),
    ] {
        let (rule, message) = denied(
            gate.query(caller(&allowed), by_param, std::slice::from_ref(&bad))
                .await,
        );
        assert!(
            ["index-definition", "function-denylist"].contains(&rule),
            "{bad:?}: {rule} {message}"
        );
    }
    let (rule, _) = denied(gate.query(caller(&allowed), by_param, &[]).await);
    assert_eq!(rule, "index-definition");
    // A write carrying one is held to the same rule.
    allowed.write = vec![Pattern::parse("public.orders").unwrap()];
    let (rule, _) = denied(
        gate.execute(
            caller(&allowed),
            "UPDATE orders SET status = (SELECT indexname FROM hypopg_create_index($1))",
            &[text("CREATE INDEX ON secret.keys (id)")],
            None,
        )
        .await,
    );
    assert_eq!(rule, "read-grant");
    assert_eq!(queries(), 2, "{:?}", db.calls());
}

#[test]
fn transient_errors_are_the_database_not_answering_not_what_it_answered() {
    let pg = |code: &str| GateError::Database(PgError::new(Some(code), "x"));
    assert!(GateError::Internal("database unreachable: refused".into()).is_transient());
    for code in ["08006", "57P01", "57P03", "53300"] {
        assert!(pg(code).is_transient(), "{code}");
    }
    for code in ["42P01", "42501", "57014", "22P02"] {
        assert!(!pg(code).is_transient(), "{code}");
    }
    assert!(!GateError::Denied(crate::policy::Denial::new("read-grant", "no")).is_transient());
    assert!(!GateError::NotFound("t".into()).is_transient());
}
