//! Section 8: replicas. What the shared state (`[http] shared_state =
//! "postgres"`) costs one request, measured on its own and as HTTP
//! throughput against the in-memory state, and calls/s through haproxy for
//! 1, 2 and 3 replicas sharing the database.

use crate::http::{UNLIMITED, load};
use crate::stats::{self, Samples, Table};
use crate::support;
use anyhow::Context as _;
use sluice::db::shared_state::{Admission, Quota, SharedState, Spend};
use sluice::db::{Database, PoolSettings};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Clients of every HTTP row: enough to keep two cores busy.
const CLIENTS: usize = 8;

/// The shared state's statement alone, back to back from one task: bearer
/// requests (a token taken) and signed ones (a nonce spent too).
async fn statement_cost(url: &str, calls: usize) -> anyhow::Result<(Samples, Samples)> {
    let db = Arc::new(
        Database::connect(
            url,
            &PoolSettings {
                min_connections: 0,
                max_connections: 1,
                acquire_timeout: Duration::from_secs(5),
            },
        )
        .await?,
    );
    let state = SharedState::open(db, "sluice_bench", Duration::from_secs(5)).await?;
    let quota = Quota {
        per_minute: u32::MAX,
        burst: u32::MAX,
    };
    let mut bearer = Vec::with_capacity(calls);
    let mut signed = Vec::with_capacity(calls);
    let run = std::process::id();
    let started = Instant::now();
    for i in 0..calls {
        let t = Instant::now();
        let admitted = state.admit(None, "key:bench", quota).await?;
        bearer.push(t.elapsed());
        anyhow::ensure!(admitted == Admission::Admitted, "{admitted:?}");
        let nonce = format!("bench-{run}-{i:012}");
        let t = Instant::now();
        let spend = Spend {
            key: "bench",
            nonce: &nonce,
            expires: 0,
        };
        let admitted = state.admit(Some(spend), "key:bench", quota).await?;
        signed.push(t.elapsed());
        anyhow::ensure!(admitted == Admission::Admitted, "{admitted:?}");
    }
    let wall = started.elapsed();
    state.sweep().await?;
    Ok((Samples::new(bearer, wall), Samples::new(signed, wall)))
}

fn row(table: &mut Table, setup: &str, samples: &Samples, errors: u64) {
    table.row(vec![
        setup.to_string(),
        format!("{:.0}", samples.per_second()),
        stats::ms(samples.p50()),
        stats::ms(samples.p99()),
        errors.to_string(),
    ]);
}

pub async fn run(url: &str, config_toml: &str, quick: bool) -> anyhow::Result<()> {
    let (warmup, duration, calls) = if quick {
        (Duration::from_millis(500), Duration::from_secs(3), 500)
    } else {
        (Duration::from_secs(1), Duration::from_secs(10), 3000)
    };
    let (bearer, signed) = statement_cost(url, calls).await?;
    let mut cost = Table::new(&["shared-state statement", "calls", "p50 µs", "p99 µs"]);
    for (what, samples) in [
        ("bearer request: a token taken", &bearer),
        ("signed request: a nonce spent and a token taken", &signed),
    ] {
        cost.row(vec![
            what.into(),
            samples.len().to_string(),
            stats::us(samples.p50()),
            stats::us(samples.p99()),
        ]);
    }

    let mut direct = Table::new(&[
        "one replica, direct",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "errors",
    ]);
    for state in ["memory", "postgres"] {
        let config = format!("{config_toml}\n[http]\nshared_state = \"{state}\"\n");
        let mut server = support::spawn_http(url, &config, UNLIMITED, false).await;
        let (samples, errors) = load(&server.base, &server.key, CLIENTS, warmup, duration).await?;
        server.child.kill().await?;
        row(
            &mut direct,
            &format!("shared_state = \"{state}\""),
            &samples,
            errors,
        );
    }

    let mut balanced = Table::new(&["through haproxy", "calls/s", "p50 ms", "p99 ms", "errors"]);
    let config = format!("{config_toml}\n[http]\nshared_state = \"postgres\"\n");
    for replicas in [1, 2, 3] {
        let lb = support::replicas::Balanced::start(url, &config, UNLIMITED, replicas)
            .await
            .context("haproxy is not installed (apt-get install haproxy)")?;
        let (samples, errors) = load(&lb.base, &lb.key, CLIENTS, warmup, duration).await?;
        drop(lb);
        row(
            &mut balanced,
            &format!("{replicas} replica{}", if replicas == 1 { "" } else { "s" }),
            &samples,
            errors,
        );
    }

    println!("## 8. Replicas\n");
    println!(
        "The shared state's one statement, back to back from one task ({calls} of each, \
         a connection of its own, the database on loopback):\n"
    );
    cost.print();
    println!(
        "Stateless `tools/call` of the point query as in section 4, {CLIENTS} clients, \
         {}s after {}s of warm-up: one replica with each state, then replicas sharing \
         the state behind haproxy (round robin, health-checked). Every process shares \
         the machine's cores.\n",
        duration.as_secs(),
        warmup.as_secs_f64()
    );
    direct.print();
    balanced.print();
    Ok(())
}
