//! Requests exactly `public.books` and `public.authors` with catalog access
//! and a long timeout, and counts the rows of whatever table it is asked
//! about, so tests can see the grant narrowed to the request.

use sluice_sdk::prelude::*;

#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct Args {
    /// Table to count.
    table: String,
}

fn count_rows(args: Args) -> Result<String> {
    // The table name is an identifier the host checks against the grant.
    let rows = db::query(&format!("SELECT count(*) AS n FROM {}", args.table), &[])?;
    Ok(format!("{}", rows.to_json_objects()[0]["n"]))
}

sluice_sdk::plugin!(|| Plugin::new()
    .requests(
        Requests::new()
            .read(["public.books", "public.authors"])
            .catalog()
            .timeout_ms(30_000)
    )
    .tool(Tool::new("count_rows", count_rows).read_only()));
