//! PostgreSQL access: the pool, transactions with their guard settings, and
//! statements over the extended protocol only.
//!
//! Nothing here decides what is allowed: [`crate::gate`] does, and calls in.

pub mod catalog;
pub mod codec;
pub mod conninfo;
mod error;
mod reads;
pub mod shared_state;
pub mod value;

pub use error::{DbError, PgError};
pub use reads::{Check, Read};

use codec::RawParam;
use conninfo::{Endpoint, Target};
use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow, PgTypeInfo};
use sqlx::{Arguments, Column, Executor, PgPool, Postgres, Row, Statement, Transaction, TypeInfo};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use value::Value;

/// A result column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMeta {
    pub name: String,
    pub type_name: String,
}

/// Rows a statement returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub columns: Vec<ColumnMeta>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
}

/// How much of a result is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultLimits {
    /// Rows kept; one more is read to tell whether the result was cut.
    pub max_rows: u32,
    /// Bytes of values, as they come off the wire, before the read fails.
    pub max_bytes: u64,
}

/// A statement's parameter values, and how error messages name them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Params<'a> {
    pub values: &'a [Value],
    /// Names of the parameters in order (`column birth_year (smallint)`);
    /// those without one are `parameter $n (type)`.
    pub labels: &'a [String],
}

impl<'a> Params<'a> {
    /// Values named by their position only.
    pub fn positional(values: &'a [Value]) -> Params<'a> {
        Params {
            values,
            labels: &[],
        }
    }
}

/// How a statement's rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSource {
    /// Through a cursor, so the server stops at the row cap (queries only).
    Cursor,
    /// Straight from the statement.
    Stream,
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub min_connections: u32,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// Settings every transaction of a call starts with.
#[derive(Debug, Clone)]
pub struct TxSettings {
    pub read_only: bool,
    pub statement_timeout_ms: u64,
    /// `SET LOCAL ROLE` target.
    pub role: Option<String>,
    /// Transaction-local settings that tell PostgreSQL who is asking, as
    /// `(name, value)` ([`crate::principal::Principal::settings`]): set with
    /// [`IDENTITY_SQL`], whose parameters they are.
    pub identity: Vec<(String, String)>,
    /// The connection is closed when the transaction ends, never given
    /// back to the pool: for work that leaves state in the session.
    pub disposable: bool,
}

/// A statement run inside a longer transaction, between a savepoint and
/// its undoing: a read that fails costs only itself, and one that ends
/// leaves no cursor behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Savepoint {
    /// `SAVEPOINT`.
    Set,
    /// `ROLLBACK TO` it, and `RELEASE` it.
    Undo,
}

/// Sets the caller's identity for the transaction: `$1` names, `$2` values,
/// both bound, so no value from a token is ever read as SQL.
pub const IDENTITY_SQL: &str = "SELECT pg_catalog.set_config(n, v, true) \
     FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), \
                     pg_catalog.unnest($2::pg_catalog.text[])) AS s(n, v)";

impl TxSettings {
    /// The identity's names and values, as the two arrays [`IDENTITY_SQL`]
    /// takes.
    pub fn identity_arrays(&self) -> (Vec<&str>, Vec<&str>) {
        self.identity
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .unzip()
    }
}

/// The schema unqualified names resolve in (after `pg_catalog`). Pinned per
/// transaction so the policy's view of a name is PostgreSQL's.
pub const SEARCH_PATH: &str = "public";

/// The connection pool and what it learned about types.
pub struct Database {
    pool: PgPool,
    /// How to open a connection outside the pool (to cancel its work).
    options: PgConnectOptions,
    /// `format_type` of types converted through the server, by OID.
    type_names: Mutex<HashMap<u32, String>>,
    /// The pool's server processes, newest last.
    backends: Arc<Mutex<VecDeque<Backend>>>,
    /// Whether the server could be reached, as last seen.
    health: Health,
    /// Where the pool connects, for messages.
    endpoint: Endpoint,
    /// Whether a password was given, for the message when one is asked for.
    has_password: bool,
    /// How long one connection attempt may take.
    connect_timeout: Duration,
    /// How long a call waits for a pooled connection.
    acquire_timeout: Duration,
    max_connections: u32,
    /// The gated read path (tokio-postgres).
    reads: reads::Reads,
    /// Connections in use at once, over both pools.
    permits: Arc<tokio::sync::Semaphore>,
}

/// After this long without a pooled connection, a call asks the server
/// directly whether it can be reached, rather than waiting out the pool's
/// `acquire_timeout` (sqlx retries refused connections silently until then).
const PROBE_AFTER: Duration = Duration::from_millis(500);

/// How long one probe's answer stands for every call that asks, at most:
/// during an outage, calls fail at once instead of each waiting out a
/// connection attempt. An answer stands only as long as it took to get (at
/// least [`PROBE_VALID_MIN`]): a refused connection is known in a fraction
/// of a millisecond, so asking again costs nothing and notices a server
/// that came back at once; a server that does not answer costs
/// `connect_timeout` per attempt, so that answer is kept.
const PROBE_VALID: Duration = Duration::from_millis(500);
const PROBE_VALID_MIN: Duration = Duration::from_millis(10);

