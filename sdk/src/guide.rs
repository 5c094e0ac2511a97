//! Every feature of the SDK, by example.
//!
//! Each example is a piece of a plugin crate (`crate-type = ["cdylib"]`,
//! built for `wasm32-wasip2`, depending on `sluice-sdk` alone); the pieces
//! end up in the one `fn() -> Plugin` given to [`plugin!`](crate::plugin).
//! That function runs in every fresh instance (at load, to describe the
//! plugin, and in each call), so it only declares things; the work happens
//! in the handlers. `sluice new plugin NAME` creates a project that builds
//! as generated.
//!
//! # A tool
//!
//! A tool is a function from a typed argument struct. Doc comments become
//! the tool's description and the arguments' JSON Schema; returning
//! [`Json`](crate::Json) gives structured output with a derived output
//! schema, a `String` gives text. [`json_derive`](crate::json_derive) derives serde's
//! and schemars' traits through the SDK's re-exports.
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//!
//! /// Converts a temperature.
//! #[sluice_sdk::json_derive(Deserialize, JsonSchema)]
//! struct Args {
//!     /// Degrees Celsius.
//!     celsius: f64,
//! }
//!
//! #[sluice_sdk::json_derive(Serialize, JsonSchema)]
//! struct Out {
//!     fahrenheit: f64,
//! }
//!
//! fn convert(args: Args) -> Result<Json<Out>> {
//!     Ok(Json(Out { fahrenheit: args.celsius * 9.0 / 5.0 + 32.0 }))
//! }
//!
//! fn build() -> Plugin {
//!     Plugin::new().tool(Tool::new("to_fahrenheit", convert).title("To Fahrenheit").read_only())
//! }
//! ```
//!
//! # Reading the database
//!
//! Ask for what the plugin reads in its manifest; the operator's grant is
//! intersected with it. [`db::query`](crate::db::query) runs one read-only
//! statement with `$1`, `$2`, … bound to values; PostgreSQL infers each
//! parameter's type and the host converts the value to it.
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//! use sluice_sdk::serde_json;
//!
//! /// Films of a rating, longest first.
//! #[sluice_sdk::json_derive(Deserialize, JsonSchema)]
//! struct Args {
//!     /// An MPAA rating, e.g. `PG-13`.
//!     rating: String,
//!     /// How many films.
//!     limit: Option<i64>,
//! }
//!
//! fn longest(args: Args) -> Result<Json<Vec<serde_json::Value>>> {
//!     let rows = db::query(
//!         "SELECT title, length FROM film WHERE rating = $1 ORDER BY length DESC LIMIT $2",
//!         &[Value::from(args.rating), Value::from(args.limit.unwrap_or(10))],
//!     )?;
//!     Ok(Json(rows.to_json_objects()))
//! }
//!
//! fn build() -> Plugin {
//!     Plugin::new()
//!         .requests(Requests::new().read(["public.film"]))
//!         .tool(Tool::new("longest_films", longest).read_only())
//! }
//! ```
//!
//! [`db::list_relations`](crate::db::list_relations) and
//! [`db::describe_relation`](crate::db::describe_relation) need
//! `Requests::catalog()` and show only relations the plugin may use.
//!
//! # Errors and `?`
//!
//! Handlers return [`Result`](crate::Result) with the SDK's
//! [`Error`](crate::Error). `?` passes on the errors of `db` calls as they
//! are (a denial stays a denial, naming the rule), and turns `serde_json`,
//! parsing, UTF-8 and formatting errors and plain messages into
//! [`Error::Internal`](crate::Error::Internal). Say when the caller got
//! something wrong with [`Error::invalid_input`](crate::Error::invalid_input).
//! A [`ToolResult`](crate::ToolResult) built by hand can mix content kinds
//! or report a failure in the tool's own words.
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//!
//! fn parse_year(text: &str) -> Result<i32> {
//!     text.trim().parse().map_err(|e| Error::invalid_input(format!("year {text:?}: {e}")))
//! }
//!
//! fn busiest_day(year: &str) -> Result<ToolResult> {
//!     let year = parse_year(year)?;
//!     let rows = db::query(
//!         "SELECT rental_date::date AS day FROM rental WHERE extract(year FROM rental_date) = $1 \
//!          GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
//!         &[Value::from(year)],
//!     )?;
//!     match rows.to_json_objects().first() {
//!         Some(row) => ToolResult::json(row),
//!         None => Ok(ToolResult::error(format!("no rentals in {year}; try another year"))),
//!     }
//! }
//! ```
//!
//! # Writing: insert, update, delete
//!
//! Writes are typed: a table, column names and values, never SQL. The host
//! checks the `write` grant and every column against the catalog, and rolls
//! an update or delete back whole when it matches more rows than allowed.
//! Annotate a writing tool for clients with [`Tool::additive`](crate::Tool::additive)
//! (it only adds, as an insert does) or [`Tool::destructive`](crate::Tool::destructive)
//! (it may overwrite or delete), and [`Tool::idempotent`](crate::Tool::idempotent)
//! when repeating a call changes nothing more.
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//!
//! fn close_rental(rental_id: i64) -> Result<()> {
//!     let updated = db::update(
//!         "rental",
//!         [("rental_id", Value::from(rental_id))],
//!         [("return_date", Value::from("2024-05-01T10:00:00Z"))],
//!         Some(1), // refuse (and change nothing) if more than one row matches
//!     )?;
//!     if updated.rows.is_empty() {
//!         return Err(Error::not_found(format!("no rental {rental_id}")));
//!     }
//!     db::insert("payment_log", [("rental_id", Value::from(rental_id))])?;
//!     db::delete("rental_hold", [("rental_id", Value::from(rental_id))], None)?;
//!     Ok(())
//! }
//!
//! fn requests() -> Requests {
//!     Requests::new().write(["public.rental", "public.payment_log", "public.rental_hold"])
//! }
//! ```
//!
//! A write that needs SQL (a subquery, an expression, several rows) goes
//! through [`db::execute`](crate::db::execute): one INSERT, UPDATE or DELETE
//! that the host parses; its table must be in the `write` grant and every
//! other relation it names in the `read` grant, and the same row cap rolls
//! it back whole. Keep the SQL the plugin's own and pass values as `$n`.
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//!
//! fn mark_overdue(days: i64) -> Result<u64> {
//!     let done = db::execute(
//!         "UPDATE rental SET status = 'overdue' \
//!          WHERE return_date IS NULL AND rental_date < now() - make_interval(days => $1)",
//!         &[Value::from(days)],
//!         Some(500),
//!     )?;
//!     Ok(done.affected)
//! }
//! ```
//!
//! # A resource and a resource template with completion
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//!
//! fn readme(uri: &str) -> Result<Vec<ResourceContents>> {
//!     Ok(vec![ResourceContents::text(uri, "text/markdown", "# About this database")])
//! }
//!
//! fn table_rows(uri: &str, params: &UriParams) -> Result<Vec<ResourceContents>> {
//!     let table = params.get("table").ok_or_else(|| Error::invalid_input("no table"))?;
//!     let described = db::describe_relation(table)?;
//!     Ok(vec![ResourceContents::json(uri, &described.columns.len())?])
//! }
//!
//! fn table_names(typed: &str, _resolved: &[(String, String)]) -> Result<Vec<String>> {
//!     let names = db::list_relations(None)?.into_iter().map(|r| r.name);
//!     Ok(Completion::filter_prefix(names, typed))
//! }
//!
//! fn build() -> Plugin {
//!     Plugin::new()
//!         .requests(Requests::new().read(["public.*"]).catalog())
//!         .resource(Resource::new("db://readme", "readme", readme).mime_type("text/markdown"))
//!         .resource_template(
//!             ResourceTemplate::new("db://tables/{table}/width", "table-width", table_rows)
//!                 .complete("table", table_names),
//!         )
//! }
//! ```
//!
//! # A prompt with a completed argument
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//!
//! fn review(args: &PromptArgs) -> Result<PromptResult> {
//!     let table = args.get("table").unwrap_or_default();
//!     Ok(PromptResult::new([PromptMessage::user(format!(
//!         "Review the data quality of table {table}: nulls, duplicates, outliers."
//!     ))]))
//! }
//!
//! fn build() -> Plugin {
//!     Plugin::new().prompt(
//!         Prompt::new("review_table", review)
//!             .description("Review a table's data quality")
//!             .required_argument("table", "The table to review")
//!             .optional_argument("focus", "What to look at first")
//!             .complete("table", |typed, _| {
//!                 Ok(Completion::filter_prefix(["film", "rental", "payment"], typed))
//!             }),
//!     )
//! }
//!
//! // A completion for an argument or template variable that does not exist
//! // is not offered, and the host logs it at load; a unit test catches it
//! // sooner.
//! #[test]
//! fn the_plugin_is_built_right() {
//!     build().check().unwrap();
//! }
//! ```
//!
//! # A config value
//!
//! Operators set values under `[plugins.config.<plugin-name>]`; values
//! written `${VAR}` come from the host's environment and are never logged.
//!
//! ```no_run
//! fn region() -> String {
//!     sluice_sdk::config::get("region").unwrap_or_else(|| "eu".to_string())
//! }
//! ```
//!
//! # Tools made from data
//!
//! Tools whose schema is data (read from config, say) use
//! `Tool::dynamic(name, schemas, handler)`. The build function runs in
//! every call's fresh instance; when there are many such tools, add each
//! with `Plugin::lazy_tool(name, make)`: all are made when the plugin is
//! described, and in a call only the one called (this is how the built-in
//! `sql-tools` serves a tools file of hundreds of tools at the cost of one).
//!
//! # Logging
//!
//! ```no_run
//! sluice_sdk::log::info("rebuilding the summary");
//! ```
//!
//! # The manifest
//!
//! Name, version and description default to the crate's package metadata.
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//!
//! fn build() -> Plugin {
//!     Plugin::new()
//!         .name("film-stats")
//!         .description("Film statistics for the rental desk")
//!         .requests(Requests::new().read(["public.film"]).timeout_ms(2_000).max_rows(500))
//! }
//! ```
