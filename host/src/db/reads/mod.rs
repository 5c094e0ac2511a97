//! The gated read path, on tokio-postgres: a read sends its guard
//! transaction, the check that its relations still resolve as cached, and
//! its statement in one flush, and waits once.
//!
//! - **One round trip** when the relations' resolution and the statement
//!   are known on the connection: `BEGIN READ ONLY; SET LOCAL …; SELECT
//!   <assertion>` (one simple query), the prepared `DECLARE … CURSOR` with
//!   the parameters, and `FETCH FORWARD cap+1`. Each is its own request, so
//!   when the assertion fails (a relation was dropped, renamed or shadowed
//!   since) PostgreSQL refuses everything after it in the aborted
//!   transaction and nothing of the statement runs; the read resolves
//!   afresh and tries again.
//! - **Two** otherwise: the transaction begins and the names are resolved
//!   (and the statement prepared) first, the grant is checked against that
//!   answer, then the statement runs.
//! - The ROLLBACK is queued when the connection is given back and never
//!   waited for; the next read's requests follow it on the same socket.
//!
//! sqlx cannot pipeline, so writes and the catalog stay there until they
//! move too; both pools share one bound on connections in use.

mod pool;
pub(crate) mod tls;

use super::codec;
use super::conninfo::Link;
use super::value::Value;
use super::{ColumnMeta, DbError, Params, ResultLimits, RowSource, Rows, TxSettings, quote_ident};
use futures::TryStreamExt as _;
use pool::{Conn, Lease, Pool};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{RowStream, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

/// A read the policy passed, as the gate hands it over.
pub struct Read<'a> {
    pub settings: &'a TxSettings,
    /// The statement's relation names, in `to_regclass` form.
    pub relations: &'a [String],
    pub sql: &'a str,
    pub params: Params<'a>,
    pub limits: ResultLimits,
    pub source: RowSource,
    /// The statement rendered again, for wrapping when a result type has
    /// no binary decoder.
    pub fallback: &'a (dyn Fn() -> String + Sync),
}

/// The grant check a read makes between resolving its relations and
/// running: `(schema, name)` per name, `None` for a name that is no
/// relation; it refuses with its own error.
pub type Check<'c, E> = dyn FnMut(&[Option<(String, String)>]) -> Result<(), E> + Send + 'c;

/// What each relation name resolved to: `(oid, schema, name)`, or `None`
/// for a name that is no relation (a CTE, a function in FROM).
pub type Resolution = Vec<Option<(u32, String, String)>>;

/// Resolutions kept; past that the cache starts over.
const RESOLUTIONS_KEPT: usize = 4096;

/// Resolutions by the role a read runs as and its names. A hit is only a
/// guess that every read checks inside its own transaction (the assertion),
/// so the cache can never make a read see what PostgreSQL would not resolve.
#[derive(Default)]
pub(super) struct Resolutions(Mutex<HashMap<ResolutionKey, Arc<Resolution>>>);

/// The role a read runs as, and its relation names.
type ResolutionKey = (Option<String>, Vec<String>);

impl Resolutions {
    fn get(&self, role: &Option<String>, names: &[String]) -> Option<Arc<Resolution>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(role.clone(), names.to_vec())).cloned()
    }

    fn put(&self, role: &Option<String>, names: &[String], resolution: Arc<Resolution>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= RESOLUTIONS_KEPT {
            map.clear();
        }
        map.insert((role.clone(), names.to_vec()), resolution);
    }

    fn forget(&self, role: &Option<String>, names: &[String]) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&(role.clone(), names.to_vec()));
    }
}

/// A statement prepared on one connection.
pub(super) struct Prepared {
    /// The result columns of the statement as written.
    columns: Vec<(String, Type)>,
    /// What runs: the statement, or its wrapping that casts undecodable
    /// columns to text (for [`RowSource::Stream`]).
    run: Statement,
    /// `DECLARE sluice_rows … FOR <run>` (for [`RowSource::Cursor`]).
    declare: Option<Statement>,
}

impl Prepared {
    /// Whether a cursor over `run` still has the shape it was prepared
    /// with. A prepared DECLARE has no result of its own, so PostgreSQL
    /// does not report a changed shape as it does for the statement
    /// itself ("cached plan must not change result type").
    fn same_shape(&self, described: &[tokio_postgres::Column]) -> bool {
        let run = self.run.columns();
        run.len() == described.len()
            && run
                .iter()
                .zip(described)
                .all(|(a, b)| a.name() == b.name() && a.type_() == b.type_())
    }
}

