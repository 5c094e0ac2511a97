//! State that replicas of sluice share through the database they serve
//! (`[http] shared_state = "postgres"`), so that several instances behind a
//! load balancer allow exactly what one would: the nonces of signed
//! requests already spent, and a token bucket per caller.
//!
//! Both live in two UNLOGGED tables of sluice's own schema, reached on a
//! connection of sluice's own (never a plugin's grant or role). A request
//! costs one prepared statement: it spends the nonce, and only if the nonce
//! was fresh takes a token from the bucket, computed on the database's
//! clock (the generic cell rate algorithm: a bucket is the theoretical
//! arrival time of its next request, so it is one row updated atomically,
//! whatever the replicas' clocks say). Rows past their time are deleted by
//! [`SharedState::sweep`], which every replica runs now and then.

use super::{Database, DbError, quote_ident};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, Statement};

/// A nonce stays spent this much longer than its timestamp would be
/// accepted, for replicas whose clocks disagree with each other.
const CLOCK_MARGIN_S: u64 = 60;
/// After a failed connection attempt, requests fail at once for this long
/// rather than each trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Names a lock taken while the tables are created, so that replicas
/// starting together do not race to create them.
const SETUP_LOCK: i64 = 0x736c_7569_6365_0001;

/// Why the shared state could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the shared state in PostgreSQL cannot be reached: {0}")]
    Unavailable(String),
}

/// What a request may do, as the shared state says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// The nonce (if any) was fresh and a token was taken.
    Admitted,
    /// The nonce was spent already, on this replica or another.
    Replay,
    /// The caller's bucket is empty; a token is there after this long.
    Limited(Duration),
}

/// A signed request's nonce, spent until `expires` (unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Spend<'a> {
    pub key: &'a str,
    pub nonce: &'a str,
    pub expires: u64,
}

/// A rate: `per_minute` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_minute: u32,
    pub burst: u32,
}

/// The shared state's connection and its prepared statement.
struct Ready {
    client: Client,
    admit: Statement,
}

/// Replay protection and rate limits shared by every replica that points
/// at the same database.
pub struct SharedState {
    db: Arc<Database>,
    /// The schema, quoted.
    schema: String,
    /// How long one request's statement may take.
    timeout: Duration,
    current: Mutex<Option<Arc<Ready>>>,
    /// Held while connecting, so that one attempt runs at a time; holds
    /// until when the last failure stands, and why it failed.
    connecting: tokio::sync::Mutex<Option<(Instant, String)>>,
}

impl SharedState {
    /// Connects, creates the schema and its tables if they are missing,
    /// and prepares the statement every request runs. An error here says
    /// what to grant or change.
    pub async fn open(
        db: Arc<Database>,
        schema: &str,
        timeout: Duration,
    ) -> Result<SharedState, DbError> {
        let state = SharedState {
            db,
            schema: quote_ident(schema),
            timeout,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(None),
        };
        let client = state.db.own_connection().await?;
        state.create_tables(&client, schema).await?;
        let ready = state
            .prepare(client)
            .await
            .map_err(|e| setup_error(schema, &e))?;
        *state.lock_current() = Some(Arc::new(ready));
        // One request's statement, now: a role that may not write the
        // tables fails the start rather than every signed request.
        let unlimited = Quota {
            per_minute: u32::MAX,
            burst: u32::MAX,
        };
        state.admit(None, "sluice:start", unlimited).await.map_err(
            |StateError::Unavailable(cause)| {
                DbError::Connection(format!(
                    "the shared HTTP state in schema {schema:?} does not work: {cause}; grant \
                     sluice's database role SELECT, INSERT, UPDATE and DELETE on its tables"
                ))
            },
        )?;
        Ok(state)
    }

