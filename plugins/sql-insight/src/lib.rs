//! `sql-insight`: the questions a DBA asks, answered through the same gate
//! as every other plugin.
//!
//! - `database_health`: connections, cache hits, wraparound, dead tuples,
//!   index bloat, unused, duplicate and invalid indexes, long and idle
//!   transactions, sequences near their end and replication lag; each
//!   finding with a severity and a one-line remedy.
//! - `slow_queries`: the heaviest statements from `pg_stat_statements`, or
//!   exactly how to enable it.
//! - `explain_analyze`: a read's real plan, which needs the grant's
//!   `analyze = true` (the statement runs, READ ONLY, rolled back).
//! - `index_advice`: the indexes a query (or the slowest statements)
//!   lacks, each tried as a hypothetical index (hypopg), with the plan's
//!   cost before and after; needs the grant's `functions = ["hypopg_*"]`.
//!
//! It reads only statistics views, and only what the operator grants it
//! (`[plugins.grants.sql-insight] read = ["pg_catalog.*",
//! "public.pg_stat_statements"]`); a check it may not read says so and the
//! others go on.

mod advice;

use sluice_sdk::db;
use sluice_sdk::prelude::*;
use sluice_sdk::serde_json::Value as JsonValue;

/// Statements `slow_queries` returns at most.
const MAX_SLOW: u32 = 100;

/// One health check: a name, and a statement whose rows are its findings,
/// each `(severity, subject, detail, remedy)`.
struct Check {
    name: &'static str,
    sql: &'static str,
}

