//! The template for the benchmark's generated plugins.
//!
//! Its name, and the prefix of its tool names, come from [`SLOT`]. The bench
//! makes distinct plugins by rewriting the slot's two digits in the compiled
//! component (`sluice-bench-00` → `sluice-bench-07`), so each copy has
//! different bytes, compiles on its own and is cached on its own, as a set of
//! independently built plugins would be.

use sluice_sdk::prelude::*;
use sluice_sdk::serde_json::Value as JsonValue;

/// The name slot. It must occur exactly once in the component, so it is only
/// ever read through `black_box`, which keeps the compiler from copying it
/// into the strings built from it.
const SLOT: &str = "sluice-bench-00";

fn slot() -> &'static str {
    std::hint::black_box(SLOT)
}

/// Tool names: `sluice_bench_07_film`.
fn tool_name(tool: &str) -> String {
    format!("{}_{tool}", slot().replace('-', "_"))
}

#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct FilmArgs {
    /// The film's id.
    film_id: i32,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct FilmOut {
    /// The film, or null when there is none with that id.
    film: Option<JsonValue>,
}

fn film(args: FilmArgs) -> Result<Json<FilmOut>> {
    let rows = db::query(
        "SELECT film_id, title, release_year, rental_rate, length, rating \
         FROM film WHERE film_id = $1",
        &[args.film_id.into()],
    )?;
    Ok(Json(FilmOut {
        film: rows.to_json_objects().into_iter().next(),
    }))
}

#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct TopArgs {
    /// How many customers (at most 100).
    limit: u32,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct TopOut {
    /// Customer id, names and total paid, highest total first.
    customers: Vec<JsonValue>,
}

fn top_customers(args: TopArgs) -> Result<Json<TopOut>> {
    let rows = db::query(
        "SELECT c.customer_id, c.first_name, c.last_name, sum(p.amount) AS total \
         FROM customer c JOIN payment p USING (customer_id) \
         GROUP BY c.customer_id ORDER BY total DESC LIMIT $1",
        &[i64::from(args.limit.min(100)).into()],
    )?;
    Ok(Json(TopOut {
        customers: rows.to_json_objects(),
    }))
}

sluice_sdk::plugin!(|| Plugin::new()
    .name(slot())
    .requests(Requests::new().read(["public.film", "public.customer", "public.payment"]))
    .tool(
        Tool::new(&tool_name("film"), film)
            .description("One film by id.")
            .read_only()
    )
    .tool(
        Tool::new(&tool_name("top_customers"), top_customers)
            .description("The customers who paid the most.")
            .read_only()
    ));
