//! The policy gate: the one place every database host call passes through.
//!
//! It applies the calling plugin's grant ([`crate::policy`]) before anything of
//! the plugin's reaches PostgreSQL, runs what is allowed under the guard
//! settings ([`crate::db`]), and records one audit event per call. Reads and
//! catalog calls are here; the typed writes are in [`write`]. What it needs
//! of the database is the [`Backend`] trait, which [`Database`] implements.

mod analysis;
mod backend;
mod session;
mod statement;
#[cfg(test)]
mod test_backend;
#[cfg(test)]
mod tests;
mod write;

pub use backend::{Backend, Transaction};
pub use session::Session;
pub use statement::{Vetted, WriteOutcome};

use crate::audit::{self, AuditLog, Decision};
use crate::db::catalog::{Relation, RelationDescription};
use crate::db::value::{Scalar, Value};
use crate::db::{
    Database, DbError, Params, PgError, Read, ResultLimits, RowSource, Rows, TxSettings,
};
use crate::policy::{self, Denial, Grant, StatementLimits};
use crate::principal::Principal;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Who is calling: the plugin, the tool it is serving, its grant, and the
/// client the call is for.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub plugin: &'a str,
    pub tool: Option<&'a str>,
    pub grant: &'a Grant,
    pub principal: &'a Principal,
}

/// Why a gated call failed.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Database(PgError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for GateError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Postgres(pg) => GateError::Database(pg),
            DbError::Value(m) => GateError::InvalidInput(m),
            // Says itself what it is: `database unreachable: …`, a busy pool.
            DbError::Connection(m) => GateError::Internal(m),
            DbError::ResultTooLarge { limit } => GateError::Denied(Denial::new(
                "max_result_bytes",
                format!(
                    "the result is larger than this plugin's max_result_bytes ({limit} bytes); \
                     select fewer rows or columns"
                ),
            )),
        }
    }
}

/// Connection exceptions, insufficient resources (too many connections),
/// and the server shutting down or starting up.
fn transient_sqlstate(code: Option<&str>) -> bool {
    code.is_some_and(|code| ["08", "53", "57P"].iter().any(|c| code.starts_with(c)))
}

impl GateError {
    /// The database could not be reached or could not take the work now
    /// (connection trouble, a busy pool, server shutdown or too many
    /// connections), or sluice was too busy to analyse: the same call may
    /// pass later, unlike a denial or an error in the SQL.
    pub fn is_transient(&self) -> bool {
        match self {
            GateError::Internal(_) => true,
            GateError::Database(pg) => transient_sqlstate(pg.sqlstate.as_deref()),
            _ => false,
        }
    }

    /// PostgreSQL's timeout errors, with the limit that set the timeout.
    fn naming_timeout(self, grant: &Grant) -> GateError {
        match self {
            GateError::Database(mut pg)
                if pg.hint.is_none()
                    && matches!(pg.sqlstate.as_deref(), Some("57014" | "55P03")) =>
            {
                pg.hint = Some(format!(
                    "the plugin's timeout_ms limit is {} ms",
                    grant.limits.timeout_ms
                ));
                GateError::Database(pg)
            }
            other => other,
        }
    }
}

/// The gate in front of the database: [`Database`] in the server.
pub struct Gate<B = Database> {
    db: Arc<B>,
    audit: AuditLog,
    analyzer: analysis::Analyzer,
}

/// What a call touched, gathered for its audit event as the call proceeds.
#[derive(Default)]
struct Facts {
    fingerprint: Option<String>,
    relations: Vec<String>,
}

impl<B: Backend> Gate<B> {
    /// The gate, with `limits` on every statement it analyses; starts the
    /// analysis threads.
    pub fn new(db: Arc<B>, audit: AuditLog, limits: StatementLimits) -> std::io::Result<Self> {
        Ok(Gate {
            db,
            audit,
            analyzer: analysis::Analyzer::new(limits)?,
        })
    }

    fn result_limits(grant: &Grant) -> ResultLimits {
        ResultLimits {
            max_rows: grant.limits.max_rows,
            max_bytes: grant.limits.max_result_bytes,
        }
    }

    /// The transaction's settings: the plugin's limits, and the client's
    /// identity. The client's role, when it has one, takes the place of the
    /// plugin's: PostgreSQL is one role at a time, and the client's is the
    /// one that decides which rows its own identity may see. The plugin's
    /// grant still applies, checked here before anything runs.
    fn settings(caller: Caller<'_>, read_only: bool) -> TxSettings {
        TxSettings {
            read_only,
            statement_timeout_ms: caller.grant.limits.timeout_ms,
            role: caller
                .principal
                .role
                .as_deref()
                .map(str::to_string)
                .or_else(|| caller.grant.role.clone()),
            identity: caller.principal.settings(),
            disposable: false,
        }
    }

