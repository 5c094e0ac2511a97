//! `sluice demo`: a private PostgreSQL with a small sample database, served
//! over stdio, and stopped when the client goes away.

use crate::config::{Config, GrantConfig};
use crate::pgcluster::PgCluster;
use anyhow::Context as _;

/// The sample schema and data sluice ships (a small bookshop).
pub const SCHEMA_SQL: &str = include_str!("../demo/schema.sql");

/// The demo database's name.
pub const DATABASE: &str = "sluice_demo";

/// Loads the sample schema into the (empty) database at `url`.
pub async fn load_sample(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(SCHEMA_SQL).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Runs the demo until the client disconnects or a signal arrives.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let cluster = PgCluster::start()
        .await
        .context("cannot start a private PostgreSQL (install PostgreSQL, or run `sluice serve --database-url …` against your own)")?;
    let result = async {
        cluster.create_database(DATABASE).await?;
        let url = cluster.url(DATABASE);
        load_sample(&url)
            .await
            .context("loading the sample schema")?;
        config.database.url = Some(url);
        // The sample data is disposable, so the demo lets the write plugin
        // write to it unless the operator's config says otherwise (and not
        // at all without the first-party plugins: a grant for a plugin
        // that is not loaded would stop the start).
        if config.plugins.first_party {
            config
                .plugins
                .grants
                .entry("sql-write".into())
                .or_insert_with(|| GrantConfig {
                    write: Some(vec!["public.*".into()]),
                    ..GrantConfig::default()
                });
        }
        tracing::info!("demo database ready on port {}", cluster.port());
        let serving = crate::app::start(&config).await?;
        serving.serve_stdio(&config).await
    }
    .await;
    if let Err(e) = cluster.stop().await {
        tracing::warn!("stopping the private PostgreSQL: {e}");
    }
    result
}
