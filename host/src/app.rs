//! Wiring: from a [`Config`] to a ready plugin registry.

use crate::audit::AuditLog;
use crate::config::Config;
use crate::db::{Database, PoolSettings};
use crate::gate::Gate;
use crate::registry::{self, Registry};
use crate::runtime::Runtime;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;

/// Connects to the database, starts the runtime and loads every plugin.
pub async fn start(config: &Config) -> anyhow::Result<Arc<Registry>> {
    let url = config.database_url()?;
    let settings = PoolSettings {
        min_connections: config.database.min_connections,
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_secs(config.database.acquire_timeout_s),
    };
    let db = Database::connect(url, &settings).await.with_context(|| {
        format!(
            "cannot connect to the database at {} (check that PostgreSQL is running and the URL, user and password are right)",
            redact(url)
        )
    })?;
    let audit = match &config.audit.file {
        Some(path) => AuditLog::to_file(path)
            .with_context(|| format!("cannot open the audit file {}", path.display()))?,
        None => AuditLog::log_only(),
    };
    let gate = Arc::new(Gate::new(Arc::new(db), audit));
    let runtime = Runtime::new(gate).context("cannot start the wasm runtime")?;
    let registry = registry::load(&runtime, config).await?;
    tracing::info!(
        plugins = registry.plugins().len(),
        "sluice ready: {}",
        registry
            .plugins()
            .iter()
            .map(|p| p.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Arc::new(registry))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/d"),
            "postgres://u@h:5432/d"
        );
        assert_eq!(super::redact("postgres://h/d"), "postgres://h/d");
    }
}
