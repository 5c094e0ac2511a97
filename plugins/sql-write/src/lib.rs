//! `sql-write`: typed writes (insert, update, delete by column values). Kept apart from `sql-read` so an operator can
//! grant (or withhold) writing as a separate plugin with its own grant and role.

use sluice_sdk::db;
use sluice_sdk::prelude::*;
use sluice_sdk::serde_json::{Map, Value as JsonValue};

/// Insert one row into a table and return the row as stored (with defaults and
/// generated values filled in).
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct InsertArgs {
    /// Table name, optionally schema-qualified (`rental` or `public.rental`).
    table: String,
    /// Column names and values. Values are converted to each column's type:
    /// strings for dates, timestamps, numerics and enums are fine; arrays and
    /// objects suit array and json columns. Omitted columns take their defaults.
    data: Map<String, JsonValue>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct InsertOut {
    /// The table written to.
    table: String,
    /// The inserted row, keyed by column name.
    row: JsonValue,
}

fn insert_record(args: InsertArgs) -> Result<Json<InsertOut>> {
    if args.data.is_empty() {
        return Err(Error::invalid_input(
            "data is empty: give at least one column value",
        ));
    }
    let values = args
        .data
        .iter()
        .map(|(k, v)| (k.as_str(), Value::from_json(v)));
    let rows = db::insert(&args.table, values)?;
    let row = rows
        .to_json_objects()
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal("the insert returned no row"))?;
    Ok(Json(InsertOut {
        table: args.table,
        row,
    }))
}

/// Update the rows of a table that match a filter, and return them as updated.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct UpdateArgs {
    /// Table name, optionally schema-qualified (`rental` or `public.rental`).
    table: String,
    /// Which rows: column = value conditions that must all hold (a null value
    /// matches NULL). At least one is required, e.g. `{"rental_id": 42}`.
    filter: Map<String, JsonValue>,
    /// The new values, by column name, converted to each column's type.
    set: Map<String, JsonValue>,
    /// Refuse (and change nothing) if more rows than this match. The
    /// operator's max_write_rows limit applies in any case.
    max_rows: Option<u32>,
}

/// Delete the rows of a table that match a filter, and return them.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct DeleteArgs {
    /// Table name, optionally schema-qualified (`rental` or `public.rental`).
    table: String,
    /// Which rows: column = value conditions that must all hold (a null value
    /// matches NULL). At least one is required, e.g. `{"rental_id": 42}`.
    filter: Map<String, JsonValue>,
    /// Refuse (and change nothing) if more rows than this match. The
    /// operator's max_write_rows limit applies in any case.
    max_rows: Option<u32>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct WriteOut {
    /// The table written to.
    table: String,
    /// How many rows were changed.
    count: usize,
    /// The rows changed (as updated, or as they were before deletion).
    rows: Vec<JsonValue>,
}

fn pairs(map: &Map<String, JsonValue>) -> impl Iterator<Item = (&str, Value)> {
    map.iter().map(|(k, v)| (k.as_str(), Value::from_json(v)))
}

fn require_filter(filter: &Map<String, JsonValue>) -> Result<()> {
    if filter.is_empty() {
        return Err(Error::invalid_input(
            "filter is empty: give at least one column = value condition",
        ));
    }
    Ok(())
}

fn written(table: String, rows: db::Rows) -> Json<WriteOut> {
    let rows = rows.to_json_objects();
    Json(WriteOut {
        table,
        count: rows.len(),
        rows,
    })
}

fn update_records(args: UpdateArgs) -> Result<Json<WriteOut>> {
    require_filter(&args.filter)?;
    if args.set.is_empty() {
        return Err(Error::invalid_input(
            "set is empty: give at least one column value",
        ));
    }
    let rows = db::update(
        &args.table,
        pairs(&args.filter),
        pairs(&args.set),
        args.max_rows,
    )?;
    Ok(written(args.table, rows))
}

fn delete_records(args: DeleteArgs) -> Result<Json<WriteOut>> {
    require_filter(&args.filter)?;
    let rows = db::delete(&args.table, pairs(&args.filter), args.max_rows)?;
    Ok(written(args.table, rows))
}

fn build() -> Plugin {
    Plugin::new()
        // Any table the operator grants for writing.
        .requests(Requests::new().write(["*.*"]))
        .tool(
            Tool::new("insert_record", insert_record)
                .title("Insert a record")
                .additive(),
        )
        .tool(
            Tool::new("update_records", update_records)
                .title("Update records")
                .destructive()
                .idempotent(),
        )
        .tool(
            Tool::new("delete_records", delete_records)
                .title("Delete records")
                .destructive()
                .idempotent(),
        )
}

sluice_sdk::plugin!(build);