    async fn create_tables(&self, client: &Client, schema: &str) -> Result<(), DbError> {
        let s = &self.schema;
        // Only what is missing is created, so a role without CREATE on the
        // database can use a schema and tables an administrator made.
        let (nonces, rate) = (format!("{s}.http_nonces"), format!("{s}.http_rate"));
        let exists: bool = client
            .query_one(
                "SELECT pg_catalog.to_regclass($1) IS NOT NULL \
                 AND pg_catalog.to_regclass($2) IS NOT NULL",
                &[&nonces, &rate],
            )
            .await
            .map_err(|e| setup_error(schema, &e))?
            .get(0);
        if exists {
            return Ok(());
        }
        let create = format!(
            "BEGIN;
             SELECT pg_catalog.pg_advisory_xact_lock({SETUP_LOCK});
             CREATE SCHEMA IF NOT EXISTS {s};
             CREATE UNLOGGED TABLE IF NOT EXISTS {s}.http_nonces (
                 key_id text NOT NULL,
                 nonce text NOT NULL,
                 expires_at double precision NOT NULL,
                 PRIMARY KEY (key_id, nonce));
             CREATE UNLOGGED TABLE IF NOT EXISTS {s}.http_rate (
                 bucket bytea PRIMARY KEY,
                 tat double precision NOT NULL);
             COMMIT;"
        );
        if let Err(e) = client.batch_execute(&create).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(setup_error(schema, &e));
        }
        tracing::info!(schema, "created the shared HTTP state tables");
        Ok(())
    }

    /// Session settings for sluice's own statements, and the prepared one.
    async fn prepare(&self, client: Client) -> Result<Ready, tokio_postgres::Error> {
        let timeout_ms = self.timeout.as_millis().max(1);
        // Every name is qualified, so the search path names nothing that
        // could be planted; the tables are unlogged, so waiting for a WAL
        // flush at commit would buy nothing.
        client
            .batch_execute(&format!(
                "SET search_path = pg_catalog; SET synchronous_commit = off; \
                 SET default_transaction_read_only = off; \
                 SET statement_timeout = {timeout_ms}; SET lock_timeout = {timeout_ms}"
            ))
            .await?;
        let admit = client.prepare(&admit_sql(&self.schema)).await?;
        Ok(Ready { client, admit })
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Arc<Ready>>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open connection, or a new one (one attempt at a time; while the
    /// last one failed recently, its error at once).
    async fn ready(&self) -> Result<Arc<Ready>, StateError> {
        let open = |current: &Option<Arc<Ready>>| {
            current.as_ref().filter(|r| !r.client.is_closed()).cloned()
        };
        if let Some(ready) = open(&self.lock_current()) {
            return Ok(ready);
        }
        let mut failed = self.connecting.lock().await;
        if let Some(ready) = open(&self.lock_current()) {
            return Ok(ready);
        }
        if let Some((until, why)) = failed.as_ref()
            && Instant::now() < *until
        {
            return Err(StateError::Unavailable(why.clone()));
        }
        let connected = match self.db.own_connection().await {
            Ok(client) => self.prepare(client).await.map_err(|e| cause(&e)),
            Err(e) => Err(e.to_string()),
        };
        match connected {
            Ok(ready) => {
                if failed.take().is_some() {
                    tracing::info!("the shared HTTP state is reachable again");
                }
                let ready = Arc::new(ready);
                *self.lock_current() = Some(ready.clone());
                Ok(ready)
            }
            Err(why) => {
                if failed.is_none() {
                    tracing::error!("the shared HTTP state cannot be reached: {why}");
                }
                *failed = Some((Instant::now() + RETRY_AFTER, why.clone()));
                Err(StateError::Unavailable(why))
            }
        }
    }

    /// Spends `spend`'s nonce, if any, and only if it was fresh takes a
    /// token from the bucket of `owner`, in one round trip.
    pub async fn admit(
        &self,
        spend: Option<Spend<'_>>,
        owner: &str,
        quota: Quota,
    ) -> Result<Admission, StateError> {
        let ready = self.ready().await?;
        let interval = 60.0 / f64::from(quota.per_minute.max(1));
        let tolerance = interval * f64::from(quota.burst.max(1));
        let bucket: [u8; 32] = Sha256::digest(owner.as_bytes()).into();
        let (key, nonce, expires) = match spend {
            Some(s) => (
                Some(s.key),
                Some(s.nonce),
                s.expires.saturating_add(CLOCK_MARGIN_S) as f64,
            ),
            None => (None, None, 0.0),
        };
        let bucket = bucket.as_slice();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&key, &nonce, &expires, &bucket, &interval, &tolerance];
        let query = ready.client.query_one(&ready.admit, &params);
        let row = match tokio::time::timeout(self.timeout, query).await {
            Ok(Ok(row)) => row,
            Ok(Err(e)) => return Err(StateError::Unavailable(cause(&e))),
            Err(_) => {
                return Err(StateError::Unavailable(format!(
                    "no answer within {} ms ([http] shared_state_timeout_ms)",
                    self.timeout.as_millis()
                )));
            }
        };
        let read = |e: tokio_postgres::Error| StateError::Unavailable(cause(&e));
        let fresh: bool = row.try_get(0).map_err(read)?;
        let admitted: bool = row.try_get(1).map_err(read)?;
        let tat: Option<f64> = row.try_get(2).map_err(read)?;
        let now: f64 = row.try_get(3).map_err(read)?;
        Ok(if !fresh {
            Admission::Replay
        } else if admitted {
            Admission::Admitted
        } else {
            // The next token: when max(tat, now) + interval - now fits.
            let wait = tat.unwrap_or(now) + interval - tolerance - now;
            Admission::Limited(Duration::from_secs_f64(wait.clamp(0.001, 86_400.0)))
        })
    }

    /// Deletes nonces past their time and buckets that are full again (a
    /// full bucket is the same as none); how many rows went.
    pub async fn sweep(&self) -> Result<u64, StateError> {
        let ready = self.ready().await?;
        let s = &self.schema;
        let sql = format!(
            "WITH now AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t), \
             n AS (DELETE FROM {s}.http_nonces WHERE expires_at < (SELECT t FROM now) RETURNING 1), \
             r AS (DELETE FROM {s}.http_rate WHERE tat < (SELECT t FROM now) RETURNING 1) \
             SELECT (SELECT count(*) FROM n) + (SELECT count(*) FROM r)"
        );
        let query = ready.client.query_one(&sql, &[]);
        match tokio::time::timeout(self.timeout * 10, query).await {
            Ok(Ok(row)) => Ok(row
                .try_get::<_, i64>(0)
                .map_or(0, |n| u64::try_from(n).unwrap_or(0))),
            Ok(Err(e)) => Err(StateError::Unavailable(cause(&e))),
            Err(_) => Err(StateError::Unavailable("the sweep took too long".into())),
        }
    }
}

