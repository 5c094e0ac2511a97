//! Reads that share one transaction for the rest of a plugin call.
//!
//! A function that keeps state in the database session (hypopg's
//! hypothetical indexes, [`is_session_state`](crate::policy::is_session_state))
//! needs the call's later reads to see that session: create a hypothetical
//! index, then EXPLAIN with it. From the first statement of a plugin call
//! that calls one, the call's reads run in one READ ONLY transaction, each
//! inside a savepoint so that a failed statement costs only itself, on a
//! connection that is closed when the call ends, never given back to the
//! pool: whatever it left in the session goes with it, and no other call
//! ever plans with it.

use super::analysis::Analyzed;
use super::{Backend, Caller, Facts, Gate, GateError, Transaction, check_read};
use crate::db::value::Value;
use crate::db::{Database, Params, RowSource, Rows, Savepoint};

/// One plugin call's shared transaction, begun on its first read and
/// rolled back, its connection closed, when dropped.
pub struct Session<B: Backend = Database> {
    tx: Option<B::Tx>,
}

impl<B: Backend> Default for Session<B> {
    fn default() -> Self {
        Session { tx: None }
    }
}

impl<B: Backend> Session<B> {
    /// Whether a statement opened it: then every later read of the call
    /// runs in it, to see what that statement left in the session.
    pub fn is_open(&self) -> bool {
        self.tx.is_some()
    }
}

impl<B: Backend> Gate<B> {
    /// One analysed read inside `session`, opening it on a connection of
    /// its own if it is not open yet: the same grant check, limits and
    /// cursor as any read.
    pub(super) async fn read_in_session(
        &self,
        session: &mut Session<B>,
        caller: Caller<'_>,
        analysis: &Analyzed,
        sql: &str,
        params: &[Value],
        facts: &mut Facts,
    ) -> Result<Rows, GateError> {
        // Index definitions in parameters name relations too (only
        // hypopg_create_index takes them, and it keeps session state).
        let extra = self
            .index_relations(caller, &analysis.index_params, params)
            .await?;
        let mut relations = std::borrow::Cow::Borrowed(analysis.relations.as_slice());
        for relation in extra {
            if !relations.contains(&relation.regclass_text) {
                relations.to_mut().push(relation.regclass_text);
            }
        }
        let tx = match &mut session.tx {
            Some(tx) => tx,
            empty => {
                let mut settings = Self::settings(caller, true);
                settings.disposable = true;
                empty.insert(self.db.begin(&settings).await?)
            }
        };
        tx.savepoint(Savepoint::Set).await?;
        let step = async {
            let resolved = tx.resolve_relations(&relations).await?;
            check_read(caller, &resolved, facts)?;
            let source = if analysis.is_query {
                RowSource::Cursor
            } else {
                RowSource::Stream
            };
            let rendered = analysis.rendered.clone();
            let limits = Self::result_limits(caller.grant);
            Ok::<_, GateError>(
                tx.query(
                    &self.db,
                    sql,
                    Params::positional(params),
                    limits,
                    source,
                    || rendered,
                )
                .await?,
            )
        }
        .await;
        // Undone whether it passed or failed: a read changed nothing to
        // keep, and its cursor goes with it. What lives in the session
        // (hypothetical indexes) is not undone.
        if let Err(e) = tx.savepoint(Savepoint::Undo).await {
            // The transaction is unusable; dropping it closes the
            // connection, and the next read opens another.
            session.tx = None;
            return Err(step.err().unwrap_or(e.into()));
        }
        step
    }
}
