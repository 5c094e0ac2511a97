//! `index_advice`: indexes a query lacks, tried as hypothetical indexes.
//!
//! The candidates come from the planner's own view of the query: its
//! EXPLAIN (VERBOSE) plan names every sequential scan with the filter it
//! applies, and every join condition. Each column a scanned table is
//! filtered or joined on is a candidate, alone and (up to three) together.
//! Each candidate is created as a hypopg hypothetical index, which costs
//! nothing and changes nothing, and the query is planned again: the
//! answer is the plan cost before and after, whether the planner used the
//! index, its estimated size and the `CREATE INDEX` to run.
//!
//! hypopg keeps its indexes in the database session. The host runs this
//! plugin's reads of one call in one READ ONLY transaction on a
//! connection of their own, closed after the call (its grant's
//! `functions = ["hypopg_*"]`), so nothing of this reaches another call.

use sluice_sdk::db;
use sluice_sdk::prelude::*;
use sluice_sdk::serde_json::Value as JsonValue;

/// Statements `from_slow_queries` looks at, at most.
const MAX_STATEMENTS: u32 = 20;
/// Columns of one table tried, at most.
const MAX_COLUMNS: usize = 4;
/// Columns of the one composite candidate per table, at most.
const MAX_COMPOSITE: usize = 3;
/// A candidate is recommended when it cuts the plan's cost by this share.
const WORTH_IT: f64 = 0.10;

/// How to get hypopg, for the error that says it is missing.
const INSTALL_HYPOPG: &str = "hypopg (hypothetical indexes) is not installed in this database. \
     To install it: the hypopg package for your PostgreSQL (Debian/Ubuntu: apt install \
     postgresql-<version>-hypopg; RHEL: dnf install hypopg_<version>; source: \
     https://github.com/HypoPG/hypopg), then CREATE EXTENSION hypopg; in this database, and \
     allow this plugin its functions: [plugins.grants.sql-insight] functions = [\"hypopg_*\"]";

