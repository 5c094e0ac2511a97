//! Section 1: what the plugin boundary costs. The same two queries issued
//! (a) by the host straight through the policy gate, (b) as a call of
//! sql-read's `query` tool in-process, and (c) as that tool call from an MCP
//! client over stdio to the real binary.

use crate::stats::{self, Samples, Table};
use crate::support;
use anyhow::{Context as _, bail, ensure};
use serde_json::{Value as Json, json};
use sluice::config::Config;
use sluice::db::value::{Scalar, Value};
use sluice::gate::{Caller, Gate};
use sluice::policy::{Grant, Limits};
use sluice::principal::Principal;
use sluice::registry::Registry;
use sluice::registry::model::PluginHost;
use sluice::runtime::{Plugin, Runtime};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The local user of stdio, as the in-process paths call for it.
static LOCAL: Principal = Principal::local();
static LOCAL_CALLER: std::sync::LazyLock<std::sync::Arc<Principal>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(Principal::local()));

/// The host's pieces, wired as `sluice serve` wires them, in this process.
pub struct InProcess {
    pub gate: Arc<Gate>,
    /// The plugin-wide limits, for plugins loaded outside the registry.
    pub limits: Limits,
    pub runtime: Arc<Runtime>,
    pub registry: Registry,
}

impl InProcess {
    pub async fn start(config: &Config) -> anyhow::Result<InProcess> {
        let host = sluice::app::assemble(config).await?;
        let (registry, _) = host.loader.registry();
        Ok(InProcess {
            gate: host.gate,
            limits: config.plugin_limits(),
            runtime: host.runtime,
            registry,
        })
    }

    pub fn plugin(&self, name: &str) -> anyhow::Result<&Arc<Plugin>> {
        self.registry
            .plugins()
            .find(|p| p.name() == name)
            .with_context(|| format!("plugin {name} is not loaded"))
    }
}

/// One of the measured statements.
pub struct Workload {
    pub name: &'static str,
    pub sql: &'static str,
    /// Whether `$1` is a film id.
    takes_id: bool,
    /// Rows every answer must have.
    rows: u64,
    /// Calls per path per round.
    calls: usize,
}

pub const POINT: Workload = Workload {
    name: "point query (film by primary key)",
    sql: "SELECT film_id, title, description, release_year, rental_rate, length, rating \
          FROM film WHERE film_id = $1",
    takes_id: true,
    rows: 1,
    calls: 600,
};

const TOP_CUSTOMERS: Workload = Workload {
    name: "top 10 customers by total payment",
    sql: "SELECT c.customer_id, c.first_name, c.last_name, sum(p.amount) AS total \
          FROM customer c JOIN payment p ON p.customer_id = c.customer_id \
          GROUP BY c.customer_id ORDER BY total DESC LIMIT 10",
    takes_id: false,
    rows: 10,
    calls: 40,
};

/// The `i`-th film id of every run: spread over Pagila's 1000 films.
pub fn film_id(i: usize) -> i64 {
    (i * 7919 % 1000 + 1) as i64
}

impl Workload {
    /// sql-read `query` arguments for call `i`.
    pub fn arguments(&self, i: usize) -> Json {
        if self.takes_id {
            json!({"sql": self.sql, "params": [film_id(i)]})
        } else {
            json!({"sql": self.sql})
        }
    }

    /// Checks a `query` tool answer's structured content.
    pub fn check_answer(&self, structured: Option<&Json>) -> anyhow::Result<()> {
        let count = structured.and_then(|s| s["row_count"].as_u64());
        ensure!(
            count == Some(self.rows),
            "{}: expected {} rows, the answer was {structured:?}",
            self.name,
            self.rows
        );
        Ok(())
    }
}