/// The reachability of the server, shared by every call.
#[derive(Default)]
struct Health {
    /// Since when and why the server cannot be reached; `None` while it can.
    down: Mutex<Option<(Instant, String)>>,
    /// Until when the last probe's outcome stands, and the outcome; held
    /// while a probe runs, so that concurrent callers wait for one probe
    /// instead of starting their own.
    probe: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Health {
    fn is_down(&self) -> bool {
        self.down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Records an outage; logged once, when it starts.
    fn mark_down(&self, cause: &str) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if down.is_none() {
            tracing::error!("database unreachable: {cause}");
            *down = Some((Instant::now(), cause.to_string()));
        } else {
            tracing::debug!("database still unreachable: {cause}");
        }
    }

    /// Records that the server answers; logged when that ends an outage.
    fn mark_up(&self) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((since, _)) = down.take() {
            tracing::info!(
                "database reachable again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
    }
}

/// One server process the pool connected to: its pid and start time,
/// which together name it even after the pid is reused.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Backend {
    pid: i32,
    started: String,
}

/// Backends remembered; the pool's live connections are always among the
/// newest, so older ones (closed since) can be forgotten.
const BACKENDS_KEPT: usize = 1024;

/// The server process of the connection it runs on: its pid and start time.
const BACKEND_SQL: &str = "SELECT pid, backend_start::pg_catalog.text \
     FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()";

fn remember(known: &Mutex<VecDeque<Backend>>, backend: Backend) {
    let mut known = known.lock().unwrap_or_else(PoisonError::into_inner);
    if known.len() >= BACKENDS_KEPT {
        known.pop_front();
    }
    known.push_back(backend);
}

/// A transaction with its guard settings applied. Dropping it rolls back.
pub struct Tx {
    tx: Transaction<'static, Postgres>,
    /// Its share of the bound on connections in use.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// `BEGIN` with the guard settings, as one simple query. All settings are
/// `LOCAL`, so none outlives the transaction on the pooled connection.
/// standard_conforming_strings is pinned because the policy's parser reads
/// backslashes in '…' literally; a database defaulting it off would read a
/// string's end elsewhere.
fn begin_statement(settings: &TxSettings) -> String {
    format!(
        "BEGIN {}; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; \
         SET LOCAL idle_in_transaction_session_timeout = {}; SET LOCAL search_path = {SEARCH_PATH}; \
         SET LOCAL standard_conforming_strings = on;",
        if settings.read_only {
            "READ ONLY"
        } else {
            "READ WRITE"
        },
        settings.statement_timeout_ms,
        settings.statement_timeout_ms,
        settings.statement_timeout_ms.saturating_mul(2).max(1000),
    )
}

/// Quotes an identifier for SQL.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl Database {
    /// Resolves `conninfo` (a URL or key=value string; see [`conninfo`])
    /// against the environment, connects once to check the server answers
    /// (so that a wrong setting fails fast with the reason), then sets up the
    /// pool.
    pub async fn connect(conninfo: &str, settings: &PoolSettings) -> Result<Database, DbError> {
        let (target, tls) = resolve_off_thread(conninfo).await?;
        let db = Database::with_pool(target, tls, settings);
        // Not recorded as an outage: failing here stops the server, with
        // this reason.
        db.attempt().await.map_err(unreachable_error)?;
        Ok(db)
    }

    /// A pool that connects on first use, for commands that load plugins
    /// without serving them (`sluice plugins`): nothing connects unless a
    /// plugin's description asks the database something. Without a
    /// connection string, the `PG*` variables and libpq's defaults apply.
    pub async fn lazy(conninfo: Option<&str>) -> Result<Database, DbError> {
        let (target, tls) = match conninfo {
            Some(conninfo) => resolve_off_thread(conninfo).await?,
            // Nothing configured: libpq's defaults, or plain ones when even
            // those cannot be had (no OS user name), since this pool may
            // never be used.
            None => match resolve_off_thread("").await {
                Ok(resolved) => resolved,
                Err(e) => {
                    tracing::debug!("no default database connection: {e}");
                    let target = Target::fallback();
                    // No files to read: the built-in roots at most.
                    let tls =
                        reads::tls::connector(&target.link.tls).map_err(DbError::Connection)?;
                    (target, tls)
                }
            },
        };
        Ok(Database::with_pool(
            target,
            tls,
            &PoolSettings {
                min_connections: 0,
                max_connections: 1,
                acquire_timeout: Duration::from_secs(2),
            },
        ))
    }