/// Every check `database_health` runs, in the order it reports them. Each
/// statement returns only what deserves attention; a check with no rows is
/// reported as passed.
const CHECKS: &[Check] = &[
    Check {
        name: "connections",
        sql: "SELECT CASE WHEN used >= 0.9 * most THEN 'critical' WHEN used >= 0.75 * most \
              THEN 'warning' END AS severity, 'server' AS subject, \
              used || ' of ' || most || ' connections in use' AS detail, \
              'close idle clients or put a pooler (PgBouncer) in front; raise max_connections \
               only with memory to match' AS remedy \
              FROM (SELECT count(*)::int AS used, current_setting('max_connections')::int AS most \
                    FROM pg_catalog.pg_stat_activity) c \
              WHERE used >= 0.75 * most",
    },
    Check {
        name: "cache_hit_ratio",
        sql: "SELECT CASE WHEN ratio < 0.8 THEN 'critical' ELSE 'warning' END AS severity, \
              datname AS subject, \
              'cache hit ratio ' || round(ratio * 100, 1) || ' %' AS detail, \
              'raise shared_buffers (about a quarter of RAM) or add memory; look for \
               sequential scans of large tables' AS remedy \
              FROM (SELECT datname, blks_hit::numeric / nullif(blks_hit + blks_read, 0) AS ratio \
                    FROM pg_catalog.pg_stat_database WHERE datname = current_database()) d \
              WHERE ratio < 0.95 AND ratio IS NOT NULL",
    },
    Check {
        name: "transaction_id_wraparound",
        sql: "SELECT CASE WHEN xid_age > 1500000000 THEN 'critical' ELSE 'warning' END AS severity, \
              datname AS subject, \
              'oldest unfrozen transaction id is ' || xid_age || ' transactions old \
               (wraparound at 2147483648)' AS detail, \
              'run VACUUM (FREEZE) in ' || datname || ' and check that autovacuum keeps up; \
               look for long transactions holding it back' AS remedy \
              FROM (SELECT datname, age(datfrozenxid)::bigint AS xid_age \
                    FROM pg_catalog.pg_database WHERE datallowconn) d \
              WHERE xid_age > 500000000",
    },
    Check {
        name: "dead_tuples",
        sql: "SELECT CASE WHEN n_dead_tup > n_live_tup THEN 'critical' ELSE 'warning' END AS severity, \
              schemaname || '.' || relname AS subject, \
              n_dead_tup || ' dead and ' || n_live_tup || ' live rows; last vacuum ' || \
              coalesce(greatest(last_vacuum, last_autovacuum)::text, 'never') AS detail, \
              'VACUUM (ANALYZE) ' || quote_ident(schemaname) || '.' || quote_ident(relname) || \
              '; if it recurs, lower autovacuum_vacuum_scale_factor for the table' AS remedy \
              FROM pg_catalog.pg_stat_user_tables \
              WHERE n_dead_tup >= 1000 AND n_dead_tup > 0.2 * greatest(n_live_tup, 1) \
              ORDER BY n_dead_tup DESC LIMIT 20",
    },
    Check {
        name: "invalid_indexes",
        sql: "SELECT 'critical' AS severity, \
              n.nspname || '.' || ci.relname AS subject, \
              'index on ' || ct.relname || ' is invalid (a failed CREATE INDEX CONCURRENTLY?): \
               maintained on every write, never used' AS detail, \
              'REINDEX INDEX CONCURRENTLY ' || quote_ident(n.nspname) || '.' || \
              quote_ident(ci.relname) || ', or DROP INDEX CONCURRENTLY it' AS remedy \
              FROM pg_catalog.pg_index i \
              JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid \
              JOIN pg_catalog.pg_class ct ON ct.oid = i.indrelid \
              JOIN pg_catalog.pg_namespace n ON n.oid = ci.relnamespace \
              WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
              LIMIT 50",
    },
    Check {
        name: "duplicate_indexes",
        sql: "SELECT 'warning' AS severity, \
              n.nspname || '.' || ct.relname AS subject, \
              'indexes ' || string_agg(ci.relname, ', ' ORDER BY ci.relname) || \
              ' have the same columns, operator classes and predicate' AS detail, \
              'keep one: DROP INDEX CONCURRENTLY ' || quote_ident(n.nspname) || '.' || \
              quote_ident(max(ci.relname)) AS remedy \
              FROM pg_catalog.pg_index i \
              JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid \
              JOIN pg_catalog.pg_class ct ON ct.oid = i.indrelid \
              JOIN pg_catalog.pg_namespace n ON n.oid = ct.relnamespace \
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
              GROUP BY n.nspname, ct.relname, i.indrelid, i.indkey::text, i.indclass::text, \
                       coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), \
                       coalesce(pg_get_expr(i.indpred, i.indrelid), '') \
              HAVING count(*) > 1 LIMIT 50",
    },
    Check {
        name: "unused_indexes",
        sql: "SELECT 'info' AS severity, \
              s.schemaname || '.' || s.indexrelname AS subject, \
              'never scanned since statistics were reset; ' || \
              pg_size_pretty(pg_relation_size(s.indexrelid)) || ' kept up on every write' AS detail, \
              'if no query needs it (check on every replica), DROP INDEX CONCURRENTLY ' || \
              quote_ident(s.schemaname) || '.' || quote_ident(s.indexrelname) AS remedy \
              FROM pg_catalog.pg_stat_user_indexes s \
              JOIN pg_catalog.pg_index i ON i.indexrelid = s.indexrelid \
              WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary \
                AND i.indisvalid AND pg_relation_size(s.indexrelid) > 1048576 \
              ORDER BY pg_relation_size(s.indexrelid) DESC LIMIT 20",
    },
    Check {
        name: "index_bloat",
        // An estimate: the pages a b-tree of this many entries of this
        // width needs when 90 % full, against the pages it has.
        sql: "SELECT CASE WHEN ratio > 3 THEN 'warning' ELSE 'info' END AS severity, \
              nspname || '.' || relname AS subject, \
              'about ' || round(ratio, 1) || ' times the size its ' || reltuples::bigint || \
              ' entries need (' || pg_size_pretty(relpages::bigint * 8192) || ', estimated)' AS detail, \
              'REINDEX INDEX CONCURRENTLY ' || quote_ident(nspname) || '.' || quote_ident(relname) AS remedy \
              FROM (SELECT n.nspname, c.relname, c.relpages, c.reltuples, \
                      c.relpages::numeric / greatest(ceil(c.reltuples::numeric * \
                        (12 + coalesce(w.width, 8)) / (8192 * 0.9 - 24)), 1) AS ratio \
                    FROM pg_catalog.pg_class c \
                    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                    JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid \
                    JOIN pg_catalog.pg_am am ON am.oid = c.relam AND am.amname = 'btree' \
                    LEFT JOIN LATERAL (SELECT sum(s.avg_width)::numeric AS width \
                      FROM pg_catalog.pg_attribute a \
                      JOIN pg_catalog.pg_stats s ON s.schemaname = n.nspname \
                        AND s.attname = a.attname \
                        AND s.tablename = (SELECT t.relname FROM pg_catalog.pg_class t \
                                           WHERE t.oid = i.indrelid) \
                      WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) w ON true \
                    WHERE c.relpages >= 128 AND c.reltuples > 0 \
                      AND n.nspname NOT IN ('pg_catalog', 'information_schema')) b \
              WHERE ratio > 2 ORDER BY ratio DESC LIMIT 20",
    },
    Check {
        name: "long_running_transactions",
        sql: "SELECT CASE WHEN now() - xact_start > interval '1 hour' THEN 'critical' \
              ELSE 'warning' END AS severity, \
              'pid ' || pid || coalesce(' (' || usename || ')', '') AS subject, \
              CASE WHEN state LIKE 'idle in transaction%' \
                THEN 'idle in a transaction for ' || date_trunc('second', now() - state_change) \
                ELSE 'in a transaction for ' || date_trunc('second', now() - xact_start) END AS detail, \
              CASE WHEN state LIKE 'idle in transaction%' \
                THEN 'fix the client that leaves transactions open; set \
                      idle_in_transaction_session_timeout; end it with pg_terminate_backend(' || pid || ')' \
                ELSE 'check the statement; it holds back vacuum while it runs; \
                      pg_cancel_backend(' || pid || ') stops it' END AS remedy \
              FROM pg_catalog.pg_stat_activity \
              WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL \
                AND ((state LIKE 'idle in transaction%' AND now() - state_change > interval '1 minute') \
                  OR now() - xact_start > interval '5 minutes') \
              ORDER BY xact_start LIMIT 20",
    },
    Check {
        name: "sequence_exhaustion",
        sql: "SELECT CASE WHEN used > 0.9 THEN 'critical' ELSE 'warning' END AS severity, \
              schemaname || '.' || sequencename AS subject, \
              round(used * 100, 1) || ' % of its range used (' || last_value || ' of ' || \
              max_value || ')' AS detail, \
              'move the column to bigint (and ALTER SEQUENCE ' || quote_ident(schemaname) || '.' || \
              quote_ident(sequencename) || ' AS bigint) before it runs out' AS remedy \
              FROM (SELECT schemaname, sequencename, last_value, max_value, \
                      (last_value - min_value)::numeric / nullif(max_value - min_value, 0) AS used \
                    FROM pg_catalog.pg_sequences \
                    WHERE last_value IS NOT NULL AND increment_by > 0) s \
              WHERE used > 0.75 ORDER BY used DESC LIMIT 20",
    },
    Check {
        name: "replication_lag",
        sql: "SELECT CASE WHEN lag > interval '5 minutes' THEN 'critical' ELSE 'warning' END AS severity, \
              coalesce(application_name, '') || ' at ' || coalesce(client_addr::text, 'local') AS subject, \
              'replica ' || state || ', replaying ' || date_trunc('second', lag) || ' behind' AS detail, \
              'check the replica''s load and network; a lagging replica holds back WAL removal' AS remedy \
              FROM (SELECT application_name, client_addr, state, \
                      coalesce(replay_lag, write_lag, flush_lag) AS lag \
                    FROM pg_catalog.pg_stat_replication) r \
              WHERE lag > interval '30 seconds'",
    },
];

