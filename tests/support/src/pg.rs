//! Private clusters for the connection and outage tests, and a `sluice
//! serve` child whose database settings are only what a test gives it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::ServiceExt as _;
use rmcp::transport::TokioChildProcess;
use sluice::pgcluster::{ClusterError, ClusterSetup, PgCluster};
use sqlx::Connection as _;

use crate::{REQUEST_TIMEOUT, Recorder, Server, ServerLog, config_file, sluice_bin};

/// Starts a private cluster with `setup`, or prints why none can run here
/// and returns `None` (the test then skips).
pub async fn private_cluster(setup: &ClusterSetup) -> Option<PgCluster> {
    match PgCluster::start_configured(setup).await {
        Ok(cluster) => Some(cluster),
        Err(error @ (ClusterError::NotInstalled | ClusterError::NoPostgresUser)) => {
            eprintln!("skipped: {error}");
            None
        }
        Err(error) => panic!("cannot start a private cluster: {error}"),
    }
}

/// Creates `name` on `cluster` with the demo schema in it.
pub async fn demo_database(cluster: &PgCluster, name: &str) {
    cluster
        .create_database(name)
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    let mut conn = sqlx::PgConnection::connect(&cluster.url(name))
        .await
        .unwrap_or_else(|e| panic!("connecting to {name}: {e}"));
    sqlx::raw_sql(sluice::demo::SCHEMA_SQL)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("loading the demo schema into {name}: {e}"));
    let _ = conn.close().await;
}

/// Every variable through which this process's environment could choose a
/// database for the child (libpq's and sluice's own).
pub const DATABASE_VARS: &[&str] = &[
    "DATABASE_URL",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGAPPNAME",
    "PGOPTIONS",
    "PGCONNECT_TIMEOUT",
    "PGREQUIRESSL",
];

/// A `sluice serve` (stdio) command to be started: the database comes only
/// from what the test adds, `HOME` and the working directory are `home`
/// (so `~/.pgpass`, `~/.postgresql` and `.env` are the test's), and the
/// compiled-plugin cache stays where it would be, so nothing recompiles.
pub struct Sluice {
    command: tokio::process::Command,
    config: tempfile::NamedTempFile,
}

impl Sluice {
    /// `sluice serve --config <config_toml>` at home `home`.
    pub fn serve(config_toml: &str, home: &Path) -> Sluice {
        let config = config_file(config_toml);
        let mut command = tokio::process::Command::new(sluice_bin());
        command
            .arg("serve")
            .arg("--config")
            .arg(config.path())
            .current_dir(home)
            .env("HOME", home)
            .kill_on_drop(true);
        for name in DATABASE_VARS {
            command.env_remove(name);
        }
        if let Some(cache) = cache_dir() {
            command.env("SLUICE_CACHE_DIR", cache);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info,sluice=debug");
        }
        Sluice { command, config }
    }

    /// Adds `--database-url url`.
    pub fn database_url(mut self, url: &str) -> Sluice {
        self.command.arg("--database-url").arg(url);
        self
    }

    /// Adds `--http addr`: the HTTP transport instead of stdio (for a
    /// start meant to fail: [`Sluice::run_to_exit`]).
    pub fn http(mut self, addr: &str) -> Sluice {
        self.command.arg("--http").arg(addr);
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Sluice {
        self.command.env(name, value);
        self
    }

    /// Starts it and initializes an MCP session; its log is kept (and
    /// echoed to stderr).
    pub async fn start(self) -> (Server, ServerLog) {
        use tokio::io::{AsyncBufReadExt as _, BufReader};
        let (transport, stderr) = TokioChildProcess::builder(self.command)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning sluice");
        let log = ServerLog::default();
        if let Some(stderr) = stderr {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("{line}");
                    log.push(line);
                }
            });
        }
        let client =
            match tokio::time::timeout(REQUEST_TIMEOUT, Recorder::default().serve(transport)).await
            {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => {
                    // Let the reader catch the last lines of why it stopped.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    panic!(
                        "MCP initialization with sluice failed: {e}; its log:\n{}",
                        log.lines_with("").join("\n")
                    )
                }
                Err(_) => panic!("sluice did not initialize in time"),
            };
        let server = Server {
            client,
            _config: self.config,
        };
        (server, log)
    }

    /// Runs it with no input, expecting it to stop by itself (a startup
    /// failure): its exit status, its log, and how long it ran.
    pub async fn run_to_exit(mut self) -> (std::process::ExitStatus, String, Duration) {
        let started = Instant::now();
        let output = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output(),
        )
        .await
        .expect("sluice did not exit in time")
        .expect("running sluice");
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        eprintln!("{log}");
        (output.status, log, started.elapsed())
    }
}

/// Where this process's sluice would keep compiled plugins.
fn cache_dir() -> Option<PathBuf> {
    let set = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("SLUICE_CACHE_DIR") {
        return Some(dir.into());
    }
    if let Some(dir) = set("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("sluice"));
    }
    set("HOME").map(|home| PathBuf::from(home).join(".cache/sluice"))
}

/// The OS user this process runs as, which `sluice` children run as too.
pub fn os_user() -> Option<String> {
    whoami::username().ok().filter(|u| !u.is_empty())
}
