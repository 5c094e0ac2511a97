//! Writes given as SQL, and the load-time check of declared statements.
//!
//! A plugin's `execute` is one `INSERT`, `UPDATE` or `DELETE` the policy
//! parsed ([`policy::analyze_write`]): its target must be in the `write`
//! grant and every other relation it names in the `read` grant, and it runs
//! under the same guard settings and row cap as the typed writes, rolled
//! back whole when it touches more rows than allowed.
//!
//! [`Gate::vet`] checks a statement an operator declared (a tools file)
//! before any of it is offered: the policy, the grant, the parameter types
//! against what PostgreSQL infers, and the statement itself, prepared but
//! never run.

use super::write::WriteCap;
use super::{Backend, Caller, Facts, Gate, GateError, Transaction, check_read};
use crate::db::value::Value;
use crate::db::{Params, ResultLimits, RowSource, Rows};
use crate::policy::{self, Denial};
use std::time::{Duration, Instant};

/// What a write statement did.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// Rows inserted, updated or deleted.
    pub affected: u64,
    /// Its `RETURNING` rows; no columns without one.
    pub rows: Rows,
}

/// A declared statement as checked against the database: the relations
/// it names and the types of its parameters, as PostgreSQL reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct Vetted {
    /// The write it is, for a write.
    pub verb: Option<policy::WriteVerb>,
    /// `schema.name` of the relation it writes, for a write.
    pub written: Option<String>,
    /// `schema.name` of each relation it reads.
    pub read: Vec<String>,
    /// Each parameter's declared type, canonical (`integer`, `text[]`).
    pub parameter_types: Vec<String>,
}

impl<B: Backend> Gate<B> {
    /// Runs one write statement with `params`, committing it unless it
    /// touched more than `max_rows` rows (or the grant's `max_write_rows`),
    /// in which case it is rolled back and refused.
    pub async fn execute(
        &self,
        caller: Caller<'_>,
        sql: &str,
        params: &[Value],
        max_rows: Option<u32>,
    ) -> Result<WriteOutcome, GateError> {
        self.audited(
            caller,
            "execute",
            |o: &WriteOutcome| usize::try_from(o.affected).unwrap_or(usize::MAX),
            async |facts| {
                caller.grant.check_writes_anything(caller.plugin)?;
                let timeout_ms = caller.grant.limits.timeout_ms;
                let deadline = Instant::now() + Duration::from_millis(timeout_ms);
                let mut analysis = self
                    .analyzer
                    .analyze_write(sql, &caller.grant.functions, deadline, timeout_ms)
                    .await?;
                facts.fingerprint = Some(analysis.fingerprint.clone());
                for relation in self
                    .index_relations(caller, &analysis.index_params, params)
                    .await?
                {
                    if !analysis.reads.contains(&relation) {
                        analysis.reads.push(relation);
                    }
                }
                let mut settings = Self::settings(caller, false);
                // What it leaves in the session must not reach the pool.
                settings.disposable = analysis.session_state;
                let mut tx = self.db.begin(&settings).await?;
                facts.relations = checked_relations(&mut tx, caller, &analysis).await?;
                let cap = WriteCap::new(analysis.verb.as_str(), caller, max_rows);
                let params = Params::positional(params);
                let outcome = if analysis.returns {
                    let limits = ResultLimits {
                        max_rows: cap.rows,
                        max_bytes: caller.grant.limits.max_result_bytes,
                    };
                    let rendered = analysis.rendered.clone();
                    let rows = tx
                        .query(&self.db, sql, params, limits, RowSource::Stream, || {
                            rendered
                        })
                        .await?;
                    WriteOutcome {
                        affected: rows.rows.len() as u64 + u64::from(rows.truncated),
                        rows,
                    }
                } else {
                    WriteOutcome {
                        affected: tx.execute_count(&self.db, sql, params).await?,
                        rows: Rows {
                            columns: Vec::new(),
                            rows: Vec::new(),
                            truncated: false,
                        },
                    }
                };
                if outcome.affected > u64::from(cap.rows) {
                    tx.rollback().await?;
                    return Err(cap.denial().into());
                }
                tx.commit().await?;
                Ok(outcome)
            },
        )
        .await
    }

