//! Test-only hostile plugin: throws arbitrary arguments at every host import.
//!
//! `fuzz` makes `calls` host calls generated from `seed` by a deterministic
//! generator ([`generate`]) across `query`, `insert`, `update`, `delete`,
//! `list-relations`, `describe-relation`, `log` and `config.get`, and reports
//! how each import answered. `probe` makes one named hostile call, for tests
//! that check a specific refusal.

mod generate;

use generate::{Call, Gen};
use sluice_sdk::bindings::sluice::plugin::types::{ArrayValue, Error as WitError, Scalar, Value};
use sluice_sdk::bindings::sluice::plugin::{config, database, log};
use sluice_sdk::prelude::*;
use std::collections::BTreeMap;

/// Makes `calls` host calls with arguments generated from `seed`.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct FuzzArgs {
    seed: u64,
    calls: u32,
    /// Logs a sketch of each call before making it (through the `log`
    /// import, which counts as a host call but draws nothing from the seed).
    #[serde(default)]
    verbose: bool,
}

/// How one import answered.
#[sluice_sdk::json_derive(Serialize, JsonSchema)]
#[derive(Default)]
struct ImportStats {
    calls: u32,
    ok: u32,
    /// Errors by kind: `denied(rule)`, `invalid-input`, `not-found`,
    /// `database(sqlstate)`, `internal`.
    errors: BTreeMap<String, u32>,
}

/// What a fuzz run saw.
#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct Summary {
    seed: u64,
    calls: u32,
    /// By import name.
    imports: BTreeMap<String, ImportStats>,
    /// The first message of each error kind, clipped.
    samples: BTreeMap<String, String>,
}

fn error_kind(e: &WitError) -> String {
    match e {
        WitError::Denied(d) => format!("denied({})", d.rule),
        WitError::InvalidInput(m) if m.starts_with("invalid host call") => {
            "invalid-input(boundary)".into()
        }
        WitError::InvalidInput(_) => "invalid-input".into(),
        WitError::NotFound(_) => "not-found".into(),
        WitError::Database(d) => format!("database({})", d.sqlstate.as_deref().unwrap_or("-")),
        WitError::Internal(_) => "internal".into(),
    }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Makes one call and says whether it succeeded, and how it failed if not.
fn run(call: &Call) -> Result<(), WitError> {
    match call {
        Call::Query { sql, params } => database::query(sql, params).map(drop),
        Call::Insert { table, values } => database::insert(table, values).map(drop),
        Call::Update {
            table,
            filter,
            values,
            max_rows,
        } => database::update(table, filter, values, *max_rows).map(drop),
        Call::Delete {
            table,
            filter,
            max_rows,
        } => database::delete(table, filter, *max_rows).map(drop),
        Call::ListRelations { schema } => database::list_relations(schema.as_deref()).map(drop),
        Call::DescribeRelation { name } => database::describe_relation(name).map(drop),
        Call::Log { level, message } => {
            log::log(*level, message);
            Ok(())
        }
        Call::ConfigGet { key } => {
            std::hint::black_box(config::get(key));
            Ok(())
        }
    }
}

fn fuzz(args: FuzzArgs) -> Result<Json<Summary>> {
    let mut generator = Gen::new(args.seed);
    let mut summary = Summary {
        seed: args.seed,
        calls: args.calls,
        imports: BTreeMap::new(),
        samples: BTreeMap::new(),
    };
    for i in 0..args.calls {
        let call = generator.call();
        if args.verbose {
            log::log(
                log::Level::Info,
                &format!("fuzz seed {} call {i}: {}", args.seed, call.sketch()),
            );
        }
        let outcome = run(&call);
        let stats = summary.imports.entry(call.import().into()).or_default();
        stats.calls += 1;
        match outcome {
            Ok(()) => stats.ok += 1,
            Err(e) => {
                let kind = error_kind(&e);
                *stats.errors.entry(kind.clone()).or_default() += 1;
                summary
                    .samples
                    .entry(format!("{} {kind}", call.import()))
                    .or_insert_with(|| clip(&Error::from(e).message(), 200));
            }
        }
    }
    Ok(Json(summary))
}

/// Makes one named hostile host call and reports its answer.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct ProbeArgs {
    /// `deep-array`, `zero-dim`, `empty-array`, `short-array`, `items-without-dims`,
    /// `too-many-params`, `nul-sql`, `nul-param`, `nul-array-item`,
    /// `long-table`, `too-many-columns`, `empty-column`, `nul-column`,
    /// `long-schema`, `long-config-key`, `deep-json-array`.
    case: String,
    /// The size of the case: dimensions, items, bytes or nesting.
    n: Option<u32>,
}

