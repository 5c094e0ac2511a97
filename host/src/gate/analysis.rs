//! Where the gate analyses a plugin's SQL, and what it remembers of it.
//!
//! Analysis (tokenizing, parsing and walking a statement) is CPU work that
//! recurses on the statement's depth. It runs on a pool of threads of its
//! own, with deep stacks, never on an async worker or a plugin call's
//! fiber, and a call waits for it no longer than its deadline, so one
//! plugin's huge statement delays nobody else's calls. The statement's size
//! and depth are checked on its text and tokens before anything recurses
//! (see [`policy::StatementLimits`]).
//!
//! A plugin's tools send the same SQL call after call, and analysing it was
//! a tenth of the host's work per call. The analysis is a pure function of
//! the SQL text and the function rules, so what passed is kept and reused;
//! denials are not kept.

use super::GateError;
use crate::policy::{self, Denial, FunctionRules, StatementLimits};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Statements kept per set of function rules.
const CAPACITY: usize = 256;
/// Longer SQL is analysed every time rather than kept.
const MAX_KEPT_SQL: usize = 8 * 1024;
/// Stack of each analysis thread: room for
/// [`policy::MAX_STATEMENT_DEPTH_LIMIT`] levels of the deepest walk, with
/// room to spare in an unoptimised build. Only touched pages cost memory.
const STACK_SIZE: usize = 64 * 1024 * 1024;
/// Statements that may wait for a thread; beyond it a call is refused.
const QUEUE: usize = 1024;

/// One read statement that passed the policy.
#[derive(Debug)]
pub(super) struct Analyzed {
    /// Relation names, in `to_regclass` form.
    pub relations: Vec<String>,
    /// The audit fingerprint.
    pub fingerprint: String,
    /// A query (rather than EXPLAIN), so it can be a cursor's body.
    pub is_query: bool,
    /// The statement rendered back to SQL, for wrapping.
    pub rendered: String,
    /// EXPLAIN ANALYZE, which runs the statement.
    pub analyzes: bool,
    /// It calls a function that keeps session state: it runs in a session.
    pub session_state: bool,
    /// The `$n` carrying index definitions, checked once their values are
    /// known (see [`policy::ReadAnalysis::index_params`]).
    pub index_params: Vec<u32>,
}

/// Analyses SQL on its threads, remembering what passed.
pub(super) struct Analyzer {
    limits: StatementLimits,
    pool: Pool,
    /// By the address of the function rules they were checked against.
    entries: Mutex<HashMap<usize, Kept>>,
}

/// What passed under one set of function rules.
struct Kept {
    /// Held so that the address keying this cannot be reused.
    _rules: Arc<FunctionRules>,
    statements: HashMap<String, Arc<Analyzed>>,
}