    /// Checks a declared statement for `caller` without running it: it
    /// passes the policy as a read (or, with `write`, as a write); every
    /// relation it names exists and is within the grant; each of
    /// `declared_types` names a type, the one PostgreSQL infers for that
    /// parameter or one it converts to that implicitly; PostgreSQL reads
    /// each of the parameter's `declared_values` (its default and enum
    /// values, as text) as that type; and PostgreSQL prepares it.
    pub async fn vet(
        &self,
        caller: Caller<'_>,
        sql: &str,
        write: bool,
        declared_types: &[String],
        declared_values: &[Vec<String>],
    ) -> Result<Vetted, GateError> {
        let timeout_ms = caller.grant.limits.timeout_ms;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let functions = &caller.grant.functions;
        let settings = Self::settings(caller, true);
        let (mut tx, verb, written, read) = if write {
            caller.grant.check_writes_anything(caller.plugin)?;
            let analysis = self
                .analyzer
                .analyze_write(sql, functions, deadline, timeout_ms)
                .await?;
            let mut tx = self.db.begin(&settings).await?;
            let mut relations = checked_relations(&mut tx, caller, &analysis).await?;
            let written = relations.remove(0);
            (tx, Some(analysis.verb), Some(written), relations)
        } else {
            let analysis = self
                .analyzer
                .analyze_read(sql, functions, deadline, timeout_ms)
                .await?;
            if !analysis.is_query {
                return Err(Denial::new(
                    "read-only-statement",
                    "a declared read is a query (SELECT, WITH, VALUES or TABLE), not EXPLAIN",
                )
                .into());
            }
            let mut tx = self.db.begin(&settings).await?;
            let resolved = tx.resolve_relations(&analysis.relations).await?;
            let mut read = Facts::default();
            check_read(caller, &resolved, &mut read)?;
            (tx, None, None, read.relations)
        };
        let types = tx.resolve_types(declared_types).await?;
        let mut wanted = Vec::with_capacity(types.len());
        for (name, found) in declared_types.iter().zip(types) {
            match found {
                Some(t) => wanted.push(t),
                None => {
                    return Err(GateError::InvalidInput(format!(
                        "type {name:?} does not exist in the database"
                    )));
                }
            }
        }
        let inferred = tx.parameter_types(sql).await?;
        if inferred.len() != wanted.len() {
            return Err(GateError::InvalidInput(format!(
                "PostgreSQL reads {} parameter(s) in the statement, and {} are declared",
                inferred.len(),
                wanted.len()
            )));
        }
        // A declared type PostgreSQL converts implicitly to the one the
        // statement uses (`integer` for a `bigint` LIMIT) is as good.
        let pairs: Vec<(u32, u32)> = wanted
            .iter()
            .zip(&inferred)
            .map(|((want, _), (got, _))| (*want, *got))
            .collect();
        let converts = tx.implicit_casts(&pairs).await?;
        for (i, ((want_oid, want), (got_oid, got))) in wanted.iter().zip(&inferred).enumerate() {
            if want_oid != got_oid && !converts[i] {
                let n = i + 1;
                return Err(GateError::InvalidInput(format!(
                    "parameter ${n} is declared as {want}, and the statement uses it as {got}, \
                     which {want} does not convert to implicitly; declare it as {got}, or cast \
                     it in the SQL (${n}::{want})"
                )));
            }
        }
        for (i, ((_, want), values)) in wanted.iter().zip(declared_values).enumerate() {
            if let Err(e) = tx.check_inputs(want, values).await {
                // PostgreSQL refusing a value is the declaration's mistake;
                // the database not answering is not.
                return Err(match e {
                    crate::db::DbError::Postgres(pg)
                        if !super::transient_sqlstate(pg.sqlstate.as_deref()) =>
                    {
                        GateError::InvalidInput(format!(
                            "parameter ${} ({want}): a default or enum value is not one: {}",
                            i + 1,
                            pg.message
                        ))
                    }
                    other => other.into(),
                });
            }
        }
        tx.abandon();
        Ok(Vetted {
            verb,
            written,
            read,
            parameter_types: wanted.into_iter().map(|(_, name)| name).collect(),
        })
    }
}

/// Resolves a write's relations in `tx` and checks them against the
/// grant: the target must exist and be writable, the rest readable.
/// Returns them as `schema.name`, the target first.
async fn checked_relations<T: Transaction>(
    tx: &mut T,
    caller: Caller<'_>,
    analysis: &policy::WriteAnalysis,
) -> Result<Vec<String>, GateError> {
    let mut names = Vec::with_capacity(analysis.reads.len() + 1);
    names.push(analysis.target.regclass_text.clone());
    names.extend(analysis.reads.iter().map(|r| r.regclass_text.clone()));
    let resolved = tx.resolve_relations(&names).await?;
    let Some(Some((schema, name))) = resolved.first() else {
        return Err(GateError::NotFound(format!(
            "no relation named {}",
            analysis.target.display
        )));
    };
    caller.grant.check_write(caller.plugin, schema, name)?;
    let mut read = Facts::default();
    check_read(caller, &resolved[1..], &mut read)?;
    let mut relations = vec![format!("{schema}.{name}")];
    relations.extend(read.relations);
    Ok(relations)
}
