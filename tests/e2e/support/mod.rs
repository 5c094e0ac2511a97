//! The end-to-end harness: throwaway databases, a `sluice serve` child
//! process driven by an rmcp client, and helpers for assertions.
//!
//! Databases come from `SLUICE_TEST_DATABASE_URL` when it is set (an admin
//! URL whose role may `CREATE DATABASE`), otherwise from one private cluster
//! shared by every test of this binary. That cluster lives on a thread of its
//! own and is stopped when the last [`TestDb`] is dropped: statics are never
//! dropped, so a cluster kept in one would outlive the test process.

// Each test module uses a different subset of the harness.
#![allow(dead_code)]

pub mod pg;
pub mod raw;
pub mod sse;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use rmcp::{
    RoleClient, ServiceError, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResult, ContentBlock, ErrorData, GetPromptRequestParams,
        GetPromptResult, Prompt, ReadResourceRequestParams, ReadResourceResult, Resource,
        ResourceTemplate, Tool,
    },
    service::RunningService,
    transport::TokioChildProcess,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use tokio::sync::{mpsc, oneshot};

/// Names an admin URL to create test databases with, instead of a private cluster.
pub const DATABASE_URL_ENV: &str = "SLUICE_TEST_DATABASE_URL";

/// How long one MCP request may take before the test fails instead of hanging.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------

/// A database of its own for one test, loaded with the demo schema and
/// dropped (best effort) when this is dropped.
pub struct TestDb {
    /// Where the server under test should connect.
    pub url: String,
    /// The database's name.
    pub name: String,
    /// Where to connect to create and drop databases.
    admin_url: String,
    // Declared last so the database is dropped before the cluster may stop.
    _lease: ClusterLease,
}

/// Creates a fresh database loaded with [`sluice::demo::SCHEMA_SQL`].
///
/// Panics when no database can be had: every e2e test needs one.
pub async fn fresh_db() -> TestDb {
    let db = empty_db().await;
    let mut conn = connect(&db.url).await;
    sqlx::raw_sql(sluice::demo::SCHEMA_SQL)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("loading the demo schema into {}: {e}", db.name));
    let _ = conn.close().await;
    db
}

/// Where the Pagila sample database is: `SLUICE_PAGILA_DIR`, else
/// `shared/datasets/pagila` beside the checkout.
pub fn pagila_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("SLUICE_PAGILA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/pagila"),
    };
    for file in ["pagila-schema.sql", "pagila-data.sql"] {
        if !dir.join(file).is_file() {
            return Err(format!(
                "{} not found (set SLUICE_PAGILA_DIR to the directory holding the Pagila dataset)",
                dir.join(file).display()
            ));
        }
    }
    Ok(dir)
}

/// A fresh database loaded with Pagila, or why there is none (the dataset
/// is not beside the checkout).
pub async fn pagila_db() -> Result<TestDb, String> {
    let dir = pagila_dir()?;
    let db = empty_db().await;
    let mut conn = connect(&db.url).await;
    for file in ["pagila-schema.sql", "pagila-data.sql"] {
        let text =
            std::fs::read_to_string(dir.join(file)).map_err(|e| format!("reading {file}: {e}"))?;
        load_dump(&mut conn, &text)
            .await
            .unwrap_or_else(|e| panic!("loading {file} into {}: {e}", db.name));
    }
    let _ = conn.close().await;
    Ok(db)
}

