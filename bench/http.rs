//! Sections 4 and 5: Streamable HTTP throughput of the point query at 1, 8
//! and 32 concurrent clients beside `pgbench -S` on the same database, and
//! the server's memory idle and under that load.

use crate::overhead::POINT;
use crate::stats::{self, Samples, Table};
use crate::support;
use anyhow::{Context as _, bail};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The server's resident memory, in KiB: now (`VmRSS`) and at its peak (`VmHWM`).
fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The bench's key needs a rate limit the load cannot reach.
pub const UNLIMITED: &str = "per_minute = 4000000000\nburst = 1000000\n";

/// A stateless (2026-07-28) `tools/call` of sql-read's `query`: one request,
/// no session, as a load balancer would spread them.
fn point_request(i: usize) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
        "name": "query", "arguments": POINT.arguments(i), "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "sluice-bench", "version": "1"}}}});
    body.to_string().into_bytes()
}

/// `clients` workers, each with its own connection to `base` (with `key`),
/// calling back to back for `duration` after `warmup`. Returns the
/// latencies of the calls that succeeded and how many failed.
pub async fn load(
    base: &str,
    key: &str,
    clients: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<(Samples, u64)> {
    let errors = Arc::new(AtomicU64::new(0));
    let begin = Instant::now() + warmup;
    let end = begin + duration;
    let mut workers = Vec::new();
    for worker in 0..clients {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let (endpoint, key, errors) = (format!("{base}/mcp"), key.to_string(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker * 100_000;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                i += 1;
                let response = client
                    .post(&endpoint)
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", "query")
                    .body(point_request(i))
                    .send()
                    .await;
                let ok = match response {
                    Ok(r) if r.status() == 200 => r
                        .text()
                        .await
                        .is_ok_and(|body| body.contains(r#""row_count":1"#)),
                    _ => false,
                };
                if t < begin {
                    continue;
                }
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await?);
    }
    Ok((Samples::new(all, duration), errors.load(Ordering::Relaxed)))
}

/// `pgbench -S` (select-only, its default simple protocol) TPS.
async fn pgbench(url: &str, clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let out = tokio::process::Command::new(crate::setup::pgbench()?)
        .args(["-n", "-S"])
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &duration.as_secs().to_string()])
        .arg(url)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench -S failed: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .with_context(|| format!("no tps in pgbench's output: {stdout}"))
}

pub async fn run(url: &str, config_toml: &str, plugins: usize, quick: bool) -> anyhow::Result<()> {
    let mut server = support::spawn_http(url, config_toml, UNLIMITED, false).await;
    let pid = server.child.id().context("the server has no pid")?;
    let (warmup, duration) = if quick {
        (Duration::from_millis(500), Duration::from_secs(3))
    } else {
        (Duration::from_secs(1), Duration::from_secs(10))
    };

    // Idle: started, and one call made so the pool and caches exist.
    load(
        &server.base,
        &server.key,
        1,
        Duration::ZERO,
        Duration::from_millis(200),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle, _) = rss_kib(pid)?;

    let mut table = Table::new(&[
        "clients",
        "sluice calls/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "pgbench -S TPS",
        "sluice ÷ pgbench",
    ]);
    // Sampled every 100 ms while 32 clients load the server.
    let peak = Arc::new(AtomicU64::new(0));
    for clients in [1, 8, 32] {
        let sampler = (clients == 32).then(|| {
            let peak = peak.clone();
            tokio::spawn(async move {
                while let Ok((now, _)) = rss_kib(pid) {
                    peak.fetch_max(now, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        let result = load(&server.base, &server.key, clients, warmup, duration).await;
        if let Some(sampler) = sampler {
            sampler.abort();
        }
        let (samples, errors) = result?;
        let tps = pgbench(url, clients, duration).await?;
        table.row(vec![
            clients.to_string(),
            format!("{:.0}", samples.per_second()),
            stats::ms(samples.p50()),
            stats::ms(samples.p99()),
            errors.to_string(),
            format!("{tps:.0}"),
            format!("{:.2}", samples.per_second() / tps),
        ]);
    }
    let (after, hwm) = rss_kib(pid)?;
    server.child.kill().await?;

    println!("## 4. HTTP throughput\n");
    println!(
        "Stateless Streamable HTTP `tools/call` of sql-read's `query` with the point query \
         (a bearer key, one connection per client, {}s after {}s of warm-up), then \
         `pgbench -S -c N -j min(N,2) -T {}` on the same database. Load generator, sluice, \
         pgbench and PostgreSQL share the machine.\n",
        duration.as_secs(),
        warmup.as_secs_f64(),
        duration.as_secs()
    );
    table.print();

    let mut memory = Table::new(&["sluice serve --http", "RSS MiB"]);
    memory.row(vec![format!("idle, {plugins} plugins loaded"), mib(idle)]);
    memory.row(vec![
        "under load, 32 clients (sampled peak)".into(),
        mib(peak.load(Ordering::Relaxed)),
    ]);
    memory.row(vec!["after the load".into(), mib(after)]);
    memory.row(vec!["peak over the whole run (VmHWM)".into(), mib(hwm)]);
    println!("## 5. Memory\n");
    memory.print();
    Ok(())
}