    /// Runs one gated call: its error names the timeout limit when that was
    /// what ended it, and it leaves exactly one audit event, whatever happens.
    async fn audited<T>(
        &self,
        caller: Caller<'_>,
        call: &str,
        count: impl Fn(&T) -> usize,
        body: impl AsyncFnOnce(&mut Facts) -> Result<T, GateError>,
    ) -> Result<T, GateError> {
        let started = Instant::now();
        let mut facts = Facts::default();
        // Inside the plugin call's span, which names the plugin, tool and call.
        let span = tracing::info_span!("db_call", call);
        let result = body(&mut facts)
            .instrument(span)
            .await
            .map_err(|e| e.naming_timeout(caller.grant));
        self.audit(caller, call, facts, started, &result, count);
        result
    }

    /// One read-only statement with parameters: [`Gate::query_in`] with a
    /// session of its own, closed after it if it was opened.
    pub async fn query(
        &self,
        caller: Caller<'_>,
        sql: &str,
        params: &[Value],
    ) -> Result<Rows, GateError> {
        self.query_in(&mut Session::default(), caller, sql, params)
            .await
    }

    /// One read-only statement with parameters, as one of a plugin call's:
    /// in `session` once that is open (see the `session` module), or when the
    /// statement calls a function that keeps session state, which opens
    /// it; on a pooled connection otherwise.
    pub async fn query_in(
        &self,
        session: &mut Session<B>,
        caller: Caller<'_>,
        sql: &str,
        params: &[Value],
    ) -> Result<Rows, GateError> {
        self.audited(
            caller,
            "query",
            |r: &Rows| r.rows.len(),
            async |facts| {
                let analysis = self.analyze_read(caller, sql, facts).await?;
                if session.is_open() || analysis.session_state {
                    return self
                        .read_in_session(session, caller, &analysis, sql, params, facts)
                        .await;
                }
                self.query_inner(caller, &analysis, sql, params, facts)
                    .await
            },
        )
        .await
    }

    /// The analysis of one read, refused when the grant does not allow it.
    async fn analyze_read(
        &self,
        caller: Caller<'_>,
        sql: &str,
        facts: &mut Facts,
    ) -> Result<Arc<analysis::Analyzed>, GateError> {
        let timeout_ms = caller.grant.limits.timeout_ms;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let analysis = self
            .analyzer
            .analyze_read(sql, &caller.grant.functions, deadline, timeout_ms)
            .await?;
        facts.fingerprint = Some(analysis.fingerprint.clone());
        if analysis.analyzes && !caller.grant.analyze {
            return Err(GateError::Denied(Denial::new(
                "explain-analyze",
                format!(
                    "EXPLAIN ANALYZE runs the statement it explains; plugin {p} may run it only \
                     with analyze = true in [plugins.grants.{p}] (plain EXPLAIN needs no grant)",
                    p = caller.plugin
                ),
            )));
        }
        Ok(analysis)
    }

