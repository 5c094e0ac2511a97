//! sluice's benchmark suite: `cargo bench`. After `--`, `--quick` makes
//! every measurement shorter and `--only SECTION` (overhead, instantiation,
//! startup, http, peers, roundtrips, replicas; repeatable) runs just those. It runs against a real PostgreSQL loaded with Pagila and prints
//! Markdown tables; BENCHMARKS.md holds a run's numbers and what they mean.
//!
//! The database is `SLUICE_BENCH_DATABASE_URL` (Pagila is loaded into it
//! when it is empty, and pgbench's tables beside it), else a throwaway one
//! made the way the e2e tests make theirs: from `SLUICE_TEST_DATABASE_URL`,
//! or on a private cluster. Progress goes to stderr, tables to stdout.
//!
//! Sections: 1 plugin overhead, 2 instantiation and compilation, 3 cold
//! start, 4 HTTP throughput beside pgbench, 5 memory, 6 side by side with
//! the reference server through the same clients, 7 round trips per gated
//! read, 8 replicas behind haproxy and the cost of their shared state.

// The e2e harness (tests/support): databases, plugin paths, the stdio client.
sluice_test_support::register_paths!();

use sluice_test_support as support;

mod declared;
mod http;
mod instantiation;
mod overhead;
mod peers;
mod replicas;
mod roundtrips;
mod setup;
mod startup;
mod stats;

use anyhow::Context as _;
use instantiation::Subject;
use std::process::ExitCode;

/// Plugins generated beside the two first-party ones: 12 in all.
const GENERATED: usize = 10;

fn main() -> ExitCode {
    // Its HTTP clients share sluice's build of reqwest, which has no crypto
    // provider of its own.
    sluice::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .map(|w| w[1].clone())
        .collect();
    // The servers log as `sluice serve` does by default (stderr is discarded).
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LOG", "info") };
    }
    // In-process plugin loading logs its warnings (the servers' logs are discarded).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On a worker thread, as a server's requests are, rather than on the
    // thread that blocks on the runtime.
    let result = runtime.block_on(async move {
        tokio::spawn(async move { run(quick, &only).await })
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(quick: bool, only: &[String]) -> anyhow::Result<()> {
    let wanted = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    let db = setup::database().await?;
    let work = tempfile::Builder::new().prefix("sluice-bench-").tempdir()?;
    let plugin_dir = work.path().join("plugins");
    let cache_dir = work.path().join("cache");
    std::fs::create_dir(&plugin_dir)?;
    let generated = setup::generate_plugins(&plugin_dir, GENERATED)?;
    let config_toml = setup::config_toml(&plugin_dir, &cache_dir, &generated);
    let mut config = sluice::config::Config::parse(&config_toml, &work.path().join("bench.toml"))?;
    config.database.url = Some(db.url().to_string());
    let plugins = sluice::registry::FIRST_PARTY.len() + generated.len();

    print_machine(&db).await?;

    eprintln!("bench: loading the plugins in-process");
    let host = overhead::InProcess::start(&config).await?;
    let loaded = host.registry.plugins().count();
    anyhow::ensure!(
        loaded == plugins,
        "{loaded} plugins loaded, not {plugins} (see the log)"
    );
    if wanted("overhead") {
        eprintln!("bench: 1. plugin overhead");
        overhead::run(&host, db.url(), &config_toml, quick).await?;
    }

    if wanted("instantiation") {
        eprintln!("bench: 2. instantiation");
        instantiation::run(&host, &subjects(&plugin_dir, &generated), quick).await?;
    }
    drop(host);

    if wanted("startup") {
        eprintln!("bench: 3. cold start");
        startup::run(db.url(), &plugin_dir, &generated, plugins, quick).await?;
    }

    if wanted("http") {
        eprintln!("bench: 4. HTTP throughput, 5. memory");
        http::run(db.url(), &config_toml, plugins, quick).await?;
    }

    if wanted("peers") {
        eprintln!("bench: 6. side by side with the reference server");
        peers::run(db.url(), quick).await?;
    }

    if wanted("roundtrips") {
        eprintln!("bench: 7. round trips per gated read");
        roundtrips::run(db.url(), quick).await?;
    }

    if wanted("replicas") {
        eprintln!("bench: 8. replicas behind haproxy");
        replicas::run(db.url(), &config_toml, quick).await?;
    }

    if wanted("declared") {
        eprintln!("bench: 9. declared tools and sql-insight");
        declared::run(db.url(), quick).await?;
    }
    Ok(())
}

/// The plugins section 2 measures: the first-party ones, hello (no
/// database at all) and one generated plugin.
fn subjects(plugin_dir: &std::path::Path, generated: &[String]) -> [Subject; 4] {
    [
        Subject {
            name: "sql-read".into(),
            wasm: support::plugin_wasm("sql-read"),
            call: Some(("query".into(), instantiation::point_query)),
        },
        Subject {
            name: "sql-write".into(),
            wasm: support::plugin_wasm("sql-write"),
            call: None,
        },
        Subject {
            name: "hello".into(),
            wasm: support::plugin_wasm("hello"),
            call: Some(("hello".into(), instantiation::hello)),
        },
        Subject {
            name: generated[0].clone(),
            wasm: plugin_dir.join(format!("{}.wasm", generated[0])),
            call: Some((
                format!("{}_film", generated[0].replace('-', "_")),
                instantiation::film,
            )),
        },
    ]
}

/// The machine, the software and the data, as the table's header.
async fn print_machine(db: &setup::BenchDb) -> anyhow::Result<()> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
        .await
        .context("connecting to the database")?;
    let server: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    let films: i64 = sqlx::query_scalar("SELECT count(*) FROM film")
        .fetch_one(&mut conn)
        .await?;
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payment")
        .fetch_one(&mut conn)
        .await?;
    println!("# sluice benchmarks\n");
    println!("- CPU: {cpu}, {cores} cores; memory {memory}; Linux {kernel}");
    println!("- PostgreSQL {server} on the same machine, over TCP loopback");
    println!(
        "- Data: Pagila ({films} films, {payments} payments), {}",
        db.describe()
    );
    println!("- sluice: {rustc}, the bench profile (release); sluice's default settings\n");
    Ok(())
}
