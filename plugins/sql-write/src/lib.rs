//! `sql-write`: typed writes. Kept apart from `sql-read` so an operator can
//! grant (or withhold) writing as a separate plugin with its own grant and role.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as JsonValue};
use sluice_sdk::db;
use sluice_sdk::prelude::*;

/// Insert one row into a table and return the row as stored (with defaults and
/// generated values filled in).
#[derive(Deserialize, JsonSchema)]
struct InsertArgs {
    /// Table name, optionally schema-qualified (`rental` or `public.rental`).
    table: String,
    /// Column names and values. Values are converted to each column's type:
    /// strings for dates, timestamps, numerics and enums are fine; arrays and
    /// objects suit array and json columns. Omitted columns take their defaults.
    data: Map<String, JsonValue>,
}

#[derive(Serialize, JsonSchema)]
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

fn build() -> Plugin {
    Plugin::new().tool(
        Tool::new("insert_record", insert_record)
            .title("Insert a record")
            .writes(false, false),
    )
}

sluice_sdk::plugin!(build);