    fn with_pool(
        target: Target,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        settings: &PoolSettings,
    ) -> Database {
        let backends: Arc<Mutex<VecDeque<Backend>>> = Arc::default();
        let known = backends.clone();
        let pool = PgPoolOptions::new()
            .min_connections(settings.min_connections)
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            // A connection is checked when it comes back (sqlx pings it
            // then, off the call's path, which also flushes a queued
            // ROLLBACK); checking it again on the way out would cost every
            // call a round trip. One that died while idle fails at BEGIN,
            // before anything ran, and `begin` takes another.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                let known = known.clone();
                Box::pin(async move {
                    let (pid, started): (i32, String) =
                        sqlx::query_as(BACKEND_SQL).fetch_one(conn).await?;
                    remember(&known, Backend { pid, started });
                    Ok(())
                })
            })
            .connect_lazy_with(target.options.clone());
        let permits = Arc::new(tokio::sync::Semaphore::new(
            settings.max_connections as usize,
        ));
        Database {
            reads: reads::Reads::new(target.link, tls),
            permits,
            pool,
            options: target.options,
            type_names: Mutex::new(HashMap::new()),
            backends,
            health: Health::default(),
            endpoint: target.endpoint,
            has_password: target.has_password,
            connect_timeout: target.connect_timeout,
            acquire_timeout: settings.acquire_timeout,
            max_connections: settings.max_connections,
        }
    }

    /// A pooled connection, or why there is none: the server cannot be
    /// reached (found out within about [`PROBE_AFTER`] plus one connection
    /// attempt), or every connection stayed in use for `acquire_timeout`.
    async fn acquire(
        &self,
    ) -> Result<(PoolConnection<Postgres>, tokio::sync::OwnedSemaphorePermit), DbError> {
        if self.health.is_down() {
            // Fails at once while the outage lasts; the first probe that
            // gets through ends it.
            self.probe().await.map_err(unreachable_error)?;
        }
        let permit = self.permit().await?;
        let conn = self.acquire_pooled().await?;
        Ok((conn, permit))
    }

    /// A share of the bound on connections in use (both pools), within
    /// `acquire_timeout`.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, DbError> {
        tokio::time::timeout(self.acquire_timeout, self.permits.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| self.busy_error())
    }

    /// A connection of sluice's own to the same server, outside both pools
    /// and their bound: for state sluice keeps itself ([`shared_state`]),
    /// never for a plugin's statements.
    pub async fn own_connection(&self) -> Result<tokio_postgres::Client, DbError> {
        self.reads
            .connect_client(self)
            .await
            .map_err(unreachable_error)
    }

    /// The error a call gets when every connection stayed in use.
    fn busy_error(&self) -> DbError {
        DbError::Connection(format!(
            "all {} database connections are in use: none came free within {} s \
             ([database] acquire_timeout_s); raise [database] max_connections or try again",
            self.max_connections,
            self.acquire_timeout.as_secs_f64()
        ))
    }

    /// Records a server process one of the pools connected to.
    fn remember_backend(&self, backend: Backend) {
        remember(&self.backends, backend);
    }

    /// Runs a read the policy passed, in a guard transaction of its own,
    /// calling `check` with what its relation names resolved to before the
    /// statement may run (see [`reads`] for how few round trips that
    /// takes).
    pub async fn read<E: From<DbError>>(
        &self,
        read: &Read<'_>,
        check: &mut Check<'_, E>,
    ) -> Result<Rows, E> {
        self.reads.read(self, read, check).await
    }

    async fn acquire_pooled(&self) -> Result<PoolConnection<Postgres>, DbError> {
        let acquire = self.pool.acquire();
        tokio::pin!(acquire);
        tokio::select! {
            acquired = &mut acquire => return self.acquired(acquired),
            () = tokio::time::sleep(PROBE_AFTER) => {}
        }
        // Slow: all connections are busy, or a new one cannot be opened.
        // The server itself tells which, while the wait goes on.
        let probe = self.probe();
        tokio::pin!(probe);
        tokio::select! {
            acquired = &mut acquire => return self.acquired(acquired),
            probed = &mut probe => probed.map_err(unreachable_error)?,
        }
        self.acquired(acquire.await)
    }

    fn acquired(
        &self,
        acquired: Result<PoolConnection<Postgres>, sqlx::Error>,
    ) -> Result<PoolConnection<Postgres>, DbError> {
        match acquired {
            Ok(conn) => {
                self.health.mark_up();
                Ok(conn)
            }
            Err(sqlx::Error::PoolTimedOut) => Err(self.busy_error()),
            Err(sqlx::Error::PoolClosed) => {
                Err(DbError::Connection("the connection pool is closed".into()))
            }
            // Anything else failed while opening a connection.
            Err(e) => {
                let cause = self.connect_cause(&e);
                self.health.mark_down(&cause);
                Err(unreachable_error(cause))
            }
        }
    }

    /// Whether the server can be reached, from a connection of its own; one
    /// probe at a time, its answer shared for a while (see [`PROBE_VALID`]).
    async fn probe(&self) -> Result<(), String> {
        let mut last = self.health.probe.lock().await;
        if let Some((until, outcome)) = last.as_ref()
            && Instant::now() < *until
        {
            return outcome.clone();
        }
        let started = Instant::now();
        let outcome = self.probe_now().await;
        let stands = started.elapsed().clamp(PROBE_VALID_MIN, PROBE_VALID);
        *last = Some((Instant::now() + stands, outcome.clone()));
        outcome
    }

    /// One connection attempt, its outcome recorded in the health state.
    async fn probe_now(&self) -> Result<(), String> {
        let outcome = self.attempt().await;
        match &outcome {
            Ok(()) => self.health.mark_up(),
            Err(cause) => self.health.mark_down(cause),
        }
        outcome
    }

    /// One connection attempt outside the pool, bounded by `connect_timeout`.
    async fn attempt(&self) -> Result<(), String> {
        use sqlx::ConnectOptions as _;
        match tokio::time::timeout(self.connect_timeout, self.options.connect()).await {
            Ok(Ok(conn)) => {
                // Closing politely must not hold up the caller.
                tokio::spawn(sqlx::Connection::close(conn));
                Ok(())
            }
            Ok(Err(e)) => Err(self.connect_cause(&e)),
            Err(_) => Err(self.no_answer()),
        }
    }

    /// Why a connection attempt that ran out of `connect_timeout` failed.
    fn no_answer(&self) -> String {
        format!(
            "no answer from {} within {} s (connect_timeout)",
            self.endpoint,
            self.connect_timeout.as_secs()
        )
    }

    /// Why connecting failed, in words, naming where it tried and never the
    /// password.
    fn connect_cause(&self, e: &sqlx::Error) -> String {
        connect_cause(e, &self.endpoint, self.has_password)
    }

    /// Cancels the statements the pool's connections are running, over a
    /// connection of its own: at exit, so that calls sluice abandoned do not
    /// run on in the server. Returns how many were cancelled.
    pub async fn cancel_running(&self) -> Result<u64, DbError> {
        use sqlx::{ConnectOptions as _, Connection as _};
        let (pids, starts): (Vec<i32>, Vec<String>) = self
            .backends
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|b| (b.pid, b.started.clone()))
            .unzip();
        if pids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.options.connect().await?;
        let cancelled: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_catalog.pg_cancel_backend(a.pid)) \
             FROM pg_catalog.pg_stat_activity a \
             JOIN unnest($1::int4[], $2::text[]) AS b(pid, started) \
               ON a.pid = b.pid AND a.backend_start::text = b.started \
             WHERE a.state <> 'idle' AND a.pid <> pg_catalog.pg_backend_pid()",
        )
        .bind(&pids)
        .bind(&starts)
        .fetch_one(&mut conn)
        .await?;
        let _ = conn.close().await;
        Ok(u64::try_from(cancelled).unwrap_or(0))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        let (mut conn, _permit) = self.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        Ok(())
    }

    /// Of `roles`, those the login role cannot `SET ROLE` to, each with why:
    /// it does not exist, or the login role is not a member.
    pub async fn unusable_roles(
        &self,
        roles: &[String],
    ) -> Result<Vec<(String, &'static str)>, DbError> {
        let (mut conn, _permit) = self.acquire().await?;
        // pg_has_role fails on a role that does not exist: the CASE keeps
        // it from being asked about one (OR does not promise an order).
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "SELECT r, e FROM (SELECT r, r IN (SELECT rolname::pg_catalog.text \
                                               FROM pg_catalog.pg_roles) AS e \
                               FROM pg_catalog.unnest($1::pg_catalog.text[]) AS r(r)) AS s \
             WHERE CASE WHEN e THEN NOT pg_catalog.pg_has_role(current_user, r, 'MEMBER') \
                        ELSE true END",
        )
        .bind(roles)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(role, exists)| {
                let why = if exists {
                    "the login role is not a member of it"
                } else {
                    "it does not exist"
                };
                (role, why)
            })
            .collect())
    }

    /// Begins a transaction with the guard settings. All settings are `LOCAL`,
    /// so none outlives the transaction on the pooled connection.
    pub async fn begin(&self, settings: &TxSettings) -> Result<Tx, DbError> {
        // Our own fixed statements, sent in one simple-protocol round trip.
        // Nothing from a plugin is ever sent this way.
        let (mut tx, permit) = self
            .begin_on_live_connection(begin_statement(settings), settings.disposable)
            .await?;
        if let Some(role) = &settings.role {
            // Separate, so that a missing or forbidden role fails right here
            // with PostgreSQL's own error.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SET LOCAL ROLE {}",
                quote_ident(role)
            )))
            .execute(&mut *tx)
            .await?;
        }
        if !settings.identity.is_empty() {
            let (names, values) = settings.identity_arrays();
            sqlx::query(IDENTITY_SQL)
                .bind(names)
                .bind(values)
                .execute(&mut *tx)
                .await?;
        }
        Ok(Tx {
            tx,
            _permit: permit,
        })
    }

    /// Acquires a connection and sends `begin` on it. A pooled connection
    /// is not checked before use, so one that died while idle (the server
    /// restarted, a proxy dropped it) fails here, before anything ran, and
    /// the next is tried: at most one more than the pool holds, since the
    /// pool drops each connection that failed.
    async fn begin_on_live_connection(
        &self,
        begin: String,
        disposable: bool,
    ) -> Result<
        (
            Transaction<'static, Postgres>,
            tokio::sync::OwnedSemaphorePermit,
        ),
        DbError,
    > {
        let mut attempts = 0;
        loop {
            let (mut conn, permit) = self.acquire().await?;
            if disposable {
                conn.close_on_drop();
            }
            let statement = sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(begin.clone()));
            match Transaction::begin(conn, Some(statement)).await {
                Err(e) if is_dead_connection(&e) && attempts <= self.max_connections => {
                    attempts += 1;
                    tracing::debug!("a pooled connection was dead ({e}); taking another");
                }
                other => return Ok((other?, permit)),
            }
        }
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await.map_err(Into::into)
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), DbError> {
        self.tx.rollback().await.map_err(Into::into)
    }

    /// Rolls back without waiting for the answer: the ROLLBACK is queued
    /// on the connection and sent before anything else uses it (sqlx
    /// flushes it when the pool takes the connection back).
    pub fn abandon(self) {
        drop(self.tx);
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    /// Resolves relation names (in `to_regclass` form) as PostgreSQL does under
    /// this transaction's search path: `(schema, name)` or `None` when the name
    /// is not a relation.
    pub async fn resolve_relations(
        &mut self,
        names: &[String],
    ) -> Result<Vec<Option<(String, String)>>, DbError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT n.nspname::text, c.relname::text \
             FROM unnest($1::text[]) WITH ORDINALITY AS u(name, i) \
             LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(u.name) \
             LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             ORDER BY u.i",
        )
        .bind(names)
        .fetch_all(self.conn())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(schema, name)| schema.zip(name))
            .collect())
    }

    /// `sql` prepared on this connection (sqlx keeps it for the next
    /// time), with the types PostgreSQL infers for its parameters.
    async fn prepare(
        &mut self,
        sql: &str,
    ) -> Result<(sqlx::postgres::PgStatement, Vec<PgTypeInfo>), DbError> {
        let statement = self
            .conn()
            .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql)))
            .await?;
        let param_types = statement_param_types(&statement)?;
        Ok((statement, param_types))
    }

    /// Runs `sql` with `params`, returning at most `max_rows` rows (and whether
    /// there were more). `fallback` renders the same statement for wrapping when
    /// some result type has no binary decoder.
    pub async fn query(
        &mut self,
        db: &Database,
        sql: &str,
        params: Params<'_>,
        limits: ResultLimits,
        source: RowSource,
        fallback: impl FnOnce() -> String,
    ) -> Result<Rows, DbError> {
        let (statement, param_types) = self.prepare(sql).await?;
        check_param_count(param_types.len(), params.values.len())?;
        let columns: Vec<(String, PgTypeInfo)> = statement
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_info().clone()))
            .collect();

        // Columns without a binary decoder come back as their text form.
        let wrapped;
        let run_sql = if columns.iter().all(|(_, t)| codec::is_decodable(t)) {
            sql
        } else {
            wrapped = wrapped_sql(
                columns.iter().map(|(_, t)| codec::is_decodable(t)),
                &fallback(),
            );
            &wrapped
        };

        let args = self.encode_params(db, &param_types, params).await?;
        let (rows, truncated) = match source {
            RowSource::Cursor => self.fetch_through_cursor(run_sql, args, limits).await?,
            RowSource::Stream => {
                let stream =
                    sqlx::query_with(sqlx::AssertSqlSafe(run_sql), args).fetch(self.conn());
                read_rows(stream, limits).await?
            }
        };
        Ok(Rows {
            columns: columns
                .iter()
                .map(|(name, t)| ColumnMeta {
                    name: name.clone(),
                    type_name: codec::type_name(t),
                })
                .collect(),
            rows,
            truncated,
        })
    }

    /// Runs a write the host built (`… RETURNING *`), whose parameters
    /// PostgreSQL infers from the target columns, reading its rows up to
    /// `limits` (`truncated` tells the caller there were more).
    pub async fn execute_returning(
        &mut self,
        db: &Database,
        sql: &str,
        params: Params<'_>,
        limits: ResultLimits,
    ) -> Result<Rows, DbError> {
        self.query(db, sql, params, limits, RowSource::Stream, || {
            sql.to_string()
        })
        .await
    }

    /// Sets the transaction's savepoint, or undoes everything since and
    /// removes it.
    pub async fn savepoint(&mut self, step: Savepoint) -> Result<(), DbError> {
        let sql = match step {
            Savepoint::Set => "SAVEPOINT sluice_step",
            Savepoint::Undo => "ROLLBACK TO SAVEPOINT sluice_step; RELEASE SAVEPOINT sluice_step",
        };
        sqlx::raw_sql(sql).execute(self.conn()).await?;
        Ok(())
    }

    /// Runs a write whose rows are not read (no `RETURNING`) and returns
    /// how many rows it touched, from PostgreSQL's command tag.
    pub async fn execute_count(
        &mut self,
        db: &Database,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, DbError> {
        let (_, param_types) = self.prepare(sql).await?;
        check_param_count(param_types.len(), params.values.len())?;
        let args = self.encode_params(db, &param_types, params).await?;
        let done = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }

    /// The types PostgreSQL infers for `sql`'s parameters, as `(oid,
    /// name)`, without running it.
    pub async fn parameter_types(&mut self, sql: &str) -> Result<Vec<(u32, String)>, DbError> {
        let (_, param_types) = self.prepare(sql).await?;
        let oids: Vec<sqlx::postgres::types::Oid> = param_types
            .iter()
            .map(|t| t.oid().unwrap_or(sqlx::postgres::types::Oid(0)))
            .collect();
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        // Named as PostgreSQL writes them in SQL (`integer`, not `int4`).
        let named: Vec<(sqlx::postgres::types::Oid, String)> = sqlx::query_as(
            "SELECT o, pg_catalog.format_type(o, NULL) \
             FROM unnest($1::oid[]) WITH ORDINALITY AS u(o, i) ORDER BY u.i",
        )
        .bind(oids)
        .fetch_all(self.conn())
        .await?;
        Ok(named.into_iter().map(|(o, name)| (o.0, name)).collect())
    }

    /// Whether PostgreSQL reads each of `values` (text) as type
    /// `type_name`, which must be a name `format_type` wrote (the caller's
    /// canonical name of a type that exists): the first that it does not
    /// read fails with PostgreSQL's error, which names the value.
    pub async fn check_inputs(
        &mut self,
        type_name: &str,
        values: &[String],
    ) -> Result<(), DbError> {
        if values.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT count(u.v::{type_name}) FROM pg_catalog.unnest($1::pg_catalog.text[]) AS u(v)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(values)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Each type name as PostgreSQL reads it (`to_regtype`): its oid and
    /// its canonical name, or `None` for a name that is no type.
    pub async fn resolve_types(
        &mut self,
        names: &[String],
    ) -> Result<Vec<Option<(u32, String)>>, DbError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Option<sqlx::postgres::types::Oid>, Option<String>)> = sqlx::query_as(
            "SELECT t.oid, pg_catalog.format_type(t.oid, NULL) \
             FROM unnest($1::text[]) WITH ORDINALITY AS u(name, i) \
             LEFT JOIN pg_catalog.pg_type t ON t.oid = pg_catalog.to_regtype(u.name) \
             ORDER BY u.i",
        )
        .bind(names)
        .fetch_all(self.conn())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(oid, name)| oid.map(|o| o.0).zip(name))
            .collect())
    }

    /// For each `(from, to)` pair of type oids, whether PostgreSQL converts
    /// `from` to `to` implicitly (`pg_cast` context `i`).
    pub async fn implicit_casts(&mut self, pairs: &[(u32, u32)]) -> Result<Vec<bool>, DbError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let from: Vec<sqlx::postgres::types::Oid> = pairs
            .iter()
            .map(|(f, _)| sqlx::postgres::types::Oid(*f))
            .collect();
        let to: Vec<sqlx::postgres::types::Oid> = pairs
            .iter()
            .map(|(_, t)| sqlx::postgres::types::Oid(*t))
            .collect();
        let rows: Vec<(bool,)> = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_cast c \
                            WHERE c.castsource = p.s AND c.casttarget = p.t \
                              AND c.castcontext = 'i') \
             FROM unnest($1::oid[], $2::oid[]) WITH ORDINALITY AS p(s, t, i) ORDER BY p.i",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.conn())
        .await?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }

    /// Runs the query through a cursor and fetches one row more than the cap:
    /// PostgreSQL stops producing rows there, so a capped `SELECT` over a huge
    /// table costs the rows returned, not the whole table.
    async fn fetch_through_cursor(
        &mut self,
        sql: &str,
        args: PgArguments,
        limits: ResultLimits,
    ) -> Result<(Vec<Vec<Value>>, bool), DbError> {
        // The statement was parsed and checked as exactly one query, so it is
        // a valid cursor body. The DECLARE is prepared once per connection
        // and statement, as the statement itself is; the FETCH is not: its
        // row shape differs from one cursor to the next.
        let declare = format!("DECLARE sluice_rows NO SCROLL CURSOR FOR\n{sql}\n");
        sqlx::query_with(sqlx::AssertSqlSafe(declare), args)
            .execute(self.conn())
            .await?;
        let fetch = format!(
            "FETCH FORWARD {} FROM sluice_rows",
            u64::from(limits.max_rows) + 1
        );
        let stream = sqlx::query(sqlx::AssertSqlSafe(fetch))
            .persistent(false)
            .fetch(self.conn());
        read_rows(stream, limits).await
    }

    /// Encodes each value as the binary form of the parameter type PostgreSQL
    /// inferred. Types without a direct encoder are converted by the server
    /// itself from their text form, so any type with a text input works.
    async fn encode_params(
        &mut self,
        db: &Database,
        types: &[PgTypeInfo],
        params: Params<'_>,
    ) -> Result<PgArguments, DbError> {
        let Params {
            values: params,
            labels,
        } = params;
        let mut encoded: Vec<Option<RawParam>> = Vec::with_capacity(params.len());
        let mut via_server = Vec::new();
        for (i, (value, ty)) in params.iter().zip(types).enumerate() {
            let direct = codec::encode_binary(value, ty)
                .map_err(|e| value_error(&param_label(labels, i, ty), e))?
                .map(|bytes| RawParam::new(ty.clone(), bytes));
            if direct.is_none() {
                via_server.push(i);
            }
            encoded.push(direct);
        }
        if !via_server.is_empty() {
            let converted = self
                .convert_on_server(db, types, params, labels, &via_server)
                .await?;
            for (i, raw) in via_server.into_iter().zip(converted) {
                encoded[i] = Some(raw);
            }
        }
        let mut args = PgArguments::default();
        for raw in encoded.into_iter().flatten() {
            args.add(raw)
                .map_err(|e| DbError::Value(format!("binding a parameter: {e}")))?;
        }
        Ok(args)
    }

    /// Asks the server to turn text forms into the binary form of their types:
    /// `SELECT CAST($1 AS t1), …` with binary results gives exactly the bytes
    /// the type's receive function takes back.
    async fn convert_on_server(
        &mut self,
        db: &Database,
        types: &[PgTypeInfo],
        params: &[Value],
        labels: &[String],
        which: &[usize],
    ) -> Result<Vec<RawParam>, DbError> {
        let mut casts = Vec::with_capacity(which.len());
        let mut texts: Vec<Option<String>> = Vec::with_capacity(which.len());
        for (n, &i) in which.iter().enumerate() {
            let ty = &types[i];
            let name = self.castable_type_name(db, ty).await?;
            casts.push(format!("CAST(${} AS {name})", n + 1));
            texts.push(
                codec::to_text_input(&params[i], ty)
                    .map_err(|e| value_error(&param_label(labels, i, ty), e))?,
            );
        }
        let sql = format!("SELECT {}", casts.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in &texts {
            query = query.bind(t.as_deref());
        }
        // A value that does not fit (bad date, failed domain CHECK) fails here
        // with PostgreSQL's own error and SQLSTATE, which is what a caller
        // needs, told which parameter it was about.
        let row = query.fetch_one(self.conn()).await.map_err(|e| {
            naming_culprit(e.into(), which, &texts, |i| {
                param_label(labels, i, &types[i])
            })
        })?;
        which
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let raw = row.try_get_raw(n)?;
                let bytes = if sqlx::ValueRef::is_null(&raw) {
                    None
                } else {
                    Some(
                        raw.as_bytes()
                            .map_err(|e| DbError::Value(e.to_string()))?
                            .to_vec(),
                    )
                };
                Ok(RawParam::new(types[i].clone(), bytes))
            })
            .collect()
    }

    async fn castable_type_name(
        &mut self,
        db: &Database,
        ty: &PgTypeInfo,
    ) -> Result<String, DbError> {
        let oid = ty
            .oid()
            .map(|o| o.0)
            .ok_or_else(|| DbError::Value(format!("parameter type {} has no OID", ty.name())))?;
        if let Some(name) = db.type_names.lock().ok().and_then(|m| m.get(&oid).cloned()) {
            return Ok(name);
        }
        // format_type quotes and qualifies as needed to be valid SQL here.
        let name: String = sqlx::query_scalar("SELECT pg_catalog.format_type($1::oid, NULL)")
            .bind(oid as i64)
            .fetch_one(self.conn())
            .await?;
        if let Ok(mut m) = db.type_names.lock() {
            m.insert(oid, name.clone());
        }
        Ok(name)
    }
}

