//! Statements the gate analysed recently.
//!
//! A plugin's tools send the same SQL call after call, and parsing it,
//! checking it and computing its audit fingerprint was a tenth of the host's
//! work per call. The analysis is a pure function of the SQL text and the
//! function rules, so it is kept and reused; denials are not kept.

use crate::policy::{self, Denial, FunctionRules};
use sqlparser::ast::Statement;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Statements kept per set of function rules.
const CAPACITY: usize = 256;
/// Longer SQL is analysed every time rather than kept.
const MAX_KEPT_SQL: usize = 8 * 1024;
/// The analysis recurses; it runs on a stack with at least this much room.
const RED_ZONE: usize = 256 * 1024;
/// The size of the stack it gets when the current one has less room (or,
/// on a plugin call's fiber, an extent the stack guard cannot see).
const STACK_SIZE: usize = 4 * 1024 * 1024;

/// One read statement that passed the policy.
pub(super) struct Analyzed {
    /// Relation names, in `to_regclass` form.
    pub relations: Vec<String>,
    /// The audit fingerprint.
    pub fingerprint: String,
    /// A query (rather than EXPLAIN), so it can be a cursor's body.
    pub is_query: bool,
    statement: Statement,
    rendered: OnceLock<String>,
}

impl Analyzed {
    /// The statement rendered back to SQL, for wrapping.
    pub fn rendered(&self) -> String {
        self.rendered
            .get_or_init(|| self.statement.to_string())
            .clone()
    }
}

/// Analyses, remembering what passed.
#[derive(Default)]
pub(super) struct AnalysisCache {
    /// By the address of the function rules they were checked against.
    entries: Mutex<HashMap<usize, Kept>>,
}

/// What passed under one set of function rules.
struct Kept {
    /// Held so that the address keying this cannot be reused.
    _rules: Arc<FunctionRules>,
    statements: HashMap<String, Arc<Analyzed>>,
}

impl AnalysisCache {
    pub fn analyze_read(
        &self,
        sql: &str,
        functions: &Arc<FunctionRules>,
    ) -> Result<Arc<Analyzed>, Denial> {
        let rules = Arc::as_ptr(functions) as usize;
        if let Some(hit) = self
            .entries
            .lock()
            .ok()
            .and_then(|e| e.get(&rules).and_then(|k| k.statements.get(sql).cloned()))
        {
            return Ok(hit);
        }
        // sqlparser guards its recursion with stacker, which cannot see the
        // bounds of a plugin call's fiber stack and would map a fresh stack
        // for every recursive entry point; one switch here covers them all.
        let analyzed = stacker::maybe_grow(RED_ZONE, STACK_SIZE, || {
            policy::analyze_read(sql, functions).map(|a| {
                let fingerprint = policy::fingerprint(&a.statement);
                Analyzed {
                    relations: a.relations.into_iter().map(|r| r.regclass_text).collect(),
                    fingerprint,
                    is_query: matches!(a.statement, Statement::Query(_)),
                    statement: a.statement,
                    rendered: OnceLock::new(),
                }
            })
        })?;
        let analyzed = Arc::new(analyzed);
        if sql.len() <= MAX_KEPT_SQL
            && let Ok(mut entries) = self.entries.lock()
        {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_passed_and_not_what_was_denied() {
        let cache = AnalysisCache::default();
        let rules = Arc::new(FunctionRules::default());
        let first = cache.analyze_read("SELECT 1 AS a", &rules).unwrap();
        let again = cache.analyze_read("SELECT 1 AS a", &rules).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.rendered(), "SELECT 1 AS a");
        assert!(first.is_query);

        assert!(cache.analyze_read("DELETE FROM t", &rules).is_err());
        let kept = cache.entries.lock().unwrap();
        assert_eq!(kept[&(Arc::as_ptr(&rules) as usize)].statements.len(), 1);
    }

    #[test]
    fn other_function_rules_analyse_anew() {
        let cache = AnalysisCache::default();
        let open = Arc::new(FunctionRules::default());
        let strict = Arc::new(FunctionRules::new(None, &["lower".to_string()]).unwrap());
        assert!(cache.analyze_read("SELECT lower('A')", &open).is_ok());
        let denied = cache.analyze_read("SELECT lower('A')", &strict);
        assert_eq!(denied.err().map(|d| d.rule), Some("function-denylist"));
    }
}