/// The read path: its pool and what it learned.
pub(super) struct Reads {
    link: Link,
    tls: MakeRustlsConnect,
    pool: Pool,
    resolutions: Resolutions,
}

/// Why one attempt at a read failed.
enum Failure<E> {
    /// The grant check refused the resolved relations.
    Refused(E),
    Db(DbError),
    /// The cached resolution no longer holds.
    Stale,
    /// A prepared statement's result type changed under it (DDL).
    PlanChanged,
    /// The connection was dead before anything ran on it.
    Dead(DbError),
}

impl<E> From<DbError> for Failure<E> {
    fn from(e: DbError) -> Self {
        Failure::Db(e)
    }
}

impl<E> From<tokio_postgres::Error> for Failure<E> {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_plan_change(&e) {
            return Failure::PlanChanged;
        }
        Failure::Db(e.into())
    }
}

/// The message of the error the assertion raises.
const STALE_MARK: &str = "sluice: stale relation cache";

/// Relation names to what PostgreSQL resolves them to, in order.
const RESOLVE_SQL: &str = "SELECT c.oid, n.nspname::pg_catalog.text, c.relname::pg_catalog.text \
     FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS u(name, i) \
     LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(u.name) \
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     ORDER BY u.i";

/// The cursor every capped read fetches from; one per transaction.
const CURSOR: &str = "sluice_rows";

impl Reads {
    pub(super) fn new(link: Link, tls: MakeRustlsConnect) -> Reads {
        Reads {
            link,
            tls,
            pool: Pool::default(),
            resolutions: Resolutions::default(),
        }
    }

    /// Runs `read`, calling `check` with the relations' resolution before
    /// the statement may run (it refuses with its own error).
    pub(super) async fn read<E: From<DbError>>(
        &self,
        db: &super::Database,
        read: &Read<'_>,
        check: &mut Check<'_, E>,
    ) -> Result<Rows, E> {
        let role = &read.settings.role;
        let mut dead = 0;
        // Each kind of change under the read is retried once: a relation
        // replaced can need both.
        let (mut resolved_again, mut prepared_again) = (false, false);
        // A retry after DDL stays on its connection, whose statements were
        // just prepared again.
        let mut held: Option<Lease<'_>> = None;
        loop {
            let cached = self.resolutions.get(role, read.relations);
            if let Some(known) = &cached {
                // Checked before anything is sent: a refusal costs nothing.
                check(&named(known))?;
            }
            // A held lease whose connection was closed is dropped here,
            // freeing its permit before another is taken.
            let mut lease = match held.take().filter(|l| l.conn.is_some()) {
                Some(lease) => lease,
                None => self.lease(db).await?,
            };
            // A resolution the grant passed is kept whatever the statement
            // does next: the statement's failure says nothing against it.
            let mut keep = |fresh: Resolution| {
                self.resolutions.put(role, read.relations, Arc::new(fresh));
            };
            let outcome = attempt(&mut lease, read, cached.as_deref(), check, &mut keep).await;
            match outcome {
                Ok(rows) => return Ok(rows),
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Db(e)) => return Err(e.into()),
                Err(Failure::Stale) if !resolved_again => {
                    resolved_again = true;
                    tracing::debug!("a cached relation resolution went stale; resolving again");
                    self.resolutions.forget(role, read.relations);
                    held = Some(lease.restart());
                }
                Err(Failure::PlanChanged) if !prepared_again => {
                    prepared_again = true;
                    tracing::debug!("a prepared statement's result changed; preparing again");
                    if let Ok(conn) = lease.conn() {
                        conn.statements.clear();
                    }
                    held = Some(lease.restart());
                }
                Err(Failure::Dead(e)) if dead <= db.max_connections => {
                    dead += 1;
                    tracing::debug!("a pooled read connection was dead ({e}); taking another");
                    lease.discard();
                }
                Err(Failure::Stale | Failure::PlanChanged) => {
                    return Err(DbError::Connection(
                        "the database's relations kept changing under the read; try again".into(),
                    )
                    .into());
                }
                Err(Failure::Dead(e)) => return Err(e.into()),
            }
        }
    }

    /// A connection of the read pool, new if none is idle.
    async fn lease(&self, db: &super::Database) -> Result<Lease<'_>, DbError> {
        if db.health.is_down() {
            // Fails at once while the outage lasts; the first probe that
            // gets through ends it.
            db.probe().await.map_err(super::unreachable_error)?;
        }
        let permit = db.permit().await?;
        let conn = match self.pool.take_idle() {
            Some(conn) => conn,
            None => match self.connect(db).await {
                Ok(conn) => conn,
                Err(cause) => {
                    db.health.mark_down(&cause);
                    return Err(super::unreachable_error(cause));
                }
            },
        };
        db.health.mark_up();
        Ok(Lease::new(conn, &self.pool, permit))
    }

    /// A new connection, its server process recorded (to cancel its work
    /// at exit); the error is why, in words.
    async fn connect(&self, db: &super::Database) -> Result<Conn, String> {
        let client = self.connect_client(db).await?;
        let row = client
            .query_one(super::BACKEND_SQL, &[])
            .await
            .map_err(|e| format!("{}: {e}", db.endpoint))?;
        db.remember_backend(super::Backend {
            pid: row.try_get(0).map_err(|e| e.to_string())?,
            started: row.try_get(1).map_err(|e| e.to_string())?,
        });
        Ok(Conn::new(client))
    }

    /// A new connection to the server, within `connect_timeout`; its
    /// connection task runs until the client is dropped.
    pub(super) async fn connect_client(
        &self,
        db: &super::Database,
    ) -> Result<tokio_postgres::Client, String> {
        let connecting = self.link.config.connect(self.tls.clone());
        let (client, connection) = match tokio::time::timeout(db.connect_timeout, connecting).await
        {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(connect_cause(&e, &db.endpoint, db.has_password)),
            Err(_) => return Err(db.no_answer()),
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("a connection ended: {e}");
            }
        });
        Ok(client)
    }
}

