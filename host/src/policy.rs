//! The policy: what a plugin's grant allows, and what a SQL statement does.
//!
//! Pure functions only; the [`crate::gate`] applies them to every database host
//! call. Analysis fails closed: SQL the parser cannot read is refused.

use crate::config::GrantConfig;
use sqlparser::ast::{
    Expr, Function, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor, Value,
    ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// A refusal, naming the rule that refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("denied ({rule}): {message}")]
pub struct Denial {
    pub rule: &'static str,
    pub message: String,
}

impl Denial {
    fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Denial {
            rule,
            message: message.into(),
        }
    }
}

/// One relation pattern of a grant: `schema.name`, either part may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    schema: String,
    name: String,
}

impl Pattern {
    /// Parses `public.*`, `public.film`, `*.*`; a bare `film` means `public.film`.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let (schema, name) = match parts.as_slice() {
            [name] => ("public", *name),
            [schema, name] => (*schema, *name),
            _ => {
                return Err(format!(
                    "relation pattern {text:?} must be `schema.name` (either part may be `*`)"
                ));
            }
        };
        if schema.is_empty() || name.is_empty() {
            return Err(format!("relation pattern {text:?} has an empty part"));
        }
        Ok(Pattern {
            schema: schema.to_string(),
            name: name.to_string(),
        })
    }

    /// Whether the relation `schema.name` (as stored in the catalog) matches.
    pub fn matches(&self, schema: &str, name: &str) -> bool {
        glob(&self.schema, schema) && glob(&self.name, name)
    }
}

/// `*` matches any run of characters; everything else matches itself exactly.
fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(head) else {
        return false;
    };
    let pieces: Vec<&str> = rest.split('*').collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i == pieces.len() - 1 {
            return remaining.ends_with(piece);
        }
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Limits that apply to one plugin's calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Statement timeout and the wasm deadline.
    pub timeout_ms: u64,
    /// Rows returned per statement.
    pub max_rows: u32,
    /// Linear memory per call.
    pub memory_bytes: u64,
}

/// A plugin's effective grant.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub read: Vec<Pattern>,
    pub write: Vec<Pattern>,
    pub catalog: bool,
    pub role: Option<String>,
    pub limits: Limits,
}

/// The first-party plugin that gets a read grant on `public` by default.
pub const DEFAULT_READER: &str = "sql-read";

impl Grant {
    /// The grant for `plugin` from its config entry (if any) over the defaults:
    /// the first-party reader reads `public.*` with catalog access; nothing else
    /// may read, write or see the catalog unless granted.
    pub fn from_config(plugin: &str, config: Option<&GrantConfig>, defaults: &Limits) -> Grant {
        let empty = GrantConfig::default();
        let c = config.unwrap_or(&empty);
        let reader = plugin == DEFAULT_READER;
        let patterns = |list: &Option<Vec<String>>, default: &[&str]| -> Vec<Pattern> {
            let texts: Vec<String> = match list {
                Some(list) => list.clone(),
                None => default.iter().map(|s| s.to_string()).collect(),
            };
            // Patterns were validated when the config was loaded.
            texts
                .iter()
                .filter_map(|t| Pattern::parse(t).ok())
                .collect()
        };
        Grant {
            read: patterns(&c.read, if reader { &["public.*"] } else { &[] }),
            write: patterns(&c.write, &[]),
            catalog: c.catalog.unwrap_or(reader),
            role: c.role.clone(),
            limits: Limits {
                timeout_ms: c.timeout_ms.unwrap_or(defaults.timeout_ms),
                max_rows: c.max_rows.unwrap_or(defaults.max_rows),
                memory_bytes: c
                    .memory_mb
                    .map(|mb| mb * 1024 * 1024)
                    .unwrap_or(defaults.memory_bytes),
            },
        }
    }

    pub fn may_read(&self, schema: &str, name: &str) -> bool {
        self.read.iter().any(|p| p.matches(schema, name))
    }

