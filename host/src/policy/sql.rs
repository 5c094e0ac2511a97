//! What a SQL statement does: parsed with sqlparser's PostgreSQL dialect and
//! walked in full, so that no position (select list, FROM, WHERE, arguments,
//! casts, ORDER BY, CTE bodies, set operations) escapes the checks.
//!
//! Fails closed: SQL the parser cannot read is refused, and so is syntax it
//! reads differently from PostgreSQL (Unicode-escaped identifiers).

use super::{Denial, FunctionRules};
use sqlparser::ast::{
    AccessExpr, Expr, Function, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor,
    Value, ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};
use std::ops::ControlFlow;

/// PostgreSQL truncates identifiers to this many bytes (NAMEDATALEN - 1).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// A relation name as written in SQL, before PostgreSQL resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationRef {
    /// The name in a form `to_regclass` resolves exactly: every part quoted,
    /// unquoted parts folded to lower case and long parts truncated, as
    /// PostgreSQL does.
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

/// Parses `sql` and checks that it is exactly one read-only statement that
/// calls no function `functions` refuses.
pub fn analyze_read(sql: &str, functions: &FunctionRules) -> Result<ReadAnalysis, Denial> {
    refuse_unicode_identifiers(sql)?;
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
            // PostgreSQL accepts the British spelling as well.
            let analyze_option = options.iter().flatten().any(|o| {
                let name = o.name.value.to_ascii_lowercase();
                (name == "analyze" || name == "analyse") && !option_is_false(&o.arg)
            });
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
    let mut collector = Collector {
        relations: Vec::new(),
        functions,
    };
    if let ControlFlow::Break(denial) = statement.visit(&mut collector) {
        return Err(denial);
    }
    Ok(ReadAnalysis {
        relations: collector.relations,
        statement,
    })
}

/// `U&"…"` identifiers carry escapes PostgreSQL decodes and sqlparser does not
/// (it reads `U & "…"`), so `U&"pg\005fread_file"(…)` would be checked under
/// the wrong name. They are refused rather than decoded a second way.
fn refuse_unicode_identifiers(sql: &str) -> Result<(), Denial> {
    let dialect = PostgreSqlDialect {};
    // Tokenizer errors surface as parse errors right after.
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return Ok(());
    };
    for window in tokens.windows(3) {
        if let [Token::Word(u), Token::Ampersand, Token::Word(ident)] = window
            && u.quote_style.is_none()
            && u.value.eq_ignore_ascii_case("u")
            && ident.quote_style == Some('"')
        {
            return Err(Denial::new(
                "unicode-identifier",
                "U&\"…\" identifiers are not allowed; write the identifier plainly",
            ));
        }
    }
    Ok(())
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

/// An identifier as PostgreSQL stores it: unquoted ones folded to lower case,
/// every one cut to 63 bytes on a character boundary.
fn stored_identifier(value: &str, quoted: bool) -> String {
    let mut folded = if quoted {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    if folded.len() > MAX_IDENTIFIER_BYTES {
        let mut end = MAX_IDENTIFIER_BYTES;
        while !folded.is_char_boundary(end) {
            end -= 1;
        }
        folded.truncate(end);
    }
    folded
}

/// Walks a statement, collecting relations and refusing what a read may not do.
struct Collector<'a> {
    relations: Vec<RelationRef>,
    functions: &'a FunctionRules,
}