/// Suggest the indexes a slow query lacks, with the planner's cost before
/// and after each. Candidates come from the query's plan (the columns its
/// sequential scans filter on and its joins use) and are tried as
/// hypothetical indexes (hypopg): nothing is created. Give `sql`, or
/// `from_slow_queries` to look at the statements that took the most time
/// (pg_stat_statements).
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
pub struct AdviceArgs {
    /// One query (SELECT, WITH … SELECT, VALUES, TABLE), without EXPLAIN.
    sql: Option<String>,
    /// Values for $1, $2, ... of `sql`, in order.
    #[serde(default)]
    params: Vec<JsonValue>,
    /// Instead of `sql`: the statements that took the most total time.
    #[serde(default)]
    from_slow_queries: bool,
    /// With `from_slow_queries`: how many statements (1 to 20; 5 when omitted).
    limit: Option<u32>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
pub struct AdviceOut {
    statements: Vec<StatementAdvice>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct StatementAdvice {
    /// The statement, as given or as pg_stat_statements recorded it.
    sql: String,
    /// The planner's total cost with the indexes there are.
    cost_before: Option<f64>,
    /// Each candidate tried, the cheapest plan first.
    candidates: Vec<Candidate>,
    /// Why this statement got no advice, when it did not.
    skipped: Option<String>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct Candidate {
    /// `schema.table`.
    table: String,
    columns: Vec<String>,
    /// The planner's total cost with this index added.
    cost_after: f64,
    /// How much cheaper the plan is, in percent.
    improvement_percent: f64,
    /// Whether the planner used the index.
    used: bool,
    /// Worth creating: used, and the plan at least 10% cheaper.
    recommended: bool,
    /// The index's estimated size, in bytes.
    estimated_bytes: Option<i64>,
    /// The statement that creates it without blocking writes.
    create_index: String,
}

/// A table the plan reads whole, and the columns it filters or joins on.
#[derive(Debug, Clone, PartialEq)]
struct Scan {
    schema: String,
    table: String,
    alias: String,
    columns: Vec<String>,
}

pub fn index_advice(args: AdviceArgs) -> Result<Json<AdviceOut>> {
    let installed = db::query(
        "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'hypopg'",
        &[],
    )?;
    if installed.rows.is_empty() {
        return Err(Error::not_found(INSTALL_HYPOPG));
    }
    let statements = match (&args.sql, args.from_slow_queries) {
        (Some(sql), false) => {
            let params: Vec<Value> = args.params.iter().map(Value::from_json).collect();
            vec![advise(sql, &params, false)?]
        }
        (None, true) => from_slow_queries(args.limit.unwrap_or(5))?,
        _ => {
            return Err(Error::invalid_input(
                "give either sql (one query) or from_slow_queries = true",
            ));
        }
    };
    Ok(Json(AdviceOut { statements }))
}

fn from_slow_queries(limit: u32) -> Result<Vec<StatementAdvice>> {
    if !(1..=MAX_STATEMENTS).contains(&limit) {
        return Err(Error::invalid_input(format!(
            "limit must be 1 to {MAX_STATEMENTS}, not {limit}"
        )));
    }
    let version = db::query(
        "SELECT current_setting('server_version_num')::int AS v",
        &[],
    )?;
    let generic_plans = version
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.to_json().as_i64())
        .is_some_and(|v| v >= 160000);
    let top = db::query(
        &format!(
            "SELECT query FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_catalog.pg_database \
                           WHERE datname = current_database()) \
               AND query ~* '^\\s*(select|with|values|table)\\M' \
             ORDER BY total_exec_time DESC LIMIT {limit}"
        ),
        &[],
    )
    .map_err(|e| match e {
        Error::Database(d) if d.sqlstate.as_deref() == Some("42P01") => {
            Error::not_found(crate::ENABLE_STATEMENTS)
        }
        other => other,
    })?;
    let mut out = Vec::new();
    for row in top.to_json_objects() {
        let Some(sql) = row["query"].as_str() else {
            continue;
        };
        let parameters = has_placeholders(sql);
        if parameters && !generic_plans {
            out.push(skipped(
                sql,
                "it has parameters ($1, …: pg_stat_statements replaces constants with them), \
                 and planning it without values needs EXPLAIN (GENERIC_PLAN) of PostgreSQL 16 \
                 or later; pass it as sql with params instead",
            ));
            continue;
        }
        match advise(sql, &[], parameters) {
            Ok(advice) => out.push(advice),
            Err(e) => out.push(skipped(sql, &e.to_string())),
        }
    }
    Ok(out)
}

fn skipped(sql: &str, why: &str) -> StatementAdvice {
    StatementAdvice {
        sql: sql.to_string(),
        cost_before: None,
        candidates: Vec::new(),
        skipped: Some(why.to_string()),
    }
}

/// Whether `sql` has a `$n` outside its string literals and quoted names.
fn has_placeholders(sql: &str) -> bool {
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => return true,
            _ => {}
        }
    }
    false
}

fn advise(sql: &str, params: &[Value], generic: bool) -> Result<StatementAdvice> {
    let options = if generic {
        "GENERIC_PLAN, VERBOSE, "
    } else {
        "VERBOSE, "
    };
    db::query("SELECT hypopg_reset()", &[])?;
    let before = db::explain(options, sql, params)?;
    let Some(cost_before) = total_cost(&before) else {
        return Err(Error::internal("the plan has no total cost"));
    };
    let scans = scans(&before);
    let mut candidates = Vec::new();
    for scan in &scans {
        let mut sets: Vec<Vec<String>> = scan.columns.iter().map(|c| vec![c.clone()]).collect();
        if scan.columns.len() > 1 {
            sets.push(scan.columns.iter().take(MAX_COMPOSITE).cloned().collect());
        }
        for columns in sets {
            candidates.push(try_index(sql, params, options, scan, columns, cost_before)?);
        }
    }
    candidates.sort_by(|a, b| a.cost_after.total_cmp(&b.cost_after));
    Ok(StatementAdvice {
        sql: sql.to_string(),
        cost_before: Some(cost_before),
        skipped: if scans.is_empty() {
            Some("the plan reads no table whole: no index would help it".into())
        } else {
            None
        },
        candidates,
    })
}

