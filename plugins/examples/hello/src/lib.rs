use sluice_sdk::prelude::*;

/// Greets someone by name.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct Args {
    /// Who to greet.
    name: String,
}

fn hello(args: Args) -> Result<String> {
    Ok(format!("Hello, {}!", args.name))
}

sluice_sdk::plugin!(|| Plugin::new().tool(Tool::new("hello", hello).title("Hello").read_only()));
