//! Test-only plugin whose tool never returns: the host must time it out.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::prelude::*;

/// Loops forever.
#[derive(Deserialize, JsonSchema)]
struct Args {}

fn spin(_: Args) -> Result<String> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

sluice_sdk::plugin!(|| Plugin::new().tool(Tool::new("spin", spin)));