/// Loads a plain-format `pg_dump` script without psql: SQL runs as simple
/// queries, `COPY … FROM stdin` blocks go through the COPY protocol.
/// `OWNER TO` lines are skipped, so the dump's roles need not exist.
pub async fn load_dump(conn: &mut PgConnection, text: &str) -> Result<(), sqlx::Error> {
    let mut sql = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("ALTER ") && line.contains(" OWNER TO ") {
            continue;
        }
        if line.starts_with("COPY ") && line.ends_with("FROM stdin;") {
            sqlx::raw_sql(AssertSqlSafe(std::mem::take(&mut sql)))
                .execute(&mut *conn)
                .await?;
            let mut data = String::new();
            for row in lines.by_ref().take_while(|l| *l != "\\.") {
                data.push_str(row);
                data.push('\n');
            }
            let mut copy = conn.copy_in_raw(line).await?;
            copy.send(data.as_bytes()).await?;
            copy.finish().await?;
            continue;
        }
        sql.push_str(line);
        sql.push('\n');
    }
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Creates a fresh, empty database.
pub async fn empty_db() -> TestDb {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "sluice_e2e_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let db = match std::env::var(DATABASE_URL_ENV) {
        Ok(admin_url) if !admin_url.trim().is_empty() => TestDb {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
            _lease: ClusterLease::external(),
        },
        _ => {
            let (lease, cluster) = ClusterLease::private();
            TestDb {
                admin_url: cluster_url(&cluster, "postgres").await,
                url: cluster_url(&cluster, &name).await,
                name,
                _lease: lease,
            }
        }
    };
    // `db` exists before the database does, so a failure below still drops it.
    let mut admin = connect(&db.admin_url).await;
    execute(
        &mut admin,
        &format!("CREATE DATABASE {}", quote_ident(&db.name)),
    )
    .await;
    let _ = admin.close().await;

    db
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        // Drop cannot await, and blocking on the test's own runtime would
        // stall it: run the statement on a runtime of its own.
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok(())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("e2e: could not drop database {}: {e}", self.name),
            Err(_) => eprintln!("e2e: dropping database {} panicked", self.name),
        }
    }
}

/// The process-wide private cluster and how many [`TestDb`]s use it.
struct Shared {
    users: usize,
    cluster: Option<ClusterThread>,
}

static SHARED: Mutex<Shared> = Mutex::new(Shared {
    users: 0,
    cluster: None,
});

/// The thread that owns the private cluster: it starts the cluster, answers
/// URL requests, and stops the cluster on [`ClusterCommand::Stop`].
///
/// A thread with its own runtime, because the cluster must outlive every
/// test's runtime (each `#[tokio::test]` has its own) yet be stopped from one.
struct ClusterThread {
    commands: mpsc::UnboundedSender<ClusterCommand>,
    thread: JoinHandle<()>,
}

enum ClusterCommand {
    /// The URL of a database of the cluster, or why the cluster is unusable.
    Url(String, oneshot::Sender<Result<String, String>>),
    Stop,
}

impl ClusterThread {
    fn start() -> Self {
        let (commands, mut inbox) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("e2e-pg-cluster".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the cluster thread's runtime");
                runtime.block_on(async {
                    let cluster = match sluice::pgcluster::PgCluster::start().await {
                        Ok(cluster) => cluster,
                        Err(e) => {
                            let error = format!("starting PostgreSQL: {e}");
                            return answer_errors(&mut inbox, &error).await;
                        }
                    };
                    while let Some(command) = inbox.recv().await {
                        match command {
                            ClusterCommand::Url(database, reply) => {
                                let _ = reply.send(Ok(cluster.url(&database)));
                            }
                            ClusterCommand::Stop => break,
                        }
                    }
                    // On failure its Drop still stops it, immediately.
                    if let Err(e) = cluster.stop().await {
                        eprintln!("e2e: stopping the private PostgreSQL: {e}");
                    }
                });
            })
            .expect("spawning the cluster thread");
        Self { commands, thread }
    }
}

/// Fails every request of a cluster that could not start.
async fn answer_errors(inbox: &mut mpsc::UnboundedReceiver<ClusterCommand>, error: &str) {
    while let Some(command) = inbox.recv().await {
        match command {
            ClusterCommand::Url(_, reply) => {
                let _ = reply.send(Err(error.to_owned()));
            }
            ClusterCommand::Stop => break,
        }
    }
}

async fn cluster_url(cluster: &mpsc::UnboundedSender<ClusterCommand>, database: &str) -> String {
    let (reply, answer) = oneshot::channel();
    cluster
        .send(ClusterCommand::Url(database.to_owned(), reply))
        .expect("the cluster thread is gone");
    match answer.await {
        Ok(Ok(url)) => url,
        Ok(Err(e)) => panic!("{e} (set {DATABASE_URL_ENV} to use an existing server)"),
        Err(_) => panic!("the cluster thread died"),
    }
}

/// One user of the private cluster (or of an external server); the last one
/// to go stops the cluster.
struct ClusterLease;

impl ClusterLease {
    fn external() -> Self {
        lock_shared().users += 1;
        Self
    }