/// A health report of this database: what needs attention, with a
/// severity (critical, warning, info) and a one-line remedy each, and which
/// checks passed. Reads statistics only; changes nothing.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct HealthArgs {
    /// Only these checks (all when omitted): connections, cache_hit_ratio,
    /// transaction_id_wraparound, dead_tuples, invalid_indexes,
    /// duplicate_indexes, unused_indexes, index_bloat,
    /// long_running_transactions, sequence_exhaustion, replication_lag.
    #[serde(default)]
    checks: Option<Vec<String>>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct Finding {
    check: String,
    /// `critical`, `warning` or `info`.
    severity: String,
    /// What it is about: a table, an index, a session, a database.
    subject: String,
    detail: String,
    /// One line: what to do about it.
    remedy: String,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct HealthOut {
    /// What needs attention, the most severe first.
    findings: Vec<Finding>,
    /// Checks that found nothing to report.
    passed: Vec<String>,
    /// Checks that could not run, and why (a grant that does not cover a
    /// view, an older server).
    not_checked: Vec<String>,
}

fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 0,
        "warning" => 1,
        _ => 2,
    }
}

fn text(row: &JsonValue, key: &str) -> String {
    match &row[key] {
        JsonValue::String(s) => s.clone(),
        JsonValue::Null => String::new(),
        other => other.to_string(),
    }
}

