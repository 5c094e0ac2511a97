//! What a SQL statement does: parsed with sqlparser's PostgreSQL dialect and
//! walked in full, so that no position (select list, FROM, WHERE, arguments,
//! casts, ORDER BY, CTE bodies, set operations) escapes the checks.
//!
//! Fails closed: SQL the parser cannot read is refused, and so is syntax it
//! reads differently from PostgreSQL (Unicode-escaped identifiers) or cannot
//! write back as it read it (quotes it would not double).

use super::{Denial, FunctionRules};
use sqlparser::ast::{
    AccessExpr, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, ObjectNamePart,
    Query, SetExpr, Statement, TableFactor, Value, ValueWithSpan, Visit, VisitMut, Visitor,
    VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use std::ops::ControlFlow;

/// PostgreSQL truncates identifiers to this many bytes (NAMEDATALEN - 1).
const MAX_IDENTIFIER_BYTES: usize = 63;
/// A relation name given to a typed call is at most this long: three
/// quoted parts of 63 bytes with every quote doubled, with room to spare.
const MAX_RELATION_NAME_BYTES: usize = 1024;

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

/// Limits on one statement, checked on its text and tokens before it is
/// parsed, so that nothing later walks a structure deeper than the analysis
/// stack holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLimits {
    /// Bytes of SQL text (`[policy] max_statement_bytes`).
    pub max_bytes: usize,
    /// [`nesting_bound`] of its tokens (`[policy] max_statement_depth`).
    pub max_depth: usize,
}

impl Default for StatementLimits {
    fn default() -> Self {
        StatementLimits {
            max_bytes: super::DEFAULT_MAX_STATEMENT_BYTES,
            max_depth: super::DEFAULT_MAX_STATEMENT_DEPTH,
        }
    }
}

/// What a read statement touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAnalysis {
    /// Every relation referenced anywhere, deduplicated. Names that turn out
    /// not to be relations (CTE names, functions in FROM) resolve to nothing.
    pub relations: Vec<RelationRef>,
    /// The statement with every literal replaced by `?` (parameters stay
    /// `$n`): what the audit trail records, so that values never reach it.
    pub fingerprint: String,
    /// The statement rendered back to SQL, for when the host must wrap it.
    pub rendered: String,
    /// A query (rather than EXPLAIN), so it can be a cursor's body.
    pub is_query: bool,
    /// EXPLAIN ANALYZE: the statement runs when it is explained, which a
    /// grant must allow (`analyze = true`; the gate checks it).
    pub analyzes: bool,
    /// It calls a function that keeps state in the session (which the
    /// function rules allowed): it must not run on a pooled connection.
    pub session_state: bool,
    /// The `$n` whose values are index definitions given to
    /// `hypopg_create_index`: the gate checks each value with
    /// [`analyze_index_definition`] when it has them. (A literal definition
    /// was checked here, its table is in `relations`.) Never empty without
    /// `session_state`.
    pub index_params: Vec<u32>,
}

/// The rule of a statement over its size or depth limit.
pub const TOO_COMPLEX: &str = "statement-too-complex";

/// Parses `sql` and checks that it is exactly one read-only statement that
/// calls no function `functions` refuses, within `limits`.
///
/// Every walk of the parsed statement recurses on its depth, which
/// [`nesting_bound`] caps; run this on a thread whose stack holds
/// [`MAX_STATEMENT_DEPTH_LIMIT`](super::MAX_STATEMENT_DEPTH_LIMIT) levels.
pub fn analyze_read(
    sql: &str,
    functions: &FunctionRules,
    limits: StatementLimits,
) -> Result<ReadAnalysis, Denial> {
    let mut statement = parse_one(sql, limits)?;
    let mut analyzes = false;
    let is_query = match &statement {
        Statement::Query(_) => true,
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
            analyzes = *analyze || analyze_option;
            if !matches!(inner.as_ref(), Statement::Query(_)) {
                return Err(Denial::new(
                    "read-only-statement",
                    "only queries can be explained",
                ));
            }
            false
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
    };
    let mut collector = Collector::new(functions, limits);
    if let ControlFlow::Break(denial) = statement.visit(&mut collector) {
        return Err(denial);
    }
    let rendered = statement.to_string();
    // In place: a clone of a deep statement costs several KiB of stack per
    // level, a walk a few hundred bytes.
    blank_literals(&mut statement);
    Ok(ReadAnalysis {
        relations: collector.relations,
        fingerprint: statement.to_string(),
        rendered,
        is_query,
        analyzes,
        session_state: collector.session_state,
        index_params: collector.index_params,
    })
}

/// The one statement in `sql`, parsed after its size and depth were checked.
fn parse_one(sql: &str, limits: StatementLimits) -> Result<Statement, Denial> {
    if sql.len() > limits.max_bytes {
        return Err(Denial::new(
            TOO_COMPLEX,
            format!(
                "the statement is {} bytes, over the limit of {} ([policy] max_statement_bytes)",
                sql.len(),
                limits.max_bytes
            ),
        ));
    }
    if sql.contains('\0') {
        return Err(Denial::new(
            "parse",
            "the SQL contains a NUL character, which PostgreSQL does not accept",
        ));
    }
    let dialect = PostgreSqlDialect {};
    let mut tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Denial::new("parse", format!("the SQL could not be parsed: {e}")))?;
    refuse_unicode_identifiers(&tokens)?;
    keep_quotes_faithful(&mut tokens)?;
    expand_table_command(&mut tokens);
    let depth = nesting_bound(&tokens);
    if depth > limits.max_depth {
        return Err(Denial::new(
            TOO_COMPLEX,
            format!(
                "the statement nests about {depth} levels deep (each operator in a chain \
                 such as `a OR b OR …` or `… UNION …` counts), over the limit of {} \
                 ([policy] max_statement_depth); use `IN (…)` or `= ANY($1)` instead of long \
                 OR chains, or split the statement",
                limits.max_depth
            ),
        ));
    }
    let mut statements = Parser::new(&dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
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
    Ok(statements.remove(0))
}