    /// Also starts the cluster if nobody uses it.
    fn private() -> (Self, mpsc::UnboundedSender<ClusterCommand>) {
        let mut shared = lock_shared();
        shared.users += 1;
        let commands = shared
            .cluster
            .get_or_insert_with(ClusterThread::start)
            .commands
            .clone();
        (Self, commands)
    }
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        let stopping = {
            let mut shared = lock_shared();
            shared.users -= 1;
            if shared.users == 0 {
                shared.cluster.take()
            } else {
                None
            }
        };
        // Outside the lock: a test starting meanwhile gets a new cluster
        // instead of waiting for this one to stop.
        if let Some(cluster) = stopping {
            let _ = cluster.commands.send(ClusterCommand::Stop);
            if cluster.thread.join().is_err() {
                eprintln!("e2e: the cluster thread panicked while stopping");
            }
        }
    }
}

fn lock_shared() -> std::sync::MutexGuard<'static, Shared> {
    // A test that panicked while holding the lock left the counts intact.
    SHARED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `url` with its database (the path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", redact(url)))
}

async fn execute(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------

/// A running `sluice serve` child process with an initialized MCP client.
///
/// Dropping it kills the child; [`Server::shutdown`] lets it exit cleanly.
pub struct Server {
    client: RunningService<RoleClient, Recorder>,
    _config: tempfile::NamedTempFile,
}

/// The test client's handler: counts `notifications/tools/list_changed`.
#[derive(Clone)]
pub struct Recorder {
    tool_list_changes: std::sync::Arc<tokio::sync::watch::Sender<u32>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            tool_list_changes: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl rmcp::ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _: rmcp::service::NotificationContext<RoleClient>) {
        self.tool_list_changes.send_modify(|n| *n += 1);
    }
}

/// Starts `sluice serve` on `db` with `config_toml` as its configuration and,
/// when given, plugins from `plugin_dir`, and initializes an MCP session.
///
/// The child's stderr is inherited so its logs show up with a failing test;
/// `RUST_LOG` defaults to `info,sluice=debug`.
pub async fn spawn(db: &TestDb, config_toml: &str, plugin_dir: Option<&Path>) -> Server {
    spawn_at(&db.url, config_toml, plugin_dir, Stdio::inherit()).await
}

/// As [`spawn`], against the database at `url`, with the child's stderr
/// going to `stderr`.
pub async fn spawn_at(
    url: &str,
    config_toml: &str,
    plugin_dir: Option<&Path>,
    stderr: Stdio,
) -> Server {
    let (command, config) = serve_command(url, config_toml, plugin_dir, "info,sluice=debug", true);
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(stderr)
        .spawn()
        .expect("spawning sluice");
    let client = tokio::time::timeout(REQUEST_TIMEOUT, Recorder::default().serve(transport))
        .await
        .expect("sluice did not initialize in time")
        .unwrap_or_else(|e| panic!("MCP initialization with sluice failed: {e}"));
    Server {
        client,
        _config: config,
    }
}

/// `sluice serve` over stdio against `url`, with `config_toml` written to
/// the returned file (keep it while the child runs), plugins from
/// `plugin_dir`, and `RUST_LOG` at `log` unless the environment sets it.
/// With `warm`, its plugins are compiled into the cache first (see
/// [`precompile`]). The child is killed when the command's child is
/// dropped, so a test that panics does not leave it running.
pub fn serve_command(
    url: &str,
    config_toml: &str,
    plugin_dir: Option<&Path>,
    log: &str,
    warm: bool,
) -> (tokio::process::Command, tempfile::NamedTempFile) {
    let config = tempfile::Builder::new()
        .prefix("sluice-e2e-")
        .suffix(".toml")
        .tempfile()
        .expect("creating the config file");
    std::fs::write(config.path(), config_toml).expect("writing the config file");
    if warm {
        precompile(config.path(), url, plugin_dir, config_toml);
    }
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .arg("serve")
        .arg("--config")
        .arg(config.path())
        .arg("--database-url")
        .arg(url);
    if let Some(dir) = plugin_dir {
        command.arg("--plugins").arg(dir);
    }
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", log);
    }
    command.kill_on_drop(true);
    (command, config)
}