fn database_health(args: HealthArgs) -> Result<Json<HealthOut>> {
    if let Some(wanted) = &args.checks
        && let Some(unknown) = wanted.iter().find(|w| !CHECKS.iter().any(|c| c.name == *w))
    {
        let names: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
        return Err(Error::invalid_input(format!(
            "no check named {unknown:?}; the checks are {}",
            names.join(", ")
        )));
    }
    let mut out = HealthOut {
        findings: Vec::new(),
        passed: Vec::new(),
        not_checked: Vec::new(),
    };
    let selected = CHECKS.iter().filter(|c| {
        args.checks
            .as_ref()
            .is_none_or(|w| w.iter().any(|n| n == c.name))
    });
    for check in selected {
        match db::query(check.sql, &[]) {
            Ok(rows) => {
                let rows = rows.to_json_objects();
                if rows.is_empty() {
                    out.passed.push(check.name.to_string());
                }
                for row in rows {
                    out.findings.push(Finding {
                        check: check.name.to_string(),
                        severity: text(&row, "severity"),
                        subject: text(&row, "subject"),
                        detail: text(&row, "detail"),
                        remedy: text(&row, "remedy"),
                    });
                }
            }
            Err(e) => out
                .not_checked
                .push(format!("{}: {}", check.name, e.message())),
        }
    }
    out.findings.sort_by_key(|f| rank(&f.severity));
    Ok(Json(out))
}

/// The statements that cost the most, from pg_stat_statements: by total
/// time (the default), mean time or calls.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct SlowArgs {
    /// `total` (time spent in all, the default), `mean` (per call) or `calls`.
    #[serde(default)]
    by: Option<SlowOrder>,
    /// How many statements (1 to 100; 10 when omitted).
    #[serde(default)]
    limit: Option<u32>,
}

#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum SlowOrder {
    Total,
    Mean,
    Calls,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct SlowOut {
    /// The statements, as pg_stat_statements normalised them (`$1` for
    /// constants), with calls, total and mean milliseconds, rows and the
    /// share of shared-buffer reads that hit the cache.
    statements: Vec<JsonValue>,
}

/// How to get pg_stat_statements, for the error that says it is missing.
const ENABLE_STATEMENTS: &str = "pg_stat_statements is not enabled here. To enable it: add \
     shared_preload_libraries = 'pg_stat_statements' to postgresql.conf (Debian: \
     /etc/postgresql/<version>/main/postgresql.conf; it is part of PostgreSQL's contrib), restart \
     PostgreSQL, run CREATE EXTENSION pg_stat_statements; in this database, and grant sluice \
     the view: [plugins.grants.sql-insight] read = [\"pg_catalog.*\", \"public.pg_stat_statements\"]";

