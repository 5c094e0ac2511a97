//! What every section runs against: the Pagila database (with pgbench's
//! tables beside it), the generated plugins and the configuration.

use crate::support;
use anyhow::{Context as _, bail};
use sqlx::{Connection as _, PgConnection};
use std::path::{Path, PathBuf};

/// Names a database to benchmark against instead of a throwaway one.
pub const DATABASE_URL_ENV: &str = "SLUICE_BENCH_DATABASE_URL";

/// The database under benchmark.
pub enum BenchDb {
    /// The operator's, from [`DATABASE_URL_ENV`]; kept afterwards.
    Given(String),
    /// Created for this run and dropped after it.
    Throwaway(support::TestDb),
}

impl BenchDb {
    pub fn url(&self) -> &str {
        match self {
            BenchDb::Given(url) => url,
            BenchDb::Throwaway(db) => &db.url,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            BenchDb::Given(url) => {
                format!("{} ({DATABASE_URL_ENV})", sluice::db::conninfo::redact(url))
            }
            BenchDb::Throwaway(db) => format!("throwaway database {}", db.name),
        }
    }
}

/// The database: the given one (loading Pagila when it is empty) or a
/// throwaway one loaded with Pagila; either way with pgbench's tables.
pub async fn database() -> anyhow::Result<BenchDb> {
    let db = match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => BenchDb::Given(url),
        _ => BenchDb::Throwaway(support::empty_db().await),
    };
    let mut conn = connect(db.url()).await?;
    ensure_pagila(&mut conn, db.url()).await?;
    ensure_pgbench_tables(&mut conn, db.url()).await?;
    Ok(db)
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {}", sluice::db::conninfo::redact(url)))
}

async fn exists(conn: &mut PgConnection, relation: &str) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT pg_catalog.to_regclass($1) IS NOT NULL")
            .bind(relation)
            .fetch_one(conn)
            .await?,
    )
}

/// Loads Pagila unless `public.film` is there; refuses a database that has
/// other tables but no Pagila rather than write into it.
async fn ensure_pagila(conn: &mut PgConnection, url: &str) -> anyhow::Result<()> {
    if exists(conn, "public.film").await? {
        return Ok(());
    }
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg_toast%'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if tables > 0 {
        bail!(
            "{} has {tables} tables but no Pagila (public.film); give an empty database or one loaded with Pagila",
            sluice::db::conninfo::redact(url)
        );
    }
    let dir = support::pagila_dir().map_err(anyhow::Error::msg)?;
    eprintln!("bench: loading Pagila from {}", dir.display());
    for file in ["pagila-schema.sql", "pagila-data.sql"] {
        let text = std::fs::read_to_string(dir.join(file))
            .with_context(|| format!("reading {}", dir.join(file).display()))?;
        support::load_dump(conn, &text)
            .await
            .with_context(|| format!("loading {file}"))?;
    }
    sqlx::raw_sql("ANALYZE").execute(&mut *conn).await?;
    Ok(())
}

/// `pgbench -i` (scale 1) unless its tables are there.
async fn ensure_pgbench_tables(conn: &mut PgConnection, url: &str) -> anyhow::Result<()> {
    if exists(conn, "public.pgbench_accounts").await? {
        return Ok(());
    }
    eprintln!("bench: creating pgbench's tables (pgbench -i -s 1)");
    let out = std::process::Command::new(pgbench()?)
        .args(["-i", "-s", "1", "-q"])
        .arg(url)
        .output()
        .context("running pgbench -i")?;
    if !out.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The `pgbench` of the PostgreSQL installation.
pub fn pgbench() -> anyhow::Result<PathBuf> {
    sluice::pgcluster::find_program("pgbench")
        .context("pgbench not found (install PostgreSQL's client programs)")
}

/// The generated plugins' slot, as compiled into the template plugin.
const SLOT: &[u8] = b"sluice-bench-00";

/// Writes `count` distinct plugins into `dir`, made from the template
/// `bench-generated` by rewriting its name slot, and returns their names.
pub fn generate_plugins(dir: &Path, count: usize) -> anyhow::Result<Vec<String>> {
    let template_path = support::plugin_wasm("bench-generated");
    let template = std::fs::read(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let at: Vec<usize> = template
        .windows(SLOT.len())
        .enumerate()
        .filter(|(_, w)| *w == SLOT)
        .map(|(i, _)| i)
        .collect();
    let [at] = at[..] else {
        bail!(
            "the template plugin holds its name slot {} times, not once",
            at.len()
        );
    };
    (1..=count)
        .map(|n| {
            let name = format!("sluice-bench-{n:02}");
            let mut bytes = template.clone();
            bytes[at..at + SLOT.len()].copy_from_slice(name.as_bytes());
            std::fs::write(dir.join(format!("{name}.wasm")), bytes)?;
            Ok(name)
        })
        .collect()
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The configuration every server of the run shares: grants for the
/// first-party and the generated plugins (sql-write would otherwise be idle
/// and not served; the bench never calls it), and the compiled cache in
/// `cache_dir`.
pub fn config_toml(plugin_dir: &Path, cache_dir: &Path, generated: &[String]) -> String {
    let mut toml = format!(
        "[plugins]\ndir = {}\n\n[plugins.cache]\ndir = {}\n\n\
         [plugins.grants.sql-read]\nread = [\"public.*\"]\ncatalog = true\n\n\
         [plugins.grants.sql-write]\nwrite = [\"public.*\"]\n\n\
         [plugins.grants.sql-insight]\nread = [\"pg_catalog.*\", \"public.*\"]\n",
        quoted(&plugin_dir.display().to_string()),
        quoted(&cache_dir.display().to_string()),
    );
    for name in generated {
        toml.push_str(&format!(
            "\n[plugins.grants.{name}]\nread = [\"public.*\"]\n"
        ));
    }
    toml
}