impl Analyzer {
    /// Starts the analysis threads.
    pub fn new(limits: StatementLimits) -> std::io::Result<Analyzer> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        Ok(Analyzer {
            limits,
            pool: Pool::new(threads)?,
            entries: Mutex::default(),
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Kept>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks `sql` as one read statement under `functions`, finishing by
    /// `deadline` or failing.
    pub async fn analyze_read(
        &self,
        sql: &str,
        functions: &Arc<FunctionRules>,
        deadline: Instant,
        timeout_ms: u64,
    ) -> Result<Arc<Analyzed>, GateError> {
        let rules = Arc::as_ptr(functions) as usize;
        if let Some(hit) = self
            .entries()
            .get(&rules)
            .and_then(|k| k.statements.get(sql).cloned())
        {
            return Ok(hit);
        }
        // Refused here, before a copy of it is made for the pool.
        if sql.len() > self.limits.max_bytes {
            return Err(policy::analyze_read(sql, functions, self.limits)
                .err()
                .unwrap_or_else(|| Denial::new(policy::TOO_COMPLEX, "the statement is too long"))
                .into());
        }
        let limits = self.limits;
        let text = sql.to_owned();
        let rules_for_job = functions.clone();
        let analyzed = self
            .pool
            .run(deadline, move || {
                policy::analyze_read(&text, &rules_for_job, limits).map(|a| Analyzed {
                    relations: a.relations.into_iter().map(|r| r.regclass_text).collect(),
                    fingerprint: a.fingerprint,
                    is_query: a.is_query,
                    rendered: a.rendered,
                    analyzes: a.analyzes,
                    session_state: a.session_state,
                    index_params: a.index_params,
                })
            })
            .await
            .map_err(|e| pool_error(e, timeout_ms))??;
        let analyzed = Arc::new(analyzed);
        if sql.len() <= MAX_KEPT_SQL {
            let mut entries = self.entries();
            let kept = &mut entries
                .entry(rules)
                .or_insert_with(|| Kept {
                    _rules: functions.clone(),
                    statements: HashMap::new(),
                })
                .statements;
            if kept.len() >= CAPACITY {
                // Simpler than LRU, and a working set larger than this is
                // not the repeated-statement case the cache is for.
                kept.clear();
            }
            kept.insert(sql.to_owned(), analyzed.clone());
        }
        Ok(analyzed)
    }
}

impl Analyzer {
    /// Checks `sql` as one write statement under `functions`, finishing by
    /// `deadline` or failing. Writes are not kept: each costs a
    /// transaction that commits, which the analysis is small beside.
    pub async fn analyze_write(
        &self,
        sql: &str,
        functions: &Arc<FunctionRules>,
        deadline: Instant,
        timeout_ms: u64,
    ) -> Result<policy::WriteAnalysis, GateError> {
        if sql.len() > self.limits.max_bytes {
            return Err(policy::analyze_write(sql, functions, self.limits)
                .err()
                .unwrap_or_else(|| Denial::new(policy::TOO_COMPLEX, "the statement is too long"))
                .into());
        }
        let limits = self.limits;
        let text = sql.to_owned();
        let rules = functions.clone();
        self.pool
            .run(deadline, move || {
                policy::analyze_write(&text, &rules, limits)
            })
            .await
            .map_err(|e| pool_error(e, timeout_ms))?
            .map_err(GateError::from)
    }
}

impl Analyzer {
    /// Checks the index definitions a statement's parameters carry (see
    /// [`policy::analyze_index_definition`]), finishing by `deadline` or
    /// failing. Returns every relation they name.
    pub async fn analyze_index_definitions(
        &self,
        definitions: Vec<String>,
        functions: &Arc<FunctionRules>,
        deadline: Instant,
        timeout_ms: u64,
    ) -> Result<Vec<policy::RelationRef>, GateError> {
        let limits = self.limits;
        let rules = functions.clone();
        self.pool
            .run(deadline, move || {
                let mut relations = Vec::new();
                for text in &definitions {
                    relations.extend(policy::analyze_index_definition(text, &rules, limits)?);
                }
                Ok::<_, Denial>(relations)
            })
            .await
            .map_err(|e| pool_error(e, timeout_ms))?
            .map_err(GateError::from)
    }
}

fn pool_error(e: PoolError, timeout_ms: u64) -> GateError {
    match e {
        PoolError::Busy => GateError::Internal(
            "sluice is analysing too many statements at once; retry shortly".into(),
        ),
        PoolError::Late => GateError::Denied(Denial::new(
            policy::TOO_COMPLEX,
            format!(
                "analysing the statement took longer than this plugin's timeout_ms \
                 ({timeout_ms} ms); send a shorter or simpler statement"
            ),
        )),
        PoolError::Failed => GateError::Internal("the statement's analysis failed".into()),
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads that run analyses, fed through a bounded queue.
struct Pool {
    jobs: SyncSender<Job>,
}

/// Why a job gave no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolError {
    /// The queue is full.
    Busy,
    /// The deadline passed first.
    Late,
    /// The job panicked.
    Failed,
}

impl Pool {
    /// `threads` threads that end when the pool is dropped.
    fn new(threads: usize) -> std::io::Result<Pool> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("sluice-sql-{i}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    loop {
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else { break };
                        // A panic costs its call, not the thread.
                        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a statement's analysis panicked");
                        }
                    }
                })?;
        }
        Ok(Pool { jobs })
    }

    /// Runs `work` on a pool thread; waits for it until `deadline`. Work
    /// still queued when its deadline passes is not started.
    async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if Instant::now() < deadline {
                let _ = done.send(work());
            }
        });
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Busy,
            TrySendError::Disconnected(_) => PoolError::Failed,
        })?;
        match tokio::time::timeout_at(deadline.into(), result).await {
            Err(_) => Err(PoolError::Late),
            Ok(Err(_)) if Instant::now() >= deadline => Err(PoolError::Late),
            Ok(Err(_)) => Err(PoolError::Failed),
            Ok(Ok(value)) => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[tokio::test]
    async fn keeps_what_passed_and_not_what_was_denied() {
        let analyzer = Analyzer::new(StatementLimits::default()).unwrap();
        let rules = Arc::new(FunctionRules::default());
        let first = analyzer
            .analyze_read("SELECT 1 AS a", &rules, soon(), 1)
            .await
            .unwrap();
        let again = analyzer
            .analyze_read("SELECT 1 AS a", &rules, soon(), 1)
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.rendered, "SELECT 1 AS a");
        assert!(first.is_query);

        assert!(
            analyzer
                .analyze_read("DELETE FROM t", &rules, soon(), 1)
                .await
                .is_err()
        );
        let kept = analyzer.entries();
        assert_eq!(kept[&(Arc::as_ptr(&rules) as usize)].statements.len(), 1);
    }

    #[tokio::test]
    async fn other_function_rules_analyse_anew() {
        let analyzer = Analyzer::new(StatementLimits::default()).unwrap();
        let open = Arc::new(FunctionRules::default());
        let strict = Arc::new(FunctionRules::new(None, &["lower".to_string()]).unwrap());
        let sql = "SELECT lower('A')";
        assert!(analyzer.analyze_read(sql, &open, soon(), 1).await.is_ok());
        match analyzer.analyze_read(sql, &strict, soon(), 1).await {
            Err(GateError::Denied(d)) => assert_eq!(d.rule, "function-denylist"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_call_waits_no_longer_than_its_deadline() {
        use futures::FutureExt as _;
        let pool = Pool::new(1).unwrap();
        // The only thread is kept busy: its job is queued, and its result
        // no longer awaited.
        let (release, held) = std::sync::mpsc::channel::<()>();
        assert!(
            pool.run(soon(), move || held.recv().is_ok())
                .now_or_never()
                .is_none()
        );
        let late = pool
            .run(Instant::now() + Duration::from_millis(50), || 1)
            .await;
        assert_eq!(late, Err(PoolError::Late));
        release.send(()).unwrap();
        // The late job was never started; the pool carries on.
        assert_eq!(pool.run(soon(), || 2).await, Ok(2));
    }

    /// The deepest statements the highest `max_statement_depth` lets
    /// through are analysed on the pool's stacks without overflowing them
    /// (an overflow would abort this test process).
    #[tokio::test]
    async fn the_deepest_allowed_statements_fit_the_stack() {
        let limits = StatementLimits {
            max_bytes: usize::MAX,
            max_depth: policy::MAX_STATEMENT_DEPTH_LIMIT,
        };
        let analyzer = Analyzer::new(limits).unwrap();
        let rules = Arc::new(FunctionRules::default());
        let n = policy::MAX_STATEMENT_DEPTH_LIMIT - 2;
        for sql in [
            format!("SELECT 1{}", "+1".repeat(n)),
            format!("SELECT 1 WHERE {}", vec!["a"; n].join(" OR ")),
            vec!["SELECT 1"; n].join(" UNION ALL "),
            format!("SELECT 1{}", "::int".repeat(n)),
            format!(
                "SELECT 1 FROM t WHERE {}",
                vec!["x IN (SELECT y FROM u WHERE z = 1)"; n / 8].join(" AND ")
            ),
        ] {
            let analyzed = analyzer
                .analyze_read(&sql, &rules, soon(), 1)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!analyzed.fingerprint.is_empty());
        }
        // One level more is refused before it is parsed.
        let over = format!("SELECT 1{}", "+1".repeat(n + 2));
        match analyzer.analyze_read(&over, &rules, soon(), 1).await {
            Err(GateError::Denied(d)) => assert_eq!(d.rule, policy::TOO_COMPLEX),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_panicking_job_costs_only_itself() {
        let pool = Pool::new(1).unwrap();
        let failed = pool.run(soon(), || -> u8 { panic!("boom") }).await;
        assert_eq!(failed, Err(PoolError::Failed));
        assert_eq!(pool.run(soon(), || 7).await, Ok(7));
    }
}