/// Fills the compiled cache for a server's plugins (`sluice plugins
/// compile`), so that the server loads them all before it answers rather
/// than adding the ones it must compile later: tests expect a plugin's
/// tools from the start. Best effort: a config a test means to fail fails
/// here too, and the server under test then says why.
fn precompile(config: &Path, url: &str, plugin_dir: Option<&Path>, config_toml: &str) {
    if plugin_dir.is_none() && !config_toml.contains("dir =") {
        return;
    }
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["plugins", "compile", "--config"])
        .arg(config)
        .arg("--database-url")
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(dir) = plugin_dir {
        command.arg("--plugins").arg(dir);
    }
    let _ = command.status();
}

/// A `sluice serve --http` child on a free loopback port, with one key.
pub struct HttpServer {
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The bearer key its configuration holds.
    pub key: String,
    _config: tempfile::NamedTempFile,
}

/// Makes a key with `sluice keys new`, exactly as an operator would: the key
/// and the `[[http.auth.keys]]` entry for the configuration.
pub fn new_key(id: &str) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["keys", "new", "--id", id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let entry = stderr[stderr
        .find("[[http.auth.keys]]")
        .expect("the entry is printed")..]
        .to_string();
    (key, entry)
}

/// Starts `sluice serve --http` against `url` with `config_toml` and a new
/// key, whose entry ends with `key_settings` (its own rate limit, say). The
/// child's log is echoed to stderr when `echo_log`, else discarded.
pub async fn spawn_http(
    url: &str,
    config_toml: &str,
    key_settings: &str,
    echo_log: bool,
) -> HttpServer {
    start_http(url, config_toml, key_settings, echo_log, false)
        .await
        .0
}

/// The log lines of a server started with [`spawn_http_logged`], as they
/// arrive.
#[derive(Clone, Default)]
pub struct ServerLog(std::sync::Arc<Mutex<Vec<String>>>);

impl ServerLog {
    /// The lines so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    fn push(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

/// As [`spawn_http`], keeping the child's log (and echoing it to stderr) so
/// a test can count what it logged.
pub async fn spawn_http_logged(
    url: &str,
    config_toml: &str,
    key_settings: &str,
) -> (HttpServer, ServerLog) {
    start_http(url, config_toml, key_settings, true, true).await
}

/// Starts the server, echoing its log when `echo_log` and keeping it when
/// `keep_log` (a long run would otherwise pile up its lines); see
/// [`spawn_http`].
async fn start_http(
    url: &str,
    config_toml: &str,
    key_settings: &str,
    echo_log: bool,
    keep_log: bool,
) -> (HttpServer, ServerLog) {
    use tokio::io::{AsyncBufReadExt as _, BufReader};
    let (key, entry) = new_key("client");
    let config = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        config.path(),
        format!("{config_toml}\n{entry}{key_settings}"),
    )
    .unwrap();
    precompile(config.path(), url, None, config_toml);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--http", "127.0.0.1:0", "--config"])
        .arg(config.path())
        .arg("--database-url")
        .arg(url)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = ServerLog::default();
    let keep = |line: String| {
        if echo_log {
            eprintln!("{line}");
        }
        if keep_log {
            log.push(line);
        }
    };
    // The log says which port was bound.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let addr = line
                .contains("serving MCP over HTTP")
                .then(|| line.split("addr=").nth(1))
                .flatten()
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string);
            keep(line);
            if let Some(addr) = addr {
                return addr;
            }
        }
        panic!("sluice exited before serving HTTP");
    })
    .await
    .expect("sluice did not start serving HTTP in time");
    // Keep reading the log: a full pipe would stall the server.
    let rest = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if echo_log {
                eprintln!("{line}");
            }
            if keep_log {
                rest.push(line);
            }
        }
    });
    let server = HttpServer {
        child,
        base: format!("http://{addr}"),
        key,
        _config: config,
    };
    (server, log)
}

/// Bounds a request so a wedged server fails the test instead of hanging it.
async fn timed<T>(what: &str, request: impl Future<Output = T>) -> T {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {REQUEST_TIMEOUT:?}"))
}

impl Server {
    /// How many `tools/list_changed` notifications arrived so far.
    pub fn tool_list_changes(&self) -> u32 {
        *self.client.service().tool_list_changes.borrow()
    }