impl Collector<'_> {
    fn add(&mut self, parts: Vec<(String, bool)>) {
        let regclass_text = parts
            .iter()
            .map(|(value, quoted)| {
                format!(
                    "\"{}\"",
                    stored_identifier(value, *quoted).replace('"', "\"\"")
                )
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

    fn check_call(&self, name: &ObjectName) -> ControlFlow<Denial> {
        let last = match name.0.last() {
            Some(ObjectNamePart::Identifier(ident)) => &ident.value,
            Some(ObjectNamePart::Function(f)) => &f.name.value,
            None => return ControlFlow::Continue(()),
        };
        match self.functions.check(last) {
            Err(d) => ControlFlow::Break(d),
            Ok(()) => ControlFlow::Continue(()),
        }
    }
}

impl Visitor for Collector<'_> {
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
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => self.check_call(name),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Denial> {
        match expr {
            Expr::Function(Function { name, .. }) => self.check_call(name),
            // PostgreSQL's attribute notation: `(expr).f` calls `f(expr)`.
            Expr::CompoundFieldAccess { access_chain, .. } => {
                for access in access_chain {
                    if let AccessExpr::Dot(Expr::Identifier(ident)) = access
                        && let Err(d) = self.functions.check(&ident.value)
                    {
                        return ControlFlow::Break(d);
                    }
                }
                ControlFlow::Continue(())
            }
            // `alias.f` calls `f(alias)` when alias has no column f. Only a
            // function taking the row type can be called this way, and none of
            // the built-in denied ones does; the operator's may.
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                match self.functions.check_operator_denied(&parts[1].value) {
                    Err(d) => ControlFlow::Break(d),
                    Ok(()) => ControlFlow::Continue(()),
                }
            }
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
    let invalid = |why: &dyn std::fmt::Display| format!("invalid relation name {text:?}: {why}");
    refuse_unicode_identifiers(text).map_err(|d| invalid(&d.message))?;
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| invalid(&e))?;
    let name = parser.parse_object_name(false).map_err(|e| invalid(&e))?;
    if parser.peek_token().token != Token::EOF {
        return Err(invalid(&"unexpected text after the name"));
    }
    if name.0.is_empty() || name.0.len() > 3 {
        return Err(invalid(&"expected `name` or `schema.name`"));
    }
    let rules = FunctionRules::default();
    let mut collector = Collector {
        relations: Vec::new(),
        functions: &rules,
    };
    if let ControlFlow::Break(d) = collector.pre_visit_relation(&name) {
        return Err(d.message);
    }
    collector
        .relations
        .pop()
        .ok_or_else(|| invalid(&"empty name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rels(sql: &str) -> Vec<String> {
        analyze_read(sql, &FunctionRules::default())
            .unwrap()
            .relations
            .into_iter()
            .map(|r| r.regclass_text)
            .collect()
    }

    fn rule(sql: &str) -> &'static str {
        analyze_read(sql, &FunctionRules::default())
            .unwrap_err()
            .rule
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
        let a = analyze_read(
            "SELECT * FROM t WHERE name = 'secret' AND id = $1 LIMIT 10",
            &FunctionRules::default(),
        )
        .unwrap();
        assert_eq!(
            fingerprint(&a.statement),
            "SELECT * FROM t WHERE name = ? AND id = $1 LIMIT ?"
        );
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

    #[test]
    fn refuses_what_postgres_reads_differently() {
        assert_eq!(
            rule(r#"SELECT U&"pg\005fread_file"('/etc/passwd')"#),
            "unicode-identifier"
        );
        assert_eq!(
            rule(r#"SELECT * FROM u&"pg\0061uthid""#),
            "unicode-identifier"
        );
        // Attribute notation is a function call in PostgreSQL.
        assert_eq!(
            rule("SELECT ('/etc/passwd'::text).pg_read_file"),
            "function-denylist"
        );
        assert_eq!(rule("SELECT (5).pg_sleep"), "function-denylist");
        assert_eq!(rule("EXPLAIN (ANALYSE) SELECT 1"), "explain-analyze");
        rels("EXPLAIN (ANALYZE false, FORMAT JSON) SELECT 1");
        // A unicode string literal is a plain string.
        rels(r"SELECT U&'d\0061ta'");
        // Long names are truncated as PostgreSQL truncates them.
        let long = format!("SELECT * FROM s.{}", "a".repeat(70));
        assert_eq!(rels(&long), vec![format!("\"s\".\"{}\"", "a".repeat(63))]);
    }

    #[test]
    fn operator_rules_reach_attribute_calls() {
        let rules = FunctionRules::new(None, &["secret_fn".into()]).unwrap();
        let denied = |sql| analyze_read(sql, &rules).unwrap_err().rule;
        assert_eq!(
            denied("SELECT f.secret_fn FROM film f"),
            "function-denylist"
        );
        assert_eq!(
            denied("SELECT secret_fn(f) FROM film f"),
            "function-denylist"
        );
        // Built-in prefixes do not reach plain columns: `lo.lo_revenue`.
        assert!(analyze_read("SELECT lo.lo_revenue FROM lineorder lo", &rules).is_ok());
    }
}