fn slow_queries(args: SlowArgs) -> Result<Json<SlowOut>> {
    let limit = args.limit.unwrap_or(10);
    if !(1..=MAX_SLOW).contains(&limit) {
        return Err(Error::invalid_input(format!(
            "limit must be 1 to {MAX_SLOW}, not {limit}"
        )));
    }
    let order = match args.by.unwrap_or(SlowOrder::Total) {
        SlowOrder::Total => "total_exec_time",
        SlowOrder::Mean => "mean_exec_time",
        SlowOrder::Calls => "calls",
    };
    let sql = format!(
        "SELECT query, calls, round(total_exec_time::numeric, 3) AS total_ms, \
         round(mean_exec_time::numeric, 3) AS mean_ms, rows, \
         round(shared_blks_hit::numeric / nullif(shared_blks_hit + shared_blks_read, 0), 4) \
           AS cache_hit_ratio \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
         ORDER BY {order} DESC LIMIT {limit}"
    );
    match db::query(&sql, &[]) {
        Ok(rows) => Ok(Json(SlowOut {
            statements: rows.to_json_objects(),
        })),
        Err(Error::Database(e)) if missing_statements(&e) => Err(Error::not_found(format!(
            "{ENABLE_STATEMENTS} ({})",
            e.message
        ))),
        Err(e) => Err(e),
    }
}

/// The view or its library is missing: undefined table, or "must be loaded
/// via shared_preload_libraries".
fn missing_statements(e: &sluice_sdk::DatabaseError) -> bool {
    e.sqlstate.as_deref() == Some("42P01") || e.message.contains("shared_preload_libraries")
}

/// Run one read-only statement for real and return its plan with actual
/// times, row counts and buffers: EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON),
/// in a READ ONLY transaction that is rolled back, under the plugin's
/// timeout. Needs `analyze = true` in the plugin's grant.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct ExplainArgs {
    /// The query itself (SELECT, WITH … SELECT, VALUES, TABLE), without EXPLAIN.
    sql: String,
    /// Values for $1, $2, ... in order.
    #[serde(default)]
    params: Vec<JsonValue>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct ExplainOut {
    /// The plan as PostgreSQL's EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) returns it.
    plan: JsonValue,
}

fn explain_analyze(args: ExplainArgs) -> Result<Json<ExplainOut>> {
    let params: Vec<Value> = args.params.iter().map(Value::from_json).collect();
    // Allowed by the host only of a query, only under `analyze = true`.
    let plan = db::explain("ANALYZE, BUFFERS, ", &args.sql, &params)?;
    Ok(Json(ExplainOut { plan }))
}

fn build() -> Plugin {
    Plugin::new()
        // The statistics views, pg_stat_statements and, for
        // explain_analyze, whatever the operator lets it read: nothing is
        // served until a grant says what that is. `*.*` covers the first
        // two; they are named so that the config sluice suggests names them.
        .requests(Requests::new().read(["pg_catalog.*", "*.pg_stat_statements", "*.*"]))
        .tool(
            Tool::new("database_health", database_health)
                .title("Database health report")
                .read_only(),
        )
        .tool(
            Tool::new("slow_queries", slow_queries)
                .title("Slowest statements (pg_stat_statements)")
                .read_only(),
        )
        .tool(
            Tool::new("explain_analyze", explain_analyze)
                .title("Explain a query with its real run")
                .read_only(),
        )
        .tool(
            Tool::new("index_advice", advice::index_advice)
                .title("Index advice from hypothetical indexes (hypopg)")
                .read_only(),
        )
}

sluice_sdk::plugin!(build);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_unique_name() {
        let mut names: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CHECKS.len());
    }

    #[test]
    fn critical_findings_come_first() {
        let mut severities = vec!["info", "critical", "warning"];
        severities.sort_by_key(|s| rank(s));
        assert_eq!(severities, ["critical", "warning", "info"]);
    }

    #[test]
    fn a_missing_view_or_library_is_recognised() {
        let missing = |sqlstate: Option<&str>, message: &str| {
            missing_statements(&sluice_sdk::DatabaseError {
                sqlstate: sqlstate.map(String::from),
                message: message.into(),
                detail: None,
                hint: None,
            })
        };
        assert!(missing(
            Some("42P01"),
            "relation \"pg_stat_statements\" does not exist"
        ));
        assert!(missing(
            Some("55000"),
            "pg_stat_statements must be loaded via shared_preload_libraries"
        ));
        assert!(!missing(Some("42501"), "permission denied"));
    }
}