    pub fn may_write(&self, schema: &str, name: &str) -> bool {
        self.write.iter().any(|p| p.matches(schema, name))
    }

    /// Reading is allowed for `schema.name`, or the denial that says why not.
    pub fn check_read(&self, schema: &str, name: &str) -> Result<(), Denial> {
        if self.may_read(schema, name) {
            Ok(())
        } else {
            Err(Denial::new(
                "read-grant",
                format!("relation {schema}.{name} is not in this plugin's read grant"),
            ))
        }
    }

    /// Writing is allowed for `schema.name`, or the denial that says why not.
    pub fn check_write(&self, schema: &str, name: &str) -> Result<(), Denial> {
        if self.may_write(schema, name) {
            Ok(())
        } else {
            Err(Denial::new(
                "write-grant",
                format!("relation {schema}.{name} is not in this plugin's write grant"),
            ))
        }
    }

    /// Catalog access is allowed, or the denial.
    pub fn check_catalog(&self) -> Result<(), Denial> {
        if self.catalog {
            Ok(())
        } else {
            Err(Denial::new(
                "catalog-grant",
                "this plugin may not list or describe relations",
            ))
        }
    }

    /// Whether `schema.name` is visible through the catalog calls.
    pub fn may_see(&self, schema: &str, name: &str) -> bool {
        self.may_read(schema, name) || self.may_write(schema, name)
    }
}

/// A relation name as written in SQL, before PostgreSQL resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationRef {
    /// The name in a form `to_regclass` resolves exactly: every part quoted,
    /// unquoted parts folded to lower case as PostgreSQL folds them.
    pub regclass_text: String,
    /// The name as written, for messages.
    pub display: String,
}

/// What a read statement touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAnalysis {
    /// Every relation referenced anywhere, deduplicated. Names that turn out
    /// not to be relations (CTE names, functions in FROM) resolve to nothing.
    pub relations: Vec<RelationRef>,
    /// The parsed statement, for re-rendering when the host must wrap it.
    pub statement: Statement,
}

/// Functions no plugin may call, in any position: file and process access,
/// session state that would leak across pooled connections, SQL smuggled in
/// strings, and sleeping. Exact names, then name prefixes.
const DENIED_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_stat_file",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "set_config",
    "nextval",
    "setval",
    "pg_notify",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "pg_switch_wal",
    "pg_promote",
    "pg_create_restore_point",
    "pg_export_snapshot",
    "pg_import_snapshot",
];
const DENIED_FUNCTION_PREFIXES: &[&str] = &[
    "pg_ls_",
    "pg_read_",
    "pg_file_",
    "lo_",
    "pg_advisory",
    "pg_try_advisory",
    "dblink",
    "pg_sleep",
    "pg_replication_",
    "pg_logical_",
    "pg_create_",
    "pg_drop_replication",
    "pg_stat_reset",
    "pg_stat_statements_reset",
];

fn function_denied(name: &ObjectName) -> Option<Denial> {
    let last = match name.0.last()? {
        ObjectNamePart::Identifier(ident) => ident.value.to_lowercase(),
        ObjectNamePart::Function(f) => f.name.value.to_lowercase(),
    };
    let denied = DENIED_FUNCTIONS.contains(&last.as_str())
        || DENIED_FUNCTION_PREFIXES.iter().any(|p| last.starts_with(p));
    denied.then(|| {
        Denial::new(
            "function-denylist",
            format!("function {last} is not allowed"),
        )
    })
}

