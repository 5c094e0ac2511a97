//! For the gate's unit tests: an in-memory [`Backend`] with a small catalog
//! that records every call reaching it, and a sink for the audit events the
//! gate writes.

use super::{Backend, Transaction};
use crate::db::catalog::{ColumnInfo, Relation, RelationDescription, RelationKind};
use crate::db::value::{Scalar, Value};
use crate::db::{
    ColumnMeta, DbError, Params, ResultLimits, RowSource, Rows, Savepoint, TxSettings,
};
use std::sync::{Arc, Mutex, PoisonError};

/// A call that reached the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Begin {
        read_only: bool,
        statement_timeout_ms: u64,
        role: Option<String>,
    },
    /// A transaction on a connection closed when it ends.
    BeginDisposable,
    Resolve(Vec<String>),
    Query {
        sql: String,
        params: Vec<Value>,
        limits: ResultLimits,
        source: RowSource,
    },
    Write {
        sql: String,
        params: Vec<Value>,
        labels: Vec<String>,
        limits: ResultLimits,
    },
    /// A write without `RETURNING`.
    Count {
        sql: String,
        params: Vec<Value>,
    },
    Savepoint(Savepoint),
    ListRelations(Option<String>),
    Relation(String, String),
    Columns(u32),
    Describe(u32),
    Commit,
    Rollback,
    /// Rolled back without waiting.
    Abandoned,
    /// Dropped without a commit or rollback (which rolls back).
    Dropped,
}

/// One relation of the catalog, with its columns.
struct Table {
    relation: Relation,
    columns: Vec<ColumnInfo>,
}

#[derive(Default)]
struct State {
    tables: Vec<Table>,
    /// Rows every statement finds, before its limits.
    matching: usize,
    /// What the next statement fails with.
    failure: Option<DbError>,
    calls: Vec<Call>,
}

/// The in-memory backend. Its statements do nothing but report `matching`
/// rows, cut at the limits they are given, as the database would.
#[derive(Clone, Default)]
pub struct TestBackend {
    state: Arc<Mutex<State>>,
}

