//! Section 2: what a fresh sandbox per call costs, and what the compiled
//! cache saves at load, per plugin.

use crate::overhead::{InProcess, POINT, film_id};
use crate::stats::{self, Samples, Table};
use anyhow::{Context as _, ensure};
use serde_json::{Value as Json, json};
use sluice::policy::Grant;
use sluice::runtime::{CompiledCache, Origin};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Component;

/// Arguments of a tool's `i`-th call.
pub type Arguments = fn(usize) -> Json;

/// A plugin to measure, and a representative call of one of its tools.
pub struct Subject {
    pub name: String,
    pub wasm: PathBuf,
    /// Tool name and arguments for call `i`; none for a plugin whose tools
    /// need a grant the bench does not give (sql-write). Tools are called
    /// on the plugin itself, past the registry's name lookup.
    pub call: Option<(String, Arguments)>,
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort_unstable();
    d[d.len() / 2]
}

/// sql-read's point query, as in section 1.
pub fn point_query(i: usize) -> Json {
    POINT.arguments(i)
}

/// hello's only tool: no database at all.
pub fn hello(_: usize) -> Json {
    json!({"name": "bench"})
}

/// A generated plugin's film lookup.
pub fn film(i: usize) -> Json {
    json!({"film_id": film_id(i)})
}

pub async fn run(host: &InProcess, subjects: &[Subject], quick: bool) -> anyhow::Result<()> {
    let n = if quick { 200 } else { 1000 };
    let engine = host.runtime.engine();
    let mut table = Table::new(&[
        "plugin",
        "wasm KiB",
        "compile ms",
        "cache load ms",
        "instantiate p50 µs",
        "instantiate p99 µs",
        "call",
        "call p50 µs",
        "instantiate ÷ call",
    ]);
    for subject in subjects {
        let wasm = std::fs::read(&subject.wasm)
            .with_context(|| format!("reading {}", subject.wasm.display()))?;

        let compiles = (0..3)
            .map(|_| {
                let t = Instant::now();
                Component::new(engine, &wasm).map(|_| t.elapsed())
            })
            .collect::<wasmtime::Result<Vec<_>>>()?;
        let cache_dir = tempfile::tempdir()?;
        let cache = CompiledCache::open(cache_dir.path(), u64::MAX)?;
        let (_, origin) = cache.load_or_compile(engine, &wasm)?;
        ensure!(origin == Origin::CacheMiss, "a fresh cache had {origin:?}");
        let loads = (0..10)
            .map(|_| {
                let t = Instant::now();
                let (_, origin) = cache.load_or_compile(engine, &wasm)?;
                ensure!(origin == Origin::CacheHit, "a warm cache had {origin:?}");
                Ok(t.elapsed())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        let plugin = match host.plugin(&subject.name) {
            Ok(plugin) => plugin.clone(),
            // Not served by the bench's servers (hello): loaded on its own,
            // with no grant, as the registry would load it.
            Err(_) => {
                let described = host
                    .runtime
                    .load(
                        &subject.name,
                        wasm.clone(),
                        &host.limits,
                        Default::default(),
                    )
                    .await?;
                Arc::new(host.runtime.activate(
                    described,
                    Grant::nothing(host.limits),
                    BTreeMap::new(),
                ))
            }
        };
        for _ in 0..n / 10 {
            plugin.instantiate().await?;
        }
        let mut inst = Vec::with_capacity(n);
        let started = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            plugin.instantiate().await?;
            inst.push(t.elapsed());
        }
        let inst = Samples::new(inst, started.elapsed());

        let local = std::sync::Arc::new(sluice::principal::Principal::local());
        let (call_name, call_p50) = match &subject.call {
            Some((tool, args)) => {
                let mut calls = Vec::with_capacity(n);
                let started = Instant::now();
                for i in 0..n + n / 10 {
                    let t = Instant::now();
                    let out = plugin.call_tool(tool, args(i).to_string(), &local).await?;
                    ensure!(!out.is_error, "{tool} reported an error: {:?}", out.content);
                    // The first tenth warms up.
                    if i >= n / 10 {
                        calls.push(t.elapsed());
                    }
                }
                let calls = Samples::new(calls, started.elapsed());
                (tool.clone(), Some(calls.p50()))
            }
            None => ("–".to_string(), None),
        };
        table.row(vec![
            subject.name.clone(),
            format!("{}", wasm.len() / 1024),
            stats::ms(median(compiles)),
            stats::ms(median(loads)),
            stats::us(inst.p50()),
            stats::us(inst.p99()),
            call_name,
            call_p50.map(stats::us).unwrap_or_else(|| "–".into()),
            call_p50
                .map(|c| {
                    format!(
                        "{:.0} %",
                        inst.p50().as_secs_f64() / c.as_secs_f64() * 100.0
                    )
                })
                .unwrap_or_else(|| "–".into()),
        ]);
    }
    println!("## 2. Instantiation and compilation\n");
    println!(
        "Every call runs in a fresh store and instance. \"instantiate\" is that setup alone \
         (WASI context, store, limits, instance), measured {n} times; \"call\" is a whole tool \
         call including it. \"compile\" is Cranelift from the .wasm (median of 3); \"cache \
         load\" is a hit in the compiled cache: hashing the .wasm and mapping the compiled \
         entry (median of 10).\n"
    );
    table.print();
    Ok(())
}