/// PostgreSQL's error about converting the text forms `texts` (of
/// parameters `which`), its message prefixed with the parameter it was
/// about when that can be told: the one whose text it quotes, or the only
/// one.
fn naming_culprit(
    e: DbError,
    which: &[usize],
    texts: &[Option<String>],
    label: impl Fn(usize) -> String,
) -> DbError {
    match e {
        DbError::Postgres(mut pg) => {
            let found: Vec<usize> = which
                .iter()
                .zip(texts)
                .filter(|(_, t)| {
                    t.as_deref()
                        .is_some_and(|t| pg.message.contains(&format!("\"{t}\"")))
                })
                .map(|(&i, _)| i)
                .collect();
            if let ([one], _) | ([], [one]) = (found.as_slice(), which) {
                pg.message = format!("{}: {}", label(*one), pg.message);
            }
            DbError::Postgres(pg)
        }
        other => other,
    }
}

/// A statement (`rendered`) wrapped so that the columns without a binary
/// decoder (`false` in `decodable`) come back as their text form. A CTE
/// rather than a subquery, so that INSERT … RETURNING can be wrapped too;
/// PostgreSQL inlines it for plain queries.
fn wrapped_sql(decodable: impl ExactSizeIterator<Item = bool>, rendered: &str) -> String {
    let aliases: Vec<String> = (1..=decodable.len()).map(|i| format!("c{i}")).collect();
    let select: Vec<String> = decodable
        .zip(&aliases)
        .map(|(decodable, a)| {
            if decodable {
                a.clone()
            } else {
                format!("{a}::pg_catalog.text")
            }
        })
        .collect();
    format!(
        "WITH sluice_q({}) AS (\n{rendered}\n) SELECT {} FROM sluice_q",
        aliases.join(", "),
        select.join(", ")
    )
}

