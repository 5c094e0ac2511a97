//! Wiring: from a [`Config`] to a ready plugin registry.

use crate::audit::AuditLog;
use crate::config::Config;
use crate::db::{Database, PoolSettings};
use crate::gate::Gate;
use crate::registry::{self, LiveRegistry, Loader};
use crate::runtime::{CompiledCache, Runtime};
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;

/// What serves: the live registry, and the watcher that reloads it while
/// it is kept.
pub struct Serving {
    pub host: Arc<LiveRegistry>,
    /// The pool, for readiness checks.
    pub db: Arc<Database>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Serving {
    /// Serves MCP over stdio until the client goes or a signal arrives, then
    /// stops what calls left running (see [`Serving::stop`]).
    pub async fn serve_stdio(&self, config: &Config) -> anyhow::Result<()> {
        let settings = crate::mcp::StdioSettings {
            limits: config.mcp.frame_limits(),
            shutdown_grace: Duration::from_millis(config.mcp.shutdown_grace_ms),
        };
        let served = crate::mcp::serve_stdio(self.host.clone(), settings).await;
        self.stop().await;
        served.map(|_| ())
    }

    /// Cancels the statements still running for calls that were abandoned
    /// at shutdown, so that none runs on in the server after sluice exits.
    pub async fn stop(&self) {
        match tokio::time::timeout(STOP_LIMIT, self.db.cancel_running()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(statements = n, "cancelled statements of abandoned calls"),
            Ok(Err(e)) => tracing::warn!("cannot cancel the statements of abandoned calls: {e}"),
            Err(_) => tracing::warn!("cancelling the statements of abandoned calls timed out"),
        }
    }
}

/// The longest [`Serving::stop`] waits for the database.
const STOP_LIMIT: Duration = Duration::from_secs(2);

/// The host's pieces, connected and loaded: what [`start`] serves, and what
/// the bench measures in-process.
pub struct Assembled {
    pub db: Arc<Database>,
    pub gate: Arc<Gate>,
    pub runtime: Arc<Runtime>,
    /// Every plugin loaded; [`Loader::registry`] gives what serves.
    pub loader: Loader,
}

/// Connects to the database, starts the runtime and loads every plugin.
pub async fn assemble(config: &Config) -> anyhow::Result<Assembled> {
    let (db, gate, runtime) = connect(config).await?;
    let loader = Loader::new(runtime.clone(), config).await?;
    Ok(Assembled {
        db,
        gate,
        runtime,
        loader,
    })
}

/// The database pool, the gate and the wasm runtime, without plugins.
async fn connect(config: &Config) -> anyhow::Result<(Arc<Database>, Arc<Gate>, Arc<Runtime>)> {
    let url = config.database_url()?;
    let settings = PoolSettings {
        min_connections: config.database.min_connections,
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_secs(config.database.acquire_timeout_s),
    };
    let db = Database::connect(url, &settings).await.with_context(|| {
        if url.trim().is_empty() {
            "cannot connect to the database the PG* environment variables name".to_string()
        } else {
            format!(
                "cannot connect to the database at {}",
                crate::db::conninfo::redact(url)
            )
        }
    })?;
    let audit = match &config.audit.file {
        Some(path) => AuditLog::to_file(path)
            .with_context(|| format!("cannot open the audit file {}", path.display()))?,
        None => AuditLog::log_only(),
    };
    let db = Arc::new(db);
    let gate = Arc::new(
        Gate::new(db.clone(), audit, statement_limits(config))
            .context("cannot start the SQL analysis threads")?,
    );
    let runtime = Arc::new(
        Runtime::new(gate.clone(), compiled_cache(config))
            .context("cannot start the wasm runtime")?,
    );
    Ok((db, gate, runtime))
}

/// Connects, loads the plugins that are ready and watches the plugin
/// directory. Plugins that need a compile first (a large one takes many
/// seconds) are compiled in the background and added when they are ready,
/// with `list_changed`, so that clients are answered at once.
pub async fn start(config: &Config) -> anyhow::Result<Serving> {
    let (db, _, runtime) = connect(config).await?;
    let (loader, compiling) = Loader::new_ready(runtime, config).await?;
    // A grant or scope for a plugin that is not there never applies: refuse
    // to start rather than serve without the operator's restriction. While
    // plugins are still compiling, their names are not known yet: the check
    // waits for them (see `registry::watch`).
    let names = loader.check_config_names();
    if !compiling {
        names.log_awaited();
        names.into_result()?;
    }
    let (registry, _) = loader.registry();
    let served: Vec<&str> = registry.plugins().map(|p| p.name()).collect();
    if compiling {
        tracing::info!(
            plugins = served.len(),
            "sluice ready, more plugins compiling: {}",
            served.join(", ")
        );
    } else {
        tracing::info!(
            plugins = served.len(),
            "sluice ready: {}",
            served.join(", ")
        );
    }
    check_roles(config, &db).await;
    let host = Arc::new(LiveRegistry::new(registry));
    let watcher = registry::watch(host.clone(), loader, compiling)
        .context("cannot watch the plugin directory")?;
    Ok(Serving {
        host,
        db,
        _watcher: watcher,
    })
}

/// Warns about each database role the config names (a plugin's, an API
/// key's, an OAuth rule's) that the login role cannot take: calls that need
/// it would fail with PostgreSQL's permission error. Not fatal, as the
/// database may be set up after sluice starts, but said at once.
async fn check_roles(config: &Config, db: &Database) {
    let mut named: Vec<(String, String)> = Vec::new();
    for (plugin, grant) in &config.plugins.grants {
        if let Some(role) = &grant.role {
            named.push((role.clone(), format!("[plugins.grants.{plugin}] role")));
        }
    }
    for key in &config.http.auth.keys {
        if let Some(role) = &key.role {
            named.push((
                role.clone(),
                format!("[[http.auth.keys]] {:?} role", key.id),
            ));
        }
    }
    let rules = config.http.oauth.iter().flat_map(|o| o.rules.iter());
    for (i, rule) in rules.enumerate() {
        if let Some(role) = &rule.role {
            named.push((
                role.clone(),
                format!("[[http.oauth.rules]] #{} role", i + 1),
            ));
        }
    }
    if named.is_empty() {
        return;
    }
    let roles: Vec<String> = named.iter().map(|(r, _)| r.clone()).collect();
    // A database that does not answer at once is the outage handling's to
    // report; the start does not wait for it here.
    match tokio::time::timeout(Duration::from_secs(2), db.unusable_roles(&roles)).await {
        Ok(Ok(unusable)) => {
            for (role, why) in unusable {
                for (_, place) in named.iter().filter(|(r, _)| *r == role) {
                    tracing::warn!(
                        "{place} {role:?} cannot be used: {why}; the calls that run as it \
                         will fail until it can (GRANT {role} TO the login role)"
                    );
                }
            }
        }
        Ok(Err(e)) => tracing::debug!("cannot check the configured roles now: {e}"),
        Err(_) => tracing::debug!("cannot check the configured roles now: no answer"),
    }
}

/// The limits on every statement a plugin sends.
fn statement_limits(config: &Config) -> crate::policy::StatementLimits {
    crate::policy::StatementLimits {
        max_bytes: config.policy.max_statement_bytes,
        max_depth: config.policy.max_statement_depth,
    }
}

/// The compiled-plugin cache, unless disabled; one that cannot be opened
/// only costs compile time, so it is a warning.
fn compiled_cache(config: &Config) -> Option<CompiledCache> {
    let dir = config.plugins.cache.dir()?;
    let max = config.plugins.cache.max_mb.saturating_mul(1024 * 1024);
    match CompiledCache::open(&dir, max) {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "compiled cache disabled: {e}");
            None
        }
    }
}