    /// Waits until more than `seen` `tools/list_changed` notifications
    /// arrived; panics after [`REQUEST_TIMEOUT`].
    pub async fn wait_tool_list_changed(&self, seen: u32) -> u32 {
        let mut rx = self.client.service().tool_list_changes.subscribe();
        timed(
            "notifications/tools/list_changed",
            rx.wait_for(|n| *n > seen),
        )
        .await
        .map(|n| *n)
        .expect("the recorder outlives the client")
    }

    /// Every tool the server lists.
    pub async fn list_tools(&self) -> Vec<Tool> {
        timed("tools/list", self.client.list_all_tools())
            .await
            .unwrap_or_else(|e| panic!("tools/list: {e}"))
    }

    /// Calls a tool; `args` must be a JSON object or null. Tool failures come
    /// back as results with `is_error`; panics on protocol errors.
    pub async fn call(&self, name: &str, args: Value) -> CallToolResult {
        self.try_call(name, args)
            .await
            .unwrap_or_else(|e| panic!("tools/call {name}: {e}"))
    }

    /// Calls a tool that must fail with a protocol error, and returns it.
    pub async fn call_err(&self, name: &str, args: Value) -> ServiceError {
        match self.try_call(name, args).await {
            Ok(result) => panic!(
                "tools/call {name} was expected to fail, but answered: {}",
                text_of(&result)
            ),
            Err(e) => e,
        }
    }

    /// Calls a tool and returns the protocol outcome as is.
    pub async fn try_call(&self, name: &str, args: Value) -> Result<CallToolResult, ServiceError> {
        let arguments = match args {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => panic!("tool arguments must be a JSON object, not {other}"),
        };
        let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        timed(&format!("tools/call {name}"), self.client.call_tool(params)).await
    }

    /// Every resource the server lists.
    pub async fn list_resources(&self) -> Vec<Resource> {
        timed("resources/list", self.client.list_all_resources())
            .await
            .unwrap_or_else(|e| panic!("resources/list: {e}"))
    }

    /// Every resource template the server lists.
    pub async fn list_resource_templates(&self) -> Vec<ResourceTemplate> {
        timed(
            "resources/templates/list",
            self.client.list_all_resource_templates(),
        )
        .await
        .unwrap_or_else(|e| panic!("resources/templates/list: {e}"))
    }

    /// Reads a resource.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, ServiceError> {
        let params = ReadResourceRequestParams::new(uri);
        timed(
            &format!("resources/read {uri}"),
            self.client.read_resource(params),
        )
        .await
    }

    /// Every prompt the server lists.
    pub async fn list_prompts(&self) -> Vec<Prompt> {
        timed("prompts/list", self.client.list_all_prompts())
            .await
            .unwrap_or_else(|e| panic!("prompts/list: {e}"))
    }

    /// Renders a prompt.
    pub async fn get_prompt(
        &self,
        name: &str,
        args: &[(&str, &str)],
    ) -> Result<GetPromptResult, ServiceError> {
        let arguments = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let params = GetPromptRequestParams::new(name).with_arguments(arguments);
        timed(
            &format!("prompts/get {name}"),
            self.client.get_prompt(params),
        )
        .await
    }

    /// Completion values for argument `arg` of prompt `prompt`; panics on errors.
    pub async fn complete_prompt_arg(&self, prompt: &str, arg: &str, value: &str) -> Vec<String> {
        timed(
            "completion/complete",
            self.client.complete_prompt_simple(prompt, arg, value),
        )
        .await
        .unwrap_or_else(|e| panic!("completing {prompt}.{arg}: {e}"))
    }

    /// Completion values for variable `var` of a resource template; panics on errors.
    pub async fn complete_template_var(
        &self,
        uri_template: &str,
        var: &str,
        value: &str,
    ) -> Vec<String> {
        timed(
            "completion/complete",
            self.client
                .complete_resource_simple(uri_template, var, value),
        )
        .await
        .unwrap_or_else(|e| panic!("completing {var} of {uri_template}: {e}"))
    }

    /// Closes the session and waits for the child to exit (rmcp closes its
    /// stdin, then sends SIGTERM, then kills it, waiting a few seconds each).
    pub async fn shutdown(mut self) {
        match tokio::time::timeout(Duration::from_secs(30), self.client.close()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("closing the MCP session: {e}"),
            Err(_) => panic!("sluice did not shut down within 30s"),
        }
    }
}