fn try_index(
    sql: &str,
    params: &[Value],
    options: &str,
    scan: &Scan,
    columns: Vec<String>,
    cost_before: f64,
) -> Result<Candidate> {
    let table = format!("{}.{}", ident(&scan.schema), ident(&scan.table));
    let list = columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let created = db::query(
        "SELECT indexrelid, indexname FROM hypopg_create_index($1)",
        &[Value::from(format!("CREATE INDEX ON {table} ({list})"))],
    )?;
    let row = created
        .to_json_objects()
        .pop()
        .ok_or_else(|| Error::internal("hypopg created no index"))?;
    let oid = row["indexrelid"].as_i64().unwrap_or_default();
    let name = row["indexname"].as_str().unwrap_or_default().to_string();
    let after = db::explain(options, sql, params)?;
    let size = db::query(
        "SELECT hypopg_relation_size($1::oid) AS bytes",
        &[Value::from(oid)],
    )?;
    db::query("SELECT hypopg_drop_index($1::oid)", &[Value::from(oid)])?;
    let cost_after = total_cost(&after).unwrap_or(cost_before);
    let used = uses_index(&after, &name);
    let improvement = if cost_before > 0.0 {
        (cost_before - cost_after) / cost_before
    } else {
        0.0
    };
    Ok(Candidate {
        table: format!("{}.{}", scan.schema, scan.table),
        columns,
        cost_after,
        improvement_percent: (improvement * 1000.0).round() / 10.0,
        used,
        recommended: used && improvement >= WORTH_IT,
        estimated_bytes: size
            .to_json_objects()
            .first()
            .and_then(|r| r["bytes"].as_i64()),
        create_index: format!("CREATE INDEX CONCURRENTLY ON {table} ({list});"),
    })
}

