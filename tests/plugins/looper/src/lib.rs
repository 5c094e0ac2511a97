//! Test-only plugin: `spin` never returns (the host must time it out);
//! `nap` sleeps through WASI's clock and then answers, for calls that must
//! stay in flight for a while.

use sluice_sdk::prelude::*;

/// Loops forever.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct Args {}

fn spin(_: Args) -> Result<String> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Sleeps, then answers.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct NapArgs {
    /// How long, in milliseconds.
    ms: u64,
}

fn nap(args: NapArgs) -> Result<String> {
    std::thread::sleep(std::time::Duration::from_millis(args.ms));
    Ok(format!("rested {} ms", args.ms))
}

sluice_sdk::plugin!(|| Plugin::new()
    .tool(Tool::new("spin", spin))
    .tool(Tool::new("nap", nap)));