// ---------------------------------------------------------------------------
// Assertion helpers
// ---------------------------------------------------------------------------

/// The text contents of a tool result, joined by newlines.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(ContentBlock::as_text)
        .map(|text| text.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured content of a tool result; panics with the text when it has none.
pub fn structured(result: &CallToolResult) -> Value {
    match &result.structured_content {
        Some(value) => value.clone(),
        None => panic!(
            "the tool result has no structured content (is_error: {:?}): {}",
            result.is_error,
            text_of(result)
        ),
    }
}

/// Any MCP value as JSON, the way it goes over the wire (camelCase fields).
pub fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("MCP values serialize to JSON")
}

/// The JSON-RPC error inside a [`ServiceError`]; panics on other failures.
pub fn error_data(error: &ServiceError) -> &ErrorData {
    match error {
        ServiceError::McpError(data) => data,
        other => panic!("expected a JSON-RPC error, got: {other}"),
    }
}

/// A plugin built by the host's build script (`hello` and the `test-*` plugins).
pub fn plugin_wasm(package: &str) -> PathBuf {
    Path::new(env!("SLUICE_PLUGIN_OUT_DIR")).join(format!("{package}.wasm"))
}

/// A fresh directory holding the named plugins' wasm files.
pub fn plugin_dir_with(packages: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("sluice-e2e-plugins-")
        .tempdir()
        .expect("creating the plugin directory");
    for package in packages {
        let from = plugin_wasm(package);
        let to = dir.path().join(format!("{package}.wasm"));
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    }
    dir
}

/// A description of everything in the database's own schemas: their
/// objects, definitions and privileges, a digest of every table's rows, and
/// sequence positions. Equal fingerprints mean "nothing changed".
///
/// One line per fact, so a failed `assert_eq!` shows what changed. Privileges
/// are compared as granted, so a GRANT undone by a REVOKE leaves no trace.
pub async fn fingerprint(url: &str) -> String {
    let mut conn = connect(url).await;
    let mut out = Vec::new();
    for (section, sql) in FINGERPRINT_QUERIES {
        let lines: Vec<String> = sqlx::query_scalar(*sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("fingerprint ({section}): {e}"));
        out.extend(lines.into_iter().map(|line| format!("{section}: {line}")));
    }

    let tables: Vec<String> = sqlx::query_scalar(FINGERPRINT_TABLES)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("fingerprint (tables): {e}"));
    for table in tables {
        // `(r.*)`, not a bare `r`: that would name a column called `r`.
        let sql = format!(
            "SELECT count(*) || ' rows, md5 ' \
                 || md5(coalesce(string_agg((r.*)::text, '|' ORDER BY (r.*)::text), '')) \
             FROM {table} AS r"
        );
        let digest: String = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("fingerprint (rows of {table}): {e}"));
        out.push(format!("rows: {table}: {digest}"));
    }

    // Read from the sequences themselves: `pg_sequences` shows no value
    // before the first `nextval`, even after a `setval(…, false)`.
    let sequences: Vec<String> = sqlx::query_scalar(FINGERPRINT_SEQUENCES)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("fingerprint (sequences): {e}"));
    for sequence in sequences {
        let sql = format!("SELECT last_value || ' called=' || is_called FROM {sequence}");
        let state: String = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("fingerprint (state of {sequence}): {e}"));
        out.push(format!("sequence state: {sequence}: {state}"));
    }
    let _ = conn.close().await;
    out.join("\n")
}