/// Parses `sql` and checks that it is exactly one read-only statement.
pub fn analyze_read(sql: &str) -> Result<ReadAnalysis, Denial> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| Denial::new("parse", format!("the SQL could not be parsed: {e}")))?;
    if statements.len() != 1 {
        return Err(Denial::new(
            "single-statement",
            format!(
                "exactly one statement is allowed, found {}",
                statements.len()
            ),
        ));
    }
    let statement = statements.remove(0);
    match &statement {
        Statement::Query(_) => {}
        Statement::Explain {
            analyze,
            statement: inner,
            options,
            ..
        } => {
            let analyze_option = options
                .iter()
                .flatten()
                .any(|o| o.name.value.eq_ignore_ascii_case("analyze") && !option_is_false(&o.arg));
            if *analyze || analyze_option {
                return Err(Denial::new(
                    "explain-analyze",
                    "EXPLAIN ANALYZE runs the statement; only plain EXPLAIN is allowed",
                ));
            }
            if !matches!(inner.as_ref(), Statement::Query(_)) {
                return Err(Denial::new(
                    "read-only-statement",
                    "only queries can be explained",
                ));
            }
        }
        other => {
            return Err(Denial::new(
                "read-only-statement",
                format!(
                    "only SELECT, WITH, VALUES, TABLE and EXPLAIN are allowed, not {}",
                    statement_kind(other)
                ),
            ));
        }
    }
    let mut collector = Collector::default();
    if let ControlFlow::Break(denial) = statement.visit(&mut collector) {
        return Err(denial);
    }
    Ok(ReadAnalysis {
        relations: collector.relations,
        statement,
    })
}

/// `EXPLAIN (ANALYZE false)` is harmless; any other value enables it.
fn option_is_false(arg: &Option<Expr>) -> bool {
    let Some(arg) = arg else { return false };
    let text = arg.to_string().trim_matches('\'').to_lowercase();
    matches!(text.as_str(), "false" | "off" | "0" | "no")
}

/// A short name for a statement kind, for messages: its first keyword, or
/// two for the object commands (`CREATE TABLE`).
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string().to_uppercase();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    match (first, words.next()) {
        ("CREATE" | "ALTER" | "DROP" | "COMMENT" | "REFRESH", Some(second)) => {
            format!("{first} {second}")
        }
        _ => first.to_string(),
    }
}

/// Walks a statement, collecting relations and refusing what a read may not do.
#[derive(Default)]
struct Collector {
    relations: Vec<RelationRef>,
}

impl Collector {
    fn add(&mut self, parts: Vec<(String, bool)>) {
        let regclass_text = parts
            .iter()
            .map(|(value, quoted)| {
                let folded = if *quoted {
                    value.clone()
                } else {
                    value.to_lowercase()
                };
                format!("\"{}\"", folded.replace('"', "\"\""))
            })
            .collect::<Vec<_>>()
            .join(".");
        let display = parts
            .iter()
            .map(|(v, _)| v.as_str())
            .collect::<Vec<_>>()
            .join(".");
        if !self
            .relations
            .iter()
            .any(|r| r.regclass_text == regclass_text)
        {
            self.relations.push(RelationRef {
                regclass_text,
                display,
            });
        }
    }

    /// `TABLE name` carries its name as plain strings, outside the relation visitor.
    fn table_commands(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Table(t) => {
                if let Some(name) = &t.table_name {
                    let mut parts = Vec::new();
                    if let Some(schema) = &t.schema_name {
                        parts.push((schema.value.clone(), schema.quote_style.is_some()));
                    }
                    parts.push((name.value.clone(), name.quote_style.is_some()));
                    self.add(parts);
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.table_commands(left);
                self.table_commands(right);
            }
            SetExpr::Query(q) => self.table_commands(&q.body),
            _ => {}
        }
    }
}

fn check_function(f: &Function) -> ControlFlow<Denial> {
    match function_denied(&f.name) {
        Some(d) => ControlFlow::Break(d),
        None => ControlFlow::Continue(()),
    }
}

