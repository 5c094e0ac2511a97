//! What the gate needs of the database, as a seam: [`Database`] in the
//! server, a recording backend in the gate's unit tests, so that each of
//! the gate's decisions can be checked without PostgreSQL.
//!
//! It is exactly what the gate calls today and no more: a transaction begun
//! under guard settings, the catalog lookups it checks grants against, the
//! statements it runs, and the end of the transaction.

use crate::db::catalog::{ColumnInfo, Relation, RelationDescription};
use crate::db::{
    Check, Database, DbError, Params, Read, ResultLimits, RowSource, Rows, Savepoint, Tx,
    TxSettings,
};
use std::future::Future;

/// Where the gate's calls go.
pub trait Backend: Send + Sync + 'static {
    /// A transaction under guard settings; dropping it rolls back.
    type Tx: Transaction<Backend = Self>;

    /// Begins a transaction with `settings` in force for all of it.
    fn begin(
        &self,
        settings: &TxSettings,
    ) -> impl Future<Output = Result<Self::Tx, DbError>> + Send;

    /// Runs a read in a guard transaction of its own: resolves its
    /// relations, lets `check` refuse them, runs the statement, and rolls
    /// back. This default takes the steps one at a time; [`Database`]
    /// sends them in as few round trips as it can.
    fn read<E: From<DbError> + Send>(
        &self,
        read: &Read<'_>,
        check: &mut Check<'_, E>,
    ) -> impl Future<Output = Result<Rows, E>> + Send {
        async move {
            let mut tx = self.begin(read.settings).await?;
            let resolved = tx.resolve_relations(read.relations).await?;
            check(&resolved)?;
            let fallback = read.fallback;
            let rows = tx
                .query(
                    self,
                    read.sql,
                    read.params,
                    read.limits,
                    read.source,
                    fallback,
                )
                .await?;
            tx.abandon();
            Ok(rows)
        }
    }
}

/// One transaction of a [`Backend`]: what the gate does inside it.
pub trait Transaction: Send + Sized {
    /// The backend it belongs to, which statements may consult.
    type Backend;