/// One request: the nonce is spent (a row inserted, or one past its time
/// taken over) and, only if it was fresh, a token is taken: the bucket's
/// theoretical arrival time moves one interval on from max(itself, now),
/// unless that would put it more than the burst ahead of now. The outer
/// SELECT sees the tables as they were before, so it reads the bucket the
/// decision was made on.
///
/// $1 key id, $2 nonce (NULL without one), $3 the nonce's expiry, $4 the
/// bucket, $5 the interval between tokens, $6 the burst in seconds.
fn admit_sql(s: &str) -> String {
    format!(
        "WITH now AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t), \
         spent AS ( \
             INSERT INTO {s}.http_nonces AS n (key_id, nonce, expires_at) \
             SELECT $1::text, $2::text, $3::float8 WHERE $2::text IS NOT NULL \
             ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at \
                 WHERE n.expires_at < (SELECT t FROM now) \
             RETURNING 1), \
         fresh AS (SELECT $2::text IS NULL OR EXISTS (SELECT 1 FROM spent) AS ok), \
         taken AS ( \
             INSERT INTO {s}.http_rate AS r (bucket, tat) \
             SELECT $4::bytea, (SELECT t FROM now) + $5::float8 FROM fresh WHERE fresh.ok \
             ON CONFLICT (bucket) DO UPDATE \
                 SET tat = GREATEST(r.tat, (SELECT t FROM now)) + $5::float8 \
                 WHERE GREATEST(r.tat, (SELECT t FROM now)) + $5::float8 - (SELECT t FROM now) \
                     <= $6::float8 \
             RETURNING 1) \
         SELECT (SELECT ok FROM fresh), EXISTS (SELECT 1 FROM taken), \
             (SELECT r.tat FROM {s}.http_rate r WHERE r.bucket = $4::bytea), \
             (SELECT t FROM now)"
    )
}

/// What went wrong, in PostgreSQL's words where it said something
/// (tokio-postgres prints only "db error" for those).
fn cause(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn setup_error(schema: &str, e: &tokio_postgres::Error) -> DbError {
    let cause = cause(e);
    DbError::Connection(format!(
        "cannot set up the shared HTTP state in schema {schema:?} ([http] shared_state = \
         \"postgres\"): {cause}; let sluice's database role create that schema (GRANT CREATE \
         ON DATABASE), or create it and its tables for the role ahead (see the README), or \
         name another with [http] shared_state_schema"
    ))
}