fn int(i: i64) -> Value {
    Value::Scalar(Scalar::Int(i))
}

fn text(s: &str) -> Value {
    Value::Scalar(Scalar::Text(s.into()))
}

fn array(dims: Vec<u32>, items: Vec<Scalar>) -> Value {
    Value::Array(ArrayValue { dims, items })
}

fn probe(args: ProbeArgs) -> Result<String> {
    let n = |default: u32| args.n.unwrap_or(default) as usize;
    let query = |sql: &str, params: &[Value]| {
        database::query(sql, params).map(|r| format!("{} rows", r.rows.len()))
    };
    let outcome = match args.case.as_str() {
        "deep-array" => query(
            "SELECT $1::int[] IS NOT NULL AS given",
            &[array(vec![1; n(100_000)], vec![Scalar::Int(1)])],
        ),
        "zero-dim" => query(
            "SELECT $1::int[] AS a",
            &[array(vec![2, 0], vec![Scalar::Int(1)])],
        ),
        // What the SDK sends for a JSON `[]`: an empty array, not a bad one.
        "empty-array" => query("SELECT $1::int[] AS a", &[array(vec![0], vec![])]),
        "short-array" => query(
            "SELECT $1::int[] AS a",
            &[array(vec![2, 2], vec![Scalar::Int(1); 3])],
        ),
        "items-without-dims" => query(
            "SELECT $1::int[] AS a",
            &[array(vec![], vec![Scalar::Int(1)])],
        ),
        "too-many-params" => query("SELECT 1 AS one", &vec![int(0); n(65_536)]),
        "nul-sql" => query("SELECT 1 AS one\0; DROP TABLE fuzz_items", &[]),
        "nul-param" => query("SELECT $1::text AS t", &[text("a\0b")]),
        "nul-array-item" => query(
            "SELECT $1::text[] AS t",
            &[array(
                vec![2],
                vec![Scalar::Text("ok".into()), Scalar::Text("b\0d".into())],
            )],
        ),
        "long-table" => database::insert(&"t".repeat(n(2_000)), &[("id".into(), int(1))])
            .map(|r| format!("{} rows", r.rows.len())),
        "too-many-columns" => {
            let values: Vec<(String, Value)> =
                (0..n(1_601)).map(|i| (format!("c{i}"), int(1))).collect();
            database::insert("fuzz_scratch", &values).map(|r| format!("{} rows", r.rows.len()))
        }
        "empty-column" => database::update(
            "fuzz_scratch",
            &[("".into(), int(1))],
            &[("name".into(), text("x"))],
            None,
        )
        .map(|r| format!("{} rows", r.rows.len())),
        "nul-column" => database::delete("fuzz_scratch", &[("na\0me".into(), int(1))], None)
            .map(|r| format!("{} rows", r.rows.len())),
        "long-schema" => database::list_relations(Some(&"s".repeat(n(2_000))))
            .map(|r| format!("{} relations", r.len())),
        "long-config-key" => Ok(format!("{:?}", config::get(&"k".repeat(n(2_000))))),
        "deep-json-array" => {
            let depth = n(100);
            let json = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            query(
                "SELECT $1::int[] AS a",
                &[Value::Scalar(Scalar::Json(json))],
            )
        }
        other => return Err(Error::invalid_input(format!("no probe case {other:?}"))),
    };
    Ok(match outcome {
        Ok(what) => format!("ok: {what}"),
        Err(e) => format!("error: {}", Error::from(e)),
    })
}

sluice_sdk::plugin!(|| Plugin::new()
    .requests(
        Requests::new()
            .read(["public.*"])
            .write(["public.*"])
            .catalog()
    )
    .tool(Tool::new("fuzz", fuzz).description("Fuzzes every host import from a seed"))
    .tool(Tool::new("probe", probe).description("Makes one named hostile host call")));