impl TestBackend {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Adds `schema.name` with `columns` (`(name, type)`; a type ending in
    /// ` generated` is a generated column).
    pub fn with(
        self,
        schema: &str,
        name: &str,
        kind: RelationKind,
        columns: &[(&str, &str)],
    ) -> Self {
        {
            let mut state = self.state();
            let oid = 16_384 + u32::try_from(state.tables.len()).unwrap_or(0);
            let columns: Vec<ColumnInfo> = columns
                .iter()
                .map(|(column, ty)| {
                    let (type_name, generated) = match ty.strip_suffix(" generated") {
                        Some(ty) => (ty, true),
                        None => (*ty, false),
                    };
                    ColumnInfo {
                        name: column.to_string(),
                        type_name: type_name.to_string(),
                        nullable: true,
                        default: None,
                        comment: None,
                        generated,
                    }
                })
                .collect();
            state.tables.push(Table {
                relation: Relation {
                    oid,
                    schema: schema.to_string(),
                    name: name.to_string(),
                    kind,
                    estimated_rows: None,
                    column_count: u32::try_from(columns.len()).unwrap_or(u32::MAX),
                    comment: None,
                },
                columns,
            });
        }
        self
    }

    /// Every statement finds `rows` rows.
    pub fn matching(self, rows: usize) -> Self {
        self.state().matching = rows;
        self
    }

    /// The next statement fails with `error`.
    pub fn failing(self, error: DbError) -> Self {
        self.state().failure = Some(error);
        self
    }

    /// Everything that reached the backend so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The oid of `schema.name`.
    pub fn oid(&self, schema: &str, name: &str) -> u32 {
        self.state()
            .tables
            .iter()
            .find(|t| t.relation.schema == schema && t.relation.name == name)
            .map(|t| t.relation.oid)
            .expect("a relation of the test catalog")
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A transaction of the [`TestBackend`].
pub struct TestTx {
    state: Arc<Mutex<State>>,
    ended: bool,
}

impl TestTx {
    fn record(&self, call: Call) {
        lock(&self.state).calls.push(call);
    }

    /// `matching` rows, cut at `limits`, or the failure set for it.
    fn statement(&self, call: Call, limits: ResultLimits) -> Result<Rows, DbError> {
        let mut state = lock(&self.state);
        state.calls.push(call);
        if let Some(e) = state.failure.take() {
            return Err(e);
        }
        let kept = state.matching.min(limits.max_rows as usize);
        Ok(Rows {
            columns: vec![ColumnMeta {
                name: "n".into(),
                type_name: "bigint".into(),
            }],
            rows: (0..kept)
                .map(|i| vec![Value::Scalar(Scalar::Int(i as i64))])
                .collect(),
            truncated: state.matching > kept,
        })
    }

    fn table<T>(&self, find: impl Fn(&Table) -> bool, then: impl FnOnce(&Table) -> T) -> Option<T> {
        lock(&self.state).tables.iter().find(|t| find(t)).map(then)
    }
}

impl Drop for TestTx {
    fn drop(&mut self) {
        if !self.ended {
            self.record(Call::Dropped);
        }
    }
}

impl Backend for TestBackend {
    type Tx = TestTx;

    async fn begin(&self, settings: &TxSettings) -> Result<TestTx, DbError> {
        if settings.disposable {
            self.state().calls.push(Call::BeginDisposable);
        }
        self.state().calls.push(Call::Begin {
            read_only: settings.read_only,
            statement_timeout_ms: settings.statement_timeout_ms,
            role: settings.role.clone(),
        });
        Ok(TestTx {
            state: self.state.clone(),
            ended: false,
        })
    }
}

/// `"schema"."name"` or `"name"` (in `public`), as the analysis writes
/// names for `to_regclass`.
fn parse_regclass(text: &str) -> Option<(String, String)> {
    let parts: Vec<String> = text
        .split("\".\"")
        .map(|p| p.trim_matches('"').replace("\"\"", "\""))
        .collect();
    match parts.as_slice() {
        [name] => Some(("public".into(), name.clone())),
        [schema, name] => Some((schema.clone(), name.clone())),
        _ => None,
    }
}

impl Transaction for TestTx {
    type Backend = TestBackend;

    async fn resolve_relations(
        &mut self,
        names: &[String],
    ) -> Result<Vec<Option<(String, String)>>, DbError> {
        self.record(Call::Resolve(names.to_vec()));
        Ok(names
            .iter()
            .map(|text| {
                let (schema, name) = parse_regclass(text)?;
                self.table(
                    |t| t.relation.schema == schema && t.relation.name == name,
                    |_| (schema.clone(), name.clone()),
                )
            })
            .collect())
    }

    async fn query(
        &mut self,
        _db: &TestBackend,
        sql: &str,
        params: Params<'_>,
        limits: ResultLimits,
        source: RowSource,
        _fallback: impl FnOnce() -> String + Send,
    ) -> Result<Rows, DbError> {
        let call = Call::Query {
            sql: sql.to_string(),
            params: params.values.to_vec(),
            limits,
            source,
        };
        self.statement(call, limits)
    }

    async fn execute_returning(
        &mut self,
        _db: &TestBackend,
        sql: &str,
        params: Params<'_>,
        limits: ResultLimits,
    ) -> Result<Rows, DbError> {
        let call = Call::Write {
            sql: sql.to_string(),
            params: params.values.to_vec(),
            labels: params.labels.to_vec(),
            limits,
        };
        self.statement(call, limits)
    }

    async fn execute_count(
        &mut self,
        _db: &TestBackend,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, DbError> {
        let mut state = lock(&self.state);
        state.calls.push(Call::Count {
            sql: sql.to_string(),
            params: params.values.to_vec(),
        });
        match state.failure.take() {
            Some(e) => Err(e),
            None => Ok(state.matching as u64),
        }
    }

    /// `$n::integer` is an `integer`, every other parameter `text`.
    async fn parameter_types(&mut self, sql: &str) -> Result<Vec<(u32, String)>, DbError> {
        let count = crate::policy::placeholders(sql, Default::default())
            .map_or(0, |p| p.last().copied().unwrap_or(0));
        Ok((1..=count)
            .map(|n| {
                if sql.contains(&format!("${n}::integer")) {
                    (23, "integer".to_string())
                } else {
                    (25, "text".to_string())
                }
            })
            .collect())
    }

    /// `text` and `integer` exist.
    async fn resolve_types(
        &mut self,
        names: &[String],
    ) -> Result<Vec<Option<(u32, String)>>, DbError> {
        Ok(names
            .iter()
            .map(|n| match n.as_str() {
                "text" => Some((25, "text".to_string())),
                "integer" | "int" | "int4" => Some((23, "integer".to_string())),
                _ => None,
            })
            .collect())
    }

    /// An `integer` is digits; every other type reads anything.
    async fn check_inputs(&mut self, type_name: &str, values: &[String]) -> Result<(), DbError> {
        match values
            .iter()
            .find(|v| type_name == "integer" && v.parse::<i64>().is_err())
        {
            Some(bad) => Err(DbError::Postgres(crate::db::PgError {
                sqlstate: Some("22P02".into()),
                message: format!("invalid input syntax for type integer: \"{bad}\""),
                detail: None,
                hint: None,
            })),
            None => Ok(()),
        }
    }

    /// `integer` converts to `bigint`, nothing else converts.
    async fn implicit_casts(&mut self, pairs: &[(u32, u32)]) -> Result<Vec<bool>, DbError> {
        Ok(pairs.iter().map(|p| *p == (23, 20)).collect())
    }

    async fn savepoint(&mut self, step: Savepoint) -> Result<(), DbError> {
        self.record(Call::Savepoint(step));
        Ok(())
    }

    async fn list_relations(&mut self, schema: Option<&str>) -> Result<Vec<Relation>, DbError> {
        self.record(Call::ListRelations(schema.map(str::to_string)));
        let state = lock(&self.state);
        Ok(state
            .tables
            .iter()
            .filter(|t| schema.is_none_or(|s| t.relation.schema == s))
            .map(|t| t.relation.clone())
            .collect())
    }

    async fn relation(&mut self, schema: &str, name: &str) -> Result<Option<Relation>, DbError> {
        self.record(Call::Relation(schema.to_string(), name.to_string()));
        Ok(self.table(
            |t| t.relation.schema == schema && t.relation.name == name,
            |t| t.relation.clone(),
        ))
    }

    async fn columns(&mut self, oid: u32) -> Result<Vec<ColumnInfo>, DbError> {
        self.record(Call::Columns(oid));
        Ok(self
            .table(|t| t.relation.oid == oid, |t| t.columns.clone())
            .unwrap_or_default())
    }

    async fn describe(&mut self, relation: Relation) -> Result<RelationDescription, DbError> {
        self.record(Call::Describe(relation.oid));
        let columns = self
            .table(|t| t.relation.oid == relation.oid, |t| t.columns.clone())
            .unwrap_or_default();
        Ok(RelationDescription {
            relation,
            columns,
            primary_key: Vec::new(),
            foreign_keys: Vec::new(),
            indexes: Vec::new(),
            constraints: Vec::new(),
        })
    }

    async fn commit(mut self) -> Result<(), DbError> {
        self.ended = true;
        self.record(Call::Commit);
        Ok(())
    }

    async fn rollback(mut self) -> Result<(), DbError> {
        self.ended = true;
        self.record(Call::Rollback);
        Ok(())
    }

    fn abandon(mut self) {
        self.ended = true;
        self.record(Call::Abandoned);
    }
}

/// An audit event as the gate logged it.
#[derive(Debug, Clone)]
pub struct Audited {
    pub level: tracing::Level,
    pub event: serde_json::Value,
}

/// Collects the events of target `sluice::audit`.
struct AuditSink(Arc<Mutex<Vec<Audited>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AuditSink {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(Option<String>);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        if event.metadata().target() != "sluice::audit" {
            return;
        }
        let mut message = Message(None);
        event.record(&mut message);
        let line = message.0.expect("an audit event has a message");
        let parsed = serde_json::from_str(&line).expect("an audit event is one JSON object");
        lock_events(&self.0).push(Audited {
            level: *event.metadata().level(),
            event: parsed,
        });
    }
}

fn lock_events(events: &Mutex<Vec<Audited>>) -> std::sync::MutexGuard<'_, Vec<Audited>> {
    events.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The audit events logged on this thread while it lives (a test on a
/// current-thread runtime runs the gate's calls on its own thread).
pub struct AuditCapture {
    events: Arc<Mutex<Vec<Audited>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl AuditCapture {
    pub fn start() -> AuditCapture {
        use tracing_subscriber::layer::SubscriberExt as _;
        let events = Arc::<Mutex<Vec<Audited>>>::default();
        let subscriber = tracing_subscriber::registry().with(AuditSink(events.clone()));
        AuditCapture {
            events,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// The events logged since the last take.
    pub fn take_all(&self) -> Vec<Audited> {
        std::mem::take(&mut *lock_events(&self.events))
    }

    /// The one event logged since the last take.
    pub fn take_one(&self) -> Audited {
        let mut events = self.take_all();
        assert_eq!(events.len(), 1, "one audit event per call: {events:#?}");
        events.remove(0)
    }
}
