//! Test-only plugin whose tool traps: the host must turn that into an error.

use sluice_sdk::prelude::*;

/// Panics, which traps the component.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct Args {}

fn boom(_: Args) -> Result<String> {
    panic!("this plugin always traps")
}

sluice_sdk::plugin!(|| Plugin::new().tool(Tool::new("boom", boom)));