/// The names a resolution gives, as the grant check reads them.
fn named(resolution: &Resolution) -> Vec<Option<(String, String)>> {
    resolution
        .iter()
        .map(|r| r.as_ref().map(|(_, s, n)| (s.clone(), n.clone())))
        .collect()
}

/// One try at a read on one connection; a resolution it made and the grant
/// passed goes to `keep`.
async fn attempt<E>(
    lease: &mut Lease<'_>,
    read: &Read<'_>,
    cached: Option<&Resolution>,
    check: &mut Check<'_, E>,
    keep: &mut (dyn FnMut(Resolution) + Send),
) -> Result<Rows, Failure<E>> {
    let begin = begin_sql(read.settings, cached.map(|c| (read.relations, c)));
    let mut begun = false;
    let known = lease.conn()?.statements.get(read.sql).cloned();

    // First flush, when something must be learnt before the statement can
    // go: the resolution (for the grant check), the statement's shape.
    let prepared = match (&known, cached) {
        (Some(prepared), Some(_)) => prepared.clone(),
        _ => {
            lease.in_tx = true;
            lease.settled = false;
            let conn = lease.conn()?;
            let client = &conn.client;
            let names: Vec<&str> = read.relations.iter().map(String::as_str).collect();
            let (began, resolved, prepared) = futures::join!(
                open(client, &begin, read.settings),
                async {
                    match cached {
                        None if !names.is_empty() => client
                            .query_typed(
                                RESOLVE_SQL,
                                &[(&names as &(dyn ToSql + Sync), Type::TEXT_ARRAY)],
                            )
                            .await
                            .map(Some),
                        _ => Ok(None),
                    }
                },
                async {
                    match &known {
                        Some(prepared) => Ok(prepared.clone()),
                        None => prepare(client, read.sql, read.source).await,
                    }
                },
            );
            lease.settled = true;
            opened(began, cached.is_some())?;
            begun = true;
            if cached.is_none() {
                let resolution: Resolution = match resolved? {
                    Some(rows) => rows
                        .iter()
                        .map(|row| -> Result<_, tokio_postgres::Error> {
                            let oid: Option<u32> = row.try_get(0)?;
                            let schema: Option<String> = row.try_get(1)?;
                            let name: Option<String> = row.try_get(2)?;
                            Ok(oid.zip(schema).zip(name).map(|((o, s), n)| (o, s, n)))
                        })
                        .collect::<Result<_, _>>()?,
                    None => Vec::new(),
                };
                check(&named(&resolution)).map_err(Failure::Refused)?;
                keep(resolution);
            }
            let mut prepared = prepared?;
            if !prepared.columns.iter().all(|(_, t)| codec::is_decodable(t)) && known.is_none() {
                lease.settled = false;
                let conn = lease.conn()?;
                let wrapped = wrap(&conn.client, prepared, &(read.fallback)(), read.source).await;
                lease.settled = true;
                prepared = wrapped?;
            }
            if known.is_none() {
                lease.conn()?.remember(read.sql, prepared.clone());
            }
            prepared
        }
    };

    let types = match &prepared.declare {
        Some(declare) if read.source == RowSource::Cursor => declare.params(),
        _ => prepared.run.params(),
    };
    super::check_param_count(types.len(), read.params.values.len())?;
    let mut encoded = Vec::with_capacity(types.len());
    let mut via_server = Vec::new();
    for (i, (value, ty)) in read.params.values.iter().zip(types).enumerate() {
        let direct = codec::encode_binary(value, ty)
            .map_err(|e| super::value_error(&super::param_label(read.params.labels, i, ty), e))?;
        if direct.is_none() {
            via_server.push(i);
        }
        encoded.push(direct.unwrap_or_default());
    }
    if !via_server.is_empty() {
        lease.in_tx = true;
        lease.settled = false;
        let client = &lease.conn()?.client;
        // The conversion runs inside the transaction, in the same flush as
        // its start when nothing began it yet.
        let (began, converted) = futures::join!(
            async {
                if begun {
                    Ok(())
                } else {
                    open(client, &begin, read.settings).await
                }
            },
            convert_on_server(client, types, read.params, &via_server),
        );
        lease.settled = true;
        opened(began, cached.is_some())?;
        begun = true;
        let converted = converted?;
        for (i, bytes) in via_server.into_iter().zip(converted) {
            encoded[i] = bytes;
        }
    }
    let params: Vec<Raw<'_>> = encoded.iter().map(|b| Raw(b.as_deref())).collect();

    // The flush that runs the statement, with the transaction's start when
    // nothing before needed it.
    lease.in_tx = true;
    lease.settled = false;
    let client = &lease.conn()?.client;
    let begin_here = async {
        if begun {
            Ok(())
        } else {
            open(client, &begin, read.settings).await
        }
    };
    let stream = match (read.source, &prepared.declare) {
        (RowSource::Cursor, Some(declare)) => {
            let fetch = format!(
                "FETCH FORWARD {} FROM {CURSOR}",
                u64::from(read.limits.max_rows) + 1
            );
            let no_params: [(&(dyn ToSql + Sync), Type); 0] = [];
            // The FETCH is also described on its own: its shape is the
            // cursor's as it is now, which a result without rows would not
            // tell.
            let (began, declared, described, fetched) = futures::join!(
                begin_here,
                client.execute_raw(declare, params.iter()),
                client.prepare(&fetch),
                client.query_typed_raw(&fetch, no_params),
            );
            // Every request has its first answer; the rows come next.
            lease.settled = true;
            opened(began, cached.is_some())?;
            declared?;
            if !prepared.same_shape(described?.columns()) {
                return Err(Failure::PlanChanged);
            }
            fetched?
        }
        _ => {
            let (began, stream) =
                futures::join!(begin_here, client.query_raw(&prepared.run, params.iter()));
            lease.settled = true;
            opened(began, cached.is_some())?;
            stream?
        }
    };
    // The statement runs while its rows are read: a caller gone now leaves
    // the connection busy, so it is closed rather than given back.
    lease.settled = false;
    let read_back = read_rows(stream, read.limits).await;
    lease.settled = true;
    let (rows, truncated) = read_back?;
    Ok(Rows {
        columns: prepared
            .columns
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

/// Sends the transaction's opening and, when the call has one, the
/// caller's identity ([`super::IDENTITY_SQL`], its values bound), one
/// after the other in the same flush.
async fn open(
    client: &tokio_postgres::Client,
    begin: &str,
    settings: &TxSettings,
) -> Result<(), tokio_postgres::Error> {
    if settings.identity.is_empty() {
        return client.batch_execute(begin).await;
    }
    let (names, values) = settings.identity_arrays();
    let params = [
        (&names as &(dyn ToSql + Sync), Type::TEXT_ARRAY),
        (&values as &(dyn ToSql + Sync), Type::TEXT_ARRAY),
    ];
    let (began, identified) = futures::join!(
        client.batch_execute(begin),
        client.query_typed(super::IDENTITY_SQL, &params),
    );
    // The opening's error first: it is the one that says what went wrong
    // (a stale resolution, a role that cannot be set).
    began?;
    identified.map(|_| ())
}

/// The outcome of the transaction's opening statements: the assertion's
/// failure is a stale cache, and a connection that was dead before anything
/// ran may be replaced.
fn opened<E>(began: Result<(), tokio_postgres::Error>, asserted: bool) -> Result<(), Failure<E>> {
    match began {
        Ok(()) => Ok(()),
        Err(e)
            if asserted
                && e.as_db_error()
                    .is_some_and(|db| db.message().contains(STALE_MARK)) =>
        {
            Err(Failure::Stale)
        }
        Err(e) if is_dead(&e) => Err(Failure::Dead(e.into())),
        Err(e) => Err(Failure::Db(e.into())),
    }
}

/// The guard transaction's opening, one simple query of sluice's own
/// (nothing of a plugin's is ever sent this way): `BEGIN READ ONLY`, the
/// settings, the role, and, with a cached resolution, the assertion that
/// it still holds.
fn begin_sql(settings: &TxSettings, cached: Option<(&[String], &Resolution)>) -> String {
    let mut sql = super::begin_statement(settings);
    if let Some(role) = &settings.role {
        sql.push_str(&format!(" SET LOCAL ROLE {};", quote_ident(role)));
    }
    if let Some((names, resolution)) = cached
        && !names.is_empty()
    {
        sql.push(' ');
        sql.push_str(&assertion(names, resolution));
        sql.push(';');
    }
    sql
}

/// A statement that fails unless each name still resolves as cached.
///
/// Names are spelled in hex, so that nothing in them is read as SQL
/// whatever the server's string settings. The ELSE branch depends on
/// `to_regclass`, which is STABLE, so the planner cannot fold it into an
/// error ahead of time; its COALESCE keeps it from being NULL (a NULL
/// there would pass).
fn assertion(names: &[String], resolution: &Resolution) -> String {
    let literal = |name: &str| {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        format!("pg_catalog.convert_from(pg_catalog.decode('{hex}', 'hex'), 'UTF8')")
    };
    let conditions: Vec<String> = names
        .iter()
        .zip(resolution)
        .map(|(name, resolved)| match resolved {
            Some((oid, _, _)) => format!(
                "pg_catalog.to_regclass({}) OPERATOR(pg_catalog.=) {oid}::pg_catalog.oid",
                literal(name)
            ),
            None => format!("pg_catalog.to_regclass({}) IS NULL", literal(name)),
        })
        .collect();
    let first = literal(names.first().map_or("", String::as_str));
    format!(
        "SELECT CASE WHEN {} THEN 1 ELSE ('{STALE_MARK}: ' OPERATOR(pg_catalog.||) \
         COALESCE(pg_catalog.to_regclass({first})::pg_catalog.text, 'missing'))::pg_catalog.int4 END",
        conditions.join(" AND ")
    )
}

/// Prepares `sql` and, for a capped read, its cursor, in one flush.
async fn prepare(
    client: &tokio_postgres::Client,
    sql: &str,
    source: RowSource,
) -> Result<Arc<Prepared>, tokio_postgres::Error> {
    let declare_sql = format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR\n{sql}\n");
    let (run, declare) = futures::join!(client.prepare(sql), async {
        match source {
            RowSource::Cursor => client.prepare(&declare_sql).await.map(Some),
            RowSource::Stream => Ok(None),
        }
    });
    let run = run?;
    Ok(Arc::new(Prepared {
        columns: run
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().clone()))
            .collect(),
        declare: declare?,
        run,
    }))
}

/// The statement again, its undecodable columns cast to text.
async fn wrap(
    client: &tokio_postgres::Client,
    prepared: Arc<Prepared>,
    rendered: &str,
    source: RowSource,
) -> Result<Arc<Prepared>, tokio_postgres::Error> {
    let wrapped = super::wrapped_sql(
        prepared.columns.iter().map(|(_, t)| codec::is_decodable(t)),
        rendered,
    );
    let again = prepare(client, &wrapped, source).await?;
    Ok(Arc::new(Prepared {
        columns: prepared.columns.clone(),
        run: again.run.clone(),
        declare: again.declare.clone(),
    }))
}

/// Text forms turned into the binary form of their types by the server
/// (`SELECT CAST($1 AS t1), …` with binary results gives exactly the bytes
/// the type's receive function takes back), for types without an encoder.
async fn convert_on_server(
    client: &tokio_postgres::Client,
    types: &[Type],
    params: Params<'_>,
    which: &[usize],
) -> Result<Vec<codec::Binary>, DbError> {
    let mut casts = Vec::with_capacity(which.len());
    let mut texts: Vec<Option<String>> = Vec::with_capacity(which.len());
    for (n, &i) in which.iter().enumerate() {
        let ty = &types[i];
        casts.push(format!(
            "CAST(${} AS {}.{})",
            n + 1,
            quote_ident(ty.schema()),
            quote_ident(ty.name())
        ));
        texts.push(
            codec::to_text_input(&params.values[i], ty)
                .map_err(|e| super::value_error(&super::param_label(params.labels, i, ty), e))?,
        );
    }
    let sql = format!("SELECT {}", casts.join(", "));
    let typed: Vec<(&(dyn ToSql + Sync), Type)> = texts
        .iter()
        .map(|t| (t as &(dyn ToSql + Sync), Type::TEXT))
        .collect();
    let row = match client.query_typed(&sql, &typed).await {
        Ok(mut rows) if rows.len() == 1 => rows.remove(0),
        Ok(_) => {
            return Err(DbError::Value(
                "converting parameters returned no row".into(),
            ));
        }
        Err(e) => {
            return Err(super::naming_culprit(e.into(), which, &texts, |i| {
                super::param_label(params.labels, i, &types[i])
            }));
        }
    };
    (0..which.len())
        .map(|n| {
            let raw: RawValue<'_> = row.try_get(n)?;
            Ok(raw.0.map(<[u8]>::to_vec))
        })
        .collect()
}

/// Reads rows up to `limits.max_rows` (reporting whether more existed),
/// failing as soon as their values pass `limits.max_bytes`.
async fn read_rows(
    stream: RowStream,
    limits: ResultLimits,
) -> Result<(Vec<Vec<Value>>, bool), DbError> {
    let mut stream = std::pin::pin!(stream);
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

fn decode_row(row: &tokio_postgres::Row, bytes: &mut u64) -> Result<Vec<Value>, DbError> {
    (0..row.len())
        .map(|i| {
            let raw: RawValue<'_> = row.try_get(i)?;
            *bytes += raw.0.map_or(0, |b| b.len() as u64);
            codec::decode_value(row.columns()[i].type_(), raw.0).map_err(DbError::from)
        })
        .collect()
}

/// A parameter already in the binary form of the type PostgreSQL inferred.
#[derive(Debug)]
struct Raw<'a>(Option<&'a [u8]>);

impl ToSql for Raw<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A result value's bytes as they came, for the codec to decode.
struct RawValue<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawValue<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// Whether `e` says the connection itself is gone (its socket closed, or
/// the server ended the session while it was idle: SQLSTATE classes 57P
/// and 08) rather than that a statement failed.
fn is_dead(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() || io_error(e).is_some() {
        return true;
    }
    e.as_db_error().is_some_and(|db| {
        let code = db.code().code();
        code.starts_with("57P") || code.starts_with("08")
    })
}

/// PostgreSQL's "cached plan must not change result type" (a prepared
/// statement whose relations changed shape).
fn is_plan_change(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        db.code().code() == "0A000" && db.message().contains("cached plan must not change")
    })
}

/// The I/O error under `e`, if that is what it is.
pub(super) fn io_error(e: &tokio_postgres::Error) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

/// Why a connection attempt failed, in the words the sqlx pool uses.
fn connect_cause(
    e: &tokio_postgres::Error,
    endpoint: &super::Endpoint,
    has_password: bool,
) -> String {
    if let Some(io) = io_error(e) {
        return super::io_cause(io, endpoint);
    }
    if let Some(db) = e.as_db_error() {
        return super::server_refusal(Some(db.code().code()), db.message(), endpoint, has_password);
    }
    let text = e.to_string();
    if text.contains("TLS") || text.contains("tls") || text.contains("certificate") {
        format!("TLS with {endpoint} failed: {e}")
    } else {
        format!("{endpoint}: {e}")
    }
}