/// The three ways in.
enum Path<'a> {
    /// The gate, with sql-read's grant.
    Native(&'a Gate, &'a Grant),
    Plugin(&'a InProcess),
    Stdio(&'a support::Server),
}

impl Path<'_> {
    fn label(&self) -> &'static str {
        match self {
            Path::Native(..) => "(a) host → gate",
            Path::Plugin(_) => "(b) plugin tool, in-process",
            Path::Stdio(_) => "(c) MCP client over stdio",
        }
    }

    async fn call(&self, w: &Workload, i: usize) -> anyhow::Result<()> {
        match self {
            Path::Native(gate, grant) => {
                let params = if w.takes_id {
                    vec![Value::Scalar(Scalar::Int(film_id(i)))]
                } else {
                    Vec::new()
                };
                let caller = Caller {
                    plugin: "sql-read",
                    tool: Some("query"),
                    grant,
                    principal: &LOCAL,
                };
                let rows = gate.query(caller, w.sql, &params).await?;
                ensure!(
                    rows.rows.len() as u64 == w.rows,
                    "{}: wrong row count",
                    w.name
                );
            }
            Path::Plugin(host) => {
                let Json::Object(arguments) = w.arguments(i) else {
                    bail!("arguments are an object");
                };
                let out = host
                    .registry
                    .call_tool(&LOCAL_CALLER, "query", arguments)
                    .await?;
                ensure!(!out.is_error, "{}: the tool reported an error", w.name);
                w.check_answer(out.structured.as_ref())?;
            }
            Path::Stdio(server) => {
                let out = server
                    .try_call("query", w.arguments(i))
                    .await
                    .context("tools/call")?;
                ensure!(out.is_error != Some(true), "{}: {out:?}", w.name);
                w.check_answer(out.structured_content.as_ref())?;
            }
        }
        Ok(())
    }
}

/// Calls `n` times in a row, appending each call's latency; returns the wall time.
async fn series(
    path: &Path<'_>,
    w: &Workload,
    first: usize,
    n: usize,
    out: &mut Vec<Duration>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for i in first..first + n {
        let t = Instant::now();
        path.call(w, i).await?;
        out.push(t.elapsed());
    }
    Ok(started.elapsed())
}

/// Runs section 1 and prints its table.
pub async fn run(
    host: &InProcess,
    url: &str,
    config_toml: &str,
    quick: bool,
) -> anyhow::Result<()> {
    let server = support::spawn_at(url, config_toml, None, Stdio::null()).await;
    let grant = host.plugin("sql-read")?.grant();
    let paths = [
        Path::Native(&host.gate, grant),
        Path::Plugin(host),
        Path::Stdio(&server),
    ];
    let rounds = if quick { 2 } else { 5 };

    let mut table = Table::new(&[
        "query",
        "path",
        "calls",
        "p50 ms",
        "p99 ms",
        "calls/s",
        "p50 ÷ (a)",
        "p99 ÷ (a)",
    ]);
    for w in [&POINT, &TOP_CUSTOMERS] {
        let calls = if quick { w.calls / 4 } else { w.calls };
        // Warm every path (pool connections, statement caches, page cache).
        for path in &paths {
            series(path, w, 0, calls / 10 + 1, &mut Vec::new()).await?;
        }
        // Rounds alternate the paths, so drift on the machine touches all three.
        let mut latencies = vec![Vec::new(); paths.len()];
        let mut walls = vec![Duration::ZERO; paths.len()];
        for round in 0..rounds {
            for (k, path) in paths.iter().enumerate() {
                walls[k] += series(path, w, round * calls, calls, &mut latencies[k]).await?;
            }
        }
        let samples: Vec<Samples> = latencies
            .into_iter()
            .zip(walls)
            .map(|(l, wall)| Samples::new(l, wall))
            .collect();
        let native = &samples[0];
        for (path, s) in paths.iter().zip(&samples) {
            let native_row = matches!(path, Path::Native(..));
            table.row(vec![
                w.name.to_string(),
                path.label().to_string(),
                s.len().to_string(),
                stats::ms(s.p50()),
                stats::ms(s.p99()),
                format!("{:.0}", s.per_second()),
                if native_row {
                    "1".into()
                } else {
                    stats::ratio(s.p50(), native.p50())
                },
                if native_row {
                    "1".into()
                } else {
                    stats::ratio(s.p99(), native.p99())
                },
            ]);
        }
    }
    server.shutdown().await;
    println!("## 1. Plugin overhead\n");
    println!(
        "One client, calls in sequence; {rounds} rounds alternating the paths. (a) is \
         `Gate::query` with sql-read's grant; (b) and (c) call sql-read's `query` tool \
         with the same SQL and parameter.\n"
    );
    table.print();
    Ok(())
}