/// SQL condition on `n` (a `pg_namespace` row): not one of PostgreSQL's own schemas.
macro_rules! user_schema {
    () => {
        "n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    };
}

/// Tables and materialized views whose rows are digested, quoted for SQL.
const FINGERPRINT_TABLES: &str = concat!(
    "SELECT format('%I.%I', n.nspname, c.relname) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated)) AND ",
    user_schema!(),
    " ORDER BY 1"
);

/// Sequences whose state is read, quoted for SQL.
const FINGERPRINT_SEQUENCES: &str = concat!(
    "SELECT format('%I.%I', n.nspname, c.relname) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'S' AND ",
    user_schema!(),
    " ORDER BY 1"
);

/// Each query yields ordered text lines describing one kind of object. (Row
/// and array types are left out: they follow their tables and element types.)
const FINGERPRINT_QUERIES: &[(&str, &str)] = &[
    (
        "schema",
        concat!(
            "SELECT format('%I owner=%s acl=%s', n.nspname, pg_get_userbyid(n.nspowner), \
                    coalesce(n.nspacl, acldefault('n', n.nspowner))::text) \
             FROM pg_namespace n WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "relation",
        concat!(
            "SELECT format('%I.%I kind=%s populated=%s owner=%s acl=%s rls=%s', n.nspname, c.relname, \
                    c.relkind, c.relispopulated, pg_get_userbyid(c.relowner), \
                    coalesce(c.relacl, acldefault( \
                        CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))::text, \
                    c.relrowsecurity) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "column",
        concat!(
            "SELECT format('%I.%I.%I %s notnull=%s default=%s', n.nspname, c.relname, \
                    a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                    pg_get_expr(d.adbin, d.adrelid)) \
             FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attnum > 0 AND NOT a.attisdropped \
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND ",
            user_schema!(),
            " ORDER BY n.nspname, c.relname, a.attnum"
        ),
    ),
    (
        "constraint",
        concat!(
            "SELECT format('%I.%I %I %s', n.nspname, c.relname, k.conname, \
                    pg_get_constraintdef(k.oid, true)) \
             FROM pg_constraint k \
             JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "index",
        concat!(
            "SELECT pg_get_indexdef(i.indexrelid) \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "view",
        concat!(
            "SELECT format('%I.%I %s', n.nspname, c.relname, pg_get_viewdef(c.oid, true)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('v', 'm') AND ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "trigger",
        concat!(
            "SELECT pg_get_triggerdef(t.oid, true) \
             FROM pg_trigger t \
             JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT t.tgisinternal AND ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "policy",
        concat!(
            "SELECT format('%I.%I %I cmd=%s permissive=%s roles=%s using=%s check=%s', \
                    n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive, \
                    p.polroles::text, pg_get_expr(p.polqual, p.polrelid), \
                    pg_get_expr(p.polwithcheck, p.polrelid)) \
             FROM pg_policy p \
             JOIN pg_class c ON c.oid = p.polrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "function",
        concat!(
            "SELECT format('%I.%I(%s) owner=%s acl=%s md5=%s', n.nspname, p.proname, \
                    pg_get_function_identity_arguments(p.oid), pg_get_userbyid(p.proowner), \
                    coalesce(p.proacl, acldefault('f', p.proowner))::text, \
                    md5(pg_get_functiondef(p.oid))) \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.prokind IN ('f', 'p', 'w') AND ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "type",
        concat!(
            "SELECT format('%I.%I kind=%s base=%s notnull=%s default=%s labels=%s checks=%s', \
                    n.nspname, t.typname, t.typtype, \
                    CASE t.typtype WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) END, \
                    t.typnotnull, t.typdefault, \
                    (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
                     FROM pg_enum e WHERE e.enumtypid = t.oid), \
                    (SELECT string_agg(pg_get_constraintdef(k.oid, true), ' ' ORDER BY k.conname) \
                     FROM pg_constraint k WHERE k.contypid = t.oid)) \
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
             LEFT JOIN pg_class r ON r.oid = t.typrelid \
             WHERE t.typcategory <> 'A' AND coalesce(r.relkind = 'c', true) AND ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        // Objects created after initdb have OIDs from 16384 (FirstNormalObjectId).
        "comment",
        "SELECT format('%s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), \
                d.description) \
         FROM pg_description d WHERE d.objoid >= 16384 ORDER BY 1",
    ),
    (
        "sequence",
        "SELECT format('%I.%I start=%s increment=%s min=%s max=%s cycle=%s', schemaname, \
                sequencename, start_value, increment_by, min_value, max_value, cycle) \
         FROM pg_sequences ORDER BY 1",
    ),
    (
        "extension",
        "SELECT format('%I %s', extname, extversion) FROM pg_extension ORDER BY 1",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgresql:///postgres?host=/run/pg", "x"),
            "postgresql:///x?host=/run/pg"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