/// How parameter `i` of type `ty` is named in messages: its label (a
/// typed write's column), else `parameter $n (type)`.
fn param_label<T: codec::PgType + ?Sized>(labels: &[String], i: usize, ty: &T) -> String {
    labels
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("parameter ${} ({})", i + 1, codec::type_name(ty)))
}

/// A value that cannot be a parameter, named by its label.
fn value_error(label: &str, e: codec::CodecError) -> DbError {
    DbError::Value(match e {
        codec::CodecError::InvalidParam { value, .. } => format!("{label}: invalid input {value}"),
        codec::CodecError::OutOfRange { value, .. } => format!("{label}: {value} is out of range"),
        other => format!("{label}: {other}"),
    })
}

/// The error a call gets when the server cannot be reached.
/// Whether `e`, met on a pooled connection before anything ran on it, says
/// the connection itself is gone: its socket closed, or the server ended
/// its session while it was idle (a shutdown's 57P01, SQLSTATE classes 57P
/// and 08), rather than that the statement failed.
fn is_dead_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
        _ => false,
    }
}

fn unreachable_error(cause: String) -> DbError {
    DbError::Connection(format!("database unreachable: {cause}"))
}

/// Resolves a connection string on a blocking thread (it may read the
/// password file and look for sockets and certificates), with the read
/// path's TLS connector (which reads the certificates it names).
async fn resolve_off_thread(
    conninfo: &str,
) -> Result<(Target, tokio_postgres_rustls::MakeRustlsConnect), DbError> {
    let conninfo = conninfo.to_string();
    tokio::task::spawn_blocking(move || {
        let target = conninfo::parse(&conninfo)
            .and_then(|info| conninfo::resolve(&info, &conninfo::ProcessEnvironment))
            .map_err(|e| DbError::Connection(e.to_string()))?;
        let tls = reads::tls::connector(&target.link.tls).map_err(DbError::Connection)?;
        Ok((target, tls))
    })
    .await
    .map_err(|e| DbError::Connection(format!("resolving the connection string: {e}")))?
}