impl Visitor for Collector {
    type Break = Denial;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Denial> {
        if !query.locks.is_empty() || query.for_clause.is_some() {
            return ControlFlow::Break(Denial::new(
                "locking-clause",
                "FOR UPDATE/SHARE and other locking clauses are not allowed in reads",
            ));
        }
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                if modifies_data(&cte.query.body) {
                    return ControlFlow::Break(Denial::new(
                        "data-modifying-cte",
                        format!("WITH {} modifies data", cte.alias.name.value),
                    ));
                }
            }
        }
        if modifies_data(&query.body) {
            return ControlFlow::Break(Denial::new(
                "read-only-statement",
                "the statement modifies data",
            ));
        }
        if let SetExpr::Select(select) = query.body.as_ref()
            && select.into.is_some()
        {
            return ControlFlow::Break(Denial::new(
                "select-into",
                "SELECT INTO creates a table; it is not allowed",
            ));
        }
        self.table_commands(&query.body);
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Denial> {
        // Statements nested in a query (INSERT/UPDATE/DELETE/MERGE bodies) are
        // writes wherever they appear.
        match statement {
            Statement::Query(_) | Statement::Explain { .. } => ControlFlow::Continue(()),
            other => ControlFlow::Break(Denial::new(
                "read-only-statement",
                format!("{} is not allowed in a read", statement_kind(other)),
            )),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Denial> {
        let mut parts = Vec::new();
        for part in &relation.0 {
            match part {
                ObjectNamePart::Identifier(ident) => {
                    parts.push((ident.value.clone(), ident.quote_style.is_some()))
                }
                ObjectNamePart::Function(_) => {
                    return ControlFlow::Break(Denial::new(
                        "parse",
                        format!("unsupported relation name {relation}"),
                    ));
                }
            }
        }
        self.add(parts);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Denial> {
        let name = match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => name,
            TableFactor::Function { name, .. } => name,
            _ => return ControlFlow::Continue(()),
        };
        match function_denied(name) {
            Some(d) => ControlFlow::Break(d),
            None => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Denial> {
        match expr {
            Expr::Function(f) => check_function(f),
            _ => ControlFlow::Continue(()),
        }
    }
}

fn modifies_data(body: &SetExpr) -> bool {
    match body {
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => true,
        SetExpr::SetOperation { left, right, .. } => modifies_data(left) || modifies_data(right),
        SetExpr::Query(q) => modifies_data(&q.body),
        _ => false,
    }
}

/// The statement with every literal replaced by `?` (parameters stay `$n`):
/// what the audit trail records, so that values never reach it.
pub fn fingerprint(statement: &Statement) -> String {
    struct Blank;
    impl VisitorMut for Blank {
        type Break = ();
        fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
            if !matches!(value.value, Value::Placeholder(_)) {
                value.value = Value::Placeholder("?".into());
            }
            ControlFlow::Continue(())
        }
    }
    let mut statement = statement.clone();
    let _ = VisitMut::visit(&mut statement, &mut Blank);
    statement.to_string()
}

/// Parses a relation name given to a typed call (`film`, `public.film`,
/// `"Odd Name"`), into the form `to_regclass` resolves.
pub fn parse_relation_name(text: &str) -> Result<RelationRef, String> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| format!("invalid relation name {text:?}: {e}"))?;
    let name = parser
        .parse_object_name(false)
        .map_err(|e| format!("invalid relation name {text:?}: {e}"))?;
    if parser.peek_token().token != sqlparser::tokenizer::Token::EOF {
        return Err(format!(
            "invalid relation name {text:?}: unexpected text after the name"
        ));
    }
    if name.0.is_empty() || name.0.len() > 3 {
        return Err(format!("invalid relation name {text:?}"));
    }
    let mut collector = Collector::default();
    if let ControlFlow::Break(d) = collector.pre_visit_relation(&name) {
        return Err(d.message);
    }
    collector
        .relations
        .pop()
        .ok_or_else(|| format!("invalid relation name {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rels(sql: &str) -> Vec<String> {
        analyze_read(sql)
            .unwrap()
            .relations
            .into_iter()
            .map(|r| r.regclass_text)
            .collect()
    }

    fn rule(sql: &str) -> &'static str {
        analyze_read(sql).unwrap_err().rule
    }

    #[test]
    fn collects_relations_everywhere() {
        assert_eq!(
            rels("SELECT * FROM a JOIN s.b ON true WHERE x IN (SELECT y FROM \"C\")"),
            vec!["\"a\"", "\"s\".\"b\"", "\"C\""]
        );
        assert_eq!(
            rels("WITH t AS (SELECT * FROM d) SELECT * FROM t"),
            vec!["\"d\"", "\"t\""]
        );
        assert_eq!(
            rels("SELECT 1 UNION TABLE public.e"),
            vec!["\"public\".\"e\""]
        );
        assert_eq!(rels("EXPLAIN (FORMAT JSON) SELECT * FROM g"), vec!["\"g\""]);
    }

    #[test]
    fn refuses_writes_and_stacking() {
        assert_eq!(rule("DELETE FROM a"), "read-only-statement");
        assert_eq!(rule("SELECT 1; DROP TABLE a"), "single-statement");
        assert_eq!(rule("COMMIT"), "read-only-statement");
        assert_eq!(
            rule("WITH x AS (DELETE FROM a RETURNING *) SELECT * FROM x"),
            "data-modifying-cte"
        );
        assert_eq!(rule("SELECT * FROM a FOR UPDATE"), "locking-clause");
        assert_eq!(rule("SELECT * INTO b FROM a"), "select-into");
        assert_eq!(rule("EXPLAIN ANALYZE SELECT 1"), "explain-analyze");
        assert_eq!(
            rule("EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1"),
            "explain-analyze"
        );
        assert_eq!(rule("EXPLAIN DELETE FROM a"), "read-only-statement");
        assert_eq!(rule("SELEC 1"), "parse");
    }

    #[test]
    fn refuses_denied_functions_anywhere() {
        assert_eq!(
            rule("SELECT pg_read_file('/etc/passwd')"),
            "function-denylist"
        );
        assert_eq!(
            rule("SELECT * FROM pg_read_file('/etc/passwd')"),
            "function-denylist"
        );
        assert_eq!(
            rule("SELECT 1 WHERE pg_sleep(10) IS NULL"),
            "function-denylist"
        );
        assert_eq!(
            rule("SELECT PG_CATALOG.SET_CONFIG('a', 'b', false)"),
            "function-denylist"
        );
        assert_eq!(rule("SELECT lo_import('/etc/passwd')"), "function-denylist");
    }

    #[test]
    fn allows_analyst_sql() {
        rels("SELECT last_update, count(*) OVER (PARTITION BY x) FROM a ORDER BY 1");
        rels("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM payment");
        rels("SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.id = a.id LIMIT 1) l");
        rels("SELECT 'delete from x; drop table y' AS s");
    }

    #[test]
    fn fingerprints_drop_literals() {
        let a = analyze_read("SELECT * FROM t WHERE name = 'secret' AND id = $1 LIMIT 10").unwrap();
        assert_eq!(
            fingerprint(&a.statement),
            "SELECT * FROM t WHERE name = ? AND id = $1 LIMIT ?"
        );
    }

    #[test]
    fn patterns_match() {
        let p = Pattern::parse("public.*").unwrap();
        assert!(p.matches("public", "film"));
        assert!(!p.matches("secret", "film"));
        let p = Pattern::parse("film").unwrap();
        assert!(p.matches("public", "film"));
        assert!(!p.matches("public", "films"));
        let p = Pattern::parse("s.f*m").unwrap();
        assert!(p.matches("s", "film"));
        assert!(!p.matches("s", "filmx"));
        assert!(Pattern::parse("a.b.c").is_err());
    }

    #[test]
    fn parses_relation_names() {
        assert_eq!(
            parse_relation_name("Film").unwrap().regclass_text,
            "\"film\""
        );
        assert_eq!(
            parse_relation_name("public.\"Odd Name\"")
                .unwrap()
                .regclass_text,
            "\"public\".\"Odd Name\""
        );
        assert!(parse_relation_name("film; drop table x").is_err());
        assert!(parse_relation_name("").is_err());
    }
}
