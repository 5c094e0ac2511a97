//! Section 9: what declared tools and sql-insight cost. A declared read
//! tool against sql-read's `query` with the same statement; a declared
//! write through `execute`; `database_health` with and without a grant
//! that allows hypopg (which opens a session only when a statement calls
//! it); and `index_advice` on Pagila, whose hypopg calls open a session on
//! a connection of its own each call, when the server has hypopg.

use crate::overhead::{InProcess, POINT, film_id};
use crate::stats::{self, Samples, Table};
use anyhow::{bail, ensure};
use serde_json::{Value as Json, json};
use sluice::config::Config;
use sluice::principal::Principal;
use sluice::registry::model::PluginHost;
use sqlx::Connection as _;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

static LOCAL: LazyLock<Arc<Principal>> = LazyLock::new(|| Arc::new(Principal::local()));

/// A query Pagila has no index for.
const UNRETURNED: &str = "SELECT rental_id, customer_id FROM rental WHERE return_date IS NULL";

/// Tools in the large declaration: each call's fresh instance reads the
/// declaration it is served from, so its size is part of every call.
const MANY: usize = 200;

/// `[plugins.tools.bench-many]`: [`MANY`] tools with the point read's
/// statement, each described at some length, as a large catalogue would be.
fn many_tools() -> String {
    let mut toml = String::from(
        "[plugins.tools.bench-many]\ndescription = \"A large catalogue\"\n\
         [plugins.grants.bench-many]\nread = [\"public.film\"]\n",
    );
    let description = "One film by its id: title, length, rating and rental terms, \
                       as the catalogue team keeps them. "
        .repeat(3);
    for i in 0..MANY {
        toml.push_str(&format!(
            "[[plugins.tools.bench-many.tools]]\nname = \"film_{i:03}\"\n\
             description = \"{description}\"\nsql = \"{sql}\"\n\
             [[plugins.tools.bench-many.tools.params]]\nname = \"id\"\ntype = \"integer\"\n\
             description = \"The film's id.\"\n",
            sql = POINT.sql
        ));
    }
    toml
}

fn config_toml(session: bool) -> String {
    let functions = if session {
        "functions = [\"hypopg_*\"]\n"
    } else {
        ""
    };
    let many = if session { String::new() } else { many_tools() };
    format!(
        "[plugins.tools.bench-films]\n\
         description = \"Film lookups\"\n\
         [[plugins.tools.bench-films.tools]]\n\
         name = \"film\"\n\
         description = \"One film.\"\n\
         sql = \"{sql}\"\n\
         [[plugins.tools.bench-films.tools.params]]\n\
         name = \"id\"\n\
         type = \"integer\"\n\
         [[plugins.tools.bench-films.tools]]\n\
         name = \"keep_rate\"\n\
         kind = \"write\"\n\
         description = \"Sets a film's rental rate to itself.\"\n\
         sql = \"UPDATE film SET rental_rate = rental_rate WHERE film_id = $1\"\n\
         max_rows = 1\n\
         [[plugins.tools.bench-films.tools.params]]\n\
         name = \"id\"\n\
         type = \"integer\"\n\n\
         [plugins.grants.bench-films]\n\
         read = [\"public.film\"]\n\
         write = [\"public.film\"]\n\n\
         [plugins.grants.sql-insight]\n\
         read = [\"pg_catalog.*\", \"public.*\"]\n\
         {functions}\n\
         {many}",
        sql = POINT.sql
    )
}

async fn host(url: &str, session: bool) -> anyhow::Result<InProcess> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::parse(&config_toml(session), &dir.path().join("bench.toml"))?;
    config.database.url = Some(url.to_string());
    InProcess::start(&config).await
}

/// Calls `tool` with `args(i)` `n` times; every answer must pass `check`.
async fn series(
    host: &InProcess,
    tool: &str,
    n: usize,
    args: &(dyn Fn(usize) -> Json + Sync),
    check: &(dyn Fn(&Json) -> bool + Sync),
) -> anyhow::Result<Samples> {
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let Json::Object(arguments) = args(i) else {
            bail!("arguments are an object");
        };
        let t = Instant::now();
        let out = host.registry.call_tool(&LOCAL, tool, arguments).await?;
        latencies.push(t.elapsed());
        ensure!(!out.is_error, "{tool}: the tool reported an error");
        let structured = out.structured.unwrap_or_default();
        ensure!(check(&structured), "{tool}: unexpected answer {structured}");
    }
    Ok(Samples::new(latencies, started.elapsed()))
}

async fn hypopg(url: &str) -> anyhow::Result<bool> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let available: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'")
            .fetch_one(&mut conn)
            .await?;
    if available > 0 {
        sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS hypopg")
            .execute(&mut conn)
            .await?;
    }
    Ok(available > 0)
}

/// Runs section 9 and prints its table.
pub async fn run(url: &str, quick: bool) -> anyhow::Result<()> {
    let calls = if quick { 100 } else { 600 };
    let heavy = if quick { 10 } else { 40 };
    let pooled = host(url, false).await?;
    let point = |i: usize| json!({"sql": POINT.sql, "params": [film_id(i)]});
    let one_row = |out: &Json| out["row_count"] == 1;
    let mut rows: Vec<(&str, Samples)> = vec![
        (
            "sql-read query (film by primary key)",
            series(&pooled, "query", calls, &point, &one_row).await?,
        ),
        (
            "declared read tool, the same statement",
            series(
                &pooled,
                "film",
                calls,
                &|i| json!({"id": film_id(i)}),
                &one_row,
            )
            .await?,
        ),
        (
            "declared read tool, the same statement, in a 200-tool file",
            series(
                &pooled,
                "film_100",
                calls,
                &|i| json!({"id": film_id(i)}),
                &one_row,
            )
            .await?,
        ),
        (
            "declared write tool (one-row UPDATE, committed)",
            series(
                &pooled,
                "keep_rate",
                calls,
                &|i| json!({"id": film_id(i)}),
                &|out| out["affected"] == 1,
            )
            .await?,
        ),
        (
            "database_health, pooled connections",
            series(&pooled, "database_health", heavy, &|_| json!({}), &|out| {
                out["findings"].is_array()
            })
            .await?,
        ),
    ];
    drop(pooled);
    let session = host(url, true).await?;
    rows.push((
        "database_health, grant with functions = hypopg_* (opens no session)",
        series(&session, "database_health", heavy, &|_| json!({}), &|out| {
            out["findings"].is_array()
        })
        .await?,
    ));
    let advice = hypopg(url).await?;
    if advice {
        rows.push((
            "index_advice (rental WHERE return_date IS NULL)",
            series(
                &session,
                "index_advice",
                heavy,
                &|_| json!({"sql": UNRETURNED}),
                &|out| out["statements"][0]["candidates"][0]["recommended"] == true,
            )
            .await?,
        ));
    }
    let mut table = Table::new(&["call", "calls", "p50 ms", "p99 ms", "calls/s"]);
    for (name, s) in &rows {
        table.row(vec![
            (*name).to_string(),
            s.len().to_string(),
            stats::ms(s.p50()),
            stats::ms(s.p99()),
            format!("{:.0}", s.per_second()),
        ]);
    }
    println!("## 9. Declared tools and sql-insight\n");
    println!(
        "In-process tool calls, one at a time, through the registry as a client's \
         call goes. The declared tools are `[plugins.tools]` entries served by \
         sql-tools.{}\n",
        if advice {
            ""
        } else {
            " index_advice is left out: the server has no hypopg."
        }
    );
    table.print();
    Ok(())
}
