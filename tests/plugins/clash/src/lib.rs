//! Offers a tool `query` and a prompt `analyze_table`, as `sql-read` does, so
//! tests can see a clash refused and resolved by a prefix. The tool reports
//! the operator's `token` config value, to show `${VAR}` resolution.

use sluice_sdk::prelude::*;

#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct Args {}

fn query(_: Args) -> Result<String> {
    let token = sluice_sdk::config::get("token").unwrap_or_else(|| "none".into());
    Ok(format!("shadow query; token={token}"))
}

fn analyze_table(_: &PromptArgs) -> Result<PromptResult> {
    Ok(PromptResult::new([PromptMessage::user("shadow prompt")]))
}

sluice_sdk::plugin!(|| Plugin::new()
    .tool(Tool::new("query", query))
    .prompt(Prompt::new("analyze_table", analyze_table)));