/// What `sluice plugins list/check` reports: each plugin, and the config's
/// plugin names checked against them.
pub struct Inspection {
    pub reports: Vec<registry::LoadReport>,
    pub names: registry::NameCheck,
}

/// Loads every plugin as `serve` would, without connecting to the database,
/// and reports what each one is, asks for and gets.
pub async fn inspect(config: &Config) -> anyhow::Result<Inspection> {
    Ok(inspect_with_runtime(config).await?.0)
}

/// [`inspect`], and the runtime it loaded the plugins with.
async fn inspect_with_runtime(config: &Config) -> anyhow::Result<(Inspection, Arc<Runtime>)> {
    let db = Database::lazy(config.database.url.as_deref()).await?;
    let gate = Arc::new(
        Gate::new(Arc::new(db), AuditLog::log_only(), statement_limits(config))
            .context("cannot start the SQL analysis threads")?,
    );
    let runtime = Arc::new(
        Runtime::new(gate, compiled_cache(config)).context("cannot start the wasm runtime")?,
    );
    let loader = Loader::new(runtime.clone(), config).await?;
    let (_, reports) = loader.registry();
    let inspection = Inspection {
        reports,
        names: loader.check_config_names(),
    };
    Ok((inspection, runtime))
}

/// What [`compile`] did.
pub struct Compiled {
    /// Where the compiled plugins are.
    pub cache_dir: std::path::PathBuf,
    /// Each plugin source and whether it loaded.
    pub reports: Vec<registry::LoadReport>,
}

/// Compiles every plugin into the compiled cache (loading each as `serve`
/// would, without a database), so that the next start compiles nothing:
/// `sluice plugins compile`, for images and deploys.
pub async fn compile(config: &Config) -> anyhow::Result<Compiled> {
    let cache_dir = config.plugins.cache.dir().ok_or_else(|| {
        anyhow::anyhow!(
            "the compiled cache is disabled ([plugins.cache] enabled = false, or no home \
             directory to put it in: set [plugins.cache] dir or SLUICE_CACHE_DIR)"
        )
    })?;
    if compiled_cache(config).is_none() {
        anyhow::bail!(
            "cannot open the compiled cache at {} (see the log)",
            cache_dir.display()
        );
    }
    let (found, runtime) = inspect_with_runtime(config).await?;
    // The component of declared tools, whose files are checked against
    // the database before it is loaded: compiled whatever that check says.
    runtime
        .compile("embedded sql-tools", registry::SQL_TOOLS.to_vec())
        .await?;
    Ok(Compiled {
        cache_dir,
        reports: found.reports,
    })
}
