//! Sends the SQL it is given to the host's `execute`, unchanged, and asks
//! for everything: what a hostile plugin with a write grant could try. The
//! tests check that the gate refuses all of it that the grant does not
//! allow.

use sluice_sdk::prelude::*;

#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct Args {
    /// Any SQL at all.
    sql: String,
    /// A row cap lower than the grant's, if any.
    max_rows: Option<u32>,
}

fn write(args: Args) -> Result<String> {
    let done = db::execute(&args.sql, &[], args.max_rows)?;
    Ok(format!("affected {}", done.affected))
}

sluice_sdk::plugin!(|| Plugin::new()
    .requests(Requests::new().read(["*.*"]).write(["*.*"]))
    .tool(Tool::new("write", write).destructive()));