/// `TABLE name` is PostgreSQL's short form of `SELECT * FROM name`, but
/// sqlparser reads it only inside a query (`… UNION TABLE name`), not as a
/// statement of its own or under EXPLAIN. There it is read as the long form,
/// which means exactly the same to PostgreSQL (the text PostgreSQL runs is
/// the plugin's own).
fn expand_table_command(tokens: &mut Vec<TokenWithSpan>) {
    use sqlparser::keywords::Keyword as K;
    let keyword = |t: &TokenWithSpan| match &t.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    let significant = |from: usize, tokens: &[TokenWithSpan]| {
        (from..tokens.len()).find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
    };
    let Some(mut at) = significant(0, tokens) else {
        return;
    };
    if keyword(&tokens[at]) == Some(K::EXPLAIN) {
        // EXPLAIN [ANALYZE] [VERBOSE] or EXPLAIN (options).
        let Some(mut next) = significant(at + 1, tokens) else {
            return;
        };
        if tokens[next].token == Token::LParen {
            let Some(close) = (next..tokens.len()).find(|&i| tokens[i].token == Token::RParen)
            else {
                return;
            };
            next = match significant(close + 1, tokens) {
                Some(i) => i,
                None => return,
            };
        } else {
            while matches!(keyword(&tokens[next]), Some(K::ANALYZE | K::VERBOSE)) {
                next = match significant(next + 1, tokens) {
                    Some(i) => i,
                    None => return,
                };
            }
        }
        at = next;
    }
    if keyword(&tokens[at]) != Some(K::TABLE) {
        return;
    }
    let space = || TokenWithSpan::wrap(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
    tokens.splice(
        at..=at,
        [
            TokenWithSpan::wrap(Token::make_keyword("SELECT")),
            space(),
            TokenWithSpan::wrap(Token::Mul),
            space(),
            TokenWithSpan::wrap(Token::make_keyword("FROM")),
        ],
    );
}

/// An upper bound on how deeply a statement parsed from `tokens` nests,
/// found without parsing and without recursion.
///
/// sqlparser builds operator chains (`a + b + c`, `x OR y OR z`, `… UNION
/// …`) iteratively into left-deep trees, so its own recursion limit (on
/// parentheses and subqueries) does not bound them, but every later walk of
/// the tree recurses once per operator. Within one pair of parentheses, the
/// operators of the longest comma-separated item and every set operation
/// count, plus the deepest parenthesised part inside.
pub fn nesting_bound(tokens: &[TokenWithSpan]) -> usize {
    #[derive(Default)]
    struct Level {
        /// Operators in the current comma-separated item.
        item: usize,
        /// The most operators in one item so far.
        widest: usize,
        /// Set operations: they chain across commas.
        set_ops: usize,
        /// The deepest bound of a parenthesised part inside.
        inner: usize,
    }
    impl Level {
        fn bound(&self) -> usize {
            self.widest
                .max(self.item)
                .saturating_add(self.set_ops)
                .saturating_add(self.inner)
                .saturating_add(1)
        }
    }
    let mut levels = vec![Level::default()];
    for token in tokens {
        match &token.token {
            Token::LParen | Token::LBracket | Token::LBrace => levels.push(Level::default()),
            Token::RParen | Token::RBracket | Token::RBrace => {
                if levels.len() > 1
                    && let Some(closed) = levels.pop()
                    && let Some(outer) = levels.last_mut()
                {
                    outer.inner = outer.inner.max(closed.bound());
                }
            }
            Token::Comma => {
                if let Some(level) = levels.last_mut() {
                    level.widest = level.widest.max(level.item);
                    level.item = 0;
                }
            }
            Token::Word(word) => {
                use sqlparser::keywords::Keyword as K;
                if let Some(level) = levels.last_mut() {
                    match word.keyword {
                        K::UNION | K::EXCEPT | K::INTERSECT => level.set_ops += 1,
                        K::AND
                        | K::OR
                        | K::XOR
                        | K::NOT
                        | K::IS
                        | K::IN
                        | K::BETWEEN
                        | K::LIKE
                        | K::ILIKE
                        | K::SIMILAR
                        | K::COLLATE
                        | K::AT
                        | K::OVERLAPS
                        | K::ESCAPE
                        | K::OPERATOR
                        | K::DIV => level.item += 1,
                        _ => {}
                    }
                }
            }
            // Operands and punctuation that build no nesting.
            Token::EOF
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Whitespace(_)
            | Token::Period
            | Token::SemiColon
            | Token::Colon
            | Token::Placeholder(_) => {}
            // Every operator may add a level.
            _ => {
                if let Some(level) = levels.last_mut() {
                    level.item += 1;
                }
            }
        }
    }
    // Unclosed parentheses (the parser refuses them later) still count.
    while levels.len() > 1 {
        if let Some(closed) = levels.pop()
            && let Some(outer) = levels.last_mut()
        {
            outer.inner = outer.inner.max(closed.bound());
        }
    }
    levels.last().map_or(0, Level::bound)
}

/// `U&"…"` identifiers carry escapes PostgreSQL decodes and sqlparser does not
/// (it reads `U & "…"`), so `U&"pg\005fread_file"(…)` would be checked under
/// the wrong name. They are refused rather than decoded a second way.
fn refuse_unicode_identifiers(tokens: &[TokenWithSpan]) -> Result<(), Denial> {
    for window in tokens.windows(3) {
        if let [u, amp, ident] = window
            && let (Token::Word(u), Token::Ampersand, Token::Word(ident)) =
                (&u.token, &amp.token, &ident.token)
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

/// The statement is rendered back to SQL (the text run when a result must be
/// wrapped), and sqlparser writes a quoted value back with each quote doubled
/// *except* two adjacent quotes or a quote after a backslash, which it takes
/// for escapes already made. PostgreSQL would read such a rendering as other
/// names, or end the literal early and read the rest as SQL. So a string
/// literal holding either is carried as `E'…'`, whose writer escapes every
/// quote and backslash; an identifier or another kind of literal holding
/// either is refused.
fn keep_quotes_faithful(tokens: &mut [TokenWithSpan]) -> Result<(), Denial> {
    for token in tokens.iter_mut() {
        let (value, quote, what) = match &token.token {
            Token::Word(w) => match w.quote_style {
                Some(q) => (&w.value, q, "quoted identifier"),
                None => continue,
            },
            Token::SingleQuotedString(v) => {
                if !written_faithfully(v, '\'') {
                    token.token = Token::EscapedStringLiteral(v.clone());
                }
                continue;
            }
            Token::NationalStringLiteral(v)
            | Token::HexStringLiteral(v)
            | Token::SingleQuotedByteStringLiteral(v)
            | Token::SingleQuotedRawStringLiteral(v) => (v, '\'', "string literal"),
            Token::DoubleQuotedString(v)
            | Token::DoubleQuotedByteStringLiteral(v)
            | Token::DoubleQuotedRawStringLiteral(v) => (v, '"', "string literal"),
            _ => continue,
        };
        if !written_faithfully(value, quote) {
            let shown: String = value.chars().take(40).collect();
            return Err(Denial::new(
                "unfaithful-quoting",
                format!(
                    "the {what} {shown:?} holds two adjacent {quote} characters or a {quote} \
                     after a backslash, which cannot be written back exactly; name or write \
                     it without them"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether sqlparser writes `value` between `quote`s as PostgreSQL reads it
/// back: with every quote doubled and nothing else changed.
fn written_faithfully(value: &str, quote: char) -> bool {
    if !value.contains(quote) {
        return true;
    }
    let written = sqlparser::ast::escape_quoted_string(value, quote).to_string();
    let mut doubled = String::with_capacity(written.len());
    for c in value.chars() {
        doubled.push(c);
        if c == quote {
            doubled.push(c);
        }
    }
    written == doubled
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
    /// It calls a function that keeps state in the session.
    session_state: bool,
    /// For an index definition given as a literal.
    limits: StatementLimits,
    /// See [`ReadAnalysis::index_params`].
    index_params: Vec<u32>,
    /// Walking an index definition, where another is not allowed.
    in_definition: bool,
}

impl<'a> Collector<'a> {
    fn new(functions: &'a FunctionRules, limits: StatementLimits) -> Self {
        Collector {
            relations: Vec::new(),
            functions,
            session_state: false,
            limits,
            index_params: Vec::new(),
            in_definition: false,
        }
    }
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
        self.note(RelationRef {
            regclass_text,
            display,
        });
    }

    /// Notes `relation`, once.
    fn note(&mut self, relation: RelationRef) {
        if !self
            .relations
            .iter()
            .any(|r| r.regclass_text == relation.regclass_text)
        {
            self.relations.push(relation);
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

    fn check_call(&mut self, name: &ObjectName) -> ControlFlow<Denial> {
        let Some(last) = function_name(name) else {
            return ControlFlow::Continue(());
        };
        match self.check_function(last) {
            Err(d) => ControlFlow::Break(d),
            Ok(()) => ControlFlow::Continue(()),
        }
    }

    /// The function rules' verdict on a call of `name`, noting a call
    /// that keeps session state: every call the walk finds passes here.
    fn check_function(&mut self, name: &str) -> Result<(), Denial> {
        self.functions.check(name)?;
        self.session_state |= super::is_session_state(name);
        Ok(())
    }

    /// A call of `hypopg_create_index` (which the function rules allowed)
    /// plans an index on the table its argument names, and tells its size:
    /// that table must be one the grant may read. So the argument must be
    /// one the gate can check: a string literal, checked here as an index
    /// definition, or a `$n`, whose value the gate checks.
    fn check_index_definition(
        &mut self,
        function: &ObjectName,
        args: &[FunctionArg],
    ) -> ControlFlow<Denial> {
        if !names_create_index(function) {
            return ControlFlow::Continue(());
        }
        if self.in_definition {
            return ControlFlow::Break(definition_not_checkable());
        }
        let [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(value)))] = args else {
            return ControlFlow::Break(definition_not_checkable());
        };
        let text = match &value.value {
            Value::SingleQuotedString(text) => text,
            Value::DollarQuotedString(quoted) => &quoted.value,
            Value::Placeholder(p) => {
                let Some(n) = p.strip_prefix('$').and_then(|n| n.parse::<u32>().ok()) else {
                    return ControlFlow::Break(definition_not_checkable());
                };
                self.index_params.push(n);
                return ControlFlow::Continue(());
            }
            _ => return ControlFlow::Break(definition_not_checkable()),
        };
        match analyze_index_definition(text, self.functions, self.limits) {
            Ok(relations) => {
                relations.into_iter().for_each(|r| self.note(r));
                ControlFlow::Continue(())
            }
            Err(denial) => ControlFlow::Break(denial),
        }
    }
}

const CREATE_INDEX: &str = "hypopg_create_index";

/// A called function's own name, without its schema.
fn function_name(name: &ObjectName) -> Option<&str> {
    match name.0.last()? {
        ObjectNamePart::Identifier(ident) => Some(&ident.value),
        ObjectNamePart::Function(f) => Some(&f.name.value),
    }
}

fn names_create_index(function: &ObjectName) -> bool {
    function_name(function).is_some_and(|n| n.eq_ignore_ascii_case(CREATE_INDEX))
}

/// The rule refusing an index definition the gate cannot check.
pub const INDEX_DEFINITION: &str = "index-definition";

fn definition_not_checkable() -> Denial {
    Denial::new(
        INDEX_DEFINITION,
        "hypopg_create_index takes one index definition, as a string literal or a $n \
         parameter (as in hypopg_create_index($1)), so that its table can be checked against \
         the grant",
    )
}

/// Parses `text` as the one `CREATE INDEX` statement `hypopg_create_index`
/// is given, and checks its expressions' calls under `functions`, within
/// `limits`. Returns the relations it names: the indexed table, and any
/// its expressions name. (hypopg itself would plan every index statement in a list
/// and skip the rest; only one, read as the policy reads it, is allowed.)
///
/// The same stack requirement as [`analyze_read`] applies.
pub fn analyze_index_definition(
    text: &str,
    functions: &FunctionRules,
    limits: StatementLimits,
) -> Result<Vec<RelationRef>, Denial> {
    let statement = parse_one(text, limits).map_err(|d| {
        Denial::new(
            INDEX_DEFINITION,
            format!(
                "the index definition given to hypopg_create_index: {}",
                d.message
            ),
        )
    })?;
    let Statement::CreateIndex(index) = &statement else {
        return Err(Denial::new(
            INDEX_DEFINITION,
            format!(
                "hypopg_create_index takes a CREATE INDEX statement, not {}",
                statement_kind(&statement)
            ),
        ));
    };
    let mut collector = Collector::new(functions, limits);
    collector.in_definition = true;
    if let ControlFlow::Break(denial) = collector.pre_visit_relation(&index.table_name) {
        return Err(denial);
    }
    // Its expressions: the columns, a partial index's predicate, options.
    for walked in [
        index.columns.visit(&mut collector),
        index.predicate.visit(&mut collector),
        index.with.visit(&mut collector),
    ] {
        if let ControlFlow::Break(denial) = walked {
            return Err(denial);
        }
    }
    Ok(collector.relations)
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
                args: Some(args),
                ..
            } => {
                self.check_call(name)?;
                self.check_index_definition(name, &args.args)?;
                check_setting_read(name, &args.args)
            }
            TableFactor::Function { name, args, .. } => {
                self.check_call(name)?;
                self.check_index_definition(name, args)?;
                check_setting_read(name, args)
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Denial> {
        match expr {
            Expr::Function(function) => {
                self.check_call(&function.name)?;
                let args = match &function.args {
                    FunctionArguments::List(list) => list.args.as_slice(),
                    _ => &[],
                };
                self.check_index_definition(&function.name, args)?;
                check_setting_read(&function.name, args)
            }
            // PostgreSQL's attribute notation: `(expr).f` calls `f(expr)`.
            Expr::CompoundFieldAccess { access_chain, .. } => {
                for access in access_chain {
                    if let AccessExpr::Dot(Expr::Identifier(ident)) = access {
                        if let Err(d) = self.check_function(&ident.value) {
                            return ControlFlow::Break(d);
                        }
                        if ident.value.eq_ignore_ascii_case(CURRENT_SETTING) {
                            return ControlFlow::Break(setting_not_literal());
                        }
                        if ident.value.eq_ignore_ascii_case(CREATE_INDEX) {
                            return ControlFlow::Break(definition_not_checkable());
                        }
                    }
                }
                ControlFlow::Continue(())
            }
            // `alias.f` calls `f(alias)` when alias has no column f. Only a
            // function taking the row type can be called this way, and none of
            // the built-in denied ones does; the operator's may.
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                // Noted as a call, to be safe, though no session-state
                // function takes a row.
                self.session_state |= super::is_session_state(&parts[1].value);
                if parts[1].value.eq_ignore_ascii_case(CREATE_INDEX) {
                    return ControlFlow::Break(definition_not_checkable());
                }
                match self.functions.check_operator_denied(&parts[1].value) {
                    Err(d) => ControlFlow::Break(d),
                    Ok(()) => ControlFlow::Continue(()),
                }
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

const CURRENT_SETTING: &str = "current_setting";

/// `current_setting(name)` may read a setting only when `name` is a plain
/// literal naming one that reveals nothing of the server's files, commands
/// or secrets ([`sensitive_setting`](super::sensitive_setting)); any other
/// argument could name one of those.
fn check_setting_read(function: &ObjectName, args: &[FunctionArg]) -> ControlFlow<Denial> {
    let is_current_setting = matches!(
        function.0.last(),
        Some(ObjectNamePart::Identifier(ident)) if ident.value.eq_ignore_ascii_case(CURRENT_SETTING)
    );
    if !is_current_setting {
        return ControlFlow::Continue(());
    }
    let name = match args.first() {
        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(name),
            ..
        })))) => name,
        _ => return ControlFlow::Break(setting_not_literal()),
    };
    if super::sensitive_setting(name) {
        return ControlFlow::Break(Denial::new(
            "server-internals",
            format!(
                "the setting {name} reveals the server's files, commands or secrets; \
                 settings of that kind cannot be read"
            ),
        ));
    }
    ControlFlow::Continue(())
}

fn setting_not_literal() -> Denial {
    Denial::new(
        "server-internals",
        "current_setting takes only a literal setting name here, as in \
         current_setting('work_mem')",
    )
}

fn modifies_data(body: &SetExpr) -> bool {
    match body {
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => true,
        SetExpr::SetOperation { left, right, .. } => modifies_data(left) || modifies_data(right),
        SetExpr::Query(q) => modifies_data(&q.body),
        _ => false,
    }
}

/// Replaces every literal with `?` (parameters stay `$n`).
fn blank_literals(statement: &mut Statement) {
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
    let _ = VisitMut::visit(statement, &mut Blank);
}

/// Which write a statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteVerb {
    Insert,
    Update,
    Delete,
}

impl WriteVerb {
    /// `insert`, `update`, `delete`: for messages and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteVerb::Insert => "insert",
            WriteVerb::Update => "update",
            WriteVerb::Delete => "delete",
        }
    }
}

/// What one write statement touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteAnalysis {
    pub verb: WriteVerb,
    /// The one relation it writes.
    pub target: RelationRef,
    /// Every other relation it references (subqueries, `FROM`, `USING`,
    /// `INSERT … SELECT`), deduplicated: these are read.
    pub reads: Vec<RelationRef>,
    /// The statement with every literal replaced by `?`.
    pub fingerprint: String,
    /// The statement rendered back to SQL, for when the host must wrap it.
    pub rendered: String,
    /// It has a `RETURNING` list.
    pub returns: bool,
    /// It calls a function that keeps state in the session.
    pub session_state: bool,
    /// As [`ReadAnalysis::index_params`].
    pub index_params: Vec<u32>,
}

/// Parses `sql` and checks that it is exactly one `INSERT`, `UPDATE` or
/// `DELETE` of one named relation, with no data-modifying CTE, no locking
/// clause and no function `functions` refuses, within `limits`.
///
/// The same stack requirement as [`analyze_read`] applies.
pub fn analyze_write(
    sql: &str,
    functions: &FunctionRules,
    limits: StatementLimits,
) -> Result<WriteAnalysis, Denial> {
    let refuse = |message: String| Err(Denial::new("write-statement", message));
    let mut statement = parse_one(sql, limits)?;
    let (verb, target, returns) = match &statement {
        Statement::Insert(insert) => {
            let name = match &insert.table {
                sqlparser::ast::TableObject::TableName(name) => name,
                _ => return refuse("INSERT must name its table".into()),
            };
            if insert.or.is_some()
                || insert.ignore
                || insert.overwrite
                || insert.replace_into
                || insert.partitioned.is_some()
                || !insert.assignments.is_empty()
            {
                return refuse("this INSERT form is not PostgreSQL's".into());
            }
            (WriteVerb::Insert, name, insert.returning.is_some())
        }
        Statement::Update(update) => {
            if !update.table.joins.is_empty() {
                return refuse("UPDATE writes one table; put others in FROM".into());
            }
            let TableFactor::Table {
                name, args: None, ..
            } = &update.table.relation
            else {
                return refuse("UPDATE must name its table".into());
            };
            if update.or.is_some() || update.limit.is_some() || !update.order_by.is_empty() {
                return refuse("this UPDATE form is not PostgreSQL's".into());
            }
            (WriteVerb::Update, name, update.returning.is_some())
        }
        Statement::Delete(delete) => {
            let from = match &delete.from {
                sqlparser::ast::FromTable::WithFromKeyword(from) => from,
                sqlparser::ast::FromTable::WithoutKeyword(_) => {
                    return refuse("DELETE needs FROM".into());
                }
            };
            let [only] = from.as_slice() else {
                return refuse("DELETE writes one table; put others in USING".into());
            };
            let TableFactor::Table {
                name, args: None, ..
            } = &only.relation
            else {
                return refuse("DELETE must name its table".into());
            };
            if !delete.tables.is_empty()
                || !only.joins.is_empty()
                || delete.limit.is_some()
                || !delete.order_by.is_empty()
            {
                return refuse("this DELETE form is not PostgreSQL's".into());
            }
            (WriteVerb::Delete, name, delete.returning.is_some())
        }
        Statement::Query(query) if modifies_data(&query.body) => {
            return refuse("a write with WITH is not allowed; write the CTE as a subquery".into());
        }
        other => {
            return refuse(format!(
                "only INSERT, UPDATE and DELETE are allowed here, not {}",
                statement_kind(other)
            ));
        }
    };
    let mut collector = Collector::new(functions, limits);
    if let ControlFlow::Break(denial) = collector.pre_visit_relation(target) {
        return Err(denial);
    }
    let target = collector.relations.remove(0);
    let mut writes = WriteCollector {
        inner: collector,
        top: true,
    };
    if let ControlFlow::Break(denial) = statement.visit(&mut writes) {
        return Err(denial);
    }
    let session_state = writes.inner.session_state;
    let index_params = std::mem::take(&mut writes.inner.index_params);
    let reads = writes
        .inner
        .relations
        .into_iter()
        .filter(|r| r.regclass_text != target.regclass_text)
        .collect();
    let rendered = statement.to_string();
    blank_literals(&mut statement);
    Ok(WriteAnalysis {
        verb,
        target,
        reads,
        fingerprint: statement.to_string(),
        rendered,
        returns,
        session_state,
        index_params,
    })
}

/// The read [`Collector`], letting through the one write at the top.
struct WriteCollector<'a> {
    inner: Collector<'a>,
    top: bool,
}

impl Visitor for WriteCollector<'_> {
    type Break = Denial;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Denial> {
        self.inner.pre_visit_query(query)
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Denial> {
        if std::mem::take(&mut self.top) {
            return ControlFlow::Continue(());
        }
        self.inner.pre_visit_statement(statement)
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Denial> {
        self.inner.pre_visit_relation(relation)
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Denial> {
        self.inner.pre_visit_table_factor(factor)
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Denial> {
        self.inner.pre_visit_expr(expr)
    }
}

/// The numbers of the `$n` placeholders in `sql`, read from its tokens (so
/// `'$1'` in a string is none), after the same size check as the analyses.
pub fn placeholders(
    sql: &str,
    limits: StatementLimits,
) -> Result<std::collections::BTreeSet<u32>, Denial> {
    if sql.len() > limits.max_bytes {
        return Err(Denial::new(TOO_COMPLEX, "the statement is too long"));
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| Denial::new("parse", format!("the SQL could not be parsed: {e}")))?;
    let mut out = std::collections::BTreeSet::new();
    for token in tokens {
        if let Token::Placeholder(p) = token {
            let n = p
                .strip_prefix('$')
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Denial::new(
                        "parse",
                        format!("placeholder {p} is not a PostgreSQL parameter ($1, $2, …)"),
                    )
                })?;
            out.insert(n);
        }
    }
    Ok(out)
}

/// Parses a relation name given to a typed call (`film`, `public.film`,
/// `"Odd Name"`), into the form `to_regclass` resolves.
pub fn parse_relation_name(text: &str) -> Result<RelationRef, String> {
    if text.len() > MAX_RELATION_NAME_BYTES {
        return Err(format!(
            "invalid relation name: longer than {MAX_RELATION_NAME_BYTES} bytes"
        ));
    }
    let invalid = |why: &dyn std::fmt::Display| format!("invalid relation name {text:?}: {why}");
    if text.contains('\0') {
        return Err(invalid(&"it contains a NUL character"));
    }
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| invalid(&e))?;
    refuse_unicode_identifiers(&tokens).map_err(|d| invalid(&d.message))?;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let name = parser.parse_object_name(false).map_err(|e| invalid(&e))?;
    if parser.peek_token().token != Token::EOF {
        return Err(invalid(&"unexpected text after the name"));
    }
    if name.0.is_empty() || name.0.len() > 3 {
        return Err(invalid(&"expected `name` or `schema.name`"));
    }
    let rules = FunctionRules::default();
    let mut collector = Collector::new(&rules, StatementLimits::default());
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
        analyze_read(sql, &FunctionRules::default(), StatementLimits::default())
            .unwrap()
            .relations
            .into_iter()
            .map(|r| r.regclass_text)
            .collect()
    }

    fn rule(sql: &str) -> &'static str {
        analyze_read(sql, &FunctionRules::default(), StatementLimits::default())
            .unwrap_err()
            .rule
    }

    fn write(sql: &str) -> Result<WriteAnalysis, Denial> {
        analyze_write(sql, &FunctionRules::default(), StatementLimits::default())
    }

    #[test]
    fn a_write_names_its_target_apart_from_what_it_reads() {
        let w = write(
            "UPDATE public.film SET rental_rate = $1 FROM language l \
             WHERE film.language_id = l.language_id AND film_id IN (SELECT film_id FROM inventory)",
        )
        .unwrap();
        assert_eq!(w.verb, WriteVerb::Update);
        assert_eq!(w.target.regclass_text, "\"public\".\"film\"");
        let reads: Vec<&str> = w.reads.iter().map(|r| r.regclass_text.as_str()).collect();
        assert_eq!(reads, ["\"language\"", "\"inventory\""]);
        assert!(!w.returns);

        let w = write("INSERT INTO Actor (first_name) SELECT name FROM staff RETURNING *").unwrap();
        assert_eq!(
            (w.verb, w.target.regclass_text.as_str(), w.returns),
            (WriteVerb::Insert, "\"actor\"", true)
        );
        assert_eq!(w.reads[0].regclass_text, "\"staff\"");
        let w = write("DELETE FROM rental USING customer c WHERE c.customer_id = $1").unwrap();
        assert_eq!(w.verb, WriteVerb::Delete);
        assert_eq!(w.reads[0].regclass_text, "\"customer\"");
        assert!(w.fingerprint.contains("$1"));
        let w =
            write("INSERT INTO t (a) VALUES ('x') ON CONFLICT (a) DO UPDATE SET a = 'y'").unwrap();
        assert!(w.fingerprint.contains('?') && !w.fingerprint.contains("'x'"));
    }

    #[test]
    fn a_write_is_one_plain_insert_update_or_delete() {
        for (sql, rule) in [
            ("SELECT 1", "write-statement"),
            ("DROP TABLE film", "write-statement"),
            ("TRUNCATE film", "write-statement"),
            (
                "WITH d AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM d",
                "write-statement",
            ),
            ("UPDATE a SET x = 1; DELETE FROM b", "single-statement"),
            (
                "UPDATE a SET x = (SELECT 1 FROM b FOR UPDATE)",
                "locking-clause",
            ),
            (
                "DELETE FROM a WHERE x IN (WITH d AS (DELETE FROM b RETURNING 1) SELECT 1 FROM d)",
                "data-modifying-cte",
            ),
            (
                "UPDATE a SET x = pg_read_file('/etc/passwd')",
                "function-denylist",
            ),
            (
                "INSERT INTO a SELECT * FROM pg_ls_dir('.')",
                "function-denylist",
            ),
            ("DELETE FROM pg_catalog.pg_proc(1)", "write-statement"),
        ] {
            match write(sql) {
                Err(d) => assert_eq!(d.rule, rule, "{sql}: {}", d.message),
                Ok(w) => panic!("{sql} passed: {w:?}"),
            }
        }
    }

    #[test]
    fn calls_that_keep_session_state_are_noted_wherever_they_are() {
        let rules = FunctionRules::default()
            .with_allowance(&["hypopg_*".into()])
            .unwrap();
        let noted = |sql: &str| {
            analyze_read(sql, &rules, StatementLimits::default())
                .unwrap()
                .session_state
        };
        assert!(!noted("SELECT lower('a') FROM t"));
        assert!(noted(
            "SELECT * FROM hypopg_create_index('CREATE INDEX ON t (a)')"
        ));
        assert!(noted("SELECT 1 WHERE EXISTS (SELECT HYPOPG_RESET())"));
        assert!(noted("SELECT (i.oid).hypopg_drop_index FROM idx i"));
        assert!(
            analyze_write(
                "UPDATE t SET a = hypopg_reset()::text",
                &rules,
                Default::default()
            )
            .unwrap()
            .session_state
        );
    }

    #[test]
    fn an_index_definition_must_be_a_literal_or_a_parameter_and_one_create_index() {
        let rules = FunctionRules::default()
            .with_allowance(&["hypopg_*".into()])
            .unwrap();
        let limits = StatementLimits::default();
        let read = |sql: &str| analyze_read(sql, &rules, limits);
        // A literal's table is one of the statement's relations.
        let literal =
            read("SELECT * FROM hypopg_create_index('CREATE INDEX ON s.t USING btree (a)')")
                .unwrap();
        // (The function in FROM is a name too, which resolves to nothing.)
        let names: Vec<_> = literal
            .relations
            .iter()
            .map(|r| r.regclass_text.as_str())
            .collect();
        assert!(names.contains(&"\"s\".\"t\""), "{names:?}");
        assert!(literal.index_params.is_empty());
        // A parameter is left to the gate, and the statement keeps session state.
        let param = read("SELECT i.indexrelid FROM hypopg_create_index($2) i WHERE $1").unwrap();
        assert_eq!(param.index_params, [2]);
        assert!(param.session_state);
        assert_eq!(
            analyze_write(
                "UPDATE t SET a = hypopg_create_index($1)::text",
                &rules,
                limits
            )
            .unwrap()
            .index_params,
            [1]
        );
        // Anything the gate could not check is refused.
        for sql in [
            "SELECT hypopg_create_index('CREATE INDEX ON t (a)' || '')",
            "SELECT hypopg_create_index(($1))",
            "SELECT hypopg_create_index($1::text)",
            "SELECT hypopg_create_index(sql => $1)",
            "SELECT hypopg_create_index(E'CREATE INDEX ON t (a)')",
            "SELECT hypopg_create_index((SELECT d FROM defs))",
            "SELECT (d.def).hypopg_create_index FROM defs d",
            "SELECT d.hypopg_create_index FROM defs d",
            "SELECT * FROM hypopg_create_index('CREATE INDEX ON t (a); CREATE INDEX ON u (b)')",
            "SELECT * FROM hypopg_create_index('SELECT 1')",
            "SELECT * FROM hypopg_create_index('CREATE INDEX ON t ((hypopg_create_index(''x'')))')",
            "SELECT * FROM hypopg_create_index('CREATE INDEX ON t ((pg_sleep(1)))')",
        ] {
            match read(sql) {
                Err(d) => assert!(
                    ["index-definition", "function-denylist"].contains(&d.rule),
                    "{sql}: {d}"
                ),
                Ok(a) => panic!("{sql} passed: {a:?}"),
            }
        }
        // The definition's expressions are walked like any other.
        let definition = analyze_index_definition(
            "CREATE INDEX ON t (lower(a)) INCLUDE (b) WHERE c IN (SELECT c FROM u)",
            &rules,
            limits,
        )
        .unwrap();
        let names: Vec<_> = definition
            .iter()
            .map(|r| r.regclass_text.as_str())
            .collect();
        assert_eq!(names, ["\"t\"", "\"u\""]);
    }

    #[test]
    fn placeholders_come_from_tokens() {
        let limits = StatementLimits::default();
        let found = placeholders("SELECT $2, '$3', $1::int -- $4", limits).unwrap();
        assert_eq!(found.into_iter().collect::<Vec<_>>(), [1, 2]);
        assert!(placeholders("SELECT $0", limits).is_err());
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
    fn table_commands_read_as_their_long_form() {
        assert_eq!(rels("TABLE film"), vec!["\"film\""]);
        assert_eq!(
            rels("  /* hi */ table public.film ORDER BY 1 LIMIT 3"),
            vec!["\"public\".\"film\""]
        );
        assert_eq!(rels("EXPLAIN TABLE film"), vec!["\"film\""]);
        assert_eq!(rels("EXPLAIN (FORMAT JSON) TABLE film"), vec!["\"film\""]);
        assert_eq!(rels("TABLE a UNION TABLE b").len(), 2);
        let a = analyze_read(
            "TABLE film",
            &FunctionRules::default(),
            StatementLimits::default(),
        )
        .unwrap();
        assert!(a.is_query);
        assert_eq!(a.rendered, "SELECT * FROM film");
        // A quoted "TABLE" is a name, not the command.
        assert_eq!(rule("\"TABLE\" film"), "parse");
        assert_eq!(rule("TABLE film; DROP TABLE film"), "single-statement");
    }

    #[test]
    fn quotes_are_written_back_as_they_were_read() {
        let rendered = |sql: &str| {
            analyze_read(sql, &FunctionRules::default(), StatementLimits::default())
                .map(|a| a.rendered)
                .unwrap()
        };
        // One quote inside is doubled as usual; the tree is unchanged.
        assert_eq!(
            rendered(r#"SELECT 'it''s' AS "say ""hi""""#),
            r#"SELECT 'it''s' AS "say ""hi""""#
        );
        // Two adjacent quotes, or one after a backslash, would be written
        // back undoubled: `'x\'' UNION … --'` would then end at `\'` and run
        // the rest. Such a string is carried in escape form instead.
        let out = rendered(r"SELECT 'x\'' UNION SELECT rolpassword FROM pg_authid --'");
        assert_eq!(
            out,
            r"SELECT E'x\\\' UNION SELECT rolpassword FROM pg_authid --'"
        );
        assert!(rels(&out).is_empty());
        assert_eq!(rendered("SELECT ''''''"), r"SELECT E'\'\''");
        // An identifier has no escape form: it is refused.
        assert_eq!(rule(r#"SELECT * FROM "a""""b""#), "unfaithful-quoting");
        assert_eq!(rule(r#"SELECT 1 AS "x""""" FROM t"#), "unfaithful-quoting");
        assert_eq!(rule(r"SELECT N'a\'''"), "unfaithful-quoting");
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
        // EXPLAIN ANALYZE runs its statement: the analysis says so, and
        // the gate lets it through only under a grant with analyze = true.
        let analyzes = |sql: &str| {
            analyze_read(sql, &FunctionRules::default(), StatementLimits::default())
                .unwrap()
                .analyzes
        };
        assert!(analyzes("EXPLAIN ANALYZE SELECT 1"));
        assert!(analyzes("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT 1"));
        assert!(analyzes("EXPLAIN (ANALYSE) SELECT 1"));
        assert!(!analyzes("EXPLAIN (ANALYZE false, FORMAT JSON) SELECT 1"));
        assert!(!analyzes("EXPLAIN SELECT 1"));
        assert!(!analyzes("SELECT 1"));
        assert_eq!(rule("EXPLAIN DELETE FROM a"), "read-only-statement");
        assert_eq!(rule("EXPLAIN ANALYZE DELETE FROM a"), "read-only-statement");
        assert_eq!(
            rule("EXPLAIN ANALYZE WITH x AS (DELETE FROM a RETURNING *) SELECT * FROM x"),
            "data-modifying-cte"
        );
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
            StatementLimits::default(),
        )
        .unwrap();
        assert_eq!(
            a.fingerprint,
            "SELECT * FROM t WHERE name = ? AND id = $1 LIMIT ?"
        );
        assert_eq!(
            a.rendered,
            "SELECT * FROM t WHERE name = 'secret' AND id = $1 LIMIT 10"
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
        rels("EXPLAIN (ANALYZE false, FORMAT JSON) SELECT 1");
        // A unicode string literal is a plain string.
        rels(r"SELECT U&'d\0061ta'");
        // Long names are truncated as PostgreSQL truncates them.
        let long = format!("SELECT * FROM s.{}", "a".repeat(70));
        assert_eq!(rels(&long), vec![format!("\"s\".\"{}\"", "a".repeat(63))]);
    }

    fn bound(sql: &str) -> usize {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        nesting_bound(&tokens)
    }

    #[test]
    fn the_nesting_bound_counts_chains_not_lists() {
        assert_eq!(bound("SELECT 1"), 1);
        assert!(bound(&format!("SELECT 1{}", "+1".repeat(50))) >= 50);
        assert!(bound(&format!("SELECT 1 WHERE {}", vec!["a"; 40].join(" OR "))) >= 39);
        assert!(bound(&vec!["SELECT 1, 2"; 30].join(" UNION ALL ")) >= 29);
        // Items of a list do not nest.
        let list = format!("SELECT 1 WHERE a IN ({})", vec!["-1"; 5000].join(","));
        assert!(bound(&list) < 10, "{}", bound(&list));
        let columns = vec!["a + b"; 3000].join(", ");
        assert!(bound(&format!("SELECT {columns} FROM t")) < 10);
        // Parenthesised parts add their own depth.
        assert!(bound("SELECT ((1 + 2) * (3 + 4)) + 5") >= 4);
        // Unbalanced input still gets a bound.
        assert!(bound("SELECT (((1 + 1") >= 4);
        assert!(bound("SELECT 1))) + 1") >= 1);
    }

    #[test]
    fn statements_too_large_or_too_deep_are_refused_by_rule() {
        let refused = |sql: &str| {
            analyze_read(sql, &FunctionRules::default(), StatementLimits::default()).unwrap_err()
        };
        for sql in [
            format!("SELECT 1{}", "+1".repeat(4000)),
            format!("SELECT 1 WHERE {}", vec!["a = 1"; 10_000].join(" OR ")),
            vec!["SELECT 1"; 2000].join(" UNION ALL "),
            format!("SELECT 'a'{}", " || 'b'".repeat(3000)),
            format!("SELECT 1{}", "::int".repeat(3000)),
        ] {
            let denial = refused(&sql);
            assert_eq!(denial.rule, TOO_COMPLEX, "{}", denial.message);
            assert!(
                denial.message.contains("max_statement_depth"),
                "{}",
                denial.message
            );
        }
        let limits = StatementLimits {
            max_bytes: 100,
            ..StatementLimits::default()
        };
        let long = format!("SELECT '{}'", "x".repeat(200));
        let denial = analyze_read(&long, &FunctionRules::default(), limits).unwrap_err();
        assert_eq!(denial.rule, TOO_COMPLEX);
        assert!(
            denial.message.contains("max_statement_bytes"),
            "{}",
            denial.message
        );
        assert_eq!(refused("SELECT 1 \0; DROP TABLE t").rule, "parse");
        // Within the limits, a long list is fine.
        rels(&format!(
            "SELECT 1 WHERE a IN ({})",
            vec!["7"; 20_000].join(",")
        ));
    }

    #[test]
    fn settings_that_reveal_the_server_are_refused() {
        for sql in [
            "SELECT current_setting('data_directory')",
            "SELECT pg_catalog.current_setting('Config_File', true)",
            "SELECT current_setting('hba_file')",
            "SELECT * FROM current_setting('ident_file')",
            "SELECT current_setting('unix_socket_directories')",
            "SELECT current_setting('data_' || 'directory')",
            "SELECT current_setting(name) FROM t",
            "SELECT current_setting($1)",
            "SELECT current_setting(setting_name => 'data_directory')",
            "SELECT ('data_directory'::text).current_setting",
            "SELECT current_setting(E'data\\x5fdirectory')",
        ] {
            assert_eq!(rule(sql), "server-internals", "{sql}");
        }
        assert_eq!(rule("SELECT txid_current()"), "function-denylist");
        assert_eq!(
            rule("SELECT * FROM pg_show_all_settings()"),
            "function-denylist"
        );
        rels("SELECT current_setting('server_version_num')::int");
        rels("SELECT current_setting('TimeZone'), current_setting('work_mem', true)");
    }

    #[test]
    fn operator_rules_reach_attribute_calls() {
        let rules = FunctionRules::new(None, &["secret_fn".into()]).unwrap();
        let denied = |sql| {
            analyze_read(sql, &rules, StatementLimits::default())
                .unwrap_err()
                .rule
        };
        assert_eq!(
            denied("SELECT f.secret_fn FROM film f"),
            "function-denylist"
        );
        assert_eq!(
            denied("SELECT secret_fn(f) FROM film f"),
            "function-denylist"
        );
        // Built-in prefixes do not reach plain columns: `lo.lo_revenue`.
        assert!(
            analyze_read(
                "SELECT lo.lo_revenue FROM lineorder lo",
                &rules,
                StatementLimits::default()
            )
            .is_ok()
        );
    }
}