/// Why a connection attempt to `endpoint` failed, in words.
fn connect_cause(e: &sqlx::Error, endpoint: &Endpoint, has_password: bool) -> String {
    match e {
        sqlx::Error::Io(io) => io_cause(io, endpoint),
        sqlx::Error::Tls(tls) => format!("TLS with {endpoint} failed: {tls}"),
        sqlx::Error::Database(db) => {
            server_refusal(db.code().as_deref(), db.message(), endpoint, has_password)
        }
        other => format!("{endpoint}: {other}"),
    }
}

/// A connection attempt's I/O failure, in words (both drivers).
fn io_cause(io: &std::io::Error, endpoint: &Endpoint) -> String {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused => format!("connection refused at {endpoint}"),
        ErrorKind::NotFound => format!("no server socket at {endpoint}"),
        ErrorKind::PermissionDenied => format!("permission denied for {endpoint}"),
        ErrorKind::TimedOut => format!("connecting to {endpoint} timed out"),
        // rustls reports a failed handshake (an untrusted certificate, a
        // wrong name) this way.
        ErrorKind::InvalidData => format!("TLS with {endpoint} failed: {io}"),
        _ if io.to_string().contains("lookup address")
            || io.to_string().contains("failed to lookup") =>
        {
            format!("no such host: cannot resolve {endpoint} ({io})")
        }
        _ => format!("cannot connect to {endpoint}: {io}"),
    }
}