    /// Resolves relation names (in `to_regclass` form) as the database does
    /// under this transaction's search path: `(schema, name)`, or `None` for
    /// a name that is not a relation. One answer per name, in order.
    fn resolve_relations(
        &mut self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<Option<(String, String)>>, DbError>> + Send;

    /// Runs a read the policy passed, with the plugin's `params`, reading at
    /// most `limits.max_rows` rows (`truncated` tells whether there were
    /// more). `fallback` renders the statement again for wrapping.
    fn query(
        &mut self,
        db: &Self::Backend,
        sql: &str,
        params: Params<'_>,
        limits: ResultLimits,
        source: RowSource,
        fallback: impl FnOnce() -> String + Send,
    ) -> impl Future<Output = Result<Rows, DbError>> + Send;

    /// Runs a write the host built (`… RETURNING *`), reading its rows as
    /// [`Transaction::query`] does.
    fn execute_returning(
        &mut self,
        db: &Self::Backend,
        sql: &str,
        params: Params<'_>,
        limits: ResultLimits,
    ) -> impl Future<Output = Result<Rows, DbError>> + Send;

    /// Runs a write without `RETURNING`; returns the rows it touched.
    fn execute_count(
        &mut self,
        db: &Self::Backend,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<u64, DbError>> + Send;

    /// The parameter types PostgreSQL infers for `sql`, `(oid, name)`.
    fn parameter_types(
        &mut self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<(u32, String)>, DbError>> + Send;

    /// Type names as `to_regtype` reads them: `(oid, canonical name)`.
    fn resolve_types(
        &mut self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<Option<(u32, String)>>, DbError>> + Send;

    /// Whether PostgreSQL reads each of `values` as the type named
    /// `type_name` (a canonical name from [`Transaction::resolve_types`]).
    fn check_inputs(
        &mut self,
        type_name: &str,
        values: &[String],
    ) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Whether each `(from, to)` type oid pair converts implicitly.
    fn implicit_casts(
        &mut self,
        pairs: &[(u32, u32)],
    ) -> impl Future<Output = Result<Vec<bool>, DbError>> + Send;

    /// Sets, releases or returns to the transaction's savepoint.
    fn savepoint(&mut self, step: Savepoint) -> impl Future<Output = Result<(), DbError>> + Send;

    /// User relations, optionally only in `schema`.
    fn list_relations(
        &mut self,
        schema: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Relation>, DbError>> + Send;

    /// The relation `schema.name`, if it exists.
    fn relation(
        &mut self,
        schema: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Relation>, DbError>> + Send;

    /// The columns of relation `oid`, in order.
    fn columns(
        &mut self,
        oid: u32,
    ) -> impl Future<Output = Result<Vec<ColumnInfo>, DbError>> + Send;

    /// Everything about `relation`.
    fn describe(
        &mut self,
        relation: Relation,
    ) -> impl Future<Output = Result<RelationDescription, DbError>> + Send;

    /// Commits.
    fn commit(self) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Rolls back.
    fn rollback(self) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Rolls back without waiting for the database's answer: for reads,
    /// whose outcome is already known. Nothing else uses the connection
    /// before the rollback has run.
    fn abandon(self);
}

impl Backend for Database {
    type Tx = Tx;

    fn begin(&self, settings: &TxSettings) -> impl Future<Output = Result<Tx, DbError>> + Send {
        Database::begin(self, settings)
    }

    fn read<E: From<DbError> + Send>(
        &self,
        read: &Read<'_>,
        check: &mut Check<'_, E>,
    ) -> impl Future<Output = Result<Rows, E>> + Send {
        Database::read(self, read, check)
    }
}

impl Transaction for Tx {
    type Backend = Database;

    fn resolve_relations(
        &mut self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<Option<(String, String)>>, DbError>> + Send {
        Tx::resolve_relations(self, names)
    }

    fn query(
        &mut self,
        db: &Database,
        sql: &str,
        params: Params<'_>,
        limits: ResultLimits,
        source: RowSource,
        fallback: impl FnOnce() -> String + Send,
    ) -> impl Future<Output = Result<Rows, DbError>> + Send {
        Tx::query(self, db, sql, params, limits, source, fallback)
    }

    fn execute_returning(
        &mut self,
        db: &Database,
        sql: &str,
        params: Params<'_>,
        limits: ResultLimits,
    ) -> impl Future<Output = Result<Rows, DbError>> + Send {
        Tx::execute_returning(self, db, sql, params, limits)
    }

    fn execute_count(
        &mut self,
        db: &Database,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<u64, DbError>> + Send {
        Tx::execute_count(self, db, sql, params)
    }

    fn parameter_types(
        &mut self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<(u32, String)>, DbError>> + Send {
        Tx::parameter_types(self, sql)
    }

    fn resolve_types(
        &mut self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<Option<(u32, String)>>, DbError>> + Send {
        Tx::resolve_types(self, names)
    }

    fn check_inputs(
        &mut self,
        type_name: &str,
        values: &[String],
    ) -> impl Future<Output = Result<(), DbError>> + Send {
        Tx::check_inputs(self, type_name, values)
    }

    fn implicit_casts(
        &mut self,
        pairs: &[(u32, u32)],
    ) -> impl Future<Output = Result<Vec<bool>, DbError>> + Send {
        Tx::implicit_casts(self, pairs)
    }

    fn savepoint(&mut self, step: Savepoint) -> impl Future<Output = Result<(), DbError>> + Send {
        Tx::savepoint(self, step)
    }

    fn list_relations(
        &mut self,
        schema: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Relation>, DbError>> + Send {
        Tx::list_relations(self, schema)
    }

    fn relation(
        &mut self,
        schema: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Relation>, DbError>> + Send {
        Tx::relation(self, schema, name)
    }

    fn columns(
        &mut self,
        oid: u32,
    ) -> impl Future<Output = Result<Vec<ColumnInfo>, DbError>> + Send {
        Tx::columns(self, oid)
    }

    fn describe(
        &mut self,
        relation: Relation,
    ) -> impl Future<Output = Result<RelationDescription, DbError>> + Send {
        Tx::describe(self, relation)
    }

    fn commit(self) -> impl Future<Output = Result<(), DbError>> + Send {
        Tx::commit(self)
    }

    fn rollback(self) -> impl Future<Output = Result<(), DbError>> + Send {
        Tx::rollback(self)
    }

    fn abandon(self) {
        Tx::abandon(self)
    }
}