/// An identifier as SQL text: bare when that reads back the same.
fn ident(name: &str) -> String {
    const RESERVED: &[&str] = &[
        "all",
        "and",
        "any",
        "as",
        "asc",
        "case",
        "check",
        "column",
        "constraint",
        "default",
        "desc",
        "distinct",
        "else",
        "end",
        "false",
        "from",
        "group",
        "in",
        "into",
        "limit",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "primary",
        "references",
        "select",
        "table",
        "then",
        "to",
        "true",
        "union",
        "user",
        "when",
        "where",
        "window",
        "with",
    ];
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The top plan node of an EXPLAIN (FORMAT JSON) answer.
fn top(plan: &JsonValue) -> Option<&JsonValue> {
    plan.get(0).and_then(|p| p.get("Plan"))
}

fn total_cost(plan: &JsonValue) -> Option<f64> {
    top(plan)?.get("Total Cost")?.as_f64()
}

/// Every plan node, walked with a stack of its own (a plan can be deep).
fn nodes(plan: &JsonValue) -> Vec<&JsonValue> {
    let mut out = Vec::new();
    let mut stack: Vec<&JsonValue> = top(plan).into_iter().collect();
    while let Some(node) = stack.pop() {
        out.push(node);
        if let Some(children) = node.get("Plans").and_then(JsonValue::as_array) {
            stack.extend(children);
        }
    }
    out
}

fn uses_index(plan: &JsonValue, name: &str) -> bool {
    nodes(plan)
        .iter()
        .any(|n| n.get("Index Name").and_then(JsonValue::as_str) == Some(name))
}

/// The tables the plan scans sequentially, each with the columns its
/// filter and the plan's join conditions name (in the order they appear).
fn scans(plan: &JsonValue) -> Vec<Scan> {
    let all = nodes(plan);
    let mut scans: Vec<Scan> = Vec::new();
    for node in &all {
        let text = |key: &str| node.get(key).and_then(JsonValue::as_str);
        if text("Node Type") != Some("Seq Scan") {
            continue;
        }
        let (Some(schema), Some(table)) = (text("Schema"), text("Relation Name")) else {
            continue;
        };
        let alias = text("Alias").unwrap_or(table).to_string();
        if scans.iter().any(|s| s.alias == alias) {
            continue;
        }
        scans.push(Scan {
            schema: schema.to_string(),
            table: table.to_string(),
            alias,
            columns: Vec::new(),
        });
    }
    for node in &all {
        for key in ["Filter", "Hash Cond", "Merge Cond", "Join Filter"] {
            let Some(condition) = node.get(key).and_then(JsonValue::as_str) else {
                continue;
            };
            for (qualifier, column) in qualified_names(condition) {
                if let Some(scan) = scans.iter_mut().find(|s| s.alias == qualifier)
                    && !scan.columns.contains(&column)
                    && scan.columns.len() < MAX_COLUMNS
                {
                    scan.columns.push(column);
                }
            }
        }
    }
    scans.retain(|s| !s.columns.is_empty());
    scans
}

/// The `qualifier.name` pairs of an expression as EXPLAIN VERBOSE prints
/// it, outside string literals, and not followed by `(` (a function).
fn qualified_names(expression: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = expression.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut previous: Option<(String, usize)> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            previous = None;
            continue;
        }
        let start = i;
        let word = if c == '"' {
            let mut word = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' {
                    if chars.get(i + 1) == Some(&'"') {
                        word.push('"');
                        i += 2;
                        continue;
                    }
                    break;
                }
                word.push(chars[i]);
                i += 1;
            }
            i += 1;
            Some(word)
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$')) {
                i += 1;
            }
            Some(chars[start..i].iter().collect())
        } else {
            None
        };
        match word {
            Some(word) => {
                if let Some((qualifier, end)) = previous.take()
                    && end + 1 == start
                    && chars.get(end) == Some(&'.')
                    && chars.get(i) != Some(&'(')
                {
                    out.push((qualifier, word));
                } else {
                    previous = Some((word, i));
                }
            }
            None => {
                if c != '.' {
                    previous = None;
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::serde_json::json;

    #[test]
    fn qualified_names_are_read_from_explain_conditions() {
        assert_eq!(
            qualified_names(
                "((rental.return_date IS NULL) AND (r.\"Odd\"\"Col\" = 'x.y''z.w') AND \
                 (pg_catalog.lower(c.name) = 'a'::text))"
            ),
            [
                ("rental".to_string(), "return_date".to_string()),
                ("r".to_string(), "Odd\"Col".to_string()),
                ("c".to_string(), "name".to_string()),
            ]
        );
        assert!(qualified_names("(a = 1)").is_empty());
    }

    #[test]
    fn scans_name_the_columns_their_filters_and_joins_use() {
        let plan = json!([{"Plan": {
            "Node Type": "Hash Join",
            "Total Cost": 500.0,
            "Hash Cond": "(r.customer_id = c.customer_id)",
            "Plans": [
                {"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "rental",
                 "Alias": "r", "Filter": "(r.return_date IS NULL)"},
                {"Node Type": "Hash", "Plans": [
                    {"Node Type": "Index Scan", "Schema": "public",
                     "Relation Name": "customer", "Alias": "c", "Index Name": "customer_pkey"}
                ]}
            ]
        }}]);
        assert_eq!(total_cost(&plan), Some(500.0));
        assert!(uses_index(&plan, "customer_pkey"));
        assert_eq!(
            scans(&plan),
            [Scan {
                schema: "public".into(),
                table: "rental".into(),
                alias: "r".into(),
                columns: vec!["customer_id".into(), "return_date".into()],
            }]
        );
    }

    #[test]
    fn placeholders_outside_literals_are_found() {
        assert!(has_placeholders("SELECT * FROM t WHERE a = $1"));
        assert!(!has_placeholders("SELECT '$1', \"$2\" FROM t"));
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(ident("return_date"), "return_date");
        assert_eq!(ident("order"), "\"order\"");
        assert_eq!(ident("Odd\"Name"), "\"Odd\"\"Name\"");
    }
}