    /// The relations named by the index definitions that `params` give
    /// `hypopg_create_index` at the statement's `index_params`, checked as
    /// the policy checks a literal one. A value that is not text is refused.
    async fn index_relations(
        &self,
        caller: Caller<'_>,
        index_params: &[u32],
        params: &[Value],
    ) -> Result<Vec<policy::RelationRef>, GateError> {
        if index_params.is_empty() {
            return Ok(Vec::new());
        }
        let mut definitions = Vec::with_capacity(index_params.len());
        for &n in index_params {
            let value = usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| params.get(i));
            match value {
                Some(Value::Scalar(Scalar::Text(text))) => definitions.push(text.clone()),
                _ => {
                    return Err(Denial::new(
                        policy::INDEX_DEFINITION,
                        format!(
                            "${n} is given to hypopg_create_index, so it must be a text \
                             parameter holding one CREATE INDEX statement"
                        ),
                    )
                    .into());
                }
            }
        }
        let timeout_ms = caller.grant.limits.timeout_ms;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        self.analyzer
            .analyze_index_definitions(definitions, &caller.grant.functions, deadline, timeout_ms)
            .await
    }

    async fn query_inner(
        &self,
        caller: Caller<'_>,
        analysis: &analysis::Analyzed,
        sql: &str,
        params: &[Value],
        facts: &mut Facts,
    ) -> Result<Rows, GateError> {
        let settings = Self::settings(caller, true);
        let rendered = || analysis.rendered.clone();
        let read = Read {
            settings: &settings,
            relations: &analysis.relations,
            sql,
            params: Params::positional(params),
            limits: Self::result_limits(caller.grant),
            // EXPLAIN cannot be a cursor body; everything else that passed is
            // a query.
            source: if analysis.is_query {
                RowSource::Cursor
            } else {
                RowSource::Stream
            },
            fallback: &rendered,
        };
        // Names that resolve to no relation are CTEs or functions in FROM
        // (functions were checked by the analysis); a real relation that does
        // not exist makes PostgreSQL fail the statement anyway.
        let mut check = |resolved: &[Option<(String, String)>]| check_read(caller, resolved, facts);
        self.db.read(&read, &mut check).await
    }

    /// The relations the caller may see, optionally in one schema.
    pub async fn list_relations(
        &self,
        caller: Caller<'_>,
        schema: Option<&str>,
    ) -> Result<Vec<Relation>, GateError> {
        self.audited(caller, "list-relations", Vec::len, async |_| {
            caller.grant.check_catalog(caller.plugin)?;
            let mut tx = self.db.begin(&Self::settings(caller, true)).await?;
            let all = tx.list_relations(schema).await?;
            tx.abandon();
            Ok(all
                .into_iter()
                .filter(|r| caller.grant.may_see(&r.schema, &r.name))
                .collect::<Vec<_>>())
        })
        .await
    }

    /// Describes one relation the caller may see.
    pub async fn describe_relation(
        &self,
        caller: Caller<'_>,
        name: &str,
    ) -> Result<RelationDescription, GateError> {
        self.audited(
            caller,
            "describe-relation",
            |_| 1,
            async |facts| {
                caller.grant.check_catalog(caller.plugin)?;
                let parsed = policy::parse_relation_name(name).map_err(GateError::InvalidInput)?;
                let mut tx = self.db.begin(&Self::settings(caller, true)).await?;
                let (schema, rel_name) =
                    resolve_one(&mut tx, &parsed.regclass_text, &parsed.display).await?;
                facts.relations.push(format!("{schema}.{rel_name}"));
                if !caller.grant.may_see(&schema, &rel_name) {
                    return Err(Denial::new(
                        "read-grant",
                        format!(
                            "relation {schema}.{rel_name} exists but is not in plugin {}'s read \
                             or write grant; the operator can allow it in [plugins.grants.{}]",
                            caller.plugin, caller.plugin
                        ),
                    )
                    .into());
                }
                let relation = tx
                    .relation(&schema, &rel_name)
                    .await?
                    .ok_or_else(|| GateError::NotFound(format!("relation {}", parsed.display)))?;
                let description = tx.describe(relation).await?;
                tx.abandon();
                Ok(description)
            },
        )
        .await
    }
}

/// Checks a read's resolved relations against the grant, noting them for
/// the audit trail.
fn check_read(
    caller: Caller<'_>,
    resolved: &[Option<(String, String)>],
    facts: &mut Facts,
) -> Result<(), GateError> {
    let relations: Vec<(&str, &str)> = resolved
        .iter()
        .flatten()
        .map(|(schema, name)| (schema.as_str(), name.as_str()))
        .collect();
    facts.relations = relations.iter().map(|(s, n)| format!("{s}.{n}")).collect();
    caller
        .grant
        .check_reads(caller.plugin, relations.iter().copied())?;
    Ok(())
}

/// An error message fit for the audit trail, which never records values:
/// PostgreSQL and the codec quote a rejected value (`invalid input syntax for
/// type integer: "abc"`), so every quoted part is blanked, and the message
/// is cut short.
fn without_values(message: &str) -> String {
    const MAX_CHARS: usize = 300;
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars().take(MAX_CHARS) {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

async fn resolve_one(
    tx: &mut impl Transaction,
    regclass_text: &str,
    display: &str,
) -> Result<(String, String), GateError> {
    tx.resolve_relations(&[regclass_text.to_string()])
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| GateError::NotFound(format!("no relation named {display}")))
}

impl<B: Backend> Gate<B> {
    /// One audit event per gated call. Parameter values are never recorded.
    fn audit<T>(
        &self,
        caller: Caller<'_>,
        call: &str,
        facts: Facts,
        started: Instant,
        result: &Result<T, GateError>,
        count: impl Fn(&T) -> usize,
    ) {
        let subject = caller.principal.subject();
        let mut event = audit::Event {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            key_id: caller.principal.key_id(),
            subject: subject.map(|(_, subject)| subject),
            issuer: subject.map(|(issuer, _)| issuer),
            plugin: caller.plugin,
            tool: caller.tool,
            call,
            fingerprint: facts.fingerprint,
            relations: &facts.relations,
            decision: Decision::Allow,
            rule: None,
            reason: None,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            rows: None,
            sqlstate: None,
        };
        match result {
            Ok(value) => event.rows = Some(count(value)),
            Err(GateError::Denied(d)) => {
                event.decision = Decision::Deny;
                event.rule = Some(d.rule);
                event.reason = Some(d.message.clone());
            }
            Err(GateError::Database(pg)) => {
                event.sqlstate = pg.sqlstate.clone();
                event.reason = Some(without_values(&pg.message));
            }
            Err(other) => {
                event.decision = Decision::Error;
                event.reason = Some(without_values(&other.to_string()));
            }
        }
        self.audit.record(&event);
    }
}
