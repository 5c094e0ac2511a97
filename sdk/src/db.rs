//! The database, through the host's capability-checked calls.
//!
//! Every call is checked against the grants the operator gave this plugin; a
//! refusal comes back as [`Error::Denied`](crate::Error::Denied) naming the rule.

use crate::bindings::sluice::plugin::database;
use crate::{Result, Value};
use serde_json::{Map, Value as Json};

pub use database::{
    Column, ColumnInfo, ConstraintInfo, ConstraintKind, ForeignKey, IndexInfo, Relation,
    RelationDescription, RelationKind,
};

/// Rows returned by [`query`], or the rows written by [`insert`], [`update`]
/// and [`delete`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// Result columns, in order.
    pub columns: Vec<Column>,
    /// One entry per row, one value per column.
    pub rows: Vec<Vec<Value>>,
    /// True when the host's row cap cut the result short.
    pub truncated: bool,
}

impl From<database::Rows> for Rows {
    fn from(r: database::Rows) -> Self {
        Rows {
            columns: r.columns,
            rows: r.rows,
            truncated: r.truncated,
        }
    }
}

impl Rows {
    /// Each row as a JSON object keyed by column name. A repeated column name
    /// gets a `_2`, `_3`, … suffix so that no value is lost.
    pub fn to_json_objects(&self) -> Vec<Json> {
        let keys = self.unique_column_names();
        self.rows
            .iter()
            .map(|row| {
                let obj: Map<String, Json> = keys
                    .iter()
                    .cloned()
                    .zip(row.iter().map(Value::to_json))
                    .collect();
                Json::Object(obj)
            })
            .collect()
    }

    /// Column names made unique as in [`Rows::to_json_objects`].
    pub fn unique_column_names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.columns
            .iter()
            .map(|c| {
                let mut name = c.name.clone();
                let mut n = 1;
                while !seen.insert(name.clone()) {
                    n += 1;
                    name = format!("{}_{n}", c.name);
                }
                name
            })
            .collect()
    }
}

/// A result column as a tool answers with it.
#[crate::json_derive(Serialize, JsonSchema)]
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnOutput {
    /// Column name.
    pub name: String,
    /// PostgreSQL type, e.g. `int4`, `numeric`, `text[]`.
    #[serde(rename = "type")]
    pub type_name: String,
}

/// Rows as a tool answers with them: the shape of sql-read's `query` and of
/// every declared tool, for [`Json`](crate::Json) output.
#[crate::json_derive(Serialize, JsonSchema)]
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub columns: Vec<ColumnOutput>,
    /// One object per row, keyed by column name. `numeric` values are exact
    /// decimal strings, timestamps ISO 8601, `bytea` base64, `json` embedded.
    pub rows: Vec<Json>,
    /// Number of rows returned.
    pub row_count: usize,
    /// True when the row cap cut the result short.
    pub truncated: bool,
}

impl From<&Rows> for QueryOutput {
    fn from(rows: &Rows) -> Self {
        let objects = rows.to_json_objects();
        QueryOutput {
            columns: rows
                .columns
                .iter()
                .map(|c| ColumnOutput {
                    name: c.name.clone(),
                    type_name: c.type_name.clone(),
                })
                .collect(),
            row_count: objects.len(),
            rows: objects,
            truncated: rows.truncated,
        }
    }
}

/// Runs one read-only statement with `$1`, `$2`, … bound to `params`.
///
/// Only SELECT, WITH, VALUES, TABLE and EXPLAIN pass (EXPLAIN ANALYZE only
/// under the grant's `analyze = true`); every relation must be within the
/// plugin's `read` grant.
pub fn query(sql: &str, params: &[Value]) -> Result<Rows> {
    Ok(database::query(sql, params)?.into())
}

/// The plan of `sql` (the query itself) as `EXPLAIN (<options>FORMAT JSON)`
/// returns it, e.g. with `options` `"ANALYZE, BUFFERS, "` or `""`. A `sql`
/// that starts with EXPLAIN is refused as invalid input. The host parses
/// the whole statement and allows EXPLAIN only of a read-only query, so
/// the concatenation cannot widen what runs.
pub fn explain(options: &str, sql: &str, params: &[Value]) -> Result<Json> {
    let sql = sql.trim();
    let explain = format!("EXPLAIN ({options}FORMAT JSON)");
    let first_word = sql.split_whitespace().next().unwrap_or_default();
    if first_word.eq_ignore_ascii_case("explain") {
        return Err(crate::Error::invalid_input(format!(
            "pass the query itself; {explain} is added to it"
        )));
    }
    let rows = query(&format!("{explain} {sql}"), params)?;
    rows.rows
        .first()
        .and_then(|r| r.first())
        .map(Value::to_json)
        .ok_or_else(|| crate::Error::internal("EXPLAIN returned no plan"))
}

/// Inserts one row into `table` and returns it. Needs a `write` grant.
pub fn insert<K: Into<String>>(
    table: &str,
    values: impl IntoIterator<Item = (K, Value)>,
) -> Result<Rows> {
    Ok(database::insert(table, &pairs(values))?.into())
}

/// Sets `values` on the rows of `table` whose `filter` columns equal the given
/// values (a null value matches SQL NULL), and returns the rows as updated.
///
/// Needs a `write` grant. If more rows match than `max_rows` (or the
/// operator's `max_write_rows`, whichever is lower), nothing changes and the
/// call fails with [`Error::Denied`](crate::Error::Denied).
pub fn update<K: Into<String>, L: Into<String>>(
    table: &str,
    filter: impl IntoIterator<Item = (K, Value)>,
    values: impl IntoIterator<Item = (L, Value)>,
    max_rows: Option<u32>,
) -> Result<Rows> {
    let filter = pairs(filter);
    let values = pairs(values);
    Ok(database::update(table, &filter, &values, max_rows)?.into())
}

/// Deletes the rows of `table` whose `filter` columns equal the given values
/// and returns them. The same grant and row cap as [`update`] apply.
pub fn delete<K: Into<String>>(
    table: &str,
    filter: impl IntoIterator<Item = (K, Value)>,
    max_rows: Option<u32>,
) -> Result<Rows> {
    Ok(database::delete(table, &pairs(filter), max_rows)?.into())
}

/// What [`execute`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// Rows inserted, updated or deleted.
    pub affected: u64,
    /// The rows of its `RETURNING` list; no columns without one.
    pub returned: Rows,
}

/// Runs one INSERT, UPDATE or DELETE with `$1`, `$2`, … bound to `params`.
///
/// Its target must be within the plugin's `write` grant and every other
/// relation it names within its `read` grant. If it touches more rows than
/// `max_rows` (or the operator's `max_write_rows`, whichever is lower), it is
/// rolled back and the call fails with [`Error::Denied`](crate::Error::Denied).
pub fn execute(sql: &str, params: &[Value], max_rows: Option<u32>) -> Result<WriteOutcome> {
    let outcome = database::execute(sql, params, max_rows)?;
    Ok(WriteOutcome {
        affected: outcome.affected,
        returned: outcome.returned.into(),
    })
}

fn pairs<K: Into<String>>(items: impl IntoIterator<Item = (K, Value)>) -> Vec<(String, Value)> {
    items.into_iter().map(|(k, v)| (k.into(), v)).collect()
}

/// The relations this plugin may read or write, optionally in one schema.
pub fn list_relations(schema: Option<&str>) -> Result<Vec<Relation>> {
    Ok(database::list_relations(schema)?)
}

/// Columns, keys, indexes and constraints of one relation.
pub fn describe_relation(name: &str) -> Result<RelationDescription> {
    Ok(database::describe_relation(name)?)
}