/// The server's refusal of a connection, in words (both drivers).
fn server_refusal(
    code: Option<&str>,
    message: &str,
    endpoint: &Endpoint,
    has_password: bool,
) -> String {
    match code {
        Some("28P01") if !has_password => format!(
            "authentication failed at {endpoint}: {message} (no password was given: \
             set one in the connection string, PGPASSWORD or ~/.pgpass)"
        ),
        Some("28P01") => format!("authentication failed at {endpoint}: {message}"),
        Some("28000") => format!("connection rejected by {endpoint}: {message}"),
        Some("57P03") => format!("{endpoint} is not accepting connections: {message}"),
        _ => format!("{endpoint}: {message}"),
    }
}

fn statement_param_types(
    statement: &sqlx::postgres::PgStatement,
) -> Result<Vec<PgTypeInfo>, DbError> {
    match statement.parameters() {
        Some(sqlx::Either::Left(types)) => Ok(types.to_vec()),
        Some(sqlx::Either::Right(0)) | None => Ok(Vec::new()),
        Some(sqlx::Either::Right(_)) => Err(DbError::Value(
            "the server did not describe the parameter types".into(),
        )),
    }
}

fn check_param_count(expected: usize, given: usize) -> Result<(), DbError> {
    if expected != given {
        return Err(DbError::Value(format!(
            "the statement has {expected} parameter(s) ($1…) but {given} value(s) were given"
        )));
    }
    Ok(())
}

/// Reads rows up to `limits.max_rows` (reporting whether more existed),
/// failing as soon as their values pass `limits.max_bytes`, so an oversized
/// result is never held in memory whole.
async fn read_rows<'a>(
    mut stream: impl futures::Stream<Item = Result<PgRow, sqlx::Error>> + Unpin + 'a,
    limits: ResultLimits,
) -> Result<(Vec<Vec<Value>>, bool), DbError> {
    let mut rows = Vec::new();
    let mut bytes: u64 = 0;
    while let Some(row) = stream.try_next().await? {
        if rows.len() >= limits.max_rows as usize {
            return Ok((rows, true));
        }
        rows.push(decode_row(&row, &mut bytes)?);
        if bytes > limits.max_bytes {
            return Err(DbError::ResultTooLarge {
                limit: limits.max_bytes,
            });
        }
    }
    Ok((rows, false))
}

/// Decodes one row, adding the size of its values to `bytes`.
fn decode_row(row: &PgRow, bytes: &mut u64) -> Result<Vec<Value>, DbError> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if let Ok(b) = raw.as_bytes() {
                *bytes += b.len() as u64;
            }
            codec::decode(raw).map_err(DbError::from)
        })
        .collect()
}
